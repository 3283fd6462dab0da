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
from ._util import wrap_dim

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


def _check_range(idx, size, opname, dim, in_shape, allow_negative=False):
    if idx.size == 0:
        return idx
    lo, hi = int(idx.min()), int(idx.max())
    low = -size if allow_negative else 0
    if lo < low or hi >= size:
        bad = lo if lo < low else hi
        raise IndexError(f"{opname}: index {bad} is out of bounds for dimension {dim} with size {size} "
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
    _check_range(idx, size, opname, dim, input_shape)
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
        _check_gather_shapes("scatter", a.shape, idx.shape, d, tuple(src.shape))
        v = _src_values(src, idx.shape, a.dtype)
    else:
        v = Tensor._make(xp.asarray(value.item() if isinstance(value, Tensor) else value, dtype=a.dtype))
    if _enabled[0] and (input.requires_grad or v.requires_grad):
        return IndexPut.apply(input, v, ix=_Flat(lin), inplace=False)
    out = a.copy()
    _Flat(lin).set(out, v.array)
    return Tensor._make(out)


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
    if source.array.dtype != input.array.dtype:
        source = source.to(input.array.dtype)
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
        xp.add.at(gw, flat, g2)
        return gw


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
