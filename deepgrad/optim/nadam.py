"""NAdam: Adam with Nesterov momentum and momentum decay (PyTorch's rule)."""
from __future__ import annotations

import numpy as np

from .. import backend

from .optimizer import Optimizer, _check, _check_common, _scalar, _zeros_like

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """``mu_t = b1 (1 - 0.5 * 0.96^(t psi))``; ``p <- p - lr (1-mu_t)/(1-prod mu) g/d
    - lr mu_{t+1}/(1 - prod mu * mu_{t+1}) m/d`` with ``d = sqrt(v/(1-b2^t)) + eps``."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        _check_common(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        _check(0.0 <= momentum_decay, f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, param, state, group):
        state["step"] = 0.0
        state["mu_product"] = 1.0
        state["exp_avg"] = _zeros_like(param)
        state["exp_avg_sq"] = _zeros_like(param)

    def _update(self, p, g, state, group):
        xp = backend.array_module(p)
        state["step"] = step = state["step"] + 1
        beta1, beta2 = group["betas"]
        lr = _scalar(group["lr"])
        psi = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
        # PyTorch keeps the running product as a float32 scalar tensor; round the same way.
        mu_product = float(np.float32(state["mu_product"]) * np.float32(mu))
        state["mu_product"] = mu_product
        m = state["exp_avg"].array
        v = state["exp_avg_sq"].array
        t = self._buf(g, 1)
        m += xp.subtract(g, m, out=t).__imul__(1 - beta1)
        v *= beta2
        v += xp.multiply(g, g, out=t).__imul__(1 - beta2)
        denom = xp.divide(v, 1 - beta2 ** step, out=self._buf(g, 2))
        xp.sqrt(denom, out=denom)
        denom += group["eps"]
        p -= xp.divide(g, denom, out=t).__imul__(lr * (1.0 - mu) / (1.0 - mu_product))
        p -= xp.divide(m, denom, out=t).__imul__(lr * mu_next / (1.0 - mu_product * mu_next))
