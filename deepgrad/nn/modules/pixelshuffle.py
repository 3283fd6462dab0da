"""``torch.nn.modules.pixelshuffle``."""
from ..pooling import PixelShuffle, PixelUnshuffle  # noqa: F401

__all__ = ["PixelShuffle", "PixelUnshuffle"]
