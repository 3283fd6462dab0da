"""Testing helpers: ``strict_cuda()`` runs deepgrad's "cuda" device on a strict CuPy stand-in.

    with deepgrad.testing.strict_cuda():
        x = deepgrad.randn(3, device="cuda")   # a stand-in device array behind the tensor

Inside the block ``cuda_available()`` is True and every "cuda" array is a
:class:`strict_xp.ndarray`, which refuses NumPy as CuPy does (and NumPy functions, more strictly),
so any ``numpy`` call on a device array in deepgrad raises a TypeError naming the function.
"""
from __future__ import annotations

import contextlib

from .. import backend
from . import strict_xp

__all__ = ["strict_cuda", "strict_xp"]


@contextlib.contextmanager
def strict_cuda(device_count: int = 1):
    """Install the strict stand-in as deepgrad's CUDA module (``device_count`` devices) for the
    block; the previous module (CuPy or None) is restored afterwards."""
    prev = backend.set_cuda_module(strict_xp)
    prev_count = strict_xp.set_device_count(device_count)
    try:
        yield strict_xp
    finally:
        strict_xp.set_device_count(prev_count)
        backend.set_cuda_module(prev)
