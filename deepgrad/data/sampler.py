"""Samplers: which dataset indices an epoch visits, and in what order.

Random samplers draw the whole epoch's indices from ``generator`` (else the global generator)
when ``iter()`` is called, in the caller's thread, so background prefetching cannot reorder their
draws. ``_epoch_indices()`` returns that epoch as an int64 array (the DataLoader slices it into
batches without building Python lists); ``_epoch_chunks()`` returns it as an iterable of int64
arrays, which lets a sampler whose epoch is too long to hold in memory (``RandomSampler(ds,
replacement=True, num_samples=10**10)``) hand it out piece by piece.
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

    def _epoch_chunks(self):
        """The epoch's indices as an iterable of int64 arrays (drawn now, consumed lazily), or
        None if unknown ahead of time."""
        idx = self._epoch_indices()
        return None if idx is None else (idx,)


class _ArraySampler(Sampler):
    def __iter__(self):
        chunks = self._epoch_chunks()
        if isinstance(chunks, tuple) and len(chunks) == 1:
            return iter(chunks[0].tolist())
        return (i for c in chunks for i in c.tolist())


# Epochs longer than this are drawn lazily, _LAZY_CHUNK indices at a time, from a private
# Generator seeded (from ``generator``, else the global one) when the epoch starts, as PyTorch's
# RandomSampler does; shorter ones are drawn at once, so their stream is unchanged.
_EAGER_LIMIT = 1 << 22
_LAZY_CHUNK = 1 << 16


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
        if n == 0:
            raise ValueError("RandomSampler: the data source is empty")
        if m > _EAGER_LIMIT:
            return None              # too long to hold: see _epoch_chunks
        g = _random.rng(self.generator)
        if self.replacement:
            return g.integers(0, n, size=m, dtype=np.int64)
        chunks = [g.permutation(n) for _ in range(m // n)]
        if m % n:
            chunks.append(g.permutation(n)[:m % n])
        return np.concatenate(chunks).astype(np.int64, copy=False)

    def _epoch_chunks(self):
        n, m = len(self.data_source), int(self.num_samples)
        if n == 0:
            raise ValueError("RandomSampler: the data source is empty")
        if m <= _EAGER_LIMIT:
            return (self._epoch_indices(),)
        # One seed drawn now, in the caller's thread; the indices come from a private stream,
        # so prefetching or other draws from the same generator cannot change them.
        seed = int(_random.rng(self.generator).integers(0, 2 ** 63 - 1, dtype=np.int64))
        return self._lazy_chunks(np.random.default_rng(seed), n, m)

    def _lazy_chunks(self, g, n, m):
        left = m
        while left > 0:
            if self.replacement:
                k = min(left, _LAZY_CHUNK)
                yield g.integers(0, n, size=k, dtype=np.int64)
            else:                    # one permutation of the data at a time
                k = min(left, n)
                yield g.permutation(n)[:k].astype(np.int64, copy=False)
            left -= k


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


def _chunks_of(sampler):
    """The sampler's epoch as int64 chunks when it is one of ours, whose ``__iter__`` walks
    exactly those chunks; None for any other sampler (and for a subclass that overrides
    ``__iter__``), which is then iterated as PyTorch would."""
    if type(sampler).__iter__ is not _ArraySampler.__iter__:
        return None
    return sampler._epoch_chunks()


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
        """Batches as int64 arrays; the epoch's indices are drawn now (or, for an epoch too long
        to hold, its private stream is seeded now and drawn chunk by chunk)."""
        chunks = _chunks_of(self.sampler)
        if chunks is not None:
            return self._slices(chunks)
        return (np.asarray(b, dtype=np.int64) for b in self._iter_lists(iter(self.sampler)))

    def _slices(self, chunks):
        bs = self.batch_size
        if isinstance(chunks, np.ndarray):
            chunks = (chunks,)
        if isinstance(chunks, tuple) and len(chunks) == 1:
            idx = chunks[0]
            n = len(idx)
            stop = n - n % bs if self.drop_last else n
            return (idx[i:i + bs] for i in range(0, stop, bs))
        return self._rebatch(chunks)

    def _rebatch(self, chunks):
        """Batches of ``batch_size`` across chunk boundaries."""
        bs = self.batch_size
        carry = np.empty(0, dtype=np.int64)
        for c in chunks:
            if carry.size:
                c = np.concatenate([carry, c])
            full = len(c) - len(c) % bs
            for i in range(0, full, bs):
                yield c[i:i + bs]
            carry = c[full:]
        if carry.size and not self.drop_last:
            yield carry

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
        chunks = _chunks_of(self.sampler)
        if chunks is not None:
            return (b.tolist() for b in self._slices(chunks))
        return self._iter_lists(iter(self.sampler))
