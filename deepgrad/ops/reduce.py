"""Reductions and their relatives: sum/mean/var/std, max/min/amax/amin/argmax/argmin, logsumexp,
softmax/log_softmax, prod, cumsum, norm, all/any, sort/argsort/topk.

Forward passes work on raw arrays with one NumPy/CuPy call where possible. Backward formulas are
written with deepgrad ops on Tensors (so they are differentiable again); a reduction's gradient is
the upstream gradient reshaped to the kept-dims shape and broadcast back (no loops, no copies).

Note: this module defines ``sum``, ``max``, ``min``, ``all`` and ``any``; Python's built-ins of
those names are reached through ``builtins`` here.
"""
from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..tensor import Tensor
from ._util import wrap_dim
from .elementwise import Convert, Maximum, Minimum, exp, pow_scalar, promote, where

__all__ = ["sum", "mean", "var", "std", "var_mean", "std_mean", "max", "min", "amax", "amin",
           "argmax", "argmin", "logsumexp", "softmax", "log_softmax", "prod", "cumsum", "norm",
           "all", "any", "sort", "argsort", "topk", "return_types"]

_INT64 = np.dtype(np.int64)
_ALL_AXES = tuple(tuple(range(n)) for n in range(8))


class return_types:  # noqa: N801  (mirrors torch.return_types)
    max = namedtuple("max", ["values", "indices"])
    min = namedtuple("min", ["values", "indices"])
    sort = namedtuple("sort", ["values", "indices"])
    topk = namedtuple("topk", ["values", "indices"])


# ---------------------------------------------------------------------------------------------
# Argument helpers
# ---------------------------------------------------------------------------------------------

def _check_tensor(x, opname):
    if not isinstance(x, Tensor):
        raise TypeError(f"{opname}: expected a Tensor as input, got {type(x).__name__}")


def _axes(x, dim, opname, empty_is_all=True):
    """``dim`` (None, an int, or a sequence of ints) as a sorted tuple of non-negative axes of the
    raw array ``x``. A 0-d array accepts dim 0/-1 and reduces over no axis."""
    nd = x.ndim
    if dim is None:
        return _ALL_AXES[nd] if nd < 8 else tuple(range(nd))
    if type(dim) is int and -nd <= dim < nd:
        return (dim + nd if dim < 0 else dim,)
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool):
        d = wrap_dim(int(dim), nd, opname)
        return (d,) if nd else ()
    if isinstance(dim, (tuple, list)):
        if not dim and empty_is_all:
            return tuple(range(nd))
        out = []
        for d in dim:
            if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
                raise TypeError(f"{opname}: dim must be an int or a tuple of ints, got {dim!r}")
            out.append(wrap_dim(int(d), nd, opname))
        axes = tuple(sorted(out))
        if len(set(axes)) != len(axes):
            raise RuntimeError(f"{opname}: dim {tuple(dim)} appears multiple times in the list of dims")
        return axes if nd else ()
    raise TypeError(f"{opname}: dim must be an int or a tuple of ints, got {type(dim).__name__}")


def _one_dim(x, dim, opname):
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{opname}: dim must be an int, got {dim!r}")
    return wrap_dim(int(dim), x.ndim, opname)


def _kept(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _count(shape, axes):
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _check_nonempty(x, axes, opname):
    for a in axes:
        if x.shape[a] == 0:
            raise IndexError(f"{opname}: cannot reduce over dimension {a} of size 0 of a tensor of "
                             f"shape {tuple(x.shape)} (the operation has no identity)")
    if not axes and x.size == 0:
        raise RuntimeError(f"{opname}: cannot reduce an empty tensor of shape {tuple(x.shape)}")


def _check_float(t, opname):
    if t.array.dtype.kind != "f":
        raise TypeError(f"{opname}: expected a floating point tensor, got dtype {t.dtype} "
                        f"(shape {tuple(t.shape)})")


def _float_or_default(t):
    return t if t.array.dtype.kind == "f" else t.to(backend.get_default_dtype())


# ---------------------------------------------------------------------------------------------
# Private differentiable helpers (reshape, last-two-dims transpose, gather/scatter along an axis)
# ---------------------------------------------------------------------------------------------

class _Reshape(Function):
    def forward(self, x, shape=None):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return _reshape(g, self.in_shape)


def _reshape(x, shape):
    if x.array.shape == shape:
        return x
    return _Reshape.apply(x, shape=shape)


class _SwapLast(Function):
    def forward(self, x):
        return x.swapaxes(-1, -2)

    def backward(self, g):
        return _SwapLast.apply(g)


class _Unreduce(Function):
    """The adjoint of a sum over ``axes``: ``g`` reshaped to the kept-dims shape and broadcast
    (a view, no copy) to ``shape``. Its own backward is that sum."""
    is_view = True

    def forward(self, g, axes=None, keepdim=False, shape=None):
        self.axes, self.keepdim = axes, keepdim
        if not keepdim:
            g = g.reshape(_kept(shape, axes))
        return backend.array_module(g).broadcast_to(g, shape)

    def backward(self, gg):
        return Sum.apply(gg, axes=self.axes, keepdim=self.keepdim)


def _expand_back(g, in_shape, axes, keepdim):
    """The gradient of a reduction over ``axes``: ``g`` broadcast back to ``in_shape``."""
    if g.array.shape == in_shape:
        return g
    return _Unreduce.apply(g, axes=axes, keepdim=keepdim, shape=in_shape)


class _TakeAlong(Function):
    """``take_along_axis``; indices are unique along ``axis`` (a permutation or a selection)."""

    def forward(self, x, idx=None, axis=None):
        self.idx, self.axis, self.in_shape = idx, axis, x.shape
        return backend.array_module(x).take_along_axis(x, idx, axis)

    def backward(self, g):
        return _PutAlong.apply(g, idx=self.idx, axis=self.axis, shape=self.in_shape)


class _PutAlong(Function):
    """Zeros of ``shape`` with ``g`` written at ``idx`` along ``axis`` (the adjoint of _TakeAlong)."""

    def forward(self, g, idx=None, axis=None, shape=None):
        self.idx, self.axis = idx, axis
        xp = backend.array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        xp.put_along_axis(out, idx, g, axis)
        return out

    def backward(self, gg):
        return _TakeAlong.apply(gg, idx=self.idx, axis=self.axis)


# ---------------------------------------------------------------------------------------------
# sum, mean, var, std
# ---------------------------------------------------------------------------------------------

class Sum(Function):
    def forward(self, x, axes=None, keepdim=False, dtype=None):
        self.in_shape, self.axes, self.keepdim, self.in_dtype = x.shape, axes, keepdim, x.dtype
        return x.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    def backward(self, g):
        if g.array.dtype != self.in_dtype:
            g = Convert.apply(g, dtype=self.in_dtype)
        return _expand_back(g, self.in_shape, self.axes, self.keepdim)


def sum(input, dim=None, keepdim=False, dtype=None):
    _check_tensor(input, "sum")
    x = input.array
    if dtype is not None:
        dtype = backend.as_dtype(dtype)
    elif x.dtype.kind in "biu":
        dtype = _INT64
    return Sum.apply(input, axes=_axes(x, dim, "sum"), keepdim=bool(keepdim), dtype=dtype)


class Mean(Function):
    def forward(self, x, axes=None, keepdim=False):
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        n = _count(x.shape, axes)
        self.scale = 1.0 / n if n else math.nan
        s = x.sum(axis=axes, keepdims=keepdim)
        return s / n if n else s * self.scale

    def backward(self, g):
        return _expand_back(g * self.scale, self.in_shape, self.axes, self.keepdim)


def mean(input, dim=None, keepdim=False, dtype=None):
    _check_tensor(input, "mean")
    if dtype is not None:
        input = input.to(backend.as_dtype(dtype))
    if input.array.dtype.kind != "f":
        raise TypeError(f"mean(): could not infer output dtype. Input dtype must be a floating point "
                        f"dtype, got {input.dtype} (pass dtype= or convert the input)")
    return Mean.apply(input, axes=_axes(input.array, dim, "mean"), keepdim=bool(keepdim))


def _var_correction(unbiased, correction, opname):
    if correction is not None:
        if unbiased is not None:
            raise TypeError(f"{opname}: pass either unbiased or correction, not both")
        return correction
    return 0 if unbiased is False else 1


def _var_forward(x, axes, keepdim, correction):
    """The variance of raw ``x`` over ``axes`` and the scale 2 / dof of its gradient."""
    n = _count(x.shape, axes)
    dof = builtins.max(0, n - correction)
    if dof:
        d = x - x.sum(axis=axes, keepdims=True) / n
        return (d * d).sum(axis=axes, keepdims=keepdim) / dof, 2.0 / dof
    with np.errstate(divide="ignore", invalid="ignore"):  # nan/inf like PyTorch
        s = x.sum(axis=axes, keepdims=True)
        d = x - (s / n if n else s * math.nan)
        return (d * d).sum(axis=axes, keepdims=keepdim) / dof, math.inf


class Var(Function):
    def forward(self, x, axes=None, keepdim=False, correction=1):
        self.save_for_backward(self.inputs[0])
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        out, self.scale = _var_forward(x, axes, keepdim, correction)
        return out

    def backward(self, g):
        (x,) = self.saved_tensors
        centered = x - Mean.apply(x, axes=self.axes, keepdim=True)
        return _expand_back(g * self.scale, self.in_shape, self.axes, self.keepdim) * centered


class Std(Function):
    save_output = True

    def forward(self, x, axes=None, keepdim=False, correction=1):
        self.save_for_backward(self.inputs[0])
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        v, self.scale = _var_forward(x, axes, keepdim, correction)
        return backend.array_module(x).sqrt(v)

    def backward(self, g):
        (x,) = self.saved_tensors
        out = self.output()
        zero = out.array == 0
        if zero.any():  # PyTorch: the gradient is 0 where the std is 0
            z = Tensor._make(zero)
            out = where(z, Tensor._make(np.ones((), out.array.dtype)), out)
            gv = where(z, Tensor._make(np.zeros((), g.array.dtype)), g / (out * 2.0))
        else:
            gv = g / (out * 2.0)
        centered = x - Mean.apply(x, axes=self.axes, keepdim=True)
        return _expand_back(gv * self.scale, self.in_shape, self.axes, self.keepdim) * centered


def _var_args(input, dim, unbiased, keepdim, correction, opname):
    _check_tensor(input, opname)
    _check_float(input, opname)
    if isinstance(dim, bool):  # var(x, True): the legacy unbiased positional
        dim, unbiased = None, dim
    c = _var_correction(unbiased, correction, opname)
    return dict(axes=_axes(input.array, dim, opname), keepdim=bool(keepdim), correction=c)


def var(input, dim=None, unbiased=None, keepdim=False, correction=None):
    return Var.apply(input, **_var_args(input, dim, unbiased, keepdim, correction, "var"))


def std(input, dim=None, unbiased=None, keepdim=False, correction=None):
    return Std.apply(input, **_var_args(input, dim, unbiased, keepdim, correction, "std"))


def var_mean(input, dim=None, unbiased=None, keepdim=False, correction=None):
    return var(input, dim, unbiased, keepdim, correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, correction=None):
    return std(input, dim, unbiased, keepdim, correction), mean(input, dim, keepdim)


# ---------------------------------------------------------------------------------------------
# max, min, amax, amin, argmax, argmin
# ---------------------------------------------------------------------------------------------

class _Amax(Function):
    """amax/amin over ``axes``; the gradient is split evenly among tied extrema (as PyTorch)."""
    pick_max = True
    save_output = True

    def forward(self, x, axes=None, keepdim=False):
        self.save_for_backward(self.inputs[0])
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        out = x.max(axis=axes, keepdims=keepdim) if self.pick_max else x.min(axis=axes, keepdims=keepdim)
        return out

    def backward(self, g):
        (x,) = self.saved_tensors
        xa = x.array
        out = self.output().array
        if not self.keepdim:
            out = out.reshape(_kept(self.in_shape, self.axes))
        mask = (xa == out).astype(xa.dtype)
        w = mask / mask.sum(axis=self.axes, keepdims=True)
        return _expand_back(g, self.in_shape, self.axes, self.keepdim) * Tensor._make(w)


class Amax(_Amax):
    pick_max = True


class Amin(_Amax):
    pick_max = False


def _amax(cls, input, dim, keepdim, opname):
    _check_tensor(input, opname)
    axes = _axes(input.array, dim, opname)
    _check_nonempty(input.array, axes, opname)
    return cls.apply(input, axes=axes, keepdim=bool(keepdim))


def amax(input, dim=(), keepdim=False):
    return _amax(Amax, input, dim, keepdim, "amax")


def amin(input, dim=(), keepdim=False):
    return _amax(Amin, input, dim, keepdim, "amin")


class _MaxDim(Function):
    """max/min along one dim: (values, indices); the gradient goes to the returned index."""
    pick_max = True

    def forward(self, x, dim=0, keepdim=False):
        xp = backend.array_module(x)
        self.in_shape, self.dim, self.keepdim = x.shape, dim, keepdim
        if x.ndim == 0:
            self.idx = None
            return x.copy(), xp.zeros((), dtype=_INT64)
        idx = (x.argmax if self.pick_max else x.argmin)(axis=dim, keepdims=True)
        vals = (x.max if self.pick_max else x.min)(axis=dim, keepdims=keepdim)
        self.idx = idx
        if not keepdim:
            idx = idx.reshape(vals.shape)
        return vals, idx.astype(_INT64, copy=False)

    def backward(self, g, _gi=None):
        if g is None:
            return None
        if self.idx is None:
            return g
        if not self.keepdim:
            g = _reshape(g, _kept(self.in_shape, (self.dim,)))
        return _PutAlong.apply(g, idx=self.idx, axis=self.dim, shape=self.in_shape)


class MaxDim(_MaxDim):
    pick_max = True


class MinDim(_MaxDim):
    pick_max = False


def _max_min(input, dim, keepdim, other, is_max):
    opname = "max" if is_max else "min"
    _check_tensor(input, opname)
    if isinstance(dim, Tensor) or other is not None:  # max(a, b): the elementwise maximum
        a, b = promote(input, dim if other is None else other, "maximum" if is_max else "minimum")
        return (Maximum if is_max else Minimum).apply(a, b)
    if dim is None:
        if keepdim:
            raise TypeError(f"{opname}: keepdim=True needs a dim")
        x = input.array
        _check_nonempty(x, tuple(range(x.ndim)), opname)
        return (Amax if is_max else Amin).apply(input, axes=tuple(range(x.ndim)), keepdim=False)
    d = _one_dim(input.array, dim, opname)
    if input.array.ndim and input.array.shape[d] == 0:
        raise IndexError(f"{opname}: cannot reduce over dimension {d} of size 0 of a tensor of "
                         f"shape {tuple(input.shape)}")
    vals, idx = (MaxDim if is_max else MinDim).apply(input, dim=d, keepdim=bool(keepdim))
    return (return_types.max if is_max else return_types.min)(vals, idx)


def max(input, dim=None, keepdim=False, *, other=None):
    """``max(x)`` the largest value; ``max(x, dim)`` (values, indices); ``max(a, b)`` = maximum."""
    return _max_min(input, dim, keepdim, other, True)


def min(input, dim=None, keepdim=False, *, other=None):
    """``min(x)`` the smallest value; ``min(x, dim)`` (values, indices); ``min(a, b)`` = minimum."""
    return _max_min(input, dim, keepdim, other, False)


def _arg(input, dim, keepdim, is_max):
    opname = "argmax" if is_max else "argmin"
    _check_tensor(input, opname)
    x = input.array
    xp = backend.array_module(x)
    f = x.argmax if is_max else x.argmin
    if dim is None:
        _check_nonempty(x, tuple(range(x.ndim)), opname)
        out = xp.asarray(f(), dtype=_INT64)
        return Tensor._make(out.reshape((1,) * x.ndim) if keepdim else out)
    d = _one_dim(x, dim, opname)
    if x.ndim == 0:
        return Tensor._make(xp.zeros((), dtype=_INT64))
    _check_nonempty(x, (d,), opname)
    return Tensor._make(f(axis=d, keepdims=bool(keepdim)).astype(_INT64, copy=False))


def argmax(input, dim=None, keepdim=False):
    return _arg(input, dim, keepdim, True)


def argmin(input, dim=None, keepdim=False):
    return _arg(input, dim, keepdim, False)


# ---------------------------------------------------------------------------------------------
# logsumexp, softmax, log_softmax
# ---------------------------------------------------------------------------------------------

class LogSumExp(Function):
    save_output = True

    def forward(self, x, axes=None, keepdim=False):
        self.save_for_backward(self.inputs[0])
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        xp = backend.array_module(x)
        if x.size == 0:
            s = xp.full(_kept(x.shape, axes) if keepdim else
                        tuple(s for i, s in enumerate(x.shape) if i not in axes), -math.inf, x.dtype)
            return s
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros((), x.dtype))
        s = xp.exp(x - m).sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            out = xp.log(s) + m
        return out if keepdim else out.reshape(tuple(s for i, s in enumerate(x.shape) if i not in axes))

    def backward(self, g):
        (x,) = self.saved_tensors
        out = self.output()
        if not self.keepdim:
            out = _reshape(out, _kept(self.in_shape, self.axes))
        return _expand_back(g, self.in_shape, self.axes, self.keepdim) * exp(x - out)


def logsumexp(input, dim=None, keepdim=False):
    _check_tensor(input, "logsumexp")
    input = _float_or_default(input)
    return LogSumExp.apply(input, axes=_axes(input.array, dim, "logsumexp"), keepdim=bool(keepdim))


class Softmax(Function):
    save_output = True

    def forward(self, x, dim=-1):
        self.dim = dim
        if x.size == 0:
            return x.copy()
        xp = backend.array_module(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        return e

    def backward(self, g):
        y = self.output()
        gy = g * y
        return gy - y * Sum.apply(gy, axes=(self.dim,), keepdim=True)


class LogSoftmax(Function):
    save_output = True

    def forward(self, x, dim=-1):
        self.dim = dim
        if x.size == 0:
            return x.copy()
        xp = backend.array_module(x)
        z = x - x.max(axis=dim, keepdims=True)
        z -= xp.log(xp.exp(z).sum(axis=dim, keepdims=True))
        return z

    def backward(self, g):
        y = self.output()
        return g - exp(y) * Sum.apply(g, axes=(self.dim,), keepdim=True)


def _softmax_args(input, dim, dtype, opname):
    _check_tensor(input, opname)
    if dim is None:
        raise TypeError(f"{opname}: dim must be given (an int)")
    if dtype is not None:
        input = input.to(backend.as_dtype(dtype))
    input = _float_or_default(input)
    d = _one_dim(input.array, dim, opname)
    return input, (d if input.array.ndim else ())


def softmax(input, dim=None, dtype=None):
    input, d = _softmax_args(input, dim, dtype, "softmax")
    if d == ():
        return exp(input - input)  # softmax of a 0-d tensor is 1 (gradient 0)
    return Softmax.apply(input, dim=d)


def log_softmax(input, dim=None, dtype=None):
    input, d = _softmax_args(input, dim, dtype, "log_softmax")
    if d == ():
        return input - input
    return LogSoftmax.apply(input, dim=d)


# ---------------------------------------------------------------------------------------------
# prod, cumsum
# ---------------------------------------------------------------------------------------------

def _exclusive_prod(x, axes):
    """For each element, the product of the other elements of its reduction group (exact with
    zeros: no division)."""
    xp = backend.array_module(x)
    k = len(axes)
    dest = tuple(range(x.ndim - k, x.ndim))
    moved = xp.moveaxis(x, axes, dest)
    flat = moved.reshape(moved.shape[:x.ndim - k] + (-1,))
    ones = xp.ones(flat.shape[:-1] + (1,), dtype=x.dtype)
    left = xp.concatenate([ones, xp.cumprod(flat[..., :-1], axis=-1)], axis=-1)
    right = xp.concatenate([xp.cumprod(flat[..., :0:-1], axis=-1)[..., ::-1], ones], axis=-1)
    return xp.moveaxis((left * right).reshape(moved.shape), dest, axes)


class Prod(Function):
    save_output = True

    def forward(self, x, axes=None, keepdim=False, dtype=None):
        self.save_for_backward(self.inputs[0])
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.has_zero = self._record and bool((x == 0).any())
        return x.prod(axis=axes, keepdims=keepdim, dtype=dtype)

    def backward(self, g):
        (x,) = self.saved_tensors
        gk = _expand_back(g, self.in_shape, self.axes, self.keepdim)
        if self.has_zero or not self.axes:
            # NOTE: exact first derivative where inputs are zero; the weights are constants, so
            # a second derivative taken through this branch misses their dependence on x.
            if not self.axes:
                return gk
            return gk * Tensor._make(_exclusive_prod(x.array, self.axes))
        out = self.output()
        if not self.keepdim:
            out = _reshape(out, _kept(self.in_shape, self.axes))
        return gk * (out / x)


def prod(input, dim=None, keepdim=False, dtype=None):
    _check_tensor(input, "prod")
    x = input.array
    if dtype is not None:
        dtype = backend.as_dtype(dtype)
        if dtype != x.dtype and dtype.kind == "f":
            input, dtype = input.to(dtype), None
    elif x.dtype.kind in "biu":
        dtype = _INT64
    return Prod.apply(input, axes=_axes(input.array, dim, "prod", empty_is_all=False),
                      keepdim=bool(keepdim), dtype=dtype)


class Cumsum(Function):
    def forward(self, x, dim=0, reverse=False, dtype=None):
        self.dim, self.reverse = dim, reverse
        if x.ndim == 0:
            return x.astype(dtype) if dtype is not None else x.copy()
        if reverse:
            idx = (slice(None),) * dim + (slice(None, None, -1),)
            return x[idx].cumsum(axis=dim, dtype=dtype)[idx]
        return x.cumsum(axis=dim, dtype=dtype)

    def backward(self, g):
        return Cumsum.apply(g, dim=self.dim, reverse=not self.reverse)


def cumsum(input, dim, dtype=None):
    _check_tensor(input, "cumsum")
    x = input.array
    if dtype is not None:
        dtype = backend.as_dtype(dtype)
        if dtype.kind == "f":
            input, dtype = input.to(dtype), None
    elif x.dtype.kind in "biu":
        dtype = _INT64
    return Cumsum.apply(input, dim=_one_dim(x, dim, "cumsum"), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# norm
# ---------------------------------------------------------------------------------------------

class Norm(Function):
    """Vector p-norm over ``axes`` (p = 2, 1, inf, -inf, 0 or any other number)."""
    save_output = True

    def forward(self, x, p=2.0, axes=None, keepdim=False):
        self.save_for_backward(self.inputs[0])
        self.p, self.in_shape, self.axes, self.keepdim = p, x.shape, axes, keepdim
        xp = backend.array_module(x)
        if p == 2:
            out = xp.sqrt((x * x).sum(axis=axes, keepdims=keepdim))
        elif p == 1:
            out = xp.abs(x).sum(axis=axes, keepdims=keepdim)
        elif p == math.inf:
            out = xp.abs(x).max(axis=axes, keepdims=keepdim)
        elif p == -math.inf:
            out = xp.abs(x).min(axis=axes, keepdims=keepdim)
        elif p == 0:
            out = (x != 0).sum(axis=axes, keepdims=keepdim).astype(x.dtype)
        else:
            out = (xp.abs(x) ** p).sum(axis=axes, keepdims=keepdim) ** (1.0 / p)
        return xp.asarray(out, dtype=x.dtype)

    def backward(self, g):
        (x,) = self.saved_tensors
        p = self.p
        xa = x.array
        xp = backend.array_module(xa)
        dt = xa.dtype
        if p == 0:
            return _expand_back(g, self.in_shape, self.axes, self.keepdim) * 0.0
        gk = _expand_back(g, self.in_shape, self.axes, self.keepdim)
        if p == 1:
            return gk * Tensor._make(xp.sign(xa))
        out = self.output()
        if not self.keepdim:
            out = _reshape(out, _kept(self.in_shape, self.axes))
        if math.isinf(p):
            mask = (xp.abs(xa) == out.array) | xp.isnan(xa)
            w = xp.sign(xa) * mask / mask.sum(axis=self.axes, keepdims=True)
            return gk * Tensor._make(w.astype(dt, copy=False))
        zero = out.array == 0
        if zero.any():
            z = Tensor._make(zero)
            out = where(z, Tensor._make(xp.ones((), dt)), out)
            zeros = Tensor._make(xp.zeros((), dt))
        else:
            z = None
        if p == 2:
            scale = gk / out
            if z is not None:
                scale = where(z, zeros, scale)
            return x * scale
        sgn = Tensor._make(xp.sign(xa))
        if p < 1:
            xz = xa == 0
            ax = x.abs()
            if xz.any():
                ax = where(Tensor._make(xz), Tensor._make(xp.ones((), dt)), ax)
                scaled = where(Tensor._make(xz), Tensor._make(xp.zeros((), dt)), sgn * pow_scalar(ax, p - 1))
            else:
                scaled = sgn * pow_scalar(ax, p - 1)
            return scaled * gk * pow_scalar(out, 1 - p)
        scale = gk / pow_scalar(out, p - 1)
        if z is not None:
            scale = where(z, zeros, scale)
        if p < 2:
            return sgn * pow_scalar(x.abs(), p - 1) * scale
        return x * pow_scalar(x.abs(), p - 2) * scale


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    _check_tensor(input, "norm")
    if dtype is not None:
        input = input.to(backend.as_dtype(dtype))
    _check_float(input, "norm")
    if p is None or p == "fro":
        p = 2.0
    elif p == "nuc":  # the sum of singular values (over the last two dims, or the two in dim)
        from ..linalg import matrix_norm
        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim)
    elif isinstance(p, str):
        raise ValueError(f"norm: p must be 'fro' or a number, got {p!r} (nuclear norm is not supported)")
    p = float(p)
    axes = _axes(input.array, dim, "norm")
    if math.isinf(p):
        _check_nonempty(input.array, axes, f"norm (p={p})")
    return Norm.apply(input, p=p, axes=axes, keepdim=bool(keepdim))


# ---------------------------------------------------------------------------------------------
# all, any
# ---------------------------------------------------------------------------------------------

def all(input, dim=None, keepdim=False):
    _check_tensor(input, "all")
    x = input.array
    return Tensor._make(backend.array_module(x).asarray(x.all(axis=_axes(x, dim, "all"), keepdims=bool(keepdim))))


def any(input, dim=None, keepdim=False):
    _check_tensor(input, "any")
    x = input.array
    return Tensor._make(backend.array_module(x).asarray(x.any(axis=_axes(x, dim, "any"), keepdims=bool(keepdim))))


# ---------------------------------------------------------------------------------------------
# sort, argsort, topk
# ---------------------------------------------------------------------------------------------

def _argsort(x, d, descending):
    """Stable argsort along ``d``; descending keeps equal elements in their original order."""
    xp = backend.array_module(x)
    if not descending:
        return xp.argsort(x, axis=d, kind="stable")
    rev = (slice(None),) * d + (slice(None, None, -1),)
    return (x.shape[d] - 1) - xp.argsort(x[rev], axis=d, kind="stable")[rev]


def _sort_indices(input, dim, descending, opname):
    _check_tensor(input, opname)
    x = input.array
    d = _one_dim(x, dim, opname)
    if x.ndim == 0:
        return x, None, backend.array_module(x).zeros((), dtype=_INT64)
    return x, d, _argsort(x, d, descending).astype(_INT64, copy=False)


def sort(input, dim=-1, descending=False, stable=False):
    x, d, idx = _sort_indices(input, dim, descending, "sort")
    if d is None:
        return return_types.sort(input.clone() if input.requires_grad else Tensor._make(x.copy()),
                                 Tensor._make(idx))
    return return_types.sort(_TakeAlong.apply(input, idx=idx, axis=d), Tensor._make(idx))


def argsort(input, dim=-1, descending=False, stable=False):
    return Tensor._make(_sort_indices(input, dim, descending, "argsort")[2])


def topk(input, k, dim=-1, largest=True, sorted=True):
    _check_tensor(input, "topk")
    x = input.array
    d = _one_dim(x, dim, "topk")
    size = x.shape[d] if x.ndim else 1
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k <= size:
        raise RuntimeError(f"topk: k ({k}) is out of range for dimension {d} of size {size} "
                           f"(input shape {tuple(x.shape)})")
    if x.ndim == 0:
        return return_types.topk(sort(input).values, argsort(input))
    idx = _argsort(x, d, largest)
    idx = idx[(slice(None),) * d + (slice(0, k),)].astype(_INT64, copy=False)
    return return_types.topk(_TakeAlong.apply(input, idx=idx, axis=d), Tensor._make(idx))
