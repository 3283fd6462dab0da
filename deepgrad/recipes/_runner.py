"""Run a recipe end to end, and rebuild a trained model from its checkpoint (the CLI's engine).

>>> from deepgrad.recipes import train_recipe                              # doctest: +SKIP
>>> result = train_recipe("xor-mlp", out="runs/xor", verbose=0)
>>> result["test"]["accuracy"]
1.0
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from . import get_recipe

__all__ = ["train_recipe", "load_trained", "evaluate_checkpoint", "predict_inputs", "read_input"]

CHECKPOINT_NAME = "checkpoint.npz"


def _default_out(name):
    return os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


#: hyper-parameters that ``train --resume`` applies as a deliberate change of schedule; any other
#: hyper-parameter that differs from the checkpoint's is refused (it would change the model, the
#: optimiser or the data, and a resumed run would no longer be the run it continues)
RESUME_CHANGEABLE = ("epochs", "lr", "batch_size")
#: the files a run writes into its folder (their stale ``.NAME.*.tmp`` files are removed)
RUN_FILES = (CHECKPOINT_NAME, "history.csv", "history.json", "result.json", "loss.png", "accuracy.png", "lr.png")


def _source(path):
    from ..train.trainer import _source as source
    return source(path)


def _read_recipe_checkpoint(path):
    """``(ckpt, recipe, hparams)`` of a recipe checkpoint, every field checked (see
    :mod:`deepgrad.train._schema`)."""
    from ..train import load_checkpoint
    from ..train._schema import field_error, validate_hparams
    source = _source(path)
    ckpt = load_checkpoint(path)
    meta = ckpt.get("meta") or {}
    if "recipe" not in meta:
        raise field_error(source, "meta.recipe", "missing: the checkpoint does not record the recipe it was "
                          "trained with; rebuild the model yourself and use "
                          "model.load_state_dict(deepgrad.load(path)['model'])")
    if not isinstance(meta["recipe"], str):
        raise field_error(source, "meta.recipe", f"not a recipe name but {type(meta['recipe']).__name__}")
    try:
        recipe = get_recipe(meta["recipe"])
    except KeyError as e:
        raise field_error(source, "meta.recipe", e.args[0]) from None
    saved = validate_hparams(recipe, meta.get("hparams", {}), source)
    return _Checkpoint(ckpt, source), recipe, recipe.hparams(**saved)


class _Checkpoint(dict):
    """A checkpoint dict that remembers the file it came from (for error messages on resume)."""

    def __init__(self, ckpt, source):
        super().__init__(ckpt)
        self.source = source


def _build_model(recipe, hp, ckpt, source):
    """The recipe's model for ``hp``, built only if it is no larger than the weights the checkpoint
    holds (so crafted hyper-parameters cannot make us allocate gigabytes), with the checkpoint's
    parameter shapes checked against the model's."""
    from .._files import FileError
    from ..nn.parameter import ParameterBudgetExceeded, parameter_budget
    from ..train._schema import field_error
    stored = sum(int(np.prod(t.shape)) for t in ckpt["model"].values())
    budget = 8 * stored + (1 << 20)              # float64 at most, plus a little slack
    try:
        with parameter_budget(budget):
            model = recipe.build_model(hp)
    except ParameterBudgetExceeded as e:
        raise field_error(source, "meta.hparams", f"the hyper-parameters imply a model larger than the weights "
                          f"the file holds ({stored:,} values): {e}; refusing to build it") from None
    except MemoryError:
        raise
    except Exception as e:   # noqa: BLE001 - whatever the recipe's constructor raises on bad values
        raise field_error(source, "meta.hparams", f"recipe {recipe.name!r} cannot build a model from them "
                          f"({type(e).__name__}: {str(e)[:200]})") from None
    own = model.state_dict()
    for k, v in ckpt["model"].items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise field_error(source, f"model.{k}", f"has shape {tuple(v.shape)} but the hyper-parameters give "
                              f"{tuple(own[k].shape)}")
    missing, unexpected = sorted(set(own) - set(ckpt["model"])), sorted(set(ckpt["model"]) - set(own))
    if missing or unexpected:
        raise field_error(source, "model", f"does not fit recipe {recipe.name!r}'s model: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}")
    return model


def _resume_changes(name, saved, overrides, source):
    """The hyper-parameters to apply on resume: ``saved`` with --epochs/--lr/--batch-size applied;
    any other override that differs from ``saved`` raises ValueError."""
    hp = dict(saved)
    changes = {}
    refused = []
    for k, v in overrides.items():
        if v is None or (k in hp and hp[k] == v and type(hp[k]) is type(v)):
            continue
        if k not in hp:
            raise KeyError(f"recipe {name!r} has no hyper-parameter {k!r}; it has: {', '.join(sorted(hp))}")
        if k in RESUME_CHANGEABLE:
            if hp[k] != v:
                changes[k] = (hp[k], v)
            hp[k] = v
        elif hp[k] != v:
            refused.append(f"{k}={v!r} (the checkpoint has {hp[k]!r})")
    if refused:
        raise ValueError(f"cannot resume {source!r} with {', '.join(refused)}: a resumed run keeps the "
                         f"hyper-parameters it was started with, except {', '.join(RESUME_CHANGEABLE)}; "
                         "start a new run (without --resume) to change the others")
    return hp, changes


def _rescale_lr(optimizer, scheduler, factor):
    """Multiply every learning rate of the optimiser and the scheduler's schedule by ``factor``."""
    for group in optimizer.param_groups:
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):
            if isinstance(group.get(key), (int, float)) and not isinstance(group.get(key), bool):
                group[key] = group[key] * factor
    if scheduler is not None:
        for attr in ("base_lrs", "_last_lr", "min_lrs", "max_lrs"):
            v = getattr(scheduler, attr, None)
            if isinstance(v, list):
                setattr(scheduler, attr, [x * factor if isinstance(x, (int, float)) else x for x in v])
        if isinstance(getattr(scheduler, "eta_min", None), (int, float)):
            scheduler.eta_min = scheduler.eta_min * factor


def train_recipe(name, out=None, data=None, resume=None, verbose="auto", device=None, plots=True, distributed=False,
                 **overrides):
    """Train recipe ``name`` with ``overrides`` of its hyper-parameters, then evaluate it on its
    test set. Writes into ``out`` (default ``runs/<name>-<timestamp>``): ``checkpoint.npz``
    (updated every epoch; resumable), ``history.csv``, ``history.json``, ``loss.png``,
    ``accuracy.png``, ``lr.png`` and ``result.json`` (every file atomically; temporary files left
    there by a killed run are removed first). ``plots=False`` skips the PNGs.

    ``resume``: a checkpoint of this recipe to carry on from. Its hyper-parameters are reused;
    ``epochs`` (in all), ``lr`` (the schedule is rescaled to the new peak rate) and ``batch_size``
    may be changed, with a notice on stderr (the run is then no longer bit-identical to an
    uninterrupted one); a different value of any other hyper-parameter (``optimizer``, ``seed``,
    a ``--set`` of the model's size...) raises ValueError.

    ``distributed``: data-parallel training on the ranks of an MPI job (``deepgrad run -n 4 train
    RECIPE --distributed``; see ``recipes/_distributed.py``): ``batch_size`` is the global batch.

    Returns ``{"recipe", "hparams", "test", "history", "epochs", "wall_s", "out", "checkpoint",
    "plots", "resume_changes"}``.
    """
    from .. import random
    from ..io import atomic_write, remove_stale_tmp
    from ..train import CSVLogger, JSONLogger, ModelCheckpoint, PlotHistory, Trainer

    recipe = get_recipe(name)
    if device is not None:
        from .. import backend
        backend.module_for(device)        # no GPU or no CuPy: say so (and what to install) before any data is read
    rank, world = 0, 1
    if distributed:
        from . import _distributed
        if getattr(recipe, "custom_run", False):
            raise ValueError(f"recipe {recipe.name!r} runs several training phases and cannot train --distributed")
        rank, world = _distributed.start()
        if rank != 0:                          # one progress bar, one set of files: rank 0's
            verbose, plots = 0, False
    if getattr(recipe, "custom_run", False):
        return _train_custom(recipe, out, data, resume, verbose, device, plots, overrides)
    ckpt, changes = None, {}
    if resume is not None:
        source = _source(resume)
        ckpt, saved_recipe, saved_hp = _read_recipe_checkpoint(resume)
        if saved_recipe.name != name:
            raise ValueError(f"{source!r} is a checkpoint of recipe {saved_recipe.name!r}, not {name!r}")
        hp, changes = _resume_changes(name, saved_hp, overrides, source)
        for k, (old, new) in changes.items():
            print(f"deepgrad: resuming {source}: {k} changed from {old!r} to {new!r}"
                  + (" (the learning-rate schedule is rescaled)" if k == "lr" else "")
                  + ("" if k == "epochs" else "; the run will differ from an uninterrupted one"), file=sys.stderr)
        out = out or os.path.dirname(os.path.abspath(resume))
    else:
        hp = recipe.hparams(**overrides)
    out = out or _default_out(name)
    if distributed:
        out = _distributed.agree(out)
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        remove_stale_tmp(out, RUN_FILES)

    random.manual_seed(hp["seed"])
    splits = recipe.build_data(hp, data)
    train_loader, val_loader, test_loader = recipe.build_loaders(hp, splits)
    if ckpt is not None:
        model = _build_model(recipe, hp, ckpt, source)
    else:
        model = recipe.build_model(hp)
    if distributed:
        train_loader = _distributed.shard_loader(train_loader, hp, rank, world)
        model = _distributed.wrap_model(model)
    optimizer = recipe.build_optimizer(hp, model)
    sched = recipe.build_scheduler(hp, optimizer, len(train_loader))
    scheduler, interval = sched if sched is not None else (None, "epoch")
    checkpoint = os.path.join(out, CHECKPOINT_NAME)
    plotter = PlotHistory(out) if plots else None
    trainer = Trainer(model, recipe.build_loss(hp), optimizer, metrics=recipe.metrics, scheduler=scheduler,
                      scheduler_interval=interval, clip_grad_norm=hp.get("clip_grad_norm"), device=device,
                      verbose=verbose, meta={"recipe": name, "hparams": hp})
    callbacks = [CSVLogger(os.path.join(out, "history.csv")),
                 JSONLogger(os.path.join(out, "history.json"), extra={"recipe": name, "hparams": hp}),
                 ModelCheckpoint(checkpoint)] + ([plotter] if plotter else [])
    if rank != 0:
        callbacks = []
    if "lr" in changes:
        old_lr, new_lr = changes["lr"]
        # applied right after the checkpoint's optimiser and scheduler states are restored; appended
        # last so that the other callbacks keep the indices their saved states are filed under
        callbacks.append(_after_resume(lambda: _rescale_lr(optimizer, scheduler, new_lr / old_lr)))
    if distributed:
        callbacks.append(_distributed.set_epoch_callback(train_loader.sampler))
        trainer._reduce_epoch = _distributed.reduce_epoch
    t0 = time.perf_counter()
    trainer.fit(train_loader, epochs=hp["epochs"], val_loader=val_loader if val_loader is not None else test_loader,
                callbacks=callbacks, resume=ckpt if ckpt is not None else None)
    wall = time.perf_counter() - t0
    test = trainer.evaluate(test_loader) if test_loader is not None else {}
    result = {"recipe": name, "hparams": hp, "test": test, "epochs": trainer.epoch, "wall_s": wall,
              "out": out, "checkpoint": checkpoint, "plots": plotter.paths if plotter else [],
              "history": trainer.history.rows(),
              "resume_changes": {k: {"from": a, "to": b} for k, (a, b) in changes.items()}}
    from ..train.callbacks import json_safe
    text = json.dumps(json_safe({k: v for k, v in result.items() if k != "history"}), indent=1, allow_nan=False)
    if rank == 0:
        atomic_write(os.path.join(out, "result.json"), lambda f: f.write(text), mode="w")
    return result


def _train_custom(recipe, out, data, resume, verbose, device, plots, overrides):
    """A recipe with several phases (pre-training, fine-tuning, figures) runs its own ``run(hp,
    out, data, verbose, device, plots)``; it returns the result's ``test`` metrics and whatever
    else it wants recorded, and ``result.json`` is written here as for the other recipes."""
    from .. import random
    from ..io import atomic_write, remove_stale_tmp
    from ..train.callbacks import json_safe
    if resume is not None:
        raise ValueError(f"recipe {recipe.name!r} runs several training phases and cannot --resume; start it again")
    if device is not None and backend_device_type(device) != "cpu" and not getattr(recipe, "gpu_ready", False):
        raise NotImplementedError(
            f"recipe {recipe.name!r} trains on the CPU only: its phases (pre-training, sampling, "
            f"figures) compute with NumPy directly; run it without --device {device}")
    hp = recipe.hparams(**overrides)
    out = out or _default_out(recipe.name)
    os.makedirs(out, exist_ok=True)
    remove_stale_tmp(out, RUN_FILES)
    random.manual_seed(hp["seed"])
    t0 = time.perf_counter()
    got = recipe.run(hp, out, data=data, verbose=verbose, device=device, plots=plots)
    result = {"recipe": recipe.name, "hparams": hp, "test": {}, "epochs": hp.get("epochs"), "out": out,
              "checkpoint": None, "plots": [], "history": [], "resume_changes": {}, **got,
              "wall_s": time.perf_counter() - t0}
    text = json.dumps(json_safe({k: v for k, v in result.items() if k != "history"}), indent=1, allow_nan=False)
    atomic_write(os.path.join(out, "result.json"), lambda f: f.write(text), mode="w")
    rows = [r for r in result["history"] if isinstance(r, dict)]
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        lines = [",".join(keys)] + [",".join("" if r.get(k) is None else str(r.get(k)) for k in keys) for r in rows]
        atomic_write(os.path.join(out, "history.csv"), lambda f: f.write("\n".join(lines) + "\n"), mode="w")
    return result


def _after_resume(fn):
    """A callback that runs ``fn`` once, at the first epoch's start (after ``fit`` restored the
    checkpoint)."""
    from ..train.callbacks import Callback

    class AfterResume(Callback):
        done = False

        def on_epoch_begin(self, epoch, logs=None):
            if not self.done:
                self.done = True
                fn()

    return AfterResume()


def load_trained(path, device=None):
    """``(recipe, hparams, model)`` rebuilt from a checkpoint that records its recipe, with the
    checkpoint's weights loaded, in eval mode. Every field of the checkpoint is checked first, and
    the model is built only if its size fits the weights the file holds: a bad or crafted file
    raises :class:`deepgrad.FileError` naming the file and the field."""
    source = _source(path)
    ckpt, recipe, hp = _read_recipe_checkpoint(path)
    model = _build_model(recipe, hp, ckpt, source)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, ValueError) as e:
        from .._files import FileError
        raise FileError(source, f"its weights do not fit recipe {recipe.name!r}'s model: {e}") from e
    if device is not None:
        model.to(device)
    model.eval()
    return recipe, hp, model


def evaluate_checkpoint(path, data=None, batch_size=None, device=None):
    """Test-set loss and metrics of the model in checkpoint ``path``."""
    from ..train import evaluate
    recipe, hp, model = load_trained(path, device)
    if batch_size:
        hp = {**hp, "batch_size": batch_size}
    splits = recipe.build_data(hp, data)
    _, _, test_loader = recipe.build_loaders(hp, splits)
    if test_loader is None:
        raise ValueError(f"recipe {recipe.name!r} has no test set")
    return recipe, evaluate(model, test_loader, loss_fn=recipe.build_loss(hp), metrics=recipe.metrics,
                            device=device)


def read_input(path):
    """Pixels of a PNG/JPEG or the array in a ``.npy`` file, read safely (size caps before
    decoding, no pickle, FileError naming the file): see ``deepgrad.data._inputs``."""
    from ..data._inputs import read_input as _read
    return _read(path)


def predict_inputs(path, inputs, device=None, top=1):
    """For each input file, ``(file, [(class, probability), ...])`` with the ``top`` most likely
    classes under the model in checkpoint ``path``."""
    from ..autograd.grad_mode import no_grad
    recipe, hp, model = load_trained(path, device)
    results = []
    for f in inputs:
        x = recipe.preprocess(read_input(f))
        if device is not None:
            x = x.to(device)
        with no_grad():
            probs = model(x).softmax(-1).numpy()
        for row in probs.reshape(-1, probs.shape[-1]):
            order = np.argsort(-row)[:top]
            names = recipe.classes
            results.append((str(f), [(names[k] if names else int(k), float(row[k])) for k in order]))
    return results


def backend_device_type(device):
    from .. import backend
    return backend.device(device).type
