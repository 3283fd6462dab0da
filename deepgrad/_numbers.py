"""``finfo`` and ``iinfo``: the limits of a dtype, with PyTorch's field names.

``finfo(dtype)`` has ``bits, eps, max, min, tiny, smallest_normal, resolution, dtype`` (Python
floats, as PyTorch gives them) for float16, bfloat16, float32 and float64; ``iinfo(dtype)`` has
``bits, max, min, dtype`` for the integer dtypes. The values come from NumPy (and ml_dtypes for
bfloat16).
"""
from __future__ import annotations

import math

import numpy as np

from . import backend


def _name(dt):
    return "bool" if dt == np.bool_ else str(dt)


class finfo:
    def __init__(self, type=None):  # noqa: A002  (PyTorch's argument name)
        dt = backend.get_default_dtype() if type is None else backend.as_dtype(type)
        if not backend.is_floating(dt):
            raise TypeError(f"deepgrad.finfo() requires a floating point input type, got {_name(dt)}. "
                            "Use deepgrad.iinfo to handle it")
        info = backend._ml_dtypes.finfo(dt) if dt == backend.bfloat16 else np.finfo(dt)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.smallest_normal = float(info.smallest_normal)
        self.tiny = self.smallest_normal
        self.resolution = 10.0 ** -math.floor(-math.log10(self.eps))   # PyTorch's definition
        self.dtype = _name(dt)

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")

    def __eq__(self, other):
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self):
        return hash(("finfo", self.dtype))


class iinfo:
    def __init__(self, type):  # noqa: A002
        dt = backend.as_dtype(type)
        if dt == np.bool_:
            raise TypeError("deepgrad.bool is not supported by deepgrad.iinfo")
        if dt.kind not in "iu":
            raise TypeError(f"deepgrad.iinfo() requires an integer input type, got {_name(dt)}. "
                            "Use deepgrad.finfo to handle it")
        info = np.iinfo(dt)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = _name(dt)

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"

    def __eq__(self, other):
        return isinstance(other, iinfo) and self.dtype == other.dtype

    def __hash__(self):
        return hash(("iinfo", self.dtype))
