"""``theano.tensor.signal.pool.pool_2d``: max, sum or average pooling over the last two dimensions,
on deepgrad's pooling ops."""
from __future__ import annotations

import numpy as np

from ...graph import Apply, Op, TensorType, as_tensor_variable, short_type

__all__ = ["pool_2d"]

_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


class Pool(Op):
    def __init__(self, ws, ignore_border, stride, pad, mode):
        self.ws, self.ignore_border, self.stride, self.pad, self.mode = ws, ignore_border, stride, pad, mode

    def __str__(self):
        return f"Pool{{ws={self.ws}, stride={self.stride}, mode={self.mode}}}"

    def make_node(self, x):
        x = as_tensor_variable(x, "pool_2d")
        if x.ndim < 2:
            raise TypeError(f"pool_2d: needs at least 2 dimensions, got {short_type(x)}")
        if not x.dtype.startswith("float"):
            raise TypeError(f"pool_2d: needs a float input, got {short_type(x)}")
        return Apply(self, [x], [TensorType(x.dtype, x.broadcastable[:-2] + (False, False))])

    def perform(self, node, values):
        import deepgrad
        F = deepgrad.nn.functional
        x = values[0]
        lead = tuple(x.shape[:-2])
        x4 = x.reshape((int(np.prod(lead)) if lead else 1, 1) + tuple(x.shape[-2:]))
        ceil = not self.ignore_border
        if self.mode == "max":
            y = F.max_pool2d(x4, self.ws, self.stride, self.pad, ceil_mode=ceil)
        elif self.mode == "sum":
            y = F.avg_pool2d(x4, self.ws, self.stride, self.pad, ceil_mode=ceil,
                             divisor_override=1)
        else:
            y = F.avg_pool2d(x4, self.ws, self.stride, self.pad, ceil_mode=ceil,
                             count_include_pad=self.mode == "average_inc_pad")
        return [y.reshape(lead + tuple(y.shape[-2:]))]


def pool_2d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0), mode="max", ds=None, st=None,  # noqa: A002
            padding=None):
    """Theano's pool_2d over the last two dimensions. ``ignore_border=False`` (Theano's default)
    keeps the partial windows at the bottom and right edges."""
    ws = ws if ws is not None else ds
    if ws is None:
        raise TypeError("pool_2d: ws (the window size) is required")
    ws = tuple(int(v) for v in ws)
    stride = tuple(int(v) for v in (stride if stride is not None else st if st is not None else ws))
    pad = tuple(int(v) for v in (padding if padding is not None else pad))
    if mode not in _MODES:
        raise ValueError(f"pool_2d: mode must be one of {_MODES}, got {mode!r}")
    ignore_border = bool(ignore_border)
    if not ignore_border and pad != (0, 0):
        raise NotImplementedError("pool_2d: padding works only with ignore_border=True (as in Theano)")
    if any(p >= w for p, w in zip(pad, ws)):
        raise ValueError(f"pool_2d: padding {pad} must be smaller than the window {ws}")
    return Pool(ws, ignore_border, stride, pad, mode)(input)
