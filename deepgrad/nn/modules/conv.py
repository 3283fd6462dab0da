"""``torch.nn.modules.conv`` (``_ConvNd`` is the real base class, as PyTorch code subclasses it)."""
from ..conv import *  # noqa: F401,F403
from ..conv import __all__, _ConvNd, _ConvTransposeNd  # noqa: F401

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
