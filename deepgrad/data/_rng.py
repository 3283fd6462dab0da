"""Where the data pipeline draws its random numbers.

Everything goes through ``deepgrad.random.rng(generator)``. While a DataLoader fetches batch ``k``
of an epoch it installs, for the fetching thread only, a Generator seeded from (the epoch's base
seed, ``k``) as that thread's *default* generator (``deepgrad.random.thread_default_generator``);
the base seed is drawn from the loader's generator (else the global one) when the epoch starts.
Augmentations and any user code in ``Dataset.__getitem__`` that calls ``dg.randn``/``dg.rand``/...
are therefore reproducible under ``deepgrad.manual_seed`` and give the same batches whether they
run in the main thread or in prefetch threads, in any order; the global stream is not advanced by
fetching.
"""
from __future__ import annotations

import numpy as np

from .. import random as _random

_local = _random._local     # one thread-local override, shared with deepgrad.random.rng


class _Deferred:
    """A Generator seeded from (base_seed, index), created on first use (most batches of a
    deterministic pipeline never draw a random number, so they never pay for it)."""

    __slots__ = ("base_seed", "index", "generator")

    def __init__(self, base_seed, index):
        self.base_seed, self.index, self.generator = base_seed, index, None

    def get(self):
        if self.generator is None:
            self.generator = derive_generator(self.base_seed, self.index)
        return self.generator


def current_generator():
    """The Generator installed for this thread by a DataLoader, or None (the global one)."""
    g = getattr(_local, "generator", None)
    return g.get() if isinstance(g, _Deferred) else g


def rng(generator=None) -> np.random.Generator:
    """The NumPy generator a transform should draw from: ``generator``, else the one a DataLoader
    installed for this thread, else the global one."""
    if generator is None:
        generator = getattr(_local, "generator", None)
        if isinstance(generator, _Deferred):
            generator = generator.get()
    return _random.rng(generator)


def use_generator(generator):
    """Install ``generator`` (a Generator, a deferred one, or None) as the current thread's
    default generator (a context manager)."""
    return _random.thread_default_generator(generator)


def deferred_generator(base_seed: int, index: int):
    return _Deferred(base_seed, index)


_MASK = (1 << 64) - 1


def _splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def derive_generator(base_seed: int, index: int):
    """A fresh Generator seeded from ``(base_seed, index)`` (independent streams per index)."""
    seed = _splitmix64((_splitmix64(int(base_seed) & _MASK) + int(index)) & _MASK)
    return _random.Generator().manual_seed(seed)


def draw_seed(generator=None) -> int:
    """A 63-bit seed drawn from ``generator`` (else the global generator)."""
    return int(_random.rng(generator).integers(0, 2 ** 63 - 1, dtype=np.int64))
