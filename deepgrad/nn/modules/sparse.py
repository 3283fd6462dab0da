"""``torch.nn.modules.sparse``."""
from ..sparse import *  # noqa: F401,F403
from ..sparse import __all__  # noqa: F401

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
