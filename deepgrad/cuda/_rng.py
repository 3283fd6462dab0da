"""The CUDA device's random number generators: one per GPU, drawing on the device.

PyTorch keeps a Philox generator per GPU whose whole state is ``(seed, offset)`` (16 bytes,
``torch.cuda.get_rng_state()``); each kernel that draws takes the numbers at ``offset`` and
moves ``offset`` past them. deepgrad does the same on CuPy: a cuRAND Philox4x32-10 generator
(``cupy.random.RandomState(seed, method=PHILOX)``) is positioned with
``curandSetGeneratorOffset(offset)`` before every draw, and ``offset`` then advances by a bound
on the 32-bit words the draw used. So a state saved with ``get_state()`` and restored with
``set_state()`` replays the same numbers, and seeding is cheap (Philox has no per-thread setup).
The numbers differ from the CPU generator's and from PyTorch's, as PyTorch's CPU and CUDA
streams differ from each other.

Where the array module is not the real CuPy (the strict stand-in used by the CPU test suite)
the same ``(seed, offset)`` state drives NumPy's Philox bit generator (``counter=offset``) and
the draw is moved to the device, so the state logic is exercised without a GPU.
"""
from __future__ import annotations

import numpy as np

from .. import backend

_MASK64 = 0xFFFFFFFFFFFFFFFF


class CudaGenerator:
    """PyTorch's per-device CUDA generator: ``manual_seed``, ``seed``, ``initial_seed``,
    ``get_state``/``set_state`` (a 16-byte uint8 tensor: seed, offset), and the draws deepgrad's
    factories and dropout make on the device."""

    def __init__(self, index=0, seed=67280421310721):     # PyTorch's default CUDA seed
        self.device = backend.device("cuda", index)
        self.index = index
        self._seed = int(seed) & _MASK64
        self.offset = 0
        self._rs = None          # the cuRAND RandomState (real CuPy), made on first draw

    # ---- PyTorch's Generator API ------------------------------------------------------------
    def manual_seed(self, seed):
        self._seed = int(seed) & _MASK64
        self.offset = 0
        if self._rs is not None:
            self._rs.seed(self._curand_seed())
        return self

    def seed(self):
        s = int(np.random.SeedSequence().entropy) & _MASK64
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    def get_state(self):
        from ..tensor import Tensor
        raw = np.array([self._seed, self.offset], dtype="<u8").view(np.uint8).copy()
        return Tensor._make(raw)

    def set_state(self, new_state):
        arr = backend.to_numpy(getattr(new_state, "array", new_state))
        arr = np.asarray(arr)
        if arr.dtype != np.uint8 or arr.size != 16:
            raise RuntimeError(f"set_rng_state: expected a uint8 (ByteTensor) state of 16 bytes (seed, "
                               f"offset), got {arr.dtype} of {arr.size} elements")
        seed, offset = np.ascontiguousarray(arr).view("<u8")
        self.manual_seed(int(seed))
        self.offset = int(offset)

    # ---- draws ----------------------------------------------------------------------------------
    def _curand_seed(self):
        return self._seed

    def _advance(self, n_words):
        start = self.offset
        self.offset = (start + ((int(n_words) + 3) // 4) * 4 + 4) & _MASK64
        return start

    def _source(self, xp, n_words):
        """(generator, kind): a positioned cuRAND RandomState or a NumPy Philox Generator."""
        start = self._advance(n_words)
        if backend.is_real_cupy(xp):
            from cupy.cuda import curand  # type: ignore
            if self._rs is None:
                with xp.cuda.Device(self.index):
                    self._rs = xp.random.RandomState(self._curand_seed(),
                                                     method=curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
            curand.setGeneratorOffset(self._rs._generator, start)
            return self._rs, "cupy"
        return np.random.Generator(np.random.Philox(key=self._seed, counter=start)), "numpy"

    def _put(self, xp, a):
        with xp.cuda.Device(self.index):
            return xp.asarray(a)

    def random(self, shape, dtype):
        """Uniform [0, 1) of float ``dtype`` on the device."""
        xp = backend.module_for(self.device)
        shape = tuple(int(s) for s in shape)
        n = int(np.prod(shape, dtype=np.int64))
        dt = np.dtype(dtype)
        draw_dt = dt if dt in (np.float32, np.float64) else np.dtype(np.float32)
        src, kind = self._source(xp, n * (2 if draw_dt == np.float64 else 1))
        if kind == "cupy":
            with xp.cuda.Device(self.index):
                return src.random_sample(shape, dtype=draw_dt).astype(dt, copy=False)
        return self._put(xp, src.random(shape, dtype=draw_dt).astype(dt, copy=False))

    def standard_normal(self, shape, dtype):
        xp = backend.module_for(self.device)
        shape = tuple(int(s) for s in shape)
        n = int(np.prod(shape, dtype=np.int64))
        dt = np.dtype(dtype)
        draw_dt = dt if dt in (np.float32, np.float64) else np.dtype(np.float32)
        src, kind = self._source(xp, (n + 1) * (2 if draw_dt == np.float64 else 1))
        if kind == "cupy":
            with xp.cuda.Device(self.index):
                return src.standard_normal(shape, dtype=draw_dt).astype(dt, copy=False)
        return self._put(xp, src.standard_normal(shape, dtype=draw_dt).astype(dt, copy=False))

    def normal(self, mean, std, shape, dtype):
        out = self.standard_normal(shape, dtype)
        out *= std
        out += mean
        return out

    def integers(self, low, high, shape, dtype):
        xp = backend.module_for(self.device)
        shape = tuple(int(s) for s in shape)
        n = int(np.prod(shape, dtype=np.int64))
        src, kind = self._source(xp, 2 * n)
        if kind == "cupy":
            with xp.cuda.Device(self.index):
                return src.randint(low, high, size=shape, dtype=np.int64).astype(dtype, copy=False)
        return self._put(xp, src.integers(low, high, size=shape).astype(dtype, copy=False))

    def permutation(self, n, dtype):
        keys = self.random((int(n),), np.float64)
        xp = backend.array_module(keys)
        return xp.argsort(keys).astype(dtype, copy=False)


_generators = {}

# On the strict stand-in (deepgrad.testing) "cuda" draws come from the CPU generator and are moved,
# so that the stand-in grid can compare random ops value for value across devices; tests of the
# device generators themselves set this to draw from them there too.
STAND_IN_DRAWS_ON_DEVICE = [False]


def draws_on_device() -> bool:
    """Whether "cuda" tensors draw from the GPU generators (always on the real CuPy)."""
    return backend.is_real_cupy(backend._cupy) or STAND_IN_DRAWS_ON_DEVICE[0]


def generator(index=None) -> CudaGenerator:
    """The default generator of GPU ``index`` (the current device when None), made on first use."""
    if index is None:
        index = int(backend._cupy.cuda.runtime.getDevice()) if backend.cuda_available() else 0
    g = _generators.get(index)
    if g is None:
        g = _generators[index] = CudaGenerator(index)
        if _pending_seed:
            g.manual_seed(_pending_seed[0])
    return g


_pending_seed = []    # the last deepgrad.manual_seed, applied to generators made later


def seed_all(seed):
    """``deepgrad.manual_seed(seed)`` seeds every GPU's generator too, as torch.manual_seed does."""
    _pending_seed[:] = [int(seed)]
    for g in _generators.values():
        g.manual_seed(seed)


def for_device(dev):
    """The generator that draws for ``dev`` (a deepgrad device of type 'cuda')."""
    return generator(backend.device(dev).index or 0)
