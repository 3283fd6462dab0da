"""``DataParallel``: PyTorch's single-machine replication wrapper, on deepgrad's one device.

Without several GPUs PyTorch's ``DataParallel`` simply calls the wrapped module; deepgrad does the
same. The module sits in ``.module``, so ``state_dict`` keys carry the ``module.`` prefix exactly
as PyTorch's do, and checkpoints move between the two.
"""
from __future__ import annotations

from ..module import Module


class DataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a Module to wrap, got {type(module).__name__}")
        self.module = module
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.dim = dim
        if self.device_ids:
            self.output_device = self.device_ids[0] if output_device is None else output_device

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
