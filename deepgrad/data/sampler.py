"""Samplers: which dataset indices an epoch visits, and in what order.

Random samplers draw the whole epoch's indices from ``generator`` (else the global generator)
when ``iter()`` is called, in the caller's thread, so background prefetching cannot reorder their
draws. ``_epoch_indices()`` returns that epoch as an int64 array (the DataLoader slices it into
batches without building Python lists).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import random as _random
from ..tensor import Tensor

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]


class Sampler:
    """Base class: ``__iter__`` yields dataset indices (``__len__`` optional)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError

    def _epoch_indices(self):
        """The epoch's indices as an int64 array, or None if unknown ahead of time."""
        return None


class _ArraySampler(Sampler):
    def __iter__(self):
        return iter(self._epoch_indices().tolist())


class SequentialSampler(_ArraySampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __len__(self):
        return len(self.data_source)

    def _epoch_indices(self):
        return np.arange(len(self.data_source), dtype=np.int64)


class RandomSampler(_ArraySampler):
    """Random order. Without replacement each epoch is a permutation (``num_samples > n`` chains
    permutations); with replacement indices are drawn uniformly with repeats."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, got {replacement!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.num_samples, (numbers.Integral, np.integer)) or self.num_samples <= 0:
            raise ValueError(f"RandomSampler: num_samples should be a positive integer, got {self.num_samples!r}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __len__(self):
        return self.num_samples

    def _epoch_indices(self):
        n, m = len(self.data_source), int(self.num_samples)
        g = _random.rng(self.generator)
        if n == 0:
            raise ValueError("RandomSampler: the data source is empty")
        if self.replacement:
            return g.integers(0, n, size=m, dtype=np.int64)
        chunks = [g.permutation(n) for _ in range(m // n)]
        if m % n:
            chunks.append(g.permutation(n)[:m % n])
        return np.concatenate(chunks).astype(np.int64, copy=False)


class SubsetRandomSampler(_ArraySampler):
    """The given indices, in a random order (a fresh permutation each epoch)."""

    def __init__(self, indices, generator=None):
        if isinstance(indices, Tensor):
            indices = indices.array
        self.indices = indices
        self.generator = generator

    def __len__(self):
        return len(self.indices)

    def _epoch_indices(self):
        idx = np.asarray(self.indices, dtype=np.int64).reshape(-1)
        return idx[_random.rng(self.generator).permutation(len(idx))]


class WeightedRandomSampler(_ArraySampler):
    """Index ``i`` is drawn with probability ``weights[i] / sum(weights)``."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, (numbers.Integral, np.integer)) or isinstance(num_samples, bool) \
                or num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples should be a positive integer, got {num_samples!r}")
        if not isinstance(replacement, bool):
            raise ValueError(f"WeightedRandomSampler: replacement should be a boolean value, got {replacement!r}")
        w = np.asarray(weights.array if isinstance(weights, Tensor) else weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"WeightedRandomSampler: weights should be a 1-d sequence, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("WeightedRandomSampler: weights must be finite and non-negative")
        if w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights sum to zero")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                             f"from {np.count_nonzero(w)} non-zero weights")
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator

    def __len__(self):
        return self.num_samples

    def _epoch_indices(self):
        p = self.weights / self.weights.sum()
        g = _random.rng(self.generator)
        return g.choice(len(p), size=self.num_samples, replace=self.replacement, p=p).astype(np.int64)


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last one may be
    shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, (numbers.Integral, np.integer)) or isinstance(batch_size, bool) \
                or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer value, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean value, got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size

    def _iter_arrays(self):
        """Batches as int64 arrays; the epoch's indices are drawn now, eagerly."""
        idx = self.sampler._epoch_indices() if hasattr(self.sampler, "_epoch_indices") else None
        if idx is not None:
            return self._slices(idx)
        return (np.asarray(b, dtype=np.int64) for b in self._iter_lists(iter(self.sampler)))

    def _slices(self, idx):
        bs, n = self.batch_size, len(idx)
        stop = n - n % bs if self.drop_last else n
        return (idx[i:i + bs] for i in range(0, stop, bs))

    def _iter_lists(self, it):
        batch = []
        for i in it:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self):
        idx = self.sampler._epoch_indices() if hasattr(self.sampler, "_epoch_indices") else None
        if idx is not None:
            return (b.tolist() for b in self._slices(idx))
        return self._iter_lists(iter(self.sampler))
