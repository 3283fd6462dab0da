"""``theano.tensor.nnet``: sigmoid, softmax, relu, softplus and the cross-entropies."""
from __future__ import annotations

import numpy as np

from ..graph import Apply, Op, TensorType, as_tensor_variable, short_type
from . import basic as _b
from .basic import relu, sigmoid, softplus  # noqa: F401

__all__ = ["sigmoid", "softmax", "logsoftmax", "log_softmax", "relu", "softplus", "binary_crossentropy", "conv2d",
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


# ---------------------------------------------------------------------------------------------
# Convolution (Theano's T.nnet.conv2d: a true convolution -- the filters are flipped -- unless
# filter_flip=False, which is deepgrad's and PyTorch's cross-correlation)
# ---------------------------------------------------------------------------------------------

def _pair(v, what):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    v = tuple(int(x) for x in v)
    if len(v) != 2:
        raise ValueError(f"conv2d: {what} must be an int or a pair, got {v!r}")
    return v


class Conv2d(Op):
    def __init__(self, border_mode, subsample, filter_flip, filter_dilation, num_groups):
        self.border_mode, self.subsample = border_mode, subsample
        self.filter_flip, self.filter_dilation, self.num_groups = filter_flip, filter_dilation, num_groups

    def __str__(self):
        flip = "" if self.filter_flip else ", no flip"
        return f"Conv2d{{{self.border_mode}, subsample={self.subsample}{flip}}}"

    def make_node(self, x, w):
        x, w = as_tensor_variable(x, "conv2d"), as_tensor_variable(w, "conv2d")
        if x.ndim != 4 or w.ndim != 4:
            raise TypeError(f"conv2d: input and filters must be 4-d (batch, channels, rows, cols) and "
                            f"(out channels, in channels, rows, cols), got {short_type(x)} and {short_type(w)}")
        for v in (x, w):
            if not v.dtype.startswith("float"):
                raise TypeError(f"conv2d: needs float inputs, got {short_type(x)} and {short_type(w)}")
        from ..graph import upcast
        return Apply(self, [x, w], [TensorType(upcast(x, w), (x.broadcastable[0], w.broadcastable[0], False, False))])

    def perform(self, node, values):
        import deepgrad
        from .basic import _cast
        dtype = node.outputs[0].dtype
        x, w = (_cast(v, dtype) for v in values)
        kh, kw = w.shape[2], w.shape[3]
        dh, dw = self.filter_dilation
        bm = self.border_mode
        if bm == "valid":
            pad = (0, 0)
        elif bm == "full":
            pad = ((kh - 1) * dh, (kw - 1) * dw)
        elif bm == "half":
            pad = ((kh // 2) * dh, (kw // 2) * dw)
        else:
            pad = bm
        if self.filter_flip:
            w = deepgrad.flip(w, (2, 3))
        return [deepgrad.nn.functional.conv2d(x, w, stride=self.subsample, padding=pad,
                                              dilation=self.filter_dilation, groups=self.num_groups)]


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid", subsample=(1, 1),  # noqa: A002
           filter_flip=True, image_shape=None, filter_dilation=(1, 1), num_groups=1, **kwargs):
    """Theano's ``T.nnet.conv2d``: ``border_mode`` 'valid', 'full', 'half' or pads; ``subsample``
    is the stride; the filters are flipped (a convolution) unless ``filter_flip=False``."""
    if isinstance(border_mode, str):
        if border_mode not in ("valid", "full", "half"):
            raise ValueError(f"conv2d: border_mode must be 'valid', 'full', 'half', an int or a pair, "
                             f"got {border_mode!r}")
    else:
        border_mode = _pair(border_mode, "border_mode")
    return Conv2d(border_mode, _pair(subsample, "subsample"), bool(filter_flip),
                  _pair(filter_dilation, "filter_dilation"), int(num_groups))(input, filters)
