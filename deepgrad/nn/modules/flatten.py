"""``torch.nn.modules.flatten``."""
from ..linear import Flatten, Unflatten  # noqa: F401

__all__ = ["Flatten", "Unflatten"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
