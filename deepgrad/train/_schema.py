"""Checking a training checkpoint's content before anything is built from it.

:func:`deepgrad.load` guarantees that a file is intact and decodes to plain data; this module checks
that the data is a *checkpoint*: each field of the right type, length and range (``epoch`` a
non-negative int, ``model`` a dict of Tensors, RNG states that NumPy/Python will accept, a
history whose columns match its epochs, finite learning rates, ...) and, for recipe checkpoints,
hyper-parameters of the recipe's own types within bounds. Every problem is a
:class:`deepgrad.FileError` naming the file and the field.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._files import FileError
from ..tensor import Tensor

__all__ = ["validate_checkpoint", "validate_hparams", "field_error", "conform"]

_MAX_EPOCH = 10 ** 9
_MAX_INT_HPARAM = 2 ** 31 - 1


def field_error(source, field, message):
    return FileError(source, f"checkpoint field {field!r}: {message}")


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _is_str(v, expected):
    """``v`` is the string ``expected`` (no ``==`` on a Tensor or array from the file)."""
    return isinstance(v, str) and v == expected


def _short(v):
    text = " ".join(repr(v).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _generator_state(st, source, field):
    if not isinstance(st, dict) or not _is_str(st.get("bit_generator"), "PCG64"):
        raise field_error(source, field, "not a PCG64 generator state")
    inner = st.get("state")
    if not isinstance(inner, dict):
        raise field_error(source, field + ".state", "not a dict")
    for key in ("state", "inc"):
        v = inner.get(key)
        if not (isinstance(v, str) and 0 < len(v) <= 40 and v.isdigit()) or int(v) >= 1 << 128:
            raise field_error(source, f"{field}.state.{key}", f"not a 128-bit integer: {_short(v)}")
    if inner.keys() != {"state", "inc"}:
        raise field_error(source, field + ".state", f"unexpected keys {sorted(inner)[:5]}")
    if not (_is_int(st.get("has_uint32")) and st.get("has_uint32") in (0, 1)):
        raise field_error(source, field + ".has_uint32", f"not 0 or 1: {_short(st.get('has_uint32'))}")
    u = st.get("uinteger")
    if not _is_int(u) or not 0 <= u < 1 << 32:
        raise field_error(source, field + ".uinteger", f"not a 32-bit unsigned int: {_short(u)}")
    if "seed" in st and st["seed"] is not None and not _is_int(st["seed"]):
        raise field_error(source, field + ".seed", f"not an int: {_short(st['seed'])}")


def _rng(rng, source):
    if not isinstance(rng, dict):
        raise field_error(source, "rng", f"not a dict but {type(rng).__name__}")
    for key in ("deepgrad", "numpy", "python"):
        if key not in rng:
            raise field_error(source, "rng", f"has no {key!r} state")
    _generator_state(rng["deepgrad"], source, "rng.deepgrad")
    npst = rng["numpy"]
    if not isinstance(npst, (list, tuple)) or len(npst) != 5:
        raise field_error(source, "rng.numpy", "not a 5-item MT19937 state")
    name, keys, pos, has_gauss, gauss = npst
    if not _is_str(name, "MT19937"):
        raise field_error(source, "rng.numpy", f"not an MT19937 state ({_short(name)})")
    if not isinstance(keys, np.ndarray) or keys.shape != (624,) or keys.dtype.kind not in "iu":
        raise field_error(source, "rng.numpy", "its key is not 624 integers")
    if not (_is_int(pos) and 0 <= pos <= 624 and _is_int(has_gauss) and has_gauss in (0, 1) and _is_number(gauss)):
        raise field_error(source, "rng.numpy", "has an invalid position or Gaussian cache")
    pyst = rng["python"]
    if not isinstance(pyst, (list, tuple)) or len(pyst) != 3:
        raise field_error(source, "rng.python", "not a 3-item random.getstate()")
    version, internal, pgauss = pyst
    if not (_is_int(version) and version == 3):
        raise field_error(source, "rng.python", f"unknown version {_short(version)}")
    if not isinstance(internal, (list, tuple)) or len(internal) != 625 or not all(
            _is_int(v) and 0 <= v < 1 << 32 for v in internal) or not internal[-1] <= 624:
        raise field_error(source, "rng.python", "its internal state is not 625 32-bit integers")
    if pgauss is not None and not _is_number(pgauss):
        raise field_error(source, "rng.python", "its Gaussian cache is not a number")
    loaders = rng.get("loaders", {})
    if not isinstance(loaders, dict):
        raise field_error(source, "rng.loaders", "not a dict")
    for name, gens in loaders.items():
        if not isinstance(gens, dict):
            raise field_error(source, f"rng.loaders.{name}", "not a dict")
        for path, st in gens.items():
            _generator_state(st, source, f"rng.loaders.{name}.{path}")


def _history(h, source, epoch):
    if not isinstance(h, dict) or not isinstance(h.get("history"), dict) or not isinstance(h.get("epoch"), list):
        raise field_error(source, "history", "not {'history': {column: [values]}, 'epoch': [ints]}"
                          f" but {_short(h)}")
    epochs = h["epoch"]
    if not all(_is_int(e) and 0 <= e < _MAX_EPOCH for e in epochs):
        raise field_error(source, "history.epoch", "not a list of non-negative ints")
    for k, col in h["history"].items():
        if not isinstance(k, str) or not isinstance(col, list) or len(col) != len(epochs):
            raise field_error(source, f"history.history.{k}", f"not a list of {len(epochs)} values (one per epoch)")
        if not all(v is None or _is_number(v) for v in col):
            raise field_error(source, f"history.history.{k}", "holds values that are not numbers")
    if len(epochs) > epoch:
        raise field_error(source, "history", f"records {len(epochs)} epochs but the checkpoint is at epoch {epoch}")


def _optimizer(opt, source):
    if opt is None:
        return
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) or not isinstance(opt.get("param_groups"), list):
        raise field_error(source, "optimizer", "not {'state': {...}, 'param_groups': [...]}")
    for i, g in enumerate(opt["param_groups"]):
        if not isinstance(g, dict):
            raise field_error(source, f"optimizer.param_groups[{i}]", "not a dict")
        params = g.get("params")
        if not isinstance(params, list) or not all(_is_int(p) and 0 <= p < 1 << 31 for p in params):
            raise field_error(source, f"optimizer.param_groups[{i}].params", "not a list of parameter indices")
        lr = g.get("lr")
        if not _is_number(lr) or not math.isfinite(lr):    # (a one-cycle schedule run past its end goes negative)
            raise field_error(source, f"optimizer.param_groups[{i}].lr", f"not a finite number: {_short(lr)}")
        for k, v in g.items():
            if _is_number(v) and not math.isfinite(v):
                raise field_error(source, f"optimizer.param_groups[{i}].{k}", f"not finite: {v}")
    for k, st in opt["state"].items():
        if not _is_int(k) or not isinstance(st, dict):
            raise field_error(source, f"optimizer.state[{_short(k)}]", "not a per-parameter dict")
        for name, v in st.items():
            if not (v is None or isinstance(v, (Tensor, np.ndarray, str, bool)) or _is_number(v)):
                raise field_error(source, f"optimizer.state[{k}].{name}", f"unexpected {type(v).__name__}")


def validate_checkpoint(ckpt, source, format_name, known_versions):
    """Check the fields every training checkpoint has; raise :class:`FileError` naming the field."""
    try:
        return _validate_checkpoint(ckpt, source, format_name, known_versions)
    except FileError:
        raise
    except Exception as e:   # noqa: BLE001 - a check tripped over a value of an unexpected type
        raise FileError(source, f"is not a valid training checkpoint ({type(e).__name__}: {str(e)[:200]})") from None


def _validate_checkpoint(ckpt, source, format_name, known_versions):
    if not isinstance(ckpt, dict) or not _is_str(ckpt.get("format"), format_name):
        raise FileError(source, "is not a deepgrad training checkpoint (a weights-only file? load it with "
                                "model.load_state_dict(deepgrad.load(path)))")
    version = ckpt.get("version")
    if not _is_int(version) or version not in known_versions:
        raise field_error(source, "version", f"{_short(version)} is not a checkpoint version this deepgrad "
                                             f"knows ({', '.join(map(str, known_versions))}; a newer deepgrad?)")
    epoch = ckpt.get("epoch")
    if not _is_int(epoch) or not 0 <= epoch < _MAX_EPOCH:
        raise field_error(source, "epoch", f"not a non-negative int: {_short(epoch)}")
    if "batch" in ckpt and (not _is_int(ckpt["batch"]) or ckpt["batch"] < 0):
        raise field_error(source, "batch", f"not a non-negative int: {_short(ckpt['batch'])}")
    model = ckpt.get("model")
    if not isinstance(model, dict) or not model:
        raise field_error(source, "model", f"not a dict of tensors but {type(model).__name__}")
    for k, v in model.items():
        if not isinstance(k, str) or not isinstance(v, Tensor):
            raise field_error(source, f"model.{k}", f"not a named tensor but {type(v).__name__}")
        if v.dtype.kind not in "biufc":
            raise field_error(source, f"model.{k}", f"has dtype {v.dtype}")
    _optimizer(ckpt.get("optimizer"), source)
    if ckpt.get("scheduler") is not None and not isinstance(ckpt["scheduler"], dict):
        raise field_error(source, "scheduler", f"not a dict but {type(ckpt['scheduler']).__name__}")
    _rng(ckpt.get("rng"), source)
    _history(ckpt.get("history"), source, epoch)
    callbacks = ckpt.get("callbacks", {})
    if not isinstance(callbacks, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                                   for k, v in callbacks.items()):
        raise field_error(source, "callbacks", "not a dict of per-callback state dicts")
    meta = ckpt.get("meta", {})
    if not isinstance(meta, dict):
        raise field_error(source, "meta", f"not a dict but {type(meta).__name__}")
    if "time" in ckpt and not (_is_number(ckpt["time"]) and math.isfinite(ckpt["time"])):
        raise field_error(source, "time", f"not a finite number: {_short(ckpt['time'])}")
    return ckpt


def conform(saved, reference, source, field):
    """Check that ``saved`` (from a file) has the structure of ``reference`` (the live object's own
    ``state_dict()``): the same keys, numbers where numbers are, lists of the same length...
    Used for scheduler and callback states, which are restored by assigning attributes."""
    if isinstance(reference, dict):
        if not isinstance(saved, dict) or set(saved) != set(reference):
            raise field_error(source, field, f"expected keys {sorted(map(str, reference))[:8]}, got "
                                             f"{sorted(map(str, saved))[:8] if isinstance(saved, dict) else type(saved).__name__}")
        for k in reference:
            conform(saved[k], reference[k], source, f"{field}.{k}")
    elif isinstance(reference, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(reference):
            raise field_error(source, field, f"expected {len(reference)} items, got {_short(saved)}")
        for i, (s, r) in enumerate(zip(saved, reference)):
            conform(s, r, source, f"{field}[{i}]")
    elif isinstance(reference, (bool, np.bool_)):
        if not isinstance(saved, (bool, np.bool_)):
            raise field_error(source, field, f"expected a bool, got {_short(saved)}")
    elif _is_number(reference):
        if not _is_number(saved) or (_is_int(reference) and not _is_int(saved)):
            raise field_error(source, field, f"expected {'an int' if _is_int(reference) else 'a number'}, "
                                             f"got {_short(saved)}")
    elif isinstance(reference, str):
        if not isinstance(saved, str):
            raise field_error(source, field, f"expected a string, got {_short(saved)}")
    elif isinstance(reference, (Tensor, np.ndarray)):
        if not isinstance(saved, (Tensor, np.ndarray)) or tuple(saved.shape) != tuple(reference.shape):
            raise field_error(source, field, f"expected an array of shape {tuple(reference.shape)}")
    # None or other reference values: the saved value may be anything (e.g. best_weights, None at first)


_NONE_OK = {"clip_grad_norm"}
_SEEDS = {"seed", "data_seed"}


def validate_hparams(recipe, hp, source):
    """Check a recipe checkpoint's ``meta.hparams`` against the recipe's defaults: only known keys,
    each value of its default's type, ints within bounds, floats finite, a known optimizer."""
    try:
        return _validate_hparams(recipe, hp, source)
    except FileError:
        raise
    except Exception as e:   # noqa: BLE001
        raise field_error(source, "meta.hparams", f"invalid ({type(e).__name__}: {str(e)[:200]})") from None


def _validate_hparams(recipe, hp, source):
    from ..recipes import COMMON_DEFAULTS
    from .trainer import _OPTIMIZERS
    if not isinstance(hp, dict):
        raise field_error(source, "meta.hparams", f"not a dict but {type(hp).__name__}")
    defaults = {**COMMON_DEFAULTS, **recipe.defaults}
    for key, v in hp.items():
        field = f"meta.hparams.{key}"
        if key not in defaults:
            raise field_error(source, field, f"recipe {recipe.name!r} has no hyper-parameter {key!r}")
        d = defaults[key]
        if v is None:
            if d is None or key in _NONE_OK:
                continue
            raise field_error(source, field, "is null")
        if isinstance(d, bool) or (d is None and isinstance(v, bool)):
            if not (isinstance(v, bool) or (_is_int(v) and v in (0, 1))):
                raise field_error(source, field, f"expected a bool, got {_short(v)}")
        elif isinstance(d, int) or (d is None and _is_int(v)):
            if isinstance(v, float) and math.isfinite(v) and v.is_integer():
                v = hp[key] = int(v)  # e.g. --set depth=20.0
            if not _is_int(v):
                raise field_error(source, field, f"expected an int, got {_short(v)}")
            low, high = (-(1 << 63), (1 << 63) - 1) if key in _SEEDS else (0, _MAX_INT_HPARAM)
            if not low <= v <= high:
                raise field_error(source, field, f"{v} is out of range [{low}, {high}]")
        elif isinstance(d, float):
            if not _is_number(v) or not math.isfinite(v):
                raise field_error(source, field, f"expected a finite number, got {_short(v)}")
        elif isinstance(d, str) or (d is None and isinstance(v, str)):
            if not isinstance(v, str) or len(v) > (1 << 20 if d is None else 200):
                raise field_error(source, field, f"expected a string, got {_short(v)}")
        elif d is None and isinstance(v, list):
            if not all(isinstance(x, str) for x in v) and not all(_is_int(x) and x >= 0 for x in v):
                raise field_error(source, field, "expected a list of strings or of non-negative ints")
        else:
            raise field_error(source, field, f"unexpected value {_short(v)}")
    opt = hp.get("optimizer", defaults.get("optimizer"))
    if isinstance(opt, str) and opt.lower() not in _OPTIMIZERS:
        raise field_error(source, "meta.hparams.optimizer", f"unknown optimizer {opt!r}")
    return hp
