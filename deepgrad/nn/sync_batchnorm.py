"""``SyncBatchNorm``: batch norm whose statistics cover the global batch of all ranks.

In training with a process group of more than one rank, the per-channel mean and variance are
all-reduced (sums and counts; the variance in a second pass around the global mean, as the
one-process batch norm computes it), and so are the two per-channel sums of its backward, so a
model under ``DistributedDataParallel`` computes what one process computes on the whole batch.
The weight and bias gradients stay local: DDP averages them with the others. Running statistics
use the global count, so every rank's buffers stay equal. Outside training, or in a one-process
world, it is ``BatchNorm``.
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..ops.normalization import _affine, _affine_grads
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


def _allreduce(comm, a):
    from mpi4py import MPI
    a = np.ascontiguousarray(a)
    comm.Allreduce(MPI.IN_PLACE, a, MPI.SUM)
    return a


class SyncBatchNormFn(Function):
    array_backward = True
    first_order_only = ("SyncBatchNorm's statistics are all-reduced across processes outside the graph; use "
                        "BatchNorm (per process) where second derivatives are needed")

    def forward(self, x, *params, comm=None, has_weight=True, has_bias=True, running_mean=None,
                running_var=None, momentum=0.1, eps=1e-5):
        dt = x.dtype
        C = x.shape[1]
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, C) + (1,) * (x.ndim - 2)
        n_local = x.size // C
        s = np.empty(C + 1, dtype=np.float64 if dt == np.float64 else np.float32)
        s[:C] = x.sum(axis=axes, dtype=dt)
        s[C] = n_local
        s = _allreduce(comm, s)
        n = int(round(float(s[C])))
        if n <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel when training, got "
                             f"{n} over all ranks")
        mean = (s[:C] / n).astype(dt).reshape(bshape)
        xc = x - mean
        var = _allreduce(comm, (xc * xc).sum(axis=axes, dtype=dt)).astype(dt) / n
        rstd = (1.0 / np.sqrt(var + eps)).astype(dt).reshape(bshape)
        xhat = xc * rstd
        if running_mean is not None:
            running_mean *= (1.0 - momentum)
            running_mean += (momentum * mean.reshape(C)).astype(running_mean.dtype, copy=False)
        if running_var is not None:
            running_var *= (1.0 - momentum)
            running_var += (momentum * var * (n / (n - 1))).astype(running_var.dtype, copy=False)
        w = params[0] if has_weight else None
        b = params[-1] if has_bias else None
        self.has_weight, self.has_bias = has_weight, has_bias
        if self._record:
            self.xhat, self.rstd, self.w, self.n, self.comm = xhat, rstd, w, n, comm
            self.axes, self.bshape = axes, bshape
        return _affine(xhat, w, b, bshape)

    def backward(self, g):
        axes, xhat = self.axes, self.xhat
        C = xhat.shape[1]
        grads = []
        if self.needs_input_grad[0]:
            gh = g * self.w.reshape(self.bshape) if self.w is not None else g
            sums = np.concatenate([gh.sum(axis=axes), (gh * xhat).sum(axis=axes)])
            sums = _allreduce(self.comm, sums) / self.n
            m1, m2 = sums[:C].reshape(self.bshape), sums[C:].reshape(self.bshape)
            grads.append((self.rstd * (gh - m1 - xhat * m2)).astype(g.dtype, copy=False))
        else:
            grads.append(None)
        return tuple(grads + _affine_grads(self, g, xhat, axes))


class SyncBatchNorm(_BatchNorm):
    """``torch.nn.SyncBatchNorm``: batch norm over (N, C, *) input with statistics of all ranks."""
    _expected = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.ndim < 2:
            raise ValueError(f"{self!r}: expected at least 2D input (got {input.ndim}D input)")
        super()._check_input_dim(input)

    def _group(self):
        from .. import distributed as dist
        if not dist.is_initialized():
            return None
        pg = dist._pg(self.process_group, "SyncBatchNorm")
        return pg if pg.size() > 1 else None

    def forward(self, input):
        pg = self._group() if self.training else None
        if pg is None:
            return super().forward(input)
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            nbt = self.num_batches_tracked
            nbt.array[...] += 1
            nbt._version[0] += 1
            if self.momentum is None:
                factor = 1.0 / float(nbt.array)
        rm, rv = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        params = [t for t in (self.weight, self.bias) if t is not None]
        out = SyncBatchNormFn.apply(input, *params, comm=pg.comm, has_weight=self.weight is not None,
                                    has_bias=self.bias is not None,
                                    running_mean=None if rm is None else rm.array,
                                    running_var=None if rv is None else rv.array,
                                    momentum=float(factor), eps=float(self.eps))
        for t in (rm, rv):
            if t is not None:
                t._version[0] += 1
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every ``BatchNorm*d`` replaced by a ``SyncBatchNorm`` holding the same
        parameters and buffers (the module itself when it is one)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group)
            if module.affine:
                out._parameters["weight"] = module.weight
                out._parameters["bias"] = module.bias
            out._buffers["running_mean"] = module.running_mean
            out._buffers["running_var"] = module.running_var
            out._buffers["num_batches_tracked"] = module.num_batches_tracked
            out.training = module.training
        for name, child in list(module._modules.items()):
            if child is not None:
                out._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return out
