"""Fused losses on raw arrays (first-order backward, ``array_backward = True``; create_graph=True
takes the routes of ops/_graph.py: a composed reference for cross-entropy, a linear map for NLL).

* ``cross_entropy``: log-softmax and negative log-likelihood as ONE op, numerically stable (the
  row maximum is subtracted before ``exp``; huge logits give a finite loss and gradient). Class
  indices or class probabilities as target, ``weight``, ``ignore_index``, ``label_smoothing``,
  extra dims ``(N, C, d1, ...)``, reductions with PyTorch's exact semantics (a weighted mean
  divides by the summed weights of the non-ignored targets).
* ``nll_loss``: the same on log-probabilities.
* ``multi_margin_loss``: the multi-class hinge loss.

The other losses of ``deepgrad.nn`` are composed from differentiable ops.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from . import _cuda_kernels as _ck
from ..autograd.function import Function
from ..tensor import Tensor
from ._graph import linear_map, reference_grads

__all__ = ["cross_entropy", "nll_loss", "multi_margin_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction, opname):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{opname}: {reduction!r} is not a valid value for reduction "
                         f"(expected 'none', 'mean' or 'sum')")


def _rows(a, C):
    """(N, C, d1, ...) -> (N*d1*..., C) with the class axis last; (C,) -> (1, C)."""
    if a.ndim == 1:
        return a.reshape(1, C)
    if a.ndim == 2:
        return a
    return backend.array_module(a).moveaxis(a, 1, -1).reshape(-1, C)


def _unrows(g, shape):
    """The inverse of ``_rows`` for a gradient of the input's ``shape``."""
    if len(shape) <= 2:
        return g.reshape(shape)
    moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return backend.array_module(g).ascontiguousarray(
        backend.array_module(g).moveaxis(g.reshape(moved), -1, 1))


def _check_indices(opname, x_shape, t):
    """Validate the shape of an index target against the input's (N, C, d1, ...) shape."""
    if len(x_shape) == 1:
        expected = ()
    else:
        expected = (x_shape[0],) + tuple(x_shape[2:])
    if tuple(t.shape) != expected:
        raise ValueError(f"{opname}: expected target of shape {expected} for input of shape "
                         f"{tuple(x_shape)}, got target of shape {tuple(t.shape)}")


def _picked(opname, tt, C, ignore_index, xp):
    valid = tt != ignore_index
    return valid, xp.where(valid, tt, 0)


def _check_bounds(opname, target, C, ignore_index=None):
    tt = target.array
    if tt.size == 0 or (int(tt.min()) >= 0 and int(tt.max()) < C):
        return
    bad = (tt < 0) | (tt >= C)
    if ignore_index is not None:
        bad &= tt != ignore_index
    if bool(bad.any()):
        raise IndexError(f"{opname}: target {int(tt[bad].reshape(-1)[0])} is out of bounds for {C} "
                         f"classes (target shape {tuple(target.shape)})")


class CrossEntropy(Function):
    array_backward = True

    def forward(self, x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                probs=False):
        xp = backend.array_module(x)
        dt = x.dtype
        C = x.shape[0] if x.ndim == 1 else x.shape[1]
        x2 = _rows(x, C)
        self.fused = False
        if not probs and weight is None and not label_smoothing and x2.size > 0 and _ck.enabled(xp):
            return self._forward_fused(x, x2, t, C, ignore_index, reduction, xp)
        m = x2.max(axis=1, keepdims=True)
        if not bool(xp.isfinite(m).all()):            # rows of -inf / inf / nan: keep them NaN-safe
            m = xp.where(xp.isfinite(m), m, 0).astype(dt)
        sh = x2 - m
        e = xp.exp(sh)
        s = e.sum(axis=1, keepdims=True)
        logp = sh - xp.log(s)
        p = e / s
        ls = float(label_smoothing)
        w = None if weight is None else weight.astype(dt, copy=False)
        self.x_shape, self.reduction, self.probs, self.ls, self.C = x.shape, reduction, probs, ls, C
        self.p, self.w = p, w
        if self._record:                 # for graph_backward (create_graph=True) only
            self.save_for_backward(*self.inputs)
        M = x2.shape[0]
        if probs:
            y = _rows(t, C).astype(dt, copy=False)
            if ls > 0:
                y = y * (1.0 - ls) + ls / C
            q = y * w if w is not None else y
            loss = -(q * logp).sum(axis=1)
            self.q = q
            self.logp = logp if self._record else None
            denom = dt.type(M)
            out_shape = () if x.ndim == 1 else (x.shape[0],) + tuple(x.shape[2:])
        else:
            tt = t.reshape(-1)
            valid, tsafe = _picked("cross_entropy", tt, C, ignore_index, xp)
            rows = xp.arange(M)
            w_t = (w[tsafe] if w is not None else xp.ones(M, dt)) * valid
            loss = -(1.0 - ls) * w_t * logp[rows, tsafe]
            if ls > 0:
                smooth = -(logp * w).sum(axis=1) if w is not None else -logp.sum(axis=1)
                loss = loss + (ls / C) * smooth * valid
            self.rows, self.tsafe, self.w_t, self.valid = rows, tsafe, w_t, valid
            denom = w_t.sum(dtype=dt)
            out_shape = tuple(t.shape)
        self.denom = denom
        if reduction == "none":
            return loss.astype(dt, copy=False).reshape(out_shape)
        total = loss.sum(dtype=dt)
        if reduction == "sum":
            return xp.asarray(total, dtype=dt)
        with np.errstate(invalid="ignore", divide="ignore"):   # every target ignored: NaN, as in PyTorch
            return xp.asarray(total / denom, dtype=dt)

    def _forward_fused(self, x, x2, t, C, ignore_index, reduction, xp):
        """GPU, class-index targets without weight or smoothing: log-sum-exp per row (one fused
        map-reduce), the picked logit, and no softmax array kept: backward recomputes
        ``exp(z - lse)`` inside its one kernel (_cuda_kernels.ce_backward)."""
        dt = x.dtype
        m = x2.max(axis=1, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0).astype(dt, copy=False)   # no host sync for the check
        lse = m + xp.log(_ck.ce_sumexp(xp, x2, m)).reshape(-1, 1).astype(dt, copy=False)
        tt = t.reshape(-1)
        valid, tsafe = _picked("cross_entropy", tt, C, ignore_index, xp)
        M = x2.shape[0]
        rows = xp.arange(M)
        w_t = valid.astype(dt)
        loss = (lse[:, 0] - x2[rows, tsafe]) * w_t
        self.fused = True
        self.x_shape, self.reduction, self.probs, self.ls, self.C = x.shape, reduction, False, 0.0, C
        self.p, self.w, self.x2, self.lse = None, None, x2, lse
        self.rows, self.tsafe, self.w_t, self.valid = rows, tsafe, w_t, valid
        if self._record:
            self.save_for_backward(*self.inputs)
        self.denom = denom = w_t.sum(dtype=dt)
        if reduction == "none":
            return loss.astype(dt, copy=False).reshape(tuple(t.shape))
        total = loss.sum(dtype=dt)
        if reduction == "sum":
            return xp.asarray(total, dtype=dt)
        return xp.asarray(total / denom, dtype=dt)

    def _row_scale(self, g):
        """The upstream gradient as a factor per sample row: one per row for 'none', the mean's
        1/denominator folded in for 'mean'."""
        if self.reduction == "none":
            return g.reshape(-1, 1)
        return g / self.denom if self.reduction == "mean" else g

    def _backward_fused(self, g):
        xp = backend.array_module(g)
        x2 = self.x2
        scale = self._row_scale(g)
        row_scale = (self.w_t.reshape(-1, 1) * scale).astype(x2.dtype, copy=False)
        cols = xp.arange(self.C, dtype=self.tsafe.dtype).reshape(1, -1)
        gx = xp.empty(x2.shape, x2.dtype)
        _ck.ce_backward(xp, x2, self.lse, self.tsafe.reshape(-1, 1), cols, row_scale, gx)
        return _unrows(gx, self.x_shape), None

    def backward(self, g):
        if self.fused:
            return self._backward_fused(g)
        xp = backend.array_module(g)
        p, C = self.p, self.C
        scale = self._row_scale(g)
        gt = None
        if self.probs:
            q = self.q
            gx = p * q.sum(axis=1, keepdims=True) - q
            if self.needs_input_grad[1]:
                dy = -self.logp * (self.w if self.w is not None else 1.0) * (1.0 - self.ls)
                gt = _unrows((dy * scale).astype(p.dtype, copy=False), self.x_shape)
        else:
            ls, w_t = self.ls, self.w_t
            gx = p * ((1.0 - ls) * w_t)[:, None]
            gx[self.rows, self.tsafe] -= (1.0 - ls) * w_t
            if ls > 0:
                v = self.valid[:, None] * (ls / C)
                if self.w is not None:
                    gx += v * (p * self.w.sum() - self.w)
                else:
                    gx += v * (p * C - 1.0)
        gx = (gx * scale).astype(p.dtype, copy=False)
        return _unrows(gx, self.x_shape), gt

    def graph_backward(self, g):
        """create_graph=True: differentiate the loss composed of log_softmax and ordinary ops."""
        return reference_grads(self._reference, self.saved_tensors, [g], self.needs_input_grad)

    def _reference(self, x, t):
        from .reduce import log_softmax
        C, ls, w = self.C, self.ls, self.w
        logp = log_softmax(_rows_t(x, C), 1)
        wt = None if w is None else Tensor._make(w)
        if self.probs:
            y = _rows_t(t, C)
            if ls > 0:
                y = y * (1.0 - ls) + ls / C
            q = y * wt if wt is not None else y
            loss = -(q * logp).sum(1)
            out_shape = () if len(self.x_shape) == 1 else (self.x_shape[0],) + tuple(self.x_shape[2:])
        else:
            picked = logp[Tensor._make(self.rows), Tensor._make(self.tsafe)]
            loss = picked * Tensor._make(-(1.0 - ls) * self.w_t)
            if ls > 0:
                smooth = (logp * wt).sum(1) if wt is not None else logp.sum(1)
                loss = loss + smooth * Tensor._make(self.valid.astype(self.w_t.dtype) * (-ls / C))
            out_shape = tuple(t.shape)
        if self.reduction == "none":
            return loss.reshape(out_shape)
        total = loss.sum()
        like = self.p if self.p is not None else self.x2
        return total if self.reduction == "sum" else total / Tensor._make(
            backend.array_module(like).asarray(self.denom, dtype=like.dtype))


def _rows_t(a, C):
    """``_rows`` on Tensors (differentiable)."""
    if a.ndim == 1:
        return a.reshape(1, C)
    if a.ndim == 2:
        return a
    return a.permute(0, *range(2, a.ndim), 1).reshape(-1, C)


def _as_weight(weight, C, opname, x):
    if weight is None:
        return None
    w = weight.array if isinstance(weight, Tensor) else np.asarray(weight)
    if w.shape != (C,):
        raise ValueError(f"{opname}: weight should have shape ({C},) (one entry per class), got {tuple(w.shape)}")
    return w


def _check_input(opname, input, min_dim=1):
    if not isinstance(input, Tensor):
        raise TypeError(f"{opname}: expected input to be a Tensor, got {type(input).__name__}")
    if input.ndim < min_dim:
        raise ValueError(f"{opname}: expected input with at least {min_dim} dimension(s) (N, C, ...) or (C,), "
                         f"got shape {tuple(input.shape)}")
    if input.array.dtype.kind not in "fV":
        raise TypeError(f"{opname}: expected a floating point input, got dtype {input.dtype}")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits ``input`` (N, C, d1, ...) and class indices or probabilities."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "cross_entropy")
    _check_input("cross_entropy", input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if not isinstance(target, Tensor):
        target = Tensor(target)
    C = input.shape[0] if input.ndim == 1 else input.shape[1]
    w = _as_weight(weight, C, "cross_entropy", input)
    if target.array.dtype.kind in "fV":
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: class-probability target must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        if target.dtype != input.dtype:
            target = target.to(input.dtype)
        return CrossEntropy.apply(input, target, weight=w, reduction=reduction,
                                  label_smoothing=label_smoothing, probs=True)
    if target.array.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices (integers) or class "
                        f"probabilities (floats), got dtype {target.dtype}")
    _check_indices("cross_entropy", input.shape, target)
    _check_bounds("cross_entropy", target, C, ignore_index)
    return CrossEntropy.apply(input, target, weight=w, ignore_index=ignore_index, reduction=reduction,
                              label_smoothing=label_smoothing, probs=False)


class NLL(Function):
    array_backward = True

    def forward(self, x, t, weight=None, ignore_index=-100, reduction="mean"):
        xp = backend.array_module(x)
        dt = x.dtype
        C = x.shape[0] if x.ndim == 1 else x.shape[1]
        x2 = _rows(x, C)
        M = x2.shape[0]
        tt = t.reshape(-1)
        valid, tsafe = _picked("nll_loss", tt, C, ignore_index, xp)
        rows = xp.arange(M)
        w = None if weight is None else weight.astype(dt, copy=False)
        w_t = (w[tsafe] if w is not None else xp.ones(M, dt)) * valid
        loss = -w_t * x2[rows, tsafe]
        self.x_shape, self.reduction, self.rows, self.tsafe, self.w_t = x.shape, reduction, rows, tsafe, w_t
        self.M, self.C = M, C
        self.x = self.inputs[0] if self._record else None   # for graph_backward's zero gradient
        self.denom = w_t.sum(dtype=dt)
        if reduction == "none":
            return loss.astype(dt, copy=False).reshape(t.shape)
        total = loss.sum(dtype=dt)
        if reduction == "sum":
            return xp.asarray(total, dtype=dt)
        with np.errstate(invalid="ignore", divide="ignore"):
            return xp.asarray(total / self.denom, dtype=dt)

    def backward(self, g):
        xp = backend.array_module(g)
        gx = xp.zeros((self.M, self.C), g.dtype)
        if self.reduction == "none":
            vals = -self.w_t * g.reshape(-1)
        elif self.reduction == "mean":
            vals = -self.w_t * (g / self.denom)
        else:
            vals = -self.w_t * g
        gx[self.rows, self.tsafe] = vals
        return _unrows(gx, self.x_shape), None

    def graph_backward(self, g):
        """create_graph=True: the gradient is a fixed linear map of g (a weighted pick)."""
        xp = backend.array_module(g.array)
        rows, tsafe, w_t, red = self.rows, self.tsafe, self.w_t, self.reduction
        gshape = tuple(g.shape)

        def pick(a):                      # the adjoint of backward: (x's shape) -> (g's shape)
            v = -w_t * _rows(a, self.C)[rows, tsafe]
            if red == "none":
                return v.reshape(gshape)
            total = v.sum()
            return xp.asarray(total / self.denom if red == "mean" else total, dtype=a.dtype)
        return linear_map(g, lambda a: self.backward(a)[0], pick, self.x), None


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "nll_loss")
    _check_input("nll_loss", input)
    if not isinstance(target, Tensor):
        target = Tensor(target)
    if target.array.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold class indices (integers), got dtype {target.dtype}")
    C = input.shape[0] if input.ndim == 1 else input.shape[1]
    w = _as_weight(weight, C, "nll_loss", input)
    _check_indices("nll_loss", input.shape, target)
    _check_bounds("nll_loss", target, C, ignore_index)
    return NLL.apply(input, target, weight=w, ignore_index=ignore_index, reduction=reduction)


class MultiMargin(Function):
    array_backward = True

    def forward(self, x, t, p=1, margin=1.0, weight=None, reduction="mean"):
        xp = backend.array_module(x)
        dt = x.dtype
        x2 = x.reshape(1, -1) if x.ndim == 1 else x
        M, C = x2.shape
        tt = t.reshape(-1)
        rows = xp.arange(M)
        h = margin - x2[rows, tt][:, None] + x2
        h[rows, tt] = 0
        pos = h > 0
        hp = xp.where(pos, h, 0)
        w_t = weight.astype(dt)[tt] if weight is not None else xp.ones(M, dt)
        loss = ((hp ** p if p != 1 else hp).sum(axis=1) * w_t / C).astype(dt, copy=False)
        self.hp, self.pos, self.rows, self.tt, self.w_t, self.p, self.C = hp, pos, rows, tt, w_t, p, C
        self.reduction, self.x_shape, self.M = reduction, x.shape, M
        if self._record:                 # for graph_backward (create_graph=True) only
            self.save_for_backward(self.inputs[0])
            self.margin, self.t_shape = margin, t.shape
        if reduction == "none":
            return loss.reshape(t.shape)
        total = loss.sum(dtype=dt)
        return xp.asarray(total / dt.type(M) if reduction == "mean" else total, dtype=dt)

    def backward(self, g):
        d = (self.hp * 2.0 if self.p == 2 else self.pos.astype(g.dtype)) * (self.w_t / self.C)[:, None]
        d[self.rows, self.tt] = -d.sum(axis=1)
        if self.reduction == "none":
            d = d * g.reshape(-1, 1)
        elif self.reduction == "mean":
            d = d * (g / self.M)
        else:
            d = d * g
        return d.astype(g.dtype, copy=False).reshape(self.x_shape), None

    def graph_backward(self, g):
        """create_graph=True: differentiate the hinge loss composed of ordinary ops."""
        from .elementwise import relu
        xp = backend.array_module(g.array)

        def ref(x):
            x2 = x.reshape(1, -1) if x.ndim == 1 else x
            off = xp.ones(x2.shape, x2.dtype)
            off[self.rows, self.tt] = 0           # the target's own column does not count
            picked = x2[Tensor._make(self.rows), Tensor._make(self.tt)]
            h = relu((x2 - picked.reshape(-1, 1) + self.margin) * Tensor._make(off))
            loss = (h * h if self.p == 2 else h).sum(1) * Tensor._make(self.w_t / self.C)
            if self.reduction == "none":
                return loss.reshape(self.t_shape)
            return loss.sum() / float(self.M) if self.reduction == "mean" else loss.sum()
        return reference_grads(ref, self.saved_tensors, [g], self.needs_input_grad[:1]) + (None,)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 are supported, got {p}")
    _check_input("multi_margin_loss", input)
    if input.ndim > 2:
        raise ValueError(f"multi_margin_loss: expected input of shape (N, C) or (C,), got {tuple(input.shape)}")
    if not isinstance(target, Tensor):
        target = Tensor(target)
    expected = () if input.ndim == 1 else (input.shape[0],)
    if tuple(target.shape) != expected and not (input.ndim == 1 and tuple(target.shape) == (1,)):
        raise ValueError(f"multi_margin_loss: expected target of shape {expected} for input of shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    C = input.shape[-1]
    _check_bounds("multi_margin_loss", target, C)
    w = _as_weight(weight, C, "multi_margin_loss", input)
    return MultiMargin.apply(input, target, p=p, margin=float(margin), weight=w, reduction=reduction)


def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's deprecated ``size_average``/``reduce`` arguments, mapped onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"
