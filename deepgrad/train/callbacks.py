"""Callbacks for :class:`deepgrad.train.Trainer`, with Keras' hook names.

A callback overrides any of ``on_train_begin``, ``on_epoch_begin``, ``on_train_batch_begin``,
``on_train_batch_end``, ``on_epoch_end``, ``on_train_end`` (all take ``logs``, a dict). Through
``self.trainer`` it reaches the model, optimiser, history and ``trainer.stop_training``.

A callback whose behaviour depends on the past (``EarlyStopping``'s patience counter and best
weights, ``ModelCheckpoint``'s best value) has ``state_dict``/``load_state_dict``; the trainer stores
that state in its checkpoints so a resumed run carries on exactly where it stopped.

Epoch numbers given to the hooks count from 0, as in Keras; files and printouts count from 1.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time

import numpy as np

from .. import io as dgio

__all__ = ["Callback", "CallbackList", "History", "ProgressBar", "EarlyStopping", "ModelCheckpoint",
           "CSVLogger", "JSONLogger", "PlotHistory", "LearningRateScheduler", "TerminateOnNaN",
           "LambdaCallback"]


class Callback:
    """Base class: every hook does nothing."""

    trainer = None
    #: run ``on_epoch_end`` after every other callback (checkpoints must see the final state)
    runs_last = False

    def set_trainer(self, trainer):
        self.trainer = trainer

    @property
    def model(self):
        return self.trainer.model

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


class CallbackList:
    """Calls a hook on every callback; ``on_epoch_end`` runs the ``runs_last`` ones last."""

    def __init__(self, callbacks, trainer):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_trainer(trainer)
        # per-batch hooks cost time on every step: call only the callbacks that define them
        self._batch_begin = [cb for cb in self.callbacks if _overrides(cb, "on_train_batch_begin")]
        self._batch_end = [cb for cb in self.callbacks if _overrides(cb, "on_train_batch_end")]

    def __iter__(self):
        return iter(self.callbacks)

    def on_train_begin(self, logs):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs):
        for cb in sorted(self.callbacks, key=lambda c: c.runs_last):
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs):
        for cb in self._batch_begin:
            cb.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs):
        for cb in self._batch_end:
            cb.on_train_batch_end(batch, logs)


def _overrides(cb, hook):
    return hook in vars(cb) or getattr(type(cb), hook) is not getattr(Callback, hook)


def _better(mode, min_delta=0.0):
    """``is_better(current, best)`` for mode ``"min"``/``"max"``."""
    if mode == "min":
        return lambda a, b: a < b - min_delta
    return lambda a, b: a > b + min_delta


def _resolve_mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor.lower()
        return "max" if any(k in name for k in ("acc", "auc", "precision", "recall", "f1")) else "min"
    return mode


def _monitored(logs, monitor, who):
    if monitor not in logs:
        raise KeyError(f"{who}: monitored quantity {monitor!r} is not in the logs; available: "
                       f"{', '.join(sorted(logs))}")
    return float(logs[monitor])


# ---- history ------------------------------------------------------------------------------------
class History:
    """The per-epoch logs of a run: ``history.history["val_loss"]`` is a list, one value per epoch;
    ``history.epoch`` the epochs (from 0). ``history["loss"]`` is a shortcut."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.params = {}

    def append(self, epoch, logs):
        n = len(self.epoch)
        self.epoch.append(int(epoch))
        for k, v in logs.items():
            self.history.setdefault(k, [None] * n).append(v)
        for k, col in self.history.items():
            if len(col) < n + 1:
                col.append(None)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epoch)

    def last(self, key, default=None):
        col = self.history.get(key)
        return col[-1] if col else default

    def rows(self):
        """One dict per epoch, ``{"epoch": 1, "loss": ..., ...}`` (epochs from 1)."""
        return [{"epoch": e + 1, **{k: v[i] for k, v in self.history.items()}} for i, e in enumerate(self.epoch)]

    def state_dict(self):
        return {"history": {k: list(v) for k, v in self.history.items()}, "epoch": list(self.epoch)}

    def load_state_dict(self, state):
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.epoch = list(state["epoch"])

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


# ---- progress bar ---------------------------------------------------------------------------------
def _fmt(logs, keys=None):
    parts = []
    for k, v in logs.items():
        if keys is not None and k not in keys:
            continue
        if isinstance(v, float):
            parts.append(f"{k}={v:.3g}" if k == "lr" else f"{k}={v:.4f}")
        elif isinstance(v, (int, np.integer)):
            parts.append(f"{k}={v}")
    return " ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar per epoch showing the running loss, metrics and samples/second (``verbose=1``),
    or one printed line per epoch (``verbose=2``). tqdm is imported only when a bar is drawn."""

    def __init__(self, verbose=1, file=None):
        self.verbose = verbose
        self.file = file
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._t0 = self._t_train = time.perf_counter()
        self._last = 0.0
        if self.verbose == 1:
            from tqdm.auto import tqdm
            total = self.trainer.steps_per_epoch
            epochs = self.trainer.epochs
            self._bar = tqdm(total=total, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                             file=self.file or sys.stderr, leave=True, dynamic_ncols=True)

    def on_train_batch_end(self, batch, logs=None):
        self._t_train = now = time.perf_counter()
        if self._bar is None:
            return
        self._bar.update(1)
        if now - self._last > 0.25:   # formatting every batch would cost more than the update
            self._last = now
            rate = logs["samples"] / max(now - self._t0, 1e-9)
            self._bar.set_postfix_str(f"{_fmt(logs['running'])} {rate:,.0f} samples/s", refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        rate = self.trainer.samples_seen_epoch / max(self._t_train - self._t0, 1e-9)  # training only
        text = f"{_fmt(logs)} {rate:,.0f} samples/s"
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose:
            print(f"Epoch {epoch + 1}/{self.trainer.epochs} {elapsed:.1f}s {text}",
                  file=self.file or sys.stdout, flush=True)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# ---- early stopping -------------------------------------------------------------------------------
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` (the default here, unlike Keras) the model gets back the weights
    of its best epoch when training ends, whether it stopped early or ran out of epochs.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", baseline=None,
                 restore_best_weights=True, start_from_epoch=0, verbose=0):
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.mode = _resolve_mode(mode, monitor)
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.verbose = verbose
        self._is_better = _better(self.mode, self.min_delta)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = None
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if self._is_better(current, self.best) and (
                self.baseline is None or self._is_better(current, self.baseline)):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.array.copy() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping ({self.monitor} best {self.best:.4f} "
                      f"at epoch {self.best_epoch + 1 if self.best_epoch is not None else '-'})")

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None \
                and self.best_epoch != self.trainer.history.epoch[-1]:
            from ..tensor import Tensor
            self.model.load_state_dict({k: Tensor._make(v) for k, v in self.best_weights.items()})
            if self.verbose:
                print(f"Restored the weights of epoch {self.best_epoch + 1}")

    def state_dict(self):
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best": self.best,
                "best_epoch": self.best_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best, self.best_epoch, self.best_weights = state["best"], state["best_epoch"], state["best_weights"]


# ---- checkpoints ----------------------------------------------------------------------------------
def _remove_stale_tmp(path):
    """Remove the temporary files a killed earlier run left beside ``path`` (not for templates)."""
    if "{" not in path:
        dgio.remove_stale_tmp(os.path.dirname(os.path.abspath(path)), {os.path.basename(path)})


class ModelCheckpoint(Callback):
    """Save a checkpoint at the end of every ``every_n_epochs``-th epoch.

    ``filepath`` may hold ``str.format`` fields: ``{epoch}`` (from 1) and any log key, e.g.
    ``"ckpt-{epoch:03d}-{val_accuracy:.4f}.npz"``. A full checkpoint (default) holds everything a
    bit-exact resume needs (model, optimiser, scheduler, RNG states, epoch, history, callback
    states); ``save_weights_only`` writes the model's ``state_dict`` alone. With
    ``save_best_only`` only epochs that improve ``monitor`` are saved. Files are written
    atomically (:func:`deepgrad.save`).
    """

    runs_last = True

    def __init__(self, filepath, monitor="val_loss", mode="auto", save_best_only=False,
                 save_weights_only=False, every_n_epochs=1, verbose=0):
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.mode = _resolve_mode(mode, monitor)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.every_n_epochs = every_n_epochs
        self.verbose = verbose
        self._is_better = _better(self.mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.last_saved = None

    def on_train_begin(self, logs=None):
        _remove_stale_tmp(self.filepath)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self._is_better(current, self.best):
                return
            self.best = current
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_weights_only:
            dgio.save(self.model.state_dict(), path)
        else:
            self.trainer.save_checkpoint(path)
        self.last_saved = path
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved {path}")

    def state_dict(self):
        return {"best": self.best, "last_saved": self.last_saved}

    def load_state_dict(self, state):
        self.best, self.last_saved = state["best"], state["last_saved"]


# ---- logs ---------------------------------------------------------------------------------------
class CSVLogger(Callback):
    """Write the history, one row per epoch, to a CSV file after every epoch. The whole file is
    rewritten (atomically) from the trainer's history, so a resumed run keeps the earlier rows."""

    def __init__(self, filename, separator=","):
        self.filename = os.fspath(filename)
        self.separator = separator

    def on_train_begin(self, logs=None):
        _remove_stale_tmp(self.filename)

    def on_epoch_end(self, epoch, logs=None):
        rows = self.trainer.history.rows()
        keys = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, delimiter=self.separator, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        dgio.atomic_write(self.filename, lambda f: f.write(buf.getvalue()), mode="w")


def json_safe(obj):
    """``obj`` with NaN/inf floats as None (``null``) and NumPy scalars and arrays as Python values,
    so that ``json.dumps(..., allow_nan=False)`` writes valid JSON."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        obj = obj.tolist()
        if isinstance(obj, list):
            return json_safe(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class JSONLogger(Callback):
    """Write the history as JSON (``{"epochs": [{"epoch": 1, "loss": ...}, ...], ...}``) after
    every epoch, atomically; a NaN or infinite value is written as ``null`` (valid JSON)."""

    def __init__(self, filename, extra=None):
        self.filename = os.fspath(filename)
        self.extra = extra or {}

    def on_train_begin(self, logs=None):
        _remove_stale_tmp(self.filename)

    def on_epoch_end(self, epoch, logs=None):
        doc = {**self.extra, "epochs": self.trainer.history.rows()}
        text = json.dumps(json_safe(doc), indent=1, allow_nan=False, default=float)
        dgio.atomic_write(self.filename, lambda f: f.write(text), mode="w")


class PlotHistory(Callback):
    """Save loss and metric curves (train and validation) as PNG files in ``dirpath`` at the end of
    training, and also after every epoch with ``every_epoch=True`` (drawing costs ~0.2 s a plot)."""

    def __init__(self, dirpath, every_epoch=False):
        self.dirpath = os.fspath(dirpath)
        self.every_epoch = every_epoch
        self.paths = []

    def on_epoch_end(self, epoch, logs=None):
        if self.every_epoch:
            self._plot()

    def on_train_end(self, logs=None):
        if len(self.trainer.history):
            self._plot()

    def _plot(self):
        from .plots import plot_history
        self.paths = plot_history(self.trainer.history, self.dirpath)


# ---- learning rate ---------------------------------------------------------------------------------
class LearningRateScheduler(Callback):
    """Step a ``deepgrad.optim.lr_scheduler`` scheduler after every epoch (``interval="epoch"``)
    or every batch (``"batch"``). ``ReduceLROnPlateau`` is stepped once per epoch with the logged
    value of ``monitor``. (``fit(scheduler=...)`` adds one of these for you.)"""

    def __init__(self, scheduler, interval="epoch", monitor="val_loss"):
        if interval not in ("epoch", "batch"):
            raise ValueError(f"interval must be 'epoch' or 'batch', got {interval!r}")
        self.scheduler = scheduler
        self.monitor = monitor
        self.plateau = type(scheduler).__name__ == "ReduceLROnPlateau"
        self.interval = "epoch" if self.plateau else interval

    def on_train_batch_end(self, batch, logs=None):
        if self.interval == "batch":
            self.scheduler.step()

    def on_epoch_end(self, epoch, logs=None):
        if self.interval != "epoch":
            return
        if self.plateau:
            monitor = self.monitor if self.monitor in logs else "loss"
            self.scheduler.step(_monitored(logs, monitor, "ReduceLROnPlateau"))
        else:
            self.scheduler.step()


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        if not math.isfinite(logs["loss"]):
            print(f"Batch {batch}: invalid loss {logs['loss']}, terminating training")
            self.trainer.stop_training = True


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_train_begin=None, on_train_end=None, on_epoch_begin=None, on_epoch_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None):
        for name, fn in list(locals().items()):
            if name.startswith("on_") and fn is not None:
                setattr(self, name, fn)
