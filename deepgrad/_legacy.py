"""PyTorch's legacy tensor types: ``deepgrad.FloatTensor([1, 2])``, ``LongTensor(2, 3)``,
``t.type() == 'torch.FloatTensor'``, ``t.type(deepgrad.LongTensor)``, ``isinstance(t, FloatTensor)``.

Each legacy type is a class whose call builds an ordinary :class:`~deepgrad.Tensor` of its dtype:
from data (a list, tuple, array or Tensor of that dtype) or from sizes (ints or a ``Size``), the
new tensor then being zero-filled where PyTorch leaves it uninitialised. ``isinstance`` checks the
dtype and device, as PyTorch's does. The names keep PyTorch's 'torch.' prefix because programs
compare ``t.type()`` with those exact strings.
"""
from __future__ import annotations

import numpy as np

from . import backend

# PyTorch's type name for each dtype, in PyTorch's spelling.
_NAMES = [("float32", "FloatTensor"), ("float64", "DoubleTensor"), ("float16", "HalfTensor"),
          ("bfloat16", "BFloat16Tensor"), ("int64", "LongTensor"), ("int32", "IntTensor"),
          ("int16", "ShortTensor"), ("int8", "CharTensor"), ("uint8", "ByteTensor"),
          ("bool", "BoolTensor")]
_DTYPE = {}
for _dt, _name in _NAMES:
    _d = getattr(backend, _dt if _dt != "bool" else "bool_")
    if _d is not None:
        _DTYPE[_name] = _d
_NAME = {d: n for n, d in _DTYPE.items()}


def type_name(t) -> str:
    """'torch.FloatTensor' for a float32 CPU tensor, 'torch.cuda.FloatTensor' on a GPU."""
    name = _NAME.get(t.dtype)
    if name is None:  # pragma: no cover - every deepgrad dtype has a name
        raise TypeError(f"Tensor.type(): no PyTorch type name for dtype {t.dtype}")
    return ("torch.cuda." if t.device.type == "cuda" else "torch.") + name


def dtype_of_type(spec):
    """The dtype named by a legacy type (class or 'torch.LongTensor'), else ``spec`` as a dtype."""
    if isinstance(spec, _LegacyType):
        return spec._dtype
    if isinstance(spec, str):
        name = spec.rsplit(".", 1)[-1]
        if spec.startswith(("torch.", "deepgrad.")) and name in _DTYPE:
            if ".cuda." in spec:
                raise TypeError(f"type {spec} not available: deepgrad has no CUDA device here")
            return _DTYPE[name]
        raise ValueError(f"invalid type: {spec!r}")
    return backend.as_dtype(spec)


class _LegacyType(type):
    def __instancecheck__(cls, obj):
        from .tensor import Tensor
        return (isinstance(obj, Tensor) and obj.dtype == cls._dtype
                and (obj.device.type == "cuda") == cls._cuda)

    def __call__(cls, *args, device=None, **kwargs):
        from .tensor import Tensor, Size
        if kwargs:
            raise TypeError(f"{cls.__name__}(): unexpected keyword argument(s) {sorted(kwargs)}; "
                            "a legacy constructor takes data or sizes (use deepgrad.tensor(data, dtype=...))")
        if cls._cuda:
            raise TypeError(f"type torch.cuda.{cls.__name__} not available: deepgrad has no CUDA device "
                            "here (use deepgrad.tensor(data, dtype=..., device='cuda') with CuPy on a GPU)")
        dt = cls._dtype
        if not args:
            return Tensor._make(np.zeros((0,), dtype=dt))
        if len(args) == 1 and isinstance(args[0], Tensor):
            t = args[0]
            if t.dtype != dt:
                raise TypeError(f"{cls.__name__}(): expected a tensor of dtype {dt}, got {t.dtype} "
                                f"(use t.to({dt}))")
            return t.detach()
        if isinstance(args[0], Size) or all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                                            for a in args):
            shape = tuple(args[0]) if isinstance(args[0], Size) else tuple(int(a) for a in args)
            if any(s < 0 for s in shape):
                raise RuntimeError(f"{cls.__name__}(): negative dimension in size {shape}")
            return Tensor._make(np.zeros(shape, dtype=dt))
        if len(args) == 1:
            data = args[0]
            if isinstance(data, (int, float, complex, bool, np.generic)):
                raise TypeError(f"new(): data must be a sequence (got {type(data).__name__})")
            return Tensor(data, dtype=dt, device=device)
        raise TypeError(f"{cls.__name__}(): expected data (a sequence) or sizes (ints), got "
                        f"{tuple(type(a).__name__ for a in args)}")

    def __repr__(cls):
        return f"<class '{'torch.cuda.' if cls._cuda else 'torch.'}{cls.__name__}'>"


def _make_type(name, dtype, cuda=False):
    return _LegacyType(name, (), {"_dtype": dtype, "_cuda": cuda, "__module__": "deepgrad"})


LEGACY_TYPES = {name: _make_type(name, dt) for name, dt in _DTYPE.items()}
CUDA_LEGACY_TYPES = {name: _make_type(name, dt, cuda=True) for name, dt in _DTYPE.items()}
globals().update(LEGACY_TYPES)
__all__ = list(LEGACY_TYPES)
