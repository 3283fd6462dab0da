"""``deepgrad.utils``: PyTorch's ``torch.utils`` names (``checkpoint``, ``data``), imported on first use."""
import importlib as _importlib

_SUBMODULES = {"checkpoint": ".checkpoint", "data": ".data", "hessian": ".hessian"}


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(_SUBMODULES[name], __name__)
    raise AttributeError(f"module 'deepgrad.utils' has no attribute {name!r}")
