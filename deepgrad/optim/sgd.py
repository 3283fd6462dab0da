"""SGD with optional (Nesterov) momentum, dampening, weight decay and maximize (PyTorch's rule)."""
from __future__ import annotations

from .. import backend
from ..ops import _cuda_kernels as _ck
from ..tensor import Tensor
from .optimizer import Optimizer, _check, _check_common, _scalar

__all__ = ["SGD"]


class SGD(Optimizer):
    """``b <- momentum * b + (1 - dampening) * g`` (``b = g`` on the first step);
    ``d = g + momentum * b`` (Nesterov) or ``b``; ``p <- p - lr * d``."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        _check_common(lr=lr)
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _init_state(self, param, state, group):
        if group["momentum"] != 0:
            state["momentum_buffer"] = None      # becomes a copy of the first gradient

    def _update(self, p, g, state, group):
        xp = backend.array_module(p)
        if _ck.enabled(xp):                         # GPU: one fused kernel per parameter
            return self._update_fused(p, g, state, group)
        momentum = group["momentum"]
        d = g
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                state["momentum_buffer"] = buf = Tensor._make(g.copy())
                b = buf.array
            else:
                b = buf.array
                b *= momentum
                damp = 1 - group["dampening"]
                if damp == 1:
                    b += g
                else:
                    b += xp.multiply(g, damp, out=self._buf(g, 1))
            if group["nesterov"]:
                d = xp.multiply(b, momentum, out=self._buf(g, 1))
                d += g
            else:
                d = b
        p -= xp.multiply(d, _scalar(group["lr"]), out=self._buf(g, 2))

    def _effective_grad(self, param, grad, group):
        if _ck.enabled(backend.array_module(param)):   # the fused kernel applies decay and sign
            return grad
        return super()._effective_grad(param, grad, group)

    def _update_fused(self, p, g, state, group):
        xp = backend.array_module(p)
        lr = _scalar(group["lr"])
        decay = _ck.decay_terms(group)
        momentum = group["momentum"]
        if momentum == 0:
            _ck.sgd(xp, p, g, lr, *decay)
            return
        buf = state.get("momentum_buffer")
        if buf is None:                 # first step: b = ge (zeros * 0 + ge * 1, exactly)
            state["momentum_buffer"] = buf = Tensor._make(xp.zeros_like(g))
            mb, damp = 0.0, 1.0
        else:
            mb, damp = float(momentum), float(1 - group["dampening"])
        if group["nesterov"]:
            _ck.sgd_nesterov(xp, p, g, buf.array, lr, mb, damp, float(momentum), *decay)
        else:
            _ck.sgd_momentum(xp, p, g, buf.array, lr, mb, damp, *decay)
