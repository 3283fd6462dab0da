"""``torch.nn.modules.linear``."""
from ..linear import Identity, Linear, Bilinear  # noqa: F401

__all__ = ["Identity", "Linear", "Bilinear"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
