"""``deepgrad.amp``: PyTorch's mixed-precision API (``torch.amp``): ``autocast`` and ``GradScaler``.

``GradScaler`` is complete (dynamic loss scaling with PyTorch's arithmetic). ``autocast`` runs as
a no-op where PyTorch's CPU build disables it and refuses, with a clear error, where PyTorch would
lower the precision (see ``autocast_mode``); the low-precision policy is later work.
"""
from .autocast_mode import (autocast, is_autocast_enabled, is_autocast_available, get_autocast_dtype,  # noqa: F401
                            custom_fwd, custom_bwd)
from .grad_scaler import GradScaler, OptState  # noqa: F401

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "is_autocast_available", "get_autocast_dtype",
           "custom_fwd", "custom_bwd"]
