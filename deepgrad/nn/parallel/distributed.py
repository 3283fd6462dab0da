"""``DistributedDataParallel``: one replica of the model per process, gradients averaged over MPI.

At construction the replicas are compared (parameter names, shapes and dtypes gathered from every
rank; a mismatch names the parameter and the ranks) and rank 0's parameters and buffers are
broadcast to all. Gradients are averaged in buckets of about ``bucket_cap_mb`` while backward
still runs:

* In a synchronising forward each parameter reaches the wrapped module through a ``_GradReady``
  node (an identity), swapped into the module's ``_parameters`` for the duration of the call.
  The engine sums every use of the parameter into that node's output gradient before running it,
  so its backward sees the parameter's complete gradient for this step.
* It writes ``p.grad + g`` (``p.grad`` holding what ``no_sync`` steps accumulated) into the
  parameter's slice of its bucket's flat buffer. When every parameter of a bucket is in, the
  bucket is handed to a non-blocking ``MPI_Iallreduce``; buckets are launched in a fixed order
  (the reverse of ``parameters()``, roughly the order backward produces them), as MPI requires
  every rank to start its collectives in the same order.
* At the end of backward (``autograd.function.queue_callback``) the requests are waited on and
  each ``p.grad`` becomes its slice divided by the world size.

``no_sync()`` skips all of that (gradients accumulate locally); ``broadcast_buffers=True`` sends
rank 0's buffers to every rank before each forward, as PyTorch does; ``module`` holds the wrapped
model, so ``state_dict`` keys carry the ``module.`` prefix.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ...autograd.function import Function, queue_callback
from ...autograd.grad_mode import _enabled
from ..module import Module


class _GradReady(Function):
    """Identity on a parameter whose backward reports the complete gradient to the reducer."""
    array_backward = True
    first_order_only = ("DistributedDataParallel averages gradients with MPI all-reduces outside the graph; for "
                        "gradients of gradients differentiate the wrapped module (ddp.module) and all-reduce yourself")
    is_view = True

    def forward(self, a, reducer=None, index=0):
        self.reducer, self.index = reducer, index
        return a

    def backward(self, g):
        self.reducer.mark_ready(self.index, g)
        return (g,)


class _Bucket:
    __slots__ = ("indices", "offsets", "buf", "pending", "request")

    def __init__(self, indices, offsets, numel, dtype):
        self.indices, self.offsets = indices, offsets
        self.buf = np.zeros(numel, dtype=dtype)
        self.pending = 0
        self.request = None


class _Reducer:
    def __init__(self, ddp, params, names, bucket_bytes, comm, size):
        self.ddp, self.params, self.names, self.comm, self.size = ddp, params, names, comm, size
        self.buckets, self.where = [], [None] * len(params)
        by_dtype = {}
        for i in reversed(range(len(params))):       # backward produces the last layers first
            by_dtype.setdefault(np.dtype(params[i].array.dtype), []).append(i)
        for dtype, idx in by_dtype.items():
            cur, offs, n = [], [], 0
            for i in idx:
                k = params[i].array.size
                if cur and (n + k) * dtype.itemsize > bucket_bytes:
                    self._add(cur, offs, n, dtype)
                    cur, offs, n = [], [], 0
                cur.append(i)
                offs.append(n)
                n += k
            if cur:
                self._add(cur, offs, n, dtype)
        self.ready = [False] * len(params)
        self.active = False

    def _add(self, indices, offsets, numel, dtype):
        b = _Bucket(indices, offsets, numel, dtype)
        for j, (i, o) in enumerate(zip(indices, offsets)):
            self.where[i] = (len(self.buckets), o)
        self.buckets.append(b)

    def prepare(self):
        for b in self.buckets:
            if b.request is not None:     # a backward that never finished: drain it
                b.request.Wait()
            b.pending, b.request = len(b.indices), None
        self.ready = [False] * len(self.params)
        self.next_launch = 0
        self.active = True
        self.queued = False

    def mark_ready(self, i, g):
        if not self.active:
            raise RuntimeError("DistributedDataParallel: a gradient arrived outside a synchronising step "
                               "(was backward run twice on one forward's graph with retain_graph=True?)")
        if self.ready[i]:
            raise RuntimeError(f"DistributedDataParallel: parameter {self.names[i]!r} got its gradient twice in "
                               f"one backward; call the model once per backward (or use no_sync())")
        if not self.queued:
            queue_callback(self.finish)
            self.queued = True
        self.ready[i] = True
        bi, off = self.where[i]
        b = self.buckets[bi]
        p = self.params[i]
        view = b.buf[off:off + p.array.size]
        g = np.asarray(g).reshape(-1)
        if p.grad is not None:
            np.add(np.asarray(p.grad.array).reshape(-1), g, out=view)
        else:
            view[...] = g
        b.pending -= 1
        if b.pending == 0:
            self._launch_ready()

    def _launch_ready(self):
        from mpi4py import MPI
        while self.next_launch < len(self.buckets) and self.buckets[self.next_launch].pending == 0:
            b = self.buckets[self.next_launch]
            b.request = self.comm.Iallreduce(MPI.IN_PLACE, b.buf, MPI.SUM)
            self.next_launch += 1
        # Give MPI a chance to progress what is already in flight.
        for b in self.buckets[:self.next_launch]:
            if b.request is not None and b.request.Test():
                b.request = None

    def finish(self):
        """End of backward: launch what unused parameters held back, wait, write the grads."""
        self.active = False
        missing = [i for i, r in enumerate(self.ready) if not r]
        used = None
        if missing:
            if not self.ddp.find_unused_parameters:
                names = ", ".join(self.names[i] for i in missing[:8])
                raise RuntimeError(
                    f"DistributedDataParallel: parameters received no gradient in this backward: {names}"
                    f"{' ...' if len(missing) > 8 else ''}. Pass find_unused_parameters=True when a step "
                    f"does not use every parameter, or make sure the loss depends on all of them")
            for i in missing:
                bi, off = self.where[i]
                b, p = self.buckets[bi], self.params[i]
                view = b.buf[off:off + p.array.size]
                if p.grad is not None:
                    view[...] = np.asarray(p.grad.array).reshape(-1)
                else:
                    view[...] = 0
                b.pending -= 1
            self._launch_ready()
        if self.ddp.find_unused_parameters:      # which parameters were used on any rank
            from mpi4py import MPI
            used = np.array([r or self.params[i].grad is not None for i, r in enumerate(self.ready)], np.int32)
            self.comm.Allreduce(MPI.IN_PLACE, used, MPI.MAX)
        for b in self.buckets:
            if b.request is not None:
                b.request.Wait()
                b.request = None
            b.buf /= self.size
            for i, off in zip(b.indices, b.offsets):
                if used is not None and not used[i]:
                    continue
                p = self.params[i]
                avg = b.buf[off:off + p.array.size].reshape(p.array.shape)
                if p.grad is not None and p.grad.array.flags.writeable and p.grad.shape == p.shape:
                    p.grad.array[...] = avg
                    p.grad._version[0] += 1
                else:
                    from ...tensor import Tensor
                    p.grad = Tensor._make(avg.copy())


class DistributedDataParallel(Module):
    """Data parallelism over the processes of ``deepgrad.distributed`` (see the module docstring)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, **kwargs):
        from ... import distributed as dist
        if process_group is None and not dist.is_initialized():
            raise ValueError(dist._NO_GROUP)
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module to wrap, got {type(module).__name__}")
        super().__init__()
        pg = dist._pg(process_group, "DistributedDataParallel")
        self.module = module
        self.device_ids = device_ids
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.bucket_cap_mb = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        self.process_group = pg
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named and any(True for _ in module.parameters()):
            raise RuntimeError("DistributedDataParallel: the module has no parameter that requires a gradient")
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._verify_replicas(pg, module)
        self._sync_state(pg, initial=True)
        # Where each parameter sits in the module tree (a shared parameter may sit in several places).
        index = {id(p): i for i, p in enumerate(self._params)}
        self._slots = [(m, k, index[id(p)]) for m in module.modules() for k, p in m._parameters.items()
                       if p is not None and id(p) in index]
        self.reducer = None
        if pg.size() > 1 and self._params:
            self.reducer = _Reducer(self, self._params, self._names, self.bucket_cap_mb * 2 ** 20, pg.comm,
                                    pg.size())

    # ---- construction: replicas and initial state --------------------------------------------
    def _verify_replicas(self, pg, module):
        from ... import distributed as dist
        if pg.size() == 1:
            return
        mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters()]
        everyone = [None] * pg.size()
        dist.all_gather_object(everyone, mine, group=pg)
        ref = everyone[0]
        for r, theirs in enumerate(everyone[1:], start=1):
            if theirs == ref:
                continue
            for k in range(max(len(ref), len(theirs))):
                a = ref[k] if k < len(ref) else None
                b = theirs[k] if k < len(theirs) else None
                if a != b:
                    def say(x):
                        return "nothing" if x is None else f"{x[0]!r} of shape {x[1]} and dtype {x[2]}"
                    raise RuntimeError(
                        f"DistributedDataParallel: the model replicas differ: parameter {k} is {say(a)} on rank 0 "
                        f"but {say(b)} on rank {r}; every rank must build the same model")

    def _sync_state(self, pg, initial=False):
        """Rank 0's parameters (at construction) and buffers to every rank, one message per dtype."""
        if pg.size() == 1:
            return
        tensors = [b for b in self.module.buffers() if b is not None]
        if initial:
            tensors = [p for p in self.module.parameters()] + tensors
        _broadcast_coalesced(pg, tensors)

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        pg = self.process_group
        if self.broadcast_buffers and pg.size() > 1 and self.require_forward_param_sync:
            self._sync_state(pg)
        if self.reducer is None or not _enabled[0] or not self.require_backward_grad_sync:
            return self.module(*inputs, **kwargs)
        red = self.reducer
        red.prepare()
        stand_ins = [_GradReady.apply(p, reducer=red, index=i) if p.requires_grad else p
                     for i, p in enumerate(self._params)]
        for m, k, i in self._slots:
            m._parameters[k] = stand_ins[i]
        try:
            return self.module(*inputs, **kwargs)
        finally:
            for m, k, i in self._slots:
                m._parameters[k] = self._params[i]

    @contextmanager
    def no_sync(self):
        """Gradients accumulate locally inside; the next synchronising backward averages the sum."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def extra_repr(self):
        pg = self.process_group
        return f"world_size={pg.size()}, rank={pg.rank()}, bucket_cap_mb={self.bucket_cap_mb}"


def _broadcast_coalesced(pg, tensors, src=0):
    if pg.comm is None or not tensors:
        return
    groups = {}
    for t in tensors:
        groups.setdefault(np.dtype(t.array.dtype), []).append(t)
    for dtype, ts in groups.items():
        buf = np.concatenate([np.asarray(t.array).reshape(-1) for t in ts]) if ts else np.zeros(0, dtype)
        buf = np.ascontiguousarray(buf)
        if buf.dtype == np.float16 or buf.dtype.name == "bfloat16":
            wire = buf.astype(np.float32)
            pg.comm.Bcast(wire, root=src)
            buf = wire.astype(buf.dtype)
        else:
            pg.comm.Bcast(buf, root=src)
        if pg.rank() == src:
            continue
        o = 0
        for t in ts:
            n = t.array.size
            t.array[...] = buf[o:o + n].reshape(t.array.shape)
            t._version[0] += 1
            o += n
