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
from ..autograd.grad_mode import _enabled
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
    frexp = namedtuple("frexp", ["mantissa", "exponent"])
    aminmax = namedtuple("aminmax", ["min", "max"])
    mode = namedtuple("mode", ["values", "indices"])


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
    if t.array.dtype.kind not in "fV":
        raise TypeError(f"{opname}: expected a floating point tensor, got dtype {t.dtype} "
                        f"(shape {tuple(t.shape)})")


def _float_or_default(t):
    return t if t.array.dtype.kind in "fV" else t.to(backend.get_default_dtype())


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
    if input.array.dtype.kind not in "fV":
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
            xp = backend.array_module(zero)
            out = where(z, Tensor._make(xp.ones((), out.array.dtype)), out)
            gv = where(z, Tensor._make(xp.zeros((), g.array.dtype)), g / (out * 2.0))
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
        if dtype != x.dtype and dtype.kind in "fV":
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
        if dtype.kind in "fV":
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


# ---------------------------------------------------------------------------------------------
# cumprod, cummax, cummin, diff
# ---------------------------------------------------------------------------------------------

__all__ += ["cumprod", "cummax", "cummin", "diff", "median", "nanmedian", "kthvalue", "quantile",
            "nanquantile", "unique", "unique_consecutive", "bincount", "histc", "searchsorted",
            "bucketize", "count_nonzero"]

for _name in ("cummax", "cummin", "median", "nanmedian", "kthvalue"):
    setattr(return_types, _name, namedtuple(_name, ["values", "indices"]))
del _name


def _const(array):
    return Tensor._make(array)


class Cumprod(Function):
    """Running product along ``dim``. Without zeros the gradient is
    ``reverse_cumsum(g * out) / x``; with zeros it is built from the products that leave out one
    element (an n x n table per row, made with cumprod itself), so it stays exact and twice
    differentiable."""
    save_output = True

    def forward(self, x, dim=0, dtype=None):
        self.save_for_backward(self.inputs[0])
        self.dim = dim
        self.has_zero = self._record and bool((x == 0).any())
        if x.ndim == 0:
            return x.astype(dtype) if dtype is not None else x.copy()
        return x.cumprod(axis=dim, dtype=dtype)

    def backward(self, g):
        from .shape import movedim, unsqueeze
        (x,) = self.saved_tensors
        if x.ndim == 0:
            return g
        d = self.dim
        if not self.has_zero:
            return Cumsum.apply(g * self.output(), dim=d, reverse=True) / x
        if not _enabled[0]:                 # first order only: O(n) per row, exact with zeros
            return Tensor._make(_cumprod_grad_with_zeros(x.array, g.array, self.output().array, d))
        xp = backend.array_module(x.array)
        xm, gm = movedim(x, d, -1), movedim(g, d, -1)
        n = xm.shape[-1]
        eye = _const(xp.eye(n, dtype=bool))
        table = where(eye, _const(xp.ones((), dtype=x.array.dtype)), unsqueeze(xm, -2))
        table = Cumprod.apply(table, dim=table.ndim - 1)   # [k, j] = prod_{i <= j, i != k} x_i
        upper = _const(xp.triu(xp.ones((n, n), dtype=bool)))
        table = where(upper, table, _const(xp.zeros((), dtype=x.array.dtype)))
        gk = sum(unsqueeze(gm, -2) * table, dim=-1)
        return movedim(gk, -1, d)


def _cumprod_grad_with_zeros(x, g, out, d):
    """The exact gradient of cumprod along ``d`` for rows that may hold zeros, on arrays. With z
    the first zero of a row: before z, ``reverse_cumsum(g * out) / x`` (out is 0 from z on); at
    z, ``out[z-1] * sum_{j>=z} g[j] prod_{z<i<=j} x[i]``; after z, 0."""
    xp = backend.array_module(x)
    x, g, out = (xp.moveaxis(a, d, -1) for a in (x, g, out))
    n = x.shape[-1]
    pos = xp.arange(n)
    zero = x == 0
    z = xp.where(zero.any(axis=-1, keepdims=True), xp.argmax(zero, axis=-1)[..., None], n)
    rev = xp.cumsum((g * out)[..., ::-1], axis=-1)[..., ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = xp.where(pos < z, rev / xp.where(pos < z, x, 1), 0).astype(x.dtype)
    after = xp.cumprod(xp.where(pos <= z, 1, x), axis=-1)          # prod_{z<i<=j} x_i for j >= z
    tail = (xp.where(pos >= z, g * after, 0)).sum(axis=-1, keepdims=True)
    zc = xp.minimum(z, n - 1)
    before = xp.where(z > 0, xp.take_along_axis(out, xp.maximum(zc - 1, 0), axis=-1), 1)
    grad = xp.where(pos == z, before * tail, grad).astype(x.dtype, copy=False)
    return xp.ascontiguousarray(xp.moveaxis(grad, -1, d))


def cumprod(input, dim, dtype=None):
    """Running product along ``dim`` (integer and bool inputs give int64, as in PyTorch)."""
    _check_tensor(input, "cumprod")
    x = input.array
    d = _one_dim(x, dim, "cumprod")
    if dtype is not None:
        dtype = backend.as_dtype(dtype)
        if dtype.kind in "fV":
            input, dtype = input.to(dtype), None
    elif x.dtype.kind in "biu":
        dtype = _INT64
    return Cumprod.apply(input, dim=d, dtype=dtype)


def _cum_extreme(input, dim, is_max):
    from .index import gather
    opname = "cummax" if is_max else "cummin"
    _check_tensor(input, opname)
    x = input.array
    d = _one_dim(x, dim, opname)
    xp = backend.array_module(x)
    if x.ndim == 0:
        idx = xp.zeros((), dtype=_INT64)
        vals = input.clone() if input.requires_grad else Tensor._make(x.copy())
    else:
        run = (xp.maximum if is_max else xp.minimum).accumulate(x, axis=d)
        hit = x == run
        if x.dtype.kind in "fV":
            hit = hit | xp.isnan(x)       # a NaN starts (and, repeated, restarts) the running NaN
        shape = [1] * x.ndim
        shape[d] = x.shape[d]
        pos = xp.arange(x.shape[d], dtype=_INT64).reshape(shape)
        idx = xp.maximum.accumulate(xp.where(hit, pos, 0), axis=d)
        vals = gather(input, d, Tensor._make(idx))
    return (return_types.cummax if is_max else return_types.cummin)(vals, Tensor._make(idx))


def cummax(input, dim):
    """(running maximum, index of the latest element attaining it) along ``dim``."""
    return _cum_extreme(input, dim, True)


def cummin(input, dim):
    """(running minimum, index of the latest element attaining it) along ``dim``."""
    return _cum_extreme(input, dim, False)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The n-th forward difference along ``dim`` (``out[i] = x[i+1] - x[i]``; for bool tensors
    the exclusive or), after concatenating ``prepend`` and ``append``."""
    from .shape import cat, narrow
    from .elementwise import logical_xor
    _check_tensor(input, "diff")
    if input.ndim == 0:
        raise RuntimeError("diff: expects input to be at least one-dimensional (got a 0-d tensor)")
    if n < 0:
        raise RuntimeError(f"diff: order must be non-negative but got {n}")
    d = wrap_dim(dim, input.ndim, "diff")
    parts = []
    for name, extra in (("prepend", prepend), (None, input), ("append", append)):
        if extra is None:
            continue
        if not isinstance(extra, Tensor):
            extra = Tensor(extra, dtype=input.dtype, device=input.device)
            if extra.ndim == 0:
                shape = list(input.shape)
                shape[d] = 1
                extra = extra.expand(*shape)
        if name is not None and extra.ndim != input.ndim:
            raise RuntimeError(f"diff: expected {name} to have the same number of dimensions as input "
                               f"({input.ndim}), got shape {tuple(extra.shape)}")
        parts.append(extra)
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        length = x.shape[d]
        if length == 0:
            break
        hi, lo = narrow(x, d, 1, length - 1), narrow(x, d, 0, length - 1)
        x = logical_xor(hi, lo) if x.dtype == np.bool_ else hi - lo
    return x


# ---------------------------------------------------------------------------------------------
# median, nanmedian, kthvalue, quantile, nanquantile: order statistics picked from a sort
# ---------------------------------------------------------------------------------------------

def _pick_along(input, d, idx, keepdim):
    """``input``'s elements at ``idx`` (kept-dims shape) along ``d``, differentiable."""
    from .index import gather
    from .shape import squeeze
    vals = gather(input, d, Tensor._make(idx))
    if not keepdim:
        vals = squeeze(vals, d)
        idx = idx.reshape(tuple(s for i, s in enumerate(idx.shape) if i != d))
    return vals, Tensor._make(idx)


def _order_index(x, d, rank_of_count, nan_first):
    """Indices (kept-dims shape) along ``d`` of the element of sorted rank ``rank_of_count(m)``
    where ``m`` counts the non-NaN elements of each row. ``nan_first``: a row holding a NaN
    answers its first NaN (median's rule)."""
    xp = backend.array_module(x)
    order = xp.argsort(x, axis=d, kind="stable")       # NaNs sort last
    n = x.shape[d]
    if x.dtype.kind in "fV":
        nan = xp.isnan(x)
        m = n - nan.sum(axis=d, keepdims=True)
    else:
        nan = None
        m = xp.full(_kept(x.shape, (d,)), n, dtype=_INT64)
    rank = rank_of_count(m)
    idx = xp.take_along_axis(order, xp.clip(rank, 0, builtins.max(n - 1, 0)).astype(_INT64), axis=d)
    if nan is not None and nan_first:
        any_nan = nan.any(axis=d, keepdims=True)
        first_nan = xp.argmax(nan, axis=d, keepdims=True)
        idx = xp.where(any_nan, first_nan, idx)
    return idx.astype(_INT64, copy=False)


class _EvenlyPicked(Function):
    """A value picked from ``x`` (a global median); as in PyTorch, its gradient is shared evenly
    by all elements equal to it (NaN counting as equal to NaN)."""

    def forward(self, x, value=None):
        xp = backend.array_module(x)
        if x.dtype.kind in "fV" and bool(xp.isnan(value)):
            mask = xp.isnan(x)
        else:
            mask = x == value
        self.w = (mask / builtins.max(int(mask.sum()), 1)).astype(x.dtype)
        return value.copy()

    def backward(self, g):
        return g * Tensor._make(self.w)


def _median(input, dim, keepdim, ignore_nan):
    opname = "nanmedian" if ignore_nan else "median"
    _check_tensor(input, opname)
    x = input.array
    rt = return_types.nanmedian if ignore_nan else return_types.median
    if dim is None:
        if x.size == 0:
            return Tensor._make(backend.array_module(x).full((), np.nan, dtype=x.dtype)) \
                if x.dtype.kind in "fV" else _raise_empty(opname, x)
        idx = _order_index(x.reshape(-1), 0, lambda m: (m - 1) // 2, not ignore_nan)
        return _EvenlyPicked.apply(input, value=x.reshape(-1)[idx].reshape(()))
    d = _one_dim(x, dim, opname)
    if x.ndim == 0:
        return rt(input.clone() if input.requires_grad else Tensor._make(x.copy()),
                  Tensor._make(backend.array_module(x).zeros((), dtype=_INT64)))
    if x.shape[d] == 0:
        raise IndexError(f"{opname}: cannot compute the median over dimension {d} of size 0 "
                         f"(input shape {tuple(x.shape)})")
    idx = _order_index(x, d, lambda m: (m - 1) // 2, not ignore_nan)
    return rt(*_pick_along(input, d, idx, keepdim))


def _raise_empty(opname, x):
    raise IndexError(f"{opname}: cannot compute the median of an empty tensor of shape {tuple(x.shape)}")


def median(input, dim=None, keepdim=False):
    """The lower median (of all elements, or (values, indices) along ``dim``); NaN if any
    element is NaN, as in PyTorch."""
    return _median(input, dim, keepdim, False)


def nanmedian(input, dim=None, keepdim=False):
    """``median`` ignoring NaNs (NaN only where a whole row is NaN)."""
    return _median(input, dim, keepdim, True)


def kthvalue(input, k, dim=-1, keepdim=False):
    """(the k-th smallest element, its index) along ``dim`` (k counts from 1)."""
    _check_tensor(input, "kthvalue")
    x = input.array
    d = _one_dim(x, dim, "kthvalue")
    n = x.shape[d] if x.ndim else 1
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= n:
        raise RuntimeError(f"kthvalue: selected number k={k} is out of range for dimension {d} of size "
                           f"{n} (input shape {tuple(x.shape)})")
    if x.ndim == 0:
        return return_types.kthvalue(input.clone() if input.requires_grad else Tensor._make(x.copy()),
                                     Tensor._make(backend.array_module(x).zeros((), dtype=_INT64)))
    xp = backend.array_module(x)
    order = xp.argsort(x, axis=d, kind="stable")
    idx = order[(slice(None),) * d + (slice(k - 1, k),)].astype(_INT64, copy=False)
    return return_types.kthvalue(*_pick_along(input, d, idx, keepdim))


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan):
    from .index import gather
    from .shape import movedim, reshape, unsqueeze
    opname = "nanquantile" if ignore_nan else "quantile"
    _check_tensor(input, opname)
    x = input.array
    xp = backend.array_module(x)
    if x.dtype not in (np.float32, np.float64):
        raise RuntimeError(f"{opname}: input tensor must be either float or double dtype, got {x.dtype}")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{opname}: interpolation must be one of {', '.join(_INTERPOLATIONS)}, "
                           f"but got {interpolation!r}")
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise RuntimeError(f"{opname}: q must be a scalar or 1D tensor, got shape {tuple(q.shape)}")
        if q.array.dtype != x.dtype:
            raise RuntimeError(f"{opname}: q tensor must be same dtype as the input tensor ({q.dtype} vs "
                               f"{x.dtype})")
        scalar_q = q.ndim == 0
        qs = backend.to_numpy(q.array).reshape(-1).astype(np.float64)
    elif isinstance(q, (list, tuple)):
        scalar_q, qs = False, np.asarray(q, dtype=np.float64).reshape(-1)
    else:
        scalar_q, qs = True, np.asarray([float(q)])
    if qs.size and not (np.all(qs >= 0) and np.all(qs <= 1)):
        bad = qs[~((qs >= 0) & (qs <= 1))][0]
        raise RuntimeError(f"{opname}: q must be in the range [0, 1] but got {bad}")
    if x.size == 0:
        raise RuntimeError(f"{opname}: input tensor must be non-empty (shape {tuple(x.shape)})")
    if dim is None:
        src, d = _reshape(input, (x.size,)), 0
    else:
        d = _one_dim(x, dim, opname)
        src = input if x.ndim else _reshape(input, (1,))
    s = sort(src, d).values                                  # NaNs last
    a = s.array
    n = a.shape[d]
    nq = qs.size
    if ignore_nan:
        m = n - xp.isnan(a).sum(axis=d, keepdims=True)       # per-row count of numbers
        last = xp.maximum(m - 1, 0).astype(np.float64)
    else:
        has_nan = xp.isnan(a).any(axis=d, keepdims=True)
        last = xp.where(has_nan, n - 1, 0).astype(np.float64)  # NaN rows read their (last) NaN
    qshape = [1] * a.ndim
    qshape[d] = nq
    qv = xp.asarray(qs).reshape(qshape)
    if ignore_nan:
        rank = qv * last
    else:
        rank = xp.where(has_nan, last, qv * (n - 1))
    if interpolation == "lower":
        rank = xp.floor(rank)
    elif interpolation == "higher":
        rank = xp.ceil(rank)
    elif interpolation == "nearest":
        rank = xp.round(rank)
    lo = xp.floor(rank)
    hi = xp.ceil(rank)
    wt = rank - lo
    if interpolation == "midpoint":
        wt = xp.where(wt > 0, 0.5, 0.0)
    full = list(a.shape)
    full[d] = nq
    lo_i = xp.broadcast_to(lo.astype(_INT64), full)
    hi_i = xp.broadcast_to(hi.astype(_INT64), full)
    v_lo = gather(s, d, Tensor._make(xp.ascontiguousarray(lo_i)))
    if interpolation in ("lower", "higher", "nearest"):
        out = v_lo
    else:
        v_hi = gather(s, d, Tensor._make(xp.ascontiguousarray(hi_i)))
        out = v_lo + (v_hi - v_lo) * Tensor._make(xp.broadcast_to(wt, full).astype(a.dtype))
    out = movedim(out, d, 0)                                  # (nq, rest...)
    if keepdim:
        if dim is None:
            out = reshape(out, (nq,) + (1,) * x.ndim)
        elif x.ndim:
            out = unsqueeze(out, d + 1)
    if scalar_q:
        out = reshape(out, tuple(out.shape[1:]))
    return out


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The q-th quantiles (q a number or a 1-d tensor; its values lead the output's dims) of all
    elements or along ``dim``; NaN where a row holds a NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, False)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """``quantile`` ignoring NaNs (NaN only where a whole row is NaN)."""
    return _quantile(input, q, dim, keepdim, interpolation, True)


# ---------------------------------------------------------------------------------------------
# unique, unique_consecutive, bincount, histc, searchsorted, bucketize, count_nonzero (no grad)
# ---------------------------------------------------------------------------------------------

def _unique_result(values, inverse, counts, return_inverse, return_counts):
    out = (Tensor._make(values),)
    if return_inverse:
        out += (Tensor._make(inverse.astype(_INT64, copy=False)),)
    if return_counts:
        out += (Tensor._make(counts.astype(_INT64, copy=False)),)
    return out[0] if len(out) == 1 else out


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct elements (or slices along ``dim``), in ascending order, optionally with each
    element's position among them (``return_inverse``) and their counts. No gradient."""
    _check_tensor(input, "unique")
    x = input.array
    xp = backend.array_module(x)
    if dim is None:
        # every NaN is distinct, as in PyTorch (CuPy's unique takes equal_nan too)
        vals, inv, cnt = xp.unique(x.reshape(-1), return_inverse=True, return_counts=True, equal_nan=False)
        return _unique_result(vals, inv.reshape(x.shape), cnt, return_inverse, return_counts)
    d = _one_dim(x, dim, "unique")
    if x.ndim == 0:
        raise IndexError("unique: dim given for a 0-d tensor")
    if x.shape[d] == 0:
        raise RuntimeError(f"unique: number of elements along dim {d} must be positive "
                           f"(input shape {tuple(x.shape)})")
    vals, inv, cnt = xp.unique(x, return_inverse=True, return_counts=True, axis=d)
    return _unique_result(vals, inv.reshape(-1), cnt, return_inverse, return_counts)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """Collapse runs of equal consecutive elements (or slices along ``dim``) to one."""
    _check_tensor(input, "unique_consecutive")
    x = input.array
    xp = backend.array_module(x)
    if dim is None:
        rows, shape_inv, d = x.reshape(-1, 1), x.shape, None
    else:
        d = _one_dim(x, dim, "unique_consecutive")
        if x.ndim == 0:
            raise IndexError("unique_consecutive: dim given for a 0-d tensor")
        moved = xp.moveaxis(x, d, 0)
        rows, shape_inv = moved.reshape(moved.shape[0], -1), (x.shape[d],)
    n = rows.shape[0]
    start = xp.ones(n, dtype=bool)
    if n > 1:
        start[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    inv = xp.cumsum(start) - 1
    pos = xp.nonzero(start)[0]
    counts = xp.diff(xp.concatenate([pos, xp.asarray([n])]))
    if d is None:
        vals = x.reshape(-1)[start]
    else:
        vals = xp.compress(start, x, axis=d)
    return _unique_result(vals, inv.reshape(shape_inv), counts, return_inverse, return_counts)


def bincount(input, weights=None, minlength=0):
    """Counts of each value 0..max of a 1-d non-negative integer tensor (sums of ``weights``)."""
    _check_tensor(input, "bincount")
    x = input.array
    xp = backend.array_module(x)
    if x.dtype.kind in "fV":
        raise NotImplementedError(f"bincount: not implemented for dtype {x.dtype} (PyTorch counts "
                                  f"integer tensors only); convert with .long()")
    if x.ndim != 1 or x.dtype.kind not in "iub" or (x.size and int(x.min()) < 0):
        raise RuntimeError(f"bincount: only supports 1-d non-negative integral inputs (got shape "
                           f"{tuple(x.shape)}, dtype {x.dtype})")
    if minlength < 0:
        raise RuntimeError(f"bincount: minlength should be >= 0, got {minlength}")
    if weights is None:
        return Tensor._make(xp.bincount(x, minlength=minlength).astype(_INT64, copy=False))
    w = weights.array if isinstance(weights, Tensor) else xp.asarray(weights)
    if w.ndim != 1 or w.shape[0] != x.shape[0]:
        raise RuntimeError(f"bincount: weights should be 1-d and have the same length as input "
                           f"(input shape {tuple(x.shape)}, weights shape {tuple(w.shape)})")
    dt = w.dtype if w.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    return Tensor._make(xp.bincount(x, weights=w.astype(np.float64), minlength=minlength).astype(dt))


def histc(input, bins=100, min=0, max=0):
    """A histogram of ``bins`` equal-width bins over [min, max] (the data's range when min ==
    max); elements outside are ignored. Same dtype as ``input``; no gradient."""
    _check_tensor(input, "histc")
    x = input.array
    xp = backend.array_module(x)
    if x.dtype.kind not in "fV":
        raise NotImplementedError(f"histc: not implemented for dtype {x.dtype} (PyTorch's histc takes "
                                  f"floating point tensors); convert with .float()")
    if bins <= 0:
        raise RuntimeError(f"histc: bins must be > 0, got {bins}")
    lo, hi = float(min), float(max)
    if lo > hi:
        raise RuntimeError(f"histc: max must be larger than min (got min={min}, max={max})")
    if lo == hi and x.size:
        lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"histc: range of [{lo}, {hi}] is not finite")
    v = x.reshape(-1)
    v = v[(v >= lo) & (v <= hi)]
    pos = ((v.astype(np.float64) - lo) / (hi - lo) * bins).astype(np.int64)
    pos = xp.minimum(pos, bins - 1)
    return Tensor._make(xp.bincount(pos, minlength=bins).astype(x.dtype))


def _side(right, side, opname):
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"{opname}: side can only be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise RuntimeError(f"{opname}: side and right can't be set to opposites, got side of left "
                               f"while right was True")
        return side
    return "right" if right else "left"


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    """Positions at which ``input``'s values would be inserted into ``sorted_sequence`` (1-d, or
    N-d sorted along its last dim with leading dims matching ``input``'s) to keep it sorted."""
    _check_tensor(sorted_sequence, "searchsorted")
    side = _side(right, side, "searchsorted")
    seq = sorted_sequence.array
    xp = backend.array_module(seq)
    scalar = not isinstance(input, Tensor)
    vals = xp.asarray(input) if scalar else input.array
    if scalar and seq.ndim != 1:
        raise RuntimeError(f"searchsorted: a scalar value needs a 1-d sorted_sequence, got shape "
                           f"{tuple(seq.shape)}")
    if seq.ndim == 0:
        raise RuntimeError("searchsorted: sorted_sequence must have at least one dimension")
    if sorter is not None:
        srt = sorter.array if isinstance(sorter, Tensor) else xp.asarray(sorter)
        if srt.shape != seq.shape:
            raise RuntimeError(f"searchsorted: sorter shape {tuple(srt.shape)} must equal "
                               f"sorted_sequence shape {tuple(seq.shape)}")
        seq = xp.take_along_axis(seq, srt.astype(_INT64), axis=-1)
    dt = np.dtype(np.int32) if out_int32 else _INT64
    if seq.ndim == 1:
        return Tensor._make(xp.asarray(xp.searchsorted(seq, vals, side=side)).astype(dt))
    if vals.ndim != seq.ndim or vals.shape[:-1] != seq.shape[:-1]:
        raise RuntimeError(f"searchsorted: boundaries tensor should be 1 dimension or the first N-1 "
                           f"dimensions of boundaries tensor and input value tensor must match, but "
                           f"got boundaries shape {tuple(seq.shape)} and input shape {tuple(vals.shape)}")
    s2 = seq.reshape(-1, seq.shape[-1])
    v2 = vals.reshape(-1, vals.shape[-1])
    out = xp.empty(v2.shape, dtype=dt)
    for r in range(s2.shape[0]):
        out[r] = xp.searchsorted(s2[r], v2[r], side=side)
    return Tensor._make(out.reshape(vals.shape))


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The index of the bucket of each value: ``boundaries[i-1] < x <= boundaries[i]``
    (``right=True``: ``boundaries[i-1] <= x < boundaries[i]``); ``boundaries`` is 1-d, sorted."""
    _check_tensor(boundaries, "bucketize")
    if boundaries.ndim != 1:
        raise RuntimeError(f"bucketize: boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def count_nonzero(input, dim=None):
    """The number of non-zero elements (over ``dim``: an int or a tuple of ints), as int64."""
    _check_tensor(input, "count_nonzero")
    x = input.array
    axes = _axes(x, dim, "count_nonzero")
    xp = backend.array_module(x)
    return Tensor._make(xp.asarray(xp.count_nonzero(x, axis=axes)).astype(_INT64))
