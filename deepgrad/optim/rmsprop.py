"""RMSprop, plain / centered / with momentum (PyTorch's rule)."""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, _check, _check_common, _scalar, _zeros_like

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """``v <- a v + (1-a) g^2``; ``d = sqrt(v - gbar^2) (centered) or sqrt(v), + eps``;
    ``b <- mu b + g/d; p <- p - lr b`` (momentum) or ``p <- p - lr g/d``."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        _check_common(lr=lr, eps=eps)
        _check(0.0 <= momentum, f"Invalid momentum value: {momentum}")
        _check_common(weight_decay=weight_decay)
        _check(0.0 <= alpha, f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, param, state, group):
        state["step"] = 0.0
        state["square_avg"] = _zeros_like(param)
        if group["momentum"] > 0:
            state["momentum_buffer"] = _zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = _zeros_like(param)

    def _update(self, p, g, state, group):
        xp = backend.array_module(p)
        state["step"] += 1
        alpha = group["alpha"]
        v = state["square_avg"].array
        t = self._buf(g, 1)
        v *= alpha
        v += xp.multiply(g, g, out=t).__imul__(1 - alpha)
        if group["centered"]:
            ga = state["grad_avg"].array
            ga += xp.subtract(g, ga, out=t).__imul__(1 - alpha)
            avg = xp.subtract(v, xp.multiply(ga, ga, out=t), out=t)
            xp.sqrt(avg, out=avg)
        else:
            avg = xp.sqrt(v, out=t)
        avg += group["eps"]
        lr = _scalar(group["lr"])
        momentum = group["momentum"]
        if momentum > 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = _zeros_like(p)
            b = buf.array
            b *= momentum
            b += xp.divide(g, avg, out=t)
            p -= xp.multiply(b, lr, out=t)
        else:
            p -= xp.divide(g, avg, out=t).__imul__(lr)
