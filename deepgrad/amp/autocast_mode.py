"""``autocast``: PyTorch's mixed-precision context, with honest behaviour until the policy exists.

What happens, by case (PyTorch's CPU build in brackets where deepgrad matches it):

* ``enabled=False``: a no-op context and decorator [same].
* ``device_type="cuda"`` without a usable GPU: a warning, then a no-op [same].
* ``device_type="cpu"`` with a dtype other than bfloat16/float16: a warning, then a no-op [same].
* ``device_type="cpu"``, enabled, bfloat16 or float16: PyTorch runs matrix products and
  convolutions in the low dtype. deepgrad does not yet have that policy table, and running in
  float32 instead would silently give different numbers, so entering the context raises
  ``NotImplementedError`` saying what to do (run in float32: drop the context or pass
  ``enabled=False``). The later mixed-precision work replaces this.
"""
from __future__ import annotations

import functools
import warnings

from .. import backend

_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
                 "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")
_state = {"cpu": [False, None], "cuda": [False, None]}   # device_type -> [enabled, dtype]


def _default_dtype(device_type):
    return backend.bfloat16 if device_type == "cpu" else backend.float16


class autocast:
    """``with deepgrad.autocast(device_type, dtype=None, enabled=True, cache_enabled=None):`` or
    ``@deepgrad.autocast(...)`` on a function (see the module docstring for what it does)."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if device_type not in _DEVICE_TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start of device "
                               f"string: {device_type}")
        self.device = device_type
        self.fast_dtype = _default_dtype(device_type) if dtype is None else backend.as_dtype(dtype)
        self._enabled = bool(enabled)
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        if not self._enabled:
            return
        if device_type == "cuda" and not backend.cuda_available():
            warnings.warn("CUDA is not available. Disabling autocast.", UserWarning, stacklevel=2)
            self._enabled = False
        elif device_type == "cpu" and self.fast_dtype not in (backend.bfloat16, backend.float16):
            warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling autocast.\n"
                          "CPU Autocast only supports dtypes of deepgrad.bfloat16, deepgrad.float16 currently.",
                          UserWarning, stacklevel=2)
            self._enabled = False
        elif device_type not in ("cpu", "cuda"):
            warnings.warn(f"autocast: device type {device_type!r} does not exist in deepgrad. Disabling autocast.",
                          UserWarning, stacklevel=2)
            self._enabled = False

    def __enter__(self):
        if not self._enabled:
            return self
        raise NotImplementedError(
            f"deepgrad.autocast(device_type={self.device!r}, dtype={self.fast_dtype}) with enabled=True is not "
            "implemented yet: deepgrad does not run matrix products and convolutions in low precision inside "
            "autocast, and silently computing in float32 would not be what PyTorch computes. Run in float32 "
            "instead: remove the autocast context or pass enabled=False.")

    def __exit__(self, exc_type, exc, tb):
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return wrapper


def is_autocast_enabled(device_type=None) -> bool:
    """Always False for now: an enabled autocast cannot be entered yet (see autocast)."""
    return _state.get(device_type or "cuda", [False])[0]


def is_autocast_available(device_type) -> bool:
    return device_type in ("cpu", "cuda")


def get_autocast_dtype(device_type):
    if device_type not in _state:
        raise RuntimeError(f"get_autocast_dtype: unknown device type {device_type!r}")
    return _default_dtype(device_type)


def get_autocast_cpu_dtype():
    return backend.bfloat16


def get_autocast_gpu_dtype():
    return backend.float16


def custom_fwd(fwd=None, *, device_type="cuda", cast_inputs=None):
    """Decorator for a custom Function's forward under autocast: with no autocast to leave, the
    forward runs as written."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    return fwd


def custom_bwd(bwd=None, *, device_type="cuda"):
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd
