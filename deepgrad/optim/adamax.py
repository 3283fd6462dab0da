"""Adamax: Adam with the infinity norm (PyTorch's rule)."""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, _check_common, _scalar, _zeros_like

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """``m <- lerp(m, g, 1-b1)``, ``u <- max(b2 u, |g| + eps)``, ``p <- p - lr/(1-b1^t) m/u``."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check_common(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _init_state(self, param, state, group):
        state["step"] = 0.0
        state["exp_avg"] = _zeros_like(param)
        state["exp_inf"] = _zeros_like(param)

    def _update(self, p, g, state, group):
        xp = backend.array_module(p)
        state["step"] = step = state["step"] + 1
        beta1, beta2 = group["betas"]
        m = state["exp_avg"].array
        u = state["exp_inf"].array
        t = self._buf(g, 1)
        m += xp.subtract(g, m, out=t).__imul__(1 - beta1)
        u *= beta2
        xp.maximum(u, xp.abs(g, out=t).__iadd__(group["eps"]), out=u)
        clr = _scalar(group["lr"]) / (1 - beta1 ** step)
        p -= xp.divide(m, u, out=t).__imul__(clr)
