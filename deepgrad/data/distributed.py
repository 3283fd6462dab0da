"""``DistributedSampler``: each rank's share of an epoch, with PyTorch's semantics.

The epoch's order (a permutation drawn from a Generator seeded with ``seed + epoch`` when
``shuffle``, else ``0..n-1``) is padded by repeating its head until it divides evenly among the
replicas (or cut, with ``drop_last``), and rank r takes every ``num_replicas``-th index from r.
Every rank computes the same order, so the shares are disjoint and cover the data set. The order
for a given seed is deepgrad's generator's, not PyTorch's (the two generators differ); with
``shuffle=False`` the shares equal PyTorch's index for index. Call ``set_epoch(e)`` before each
epoch for a new order.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .sampler import _ArraySampler

__all__ = ["DistributedSampler"]


class DistributedSampler(_ArraySampler):
    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            if not dist.is_available():
                raise RuntimeError("DistributedSampler: requires the distributed package to be available "
                                   "(pip install 'deepgrad[distributed]'), or pass num_replicas and rank")
            if num_replicas is None:
                num_replicas = dist.get_world_size()
            if rank is None:
                rank = dist.get_rank()
        for name, v in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if not isinstance(v, (numbers.Integral, np.integer)) or isinstance(v, bool):
                raise TypeError(f"DistributedSampler: {name} should be an integer, got {v!r}")
        if num_replicas <= 0:
            raise ValueError(f"DistributedSampler: num_replicas should be positive, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch = 0
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = int(seed)
        n = len(dataset)
        if drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """The epoch whose order the next ``iter()`` gives (all ranks must set the same)."""
        self.epoch = epoch

    def _epoch_indices(self):
        n = len(self.dataset)
        if self.shuffle:
            from .. import random as _random
            g = _random.Generator().manual_seed(self.seed + self.epoch)
            idx = _random.rng(g).permutation(n).astype(np.int64)
        else:
            idx = np.arange(n, dtype=np.int64)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0 and n > 0:
                idx = np.concatenate([idx, np.resize(idx, pad)])   # repeats the head as often as needed
        else:
            idx = idx[:self.total_size]
        return idx[self.rank:self.total_size:self.num_replicas]
