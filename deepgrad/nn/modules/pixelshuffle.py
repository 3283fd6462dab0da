"""``torch.nn.modules.pixelshuffle``."""
from ..pooling import PixelShuffle, PixelUnshuffle  # noqa: F401

__all__ = ["PixelShuffle", "PixelUnshuffle"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
