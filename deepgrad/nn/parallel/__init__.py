"""``deepgrad.nn.parallel``: ``DataParallel`` (runs the module on the one device) and
``DistributedDataParallel`` (needs a process group, which deepgrad cannot create yet)."""
from .data_parallel import DataParallel  # noqa: F401
from .distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DataParallel", "DistributedDataParallel"]
