"""``deepgrad.cuda.amp``: PyTorch's deprecated spellings ``cuda.amp.autocast(...)`` and
``cuda.amp.GradScaler(...)``, which are ``deepgrad.amp``'s with ``device_type="cuda"``."""
from __future__ import annotations

import warnings

from .. import amp as _amp
from ..amp import custom_fwd, custom_bwd  # noqa: F401


class autocast(_amp.autocast):
    def __init__(self, enabled=True, dtype=None, cache_enabled=True):
        warnings.warn("`deepgrad.cuda.amp.autocast(args...)` is deprecated. Please use "
                      "`deepgrad.amp.autocast('cuda', args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_amp.GradScaler):
    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 enabled=True):
        warnings.warn("`deepgrad.cuda.amp.GradScaler(args...)` is deprecated. Please use "
                      "`deepgrad.amp.GradScaler('cuda', args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cuda", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval, enabled=enabled)
