"""``torch.nn.modules.container``."""
from ..containers import *  # noqa: F401,F403
from ..containers import __all__  # noqa: F401

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
