"""``Trainer`` and the Keras-like ``fit`` / ``evaluate`` / ``predict`` on top of the PyTorch-like core.

The loop is the one every PyTorch tutorial writes by hand, once::

    for x, y in train_loader:
        optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward()
        (clip gradients); optimizer.step(); (scheduler.step() per batch)

plus metrics averaged over the epoch, validation after each epoch, callbacks, and checkpoints
that make a resumed run end on exactly the weights of an uninterrupted one.

Resuming: a checkpoint is written at the end of an epoch and holds the model, optimiser and
scheduler states, the history, the callbacks' states and every random state the next epoch will
draw from (deepgrad's global generator, the DataLoaders' generators, NumPy's and Python's legacy
global states). ``fit(..., resume=path)`` restores them all and starts at the next epoch, so it
replays the same shuffles, augmentations and dropout masks. A run killed in the middle of an epoch
resumes from the last checkpoint and redoes that epoch from its start.
"""
from __future__ import annotations

import math
import os
import random as _pyrandom
import sys
import time

import numpy as np

from .. import backend, random as _random
from ..autograd.grad_mode import no_grad
from ..nn.utils import clip_grad_norm_, clip_grad_value_
from ..tensor import Tensor
from .callbacks import CallbackList, History, LearningRateScheduler, ProgressBar
from .metrics import get_metric

__all__ = ["Trainer", "fit", "evaluate", "predict", "get_optimizer", "get_loss",
           "load_checkpoint", "validate_checkpoint", "capture_rng_state", "restore_rng_state", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "deepgrad.checkpoint"
CHECKPOINT_VERSION = 1


# ---- helpers ----------------------------------------------------------------------------------
_LOSSES = {
    "cross_entropy": "CrossEntropyLoss", "crossentropy": "CrossEntropyLoss",
    "categorical_crossentropy": "CrossEntropyLoss", "sparse_categorical_crossentropy": "CrossEntropyLoss",
    "nll": "NLLLoss", "mse": "MSELoss", "mean_squared_error": "MSELoss", "l1": "L1Loss", "mae": "L1Loss",
    "bce": "BCELoss", "binary_crossentropy": "BCELoss", "bce_with_logits": "BCEWithLogitsLoss",
    "huber": "HuberLoss", "smooth_l1": "SmoothL1Loss",
}

_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adamax": "Adamax", "nadam": "NAdam",
               "adagrad": "Adagrad", "rmsprop": "RMSprop", "adadelta": "Adadelta"}


def get_loss(loss):
    """A loss module from a name (``"cross_entropy"``, ``"mse"``, ...) or the callable itself."""
    if callable(loss):
        return loss
    from .. import nn
    try:
        return getattr(nn, _LOSSES[str(loss).lower()])()
    except KeyError:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(sorted(_LOSSES))} "
                         "(or pass a callable loss_fn(output, target))") from None


def get_optimizer(optimizer, params, lr=None, **kwargs):
    """An optimiser from a name (``"adam"``, ``"sgd"``, ...; case-insensitive) and ``lr``, or the
    given ``Optimizer`` unchanged."""
    if not isinstance(optimizer, str):
        return optimizer
    from .. import optim
    try:
        cls = getattr(optim, _OPTIMIZERS[optimizer.lower()])
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(sorted(_OPTIMIZERS))}") from None
    if lr is not None:
        kwargs["lr"] = lr
    return cls(params, **kwargs)


def _to_tensor(x, device=None):
    if isinstance(x, Tensor):
        return x if device is None else x.to(device)
    if isinstance(x, (tuple, list)):
        return type(x)(_to_tensor(v, device) for v in x)
    if isinstance(x, dict):
        return {k: _to_tensor(v, device) for k, v in x.items()}
    if isinstance(x, np.ndarray) or backend.array_module(x) is not np:
        t = Tensor._make(x)
        return t if device is None else t.to(device)
    return x


def _split(batch):
    """``(inputs, target)`` of a batch: ``(x, y)``, ``[x, y]``, ``{"input"/"x": .., "target"/"y": ..}``,
    or a bare ``x`` (target None)."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 2:
            return batch[0], batch[1]
        if len(batch) == 1:
            return batch[0], None
        return tuple(batch[:-1]), batch[-1]
    if isinstance(batch, dict):
        x = next((batch[k] for k in ("input", "inputs", "x", "image", "data") if k in batch), None)
        y = next((batch[k] for k in ("target", "targets", "y", "label", "labels") if k in batch), None)
        if x is None:
            raise ValueError(f"cannot find the input in a batch dict with keys {sorted(batch)}")
        return x, y
    return batch, None


def _call(model, x):
    return model(*x) if isinstance(x, tuple) else model(x)


def _batch_len(x):
    while isinstance(x, (tuple, list)):
        x = x[0]
    if isinstance(x, dict):
        return _batch_len(next(iter(x.values())))
    return len(x)


def _unwrapped(model):
    """The model a checkpoint stores: DistributedDataParallel's wrapped module (so checkpoints
    move between runs on any number of ranks and runs in one process)."""
    return model.module if type(model).__name__ == "DistributedDataParallel" else model


# ---- random states ----------------------------------------------------------------------------
def _loader_generators(loader):
    """The distinct ``deepgrad.Generator``s a DataLoader draws from, by attribute path."""
    out, seen = {}, set()
    if loader is None:
        return out
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    for path, obj in (("generator", getattr(loader, "generator", None)),
                      ("sampler.generator", getattr(sampler, "generator", None)),
                      ("batch_sampler.sampler.generator",
                       getattr(getattr(batch_sampler, "sampler", None), "generator", None))):
        if obj is not None and hasattr(obj, "get_state") and id(obj) not in seen:
            seen.add(id(obj))
            out[path] = obj
    return out


def capture_rng_state(loaders=None):
    """Every random state a training epoch draws from, as data :func:`deepgrad.save` can store."""
    return {"deepgrad": _random.get_rng_state(), "numpy": np.random.get_state(),
            "python": _pyrandom.getstate(),
            "loaders": {name: {path: g.get_state() for path, g in _loader_generators(ld).items()}
                        for name, ld in (loaders or {}).items()}}


def restore_rng_state(state, loaders=None):
    _random.set_rng_state(state["deepgrad"])
    np.random.set_state(tuple(state["numpy"]))
    version, internal, gauss = state["python"]
    _pyrandom.setstate((version, tuple(internal), gauss))
    for name, ld in (loaders or {}).items():
        saved = state.get("loaders", {}).get(name, {})
        for path, g in _loader_generators(ld).items():
            if path in saved:
                g.set_state(saved[path])


def load_checkpoint(path):
    """Read a training checkpoint written by :meth:`Trainer.save_checkpoint` (or ``ModelCheckpoint``),
    checking every field's type and range before anything is built from it; problems raise
    :class:`deepgrad.FileError` naming the file and the field."""
    from ..io import load
    ckpt = load(path)
    return validate_checkpoint(ckpt, _source(path))


def _source(path):
    """How errors name a checkpoint: its path, a file object's name, or ``<file object>``."""
    if isinstance(path, (str, os.PathLike)):
        return os.fspath(path)
    name = getattr(path, "name", None)
    return name if isinstance(name, str) else "<file object>"


def validate_checkpoint(ckpt, source="checkpoint"):
    """Check the fields of a checkpoint dict (see :mod:`deepgrad.train._schema`)."""
    from ._schema import validate_checkpoint as check
    return check(ckpt, source, CHECKPOINT_FORMAT, tuple(range(1, CHECKPOINT_VERSION + 1)))


# ---- the trainer --------------------------------------------------------------------------------
class Trainer:
    """Train, evaluate and run any ``Module`` with any loss and optimiser.

    Args:
        model: the ``Module``.
        loss_fn: ``loss_fn(output, target) -> scalar Tensor`` (a loss module, or a name such as
            ``"cross_entropy"``); should average over the batch (``reduction="mean"``).
        optimizer: an ``Optimizer`` (or a name like ``"adam"``, built with ``lr``).
        metrics: names (``"accuracy"``, ``"top5_accuracy"``, ``"mae"`` ...) or callables
            ``fn(output, target) -> float``; logged as ``name`` and ``val_name``.
        scheduler: an lr scheduler, stepped per ``scheduler_interval`` (``"epoch"`` or
            ``"batch"``); ``ReduceLROnPlateau`` is stepped each epoch with ``scheduler_monitor``.
        clip_grad_norm / clip_grad_value: gradient clipping before each optimiser step.
        callbacks: extra callbacks, for every ``fit``.
        device: move each batch (and the model) there.
        verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch, ``"auto"`` 1 on a
            terminal and 2 otherwise.
        meta: JSON-able data stored in every checkpoint (e.g. the recipe and its hyper-parameters).
    """

    def __init__(self, model, loss_fn, optimizer=None, metrics=("accuracy",), scheduler=None,
                 scheduler_interval="epoch", scheduler_monitor="val_loss", clip_grad_norm=None,
                 clip_grad_value=None, callbacks=(), device=None, verbose="auto", lr=None, meta=None):
        self.model = model
        self.loss_fn = get_loss(loss_fn) if loss_fn is not None else None
        self.optimizer = None if optimizer is None else get_optimizer(optimizer, model.parameters(), lr)
        self.metrics = [get_metric(m) for m in (metrics or ())]
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.scheduler_monitor = scheduler_monitor
        self.clip_grad_norm = clip_grad_norm
        self.clip_grad_value = clip_grad_value
        self.callbacks = list(callbacks)
        self.device = device
        self.verbose = verbose
        self.meta = dict(meta or {})
        self.history = History()
        self.epoch = 0                 # epochs completed
        self.epochs = None
        self.stop_training = False
        self.steps_per_epoch = None
        self.samples_seen_epoch = 0
        self._loaders = {}
        self._callback_list = None
        self._reduce_epoch = None      # (sums, seen) -> the same over all ranks (distributed training)
        if device is not None:
            model.to(device)

    # ---- fit ------------------------------------------------------------------------------------
    def _make_callbacks(self, callbacks, verbose):
        cbs = list(self.callbacks) + list(callbacks or ())
        if self.scheduler is not None and not any(isinstance(c, LearningRateScheduler) for c in cbs):
            cbs.insert(0, LearningRateScheduler(self.scheduler, self.scheduler_interval, self.scheduler_monitor))
        if verbose == "auto":
            verbose = 1 if sys.stderr.isatty() else 2
        if verbose and not any(isinstance(c, ProgressBar) for c in cbs):
            cbs.insert(0, ProgressBar(verbose))
        return CallbackList(cbs, self)

    def fit(self, train_loader, epochs=1, val_loader=None, callbacks=None, resume=None, verbose=None):
        """Train until ``epochs`` epochs have been completed in all and return the :class:`History`.

        ``epochs`` counts every epoch this trainer has run (as Lightning's ``max_epochs``, or Keras'
        ``epochs`` with ``initial_epoch``): a second ``fit`` with a larger ``epochs`` continues, and
        ``resume`` (a checkpoint path) restarts right after the checkpoint's epoch with every state
        restored."""
        if self.optimizer is None or self.loss_fn is None:
            raise ValueError("Trainer.fit needs a loss_fn and an optimizer")
        self.epochs = int(epochs)
        self._loaders = {"train": train_loader, "val": val_loader}
        try:
            self.steps_per_epoch = len(train_loader)
        except TypeError:
            self.steps_per_epoch = None
        self.stop_training = False
        cbs = self._callback_list = self._make_callbacks(callbacks, self.verbose if verbose is None else verbose)
        self.history.params = {"epochs": self.epochs, "steps": self.steps_per_epoch}
        cbs.on_train_begin({})
        if resume is not None:
            self.load_checkpoint(resume)
        logs = {}
        for epoch in range(self.epoch, self.epochs):
            cbs.on_epoch_begin(epoch, {})
            lr = self.optimizer.param_groups[0]["lr"]
            logs = self._train_epoch(train_loader, cbs)
            if val_loader is not None:
                logs.update({"val_" + k: v for k, v in self.evaluate(val_loader, verbose=0).items()})
            logs["lr"] = float(lr)
            self.epoch = epoch + 1
            self.history.append(epoch, logs)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        return self.history

    def train_step(self, batch):
        """One optimisation step on ``batch``; returns ``(loss, output, target)``. Override it for
        custom steps (several losses, truncated BPTT, ...)."""
        x, y = _split(_to_tensor(batch, self.device))
        self.optimizer.zero_grad()
        out = _call(self.model, x)
        loss = self.loss_fn(out, y)
        loss.backward()
        if self.clip_grad_norm is not None:
            clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        if self.clip_grad_value is not None:
            clip_grad_value_(self.model.parameters(), self.clip_grad_value)
        self.optimizer.step()
        return loss, out, y

    def _train_epoch(self, loader, cbs):
        self.model.train()
        names = ["loss"] + [name for name, _ in self.metrics]
        sums = [0.0] * len(names)
        seen = 0
        self.samples_seen_epoch = 0
        for i, batch in enumerate(loader):
            cbs.on_train_batch_begin(i, {})
            loss, out, y = self.train_step(batch)
            n = _batch_len(y if y is not None else out)
            values = [float(loss.item())]
            if self.metrics:
                with no_grad():
                    values += [float(fn(out, y)) for _, fn in self.metrics]
            seen += n
            for k, v in enumerate(values):
                sums[k] += v * n
            self.samples_seen_epoch = seen
            cbs.on_train_batch_end(i, {"loss": values[0], "size": n, "samples": seen,
                                       "running": {nm: s / seen for nm, s in zip(names, sums)}})
            if self.stop_training:   # e.g. TerminateOnNaN; EarlyStopping acts at epoch ends
                break
        if self._reduce_epoch is not None:
            sums, seen = self._reduce_epoch(sums, seen)
        if seen == 0:
            raise ValueError("the training loader produced no batches")
        return {nm: s / seen for nm, s in zip(names, sums)}

    # ---- evaluate / predict ---------------------------------------------------------------------
    def evaluate(self, loader, verbose=0):
        """Mean loss and metrics over ``loader`` in eval mode without gradients:
        ``{"loss": ..., "accuracy": ...}``."""
        names = (["loss"] if self.loss_fn is not None else []) + [name for name, _ in self.metrics]
        sums = [0.0] * len(names)
        seen = 0
        was_training = self.model.training
        self.model.eval()
        bar = None
        if verbose == 1:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(loader) if hasattr(loader, "__len__") else None, desc="evaluate",
                       unit="batch", leave=False)
        try:
            with no_grad():
                for batch in loader:
                    x, y = _split(_to_tensor(batch, self.device))
                    out = _call(self.model, x)
                    n = _batch_len(y if y is not None else out)
                    values = ([float(self.loss_fn(out, y).item())] if self.loss_fn is not None else []) \
                        + [float(fn(out, y)) for _, fn in self.metrics]
                    seen += n
                    for k, v in enumerate(values):
                        sums[k] += v * n
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            self.model.train(was_training)
        if seen == 0:
            raise ValueError("evaluate: the loader produced no batches")
        return {nm: s / seen for nm, s in zip(names, sums)}

    def predict(self, data, batch_size=256):
        """The model's outputs for ``data`` (a Tensor/array of inputs, batched by ``batch_size``,
        or a loader whose batches are inputs or ``(inputs, target)``), concatenated, in eval mode
        without gradients."""
        return predict(self.model, data, batch_size=batch_size, device=self.device)

    # ---- checkpoints ----------------------------------------------------------------------------
    def _callback_states(self):
        cbs = self._callback_list.callbacks if self._callback_list is not None else self.callbacks
        return {f"{i}:{type(cb).__name__}": cb.state_dict() for i, cb in enumerate(cbs)
                if hasattr(cb, "state_dict")}

    def state_dict(self):
        """Everything a bit-exact resume needs, as data :func:`deepgrad.save` can store."""
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "epoch": self.epoch, "batch": 0,
            "model": _unwrapped(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": capture_rng_state(self._loaders),
            "history": self.history.state_dict(),
            "callbacks": self._callback_states(),
            "meta": self.meta,
            "time": time.time(),
        }

    def load_state_dict(self, ckpt, source="checkpoint"):
        """Restore :meth:`state_dict`. Everything is checked first (field types and ranges, the
        model's shapes, the optimiser's groups, the scheduler's and callbacks' states against the
        live objects' own); a mismatch raises :class:`deepgrad.FileError` naming ``source`` and the
        field, and leaves the trainer as it was as far as the model and optimiser are concerned."""
        from ._schema import conform, field_error
        from .._files import FileError
        validate_checkpoint(ckpt, source)
        own = _unwrapped(self.model).state_dict()
        for k, v in ckpt["model"].items():
            if k in own and tuple(own[k].shape) != tuple(v.shape):
                raise field_error(source, f"model.{k}", f"has shape {tuple(v.shape)}, the model's is {tuple(own[k].shape)}")
        missing, unexpected = sorted(set(own) - set(ckpt["model"])), sorted(set(ckpt["model"]) - set(own))
        if missing or unexpected:
            raise field_error(source, "model", f"does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        opt = ckpt.get("optimizer")
        if self.optimizer is not None and opt is not None:
            self._check_optimizer_state(opt, source)
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            conform(ckpt["scheduler"], self.scheduler.state_dict(), source, "scheduler")
        states = ckpt.get("callbacks", {})
        cbs = self._callback_list.callbacks if self._callback_list is not None else self.callbacks
        for i, cb in enumerate(cbs):
            key = f"{i}:{type(cb).__name__}"
            if hasattr(cb, "load_state_dict") and key in states:
                conform(states[key], cb.state_dict(), source, f"callbacks.{key}")
        try:
            _unwrapped(self.model).load_state_dict(ckpt["model"])
            if self.optimizer is not None and opt is not None:
                self.optimizer.load_state_dict(opt)
            if self.scheduler is not None and ckpt.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            self.history.load_state_dict(ckpt["history"])
            for i, cb in enumerate(cbs):
                key = f"{i}:{type(cb).__name__}"
                if hasattr(cb, "load_state_dict") and key in states:
                    cb.load_state_dict(states[key])
            self.epoch = int(ckpt["epoch"])
            restore_rng_state(ckpt["rng"], self._loaders)
        except FileError:
            raise
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
            raise FileError(source, f"cannot be restored into this trainer: {e}") from e

    def _check_optimizer_state(self, opt, source):
        from ._schema import field_error
        groups = self.optimizer.param_groups
        saved = opt["param_groups"]
        if len(saved) != len(groups) or any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved)):
            raise field_error(source, "optimizer.param_groups", "do not match the optimiser's parameter groups "
                              f"({[len(s['params']) for s in saved][:5]} parameters vs "
                              f"{[len(g['params']) for g in groups][:5]})")
        for g, s in zip(groups, saved):
            unknown = sorted(set(s) - set(g))
            if unknown:
                raise field_error(source, "optimizer.param_groups", f"has settings {unknown[:5]} that "
                                  f"{type(self.optimizer).__name__} does not have (another optimiser?)")
        shapes = {}
        for g, s in zip(groups, saved):
            for p, idx in zip(g["params"], s["params"]):
                shapes[idx] = tuple(p.shape)
        for idx, st in opt["state"].items():
            if idx not in shapes:
                raise field_error(source, f"optimizer.state[{idx}]", "refers to no parameter")
            for name, v in st.items():
                if isinstance(v, (Tensor, np.ndarray)) and int(np.prod(v.shape)) > 1 and tuple(v.shape) != shapes[idx]:
                    raise field_error(source, f"optimizer.state[{idx}].{name}", f"has shape {tuple(v.shape)}, "
                                      f"the parameter's is {shapes[idx]}")

    def save_checkpoint(self, path):
        """Write :meth:`state_dict` to ``path`` atomically."""
        from ..io import save
        save(self.state_dict(), path)

    def load_checkpoint(self, path):
        """Restore a checkpoint written by :meth:`save_checkpoint` (a path, or the dict
        :func:`load_checkpoint` returned); returns its dict."""
        ckpt = path if isinstance(path, dict) else load_checkpoint(path)
        source = (os.fspath(path) if isinstance(path, (str, os.PathLike))
                  else getattr(path, "source", None) or getattr(path, "name", None) or "checkpoint")
        self.load_state_dict(ckpt, source=source)
        return ckpt


# ---- functional API -------------------------------------------------------------------------------
def fit(model, loss_fn, optimizer, train_loader, epochs=1, val_loader=None, metrics=("accuracy",),
        callbacks=(), scheduler=None, scheduler_interval="epoch", clip_grad_norm=None,
        clip_grad_value=None, device=None, verbose="auto", resume=None, meta=None):
    """Train ``model`` (Keras' ``model.fit``): see :class:`Trainer`. Returns the :class:`History`
    (its ``trainer`` attribute is the :class:`Trainer` used)."""
    trainer = Trainer(model, loss_fn, optimizer, metrics=metrics, scheduler=scheduler,
                      scheduler_interval=scheduler_interval, clip_grad_norm=clip_grad_norm,
                      clip_grad_value=clip_grad_value, callbacks=callbacks, device=device,
                      verbose=verbose, meta=meta)
    history = trainer.fit(train_loader, epochs=epochs, val_loader=val_loader, resume=resume)
    history.trainer = trainer
    return history


def evaluate(model, loader, loss_fn=None, metrics=("accuracy",), device=None, verbose=0):
    """Mean loss (when ``loss_fn`` is given) and metrics of ``model`` over ``loader``."""
    return Trainer(model, loss_fn, None, metrics=metrics, device=device, verbose=0).evaluate(loader, verbose)


def predict(model, data, batch_size=256, device=None):
    """Outputs of ``model`` for ``data`` (see :meth:`Trainer.predict`) as one Tensor."""
    was_training = model.training
    model.eval()
    outs = []
    try:
        with no_grad():
            if isinstance(data, Tensor) or isinstance(data, np.ndarray) or backend.array_module(data) is not np:
                batches = (data[i:i + batch_size] for i in range(0, len(data), batch_size))
            else:
                batches = (_split(b)[0] for b in data)
            for x in batches:
                outs.append(_call(model, _to_tensor(x, device)).array)
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("predict: no inputs")
    xp = backend.array_module(outs[0])
    return Tensor._make(xp.concatenate(outs, axis=0))
