"""The ``deepgrad`` command (also ``python -m deepgrad``).

    deepgrad recipes                                   list the recipes and what each reproduces
    deepgrad train RECIPE [--epochs N --batch-size B --lr LR --optimizer NAME --seed S
                           --data DIR --out DIR --resume CHECKPOINT --set KEY=VALUE ...]
    deepgrad evaluate CHECKPOINT [--data DIR]          test-set loss and metrics of a trained model
    deepgrad predict CHECKPOINT FILE...                predicted class and probability per image/.npy

Heavy imports happen inside the commands, so ``deepgrad --help`` answers at once.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["main", "build_parser"]


def _kv(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass                       # a bare string
    return key.strip().replace("-", "_"), value


def _verbosity(args):
    return 0 if args.quiet else ("auto" if args.verbose is None else args.verbose)


# ---- commands -----------------------------------------------------------------------------------
def cmd_recipes(args):
    from .recipes import list_recipes
    recipes = list_recipes()
    if args.json:
        print(json.dumps([{"name": r.name, "summary": r.summary, "reproduces": r.reproduces,
                           "defaults": r.hparams()} for r in recipes], indent=1))
        return 0
    width = max(len(r.name) for r in recipes)
    for r in recipes:
        print(f"{r.name:<{width}}  {r.summary}")
        print(f"{'':<{width}}  reproduces: {r.reproduces}")
        if args.verbose:
            hp = " ".join(f"{k}={v}" for k, v in r.hparams().items())
            print(f"{'':<{width}}  defaults: {hp}")
    return 0


def cmd_train(args):
    from .recipes import train_recipe
    overrides = dict(args.set or [])
    overrides.update(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                     seed=args.seed, subset=args.subset)
    result = train_recipe(args.recipe, out=args.out, data=args.data, resume=args.resume,
                          verbose=_verbosity(args), device=args.device, **overrides)
    test = result["test"]
    parts = [f"test {k} {100 * v:.2f}%" if "acc" in k else f"test {k} {v:.4f}" for k, v in test.items()]
    print(f"{result['recipe']}: {', '.join(parts)} after {result['epochs']} epochs "
          f"({result['wall_s']:.1f} s of training)")
    print(f"checkpoint: {result['checkpoint']}")
    if result["plots"]:
        print(f"plots: {', '.join(result['plots'])}")
    print(f"logs: {os.path.join(result['out'], 'history.csv')}, {os.path.join(result['out'], 'result.json')}")
    return 0


def cmd_evaluate(args):
    from .recipes import evaluate_checkpoint
    recipe, metrics = evaluate_checkpoint(args.checkpoint, data=args.data, batch_size=args.batch_size,
                                          device=args.device)
    if args.json:
        print(json.dumps({"recipe": recipe.name, **metrics}))
        return 0
    parts = [f"{k} {100 * v:.2f}%" if "acc" in k else f"{k} {v:.4f}" for k, v in metrics.items()]
    print(f"{recipe.name} ({args.checkpoint}): test {', '.join(parts)}")
    return 0


def cmd_predict(args):
    from .recipes import predict_inputs
    for path, ranked in predict_inputs(args.checkpoint, args.inputs, device=args.device, top=args.top):
        best = ", ".join(f"class {c} (probability {p:.4f})" for c, p in ranked)
        print(f"{path}: {best}")
    return 0


# ---- parser -------------------------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(
        prog="deepgrad", description="deepgrad: train, evaluate and run the recipes of a deep-learning "
        "framework written in Python from first principles.",
        epilog="Run `deepgrad COMMAND --help` for a command's options. Example: deepgrad train mnist-mlp")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("recipes", help="list the recipes and what each reproduces",
                       description="List the registered recipes, what each one trains and the result it reproduces.")
    r.add_argument("-v", "--verbose", action="store_true", help="also show each recipe's default hyper-parameters")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(func=cmd_recipes)

    t = sub.add_parser("train", help="train a recipe, evaluate it on its test set, save checkpoint/logs/plots",
                       description="Train RECIPE, evaluate it on its test set, and write checkpoint.npz (every "
                       "epoch), history.csv/json, loss/accuracy/lr plots and result.json into the output folder. Recipes "
                       "without a validation split report the test set after each epoch (val_* columns) for "
                       "monitoring only: nothing is selected on it.")
    t.add_argument("recipe", metavar="RECIPE", help="recipe name (see `deepgrad recipes`)")
    t.add_argument("--epochs", type=int, help="number of epochs (in all, when resuming)")
    t.add_argument("--batch-size", type=int, help="mini-batch size")
    t.add_argument("--lr", type=float, help="(peak) learning rate")
    t.add_argument("--optimizer", help="sgd, adam, adamw, rmsprop, adagrad, adadelta, adamax or nadam")
    t.add_argument("--seed", type=int, help="random seed (weights, shuffling, dropout)")
    t.add_argument("--data", metavar="DIR", help="datasets folder (default: $DEEPGRAD_DATA, the cache, or the "
                   "copy bundled with deepgrad)")
    t.add_argument("--out", metavar="DIR", help="output folder (default: runs/RECIPE-TIMESTAMP; with --resume, "
                   "the checkpoint's folder)")
    t.add_argument("--resume", metavar="CHECKPOINT", help="carry on from this checkpoint (same recipe and "
                   "hyper-parameters; ends on the weights an uninterrupted run would reach)")
    t.add_argument("--subset", type=int, metavar="N", help="use only the first N samples of each split (smoke tests)")
    t.add_argument("--set", type=_kv, action="append", metavar="KEY=VALUE",
                   help="set another hyper-parameter of the recipe (JSON value), e.g. --set dropout=0.1")
    t.add_argument("--device", help="cpu or cuda")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    t.add_argument("--verbose", type=int, choices=(0, 1, 2), help="0 silent, 1 progress bar, 2 a line per epoch "
                   "(default: 1 on a terminal, else 2)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="test-set loss and metrics of a trained checkpoint",
                       description="Rebuild the model recorded in CHECKPOINT and report its loss and metrics on "
                       "its recipe's test set.")
    e.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz written by `deepgrad train`")
    e.add_argument("--data", metavar="DIR", help="datasets folder")
    e.add_argument("--batch-size", type=int, help="evaluation batch size")
    e.add_argument("--device", help="cpu or cuda")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="classify images (PNG/JPEG) or .npy arrays with a trained checkpoint",
                        description="Print the predicted class and its probability for each input file, using the "
                        "model recorded in CHECKPOINT. Images are converted the way the recipe's data are "
                        "(for MNIST: greyscale, 28x28, light digit on dark).")
    pr.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz written by `deepgrad train`")
    pr.add_argument("inputs", metavar="FILE", nargs="+", help="PNG/JPEG images or .npy arrays")
    pr.add_argument("--top", type=int, default=1, help="show the K most likely classes")
    pr.add_argument("--device", help="cpu or cuda")
    pr.set_defaults(func=cmd_predict)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (KeyError, ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"deepgrad {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
