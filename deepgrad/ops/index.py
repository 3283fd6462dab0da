"""Indexing ops: ``getitem`` / ``setitem`` (basic and advanced indexing with NumPy/PyTorch
semantics), gather, scatter, scatter_add, index_select, index_add, take, take_along_dim, one_hot.

Every indexing op reduces to an index description from ``shape.py`` (``_Basic`` for views,
``_Staged`` for advanced indexing, ``_Flat`` for flat positions) and the generic ``Gather`` /
``Scatter`` / ``IndexPut`` Functions there, whose backward formulas are each other: the backward
of a gather scatter-adds (repeated positions accumulate), and the backward of that scatter is the
gather again, so double backward works.

PyTorch's rule for ints mixed with advanced indices differs from NumPy's (PyTorch selects the ints
first, then indexes advanced dims in place): ``x[0, :, [1, 2]]`` has shape (3, 2) for x of shape
(2, 3, 4). We follow PyTorch by indexing in two stages when ints (or None) meet arrays.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..autograd.grad_mode import _enabled
from ..tensor import Tensor
from .shape import (Gather, GatherView, IndexPut, Scatter, _Basic, _Flat, _gather, _Staged,
                    reshape)
from ._util import IndexOutOfRangeError, wrap_dim

__all__ = ["getitem", "setitem", "gather", "scatter", "scatter_add", "index_select", "index_add",
           "take", "take_along_dim", "one_hot", "embedding"]

_INT64 = np.dtype(np.int64)


# ---------------------------------------------------------------------------------------------
# Index normalisation
# ---------------------------------------------------------------------------------------------

def _describe(index):
    if isinstance(index, tuple):
        inner = ", ".join(_describe(e) for e in index)
        return f"({inner},)" if len(index) == 1 else f"({inner})"
    if isinstance(index, Tensor):
        return f"Tensor(shape={tuple(index.shape)}, dtype={index.dtype})"
    if hasattr(index, "shape") and hasattr(index, "dtype") and not isinstance(index, np.generic):
        return f"array(shape={tuple(index.shape)}, dtype={index.dtype})"
    if isinstance(index, slice):
        parts = ["" if v is None else str(v) for v in (index.start, index.stop, index.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if index.step is not None else "")
    if index is Ellipsis:
        return "..."
    r = repr(index)
    return r if len(r) <= 60 else r[:57] + "..."


def _index_error(opname, index, shape, msg):
    return IndexError(f"{opname}: {msg} (index {_describe(index)} into a tensor of shape {tuple(shape)})")


def _as_index_array(e, xp, opname, index, shape):
    """A Tensor/ndarray/list index element as an integer or bool array of the input's module."""
    if isinstance(e, Tensor):
        arr = e.array
    elif isinstance(e, (list, tuple)):
        arr = np.asarray(e)
        if arr.size == 0:
            arr = arr.astype(np.int64)
    else:
        arr = e
    if backend.array_module(arr) is not xp:
        arr = xp.asarray(backend.to_numpy(arr)) if xp is not np else backend.to_numpy(arr)
    k = arr.dtype.kind
    if k == "b":
        return arr, False
    if arr.dtype == np.uint8 and isinstance(e, Tensor):
        return arr.astype(bool), False   # PyTorch treats byte tensors as masks
    if k in "iu":
        return arr, True
    raise _index_error(opname, index, shape, f"tensors used as indices must be long, int, byte or bool "
                                             f"tensors, got dtype {arr.dtype}")


def _indexer(a, index, opname):
    """The index description (``_Basic`` or ``_Staged``) for ``a[index]``."""
    items = index if type(index) is tuple else (index,)
    xp = backend.array_module(a)
    out = []
    n_adv = 0
    has_int_or_none = False
    dup = False
    for e in items:
        te = type(e)
        if te is slice or e is Ellipsis:
            out.append(e)
        elif e is None:
            has_int_or_none = True
            out.append(e)
        elif te is bool or te is np.bool_:
            out.append(xp.asarray(bool(e)))
            n_adv += 1
        elif te is int or isinstance(e, np.integer):
            has_int_or_none = True
            out.append(int(e))
        elif isinstance(e, Tensor) and e.array.ndim == 0 and e.array.dtype.kind in "iu":
            has_int_or_none = True          # PyTorch indexes with a 0-d integer tensor like an int
            out.append(int(e.array))
        elif isinstance(e, (Tensor, list, tuple)) or (hasattr(e, "dtype") and hasattr(e, "shape")):
            arr, is_int = _as_index_array(e, xp, opname, index, a.shape)
            dup |= is_int
            n_adv += 1
            out.append(arr)
        else:
            raise _index_error(opname, index, a.shape,
                               f"unsupported index type {type(e).__name__}; use ints, slices, None, "
                               f"Ellipsis, bool or integer tensors")
    if not n_adv:
        key = tuple(out)
        if not any(e is Ellipsis for e in key):
            key = key + (Ellipsis,)
        return _Basic(key)
    if not has_int_or_none:
        return _Staged((tuple(out),), dup)
    # PyTorch semantics: apply ints/None/slices first (a view), then the advanced indices.
    first, second = [], []
    for e in out:
        if e is None:
            first.append(None)
            second.append(slice(None))
        elif type(e) is int:
            first.append(e)
        elif type(e) is slice:
            first.append(e)
            second.append(slice(None))
        elif e is Ellipsis:
            first.append(e)
            second.append(e)
        else:
            first.extend([slice(None)] * (e.ndim if e.dtype.kind == "b" else 1))
            second.append(e)
    return _Staged((tuple(first), tuple(second)), dup)


# ---------------------------------------------------------------------------------------------
# getitem / setitem
# ---------------------------------------------------------------------------------------------

def getitem(input, index):
    """``input[index]`` with NumPy/PyTorch semantics. Basic indices give views."""
    a = input.array
    ti = type(index)
    key = None
    if ti is int or ti is slice:          # the hot path: x[i], x[a:b]
        key = (index, Ellipsis)
    elif ti is tuple:
        has_ellipsis = False
        for e in index:
            te = type(e)
            if te is int or te is slice or e is None:
                continue
            if e is Ellipsis:
                has_ellipsis = True
                continue
            break
        else:                             # all basic: x[:, 0], x[..., 1:], x[None, i]
            key = index if has_ellipsis else index + (Ellipsis,)
    if key is not None:                   # a basic index: a view
        try:
            out = a[key]
        except IndexError as e:
            raise _index_error("getitem", index, a.shape, str(e)) from None
        if not (_enabled[0] and input.requires_grad):
            t = Tensor._make(out)
            t._version = input._version
            t._isview = True
            return t
        return GatherView.apply(input, ix=_Basic(key), out=out)
    ix = _indexer(a, index, "getitem")
    try:
        out = ix.get(a)
    except IndexError as e:
        raise _index_error("getitem", index, a.shape, str(e)) from None
    if isinstance(out, np.generic):
        out = np.asarray(out)
    if not (_enabled[0] and input.requires_grad):
        t = Tensor._make(out)
        if ix.view:
            t._version = input._version
            t._isview = True
        return t
    return (GatherView if ix.view else Gather).apply(input, ix=ix, out=out)


class SetItem(IndexPut):
    pass


def _check_view_of_leaf(tensor):
    fn = tensor.grad_fn
    while fn is not None and fn.is_view:
        e = fn.next_edges[0]
        if e is None:
            return
        if type(e) is not tuple:
            raise RuntimeError(f"setitem: a view of a leaf Variable that requires grad (view shape "
                               f"{tuple(tensor.shape)}, leaf shape {tuple(e.shape)}) is being used in an "
                               f"in-place operation")
        fn = e[0]


def setitem(tensor, index, value):
    """``tensor[index] = value`` in place. Tracked by autograd when either side requires grad:
    the tensor is rebased onto a SetItem node (gradient zero at the written positions for the old
    value, the gathered gradient for ``value``). Bumps the version counter."""
    a = tensor.array
    ix = _indexer(a, index, "setitem")
    xp = backend.array_module(a)
    v_req = isinstance(value, Tensor) and value.requires_grad
    if _enabled[0] and (tensor.requires_grad or v_req) and a.dtype.kind in "fc":
        if tensor.grad_fn is None and tensor.requires_grad:
            raise RuntimeError(f"setitem: a leaf Variable that requires grad (shape {tuple(a.shape)}) is "
                               f"being used in an in-place operation; wrap it in no_grad() or clone() it")
        _check_view_of_leaf(tensor)
        if isinstance(value, Tensor):
            v = value if value.array.dtype == a.dtype else value.to(a.dtype)
        else:
            v = Tensor._make(xp.asarray(backend.to_numpy(value) if xp is not np else value, dtype=a.dtype))
        try:
            out = SetItem.apply(tensor, v, ix=ix, inplace=True)
        except RuntimeError as e:
            cause = e.__cause__
            if isinstance(cause, IndexError):
                raise _index_error("setitem", index, a.shape, str(cause)) from None
            if isinstance(cause, ValueError):
                raise RuntimeError(f"setitem: cannot assign a value of shape {tuple(v.shape)} at index "
                                   f"{_describe(index)} of a tensor of shape {tuple(a.shape)}: {cause}") from None
            raise
        tensor._bump()
        tensor.grad_fn, tensor._out_nr, tensor.requires_grad = out.grad_fn, 0, True
        return tensor
    if isinstance(value, Tensor):
        v = value.array
    elif isinstance(value, numbers.Number):
        v = value
    else:
        v = xp.asarray(value, dtype=a.dtype)
    try:
        ix.set(a, v)
    except IndexError as e:
        raise _index_error("setitem", index, a.shape, str(e)) from None
    except ValueError as e:
        vs = tuple(getattr(v, "shape", ()))
        raise RuntimeError(f"setitem: cannot assign a value of shape {vs} at index {_describe(index)} of a "
                           f"tensor of shape {tuple(a.shape)}: {e}") from None
    tensor._bump()
    return tensor


# ---------------------------------------------------------------------------------------------
# gather / scatter / scatter_add / index_select / index_add / take / take_along_dim
# ---------------------------------------------------------------------------------------------

def _index_arg(index, opname, xp):
    arr = index.array if isinstance(index, Tensor) else xp.asarray(index)
    if arr.dtype.kind not in "iu":
        raise RuntimeError(f"{opname}: expected an integer (int64) index tensor, got dtype {arr.dtype} "
                           f"(index shape {tuple(arr.shape)})")
    return arr


def _check_range(idx, size, opname, dim, in_shape, allow_negative=False, exc=IndexError):
    if idx.size == 0:
        return idx
    lo, hi = int(idx.min()), int(idx.max())
    low = -size if allow_negative else 0
    if lo < low or hi >= size:
        bad = lo if lo < low else hi
        raise exc(f"{opname}: index {bad} is out of bounds for dimension {dim} with size {size} "
                         f"(input shape {tuple(in_shape)}, index shape {tuple(idx.shape)})")
    if allow_negative and lo < 0:
        idx = idx % size if size else idx
    return idx


def _lin_along(shape, dim, idx):
    """Flat C-order positions in an array of ``shape`` of the elements ``[..., idx, ...]`` along
    ``dim`` (the index's other coordinates are its own positions)."""
    xp = backend.array_module(idx)
    nd = len(shape)
    strides = [1] * nd
    for d in range(nd - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    if nd == 0:
        return idx.astype(np.int64)
    lin = idx.astype(np.int64) * strides[dim]
    for d in range(nd):
        if d != dim and idx.shape[d] > 1:
            r = [1] * nd
            r[d] = -1
            lin = lin + xp.arange(idx.shape[d], dtype=np.int64).reshape(r) * strides[d]
    return lin


def _check_gather_shapes(opname, in_shape, idx_shape, dim, src_shape=None):
    if len(idx_shape) != len(in_shape) and not (len(in_shape) <= 1 and len(idx_shape) <= 1):
        raise RuntimeError(f"{opname}: index tensor must have the same number of dimensions as the input "
                           f"tensor (input shape {tuple(in_shape)}, index shape {tuple(idx_shape)})")
    for d, (n, m) in enumerate(zip(idx_shape, in_shape)):
        if d != dim and n > m:
            raise RuntimeError(f"{opname}: size of index {tuple(idx_shape)} does not match the input "
                               f"{tuple(in_shape)}: expected index.size({d}) <= input.size({d}) "
                               f"outside dimension {dim}")
    if src_shape is not None:
        if len(src_shape) != len(idx_shape) and not (len(src_shape) <= 1 and len(idx_shape) <= 1):
            raise RuntimeError(f"{opname}: index and src must have the same number of dimensions (index "
                               f"shape {tuple(idx_shape)}, src shape {tuple(src_shape)})")
        for d, (n, m) in enumerate(zip(idx_shape, src_shape)):
            if n > m:
                raise RuntimeError(f"{opname}: expected index {tuple(idx_shape)} to be smaller than src "
                                   f"{tuple(src_shape)} in dimension {d}")


def _flat_positions(opname, input_shape, dim, index, xp):
    nd = len(input_shape)
    d = wrap_dim(dim, nd, opname)
    idx = _index_arg(index, opname, xp)
    if nd <= 1 and idx.ndim <= 1 and idx.ndim != nd:
        idx = idx.reshape((-1,) * nd if nd else ())
    _check_gather_shapes(opname, input_shape, idx.shape, d)
    size = input_shape[d] if nd else 1
    _check_range(idx, size, opname, dim, input_shape, exc=IndexOutOfRangeError)
    return d, idx, _lin_along(input_shape, d, idx)


def gather(input, dim, index):
    """``out[i][j][k] = input[index[i][j][k]][j][k]`` (for dim 0), like ``torch.gather``."""
    xp = backend.array_module(input.array)
    _, idx, lin = _flat_positions("gather", input.array.shape, dim, index, xp)
    return _gather(input, _Flat(lin))


def _src_values(src, idx_shape, dtype):
    """The elements of ``src`` that ``index`` addresses (its leading corner), in ``dtype``."""
    if tuple(src.shape) != tuple(idx_shape):
        src = _gather(src, _Basic(tuple(slice(0, n) for n in idx_shape) + (Ellipsis,)))
    if src.array.dtype != dtype:
        src = src.to(dtype)
    return src


def scatter(input, dim, index, src=None, value=None, reduce=None):
    """A copy of ``input`` with ``src`` (or ``value``) written at ``index`` along ``dim``."""
    if reduce is not None:
        if reduce in ("add", "sum"):
            return scatter_add(input, dim, index, src if src is not None else _full_like_index(input, index, value))
        raise NotImplementedError(f"scatter: reduce={reduce!r} is not supported (use scatter_add)")
    if src is not None and not isinstance(src, Tensor):
        src, value = None, src
    if src is None and value is None:
        raise TypeError("scatter: expected a src Tensor or a value")
    a = input.array
    xp = backend.array_module(a)
    d, idx, lin = _flat_positions("scatter", a.shape, dim, index, xp)
    if src is not None:
        _check_same_dtype("scatter", input, src, "src")
        _check_gather_shapes("scatter", a.shape, idx.shape, d, tuple(src.shape))
        v = _src_values(src, idx.shape, a.dtype)
    else:
        v = Tensor._make(xp.asarray(value.item() if isinstance(value, Tensor) else value, dtype=a.dtype))
    if _enabled[0] and (input.requires_grad or v.requires_grad):
        return IndexPut.apply(input, v, ix=_Flat(lin), inplace=False)
    out = a.copy()
    _Flat(lin).set(out, v.array)
    return Tensor._make(out)


def _check_same_dtype(opname, input, other, name):
    if other.array.dtype != input.array.dtype:
        raise RuntimeError(f"{opname}: expected self and {name} to have the same dtype, but got "
                           f"{input.dtype} and {other.dtype} (shapes {tuple(input.shape)} and "
                           f"{tuple(other.shape)})")


def _full_like_index(input, index, value):
    xp = backend.array_module(input.array)
    shape = index.shape if isinstance(index, Tensor) else np.shape(index)
    return Tensor._make(xp.full(tuple(shape), value, dtype=input.array.dtype))


def scatter_add(input, dim, index, src):
    """``input`` plus ``src`` summed into the positions ``index`` along ``dim`` (repeats add)."""
    a = input.array
    xp = backend.array_module(a)
    d, idx, lin = _flat_positions("scatter_add", a.shape, dim, index, xp)
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add: src must be a Tensor, got {type(src).__name__}")
    _check_same_dtype("scatter_add", input, src, "src")
    _check_gather_shapes("scatter_add", a.shape, idx.shape, d, tuple(src.shape))
    v = _src_values(src, idx.shape, a.dtype)
    return input + Scatter.apply(v, ix=_Flat(lin), shape=a.shape)


def _select_index(opname, input, dim, index):
    a = input.array
    xp = backend.array_module(a)
    nd = a.ndim
    d = wrap_dim(dim, nd, opname)
    idx = _index_arg(index, opname, xp)
    if idx.ndim > 1:
        raise IndexError(f"{opname}: index must be a 1-d (or 0-d) tensor, got shape {tuple(idx.shape)}")
    idx = idx.reshape(-1)
    size = a.shape[d] if nd else 1
    _check_range(idx, size, opname, dim, a.shape)
    key = (slice(None),) * d + (idx,) if nd else (idx.reshape(()) if idx.size == 1 else idx,)
    return d, idx, _Staged((key,), True)


def index_select(input, dim, index):
    """The entries of ``input`` at positions ``index`` (1-d) along ``dim``."""
    _, idx, ix = _select_index("index_select", input, dim, index)
    if input.array.ndim == 0:
        return _gather(input, _Basic((Ellipsis,)))
    return _gather(input, ix)


def index_add(input, dim, index, source, alpha=1):
    """``input`` with ``alpha * source`` added at positions ``index`` along ``dim`` (repeats add)."""
    d, idx, ix = _select_index("index_add", input, dim, index)
    expect = list(input.shape)
    if expect:
        expect[d] = idx.shape[0]
    if tuple(source.shape) != tuple(expect) and not (input.ndim == 0 and source.numel() == 1):
        raise RuntimeError(f"index_add: source of shape {tuple(source.shape)} does not match the expected "
                           f"shape {tuple(expect)} (input shape {tuple(input.shape)}, {idx.shape[0]} indices "
                           f"along dim {dim})")
    _check_same_dtype("index_add", input, source, "source")
    if alpha != 1:
        source = source * alpha
    if input.ndim == 0:
        return input + reshape(source, ())
    return input + Scatter.apply(source, ix=ix, shape=input.array.shape)


def take(input, index):
    """``input`` viewed as 1-d, gathered at ``index`` (negative positions count from the end)."""
    a = input.array
    xp = backend.array_module(a)
    idx = _index_arg(index, "take", xp)
    idx = _check_range(idx, a.size, "take", 0, a.shape, allow_negative=True)
    return _gather(input, _Flat(idx.astype(np.int64)))


def take_along_dim(input, indices, dim=None):
    """Gather along ``dim`` after broadcasting ``input`` and ``indices`` (all dims but ``dim``)."""
    a = input.array
    xp = backend.array_module(a)
    idx = _index_arg(indices, "take_along_dim", xp)
    if dim is None:
        idx = _check_range(idx.reshape(-1), a.size, "take_along_dim", 0, a.shape)
        return _gather(input, _Flat(idx.astype(np.int64)))
    nd = a.ndim
    if idx.ndim != nd:
        raise RuntimeError(f"take_along_dim: input and indices should have the same number of dimensions, "
                           f"but got input shape {tuple(a.shape)} and indices shape {tuple(idx.shape)}")
    d = wrap_dim(dim, nd, "take_along_dim")
    si, sx = list(a.shape), list(idx.shape)
    si[d] = sx[d] = 1
    try:
        b = list(np.broadcast_shapes(tuple(si), tuple(sx)))
    except ValueError:
        raise RuntimeError(f"take_along_dim: input shape {tuple(a.shape)} and indices shape "
                           f"{tuple(idx.shape)} are not broadcastable outside dim {dim}") from None
    bx, bi = list(b), list(b)
    bx[d], bi[d] = a.shape[d], idx.shape[d]
    if tuple(bx) != a.shape:
        from .shape import broadcast_to
        input = broadcast_to(input, tuple(bx))
    if tuple(bi) != idx.shape:
        idx = xp.broadcast_to(idx, tuple(bi))
    return gather(input, d, Tensor._make(idx))


def one_hot(tensor, num_classes=-1):
    """``tensor``'s class indices as one-hot int64 vectors in a new last dimension (no grad)."""
    a = tensor.array if isinstance(tensor, Tensor) else np.asarray(tensor)
    if a.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot: is only applicable to an index tensor of integer type, got dtype "
                           f"{a.dtype} (shape {tuple(a.shape)})")
    xp = backend.array_module(a)
    if num_classes == -1:
        if a.size == 0:
            raise RuntimeError(f"one_hot: can not infer the total number of classes from an empty tensor "
                               f"(shape {tuple(a.shape)}); pass num_classes")
        num_classes = int(a.max()) + 1
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0:
            raise RuntimeError(f"one_hot: class values must be non-negative, got {lo}")
        if hi >= num_classes:
            raise RuntimeError(f"one_hot: class values must be smaller than num_classes ({num_classes}), "
                               f"got {hi}")
    out = (a[..., None] == xp.arange(num_classes)).astype(_INT64)
    return Tensor._make(out)


# ---------------------------------------------------------------------------------------------
# Embedding: rows of a weight matrix picked by integer indices
# ---------------------------------------------------------------------------------------------

class EmbeddingFn(Function):
    array_backward = True

    def forward(self, w, idx=None, padding_idx=None, scale_grad_by_freq=False):
        self.idx, self.wshape, self.wdtype = idx, w.shape, w.dtype
        self.padding_idx, self.scale = padding_idx, scale_grad_by_freq
        return w[idx]

    def backward(self, g):
        xp = backend.array_module(g)
        flat = self.idx.reshape(-1)
        g2 = g.reshape(flat.size, -1)
        if self.padding_idx is not None:
            keep = flat != self.padding_idx
            flat, g2 = flat[keep], g2[keep]
        if self.scale:
            counts = xp.bincount(flat, minlength=self.wshape[0])
            g2 = g2 / counts[flat][:, None].astype(g2.dtype)
        gw = xp.zeros(self.wshape, self.wdtype)
        if xp is np and flat.size > 1 and g2.ndim == 2 and int(flat.min()) >= 0:
            # Rows grouped by index (stable sort) and summed by one reduceat: 10-20x faster
            # than add.at's per-row scatter (the char-LSTM's embedding, 2048 rows); the sums
            # may round differently (NumPy sums a group with its unrolled loop).
            order = np.argsort(flat, kind="stable")
            sf = flat[order]
            starts = np.flatnonzero(np.concatenate(([True], sf[1:] != sf[:-1])))
            gw[sf[starts]] = np.add.reduceat(g2[order], starts, axis=0)
        else:
            xp.add.at(gw, flat, g2)
        return gw

    def graph_backward(self, g):
        """create_graph=True: the weight gradient is a fixed linear map of g (row sums); its
        adjoint picks rows (masked by padding_idx, scaled like backward)."""
        from ._graph import linear_map
        xp = backend.array_module(g.array)
        idx = self.idx
        coef = None
        if self.padding_idx is not None or self.scale:
            coef = xp.ones(idx.shape, g.dtype)
            if self.padding_idx is not None:
                coef[idx == self.padding_idx] = 0
            if self.scale:
                flat = idx.reshape(-1)
                kept = flat[flat != self.padding_idx] if self.padding_idx is not None else flat
                counts = xp.maximum(xp.bincount(kept, minlength=self.wshape[0]), 1)
                coef = coef / counts[idx].astype(g.dtype)

        def pick(a):
            out = a[idx]
            return out * coef[..., None] if coef is not None else out
        return linear_map(g, self.backward, pick)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` picked by the integer ``input``; no gradient flows to row ``padding_idx``."""
    idx = input.array if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected an integer (Long or Int) index tensor, got dtype {idx.dtype}")
    n = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        bad = idx[(idx < 0) | (idx >= n)].reshape(-1)[0]
        raise IndexError(f"embedding: index {int(bad)} is out of range for a weight with {n} rows "
                         f"(input shape {tuple(idx.shape)})")
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += n
        if not 0 <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx must be within num_embeddings ({n})")
    if max_norm is not None:
        _embedding_renorm_(weight, idx, max_norm, norm_type)
    return EmbeddingFn.apply(weight, idx=idx, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)


def _embedding_renorm_(weight, idx, max_norm, norm_type):
    xp = backend.array_module(weight.array)
    rows = xp.unique(idx.reshape(-1))
    w = weight.array
    sel = w[rows]
    norms = xp.linalg.norm(sel, ord=norm_type, axis=1) if norm_type != float("inf") else xp.abs(sel).max(axis=1)
    over = norms > max_norm
    if bool(over.any()):
        scale = (max_norm / (norms[over] + 1e-7)).astype(w.dtype)
        w[rows[over]] = sel[over] * scale[:, None]
        weight._version[0] += 1


# ---------------------------------------------------------------------------------------------
# index_fill / index_copy / masked_scatter / masked_select / argwhere, and the in-place forms
# (scatter_, scatter_add_, index_add_, index_fill_, index_copy_, masked_scatter_) that Tensor
# runs through Tensor._inplace (tracked by autograd like add_).
# ---------------------------------------------------------------------------------------------

__all__ += ["index_fill", "index_copy", "masked_scatter", "masked_select", "argwhere"]


def _long_index(opname, index):
    arr = index.array if isinstance(index, Tensor) else np.asarray(index)
    if arr.dtype.kind not in "iu":
        raise IndexError(f"{opname}: expected dtype int64 for index, got {arr.dtype} (index shape "
                         f"{tuple(arr.shape)})")
    return index


def _as_1d(input):
    """A 0-d tensor as shape (1,) (index_fill/index_copy treat it as one slot)."""
    return reshape(input, (1,)) if input.ndim == 0 else input


def index_fill(input, dim, index, value):
    """A copy of ``input`` with ``value`` (a number or a 0-d tensor) at positions ``index``
    along ``dim``. Gradient: zero for the filled entries of input; their sum for ``value``."""
    _long_index("index_fill", index)
    if isinstance(index, Tensor) and index.ndim > 1:
        raise RuntimeError(f"index_fill: index has to be a vector/scalar, got shape {tuple(index.shape)}")
    x = _as_1d(input)
    a = x.array
    xp = backend.array_module(a)
    d, idx, _ = _select_index("index_fill", x, dim, index)
    idx = xp.unique(idx % a.shape[d]) if idx.size else idx   # a repeated slot is filled once
    ix = _Staged(((slice(None),) * d + (idx,),), False)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"index_fill: only supports a 0-dimensional value tensor, but got a tensor "
                               f"of shape {tuple(value.shape)}")
        v = value if value.array.dtype == a.dtype else value.to(a.dtype)
    else:
        v = Tensor._make(xp.asarray(value, dtype=a.dtype))
    if _enabled[0] and (x.requires_grad or v.requires_grad) and a.dtype.kind in "fV":
        out = IndexPut.apply(x, v, ix=ix, inplace=False)
    else:
        o = a.copy()
        ix.set(o, v.array)
        out = Tensor._make(o)
    return reshape(out, ()) if input.ndim == 0 else out


def index_copy(input, dim, index, source):
    """A copy of ``input`` whose slices ``index[i]`` along ``dim`` are ``source``'s slices ``i``.
    Gradient: zero at the overwritten entries of input; the gathered gradient for ``source``."""
    _long_index("index_copy", index)
    if isinstance(index, Tensor) and index.ndim > 1:
        raise IndexError(f"index_copy: index should have dimension 1 or 0 (got {index.ndim})")
    if not isinstance(source, Tensor):
        raise TypeError(f"index_copy: source must be a Tensor, got {type(source).__name__}")
    x, src = _as_1d(input), _as_1d(source)
    d, idx, ix = _select_index("index_copy", x, dim, index)
    n = src.shape[d] if src.ndim > d else 1
    if src.ndim != x.ndim:
        raise IndexError(f"index_copy: source of shape {tuple(source.shape)} must have as many dimensions "
                         f"as self of shape {tuple(input.shape)}")
    if idx.shape[0] != n:
        raise IndexError(f"index_copy: number of indices ({idx.shape[0]}) should be equal to "
                         f"source.size(dim) ({n})")
    for k, (p, q) in enumerate(zip(x.shape, src.shape)):
        if k != d and p != q:
            raise RuntimeError(f"index_copy: source/destination tensor must have same slice shapes; "
                               f"self shape {tuple(input.shape)}, source shape {tuple(source.shape)}, "
                               f"dim {dim}")
    _check_same_dtype("index_copy", input, source, "source")
    ix = _Staged(ix.stages, False)
    if _enabled[0] and (x.requires_grad or src.requires_grad):
        out = IndexPut.apply(x, src, ix=ix, inplace=False)
    else:
        o = x.array.copy()
        ix.set(o, src.array)
        out = Tensor._make(o)
    return reshape(out, ()) if input.ndim == 0 else out


def _bool_mask(opname, mask, shape=None):
    m = mask.array if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise RuntimeError(f"{opname}: expected a boolean (bool) mask, got dtype {m.dtype}")
    return m


def _broadcast_pair(opname, input, m):
    try:
        shape = tuple(np.broadcast_shapes(tuple(input.shape), m.shape))
    except ValueError:
        raise RuntimeError(f"{opname}: the mask of shape {tuple(m.shape)} does not broadcast with the "
                           f"input of shape {tuple(input.shape)}") from None
    if shape != tuple(input.shape):
        from .shape import broadcast_to
        input = broadcast_to(input, shape)
    xp = backend.array_module(input.array)
    if backend.array_module(m) is not xp:
        m = xp.asarray(backend.to_numpy(m))
    return input, xp.broadcast_to(m, shape)


def masked_scatter(input, mask, source):
    """A copy of ``input`` whose entries where ``mask`` is True take ``source``'s elements in
    order (row-major). Gradient: zero there for input; the first ``mask.sum()`` elements of
    ``source`` get the gradient of the entries they filled."""
    m = _bool_mask("masked_scatter", mask)
    if not isinstance(source, Tensor):
        raise TypeError(f"masked_scatter: source must be a Tensor, got {type(source).__name__}")
    _check_same_dtype("masked_scatter", input, source, "source")
    x, mb = _broadcast_pair("masked_scatter", input, m)
    k = int(mb.sum())
    if source.numel() < k:
        raise RuntimeError(f"masked_scatter: number of elements of source ({source.numel()}, shape "
                           f"{tuple(source.shape)}) < number of ones in mask ({k})")
    part = getitem(reshape(source, (-1,)), slice(0, k))
    ix = _Staged(((mb,),), False)
    if _enabled[0] and (x.requires_grad or part.requires_grad):
        return IndexPut.apply(x, part, ix=ix, inplace=False)
    o = x.array.copy()
    ix.set(o, part.array)
    return Tensor._make(o)


def masked_select(input, mask):
    """The entries of ``input`` where ``mask`` is True (both broadcast), as a 1-d tensor."""
    m = _bool_mask("masked_select", mask)
    x, mb = _broadcast_pair("masked_select", input, m)
    return getitem(x, Tensor._make(mb))


def argwhere(input):
    """The indices of the non-zero elements, one row each (``nonzero(input)``)."""
    from .elementwise import nonzero
    return nonzero(input)


def _scatter_multiply(input, dim, index, src, value):
    """``scatter(..., reduce='multiply')``: no gradient (PyTorch defines none either)."""
    if _enabled[0] and (input.requires_grad or (isinstance(src, Tensor) and src.requires_grad)):
        raise RuntimeError("scatter: reduce='multiply' has no gradient in deepgrad; scatter "
                           "tensors that do not require grad (or under no_grad())")
    a = input.array
    xp = backend.array_module(a)
    d, idx, lin = _flat_positions("scatter", a.shape, dim, index, xp)
    if isinstance(src, Tensor):
        _check_same_dtype("scatter", input, src, "src")
        _check_gather_shapes("scatter", a.shape, idx.shape, d, tuple(src.shape))
        v = _src_values(src, idx.shape, a.dtype).array
    else:
        v = xp.full(idx.shape, src if value is None else value, dtype=a.dtype)
    out = a.copy()
    xp.multiply.at(out.reshape(-1), lin.reshape(-1), v.reshape(-1))
    return Tensor._make(out)


def _scatter_reduce_arg(reduce):
    if reduce is not None and reduce not in ("add", "multiply"):
        raise RuntimeError(f"scatter: reduce argument must be either add or multiply, got {reduce!r}")


def scatter_(input, dim, index, src=None, value=None, *, reduce=None):
    """In-place ``scatter`` (``reduce``: None, 'add' or 'multiply')."""
    _scatter_reduce_arg(reduce)
    if reduce == "multiply":
        return input._inplace("scatter_", lambda s: _scatter_multiply(s, dim, index, src, value))
    return input._inplace("scatter_", lambda s: scatter(s, dim, index, src, value=value, reduce=reduce))


def scatter_add_(input, dim, index, src):
    return input._inplace("scatter_add_", lambda s: scatter_add(s, dim, index, src))


def index_add_(input, dim, index, source, *, alpha=1):
    return input._inplace("index_add_", lambda s: index_add(s, dim, index, source, alpha=alpha))


def index_fill_(input, dim, index, value):
    return input._inplace("index_fill_", lambda s: index_fill(s, dim, index, value))


def index_copy_(input, dim, index, source):
    return input._inplace("index_copy_", lambda s: index_copy(s, dim, index, source))


def masked_scatter_(input, mask, source):
    return input._inplace("masked_scatter_", lambda s: masked_scatter(s, mask, source))
