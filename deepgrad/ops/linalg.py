"""Products: matmul (every PyTorch case), mm, bmm, mv, dot, outer, addmm, einsum.

Forward is one NumPy/CuPy call. Backward is written with the same ops on Tensors (matmul's
gradient is ``g @ b.mT`` summed to the input's batch shape; einsum's gradient is another einsum),
so every product is differentiable twice.
"""
from __future__ import annotations

import string

from .. import backend
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
        out = x @ w.T
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
                gx = Tensor._make(ga @ wa)
            if ga.ndim != 2:
                ga = ga.reshape(-1, ga.shape[-1])
                xa = xa.reshape(-1, xa.shape[-1])
            if need[1]:
                gw = Tensor._make(ga.T @ xa)
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


def bilinear(input1, input2, weight, bias=None):
    """``y = x1^T A x2 + b`` with ``weight`` (out, in1, in2)."""
    if input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2] or \
            input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(f"bilinear: inputs of shapes {tuple(input1.shape)} and {tuple(input2.shape)} do "
                           f"not match weight of shape {tuple(weight.shape)}")
    if bias is None:
        return BilinearFn.apply(input1, input2, weight)
    return BilinearFn.apply(input1, input2, weight, bias)
