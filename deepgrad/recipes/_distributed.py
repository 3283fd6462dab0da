"""``deepgrad train RECIPE --distributed``: the pieces the recipe runner adds on every rank.

* the process group (``init_process_group("mpi")`` under ``mpirun``/``deepgrad run``);
* the training loader rebuilt around a ``DistributedSampler``: ``--batch-size`` stays the global
  batch, each rank loads ``batch_size / world_size`` of it (global step k covers the same samples
  on any number of ranks: positions ``k*B .. (k+1)*B-1`` of the epoch's order, which depends on
  the seed and the epoch only);
* the model with its batch norms made ``SyncBatchNorm`` and wrapped in ``DistributedDataParallel``;
* the epoch's loss and metrics summed over the ranks; rank 0 alone prints, writes the
  checkpoint, logs, plots and ``result.json``. Checkpoints hold the unwrapped model, so a run
  resumes on any number of ranks (or in one process).
"""
from __future__ import annotations

import numpy as np


def start():
    """Join (or reuse) the default process group; returns ``(rank, world_size)``."""
    from .. import distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("mpi")
    return dist.get_rank(), dist.get_world_size()


def agree(value):
    """Rank 0's ``value`` on every rank (e.g. the output folder, whose default has a timestamp)."""
    from .. import distributed as dist
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_loader(loader, hp, rank, world):
    from ..data.dataloader import DataLoader
    from ..data.distributed import DistributedSampler
    from ..data.sampler import RandomSampler
    bs = int(hp["batch_size"])
    if bs % world:
        raise ValueError(f"--distributed: the batch size {bs} (the global batch) must divide evenly among the "
                         f"{world} ranks")
    sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank,
                                 shuffle=isinstance(loader.sampler, RandomSampler), seed=int(hp["seed"]) + 1)
    return DataLoader(loader.dataset, batch_size=bs // world, sampler=sampler, drop_last=loader.drop_last,
                      collate_fn=loader.collate_fn, generator=getattr(loader, "generator", None))


def wrap_model(model):
    from ..nn import SyncBatchNorm
    from ..nn.parallel import DistributedDataParallel
    return DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(model))


def reduce_epoch(sums, seen):
    """The sums of loss and metrics (each weighted by batch size) and the sample count over all ranks."""
    from .. import distributed as dist
    from ..tensor import Tensor
    t = Tensor._make(np.array(list(sums) + [seen], dtype=np.float64))
    dist.all_reduce(t)
    total = t.array.tolist()
    return total[:-1], int(round(total[-1]))


def set_epoch_callback(sampler):
    from ..train.callbacks import Callback

    class SetSamplerEpoch(Callback):
        """Each epoch's order (``DistributedSampler.set_epoch``), the same on every rank."""

        def on_epoch_begin(self, epoch, logs=None):
            sampler.set_epoch(epoch)

    return SetSamplerEpoch()
