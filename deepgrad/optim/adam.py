"""Adam (with the AMSGrad variant and decoupled weight decay behind flags) and AdamW."""
from __future__ import annotations

from .. import backend
from ..ops import _cuda_kernels as _ck
from ..tensor import Tensor
from .optimizer import Optimizer, _check_common, _scalar, _zeros_like

__all__ = ["Adam", "AdamW"]


def _check_betas_type(betas):
    if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
            or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))):
        raise ValueError("betas must be either both floats or both Tensors")
    return tuple(_scalar(b) if isinstance(b, Tensor) else b for b in betas)


class Adam(Optimizer):
    """``m <- lerp(m, g, 1-b1)``, ``v <- b2 v + (1-b2) g^2`` (``vmax <- max(vmax, v)`` with
    amsgrad), ``p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        _check_common(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        betas = _check_betas_type(betas)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _init_state(self, param, state, group):
        state["step"] = 0.0
        state["exp_avg"] = _zeros_like(param)
        state["exp_avg_sq"] = _zeros_like(param)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros_like(param)

    def _effective_grad(self, param, grad, group):
        if _ck.enabled(backend.array_module(param)):   # the fused kernel applies decay and sign
            return grad
        return super()._effective_grad(param, grad, group)

    def _update(self, p, g, state, group):
        xp = backend.array_module(p)
        state["step"] = step = state["step"] + 1
        beta1, beta2 = group["betas"]
        lr = _scalar(group["lr"])
        m = state["exp_avg"].array
        v = state["exp_avg_sq"].array
        if _ck.enabled(backend.array_module(p)):    # GPU: one fused kernel per parameter
            step_size = lr / (1 - beta1 ** step)
            bc2_sqrt = (1 - beta2 ** step) ** 0.5
            args = (float(1 - beta1), float(beta2), float(1 - beta2), float(step_size), float(bc2_sqrt),
                    float(group["eps"]))
            if group["amsgrad"]:
                vmax = state.get("max_exp_avg_sq")
                if vmax is None:
                    vmax = state["max_exp_avg_sq"] = _zeros_like(p)
                _ck.adam_amsgrad(backend.array_module(p), p, g, m, v, vmax.array, *args, *_ck.decay_terms(group))
            else:
                _ck.adam(backend.array_module(p), p, g, m, v, *args, *_ck.decay_terms(group))
            return
        t = self._buf(g, 1)
        m += xp.subtract(g, m, out=t).__imul__(1 - beta1)           # lerp(m, g, 1 - beta1)
        v *= beta2
        v += xp.multiply(g, g, out=t).__imul__(1 - beta2)
        step_size = lr / (1 - beta1 ** step)
        bc2_sqrt = (1 - beta2 ** step) ** 0.5
        if group["amsgrad"]:
            vmax = state.get("max_exp_avg_sq")
            if vmax is None:
                vmax = state["max_exp_avg_sq"] = _zeros_like(p)
            v = xp.maximum(vmax.array, v, out=vmax.array)
        denom = xp.sqrt(v, out=t)
        denom /= bc2_sqrt
        denom += group["eps"]
        p -= xp.divide(m, denom, out=t).__imul__(step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (``p <- p * (1 - lr * wd)`` before the Adam step)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)

    def _check_group(self, group):
        group["decoupled_weight_decay"] = True
