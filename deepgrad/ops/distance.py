"""Distances and the triplet losses built on them (composed of differentiable ops, so gradients
of any order work): ``pairwise_distance``, ``cosine_similarity``, ``triplet_margin_loss``,
``triplet_margin_with_distance_loss``."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..tensor import Tensor
from .elementwise import clamp, minimum
from .loss import _check_reduction, _legacy_reduction
from .reduce import norm
from .shape import broadcast_to

__all__ = ["pairwise_distance", "cosine_similarity", "triplet_margin_loss", "triplet_margin_with_distance_loss"]


class _FloorValue(Function):
    """``max(x, eps)`` in value, the identity in gradient: PyTorch clamps the norms of
    ``cosine_similarity`` in place under ``no_grad``, so gradients flow as if unclamped."""

    def forward(self, x, eps=0.0):
        return backend.array_module(x).maximum(x, x.dtype.type(eps))

    def backward(self, g):
        return g


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``sum(x1/max(||x1||, eps) * x2/max(||x2||, eps))`` along ``dim`` after broadcasting the two,
    as PyTorch computes it (each input divided by its own norm first)."""
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"cosine_similarity(): argument '{name}' must be Tensor, not {type(t).__name__}")
    try:
        shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    except ValueError:
        raise RuntimeError(f"cosine_similarity: the shapes of x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} do "
                           f"not broadcast") from None
    if tuple(x1.shape) != shape:
        x1 = broadcast_to(x1, shape)
    if tuple(x2.shape) != shape:
        x2 = broadcast_to(x2, shape)
    n1 = _FloorValue.apply(norm(x1, 2, dim=dim, keepdim=True), eps=eps)
    n2 = _FloorValue.apply(norm(x2, 2, dim=dim, keepdim=True), eps=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` over the last dimension (the inputs broadcast), as PyTorch."""
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"pairwise_distance(): argument '{name}' must be Tensor, not {type(t).__name__}")
    nd = max(x1.ndim, x2.ndim)
    if nd == 0:
        raise RuntimeError("pairwise_distance: expected inputs with at least one dimension, got two 0-d tensors")
    return norm(x1 - x2 + eps, p, dim=nd - 1, keepdim=keepdim)


def _check_triplet_dims(anchor, positive, negative):
    a, p, n = anchor.ndim, positive.ndim, negative.ndim
    if not (a == p == n):
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {a}D, positive {p}D, and negative {n}D inputs")


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the pairwise p-distance; ``swap`` uses
    ``min(d(a, n), d(p, n))`` as the negative distance (Balntas et al.)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "triplet_margin_loss")
    _check_triplet_dims(anchor, positive, negative)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(clamp(d_pos - d_neg + margin, min=0.0), reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    """The triplet loss with any ``distance_function(x1, x2)`` (default ``pairwise_distance``)."""
    _check_reduction(reduction, "triplet_margin_with_distance_loss")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    _check_triplet_dims(anchor, positive, negative)
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = minimum(d_neg, dist(positive, negative))
    return _reduce(clamp(d_pos - d_neg + margin, min=0.0), reduction)
