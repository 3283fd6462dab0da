"""``deepgrad.nn.parallel``: ``DataParallel`` (runs the module on the one device) and
``DistributedDataParallel`` (one replica per MPI rank, gradients averaged; see distributed.py)."""
from .data_parallel import DataParallel  # noqa: F401
from .distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DataParallel", "DistributedDataParallel"]
