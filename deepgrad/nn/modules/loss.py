"""``torch.nn.modules.loss`` (``_Loss``/``_WeightedLoss`` are the real base classes)."""
from ..loss import *  # noqa: F401,F403
from ..loss import __all__, _Loss, _WeightedLoss  # noqa: F401

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
