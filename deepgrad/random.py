"""Seeded random number generation, reproducible bit for bit.

``Generator`` wraps a NumPy PCG64 generator; ``default_generator`` is the global one that
``manual_seed`` reseeds and that every random factory, initialiser, dropout mask, sampler and
augmentation uses when no ``generator=`` is passed.

A thread may override the default generator *for itself only* (:func:`thread_default_generator`):
the DataLoader does this while it fetches a batch, so that ``dg.randn`` inside
``Dataset.__getitem__`` draws from a generator seeded by (epoch seed, batch index) instead of the
shared global stream, whichever thread fetches and in whatever order.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np


class Generator:
    """A source of random numbers with PyTorch's ``manual_seed``/``get_state``/``set_state``."""

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = 0
        self.np = np.random.Generator(np.random.PCG64(0))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        self._seed = seed
        self.np = np.random.Generator(np.random.PCG64(seed & 0xFFFFFFFFFFFFFFFF))
        return self

    def seed(self) -> int:
        """Reseed from OS entropy and return the new seed."""
        s = int(np.random.SeedSequence().entropy) & 0xFFFFFFFFFFFFFFFF
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """The generator state as plain JSON-able data (no pickle needed to save it)."""
        st = self.np.bit_generator.state
        return {"bit_generator": st["bit_generator"],
                "state": {"state": str(st["state"]["state"]), "inc": str(st["state"]["inc"])},
                "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"]),
                "seed": self._seed}

    def set_state(self, state: dict) -> None:
        if state.get("bit_generator") != "PCG64":
            raise ValueError(f"Generator.set_state: expected a PCG64 state, got {state.get('bit_generator')!r}")
        self.np.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int(state["state"]["state"]), "inc": int(state["state"]["inc"])},
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}
        self._seed = int(state.get("seed", 0))


# The global generator starts from fresh OS entropy, as PyTorch's does, so two unseeded processes
# draw different numbers; ``manual_seed`` makes a run reproducible. (A new ``Generator()`` still
# starts from a fixed seed, as ``torch.Generator()`` does.)
default_generator = Generator()
default_generator.seed()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (and NumPy's legacy global state, for third-party code)."""
    np.random.seed(int(seed) & 0xFFFFFFFF)
    from .cuda import _rng as _cuda_rng      # the GPUs' generators too, as torch.manual_seed does
    _cuda_rng.seed_all(seed)
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    default_generator.set_state(state)


_local = threading.local()


def _thread_override():
    """The generator this thread uses in place of the global one, or None. The value installed may
    be a Generator or any object with a ``get()`` returning one (created lazily on first draw)."""
    g = getattr(_local, "generator", None)
    if g is not None and not isinstance(g, Generator):
        g = g.get()
    return g


@contextlib.contextmanager
def thread_default_generator(generator):
    """Within the ``with`` block, the current thread's default generator is ``generator`` (a
    Generator, an object whose ``get()`` returns one, or None for the global one); other threads
    and the global stream are unaffected."""
    prev = getattr(_local, "generator", None)
    _local.generator = generator
    try:
        yield generator
    finally:
        _local.generator = prev


def rng(generator: Generator | None = None) -> np.random.Generator:
    """The NumPy generator to draw from: ``generator``'s, else this thread's override (set by a
    DataLoader while it fetches a batch), else the global one."""
    if generator is None:
        g = getattr(_local, "generator", None)
        if g is None:
            return default_generator.np
        return (g if isinstance(g, Generator) else g.get()).np
    return generator.np
