"""Run a recipe end to end, and rebuild a trained model from its checkpoint (the CLI's engine).

>>> from deepgrad.recipes import train_recipe                              # doctest: +SKIP
>>> result = train_recipe("xor-mlp", out="runs/xor", verbose=0)
>>> result["test"]["accuracy"]
1.0
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from . import get_recipe

__all__ = ["train_recipe", "load_trained", "evaluate_checkpoint", "predict_inputs", "read_input"]

CHECKPOINT_NAME = "checkpoint.npz"


def _default_out(name):
    return os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def train_recipe(name, out=None, data=None, resume=None, verbose="auto", device=None, plots=True, **overrides):
    """Train recipe ``name`` with ``overrides`` of its hyper-parameters, then evaluate it on its
    test set. Writes into ``out`` (default ``runs/<name>-<timestamp>``): ``checkpoint.npz``
    (updated every epoch; resumable), ``history.csv``, ``history.json``, ``loss.png``,
    ``accuracy.png``, ``lr.png`` and ``result.json``. ``resume``: a checkpoint of this recipe to
    carry on from (its hyper-parameters are reused; ``epochs`` may be raised). ``plots=False``
    skips the PNGs.

    Returns ``{"recipe", "hparams", "test", "history", "epochs", "wall_s", "out", "checkpoint",
    "plots"}``.
    """
    from .. import random
    from ..train import CSVLogger, JSONLogger, ModelCheckpoint, PlotHistory, Trainer, load_checkpoint

    recipe = get_recipe(name)
    if resume is not None:
        ckpt = load_checkpoint(resume)
        meta = ckpt.get("meta") or {}
        if meta.get("recipe") != name:
            raise ValueError(f"{str(resume)!r} is a checkpoint of recipe {meta.get('recipe')!r}, not {name!r}")
        hp = recipe.hparams(**{**meta.get("hparams", {}), **{k: v for k, v in overrides.items() if k == "epochs"}})
        out = out or os.path.dirname(os.path.abspath(resume))
    else:
        hp = recipe.hparams(**overrides)
    out = out or _default_out(name)
    os.makedirs(out, exist_ok=True)

    random.manual_seed(hp["seed"])
    splits = recipe.build_data(hp, data)
    train_loader, val_loader, test_loader = recipe.build_loaders(hp, splits)
    model = recipe.build_model(hp)
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
    t0 = time.perf_counter()
    trainer.fit(train_loader, epochs=hp["epochs"], val_loader=val_loader if val_loader is not None else test_loader,
                callbacks=callbacks, resume=resume)
    wall = time.perf_counter() - t0
    test = trainer.evaluate(test_loader) if test_loader is not None else {}
    result = {"recipe": name, "hparams": hp, "test": test, "epochs": trainer.epoch, "wall_s": wall,
              "out": out, "checkpoint": checkpoint, "plots": plotter.paths if plotter else [],
              "history": trainer.history.rows()}
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({k: v for k, v in result.items() if k != "history"}, f, indent=1)
    return result


def load_trained(path, device=None):
    """``(recipe, hparams, model)`` rebuilt from a checkpoint that records its recipe, with the
    checkpoint's weights loaded, in eval mode."""
    from ..train import load_checkpoint
    ckpt = load_checkpoint(path)
    meta = ckpt.get("meta") or {}
    if "recipe" not in meta:
        raise ValueError(f"{str(path)!r} does not record the recipe it was trained with; rebuild the model "
                         "yourself and use model.load_state_dict(deepgrad.load(path)['model'])")
    recipe = get_recipe(meta["recipe"])
    hp = recipe.hparams(**meta.get("hparams", {}))
    model = recipe.build_model(hp)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise RuntimeError(f"{str(path)!r}: its weights do not fit recipe {recipe.name!r}'s model: {e}") from e
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
