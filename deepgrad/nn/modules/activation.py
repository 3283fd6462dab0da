"""``torch.nn.modules.activation`` (PyTorch keeps ``MultiheadAttention`` here too)."""
from ..activation import *  # noqa: F401,F403
from ..activation import __all__ as _act_all
from ..attention import MultiheadAttention  # noqa: F401

__all__ = list(_act_all) + ["MultiheadAttention"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
