"""Small helpers shared by the op files: argument normalisation and broadcasting reduction."""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor


def as_tensor_like(x, ref: Tensor) -> Tensor:
    """``x`` as a Tensor on ``ref``'s device. A Python scalar takes ``ref``'s dtype when that
    keeps its kind (PyTorch's rule: ``float32_tensor * 2.5`` stays float32), else the default
    float dtype for a float scalar with an integer tensor."""
    if isinstance(x, Tensor):
        return x
    xp = backend.array_module(ref.array)
    if isinstance(x, bool):
        dt = ref.dtype if ref.dtype.kind != "b" else np.dtype(np.bool_)
    elif isinstance(x, numbers.Integral):
        dt = ref.dtype if ref.dtype.kind in "fiu" else np.dtype(np.int64)
    elif isinstance(x, numbers.Real):
        dt = ref.dtype if ref.dtype.kind in "fV" else backend.get_default_dtype()
    else:
        a = xp.asarray(x)
        if a.dtype == np.float64 and not isinstance(x, np.ndarray):
            a = a.astype(backend.get_default_dtype())
        return Tensor._make(a)
    return Tensor._make(xp.asarray(x, dtype=dt))


def promote(a, b, opname):
    """Two operands as Tensors of one result dtype (PyTorch's promotion between tensor kinds)."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"{opname}: expected at least one Tensor argument")
        a = as_tensor_like(a, b)
    elif not isinstance(b, Tensor):
        b = as_tensor_like(b, a)
    da, db = a.array.dtype, b.array.dtype
    if da is not db and da != db:
        ka, kb = da.kind, db.kind
        if ka in "fV" and kb not in "fV":      # V: bfloat16
            b = b.to(da)
        elif kb in "fV" and ka not in "fV":
            a = a.to(db)
        else:
            dt = _promote_types(da, db)
            a, b = a.to(dt), b.to(dt)
    return a, b


def _promote_types(da, db):
    """NumPy's promotion, plus PyTorch's float16 with bfloat16 -> float32 (no common type in NumPy)."""
    try:
        return np.promote_types(da, db)
    except TypeError:
        if backend.is_floating(da) and backend.is_floating(db):
            return np.dtype(np.float32)
        raise


def check_broadcast(opname, sa, sb):
    """Raise a clear error naming the op and both shapes when they do not broadcast."""
    for x, y in zip(reversed(sa), reversed(sb)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"{opname}: shapes {tuple(sa)} and {tuple(sb)} are not broadcastable")


class IndexOutOfRangeError(IndexError, RuntimeError):
    """An index or range out of bounds where PyTorch raises RuntimeError (gather, scatter,
    narrow) while deepgrad's older callers expect IndexError: it is both."""


def wrap_dim(dim, ndim, opname="op"):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{opname}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim


def norm_dims(dim, ndim, opname="op"):
    """``dim`` (None, an int, or a sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        return (wrap_dim(int(dim), ndim, opname),)
    dims = tuple(sorted(wrap_dim(int(d), ndim, opname) for d in dim))
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"{opname}: dim {tuple(dim)} appears multiple times in the list of dims")
    return dims


def reduced_axes(in_shape, out_shape):
    """The axes to sum over to bring a gradient of broadcast shape ``in_shape`` back to ``out_shape``."""
    lead = len(in_shape) - len(out_shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(out_shape) if s == 1 and in_shape[i + lead] != 1)
    return lead, axes


def sum_to_array(a, shape):
    """Sum a raw array down to ``shape`` (the reverse of broadcasting)."""
    if a.shape == shape:
        return a
    lead, axes = reduced_axes(a.shape, shape)
    if axes:
        a = a.sum(axis=axes, keepdims=True)
    if lead:
        a = a.reshape(shape)
    return a


def check_float(t: Tensor, opname: str):
    if t.array.dtype.kind not in "fV":
        raise TypeError(f"{opname}: expected a floating point tensor, got dtype {t.dtype}")


def shape_arg(shape):
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)
