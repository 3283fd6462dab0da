"""Metrics the training loop averages over an epoch, Keras-style names.

A metric is ``fn(output, target) -> float`` (or a 1-element Tensor/array): its value on one batch,
as a mean over the batch's samples. The loop weights it by the batch size, so the epoch value is
the exact mean over the samples. ``get_metric("accuracy")`` looks a metric up by name; a callable
is used as is and logged under its ``__name__``.
"""
from __future__ import annotations

from .. import backend
from ..tensor import Tensor

__all__ = ["accuracy", "binary_accuracy", "top_k_accuracy", "mean_absolute_error",
           "mean_squared_error", "get_metric", "METRICS"]


def _arrays(output, target):
    out = output.array if isinstance(output, Tensor) else output
    tgt = target.array if isinstance(target, Tensor) else target
    return out, tgt


def accuracy(output, target):
    """Fraction of correct predictions. With class scores ``(N, C, ...)`` and class indices
    ``(N, ...)`` the predicted class is the argmax over dim 1 (cross-entropy's layout); with
    outputs shaped like the targets it is :func:`binary_accuracy`; with one-hot/probability
    targets shaped like the outputs and floating, compared by argmax of both."""
    out, tgt = _arrays(output, target)
    if out.ndim == tgt.ndim + 1:
        return float((out.argmax(axis=1) == tgt).mean())
    if out.shape == tgt.shape and out.ndim >= 2 and out.shape[1] > 1 and tgt.dtype.kind == "f":
        return float((out.argmax(axis=1) == tgt.argmax(axis=1)).mean())
    return binary_accuracy(out, tgt)


def binary_accuracy(output, target, threshold=0.5):
    """Fraction of ``(output > threshold) == target`` (Keras' ``binary_accuracy``; give
    probabilities, or logits with ``threshold=0``)."""
    out, tgt = _arrays(output, target)
    if out.shape != tgt.shape:
        out = out.reshape(tgt.shape)
    return float(((out > threshold) == (tgt > 0.5)).mean())


def top_k_accuracy(output, target, k=5):
    """Fraction of samples whose target is among the ``k`` highest class scores (dim 1)."""
    out, tgt = _arrays(output, target)
    xp = backend.array_module(out)
    kk = min(k, out.shape[1])
    top = xp.argpartition(-out, kk - 1, axis=1)[:, :kk]
    return float((top == xp.expand_dims(tgt, 1)).any(axis=1).mean())


def top5_accuracy(output, target):
    return top_k_accuracy(output, target, 5)


def mean_absolute_error(output, target):
    out, tgt = _arrays(output, target)
    return float(abs(out - tgt).mean())


def mean_squared_error(output, target):
    out, tgt = _arrays(output, target)
    return float(((out - tgt) ** 2).mean())


METRICS = {
    "accuracy": accuracy, "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "top5_accuracy": top5_accuracy, "top_5_accuracy": top5_accuracy,
    "mae": mean_absolute_error, "mean_absolute_error": mean_absolute_error,
    "mse": mean_squared_error, "mean_squared_error": mean_squared_error,
}


def get_metric(metric):
    """``(name, fn)`` for a metric given by name or as a callable."""
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    try:
        return metric, METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known metrics: {', '.join(sorted(METRICS))} "
                         "(or pass a callable fn(output, target) -> float)") from None
