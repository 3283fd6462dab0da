"""Adadelta (PyTorch's rule)."""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, _check, _check_common, _scalar, _zeros_like

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """``v <- r v + (1-r) g^2``; ``d = sqrt(u + eps)/sqrt(v + eps) * g``;
    ``u <- r u + (1-r) d^2``; ``p <- p - lr d``."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        _check_common(lr=lr)
        _check(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        _check_common(eps=eps, weight_decay=weight_decay)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, param, state, group):
        state["step"] = 0.0
        state["square_avg"] = _zeros_like(param)
        state["acc_delta"] = _zeros_like(param)

    def _update(self, p, g, state, group):
        xp = backend.array_module(p)
        state["step"] += 1
        rho, eps = group["rho"], group["eps"]
        v = state["square_avg"].array
        u = state["acc_delta"].array
        t1, t2 = self._buf(g, 1), self._buf(g, 2)
        v *= rho
        v += xp.multiply(g, g, out=t1).__imul__(1 - rho)
        std = xp.sqrt(xp.add(v, eps, out=t2), out=t2)
        delta = xp.sqrt(xp.add(u, eps, out=t1), out=t1)
        delta /= std
        delta *= g
        u *= rho
        u += xp.multiply(delta, delta, out=t2).__imul__(1 - rho)
        p -= delta.__imul__(_scalar(group["lr"]))
