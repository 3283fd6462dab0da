"""``torch.nn.modules.dropout``."""
from ..dropout import *  # noqa: F401,F403
from ..dropout import __all__, _DropoutNd  # noqa: F401

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
