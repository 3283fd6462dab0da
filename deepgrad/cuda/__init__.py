"""``deepgrad.cuda``: PyTorch's ``torch.cuda`` queries, answered honestly.

A CUDA device exists for deepgrad only when CuPy is installed and sees a GPU (``backend.py``'s
seam); then these functions ask CuPy. Without one they behave as PyTorch's CPU build does:
``is_available()`` is False, ``device_count()`` is 0, seeding is silently ignored, and anything
that needs a device (``synchronize``, ``current_device``, ``get_device_name`` ...) raises the
AssertionError PyTorch raises (a :class:`~deepgrad.backend.CudaUnavailableError`, which is also
a RuntimeError).
"""
from __future__ import annotations

from .. import backend
from .._legacy import CUDA_LEGACY_TYPES
from . import amp

globals().update(CUDA_LEGACY_TYPES)   # deepgrad.cuda.FloatTensor ...: raise TypeError when called


def is_available() -> bool:
    return backend.cuda_available()


def is_initialized() -> bool:
    return backend.cuda_available()


def _cupy():
    if not backend.cuda_available():
        raise backend.CudaUnavailableError(
            "Torch not compiled with CUDA enabled: deepgrad found no CUDA device (it needs CuPy and an "
            "NVIDIA GPU); use the 'cpu' device")
    return backend._cupy


def device_count() -> int:
    if not backend.cuda_available():
        return 0
    return int(backend._cupy.cuda.runtime.getDeviceCount())


def current_device() -> int:
    return int(_cupy().cuda.runtime.getDevice())


def set_device(device) -> None:
    idx = backend.device(device).index if isinstance(device, (str, backend.device)) else device
    if idx is None or idx < 0:   # PyTorch ignores a negative index
        return
    _cupy().cuda.runtime.setDevice(int(idx))


def get_device_name(device=None) -> str:
    props = get_device_properties(device)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def get_device_properties(device=None) -> dict:
    cp = _cupy()
    idx = _index(device, cp)
    return cp.cuda.runtime.getDeviceProperties(idx)


def get_device_capability(device=None) -> tuple:
    props = get_device_properties(device)
    return int(props["major"]), int(props["minor"])


def is_bf16_supported(including_emulation: bool = True) -> bool:
    if not backend.cuda_available():
        return False
    return get_device_capability()[0] >= 8


def _index(device, cp):
    if device is None:
        return int(cp.cuda.runtime.getDevice())
    if isinstance(device, (str, backend.device)):
        return backend.device(device).index or 0
    return int(device)


def synchronize(device=None) -> None:
    cp = _cupy()
    with cp.cuda.Device(_index(device, cp)):
        cp.cuda.runtime.deviceSynchronize()


def empty_cache() -> None:
    # PyTorch's CPU build returns quietly; with CuPy, free its memory pool's unused blocks.
    if backend.cuda_available():
        backend._cupy.get_default_memory_pool().free_all_blocks()


def memory_allocated(device=None) -> int:
    if not backend.cuda_available():
        return 0
    return int(backend._cupy.get_default_memory_pool().used_bytes())


def max_memory_allocated(device=None) -> int:
    return memory_allocated(device)


def memory_reserved(device=None) -> int:
    if not backend.cuda_available():
        return 0
    return int(backend._cupy.get_default_memory_pool().total_bytes())


def reset_peak_memory_stats(device=None) -> None:
    _cupy()


# ---- seeding: deepgrad's GPU tensors draw from the CPU generator, so there is nothing to seed here;
# PyTorch without a GPU likewise ignores these calls.
def manual_seed(seed) -> None:
    int(seed)


def manual_seed_all(seed) -> None:
    int(seed)


def seed() -> None:
    return None


def seed_all() -> None:
    return None


def initial_seed() -> int:
    _cupy()
    from ..random import initial_seed as _initial
    return _initial()


class device:
    """``with deepgrad.cuda.device(i):`` selects a GPU; a no-op index holder without one."""

    def __init__(self, device):
        self.idx = backend.device(device).index if isinstance(device, (str, backend.device)) else device
        self._prev = None

    def __enter__(self):
        if self.idx is not None and self.idx >= 0 and backend.cuda_available():
            self._prev = current_device()
            set_device(self.idx)
        return self

    def __exit__(self, *exc):
        if self._prev is not None:
            set_device(self._prev)
        return False


# ---- generator state: with a GPU, deepgrad's GPU tensors draw from the CPU generator (see above)
def get_rng_state(device="cuda"):
    _cupy()
    from ..random import get_rng_state as _get
    return _get()


def set_rng_state(new_state, device="cuda") -> None:
    if not backend.cuda_available():   # PyTorch queues the call for a CUDA that never comes
        return
    from ..random import set_rng_state as _set
    _set(new_state)


def get_rng_state_all() -> list:
    return [get_rng_state(i) for i in range(device_count())]


def set_rng_state_all(new_states) -> None:
    for state in new_states:
        set_rng_state(state)
