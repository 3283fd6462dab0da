"""``theano.tensor.nnet``: sigmoid, softmax, relu, softplus and the cross-entropies."""
from __future__ import annotations

import numpy as np

from ..graph import Apply, Op, TensorType, as_tensor_variable, short_type
from . import basic as _b
from .basic import relu, sigmoid, softplus  # noqa: F401

__all__ = ["sigmoid", "softmax", "logsoftmax", "log_softmax", "relu", "softplus", "binary_crossentropy",
           "categorical_crossentropy", "ultra_fast_sigmoid", "hard_sigmoid"]

ultra_fast_sigmoid = sigmoid   # Theano's approximations: deepgrad computes the exact sigmoid
hard_sigmoid = sigmoid


class _Softmax(Op):
    def __init__(self, log):
        self.log = log
        self.name = "nnet.logsoftmax" if log else "nnet.softmax"

    def __str__(self):
        return "LogSoftmax" if self.log else "Softmax"

    def make_node(self, x):
        x = as_tensor_variable(x, self.name)
        if x.ndim not in (1, 2) or not x.dtype.startswith("float"):
            raise ValueError(f"{self.name}: x must be 1-d or 2-d tensor of floats. Got {short_type(x)}")
        return Apply(self, [x], [TensorType(x.dtype, x.broadcastable)])

    def perform(self, node, values):
        import deepgrad
        f = deepgrad.log_softmax if self.log else deepgrad.softmax
        return [f(values[0], dim=-1)]


def softmax(x, axis=None):
    """Row-wise softmax of a matrix (or of a vector: unlike old Theano, it stays a vector)."""
    return _Softmax(False)(x)


def logsoftmax(x, axis=None):
    return _Softmax(True)(x)


log_softmax = logsoftmax


def binary_crossentropy(output, target):
    """``-(target * log(output) + (1 - target) * log(1 - output))``, element-wise."""
    return -(target * _b.log(output) + (1.0 - target) * _b.log(1.0 - output))


class _PickNLL(Op):
    name = "CrossentropyCategorical1Hot"

    def make_node(self, p, t):
        return Apply(self, [p, t], [TensorType(p.dtype, (False,))])

    def perform(self, node, values):
        import deepgrad
        p, t = values
        if t.shape[0] != p.shape[0]:
            raise ValueError(f"categorical_crossentropy: {p.shape[0]} rows of probabilities but "
                             f"{t.shape[0]} targets")
        picked = p.gather(1, t.to(np.dtype(np.int64)).unsqueeze(1)).squeeze(1)
        return [-deepgrad.log(picked)]


def categorical_crossentropy(coding_dist, true_dist):
    """Per-row cross-entropy of the predicted distribution ``coding_dist`` (a matrix of
    probabilities) against ``true_dist``: an integer vector of classes or a matrix of targets."""
    p = as_tensor_variable(coding_dist, "categorical_crossentropy")
    t = as_tensor_variable(true_dist, "categorical_crossentropy")
    if p.ndim != 2:
        raise TypeError(f"categorical_crossentropy: coding_dist must be a matrix, got {short_type(p)}")
    if t.ndim == 2:
        return -_b.sum(t * _b.log(p), axis=1)
    if t.ndim == 1 and np.dtype(t.dtype).kind in "iu":
        return _PickNLL()(p, t)
    raise TypeError(f"categorical_crossentropy: true_dist must be a matrix or an integer vector, got {short_type(t)}")
