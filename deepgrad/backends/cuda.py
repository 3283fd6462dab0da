"""``deepgrad.backends.cuda``: ``matmul.allow_tf32`` and friends as settable attributes."""
from .. import backend as _backend


class _MatmulFlags:
    """``backends.cuda.matmul``: the flags PyTorch exposes for CUDA matrix products."""

    def __init__(self):
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True
        self.fp32_precision = "none"

    def __repr__(self):
        return f"_MatmulFlags(allow_tf32={self.allow_tf32})"


matmul = _MatmulFlags()


def is_built() -> bool:
    """Whether this deepgrad can run on CUDA at all (CuPy importable)."""
    return _backend._cupy is not None


def flash_sdp_enabled() -> bool:
    return False


def mem_efficient_sdp_enabled() -> bool:
    return False


def math_sdp_enabled() -> bool:
    return True


def enable_flash_sdp(enabled: bool) -> None:
    return None


def enable_mem_efficient_sdp(enabled: bool) -> None:
    return None


def enable_math_sdp(enabled: bool) -> None:
    return None
