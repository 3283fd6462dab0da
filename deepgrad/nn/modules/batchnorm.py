"""``torch.nn.modules.batchnorm``. deepgrad has one base, ``_BatchNorm``; ``_NormBase`` names it too."""
from ..normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm  # noqa: F401

_NormBase = _BatchNorm

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
