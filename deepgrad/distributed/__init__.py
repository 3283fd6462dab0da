"""``deepgrad.distributed``: PyTorch's ``torch.distributed`` queries for a single process.

deepgrad has no communication backend yet (multi-process training over MPI is later work), so
``is_available()`` is False and no process group can be created: ``init_process_group`` raises
NotImplementedError, and everything that needs the default group (``get_rank``,
``get_world_size``, ``barrier``, the collectives) raises the ValueError PyTorch raises before
``init_process_group``. Programs that guard with ``is_available()``/``is_initialized()`` run
single-process unchanged.
"""
from __future__ import annotations

import os
from enum import Enum

_NO_GROUP = "Default process group has not been initialized, please make sure to call init_process_group."


class ReduceOp(Enum):
    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7
    PREMUL_SUM = 8


class Backend(str):
    GLOO = "gloo"
    NCCL = "nccl"
    MPI = "mpi"
    UNDEFINED = "undefined"


def is_available() -> bool:
    return False


def is_initialized() -> bool:
    return False


def is_mpi_available() -> bool:
    return False


def is_nccl_available() -> bool:
    return False


def is_gloo_available() -> bool:
    return False


def is_torchelastic_launched() -> bool:
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    raise NotImplementedError("deepgrad.distributed.init_process_group (torch.distributed.init_process_group): "
                              "deepgrad has no multi-process backend yet (MPI support is planned); train in one "
                              "process, or use DataParallel, which runs the module on the one device")


def _need_group(*args, **kwargs):
    raise ValueError(_NO_GROUP)


def get_rank(group=None) -> int:
    raise ValueError(_NO_GROUP)


def get_world_size(group=None) -> int:
    raise ValueError(_NO_GROUP)


def get_backend(group=None):
    raise ValueError(_NO_GROUP)


def destroy_process_group(group=None):
    raise AssertionError("Process group cannot be None")


barrier = all_reduce = all_gather = all_gather_object = broadcast = broadcast_object_list = reduce = \
    scatter = gather = reduce_scatter = all_to_all = send = recv = new_group = monitored_barrier = _need_group
