"""Adagrad (PyTorch's rule, with lr decay and an initial accumulator value)."""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, _check, _check_common, _full_like, _scalar

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """``s <- s + g^2``; ``p <- p - lr/(1 + (t-1) lr_decay) * g / (sqrt(s) + eps)``."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_common(lr=lr)
        _check(0.0 <= lr_decay, f"Invalid lr_decay value: {lr_decay}")
        _check_common(weight_decay=weight_decay)
        _check(0.0 <= initial_accumulator_value,
               f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        _check_common(eps=eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:          # PyTorch creates Adagrad's state eagerly
            for p in group["params"]:
                self._init_state(p.array, self.state[p], group)

    def _init_state(self, param, state, group):
        state["step"] = 0.0
        state["sum"] = _full_like(param, self.defaults["initial_accumulator_value"])

    def _update(self, p, g, state, group):
        xp = backend.array_module(p)
        state["step"] = step = state["step"] + 1
        clr = _scalar(group["lr"]) / (1 + (step - 1) * group["lr_decay"])
        s = state["sum"].array
        t = self._buf(g, 1)
        s += xp.multiply(g, g, out=t)
        std = xp.sqrt(s, out=t)
        std += group["eps"]
        p -= xp.divide(g, std, out=t).__imul__(clr)
