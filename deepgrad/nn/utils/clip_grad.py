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
    f64 = xp.float64
    # Array arithmetic only (no Python floats read from the data), so that a training step that
    # clips can be captured by deepgrad.compile; sums accumulate in float64.
    if norm_type == math.inf:
        parts = [xp.abs(a).max() for a in arrays if a.size]
        total = xp.stack(parts).max() if parts else xp.zeros((), dt)
    elif norm_type == -math.inf:
        total = xp.stack([xp.abs(a).min() for a in arrays if a.size]).min()
    elif norm_type == 2.0:
        total = xp.sqrt(sum(xp.vdot(a.ravel(), a.ravel()).real.astype(f64) for a in arrays))
    elif norm_type == 1.0:
        total = sum(xp.abs(a).sum().astype(f64) for a in arrays)
    elif norm_type == 0.0:
        total = sum((a != 0).sum() for a in arrays).astype(f64)
    else:
        total = sum((xp.abs(a.astype(f64)) ** norm_type).sum() for a in arrays) ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot "
            f"be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            f"`error_if_nonfinite=False`")
    return Tensor._make(xp.asarray(total).astype(dt))


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients in place by ``max_norm / (total_norm + 1e-6)`` when that is below 1."""
    grads = _grads(parameters)
    if not grads:
        return
    xp = backend.array_module(grads[0].array)
    tn = total_norm.array if isinstance(total_norm, Tensor) else xp.asarray(float(total_norm))
    # min(coef, 1) and always multiply, as PyTorch does: no branch on the data (a factor of 1 is
    # exact), so deepgrad.compile can capture it; a NaN norm gives NaN gradients
    coef = xp.minimum(float(max_norm) / (xp.asarray(tn).astype(xp.float64) + 1e-6), 1.0)
    for g in grads:
        g.array *= coef.astype(g.array.dtype)
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
