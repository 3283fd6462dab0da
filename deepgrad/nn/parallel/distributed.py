"""``DistributedDataParallel``: needs an initialised process group, as in PyTorch.

deepgrad cannot create one yet (see ``deepgrad.distributed``), so constructing DDP raises the
ValueError PyTorch raises when ``init_process_group`` was not called. Guard it as PyTorch programs
do: ``if dist.is_initialized(): model = DistributedDataParallel(model)``.
"""
from __future__ import annotations

from ..module import Module


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, **kwargs):
        from ... import distributed
        if process_group is None and not distributed.is_initialized():
            raise ValueError(distributed._NO_GROUP)
        raise NotImplementedError("DistributedDataParallel: deepgrad has no multi-process backend yet")  # pragma: no cover
