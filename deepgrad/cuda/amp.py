"""``deepgrad.cuda.amp``: PyTorch's deprecated spellings ``cuda.amp.autocast(...)`` and
``cuda.amp.GradScaler(...)``, which are ``deepgrad.amp``'s with ``device_type="cuda"``."""
from __future__ import annotations

from .. import amp as _amp
from ..amp import custom_fwd, custom_bwd  # noqa: F401

autocast, GradScaler = _amp._device_spellings("cuda", __name__)
