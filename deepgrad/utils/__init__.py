"""``deepgrad.utils``: PyTorch's ``torch.utils`` names.

``deepgrad.utils.data`` *is* :mod:`deepgrad.data` (one module under both names, as
``torch.utils.data`` is one module), and ``deepgrad.utils.checkpoint`` is imported on first use.
"""
import importlib as _importlib
import sys as _sys

from .. import data  # noqa: F401  (deepgrad.utils.data is deepgrad.data)

_sys.modules[__name__ + ".data"] = data
for _name, _mod in list(_sys.modules.items()):      # deepgrad.utils.data.dataloader is deepgrad.data.dataloader
    if _name.startswith("deepgrad.data."):
        _sys.modules.setdefault(__name__ + _name[len("deepgrad"):], _mod)
del _name, _mod


def __getattr__(name):
    if name == "checkpoint":
        return _importlib.import_module(".checkpoint", __name__)
    raise AttributeError(f"module 'deepgrad.utils' has no attribute {name!r}")

from ._summary import summary, ModelStatistics  # noqa: E402,F401  (like torchinfo.summary)
