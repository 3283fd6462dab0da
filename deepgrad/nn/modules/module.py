"""``torch.nn.modules.module``: deepgrad's ``Module`` under PyTorch's import path."""
from ..module import Module, RemovableHandle, _addindent, _IncompatibleKeys  # noqa: F401

__all__ = ["Module"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
