"""Shared helpers of tests/gpu and benchmarks/gpu: where each framework runs and how results are
compared. ``DRY`` (``DEEPGRAD_GPU_DRY=1``): deepgrad on the strict stand-in, PyTorch on its CPU."""
from __future__ import annotations

import os

import numpy as np

DRY = os.environ.get("DEEPGRAD_GPU_DRY") == "1"
TDEV = "cpu" if DRY else "cuda"        # PyTorch's device
DDEV = "cuda"                          # deepgrad's device (the stand-in in a dry run)


def real_gpu() -> bool:
    try:
        import cupy
        import torch
        return cupy.cuda.runtime.getDeviceCount() > 0 and torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no CUDA PyTorch
        return False


def to_np(t):
    """A host NumPy copy of a deepgrad or torch tensor (or None)."""
    if t is None:
        return None
    if hasattr(t, "detach") and "torch" in type(t).__module__:
        return t.detach().cpu().numpy()
    return np.asarray(t.detach().cpu().numpy())


def assert_close(got, want, tol=1e-4, what=""):
    """Relative ``tol`` with an absolute floor of ``tol`` times the largest magnitude."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def flatten(out):
    """Nested tuples/lists of tensors -> a flat list."""
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in flatten(o)]
    return [out]


def sync():
    if not DRY:
        import deepgrad as dg
        import torch
        dg.cuda.synchronize()
        torch.cuda.synchronize()
