"""``torch.nn.modules.normalization``."""
from ..normalization import LayerNorm, GroupNorm  # noqa: F401
from ..pooling import LocalResponseNorm  # noqa: F401

__all__ = ["LayerNorm", "GroupNorm", "LocalResponseNorm"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
