"""``torch.nn.modules.adaptive``: what deepgrad has of it is looked up in ``deepgrad.nn`` on access."""
from ._fallback import fallback as _fallback

__all__ = []
__getattr__ = _fallback(__name__)
