"""Shape and movement ops: broadcasting, reshape/view, transpose/permute, squeeze/unsqueeze,
expand, repeat, cat/stack/split, flip, roll, pad, tril/triu.

View ops (reshape when NumPy can view, transpose, permute, squeeze, unsqueeze, expand, basic
slicing) return arrays sharing the input's memory and set ``is_view`` so the output shares the
input's version counter. Each public function validates its arguments, then either wraps the
result directly (no gradient needed: the fast path) or goes through its ``Function``.

The low-level gather/scatter pair used by indexing (``Gather``/``Scatter``/``IndexPut``/
``Masked`` with the ``_Basic``/``_Staged``/``_Flat`` index descriptions) lives here too, so that
slicing-based backward formulas (cat, split, pad) and ``index.py`` share one implementation.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function, check_same_device
from ..autograd.grad_mode import _enabled
from ..tensor import Tensor
from ._util import IndexOutOfRangeError, reduced_axes, shape_arg, wrap_dim

__all__ = ["sum_to", "broadcast_to", "reshape", "view", "flatten", "unflatten", "transpose",
           "swapaxes", "swapdims", "permute", "t", "squeeze", "unsqueeze", "expand", "repeat",
           "cat", "concat", "concatenate", "stack", "hstack", "vstack", "split", "chunk",
           "unbind", "narrow", "select", "flip", "fliplr", "flipud", "roll", "pad", "tril",
           "triu", "movedim", "moveaxis"]

_SLICE_ALL = slice(None)


def _needs_graph(x):
    return _enabled[0] and x.requires_grad


def _wrap(x, out, view):
    """Wrap ``out`` (computed from ``x``) without recording: the no-gradient fast path."""
    t = Tensor._make(out)
    if view:
        t._version = x._version
        t._isview = True
    return t


def _shape_arg(shape):
    """``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` as a tuple of ints (fast for plain ints)."""
    if len(shape) == 1 and type(shape[0]) is not int:
        shape = shape[0]
        if not isinstance(shape, (tuple, list)):
            return shape_arg((shape,))
    for v in shape:
        if type(v) is not int:
            return tuple(int(v) for v in shape)
    return tuple(shape)


def _broadcast_array(a, shape):
    """A read-only broadcast view of ``a`` with ``shape`` (already checked to be compatible).
    Builds the strided view directly for C-contiguous NumPy arrays (np.broadcast_to is slow)."""
    if type(a) is np.ndarray and a.flags.c_contiguous:
        ash = a.shape
        lead = len(shape) - len(ash)
        st = list(a.strides)
        for i in range(len(ash)):
            if ash[i] == 1 and shape[lead + i] != 1:
                st[i] = 0
        out = np.ndarray(shape, a.dtype, a, 0, (0,) * lead + tuple(st) if lead else tuple(st))
        out.flags.writeable = False
        return out
    return backend.array_module(a).broadcast_to(a, shape)


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


# ---------------------------------------------------------------------------------------------
# Broadcasting
# ---------------------------------------------------------------------------------------------

class SumTo(Function):
    """Sum a broadcast gradient back down to ``shape``; its backward broadcasts again."""

    def forward(self, x, shape=None):
        self.in_shape = x.shape
        lead, axes = reduced_axes(x.shape, shape)
        out = x.sum(axis=axes, keepdims=True) if axes else x
        return out.reshape(shape) if lead else out

    def backward(self, g):
        return broadcast_to(g, self.in_shape)


class BroadcastTo(Function):
    is_view = True

    def forward(self, x, shape=None):
        self.in_shape = x.shape
        return _broadcast_array(x, shape)

    def backward(self, g):
        return sum_to(g, self.in_shape)


def sum_to(x, shape):
    shape = tuple(shape)
    if x.array.shape == shape:
        return x
    return SumTo.apply(x, shape=shape)


def broadcast_to(input, shape):
    shape = _shape_arg((shape,)) if type(shape) is not int else (shape,)
    a = input.array
    ashape = a.shape
    if ashape == shape:
        return input
    lead = len(shape) - len(ashape)
    ok = lead >= 0
    if ok:
        for i, n in enumerate(ashape):
            m = shape[lead + i]
            if n != m and n != 1 or m < 0:
                ok = False
                break
    if not ok:
        raise RuntimeError(f"broadcast_to: the shape {tuple(ashape)} cannot be broadcast to {shape}")
    if not _needs_graph(input):
        return _wrap(input, _broadcast_array(a, shape), True)
    return BroadcastTo.apply(input, shape=shape)


def expand(input, *sizes):
    """Broadcast to ``sizes`` (``-1`` keeps a dimension); new dimensions go in front. A view."""
    sizes = _shape_arg(sizes)
    shape = input.array.shape
    nd = len(shape)
    if len(sizes) < nd:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({nd}); sizes {list(sizes)}, "
                           f"tensor shape {tuple(shape)}")
    lead = len(sizes) - nd
    out = list(sizes)
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise RuntimeError(f"expand: the expanded size of the tensor ({s}) isn't allowed in a "
                                   f"leading, non-existing dimension {i} (sizes {list(sizes)}, tensor "
                                   f"shape {tuple(shape)})")
            continue
        have = shape[i - lead]
        if s == -1:
            out[i] = have
        elif s != have and have != 1:
            raise RuntimeError(f"expand: the expanded size of the tensor ({s}) must match the existing "
                               f"size ({have}) at non-singleton dimension {i}. Target sizes: "
                               f"{list(sizes)}. Tensor sizes: {list(shape)}")
        elif s < 0:
            raise RuntimeError(f"expand: invalid size {s} at dimension {i} (sizes {list(sizes)})")
    out = tuple(out)
    if not _needs_graph(input):
        return _wrap(input, _broadcast_array(input.array, out), True)
    return BroadcastTo.apply(input, shape=out)


# ---------------------------------------------------------------------------------------------
# Reshape family (reshape, view, flatten, unflatten, squeeze, unsqueeze)
# ---------------------------------------------------------------------------------------------

class Reshape(Function):
    """A reshape that copied (the input's layout could not be viewed)."""

    def forward(self, x, shape=None):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return _reshape(g, self.in_shape)


class View(Reshape):
    """A reshape that shares the input's memory."""
    is_view = True


class Squeeze(View):
    pass


class Unsqueeze(View):
    pass


def _reshape(x, shape):
    """Reshape without argument checks (backward formulas)."""
    if x.array.shape == shape:
        return x
    out = x.array.reshape(shape)
    is_view = _shares(out, x.array)
    if not _needs_graph(x):
        return _wrap(x, out, is_view)
    return (View if is_view else Reshape).apply(x, shape=shape)


def _shares(out, a):
    """Whether ``out`` (a reshape of ``a``) is a view of it rather than a copy."""
    b = out.base
    if b is None:
        return out.size == 0
    if b is a or (b is a.base and b is not None):
        return True
    return out.size == 0 or backend.array_module(a).may_share_memory(out, a)


def _infer_shape(shape, in_shape, opname):
    numel = 1
    for s in in_shape:
        numel *= s
    known = 1
    for s in shape:
        if s < 0:
            break
        known *= s
    else:
        if known == numel:
            return shape
    neg = -1
    known = 1
    for i, s in enumerate(shape):
        if s == -1:
            if neg >= 0:
                raise RuntimeError(f"{opname}: only one dimension can be inferred; shape {list(shape)}, "
                                   f"input shape {tuple(in_shape)}")
            neg = i
        elif s < 0:
            raise RuntimeError(f"{opname}: invalid shape dimension {s} in shape {list(shape)} "
                               f"(input shape {tuple(in_shape)})")
        else:
            known *= s
    if neg >= 0:
        if known == 0:
            raise RuntimeError(f"{opname}: cannot reshape a tensor of {numel} elements (shape "
                               f"{tuple(in_shape)}) into shape {list(shape)} because the unspecified "
                               f"dimension size -1 can be any value and is ambiguous")
        if numel % known:
            raise RuntimeError(f"{opname}: shape {list(shape)} is invalid for input of shape "
                               f"{tuple(in_shape)} (size {numel})")
        shape = shape[:neg] + (numel // known,) + shape[neg + 1:]
    elif known != numel:
        raise RuntimeError(f"{opname}: shape {list(shape)} is invalid for input of shape "
                           f"{tuple(in_shape)} (size {numel})")
    return shape


def reshape(input, *shape):
    """``input`` with a new shape (one ``-1`` is inferred): a view when the layout allows, else a copy."""
    shape = _infer_shape(_shape_arg(shape), input.array.shape, "reshape")
    a = input.array
    out = a.reshape(shape)
    is_view = _shares(out, a)
    if not _needs_graph(input):
        return _wrap(input, out, is_view)
    return (View if is_view else Reshape).apply(input, shape=shape)


def _private_layout(t):
    """Whether ``t`` owns a dense but non-C-contiguous buffer (a permutation of a contiguous block)
    that no other Tensor views: the channels-last layouts deepgrad's fused ops produce."""
    if getattr(t, "_isview", False):
        return False
    a = t.array
    dims = sorted(((st, n) for st, n in zip(a.strides, a.shape) if n != 1), reverse=True)
    expect = a.itemsize
    for st, n in reversed(dims):
        if st != expect:
            return False
        expect *= n
    return True


def view(input, *shape):
    """``input`` with a new shape, always sharing its memory (errors where that is impossible)."""
    if len(shape) == 1 and type(shape[0]) is not int and not isinstance(
            shape[0], (tuple, list, numbers.Integral, Tensor)):
        try:
            dt = backend.as_dtype(shape[0])
        except TypeError:
            dt = None
        if dt is not None:
            raise NotImplementedError(f"view: reinterpreting a tensor as dtype {dt} is not supported; "
                                      f"use .to({dt})")
    shape = _infer_shape(_shape_arg(shape), input.array.shape, "view")
    a = input.array
    out = a.reshape(shape)
    if not _shares(out, a) and _private_layout(input):
        # Convolution, pooling and the elementwise ops after them keep activations channels-last
        # behind an NCHW view: where PyTorch's tensor is contiguous and view() works, ours is a
        # dense permutation. Such a tensor shares its memory with no other Tensor, so the view is
        # taken of a contiguous copy; it keeps the version counter, so an in-place write to either
        # still invalidates what autograd saved of the other. (A real view of another tensor, e.g.
        # x.t(), still raises below, as in PyTorch.)
        r = reshape(input, shape)
        r._version = input._version
        return r
    if not _shares(out, a):
        raise RuntimeError(f"view: view size {list(shape)} is not compatible with the input tensor's "
                           f"size and stride (shape {tuple(a.shape)}, strides in elements "
                           f"{tuple(s // a.itemsize for s in a.strides)}): at least one dimension spans "
                           f"across two contiguous subspaces. Use .reshape(...) instead.")
    if not _needs_graph(input):
        return _wrap(input, out, True)
    return View.apply(input, shape=shape)


def flatten(input, start_dim=0, end_dim=-1):
    shape = input.array.shape
    nd = len(shape)
    if nd == 0:
        return reshape(input, (1,))
    s = wrap_dim(start_dim, nd, "flatten")
    e = wrap_dim(end_dim, nd, "flatten")
    if s > e:
        raise RuntimeError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim}) "
                           f"for a tensor of shape {tuple(shape)}")
    if s == e:
        return input
    return reshape(input, shape[:s] + (_prod(shape[s:e + 1]),) + shape[e + 1:])


def unflatten(input, dim, sizes):
    shape = input.array.shape
    d = wrap_dim(dim, len(shape), "unflatten")
    sizes = shape_arg((sizes,)) if not isinstance(sizes, int) else (sizes,)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    try:
        sizes = _infer_shape(sizes, (shape[d],) if shape else (1,), "unflatten")
    except RuntimeError:
        raise RuntimeError(f"unflatten: provided sizes {list(sizes)} don't multiply up to the size of "
                           f"dim {dim} ({shape[d] if shape else 1}) in the input tensor of shape "
                           f"{tuple(shape)}") from None
    return reshape(input, shape[:d] + tuple(sizes) + shape[d + 1:])


def squeeze(input, dim=None):
    """Remove dimensions of size 1 (all, or those of ``dim``, an int or a tuple; others are kept)."""
    shape = input.array.shape
    nd = len(shape)
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        axes = {wrap_dim(int(d), nd, "squeeze") for d in dims}
        new = tuple(s for i, s in enumerate(shape) if not (i in axes and s == 1))
    out = input.array.reshape(new)
    if not _needs_graph(input):
        return _wrap(input, out, True)
    return Squeeze.apply(input, shape=new)


def unsqueeze(input, dim):
    shape = input.array.shape
    nd = len(shape)
    if not -nd - 1 <= dim <= nd:
        raise IndexError(f"unsqueeze: dimension out of range (expected to be in range of "
                         f"[{-nd - 1}, {nd}], but got {dim}) for a tensor of shape {tuple(shape)}")
    if dim < 0:
        dim += nd + 1
    new = shape[:dim] + (1,) + shape[dim:]
    out = input.array.reshape(new)
    if not _needs_graph(input):
        return _wrap(input, out, True)
    return Unsqueeze.apply(input, shape=new)


# ---------------------------------------------------------------------------------------------
# Transpose / permute / movedim
# ---------------------------------------------------------------------------------------------

class Permute(Function):
    is_view = True

    def forward(self, x, dims=None):
        self.dims = dims
        return x.transpose(dims)

    def backward(self, g):
        return _permute(g, tuple(int(i) for i in np.argsort(self.dims)))


class Transpose(Permute):
    pass


def _permute(x, dims, cls=Permute):
    if not _needs_graph(x):
        return _wrap(x, x.array.transpose(dims), True)
    return cls.apply(x, dims=dims)


def transpose(input, dim0, dim1):
    nd = input.array.ndim
    if nd == 0:
        wrap_dim(dim0, 0, "transpose"), wrap_dim(dim1, 0, "transpose")
        return _permute(input, (), Transpose)
    d0 = wrap_dim(dim0, nd, "transpose")
    d1 = wrap_dim(dim1, nd, "transpose")
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _permute(input, tuple(dims), Transpose)


swapaxes = swapdims = transpose


def permute(input, *dims):
    dims = _shape_arg(dims)
    nd = input.array.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute: number of dims don't match: the tensor has shape "
                           f"{tuple(input.shape)} ({nd} dims) but dims {list(dims)} has {len(dims)}")
    dims = tuple(wrap_dim(d, nd, "permute") for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError(f"permute: repeated dim in dims {list(dims)} (tensor shape {tuple(input.shape)})")
    return _permute(input, dims)


def t(input):
    nd = input.array.ndim
    if nd > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, but got a tensor of shape "
                           f"{tuple(input.shape)}; use transpose(dim0, dim1) or mT")
    return _permute(input, tuple(reversed(range(nd))), Transpose)


def movedim(input, source, destination):
    nd = input.array.ndim
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: invalid source or destination dims: source ({list(src)} dims) "
                           f"should contain the same number of dims as destination ({list(dst)} dims)")
    src = tuple(wrap_dim(d, nd, "movedim") for d in src)
    dst = tuple(wrap_dim(d, nd, "movedim") for d in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: repeated dim in source {list(src)} or destination {list(dst)}")
    order = [None] * nd
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(nd) if i not in src)
    order = tuple(o if o is not None else next(rest) for o in order)
    return _permute(input, order)


moveaxis = movedim


# ---------------------------------------------------------------------------------------------
# Index descriptions shared by slicing and indexing: how to gather, scatter-add, fill and set.
# ---------------------------------------------------------------------------------------------

class _Basic:
    """A basic NumPy index (ints, slices, None, Ellipsis): the result is a view, no repeats."""
    __slots__ = ("key",)
    view = True

    def __init__(self, key):
        self.key = key

    def get(self, a):
        return a[self.key]

    def scatter(self, g, shape):
        xp = backend.array_module(g)
        if g.ndim == len(shape) and xp is np:
            # slices only: the zeros laid out as g (a channels-last gradient stays channels-last)
            z = _full_like_layout(xp, g, shape, 0)
        else:
            z = xp.zeros(shape, dtype=g.dtype)
        z[self.key] = g
        return z

    def set(self, a, v):
        a[self.key] = v


class _Staged:
    """Indexing applied in stages (each a NumPy index; all but the last basic, so views).
    ``dup``: positions may repeat (integer arrays), so scatter must add, not assign."""
    __slots__ = ("stages", "dup")
    view = False

    def __init__(self, stages, dup):
        self.stages, self.dup = stages, dup

    def get(self, a):
        for s in self.stages:
            a = a[s]
        return a

    def _target(self, a):
        for s in self.stages[:-1]:
            a = a[s]
        return a

    def set(self, a, v):
        self._target(a)[self.stages[-1]] = v

    def scatter(self, g, shape):
        xp = backend.array_module(g)
        if not self.dup:
            z = xp.zeros(shape, dtype=g.dtype)
            self._target(z)[self.stages[-1]] = g
            return z
        lin = self.get(xp.arange(_prod(shape), dtype=np.int64).reshape(shape))
        return _scatter_add_lin(g, lin, shape)


class _Flat:
    """Positions given as flat (C-order) indices ``lin`` into the source; may repeat."""
    __slots__ = ("lin",)
    view = False

    def __init__(self, lin):
        self.lin = lin

    def get(self, a):
        return backend.array_module(a).take(a, self.lin)

    def scatter(self, g, shape):
        return _scatter_add_lin(g, self.lin, shape)

    def set(self, a, v):
        # ``a`` is always a fresh C-contiguous copy here, so reshape(-1) is a view.
        flat = a.reshape(-1)
        xp = backend.array_module(a)
        flat[self.lin] = xp.broadcast_to(xp.asarray(v, dtype=a.dtype), self.lin.shape) if not \
            isinstance(v, numbers.Number) else v


def _scatter_add_lin(g, lin, shape):
    """Sum the values of ``g`` into a zero array of ``shape`` at flat positions ``lin``."""
    xp = backend.array_module(g)
    n = _prod(shape)
    g = xp.broadcast_to(g, lin.shape)
    if g.dtype.kind in "fV":
        out = xp.bincount(lin.reshape(-1), weights=g.reshape(-1), minlength=n)
        return out.astype(g.dtype, copy=False).reshape(shape)
    z = xp.zeros(n, dtype=g.dtype)
    xp.add.at(z, lin.reshape(-1), g.reshape(-1))
    return z.reshape(shape)


class Gather(Function):
    """``x[ix]`` for an index description ``ix`` (see above); backward scatter-adds."""

    def forward(self, x, ix=None, out=None):
        self.in_shape, self.ix = x.shape, ix
        return ix.get(x) if out is None else out

    def backward(self, g):
        return Scatter.apply(g, ix=self.ix, shape=self.in_shape)


class GatherView(Gather):
    is_view = True


class Scatter(Function):
    """A zero array of ``shape`` with ``g`` added at the positions of ``ix`` (adjoint of Gather)."""

    def forward(self, g, ix=None, shape=None):
        self.ix = ix
        return ix.scatter(g, shape)

    def backward(self, gg):
        return _gather(gg, self.ix)


class Masked(Function):
    """A copy of ``x`` with zeros at the positions of ``ix`` (self-adjoint)."""

    def forward(self, x, ix=None):
        self.ix = ix
        out = x.copy()
        ix.set(out, 0)
        return out

    def backward(self, g):
        return Masked.apply(g, ix=self.ix)


class IndexPut(Function):
    """``x`` with ``value`` written at the positions of ``ix`` (in place on x's array when
    ``inplace``; the caller then rebases the tensor). Gradient: zero at written positions for x,
    the gathered gradient (summed over broadcasting) for value."""

    def forward(self, x, v, ix=None, inplace=False):
        self.ix, self.v_shape = ix, v.shape
        out = x if inplace else x.copy()
        ix.set(out, v)
        return out

    def backward(self, g):
        gx = Masked.apply(g, ix=self.ix) if self.needs_input_grad[0] else None
        gv = None
        if self.needs_input_grad[1]:
            gv = _gather(g, self.ix)
            gv = _sum_to_value(gv, self.v_shape)
        return gx, gv


def _sum_to_value(g, v_shape):
    """Reduce a gradient of the assigned region's shape to the shape of the assigned value
    (which broadcast to it, possibly with extra leading size-1 dims)."""
    v_shape = tuple(v_shape)
    if tuple(g.shape) == v_shape:
        return g
    k = 0
    while len(v_shape) - k > g.ndim and v_shape[k] == 1:
        k += 1
    g = sum_to(g, v_shape[k:])
    return _reshape(g, v_shape) if k else g


def _gather(x, ix):
    """Apply an index description (no argument checks); a view for basic indices."""
    out = ix.get(x.array)
    if isinstance(out, np.generic):
        out = np.asarray(out)
    if not _needs_graph(x):
        return _wrap(x, out, ix.view)
    return (GatherView if ix.view else Gather).apply(x, ix=ix, out=out)


def _slice_along(nd, dim, sl):
    return (_SLICE_ALL,) * dim + (sl, Ellipsis)


def narrow(input, dim, start, length):
    shape = input.array.shape
    d = wrap_dim(dim, len(shape), "narrow")
    size = shape[d]
    start = int(start)
    if start < 0:
        start += size
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise IndexOutOfRangeError(f"narrow: start ({start}) + length ({length}) exceeds dimension "
                                   f"size ({size}) of dim {dim} for a tensor of shape {tuple(shape)}")
    return _gather(input, _Basic(_slice_along(len(shape), d, slice(start, start + length))))


def select(input, dim, index):
    shape = input.array.shape
    d = wrap_dim(dim, len(shape), "select")
    index = int(index)
    if not -shape[d] <= index < shape[d]:
        raise IndexError(f"select: index {index} out of range for dimension {dim} of size {shape[d]} "
                         f"(tensor shape {tuple(shape)})")
    return _gather(input, _Basic(_slice_along(len(shape), d, index)))


# ---------------------------------------------------------------------------------------------
# cat / stack / split / chunk / unbind
# ---------------------------------------------------------------------------------------------

class Cat(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return backend.array_module(arrays[0]).concatenate(arrays, axis=axis)

    def backward(self, g):
        out, start, nd = [], 0, g.ndim
        for need, n in zip(self.needs_input_grad, self.sizes):
            out.append(_gather(g, _Basic(_slice_along(nd, self.axis, slice(start, start + n))))
                       if need else None)
            start += n
        return tuple(out)


class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        return backend.array_module(arrays[0]).stack(arrays, axis=axis)

    def backward(self, g):
        nd = g.ndim
        return tuple(_gather(g, _Basic(_slice_along(nd, self.axis, i))) if need else None
                     for i, need in enumerate(self.needs_input_grad))


def _common_dtype(tensors):
    dt = tensors[0].array.dtype
    for x in tensors[1:]:
        d = x.array.dtype
        if d is not dt and d != dt:
            if dt.kind in "fV" and d.kind not in "fV":
                continue
            if d.kind in "fV" and dt.kind not in "fV":
                dt = d
            else:
                dt = np.promote_types(dt, d)
    return dt


def _as_tensor_list(tensors, opname):
    if isinstance(tensors, Tensor):
        raise TypeError(f"{opname}: expected a sequence of Tensors, got a single Tensor of shape "
                        f"{tuple(tensors.shape)}")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{opname}: expected a non-empty list of Tensors")
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"{opname}: expected a sequence of Tensors, but element {i} is "
                            f"{type(x).__name__}")
    check_same_device(opname, tensors, scalars=False)
    dt = _common_dtype(tensors)
    return [x if x.array.dtype == dt else x.to(dt) for x in tensors]


def cat(tensors, dim=0):
    tensors = _as_tensor_list(tensors, "cat")
    # PyTorch skips legacy empty 1-d tensors (shape (0,)) when concatenating.
    kept = [x for x in tensors if not (x.array.ndim == 1 and x.array.shape[0] == 0)]
    if not kept:
        return _wrap(tensors[0], tensors[0].array.copy(), False)
    ref = kept[0]
    nd = ref.array.ndim
    for i, x in enumerate(tensors):
        if x.array.ndim == 0:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated")
    d = wrap_dim(dim, nd, "cat")
    rs = ref.array.shape
    for x in kept[1:]:
        s = x.array.shape
        if len(s) != nd or any(a != b for i, (a, b) in enumerate(zip(s, rs)) if i != d):
            k = next(i for i, y in enumerate(tensors) if y is x)
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}: tensor 0 has "
                               f"shape {tuple(rs)} but tensor {k} has shape {tuple(s)}")
    if len(kept) == 1:
        return _clone_keep(kept[0])
    if _enabled[0] and any(x.requires_grad for x in kept):
        return Cat.apply(*kept, axis=d)
    xp = backend.array_module(ref.array)
    return Tensor._make(xp.concatenate([x.array for x in kept], axis=d))


concat = concatenate = cat


def _clone_keep(x):
    from .elementwise import clone
    return clone(x)


def stack(tensors, dim=0):
    tensors = _as_tensor_list(tensors, "stack")
    s0 = tensors[0].array.shape
    for i, x in enumerate(tensors[1:], 1):
        if x.array.shape != s0:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got {tuple(s0)} at "
                               f"entry 0 and {tuple(x.array.shape)} at entry {i}")
    nd = len(s0) + 1
    if not -nd <= dim < nd:
        raise IndexError(f"stack: dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                         f"but got {dim}) for tensors of shape {tuple(s0)}")
    d = dim + nd if dim < 0 else dim
    if _enabled[0] and any(x.requires_grad for x in tensors):
        return Stack.apply(*tensors, axis=d)
    xp = backend.array_module(tensors[0].array)
    return Tensor._make(xp.stack([x.array for x in tensors], axis=d))


def hstack(tensors):
    tensors = list(tensors)
    return cat(tensors, 0 if tensors and tensors[0].ndim == 1 else 1)


def vstack(tensors):
    tensors = [x if x.ndim >= 2 else reshape(x, (1, -1)) for x in tensors]
    return cat(tensors, 0)


class Split(Function):
    """Several views of ``x`` along ``axis`` (pieces ``bounds``); backward concatenates."""

    def forward(self, x, axis=0, bounds=()):
        self.axis, self.bounds = axis, bounds
        self.shape, self.dtype = x.shape, x.dtype
        nd = x.ndim
        return tuple(x[_slice_along(nd, axis, slice(a, b))] for a, b in bounds)

    def backward(self, *grads):
        parts = []
        for g, (a, b) in zip(grads, self.bounds):
            if g is None:
                s = list(self.shape)
                s[self.axis] = b - a
                g = Tensor._make(_zeros_like_any(grads, tuple(s), self.dtype))
            parts.append(g)
        return cat(parts, self.axis) if len(parts) > 1 else parts[0]


class Unbind(Function):
    def forward(self, x, axis=0):
        self.axis, self.shape, self.dtype = axis, x.shape, x.dtype
        nd = x.ndim
        return tuple(x[_slice_along(nd, axis, i)] for i in range(x.shape[axis]))

    def backward(self, *grads):
        s = self.shape[:self.axis] + self.shape[self.axis + 1:]
        parts = [g if g is not None else Tensor._make(_zeros_like_any(grads, s, self.dtype))
                 for g in grads]
        return stack(parts, self.axis)


def _zeros_like_any(grads, shape, dtype):
    ref = next(g for g in grads if g is not None)
    return backend.array_module(ref.array).zeros(shape, dtype=ref.array.dtype)


def _split_views(x, d, bounds, cls=Split):
    a = x.array
    nd = a.ndim
    if _needs_graph(x):
        outs = cls.apply(x, axis=d, bounds=bounds) if cls is Split else cls.apply(x, axis=d)
        for o in outs:
            o._version = x._version
            o._isview = True
        return tuple(outs)
    if cls is Split:
        return tuple(_wrap(x, a[_slice_along(nd, d, slice(lo, hi))], True) for lo, hi in bounds)
    return tuple(_wrap(x, a[_slice_along(nd, d, i)], True) for i in range(a.shape[d]))


def split(tensor, split_size_or_sections, dim=0):
    shape = tensor.array.shape
    if not shape:
        raise RuntimeError("split: expected a tensor with at least 1 dimension, got a 0-d tensor")
    d = wrap_dim(dim, len(shape), "split")
    size = shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step < 0 or (step == 0 and size != 0):
            raise RuntimeError(f"split: split_size can only be 0 if dimension size is 0, but got "
                               f"split_size={step} for dim {dim} of size {size} (tensor shape {tuple(shape)})")
        if size == 0:
            bounds = ((0, 0),)
        else:
            bounds = tuple((i, min(i + step, size)) for i in range(0, size, step))
    else:
        sections = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sections) or sum(sections) != size:
            raise RuntimeError(f"split: split_with_sizes expects split_sizes to sum exactly to {size} "
                               f"(input tensor's size at dimension {dim}, shape {tuple(shape)}), but got "
                               f"split_sizes={sections}")
        bounds, start = [], 0
        for s in sections:
            bounds.append((start, start + s))
            start += s
        bounds = tuple(bounds)
    return _split_views(tensor, d, bounds)


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError(f"chunk: chunks must be greater than 0, got {chunks}")
    shape = input.array.shape
    if not shape:
        raise RuntimeError("chunk: expected a tensor with at least 1 dimension, got a 0-d tensor")
    d = wrap_dim(dim, len(shape), "chunk")
    size = shape[d]
    step = -(-size // chunks)
    if size == 0:
        return split(input, [0] * chunks, d)
    return split(input, step, d)


def unbind(input, dim=0):
    shape = input.array.shape
    if not shape:
        raise RuntimeError("unbind: dimension specified as 0 but tensor has no dimensions")
    d = wrap_dim(dim, len(shape), "unbind")
    if shape[d] == 0:
        return ()
    return _split_views(input, d, None, Unbind)


# ---------------------------------------------------------------------------------------------
# repeat / flip / roll / tril / triu
# ---------------------------------------------------------------------------------------------

class Repeat(Function):
    def forward(self, x, reps=()):
        self.in_shape, self.reps = x.shape, reps
        return backend.array_module(x).tile(x, reps)

    def backward(self, g):
        reps = self.reps
        s = (1,) * (len(reps) - len(self.in_shape)) + tuple(self.in_shape)
        inter = tuple(v for r, n in zip(reps, s) for v in (r, n))
        target = tuple(v for n in s for v in (1, n))
        return _reshape(sum_to(_reshape(g, inter), target), tuple(self.in_shape))


def repeat(input, *sizes):
    reps = _shape_arg(sizes)
    nd = input.array.ndim
    if len(reps) < nd:
        raise RuntimeError(f"repeat: number of repeat dims ({len(reps)}, {list(reps)}) can not be smaller "
                           f"than number of dimensions of tensor (shape {tuple(input.shape)})")
    if any(r < 0 for r in reps):
        raise RuntimeError(f"repeat: trying to create a tensor with negative dimension: repeats "
                           f"{list(reps)}, tensor shape {tuple(input.shape)}")
    if not _needs_graph(input):
        return Tensor._make(backend.array_module(input.array).tile(input.array, reps))
    return Repeat.apply(input, reps=reps)


class Flip(Function):
    def forward(self, x, axes=()):
        self.axes = axes
        return backend.array_module(x).flip(x, axes).copy()

    def backward(self, g):
        return Flip.apply(g, axes=self.axes)


def _dims_tuple(dims, nd, opname):
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    out = tuple(wrap_dim(int(d), nd, opname) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{opname}: dims has duplicates: {list(dims)}")
    return out


def flip(input, dims):
    axes = _dims_tuple(dims, input.array.ndim, "flip")
    if input.array.ndim == 0:
        axes = ()
    return Flip.apply(input, axes=axes)


def fliplr(input):
    if input.ndim < 2:
        raise RuntimeError(f"fliplr: input must be >= 2-d, got shape {tuple(input.shape)}")
    return flip(input, (1,))


def flipud(input):
    if input.ndim < 1:
        raise RuntimeError("flipud: input must be >= 1-d")
    return flip(input, (0,))


class Roll(Function):
    def forward(self, x, shifts=(), axes=None):
        self.shifts, self.axes = shifts, axes
        xp = backend.array_module(x)
        if axes is None:
            return xp.roll(x.reshape(-1), shifts[0]).reshape(x.shape)
        return xp.roll(x, shifts, axes)

    def backward(self, g):
        return Roll.apply(g, shifts=tuple(-s for s in self.shifts), axes=self.axes)


def roll(input, shifts, dims=None):
    shifts = (int(shifts),) if isinstance(shifts, (int, np.integer)) else tuple(int(s) for s in shifts)
    nd = input.array.ndim
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts {list(shifts)} must be a single int when dims is None")
        return Roll.apply(input, shifts=shifts, axes=None)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(dims) != len(shifts):
        raise RuntimeError(f"roll: shifts and dimensions must align: shifts {list(shifts)}, dims {list(dims)}")
    axes = tuple(wrap_dim(int(d), nd, "roll") for d in dims)
    return Roll.apply(input, shifts=shifts, axes=axes)


class _Tri(Function):
    upper = False

    def forward(self, x, k=0):
        self.k = k
        xp = backend.array_module(x)
        return xp.triu(x, k) if self.upper else xp.tril(x, k)

    def backward(self, g):
        return type(self).apply(g, k=self.k)


class Tril(_Tri):
    pass


class Triu(_Tri):
    upper = True


def tril(input, diagonal=0):
    if input.array.ndim < 2:
        raise RuntimeError(f"tril: input tensor must have at least 2 dimensions, got shape {tuple(input.shape)}")
    return Tril.apply(input, k=int(diagonal))


def triu(input, diagonal=0):
    if input.array.ndim < 2:
        raise RuntimeError(f"triu: input tensor must have at least 2 dimensions, got shape {tuple(input.shape)}")
    return Triu.apply(input, k=int(diagonal))


# ---------------------------------------------------------------------------------------------
# pad (torch.nn.functional.pad's convention: pairs from the last dimension backwards)
# ---------------------------------------------------------------------------------------------

def _full_like_layout(xp, x, shape, value):
    """``full(shape, value)`` laid out in ``x``'s memory order (a channels-last activation stays
    channels-last, as ResNet's option-A shortcut pads channels: otherwise the residual add and
    every later layer would run in NCHW, transposed for each convolution)."""
    if x.ndim < 3 or x.flags.c_contiguous or min(x.strides) <= 0:
        return xp.full(shape, value, dtype=x.dtype)
    perm = sorted(range(x.ndim), key=lambda a: -x.strides[a])
    inv = sorted(range(x.ndim), key=lambda a: perm[a])
    return xp.full(tuple(shape[a] for a in perm), value, dtype=x.dtype).transpose(inv)


class PadConstant(Function):
    """Crop (negative pads) and/or pad with ``value``; backward is pad with the negated pads."""

    def forward(self, x, pads=(), value=0):
        self.pads = pads
        xp = backend.array_module(x)
        crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pads, x.shape))
        inner = x[crop]
        out_shape = tuple(n + lo + hi for (lo, hi), n in zip(pads, x.shape))
        if all(lo <= 0 and hi <= 0 for lo, hi in pads):
            return inner.copy(order="K")
        out = _full_like_layout(xp, x, out_shape, value)
        place = tuple(slice(max(lo, 0), max(lo, 0) + m) for (lo, _), m in zip(pads, inner.shape))
        out[place] = inner
        return out

    def backward(self, g):
        return PadConstant.apply(g, pads=tuple((-lo, -hi) for lo, hi in self.pads), value=0)


_NP_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input, pad, mode="constant", value=None):
    pad = tuple(int(p) for p in pad)
    shape = input.array.shape
    nd = len(shape)
    if len(pad) % 2:
        raise RuntimeError(f"pad: padding length must be divisible by 2, got pad={list(pad)}")
    if len(pad) // 2 > nd:
        raise RuntimeError(f"pad: padding length {len(pad)} is too large for an input of shape "
                           f"{tuple(shape)} (at most {2 * nd})")
    pads = [(0, 0)] * nd
    for i in range(len(pad) // 2):
        pads[nd - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    pads = tuple(pads)
    for (lo, hi), n in zip(pads, shape):
        if n + lo + hi < 0 or (lo < 0 and -lo > n) or (hi < 0 and -hi > n):
            raise RuntimeError(f"pad: the input of shape {tuple(shape)} with padding {list(pad)} "
                               f"would have a negative output size")
    if mode == "constant":
        return PadConstant.apply(input, pads=pads, value=0 if value is None else value)
    if mode not in _NP_MODES:
        raise NotImplementedError(f"pad: unsupported mode {mode!r} (use constant, reflect, replicate "
                                  f"or circular)")
    if value not in (None, 0):
        raise RuntimeError(f"pad: padding mode {mode!r} doesn't take in a value argument")
    for (lo, hi), n in zip(pads, shape):
        if (lo or hi) and mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"pad: padding size should be less than the corresponding input dimension "
                               f"for reflect mode, but got padding {list(pad)} for input of shape "
                               f"{tuple(shape)}")
        if (lo or hi) and mode == "circular" and (lo > n or hi > n):
            raise RuntimeError(f"pad: padding value causes wrapping around more than once for circular "
                               f"mode (padding {list(pad)}, input shape {tuple(shape)})")
        if (lo > 0 or hi > 0) and n == 0:
            raise RuntimeError(f"pad: cannot pad an empty dimension in {mode} mode (input shape "
                               f"{tuple(shape)})")
    xp = backend.array_module(input.array)
    lin = xp.arange(_prod(shape), dtype=np.int64).reshape(shape)
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pads, shape))
    lin = lin[crop]
    pos = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
    lin = xp.pad(lin, pos, mode=_NP_MODES[mode])
    return _gather(input, _Flat(lin))


# ---------------------------------------------------------------------------------------------
# repeat_interleave, meshgrid
# ---------------------------------------------------------------------------------------------

__all__ += ["repeat_interleave", "meshgrid"]


def _repeats_array(repeats, opname):
    if isinstance(repeats, Tensor):
        r = backend.to_numpy(repeats.array)
        if r.dtype.kind not in "iu":
            raise RuntimeError(f"{opname}: repeats must be an integer tensor, got dtype {r.dtype}")
        if r.ndim > 1:
            raise RuntimeError(f"{opname}: repeats must be 0-dim or 1-dim tensor, got shape {tuple(r.shape)}")
        r = r.astype(np.int64)
    elif isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        r = np.asarray(int(repeats), dtype=np.int64)
    else:
        raise TypeError(f"{opname}: repeats must be an int or an integer Tensor, got {type(repeats).__name__}")
    if r.size and int(r.min()) < 0:
        raise RuntimeError(f"{opname}: repeats must be non-negative, got {r.tolist()}")
    return r


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Repeat each element (or each slice along ``dim``) ``repeats`` times in place, e.g.
    ``[a, b] -> [a, a, b, b]``. ``repeats``: an int or a tensor with one count per element.
    ``repeat_interleave(counts)`` alone gives ``arange(len(counts))`` repeated by ``counts``."""
    if repeats is None:                      # torch.repeat_interleave(repeats)
        r = _repeats_array(input, "repeat_interleave")
        if r.ndim != 1:
            raise RuntimeError(f"repeat_interleave: repeats must be a 1-d tensor, got shape {tuple(r.shape)}")
        out = np.repeat(np.arange(r.shape[0], dtype=np.int64), r)
        return Tensor._make(backend.to_device(out, input.device) if input.device.type != "cpu" else out)
    if not isinstance(input, Tensor):
        raise TypeError(f"repeat_interleave: expected a Tensor, got {type(input).__name__}")
    if dim is None:
        input = reshape(input, -1)
        d = 0
    else:
        d = wrap_dim(dim, input.ndim, "repeat_interleave")
        if input.ndim == 0:
            input = reshape(input, 1)
    n = input.array.shape[d]
    r = _repeats_array(repeats, "repeat_interleave")
    if r.ndim == 1 and r.shape[0] == 1:
        r = r.reshape(())
    if r.ndim == 1 and r.shape[0] != n:
        raise RuntimeError(f"repeat_interleave: repeats must have the same size as input along dim, but "
                           f"got repeats.size(0) = {r.shape[0]} and input.size({d}) = {n}")
    src = np.repeat(np.arange(n, dtype=np.int64), r)
    if output_size is not None and output_size != src.shape[0]:
        raise RuntimeError(f"repeat_interleave: output_size ({output_size}) does not match the sum of "
                           f"repeats ({src.shape[0]})")
    xp = backend.array_module(input.array)
    if xp is not np:
        src = backend.to_device(src, input.device)
    return _gather(input, _Staged(((_SLICE_ALL,) * d + (src,),), True))


def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-d tensors: output i varies along dim i (``indexing='ij'``, the
    default) or, for ``'xy'``, the first two inputs index dims 1 and 0 (Cartesian, NumPy's default).
    The outputs are broadcast views."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        import warnings
        warnings.warn("meshgrid: in an upcoming release, it will be required to pass the indexing "
                      "argument; defaulting to indexing='ij' (PyTorch's default)", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"meshgrid: indexing must be one of 'xy' or 'ij', but received: {indexing}")
    if not tensors:
        raise RuntimeError("meshgrid: expects a non-empty TensorList")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"meshgrid: expected Tensors, got {type(t).__name__}")
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expected 0D or 1D tensors in the tensor list but got a tensor "
                               f"of shape {tuple(t.shape)}")
    dt = tensors[0].dtype
    if any(t.dtype != dt for t in tensors):
        raise RuntimeError(f"meshgrid: expects all tensors to have the same dtype, got "
                           f"{[str(t.dtype) for t in tensors]}")
    ts = list(tensors)
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    sizes = tuple(t.numel() for t in ts)
    outs = []
    for i, t in enumerate(ts):
        shape = [1] * len(ts)
        shape[i] = sizes[i]
        outs.append(expand(reshape(t, tuple(shape)), *sizes))
    if swap:
        outs[0], outs[1] = outs[1], outs[0]
    return tuple(outs)
