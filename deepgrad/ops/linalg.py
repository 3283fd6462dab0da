"""Products: matmul (every PyTorch case), mm, bmm, mv, dot, outer, addmm, einsum.

Forward is one NumPy/CuPy call. Backward is written with the same ops on Tensors (matmul's
gradient is ``g @ b.mT`` summed to the input's batch shape; einsum's gradient is another einsum),
so every product is differentiable twice.
"""
from __future__ import annotations

import string

from .. import _parallel, backend
from ..autograd.function import Function
from ..autograd.grad_mode import _enabled
from ..tensor import Tensor
from .elementwise import where
from .reduce import _reshape, _SwapLast
from .shape import broadcast_to, sum_to

__all__ = ["linear", "bilinear", "matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger", "addmm", "einsum"]


def _shp(t):
    return tuple(t.array.shape)


def _check_pair(opname, a, b):
    for t in (a, b):
        if not isinstance(t, Tensor):
            raise TypeError(f"{opname}: expected Tensors, got {type(t).__name__}")
    if a.array.dtype != b.array.dtype:
        raise RuntimeError(f"{opname}: expected both operands to have the same dtype, but got "
                           f"{a.dtype} and {b.dtype} (shapes {_shp(a)} and {_shp(b)})")


def _mismatch(opname, a, b, ka, kb):
    return RuntimeError(f"{opname}: shapes {_shp(a)} and {_shp(b)} cannot be multiplied ({ka} != {kb})")


# ---------------------------------------------------------------------------------------------
# matmul and its special cases
# ---------------------------------------------------------------------------------------------

class Matmul(Function):
    """NumPy's ``matmul`` (the same semantics as PyTorch's: 1-D promotion, batch broadcasting)."""

    def forward(self, a, b):
        self.save_for_backward(*self.inputs)
        return a @ b

    def backward(self, g):
        a, b = self.saved_tensors
        na, nb = a.array.ndim, b.array.ndim
        # View 1-D operands as matrices: a (k,) -> (1, k), b (k,) -> (k, 1), g gets the unit dims.
        a2 = a if na > 1 else _reshape(a, (1,) + a.array.shape)
        b2 = b if nb > 1 else _reshape(b, b.array.shape + (1,))
        gs = g.array.shape
        if na == 1 and nb == 1:
            g2 = _reshape(g, (1, 1))
        elif na == 1:
            g2 = _reshape(g, gs[:-1] + (1, gs[-1]))
        elif nb == 1:
            g2 = _reshape(g, gs + (1,))
        else:
            g2 = g
        ga = gb = None
        if self.needs_input_grad[0]:
            ga2 = sum_to(Matmul.apply(g2, _SwapLast.apply(b2)), a2.array.shape)
            ga = _reshape(ga2, a.array.shape)
        if self.needs_input_grad[1]:
            if b2.array.ndim == 2 and g2.array.ndim > 2:
                # b took no part in the batch: fold the batch into the rows, one (k, B*n) @ (B*n, m)
                # product instead of a (B, k, m) buffer summed afterwards.
                k, m = b2.array.shape
                gb2 = Matmul.apply(_SwapLast.apply(_reshape(a2, (-1, k))), _reshape(g2, (-1, m)))
            else:
                gb2 = sum_to(Matmul.apply(_SwapLast.apply(a2), g2), b2.array.shape)
            gb = _reshape(gb2, b.array.shape)
        return ga, gb


def matmul(input, other):
    _check_pair("matmul", input, other)
    a, b = input.array, other.array
    na, nb = a.ndim, b.ndim
    if na == 0 or nb == 0:
        raise RuntimeError(f"matmul: both arguments need to be at least 1-D, but got shapes "
                           f"{_shp(input)} and {_shp(other)}")
    ka = a.shape[-1]
    kb = b.shape[0] if nb == 1 else b.shape[-2]
    if ka != kb:
        raise _mismatch("matmul", input, other, ka, kb)
    if na > 2 or nb > 2:
        ba, bb = a.shape[:-2], b.shape[:-2]
        for x, y in zip(reversed(ba), reversed(bb)):
            if x != y and x != 1 and y != 1:
                raise RuntimeError(f"matmul: the batch dimensions {ba} and {bb} of shapes "
                                   f"{_shp(input)} and {_shp(other)} are not broadcastable")
    return Matmul.apply(input, other)


def mm(input, mat2):
    _check_pair("mm", input, mat2)
    if input.array.ndim != 2 or mat2.array.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got shapes {_shp(input)} and {_shp(mat2)}")
    if input.array.shape[1] != mat2.array.shape[0]:
        raise _mismatch("mm", input, mat2, input.array.shape[1], mat2.array.shape[0])
    return Matmul.apply(input, mat2)


def bmm(input, mat2):
    _check_pair("bmm", input, mat2)
    a, b = input.array, mat2.array
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got shapes {_shp(input)} and {_shp(mat2)}")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: shapes {_shp(input)} and {_shp(mat2)}")
    if a.shape[2] != b.shape[1]:
        raise _mismatch("bmm", input, mat2, a.shape[2], b.shape[1])
    return Matmul.apply(input, mat2)


def mv(input, vec):
    _check_pair("mv", input, vec)
    if input.array.ndim != 2 or vec.array.ndim != 1:
        raise RuntimeError(f"mv: expected a 2-D matrix and a 1-D vector, got shapes {_shp(input)} "
                           f"and {_shp(vec)}")
    if input.array.shape[1] != vec.array.shape[0]:
        raise _mismatch("mv", input, vec, input.array.shape[1], vec.array.shape[0])
    return Matmul.apply(input, vec)


def dot(input, other):
    _check_pair("dot", input, other)
    if input.array.ndim != 1 or other.array.ndim != 1:
        raise RuntimeError(f"dot: expected 1-D tensors, got shapes {_shp(input)} and {_shp(other)}")
    if input.array.shape[0] != other.array.shape[0]:
        raise RuntimeError(f"dot: inconsistent tensor sizes: shapes {_shp(input)} and {_shp(other)}")
    return Matmul.apply(input, other)


vdot = dot  # real tensors only


def inner(input, other):
    _check_pair("inner", input, other)
    if input.array.ndim == 0 or other.array.ndim == 0:
        return input * other
    if input.array.shape[-1] != other.array.shape[-1]:
        raise RuntimeError(f"inner: the last dimensions of shapes {_shp(input)} and {_shp(other)} differ")
    return einsum("...i,...i", input, other) if input.array.ndim == other.array.ndim == 1 else \
        _inner_nd(input, other)


def _inner_nd(a, b):
    la = string.ascii_letters[:a.array.ndim - 1]
    lb = string.ascii_letters[a.array.ndim - 1:a.array.ndim + b.array.ndim - 2]
    return einsum(f"{la}Z,{lb}Z->{la}{lb}", a, b)


def outer(input, vec2):
    for t in (input, vec2):
        if not isinstance(t, Tensor):
            raise TypeError(f"outer: expected Tensors, got {type(t).__name__}")
    if input.array.ndim != 1 or vec2.array.ndim != 1:
        raise RuntimeError(f"outer: expected 1-D tensors, got shapes {_shp(input)} and {_shp(vec2)}")
    return _reshape(input, (input.array.shape[0], 1)) * vec2


ger = outer


def addmm(input, mat1, mat2, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)``; ``input`` broadcasts to the product's shape."""
    out = mm(mat1, mat2)
    if alpha != 1:
        out = out * alpha
    if beta == 0:  # input is ignored (even its NaNs), but still gets a zero gradient
        if not input.requires_grad:
            return out
        input = where(Tensor._make(backend.array_module(input.array).zeros((), dtype=bool)), input, 0.0)
        beta = 1
    bias = input if beta == 1 else input * beta
    if bias.array.shape != out.array.shape:
        try:
            bias = broadcast_to(bias, out.array.shape)
        except RuntimeError:
            raise RuntimeError(f"addmm: input of shape {_shp(input)} does not broadcast to the "
                               f"product's shape {tuple(out.array.shape)}") from None
    return bias + out


# ---------------------------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------------------------

_LETTERS = string.ascii_letters
_CANON_CACHE = {}  # (equation, shapes) -> canonical (terms, out, sizes)


class Einsum(Function):
    """``einsum`` on a canonical equation: explicit letters (no '...'), explicit output."""

    def forward(self, *arrays, terms=None, out=None, sizes=None):
        self.save_for_backward(*self.inputs)
        self.terms, self.out, self.sizes = terms, out, sizes
        xp = backend.array_module(*arrays)
        eq = ",".join(terms) + "->" + out
        if len(arrays) > 2:
            opt = True
        else:  # the naive loop visits every combination of indices; BLAS pays off when that is big
            cost = 1
            for n in sizes.values():
                cost *= n
            opt = len(arrays) == 2 and cost > 100_000
        return xp.einsum(eq, *arrays, optimize=opt)

    def backward(self, g):
        ops = self.saved_tensors
        terms, out, sizes = self.terms, self.out, self.sizes
        xp = backend.array_module(g.array)
        grads = []
        for i, t in enumerate(ops):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            dt = t.array.dtype
            in_terms, in_ops = [out], [g]
            for j, o in enumerate(ops):
                if j != i:
                    in_terms.append(terms[j])
                    in_ops.append(o)
            avail = set("".join(in_terms))
            target = []
            seen = set()
            free = iter(c for c in _LETTERS if c not in sizes)
            for c, n in zip(terms[i], t.array.shape):
                if c in seen:  # a repeated index (a diagonal): a fresh letter tied by an identity
                    f = next(free)
                    in_terms.append(c + f)
                    in_ops.append(Tensor._make(xp.eye(n, dtype=dt)))
                    target.append(f)
                    continue
                seen.add(c)
                target.append(c)
                if c not in avail:  # summed out in this operand only: the gradient is constant
                    in_terms.append(c)
                    in_ops.append(Tensor._make(xp.ones(n, dtype=dt)))
                    avail.add(c)
            gi = Einsum.apply(*in_ops, terms=tuple(in_terms), out="".join(target), sizes=sizes)
            gshape, tshape = gi.array.shape, t.array.shape
            if gshape != tshape:  # size-1 broadcasting of an index: sum here, or spread there
                gi = sum_to(gi, tuple(1 if ts == 1 else gs for gs, ts in zip(gshape, tshape)))
                gi = broadcast_to(gi, tshape)
            grads.append(gi)
        return tuple(grads)


def _canonical(equation, operands):
    """Rewrite ``equation`` with explicit letters for '...' and an explicit output. Returns the
    terms, the output and each letter's (broadcast) size."""
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->", 1)
    else:
        lhs, rhs = eq, None
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError(f"einsum(): the equation {equation!r} has {len(terms)} operand(s) but "
                           f"{len(operands)} were given")
    for c in eq.replace("...", "").replace(",", "").replace("->", ""):
        if c not in _LETTERS:
            raise RuntimeError(f"einsum(): invalid subscript {c!r} in equation {equation!r} "
                               f"(subscripts must be letters in [a-zA-Z])")
    used = set(c for c in eq if c in _LETTERS)
    free = [c for c in _LETTERS if c not in used]
    ell_nd = 0
    for t, op in zip(terms, operands):
        nd = op.array.ndim
        if "..." in t:
            k = nd - (len(t) - 3)
            if k < 0 or t.count("...") > 1:
                raise RuntimeError(f"einsum(): the subscripts {t!r} do not match operand of shape "
                                   f"{_shp(op)}")
            ell_nd = max(ell_nd, k)
        elif len(t) != nd:
            raise RuntimeError(f"einsum(): the subscripts {t!r} name {len(t)} dimensions but the "
                               f"operand has shape {_shp(op)}")
    ell = "".join(free[:ell_nd])
    canon = []
    for t, op in zip(terms, operands):
        if "..." in t:
            k = op.array.ndim - (len(t) - 3)
            t = t.replace("...", ell[ell_nd - k:])
        canon.append(t)
    if rhs is None:
        counts = {}
        for c in "".join(terms).replace(".", ""):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    else:
        if rhs.count("...") > 1 or "." in rhs.replace("...", ""):
            raise RuntimeError(f"einsum(): invalid output subscripts {rhs!r}")
        out = rhs.replace("...", ell)
        if len(set(out)) != len(out):
            raise RuntimeError(f"einsum(): output subscript repeated in {equation!r}")
    sizes = {}
    for t, op in zip(canon, operands):
        for c, s in zip(t, op.array.shape):
            prev = sizes.get(c)
            if prev is None or prev == 1:
                sizes[c] = s
            elif s != prev and s != 1:
                raise RuntimeError(f"einsum(): subscript {c} has size {s} for operand of shape "
                                   f"{_shp(op)}, which does not broadcast with the size {prev} "
                                   f"seen before (equation {equation!r})")
    for c in out:
        if c not in sizes:
            raise RuntimeError(f"einsum(): output subscript {c} does not appear in the inputs of "
                               f"{equation!r}")
    return tuple(canon), out, sizes


def einsum(equation, *operands):
    """``einsum('ij,jk->ik', a, b)``: sums of products over named indices ('...' and implicit
    output included). Also accepts the operands as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): the equation must be a string, got {type(equation).__name__}")
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    for op in operands:
        if not isinstance(op, Tensor):
            raise TypeError(f"einsum(): operands must be Tensors, got {type(op).__name__}")
    dt = operands[0].array.dtype
    for op in operands[1:]:
        if op.array.dtype != dt:
            raise RuntimeError(f"einsum(): operands must have the same dtype, got "
                               f"{', '.join(str(o.dtype) for o in operands)}")
    key = (equation,) + tuple(o.array.shape for o in operands)
    canon = _CANON_CACHE.get(key)
    if canon is None:
        canon = _canonical(equation, operands)
        if len(_CANON_CACHE) > 1024:
            _CANON_CACHE.clear()
        _CANON_CACHE[key] = canon
    terms, out, sizes = canon
    return Einsum.apply(*operands, terms=terms, out=out, sizes=sizes)


# ---------------------------------------------------------------------------------------------
# Linear and bilinear layers as single nodes (their backward is three BLAS calls)
# ---------------------------------------------------------------------------------------------

class LinearFn(Function):
    """``x @ W.T + b`` as one node. ``x``: (*, in), ``W``: (out, in), ``b``: (out,)."""

    def forward(self, x, w, *b):
        if self._record:
            self.save_for_backward(self.inputs[0], self.inputs[1])
        out = _parallel.matmul(x, w.T)      # rows over deepgrad's threads (_parallel.py)
        if b:
            out += b[0]
        return out

    def backward(self, g):
        x, w = self.saved_tensors
        need = self.needs_input_grad
        has_b = len(need) == 3
        if not _enabled[0]:          # first order: BLAS on the raw arrays
            ga, xa, wa = g.array, x.array, w.array
            gx = gw = gb = None
            if need[0]:
                gx = Tensor._make(_parallel.matmul(ga, wa))
            if ga.ndim != 2:
                ga = ga.reshape(-1, ga.shape[-1])
                xa = xa.reshape(-1, xa.shape[-1])
            if need[1]:
                gw = Tensor._make(_parallel.matmul(ga.T, xa))
            if has_b and need[2]:
                gb = Tensor._make(ga.sum(axis=0))
            return (gx, gw, gb) if has_b else (gx, gw)
        # create_graph=True: the same formulas with differentiable ops
        gx = matmul(g, w) if need[0] else None
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        gw = matmul(g2.transpose(0, 1), x2) if need[1] else None
        if not has_b:
            return gx, gw
        gb = g2.sum(0) if need[2] else None
        return gx, gw, gb


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"linear: expected input to be a Tensor, got {type(input).__name__}")
    a, w = input.array, weight.array
    if w.ndim != 2 or a.ndim == 0 or a.shape[-1] != w.shape[1]:
        raise RuntimeError(f"linear: expected input with last dimension {w.shape[1] if w.ndim == 2 else '?'} "
                           f"(weight of shape {tuple(w.shape)}), got input of shape {tuple(a.shape)}")
    if a.dtype != w.dtype:
        raise RuntimeError(f"linear: input dtype {a.dtype} does not match weight dtype {w.dtype}")
    if bias is None:
        return LinearFn.apply(input, weight)
    return LinearFn.apply(input, weight, bias)


class BilinearFn(Function):
    array_backward = True

    def forward(self, x1, x2, w, *b):
        xp = backend.array_module(x1)
        self.x1, self.x2, self.w = x1, x2, w
        if self._record:                 # for graph_backward (create_graph=True) only
            self.save_for_backward(*self.inputs)
        out = xp.einsum("...i,oij,...j->...o", x1, w, x2)
        if b:
            out = out + b[0]
        return out.astype(x1.dtype, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        x1, x2, w = self.x1, self.x2, self.w
        n = self.needs_input_grad
        g1 = xp.einsum("...o,oij,...j->...i", g, w, x2) if n[0] else None
        g2 = xp.einsum("...o,oij,...i->...j", g, w, x1) if n[1] else None
        gw = xp.einsum("no,ni,nj->oij", g.reshape(-1, g.shape[-1]), x1.reshape(-1, x1.shape[-1]),
                       x2.reshape(-1, x2.shape[-1])) if n[2] else None
        if len(n) == 4:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0) if n[3] else None
            return g1, g2, gw, gb
        return g1, g2, gw

    def graph_backward(self, g):
        """create_graph=True: differentiate the einsum composition (ops/_graph.py)."""
        from ._graph import reference_grads

        def ref(x1, x2, w, *b):
            out = einsum("...i,oij,...j->...o", x1, w, x2)
            return out + b[0] if b else out
        return reference_grads(ref, self.saved_tensors, [g], self.needs_input_grad)


def bilinear(input1, input2, weight, bias=None):
    """``y = x1^T A x2 + b`` with ``weight`` (out, in1, in2)."""
    if input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2] or \
            input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear: inputs of shapes {tuple(input1.shape)} and {tuple(input2.shape)} do "
                           f"not match weight of shape {tuple(weight.shape)}")
    if bias is None:
        return BilinearFn.apply(input1, input2, weight)
    return BilinearFn.apply(input1, input2, weight, bias)


# ---------------------------------------------------------------------------------------------
# Diagonals: diagonal (a view), its adjoint diag_embed, diag, diagflat, trace
# ---------------------------------------------------------------------------------------------

import numpy as np  # noqa: E402

__all__ += ["diagonal", "diag_embed", "diag", "diagflat", "trace", "tensordot", "baddbmm", "addbmm",
            "addmv", "addr", "cdist", "dist"]


def _diag_view(x, offset, d1, d2):
    """The diagonal of ``x`` over axes ``d1``, ``d2`` as a view, laid out as NumPy's ``diagonal``
    lays it out (the diagonal last). NumPy's own is read-only; PyTorch's is writable, so for a
    writable NumPy array the same view is built with ``as_strided`` over the diagonal's start."""
    xp = backend.array_module(x)
    if xp is not np or not x.flags.writeable:
        return xp.diagonal(x, offset, d1, d2)
    shape, strides = x.shape, x.strides
    if offset >= 0:
        n = max(0, min(shape[d1], shape[d2] - offset))
        start = {d2: min(offset, shape[d2])}
    else:
        n = max(0, min(shape[d1] + offset, shape[d2]))
        start = {d1: min(-offset, shape[d1])}
    sub = x[tuple(slice(start.get(i, 0), None) for i in range(x.ndim))]
    rest = [i for i in range(x.ndim) if i not in (d1, d2)]
    return np.lib.stride_tricks.as_strided(
        sub, tuple(shape[i] for i in rest) + (n,),
        tuple(strides[i] for i in rest) + (strides[d1] + strides[d2],))


class _Diagonal(Function):
    is_view = True

    def forward(self, x, offset=0, d1=0, d2=1):
        self.shape, self.offset, self.d1, self.d2 = x.shape, offset, d1, d2
        return _diag_view(x, offset, d1, d2)

    def backward(self, g):
        return _DiagonalScatter.apply(g, shape=self.shape, offset=self.offset, d1=self.d1, d2=self.d2)


class _DiagonalScatter(Function):
    """Zeros of ``shape`` with ``g`` written along a diagonal (the adjoint of ``_Diagonal``)."""

    def forward(self, g, shape=None, offset=0, d1=0, d2=1):
        self.offset, self.d1, self.d2 = offset, d1, d2
        out = backend.array_module(g).zeros(shape, dtype=g.dtype)
        _diag_view(out, offset, d1, d2)[...] = g
        return out

    def backward(self, gg):
        return _Diagonal.apply(gg, offset=self.offset, d1=self.d1, d2=self.d2)


def _check_t(t, opname):
    if not isinstance(t, Tensor):
        raise TypeError(f"{opname}: expected a Tensor as input, got {type(t).__name__}")


def _diag_dims(nd, dim1, dim2, opname):
    from ._util import wrap_dim
    d1, d2 = wrap_dim(dim1, nd, opname), wrap_dim(dim2, nd, opname)
    if d1 == d2:
        raise RuntimeError(f"{opname}: diagonal dimensions cannot be identical {dim1}, {dim2}")
    return d1, d2


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal ``offset`` of each matrix over ``dim1``, ``dim2``, appended as the last
    dimension; a view of ``input``, as in PyTorch."""
    _check_t(input, "diagonal")
    d1, d2 = _diag_dims(input.array.ndim, dim1, dim2, "diagonal")
    return _Diagonal.apply(input, offset=int(offset), d1=d1, d2=d2)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices whose diagonal ``offset`` (over output dims ``dim1``, ``dim2``) holds the last
    dimension of ``input``; zeros elsewhere."""
    _check_t(input, "diag_embed")
    x = input.array
    if x.ndim == 0:
        raise RuntimeError("diag_embed: expected a tensor with at least 1 dimension, got a 0-d tensor")
    nd = x.ndim + 1
    d1, d2 = _diag_dims(nd, dim1, dim2, "diag_embed")
    n = x.shape[-1] + abs(int(offset))
    rest = iter(x.shape[:-1])
    shape = tuple(n if i in (d1, d2) else next(rest) for i in range(nd))
    return _DiagonalScatter.apply(input, shape=shape, offset=int(offset), d1=d1, d2=d2)


def diag(input, diagonal=0):
    """1-D input: a square matrix with ``input`` on diagonal ``diagonal``; 2-D input: a copy of
    that diagonal."""
    _check_t(input, "diag")
    nd = input.array.ndim
    if nd == 1:
        return diag_embed(input, diagonal, 0, 1)
    if nd == 2:
        d = _Diagonal.apply(input, offset=int(diagonal), d1=0, d2=1)
        return d.clone()
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {nd}D (shape {_shp(input)})")


def diagflat(input, offset=0):
    _check_t(input, "diagflat")
    return diag_embed(_reshape(input, (input.array.size,)), offset, 0, 1)


def trace(input):
    """Sum of the main diagonal of a matrix."""
    _check_t(input, "trace")
    if input.array.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with size: {list(input.array.shape)}")
    return _Diagonal.apply(input, offset=0, d1=0, d2=1).sum()


# ---------------------------------------------------------------------------------------------
# tensordot, the add-and-multiply family, distances
# ---------------------------------------------------------------------------------------------

def tensordot(a, b, dims=2, out=None):
    """Contract dimensions ``dims`` of ``a`` with those of ``b``: an int n (the last n of ``a``
    with the first n of ``b``) or a pair of lists of dims."""
    if out is not None:
        raise NotImplementedError("tensordot(out=...) is not supported; use the returned tensor")
    _check_pair("tensordot", a, b)
    na, nb = a.array.ndim, b.array.ndim
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(na, nb):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims} "
                               f"(shapes {_shp(a)} and {_shp(b)})")
        da, db = list(range(na - dims, na)), list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, (int, np.integer)) else list(da)
        db = [db] if isinstance(db, (int, np.integer)) else list(db)
        if len(da) != len(db):
            raise RuntimeError(f"both dimension lists should have same length, got {da} and {db}")
    from ._util import wrap_dim
    da = [wrap_dim(int(d), na, "tensordot") for d in da]
    db = [wrap_dim(int(d), nb, "tensordot") for d in db]
    la, lb = list(_LETTERS[:na]), list(_LETTERS[na:na + nb])
    for i, j in zip(da, db):
        if a.array.shape[i] != b.array.shape[j]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size "
                               f"{a.array.shape[i]} in dim {i} and second has size {b.array.shape[j]} "
                               f"in dim {j}")
        lb[j] = la[i]
    outl = [c for k, c in enumerate(la) if k not in da] + [c for k, c in enumerate(lb) if k not in db]
    return einsum("".join(la) + "," + "".join(lb) + "->" + "".join(outl), a, b)


def _scaled_sum(opname, input, prod, beta, alpha):
    """``beta * input + alpha * prod`` with ``input`` broadcast to ``prod``'s shape; ``beta == 0``
    ignores the values of ``input`` (NaNs included), as PyTorch does."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{opname}: expected input to be a Tensor, got {type(input).__name__}")
    shape = prod.array.shape
    try:
        np.broadcast_shapes(input.array.shape, shape)
        ok = np.broadcast_shapes(input.array.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"{opname}: input of shape {_shp(input)} does not broadcast to the "
                           f"product's shape {tuple(shape)}")
    out = prod if alpha == 1 else prod * alpha
    if beta == 0:
        if input.requires_grad:  # no contribution, but a zero gradient as in PyTorch
            never = Tensor._make(backend.array_module(input.array).zeros((), dtype=bool))
            out = out + where(never, input, 0.0)
        return out
    return (input if beta == 1 else input * beta) + out


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * (batch1 @ batch2)`` for batches of matrices."""
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * sum_i batch1[i] @ batch2[i]``."""
    _check_pair("addbmm", batch1, batch2)
    a, b = batch1.array, batch2.array
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"addbmm: batch1 and batch2 must be 3-D tensors, got shapes {_shp(batch1)} "
                           f"and {_shp(batch2)}")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(f"addbmm: batch1 of shape {_shp(batch1)} and batch2 of shape "
                           f"{_shp(batch2)} cannot be multiplied")
    return _scaled_sum("addbmm", input, einsum("bij,bjk->ik", batch1, batch2), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat @ vec)``."""
    return _scaled_sum("addmv", input, mv(mat, vec), beta, alpha)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """``beta * input + alpha * outer(vec1, vec2)``."""
    return _scaled_sum("addr", input, outer(vec1, vec2), beta, alpha)


class _Cdist2(Function):
    """Euclidean distances between the rows of ``x1`` (..., P, M) and ``x2`` (..., R, M), batch
    dims already broadcast. Small inputs subtract directly; larger ones use the Gram-matrix form
    ``|x|^2 + |y|^2 - 2 x.y`` (PyTorch's rule: more than 25 rows on either side)."""
    save_output = True

    def forward(self, x1, x2):
        self.save_for_backward(*self.inputs)
        xp = backend.array_module(x1)
        if x1.shape[-2] > 25 or x2.shape[-2] > 25:
            sq = ((x1 * x1).sum(-1)[..., :, None] + (x2 * x2).sum(-1)[..., None, :]
                  - 2 * (x1 @ x2.swapaxes(-1, -2)))
            return xp.sqrt(xp.maximum(sq, 0))
        d = x1[..., :, None, :] - x2[..., None, :, :]
        return xp.sqrt((d * d).sum(-1))

    def backward(self, g):
        x1, x2 = self.saved_tensors
        d = self.output()
        zero = d.array == 0
        # w_ij = g_ij / d_ij, and 0 where two rows coincide (the subgradient PyTorch picks)
        if zero.any():
            z = Tensor._make(zero)
            w = where(z, 0.0, g / where(z, 1.0, d))
        else:
            w = g / d
        g1 = g2 = None
        if self.needs_input_grad[0]:
            g1 = x1 * _reshape(w.sum(-1), w.array.shape[:-1] + (1,)) - Matmul.apply(w, x2)
        if self.needs_input_grad[1]:
            wt = _SwapLast.apply(w)
            g2 = x2 * _reshape(wt.sum(-1), wt.array.shape[:-1] + (1,)) - Matmul.apply(wt, x1)
        return g1, g2


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """p-norm distances between each row of ``x1`` (B*, P, M) and each row of ``x2`` (B*, R, M):
    (B*, P, R). ``compute_mode`` is accepted for PyTorch compatibility."""
    from .reduce import norm
    _check_pair("cdist", x1, x2)
    for name, t in (("X1", x1), ("X2", x2)):
        if t.array.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: {t.array.ndim}D")
        if t.array.dtype.kind not in "fV":
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: {t.dtype}")
    if x1.array.shape[-1] != x2.array.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.array.shape[-1]} "
                           f"X2: {x2.array.shape[-1]}")
    p = float(p)
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values (got p={p})")
    s1, s2 = x1.array.shape, x2.array.shape
    try:
        batch = np.broadcast_shapes(s1[:-2], s2[:-2])
    except ValueError:
        raise RuntimeError(f"cdist: the batch dimensions of shapes {s1} and {s2} are not "
                           f"broadcastable") from None
    x1 = broadcast_to(x1, batch + s1[-2:])
    x2 = broadcast_to(x2, batch + s2[-2:])
    if p == 2.0:
        return _Cdist2.apply(x1, x2)
    a = _reshape(x1, batch + (s1[-2], 1, s1[-1]))
    b = _reshape(x2, batch + (1, s2[-2], s2[-1]))
    return norm(a - b, p, dim=-1)


def dist(input, other, p=2):
    """The p-norm of ``input - other`` (broadcast), as a 0-d tensor."""
    from .reduce import norm
    return norm(input - other, p)
