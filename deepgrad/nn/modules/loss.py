"""``torch.nn.modules.loss`` (``_Loss``/``_WeightedLoss`` are the real base classes)."""
from ..loss import *  # noqa: F401,F403
from ..loss import __all__, _Loss, _WeightedLoss  # noqa: F401
