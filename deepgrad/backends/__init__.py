"""``deepgrad.backends``: PyTorch's ``torch.backends`` flags as plain settable module attributes.

deepgrad computes with NumPy's BLAS on the CPU, so these flags change nothing today; they exist so
that programs can set and read them (``backends.cudnn.benchmark = True``) exactly as in PyTorch,
and their ``is_available()`` answers are honest (cuDNN only with CuPy on a GPU, no MPS).
"""
from . import cpu, cuda, cudnn, mkl, mkldnn, mps, openmp  # noqa: F401
