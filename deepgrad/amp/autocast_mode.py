"""``autocast``: PyTorch's mixed-precision context, with PyTorch's CPU policy.

What happens, by case (PyTorch's CPU build in brackets where deepgrad matches it):

* ``enabled=False``: a no-op context and decorator, and inside an enabled region a region where
  autocast is off [same].
* ``device_type="cuda"`` without a usable GPU: a warning, then a no-op [same].
* ``device_type="cpu"`` with a dtype other than bfloat16/float16: a warning, then a no-op [same].
* ``device_type="cpu"``, enabled, bfloat16 or float16: PyTorch's CPU autocast (amp/_policy.py):
  matrix products and convolutions run in the low dtype, losses and linear algebra in float32,
  cat/stack/index_copy in the widest input dtype, everything else in its inputs' dtype. Casts are
  ordinary differentiable ops, so backward runs in the forward's dtypes and parameters receive
  float32 gradients. Casts of parameters are cached until the outermost region exits.
* ``device_type="cuda"`` enabled with a GPU (CuPy): not implemented (NotImplementedError).
"""
from __future__ import annotations

import functools
import warnings

from .. import backend
from . import _policy

_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
                 "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")
_state = {"cpu": _policy.STATE, "cuda": [False, backend.float16]}   # device_type -> [enabled, dtype, ...]


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
        if self.device != "cpu":
            if self._enabled:
                raise NotImplementedError(
                    f"deepgrad.autocast(device_type={self.device!r}) with enabled=True is not implemented: "
                    "deepgrad has CPU autocast only. Run in float32 (drop the context or pass enabled=False), "
                    "or use device_type='cpu'.")
            return self
        st = _policy.STATE
        self._prev = (st[0], st[1], _policy._cache_enabled[0])
        if self._enabled:
            backend.as_dtype(self.fast_dtype)    # installs the float16/bfloat16 fast path
            _policy.install()
            st[1] = self.fast_dtype
            _policy._cache_enabled[0] = self._cache_enabled
        st[0] = self._enabled
        st[2] += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.device != "cpu":
            return False
        st = _policy.STATE
        st[0], st[1], _policy._cache_enabled[0] = self._prev
        st[2] -= 1
        if st[2] == 0:                  # PyTorch clears the cast cache when the outermost region ends
            _policy.clear_cache()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return wrapper


def is_autocast_enabled(device_type=None) -> bool:
    """Whether autocast is on for ``device_type`` (default "cuda", as PyTorch's)."""
    return bool(_state.get(device_type or "cuda", [False])[0])


def is_autocast_available(device_type) -> bool:
    return device_type in ("cpu", "cuda")


def get_autocast_dtype(device_type):
    if device_type not in _state:
        raise RuntimeError(f"get_autocast_dtype: unknown device type {device_type!r}")
    return _state[device_type][1]


def get_autocast_cpu_dtype():
    return _policy.STATE[1]


def get_autocast_gpu_dtype():
    return backend.float16


def custom_fwd(fwd=None, *, device_type="cuda", cast_inputs=None):
    """Decorator for a custom Function's ``forward(ctx, ...)``: with ``cast_inputs`` given and
    autocast on for ``device_type``, floating Tensor arguments are cast to ``cast_inputs`` and
    forward runs with autocast off; otherwise forward runs as written. The autocast state is
    noted on ``ctx`` for ``custom_bwd``."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        st = _state.get(device_type, [False, None])
        ctx = args[0] if args else None
        if ctx is not None:
            try:
                ctx._fwd_used_autocast, ctx._dtype = bool(st[0]), st[1]
            except AttributeError:
                pass
        if cast_inputs is None or not st[0]:
            return fwd(*args, **kwargs)
        from ..tensor import Tensor
        dt = backend.as_dtype(cast_inputs)
        args, kwargs = _policy._cast_all(args, kwargs, dt, Tensor, False)
        with autocast(device_type=device_type, enabled=False):
            return fwd(*args, **kwargs)
    return decorate_fwd


def custom_bwd(bwd=None, *, device_type="cuda"):
    """Decorator for a custom Function's ``backward(ctx, ...)``: runs it under the autocast state
    its forward saw (see ``custom_fwd``)."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        ctx = args[0] if args else None
        used = getattr(ctx, "_fwd_used_autocast", False)
        if device_type != "cpu" or not used:
            return bwd(*args, **kwargs)
        with autocast(device_type=device_type, enabled=used, dtype=getattr(ctx, "_dtype", None)):
            return bwd(*args, **kwargs)
    return decorate_bwd
