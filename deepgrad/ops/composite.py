"""Ops written in terms of other deepgrad ops (their gradients, and second gradients, come from the
ops they call), plus ``scatter_reduce`` with its own backward: PyTorch's everyday helpers for
shapes (tile, tensor_split, rot90, atleast_*d, the *stack family, block_diag, unfold ...), the
``*_scatter`` family and ``index_put``, NaN-aware and cumulative reductions (nansum, nanmean,
logcumsumexp, aminmax, mode), products (kron), statistics (cov, corrcoef) and integration
(trapezoid, cumulative_trapezoid).
"""
from __future__ import annotations

import builtins
import itertools
import math
import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..autograd.grad_mode import _enabled
from ..tensor import Size, Tensor
from ._util import norm_dims, wrap_dim
from .elementwise import exp, isnan, log, where
from .index import _flat_positions, _indexer, _src_values, index_add, index_select
from .reduce import amax, amin, cumsum, diff, return_types, sum
from .shape import (IndexPut, Scatter, _Flat, _gather, cat, expand, flip, meshgrid, movedim,
                    narrow, repeat, reshape, stack, sum_to, transpose, unsqueeze)

__all__ = ["tile", "tensor_split", "hsplit", "vsplit", "dsplit", "split_with_sizes", "rot90", "ravel",
           "sum_to_size", "broadcast_tensors", "broadcast_shapes", "atleast_1d", "atleast_2d",
           "atleast_3d", "hstack", "vstack", "row_stack", "dstack", "column_stack", "block_diag",
           "cartesian_prod", "combinations", "kron", "select_scatter", "slice_scatter",
           "diagonal_scatter", "index_put", "scatter_reduce", "nansum", "nanmean", "logcumsumexp",
           "aminmax", "mode", "cov", "corrcoef", "trapezoid", "trapz", "cumulative_trapezoid",
           "tensor_unfold", "nonzero_static", "put", "msort"]


def _check_tensor(x, opname):
    if not isinstance(x, Tensor):
        raise TypeError(f"{opname}: expected a Tensor, got {type(x).__name__}")


# ---- shapes ---------------------------------------------------------------------------------

def tile(input, dims):
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(int(d) for d in dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, *dims)


def _split_points(input, indices_or_sections, d, opname):
    n = input.shape[d]
    if isinstance(indices_or_sections, Tensor):
        if indices_or_sections.ndim == 0:
            indices_or_sections = int(indices_or_sections.item())
        else:
            indices_or_sections = [int(v) for v in indices_or_sections.tolist()]
    if isinstance(indices_or_sections, numbers.Integral):
        k = int(indices_or_sections)
        if k <= 0:
            raise RuntimeError(f"{opname}: number of sections must be larger than 0, got {k}")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
        return list(itertools.accumulate([0] + sizes))
    pts = [0]
    for i in indices_or_sections:
        i = int(i)
        i = i + n if i < 0 else i
        pts.append(builtins.min(builtins.max(i, 0), n))
    pts.append(n)
    return pts


def tensor_split(input, indices_or_sections, dim=0):
    """Views of ``input`` split into ``n`` near-equal parts or at the given indices along ``dim``."""
    _check_tensor(input, "tensor_split")
    if input.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    d = wrap_dim(dim, input.ndim, "tensor_split")
    pts = _split_points(input, indices_or_sections, d, "tensor_split")
    return tuple(narrow(input, d, a, builtins.max(b - a, 0)) if b >= a else narrow(input, d, a, 0)
                 for a, b in zip(pts[:-1], pts[1:]))


def _hvd_split(input, sections, dim, need, opname):
    if input.ndim < need:
        raise RuntimeError(f"torch.{opname} requires a tensor with at least {need} dimension, but got a "
                           f"tensor with {input.ndim} dimensions!")
    if isinstance(sections, numbers.Integral):
        if sections <= 0 or input.shape[dim] % sections:
            raise RuntimeError(f"torch.{opname} attempted to split along dimension {dim}, but the size of "
                               f"the dimension {input.shape[dim]} is not divisible by the split_size {sections}!")
    return tensor_split(input, sections, dim)


def hsplit(input, indices_or_sections):
    return _hvd_split(input, indices_or_sections, 1 if input.ndim > 1 else 0, 1, "hsplit")


def vsplit(input, indices_or_sections):
    return _hvd_split(input, indices_or_sections, 0, 2, "vsplit")


def dsplit(input, indices_or_sections):
    return _hvd_split(input, indices_or_sections, 2, 3, "dsplit")


def split_with_sizes(input, split_sizes, dim=0):
    d = wrap_dim(dim, input.ndim, "split_with_sizes")
    sizes = [int(s) for s in split_sizes]
    if builtins.sum(sizes) != input.shape[d]:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {input.shape[d]} "
                           f"(input tensor's size at dimension {d}), but got split_sizes={sizes}")
    pts = list(itertools.accumulate([0] + sizes))
    return tuple(narrow(input, d, a, b - a) for a, b in zip(pts[:-1], pts[1:]))


def rot90(input, k=1, dims=(0, 1)):
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"rot90: expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (wrap_dim(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise RuntimeError(f"rot90: expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, (d0,)), d0, d1)
    return input.clone()


def ravel(input):
    return reshape(input, -1)


def sum_to_size(input, *size):
    from ._util import shape_arg
    size = shape_arg(size)
    try:
        if np.broadcast_shapes(size, tuple(input.shape)) != tuple(input.shape):
            raise ValueError
    except ValueError:
        raise RuntimeError(f"sum_to_size: size {list(size)} is not expandable to size {list(input.shape)}") from None
    return sum_to(input, size)


def broadcast_shapes(*shapes):
    shapes = [(s,) if isinstance(s, numbers.Integral) else tuple(s) for s in shapes]
    try:
        return Size(np.broadcast_shapes(*shapes))
    except ValueError:
        raise RuntimeError(f"broadcast_shapes: shapes {shapes} are not broadcastable") from None


def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t if tuple(t.shape) == tuple(shape) else expand(t, *shape) for t in tensors)


def _each(tensors, fn):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(fn(t) for t in tensors[0])
    if len(tensors) == 1:
        return fn(tensors[0])
    return tuple(fn(t) for t in tensors)


def _at1(t):
    return reshape(t, 1) if t.ndim == 0 else t


def _at2(t):
    return reshape(t, 1, 1) if t.ndim == 0 else (unsqueeze(t, 0) if t.ndim == 1 else t)


def _at3(t):
    if t.ndim == 0:
        return reshape(t, 1, 1, 1)
    if t.ndim == 1:
        return reshape(t, 1, t.shape[0], 1)
    if t.ndim == 2:
        return unsqueeze(t, -1)
    return t


def atleast_1d(*tensors):
    return _each(tensors, _at1)


def atleast_2d(*tensors):
    return _each(tensors, _at2)


def atleast_3d(*tensors):
    return _each(tensors, _at3)


def _seq(tensors, opname):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{opname} expects a non-empty TensorList")
    return tensors


def hstack(tensors):
    ts = [_at1(t) for t in _seq(tensors, "hstack")]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([_at2(t) for t in _seq(tensors, "vstack")], 0)


row_stack = vstack


def dstack(tensors):
    return cat([_at3(t) for t in _seq(tensors, "dstack")], 2)


def column_stack(tensors):
    ts = [reshape(t, t.numel(), 1) if t.ndim <= 1 else t for t in _seq(tensors, "column_stack")]
    return cat(ts, 1)


def block_diag(*tensors):
    mats = []
    for t in tensors:
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. "
                               f"Input has {t.ndim} dimensions")
        mats.append(reshape(t, 1, 1) if t.ndim == 0 else (reshape(t, 1, -1) if t.ndim == 1 else t))
    if not mats:
        return Tensor._make(np.zeros((0, 0), dtype=backend.get_default_dtype()))
    dt = mats[0].dtype
    for m in mats[1:]:
        dt = np.promote_types(dt, m.dtype)
    mats = [m if m.dtype == dt else m.to(dt) for m in mats]
    total = builtins.sum(m.shape[1] for m in mats)
    xp = backend.array_module(mats[0].array)
    rows, col = [], 0
    for m in mats:
        r, c = m.shape
        parts = []
        if col:
            parts.append(Tensor._make(xp.zeros((r, col), dtype=dt)))
        parts.append(m)
        if total - col - c:
            parts.append(Tensor._make(xp.zeros((r, total - col - c), dtype=dt)))
        rows.append(cat(parts, 1) if len(parts) > 1 else m)
        col += c
    return cat(rows, 0)


def cartesian_prod(*tensors):
    for t in tensors:
        if t.ndim != 1:
            raise RuntimeError(f"cartesian_prod: expect a 1D vector, but got shape {tuple(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([reshape(g, -1) for g in grids], 1)


def combinations(input, r=2, with_replacement=False):
    if input.ndim != 1:
        raise RuntimeError(f"combinations: Expect a 1D vector, but got shape {tuple(input.shape)}")
    if r < 0:
        raise RuntimeError(f"combinations: Expect a non-negative number, but got {r}")
    if r == 0:
        return Tensor._make(backend.array_module(input.array).zeros((0,), dtype=input.dtype))
    it = (itertools.combinations_with_replacement if with_replacement else itertools.combinations)(range(input.shape[0]), r)
    idx = np.array(list(it), dtype=np.int64).reshape(-1, r)
    if idx.shape[0] == 0:
        return Tensor._make(backend.array_module(input.array).zeros((0, r), dtype=input.dtype))
    return reshape(index_select(input, 0, Tensor._make(idx.reshape(-1))), idx.shape[0], r)


def tensor_unfold(input, dimension, size, step):
    """``Tensor.unfold``: all windows of ``size`` elements every ``step`` along ``dimension``, as a
    new last dimension."""
    if input.ndim == 0:
        if size != 1:
            raise RuntimeError(f"unfold: maximum size for tensor at dimension 0 is 1 but size is {size}")
        return reshape(input, 1)
    d = wrap_dim(dimension, input.ndim, "unfold")
    n = input.shape[d]
    if size > n:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")
    nw = (n - size) // step + 1
    idx = (np.arange(nw)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    out = index_select(input, d, Tensor._make(backend.to_device(idx.astype(np.int64), input.device)))
    shape = list(input.shape)
    shape[d:d + 1] = [nw, size]
    return movedim(reshape(out, *shape), d + 1, -1)


def msort(input):
    from .reduce import sort
    return sort(input, 0).values


def nonzero_static(input, *, size, fill_value=-1):
    idx = np.stack(np.nonzero(backend.to_numpy(input.array)), axis=1).astype(np.int64) if input.ndim else \
        np.zeros((1 if bool(input.array) else 0, 0), dtype=np.int64)
    out = np.full((int(size), idx.shape[1]), fill_value, dtype=np.int64)
    k = builtins.min(int(size), idx.shape[0])
    out[:k] = idx[:k]
    return Tensor._make(backend.to_device(out, input.device))


# ---- kron ---------------------------------------------------------------------------------

def kron(input, other):
    nd = builtins.max(input.ndim, other.ndim)
    sa = (1,) * (nd - input.ndim) + tuple(input.shape)
    sb = (1,) * (nd - other.ndim) + tuple(other.shape)
    a = reshape(input, *[v for s in sa for v in (s, 1)])
    b = reshape(other, *[v for s in sb for v in (1, s)])
    return reshape(a * b, *[x * y for x, y in zip(sa, sb)])


# ---- writes into a copy: *_scatter, index_put, put --------------------------------------------

def _put(input, key, value, opname):
    """A copy of ``input`` with ``value`` written at ``input[key]`` (gradients to both)."""
    a = input.array
    ix = _indexer(a, key, opname)
    if not isinstance(value, Tensor):
        value = Tensor._make(backend.array_module(a).asarray(value, dtype=a.dtype))
    if value.dtype != a.dtype:
        value = value.to(a.dtype)
    try:
        if _enabled[0] and (input.requires_grad or value.requires_grad) and a.dtype.kind in "fV":
            return IndexPut.apply(input, value, ix=ix, inplace=False)
        out = a.copy()
        ix.set(out, value.array)
    except (ValueError, RuntimeError) as e:
        raise RuntimeError(f"{opname}: cannot write a value of shape {tuple(value.shape)} into the "
                           f"selected region of a tensor of shape {tuple(a.shape)} ({e})") from None
    return Tensor._make(out)


def _check_region(opname, region_shape, src):
    if tuple(region_shape) != tuple(src.shape):
        raise RuntimeError(f"{opname}: expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(region_shape)}")


def select_scatter(input, src, dim, index):
    d = wrap_dim(dim, input.ndim, "select_scatter")
    n = input.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select_scatter: index {index} out of range for tensor of size "
                         f"{tuple(input.shape)} at dimension {d}")
    key = (slice(None),) * d + (int(index),)
    _check_region("select_scatter", input.array[key].shape, src)
    return _put(input, key, src, "select_scatter")


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    d = wrap_dim(dim, input.ndim, "slice_scatter")
    key = (slice(None),) * d + (slice(start, end, step),)
    _check_region("slice_scatter", input.array[key].shape, src)
    return _put(input, key, src, "slice_scatter")


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    d1, d2 = wrap_dim(dim1, input.ndim, "diagonal_scatter"), wrap_dim(dim2, input.ndim, "diagonal_scatter")
    region = np.diagonal(np.empty(input.shape, dtype=np.bool_), offset, d1, d2).shape
    _check_region("diagonal_scatter", region, src)
    x = movedim(input, (d1, d2), (-2, -1))
    r, c = x.shape[-2], x.shape[-1]
    rows = np.arange(builtins.max(-offset, 0), r)
    cols = rows + offset
    keep = cols < c
    rows, cols = rows[keep], cols[keep]
    out = _put(x, (Ellipsis, rows, cols), src, "diagonal_scatter")
    return movedim(out, (-2, -1), (d1, d2))


def index_put(input, indices, values, accumulate=False):
    """A copy of ``input`` with ``values`` at ``input[indices]``; with ``accumulate`` repeated
    positions add up (``index_put_`` is the in-place form)."""
    indices = tuple(indices)
    if not accumulate:
        return _put(input, indices, values, "index_put")
    xp = backend.array_module(input.array)
    arrs = []
    for t in indices:
        a = t.array if isinstance(t, Tensor) else xp.asarray(t)
        if a.dtype == np.bool_ or (a.dtype == np.uint8 and isinstance(t, Tensor)):
            arrs.extend(xp.nonzero(a))
        else:
            arrs.append(a.astype(np.int64))
    k = len(arrs)
    if k > input.ndim:
        raise IndexError(f"index_put: too many indices for tensor of dimension {input.ndim}")
    lead = tuple(input.shape[:k])
    arrs = xp.broadcast_arrays(*arrs)
    for i, (a, n) in enumerate(zip(arrs, lead)):
        if a.size and (a.max() >= n or a.min() < -n):
            raise IndexError(f"index_put: index {int(a.max()) if a.max() >= n else int(a.min())} is out of "
                             f"bounds for dimension {i} with size {n}")
    lin = xp.ravel_multi_index(tuple(xp.where(a < 0, a + n, a) for a, n in zip(arrs, lead)), lead).reshape(-1)
    rest = tuple(input.shape[k:])
    if not isinstance(values, Tensor):
        values = Tensor._make(xp.asarray(values, dtype=input.dtype))
    if values.dtype != input.dtype:
        values = values.to(input.dtype)
    v = reshape(expand(values, *(tuple(arrs[0].shape) + rest)) if tuple(values.shape) != tuple(arrs[0].shape) + rest
                else values, -1, *rest)
    flat = reshape(input, -1, *rest)
    return reshape(index_add(flat, 0, Tensor._make(lin), v), *input.shape)


def put(input, index, source, accumulate=False):
    """``input`` viewed as 1-d with ``source`` written (or added) at ``index``."""
    flat = reshape(input, -1)
    idx = index.array.reshape(-1) if isinstance(index, Tensor) else np.asarray(index).reshape(-1)
    n = flat.shape[0]
    idx = backend.array_module(idx).where(idx < 0, idx + n, idx)
    return reshape(index_put(flat, (Tensor._make(idx),), reshape(source, -1), accumulate), *input.shape)


# ---- scatter_reduce -----------------------------------------------------------------------

_IDENTITY = {"sum": 0, "mean": 0, "prod": 1}


class ScatterReduce(Function):
    """``scatter_reduce`` for "prod", "amax", "amin" and "mean" ("sum" is scatter_add)."""

    def forward(self, x, s, lin=None, reduce=None, include_self=True):
        xp = backend.array_module(x)
        self.lin, self.reduce, self.include_self = lin, reduce, include_self
        out = x.copy().reshape(-1)
        sv = s.reshape(-1)
        keep = xp.ones(out.shape, dtype=np.bool_)
        if not include_self:
            keep[lin] = False
        if reduce in ("amax", "amin"):
            fill = (-np.inf if reduce == "amax" else np.inf) if x.dtype.kind in "fV" else \
                (np.iinfo(x.dtype).min if reduce == "amax" else np.iinfo(x.dtype).max)
            if not include_self:
                out[lin] = fill
            (xp.maximum if reduce == "amax" else xp.minimum).at(out, lin, sv)
        elif reduce == "prod":
            if not include_self:
                out[lin] = 1
            xp.multiply.at(out, lin, sv)
        else:   # mean
            if not include_self:
                out[lin] = 0
            xp.add.at(out, lin, sv)
            count = keep.astype(x.dtype)
            xp.add.at(count, lin, 1)
            self.count = count
            count = xp.where(count == 0, 1, count)
            out = out // count if x.dtype.kind in "iu" else out / count
        self.keep = keep
        self.x, self.s = x, s
        out = out.reshape(x.shape)
        self.out = out
        return out

    def backward(self, g):
        xp = backend.array_module(self.x)
        shape, lin = self.x.shape, self.lin
        gflat = g.reshape(-1)
        keep = self.keep.reshape(shape)
        if self.reduce == "mean":
            c = xp.where(self.count == 0, 1, self.count).reshape(shape)
            q = g / Tensor._make(c)
            gx = q * Tensor._make(keep.astype(g.dtype))
            gs = _gather(reshape(q, -1), _Flat(lin))
        elif self.reduce in ("amax", "amin"):
            out = self.out.reshape(-1)
            in_tie = (self.x.reshape(-1) == out) & self.keep
            s_tie = self.s.reshape(-1) == out[lin]
            count = in_tie.astype(g.dtype)
            xp.add.at(count, lin, s_tie.astype(g.dtype))
            count = xp.where(count == 0, 1, count)
            q = gflat / Tensor._make(count)
            gx = reshape(q * Tensor._make(in_tie.astype(g.dtype)), *shape)
            gs = _gather(q, _Flat(lin)) * Tensor._make(s_tie.astype(g.dtype))
        else:   # prod: the product of the other contributors (exact with zeros)
            x, s = self.x.reshape(-1), self.s.reshape(-1)
            xs = xp.where(self.keep, x, 1)
            nz_prod = xp.where(xs == 0, 1, xs).astype(g.dtype)
            xp.multiply.at(nz_prod, lin, xp.where(s == 0, 1, s))
            zeros = (xs == 0).astype(np.int64)
            xp.add.at(zeros, lin, (s == 0).astype(np.int64))
            out = self.out.reshape(-1)

            def factor(v, pos):
                with np.errstate(all="ignore"):
                    return xp.where(v != 0, out[pos] / xp.where(v == 0, 1, v),
                                    xp.where(zeros[pos] == 1, nz_prod[pos], 0))
            fx = factor(x, slice(None)) * self.keep
            gx = reshape(gflat * Tensor._make(fx.astype(g.dtype)), *shape)
            gs = _gather(gflat, _Flat(lin)) * Tensor._make(factor(s, lin).astype(g.dtype))
        return (gx if self.needs_input_grad[0] else None,
                reshape(gs, *self.s.shape) if self.needs_input_grad[1] else None)


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """Reduce ``src`` into ``input`` at ``index`` along ``dim`` with "sum", "prod", "mean", "amax"
    or "amin"; ``include_self=False`` leaves the old values of the written positions out."""
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise RuntimeError(f"scatter_reduce: reduce argument must be either sum, prod, mean, amax or amin, "
                           f"got {reduce!r}")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce: src must be a Tensor, got {type(src).__name__}")
    if src.dtype != input.dtype:
        raise RuntimeError(f"scatter_reduce: expected self and src to have the same dtype, but got "
                           f"{input.dtype} and {src.dtype}")
    xp = backend.array_module(input.array)
    d, idx, lin = _flat_positions("scatter_reduce", input.array.shape, dim, index, xp)
    v = _src_values(src, idx.shape, input.dtype)
    lin = lin.reshape(-1)
    if reduce == "sum":
        base = input
        if not include_self:
            keep = xp.ones(input.array.size, dtype=input.dtype)
            keep[lin] = 0
            base = input * Tensor._make(keep.reshape(input.array.shape))
        return base + Scatter.apply(v, ix=_Flat(lin.reshape(idx.shape)), shape=input.array.shape)
    return ScatterReduce.apply(input, v, lin=lin, reduce=reduce, include_self=include_self)


# ---- reductions ----------------------------------------------------------------------------

def nansum(input, dim=None, keepdim=False, *, dtype=None):
    x = input if input.dtype.kind not in "fV" else where(isnan(input), Tensor._make(input.array.dtype.type(0)), input)
    return sum(x, dim, keepdim, dtype=dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    if input.dtype.kind not in "fV" and dtype is None:
        raise RuntimeError(f"nanmean(): expected input to have floating point dtype but got {input.dtype}")
    x = input if dtype is None else input.to(dtype)
    count = sum(Tensor._make(~backend.array_module(x.array).isnan(x.array)).to(x.dtype), dim, keepdim)
    return nansum(x, dim, keepdim) / count


class LogCumSumExp(Function):
    """log(cumsum(exp(x))) as a running logaddexp (exact for any spread of values). Backward:
    grad_i = sum_{j >= i} g_j exp(x_i - out_j), shifted by the maximum so nothing overflows
    unless the values span more than ~700."""
    save_output = True

    def forward(self, x, dim=0):
        self.save_for_backward(self.inputs[0])
        self.dim = dim
        with np.errstate(all="ignore"):
            return backend.array_module(x).logaddexp.accumulate(x, axis=dim)

    def backward(self, g):
        x, = self.saved_tensors
        out = self.output()
        xp = backend.array_module(x.array)
        d = self.dim
        m = xp.max(x.array, axis=d, keepdims=True) if x.shape[d] else x.array
        m = Tensor._make(xp.where(xp.isfinite(m), m, 0))
        live = Tensor._make((out.array != -np.inf).astype(x.dtype))
        with np.errstate(all="ignore"):
            w = g * exp(m - where(live.array.astype(bool), out, m)) * live
        rev = flip(cumsum(flip(w, (d,)), d), (d,))
        return rev * exp(x - m)


def logcumsumexp(input, dim):
    """log(cumsum(exp(input))) along ``dim``."""
    x = input if input.dtype.kind in "fV" else input.to(backend.get_default_dtype())
    if x.ndim == 0:
        return x.clone()
    return LogCumSumExp.apply(x, dim=wrap_dim(dim, x.ndim, "logcumsumexp"))


def aminmax(input, *, dim=None, keepdim=False):
    if input.numel() == 0:
        raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation has no identity.")
    dims = () if dim is None else dim
    return return_types.aminmax(amin(input, dims, keepdim), amax(input, dims, keepdim))


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along ``dim`` (the smallest among ties) and an index of it."""
    from .index import gather
    a = backend.to_numpy(input.array)
    if a.ndim == 0:
        return return_types.mode(input.clone(), Tensor._make(np.zeros((), dtype=np.int64)))
    d = wrap_dim(dim, a.ndim, "mode")
    x = np.moveaxis(a, d, -1)
    flat = x.reshape(-1, x.shape[-1])
    vals = np.empty(flat.shape[0], dtype=a.dtype)
    idxs = np.empty(flat.shape[0], dtype=np.int64)
    for r, row in enumerate(flat):
        u, counts = np.unique(row, return_counts=True)
        v = u[np.argmax(counts)]
        vals[r] = v
        idxs[r] = np.nonzero(row == v)[0][-1]
    idx = np.moveaxis(idxs.reshape(x.shape[:-1] + (1,)), -1, d)
    idx_t = Tensor._make(backend.to_device(idx, input.device))
    values = gather(input, d, idx_t)
    if not keepdim:
        values, idx_t = values.squeeze(d), idx_t.squeeze(d)
    return return_types.mode(values, idx_t)


# ---- statistics and integration -------------------------------------------------------------

def cov(input, *, correction=1, fweights=None, aweights=None):
    if input.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with {input.ndim} dimensions")
    x = input if input.ndim == 2 else reshape(input, 1, -1)
    if x.dtype.kind not in "fV":
        x = x.to(backend.get_default_dtype())
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = fweights.to(x.dtype)
    if aweights is not None:
        w = aweights.to(x.dtype) if w is None else w * aweights.to(x.dtype)
    if w is None:
        avg = x.mean(1, keepdim=True)
        norm = n - correction
        xc = x - avg
        c = (xc @ xc.t()) / builtins.max(norm, 0)
    else:
        wsum = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum
        if aweights is None:
            norm = wsum - correction
        else:
            norm = wsum - correction * (w * aweights.to(x.dtype)).sum() / wsum
        xc = x - avg
        c = ((xc * w) @ xc.t()) / norm.clamp(min=0)
    return reshape(c, ()) if x.shape[0] == 1 else c


def corrcoef(input):
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    sd = d.sqrt()
    c = c / sd[:, None] / sd[None, :]
    return c.clamp(-1, 1)


def _trap_parts(y, x, dx, dim, opname):
    d = wrap_dim(dim, y.ndim, opname)
    n = y.shape[d]
    if y.dtype.kind not in "fV":
        y = y.to(backend.get_default_dtype())
    left, right = narrow(y, d, 0, builtins.max(n - 1, 0)), narrow(y, d, 1, builtins.max(n - 1, 0))
    avg = (left + right) / 2.0
    if x is None:
        return avg * (1.0 if dx is None else dx), d
    if x.ndim == 1:
        if x.shape[0] != n:
            raise RuntimeError(f"{opname}: There must be one `x` value for each sample point")
        dxs = diff(x)
        shape = [1] * y.ndim
        shape[d] = builtins.max(n - 1, 0)
        dxs = reshape(dxs, *shape)
    else:
        dxs = diff(x, dim=d)
    return avg * dxs, d


def trapezoid(y, x=None, *, dx=None, dim=-1):
    if isinstance(x, numbers.Number):
        x, dx = None, x
    parts, d = _trap_parts(y, x, dx, dim, "trapezoid")
    return sum(parts, d)


def trapz(y, x=None, *, dx=None, dim=-1):
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    if isinstance(x, numbers.Number):
        x, dx = None, x
    parts, d = _trap_parts(y, x, dx, dim, "cumulative_trapezoid")
    return cumsum(parts, d)
