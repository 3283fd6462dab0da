"""Shape and movement ops: broadcasting, reshape/view, transpose/permute, squeeze/unsqueeze,
expand, repeat, cat/stack/split, flip, roll, pad, tril/triu."""
from __future__ import annotations

from .. import backend
from ..autograd.function import Function
from ._util import reduced_axes, shape_arg


class SumTo(Function):
    """Sum a broadcast gradient back down to ``shape``; its backward broadcasts again."""

    def forward(self, x, shape=None):
        self.in_shape = x.shape
        lead, axes = reduced_axes(x.shape, shape)
        out = x.sum(axis=axes, keepdims=True) if axes else x
        return out.reshape(shape) if lead else out

    def backward(self, g):
        return broadcast_to(g, self.in_shape)


class BroadcastTo(Function):
    is_view = True

    def forward(self, x, shape=None):
        self.in_shape = x.shape
        return backend.array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        return sum_to(g, self.in_shape)


def sum_to(x, shape):
    shape = tuple(shape)
    if x.array.shape == shape:
        return x
    return SumTo.apply(x, shape=shape)


def broadcast_to(input, shape):
    shape = shape_arg((shape,)) if not isinstance(shape, int) else (shape,)
    if tuple(input.shape) == shape:
        return input
    try:
        backend.array_module(input.array).broadcast_shapes(input.array.shape, shape)
    except ValueError:
        raise RuntimeError(f"broadcast_to: the shape {tuple(input.shape)} cannot be broadcast to {shape}") from None
    return BroadcastTo.apply(input, shape=shape)
