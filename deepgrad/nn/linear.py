"""``Linear``, ``Bilinear``, ``Identity``, ``Flatten``, ``Unflatten``."""
from __future__ import annotations

import math

from . import functional as F
from . import init
from ..ops.linalg import LinearFn
from .module import Module
from .parameter import _empty, _set_parameters

__all__ = ["Identity", "Linear", "Bilinear", "Flatten", "Unflatten"]


class Identity(Module):
    """Returns its input (any constructor arguments are accepted and ignored)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """``y = x W^T + b`` with ``W`` of shape (out_features, in_features).

    Initialised like PyTorch: ``W ~ kaiming_uniform_(a=sqrt(5))`` i.e. U(-1/sqrt(in), 1/sqrt(in)),
    ``b ~ U(-1/sqrt(in), 1/sqrt(in))``.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        _set_parameters(self, weight=_empty((out_features, in_features), dtype, device),
                        bias=_empty((out_features,), dtype, device) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        p = self._parameters
        # weight/bias computed on access (parametrizations, weight_norm hooks) live outside _parameters
        w = p["weight"] if "weight" in p else self.weight
        b = p["bias"] if "bias" in p else self.bias
        try:
            a = input.array
        except AttributeError:
            raise TypeError(f"{self!r}: expected a Tensor input, got {type(input).__name__}") from None
        if not a.ndim or a.shape[-1] != self.in_features:
            raise RuntimeError(f"{self!r}: expected input with last dimension {self.in_features}, got shape "
                               f"{tuple(a.shape)}")
        if a.dtype != w.array.dtype:
            raise RuntimeError(f"{self!r}: input dtype {a.dtype} does not match the weight dtype "
                               f"{w.array.dtype} (convert the input, or the module with .to(dtype))")
        if b is None:
            return LinearFn.apply(input, w)
        return LinearFn.apply(input, w, b)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """``y = x1^T A x2 + b`` with ``A`` of shape (out, in1, in2); U(-1/sqrt(in1), 1/sqrt(in1)) init."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        _set_parameters(self, weight=_empty((out_features, in1_features, in2_features), dtype, device),
                        bias=_empty((out_features,), dtype, device) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        if input1.shape[-1] != self.in1_features or input2.shape[-1] != self.in2_features:
            raise RuntimeError(f"{self!r}: expected inputs with last dimensions {self.in1_features} and "
                               f"{self.in2_features}, got shapes {tuple(input1.shape)} and {tuple(input2.shape)}")
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` into one (by default all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size``."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size) if isinstance(unflattened_size, list) else unflattened_size

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
