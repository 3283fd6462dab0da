"""``deepgrad.amp``: PyTorch's mixed-precision API (``torch.amp``): ``autocast`` and ``GradScaler``.

``GradScaler`` is complete (dynamic loss scaling with PyTorch's arithmetic). ``autocast`` runs as
a no-op where PyTorch's CPU build disables it and refuses, with a clear error, where PyTorch would
lower the precision (see ``autocast_mode``); the low-precision policy is later work.

Emulated number formats (``FixedPoint``, ``DynamicFixedPoint``, ``Float16``; round-to-nearest and
stochastic rounding) and ``low_precision(model, propagation=..., update=...)`` are deepgrad's own
research tools (Courbariaux et al. 2014, Gupta et al. 2015): see ``formats`` and ``precision``;
``deepgrad.precision`` is the same set under a shorter name.
"""
from .autocast_mode import (autocast, is_autocast_enabled, is_autocast_available, get_autocast_dtype,  # noqa: F401
                            custom_fwd, custom_bwd)
from .grad_scaler import GradScaler, OptState  # noqa: F401
from .. import backend as _backend
from ..ops import _lowp as _lowp_ops

# float16/bfloat16 ops compute in float32 and round (ops/_lowp.py); installed the first time such a
# dtype appears, so float32 programs never pay for the wrappers
_backend.LOWP_HOOK.append(_lowp_ops.install_all)

# emulated number formats for limited-precision research (deepgrad's own; PyTorch has none)
from .formats import (NumberFormat, FixedPoint, DynamicFixedPoint, Float16, quantize,  # noqa: F401
                      round_nearest, round_stochastic)
from .precision import low_precision  # noqa: F401

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "is_autocast_available", "get_autocast_dtype",
           "custom_fwd", "custom_bwd"]


def _device_spellings(device_type, module):
    """PyTorch's deprecated ``torch.<device>.amp.autocast(...)`` / ``GradScaler(...)``: the classes
    above with ``device_type`` fixed, warning (FutureWarning) as PyTorch does."""
    import warnings

    def deprecated(what):
        warnings.warn(f"`deepgrad.{device_type}.amp.{what}(args...)` is deprecated. Please use "
                      f"`deepgrad.amp.{what}('{device_type}', args...)` instead.", FutureWarning, stacklevel=3)

    class _Autocast(autocast):
        def __init__(self, enabled=True, dtype=None, cache_enabled=True):
            deprecated("autocast")
            super().__init__(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    class _GradScaler(GradScaler):
        def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                     enabled=True):
            deprecated("GradScaler")
            super().__init__(device_type, init_scale=init_scale, growth_factor=growth_factor,
                             backoff_factor=backoff_factor, growth_interval=growth_interval, enabled=enabled)

    for cls, name in ((_Autocast, "autocast"), (_GradScaler, "GradScaler")):
        cls.__name__ = cls.__qualname__ = name
        cls.__module__ = module
    return _Autocast, _GradScaler
