"""Named, reproducible training configurations: ``deepgrad train mnist-mlp``.

A recipe is a :class:`Recipe` subclass registered with :func:`register`, in one small module of
this package per family (``mnist.py``, ``toy.py``, ...); every module here is imported the first
time the registry is read, so adding a recipe is adding a file::

    from deepgrad.recipes import Recipe, register

    @register
    class LeNet5(Recipe):
        name = "mnist-lenet5"
        summary = "LeNet-5 on MNIST"
        reproduces = "LeCun et al. 1998: ~99% test accuracy"
        defaults = dict(epochs=10, batch_size=128, lr=1e-3, optimizer="adam")
        def build_model(self, hp): ...
        def build_data(self, hp, root=None): ...   # -> Splits(train, val, test) of Datasets

Everything else (optimiser from ``hp["optimizer"]``/``hp["lr"]``, cross-entropy, accuracy, data
loaders, checkpoints, logs, plots) has a default that a recipe overrides only when it must.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import NamedTuple

__all__ = ["Recipe", "Splits", "register", "get_recipe", "list_recipes", "RECIPES"]

RECIPES: dict = {}
_discovered = False

#: hyper-parameters every recipe has (the CLI's --epochs, --batch-size, --lr, --optimizer, --seed)
COMMON_DEFAULTS = dict(epochs=10, batch_size=64, lr=1e-3, optimizer="adam", seed=0, subset=None,
                       weight_decay=0.0)


class Splits(NamedTuple):
    """The datasets of a recipe; ``val`` may be None (then the test set is reported each epoch,
    for information only: no recipe selects anything on it)."""
    train: object
    val: object
    test: object


class Recipe:
    """Base class of recipes. Subclasses set ``name``, ``summary``, ``reproduces``, ``defaults``
    and implement ``build_model`` and ``build_data``."""

    name: str = ""
    summary: str = ""
    reproduces: str = ""
    #: hyper-parameters (merged over COMMON_DEFAULTS); the CLI overrides them
    defaults: dict = {}
    metrics = ("accuracy",)
    #: class names for ``deepgrad predict`` (index -> name); None prints the index
    classes = None
    #: the test metric this recipe is expected to reach with its defaults (for the README/tests)
    target = None

    def hparams(self, **overrides):
        """Defaults with ``overrides`` applied (``None`` values are ignored); unknown keys raise."""
        hp = {**COMMON_DEFAULTS, **self.defaults}
        for k, v in overrides.items():
            if v is None:
                continue
            if k not in hp:
                raise KeyError(f"recipe {self.name!r} has no hyper-parameter {k!r}; it has: {', '.join(sorted(hp))}")
            hp[k] = v
        return hp

    # ---- to implement ---------------------------------------------------------------------------
    def build_model(self, hp):
        raise NotImplementedError

    def build_data(self, hp, root=None):
        """Return :class:`Splits` of Datasets. ``root``: the ``--data`` folder (None: default)."""
        raise NotImplementedError

    # ---- defaults to override ---------------------------------------------------------------------
    def build_loss(self, hp):
        from .. import nn
        return nn.CrossEntropyLoss()

    def build_optimizer(self, hp, model):
        from ..train import get_optimizer
        kw = {"weight_decay": hp["weight_decay"]} if hp.get("weight_decay") else {}
        if hp["optimizer"].lower() == "sgd":
            kw["momentum"] = hp.get("momentum", 0.9)
        return get_optimizer(hp["optimizer"], model.parameters(), lr=hp["lr"], **kw)

    def build_scheduler(self, hp, optimizer, steps_per_epoch):
        """``(scheduler, interval)`` with interval ``"epoch"`` or ``"batch"``, or None."""
        return None

    def build_loaders(self, hp, splits):
        """``(train_loader, val_loader, test_loader)``; shuffling draws from a generator seeded by
        ``hp["seed"]`` so runs are reproducible."""
        from .. import random
        from ..data.dataloader import DataLoader
        gen = random.Generator().manual_seed(hp["seed"] + 1)
        bs = hp["batch_size"]
        train = DataLoader(splits.train, batch_size=bs, shuffle=True, generator=gen)
        evaluation = max(bs, 1000)
        val = DataLoader(splits.val, batch_size=evaluation) if splits.val is not None else None
        test = DataLoader(splits.test, batch_size=evaluation) if splits.test is not None else None
        return train, val, test

    def preprocess(self, array):
        """Turn one input read from a file (an image or .npy array) into a batch of model inputs."""
        from ..tensor import Tensor
        import numpy as np
        return Tensor._make(np.asarray(array, dtype=np.float32)[None])

    def __repr__(self):
        return f"<recipe {self.name}: {self.summary}>"


def register(cls):
    """Class decorator adding a recipe to the registry (names must be unique)."""
    if not cls.name:
        raise ValueError(f"recipe class {cls.__name__} has no name")
    if cls.name in RECIPES and type(RECIPES[cls.name]) is not cls:
        raise ValueError(f"a recipe named {cls.name!r} is already registered ({type(RECIPES[cls.name]).__name__})")
    RECIPES[cls.name] = cls()
    return cls


def _discover():
    global _discovered
    if _discovered:
        return
    _discovered = True
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def list_recipes():
    """All registered recipes, sorted by name."""
    _discover()
    return [RECIPES[k] for k in sorted(RECIPES)]


def get_recipe(name):
    """The recipe called ``name``; an unknown name raises a KeyError listing the known ones."""
    _discover()
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"unknown recipe {name!r}; known recipes: {', '.join(sorted(RECIPES))} "
                       "(see `deepgrad recipes`)") from None


from ._runner import train_recipe, load_trained, evaluate_checkpoint, predict_inputs  # noqa: E402

__all__ += ["train_recipe", "load_trained", "evaluate_checkpoint", "predict_inputs"]
