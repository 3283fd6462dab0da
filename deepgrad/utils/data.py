"""PyTorch's ``torch.utils.data`` import path for :mod:`deepgrad.data`.

``from deepgrad.utils.data import DataLoader, Dataset, TensorDataset, random_split, ...`` gives the
very objects of ``deepgrad.data``; ``deepgrad.utils.data.dataloader`` / ``.dataset`` /
``.sampler`` are its modules of the same names (``from deepgrad.utils.data.dataloader import
default_collate`` works as in PyTorch).
"""
import sys as _sys

from ..data import *  # noqa: F401,F403
from ..data import __all__ as _data_all
from ..data import dataloader, dataset, sampler  # noqa: F401

__all__ = list(_data_all)

for _name in ("dataloader", "dataset", "sampler"):
    _sys.modules.setdefault(f"{__name__}.{_name}", globals()[_name])
del _name
