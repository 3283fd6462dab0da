"""tests/gpu: deepgrad on CuPy against PyTorch on CUDA, on a machine with an NVIDIA GPU.

Collected only where CuPy sees a GPU and PyTorch has CUDA; everywhere else (CI, the 2-core
development machine) the directory is skipped cleanly at collection. ``DEEPGRAD_GPU_DRY=1`` runs
the same tests without a GPU: deepgrad's "cuda" device is the strict CuPy stand-in with the fused
kernel paths forced on, and PyTorch runs on its CPU. That dry run checks the test code itself
(and deepgrad's device paths) before the GPU time is spent; it proves nothing about the GPU.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import DRY, real_gpu  # noqa: E402

if not DRY and not real_gpu():
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True, scope="session")
def _gpu_session():
    if DRY:
        from deepgrad.ops import _cuda_kernels as _ck
        from deepgrad.testing import strict_cuda
        from deepgrad.cuda import _rng
        with strict_cuda():
            _ck.FORCE[0] = True
            _rng.STAND_IN_DRAWS_ON_DEVICE[0] = True
            try:
                yield
            finally:
                _ck.FORCE[0] = False
                _rng.STAND_IN_DRAWS_ON_DEVICE[0] = False
        return
    import torch
    # PyTorch's defaults use TF32 in cuDNN convolutions; deepgrad's CuPy GEMMs are plain float32,
    # so the comparison within 1e-4 is made with TF32 off on both sides.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
