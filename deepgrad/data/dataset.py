"""Datasets: map-style (``__getitem__``/``__len__``) and iterable, plus their combinators.

Fast path: a map-style dataset may define ``_get_batch(indices)`` taking an int64 index array and
returning the *already collated* batch as a structure of arrays (a tuple/list/dict of ndarrays),
or ``None`` when it cannot (for example because a random per-sample transform is set). The
DataLoader then gathers a whole batch with one fancy-index instead of ``len(indices)`` Python
calls; the result must equal what ``default_collate([ds[i] for i in indices])`` gives.
"""
from __future__ import annotations

import bisect
import math
import numbers
import warnings

import numpy as np

from .. import random as _random
from ..tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "ArrayDataset", "Subset",
           "ConcatDataset", "ChainDataset", "random_split"]


class Dataset:
    """A map-style dataset: ``ds[i]`` for ``0 <= i < len(ds)``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: ``iter(ds)`` yields its samples."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


def _as_array(x, what):
    if isinstance(x, Tensor):
        return x.array
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return x
    raise TypeError(f"{what}: expected Tensors or arrays, got {type(x).__name__}")


class TensorDataset(Dataset):
    """Samples are ``(t[i] for t in tensors)``; all tensors share their first dimension.

    Accepts deepgrad Tensors or ndarrays; items are Tensors (views of row ``i``).
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        arrays = [_as_array(t, "TensorDataset") for t in tensors]
        for k, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {k} is 0-d; every tensor needs a first (sample) dimension")
        n = arrays[0].shape[0]
        for k, a in enumerate(arrays):
            if a.shape[0] != n:
                raise ValueError("TensorDataset: size mismatch between tensors: "
                                 f"tensor 0 has {n} samples, tensor {k} has {a.shape[0]} "
                                 f"(shapes {[tuple(x.shape) for x in arrays]})")
        self._arrays = arrays
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor._make(a) for t, a in zip(tensors, arrays))

    def __len__(self):
        return self._arrays[0].shape[0]

    def __getitem__(self, index):
        index = _check_index(index, len(self), type(self).__name__)
        return tuple(Tensor._make(a[index, ...]) for a in self._arrays)

    def _get_batch(self, indices):
        return tuple(a[indices] for a in self._arrays)


class ArrayDataset(Dataset):
    """Like TensorDataset but items are NumPy arrays, optionally with per-sample transforms.

    ``ArrayDataset(x, y, transform=None, target_transform=None)``. Without transforms (or with
    deterministic batchable ones) the DataLoader gathers whole batches with one fancy-index.
    """

    def __init__(self, *arrays, transform=None, target_transform=None):
        if not arrays:
            raise ValueError("ArrayDataset: needs at least one array")
        arrays = [np.asarray(a) if not isinstance(a, (Tensor, np.ndarray)) else _as_array(a, "ArrayDataset")
                  for a in arrays]
        n = arrays[0].shape[0]
        for k, a in enumerate(arrays):
            if a.ndim == 0 or a.shape[0] != n:
                raise ValueError(f"ArrayDataset: size mismatch: array 0 has {n} samples, array {k} has shape {a.shape}")
        self.arrays = arrays
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self):
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        index = _check_index(index, len(self), type(self).__name__)
        out = [a[index, ...] for a in self.arrays]
        if self.transform is not None:
            out[0] = self.transform(out[0])
        if self.target_transform is not None and len(out) > 1:
            out[1] = self.target_transform(out[1])
        return tuple(out) if len(out) > 1 else out[0]

    def _get_batch(self, indices):
        out = [a[indices] for a in self.arrays]
        if self.target_transform is not None and len(out) > 1:
            return None
        if self.transform is not None:
            fn = batch_fn(self.transform)
            if fn is None:
                return None
            out[0] = fn(out[0])
        return tuple(out) if len(out) > 1 else out[0]


def batch_fn(transform):
    """A callable applying ``transform`` to a whole batch exactly as per sample, or None.

    Only deterministic transforms that declare ``apply_batch`` qualify (random ones would draw
    their numbers in a different order than the per-sample path).
    """
    if transform is None:
        return lambda x: x
    if getattr(transform, "deterministic", False) and hasattr(transform, "apply_batch"):
        return transform.apply_batch
    return None


def _check_index(index, n, name):
    if isinstance(index, Tensor):
        index = index.item()
    if not isinstance(index, (numbers.Integral, np.integer)):
        raise TypeError(f"{name}: indices must be integers, got {type(index).__name__}")
    index = int(index)
    if index < -n or index >= n:
        raise IndexError(f"{name}: index {index} out of range for {n} samples")
    return index + n if index < 0 else index


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (in that order)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        if isinstance(indices, Tensor):
            indices = indices.array
        self.indices = indices
        self._idx = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple)):
            return [self.dataset[int(self._idx[i])] for i in index]
        return self.dataset[int(self._idx[index])]

    def _get_batch(self, indices):
        get = getattr(self.dataset, "_get_batch", None)
        if get is None:
            return None
        return get(self._idx[indices])


class ConcatDataset(Dataset):
    """The concatenation of map-style datasets."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset (use ChainDataset)")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise IndexError(f"ConcatDataset: index {idx} out of range for {n} samples")
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} out of range for {n} samples")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        local = idx if d == 0 else idx - self.cumulative_sizes[d - 1]
        return self.datasets[d][local]

    def _get_batch(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        cum = np.asarray(self.cumulative_sizes)
        which = np.searchsorted(cum, indices, side="right")
        parts, order = [], []
        for d in np.unique(which):
            get = getattr(self.datasets[d], "_get_batch", None)
            if get is None:
                return None
            sel = np.nonzero(which == d)[0]
            start = 0 if d == 0 else cum[d - 1]
            part = get(indices[sel] - start)
            if part is None:
                return None
            parts.append(part)
            order.append(sel)
        inverse = np.empty(len(indices), dtype=np.int64)
        inverse[np.concatenate(order)] = np.arange(len(indices))
        return _tree_concat_take(parts, inverse)


def _tree_concat_take(parts, inverse):
    first = parts[0]
    if isinstance(first, dict):
        return {k: _tree_concat_take([p[k] for p in parts], inverse) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_tree_concat_take([p[i] for p in parts], inverse) for i in range(len(first)))
    return np.concatenate(parts)[inverse]


class ChainDataset(IterableDataset):
    """Iterates the iterable datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random Subsets of the given lengths.

    ``lengths`` are integers summing to ``len(dataset)``, or fractions summing to 1: each split gets
    ``floor(n * fraction)`` samples and the remainder is dealt out one by one, round-robin, from
    the first split (as PyTorch does). The permutation comes from ``generator`` (else the global
    generator), so ``deepgrad.manual_seed`` makes splits reproducible.
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and not all(
            isinstance(l, (numbers.Integral, np.integer)) for l in lengths):
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1: {frac}")
        sizes = [int(math.floor(n * frac)) for frac in lengths]
        remainder = n - sum(sizes)
        for i in range(remainder):
            sizes[i % len(sizes)] += 1
        for i, s in enumerate(sizes):
            if s == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; this results in an empty dataset")
        lengths = sizes
    for l in lengths:
        if not isinstance(l, (numbers.Integral, np.integer)) or l < 0:
            raise ValueError(f"random_split: lengths must be non-negative integers or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length of the "
                         f"input dataset ({n})")
    perm = _random.rng(generator).permutation(n)
    out, offset = [], 0
    for l in lengths:
        out.append(Subset(dataset, perm[offset:offset + l].tolist()))
        offset += l
    return out
