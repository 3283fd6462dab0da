"""Where the data pipeline draws its random numbers.

Everything goes through ``deepgrad.random.rng(generator)``. While a DataLoader fetches batch ``k``
of an epoch it installs, for the fetching thread only, a Generator seeded from (the epoch's base
seed, ``k``); the base seed is drawn from the loader's generator (else the global one) when the
epoch starts. Augmentations are therefore reproducible under ``deepgrad.manual_seed`` and give the
same batches whether they run in the main thread or in prefetch threads, in any order.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from .. import random as _random

_local = threading.local()


def current_generator():
    """The Generator installed for this thread by a DataLoader, or None (the global one)."""
    return getattr(_local, "generator", None)


def rng(generator=None) -> np.random.Generator:
    """The NumPy generator a transform or sampler should draw from."""
    if generator is None:
        generator = getattr(_local, "generator", None)
    return _random.rng(generator)


@contextlib.contextmanager
def use_generator(generator):
    """Install ``generator`` for the current thread for the duration of the block."""
    prev = getattr(_local, "generator", None)
    _local.generator = generator
    try:
        yield generator
    finally:
        _local.generator = prev


def derive_generator(base_seed: int, index: int):
    """A fresh Generator seeded from ``(base_seed, index)`` (independent streams per index)."""
    state = np.random.SeedSequence([int(base_seed), int(index)]).generate_state(2, np.uint32)
    seed = (int(state[0]) << 32) | int(state[1])
    return _random.Generator().manual_seed(seed)


def draw_seed(generator=None) -> int:
    """A 63-bit seed drawn from ``generator`` (else the global generator)."""
    return int(_random.rng(generator).integers(0, 2 ** 63 - 1, dtype=np.int64))
