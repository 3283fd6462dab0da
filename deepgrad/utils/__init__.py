"""``deepgrad.utils``: PyTorch's ``torch.utils`` names.

``deepgrad.utils.data`` *is* :mod:`deepgrad.data` (one module under both names, as
``torch.utils.data`` is one module); ``checkpoint`` (activation checkpointing) and ``hessian``
(Hessian spectra from Hessian-vector products) are imported on first use; ``summary`` is
torchinfo's model table. ``tensorboard`` (SummaryWriter) is imported on first use as well.
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
    if name in ("checkpoint", "hessian", "tensorboard", "graphviz"):
        return _importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'deepgrad.utils' has no attribute {name!r}")

from ._summary import summary, ModelStatistics  # noqa: E402,F401  (like torchinfo.summary)
