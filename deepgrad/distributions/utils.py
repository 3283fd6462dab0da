"""Helpers shared by the distributions (PyTorch's ``torch.distributions.utils``)."""
from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Tensor
from .. import backend


def broadcast_all(*values):
    """Broadcast Tensors and numbers to one shape; numbers take the Tensors' dtype (or the
    default dtype when there are none), as PyTorch's ``broadcast_all`` does."""
    from ..creation import tensor
    ref = next((v for v in values if isinstance(v, Tensor)), None)
    for v in values:
        if not isinstance(v, (Tensor, numbers.Number)):
            raise ValueError("Input arguments must all be instances of numbers.Number or torch.tensor.")
    dtype = ref.dtype if ref is not None else backend.get_default_dtype()
    ts = [v if isinstance(v, Tensor) else tensor(float(v), dtype=dtype) for v in values]
    shape = np.broadcast_shapes(*(tuple(t.shape) for t in ts))
    return tuple(t if tuple(t.shape) == shape else t.expand(*shape) for t in ts)


def clamp_probs(probs):
    eps = float(np.finfo(probs.dtype).eps)
    return probs.clamp(eps, 1 - eps)


def probs_to_logits(probs, is_binary=False):
    ps = clamp_probs(probs)
    return (ps.log() - (-ps).log1p()) if is_binary else ps.log()


def logits_to_probs(logits, is_binary=False):
    return logits.sigmoid() if is_binary else logits.softmax(-1)


def _sum_rightmost(value, dim):
    if dim == 0:
        return value
    return value.reshape(*tuple(value.shape)[:-dim], -1).sum(-1)


def _diagonal(m):
    """The diagonal of the last two dimensions, differentiably."""
    n = m.shape[-1]
    from ..creation import eye
    return (m * eye(n, dtype=m.dtype)).sum(-1)


class lazy_property:
    """Computed on first access and then stored on the instance (so ``"probs" in d.__dict__``
    tells which parameter a distribution was built from)."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = self.fn(instance)
        instance.__dict__[self.fn.__name__] = value
        return value
