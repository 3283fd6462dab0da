"""``deepgrad.accelerator``: PyTorch's device-agnostic queries (``torch.accelerator``)."""
from __future__ import annotations

from . import backend


def is_available() -> bool:
    return backend.cuda_available()


def current_accelerator(check_available: bool = False):
    """``device('cuda')`` when a GPU is usable, else None (PyTorch's CPU build returns None)."""
    return backend.device("cuda") if backend.cuda_available() else None


def device_count() -> int:
    from . import cuda
    return cuda.device_count()


def _need():
    if not backend.cuda_available():
        raise RuntimeError("Cannot access accelerator device when none is available.")


def current_device_index() -> int:
    _need()
    from . import cuda
    return cuda.current_device()


current_device_idx = current_device_index


def set_device_index(device) -> None:
    _need()
    from . import cuda
    cuda.set_device(device)


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    _need()
    from . import cuda
    cuda.synchronize(device)
