"""``torch.nn.modules.transformer``."""
from ..transformer import *  # noqa: F401,F403
from ..transformer import __all__  # noqa: F401

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
