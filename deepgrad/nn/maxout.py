"""``Maxout`` (Goodfellow, Warde-Farley, Mirza, Courville & Bengio 2013): a linear layer with
``pieces`` outputs per unit, then the maximum over each unit's pieces.

PyTorch has no Maxout layer (``torch.nn`` lacks it; the usual PyTorch spelling is
``nn.Linear(in, out * k)`` followed by ``.view(..., out, k).amax(-1)``, which is exactly what this
layer computes). deepgrad adds it for the maxout networks of Goodfellow et al. and of Courbariaux et
al. 2014 (the ``precision-table`` recipe).
"""
from __future__ import annotations

import math

from . import functional as F
from . import init
from .module import Module
from .parameter import _empty, _set_parameters

__all__ = ["Maxout"]


class Maxout(Module):
    """``y[..., j] = max_k (x W^T + b)[..., j * pieces + k]`` for ``k < pieces``.

    ``weight`` has shape ``(out_features * pieces, in_features)`` and ``bias`` ``(out_features *
    pieces,)``: the pieces of unit ``j`` are rows ``j * pieces`` to ``(j + 1) * pieces - 1``
    (pylearn2's layout). Initialised as ``nn.Linear(in_features, out_features * pieces)`` is.
    Input ``(*, in_features)``, output ``(*, out_features)``. Where pieces tie, the gradient is
    shared among them equally (``amax``'s rule).
    """

    def __init__(self, in_features, out_features, pieces, bias=True, device=None, dtype=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features), ("pieces", pieces)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"Maxout: {name} must be an int, got {type(v).__name__}")
        if in_features < 0 or out_features < 0 or pieces < 1:
            raise ValueError(f"Maxout: need in_features >= 0, out_features >= 0 and pieces >= 1, got "
                             f"in_features={in_features}, out_features={out_features}, pieces={pieces}")
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        n = out_features * pieces
        _set_parameters(self, weight=_empty((n, in_features), dtype, device),
                        bias=_empty((n,), dtype, device) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        shape = tuple(getattr(input, "shape", ()))
        if not shape or shape[-1] != self.in_features:
            raise RuntimeError(f"{self!r}: expected input with last dimension {self.in_features}, got shape {shape}")
        z = F.linear(input, self.weight, self.bias)
        return z.reshape(shape[:-1] + (self.out_features, self.pieces)).amax(-1)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}, "
                f"bias={self.bias is not None}")
