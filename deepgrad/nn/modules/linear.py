"""``torch.nn.modules.linear``."""
from ..linear import Identity, Linear, Bilinear  # noqa: F401

__all__ = ["Identity", "Linear", "Bilinear"]
