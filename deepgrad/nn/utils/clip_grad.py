"""Gradient clipping, in place on the ``.grad`` arrays (one pass per parameter, no graph)."""
from __future__ import annotations

import math

from ... import backend
from ...tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type``-norm of all ``tensors`` together (as if concatenated), a 0-d Tensor."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(0.0)
    arrays = [t.array for t in tensors]
    xp = backend.array_module(arrays[0])
    dt = arrays[0].dtype
    if norm_type == math.inf:
        total = max(float(xp.abs(a).max()) if a.size else 0.0 for a in arrays)
    elif norm_type == -math.inf:
        total = min(float(xp.abs(a).min()) for a in arrays if a.size)
    elif norm_type == 2.0:
        total = math.sqrt(sum(float(xp.vdot(a.ravel(), a.ravel()).real) for a in arrays))
    elif norm_type == 1.0:
        total = sum(float(xp.abs(a).sum()) for a in arrays)
    elif norm_type == 0.0:
        total = float(sum(int((a != 0).sum()) for a in arrays))
    else:
        total = sum(float((xp.abs(a.astype(xp.float64)) ** norm_type).sum()) for a in arrays) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot "
            f"be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            f"`error_if_nonfinite=False`")
    return Tensor._make(xp.asarray(total, dtype=dt))


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients in place by ``max_norm / (total_norm + 1e-6)`` when that is below 1."""
    grads = _grads(parameters)
    if not grads:
        return
    tn = float(total_norm.item() if isinstance(total_norm, Tensor) else total_norm)
    coef = float(max_norm) / (tn + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        for g in grads:
            g.array *= g.array.dtype.type(coef)
            g._version[0] += 1


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Rescale all gradients together so that their total ``norm_type``-norm is at most ``max_norm``.
    Returns the total norm before clipping (a 0-d Tensor)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    import warnings
    warnings.warn("clip_grad_norm is deprecated in favour of clip_grad_norm_", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        xp = backend.array_module(g.array)
        xp.clip(g.array, -clip_value, clip_value, out=g.array)
        g._version[0] += 1
