"""Optimiser updates of float16/bfloat16 parameters: the update runs in float32 on upcast copies
of the parameter, its gradient and its state, and the parameter and the state shaped like it are
rounded back (to nearest even) once. PyTorch's CPU kernels also compute each op of the update in
float32, rounding after every op; here the whole update rounds once, which differs from PyTorch by
at most a rounding step of the low dtype and is several times cheaper (NumPy has no vectorised
float16 arithmetic: see ops/_lowp.py)."""
from __future__ import annotations

from ..ops._lowp import down, up
from ..tensor import Tensor


def lowp_update(opt, param, grad, state, group):
    """One parameter's step for ``opt`` when ``param`` (a raw array) is float16/bfloat16."""
    dt = param.dtype
    p32 = up(param)
    g32 = up(grad)
    lowp_keys = []
    for k, v in list(state.items()):        # the state's low-precision tensors, upcast
        if isinstance(v, Tensor) and v.array.dtype == dt:
            state[k] = Tensor._make(up(v.array))
            lowp_keys.append(k)
    if not state:
        opt._init_state(p32, state, group)
        lowp_keys = [k for k, v in state.items()
                     if isinstance(v, Tensor) and v.array.shape == param.shape and v.array.dtype == p32.dtype]
    g = opt._effective_grad(p32, g32, group)
    opt._update(p32, g, state, group)
    param[...] = down(p32, dt)
    for k, v in state.items():
        # a buffer made during the update (SGD's momentum on its first step) is shaped like the
        # parameter too; PyTorch keeps such state in the parameter's dtype
        if isinstance(v, Tensor) and (k in lowp_keys or (v.array.shape == param.shape
                                                         and v.array.dtype == p32.dtype and k != "step")):
            state[k] = Tensor._make(down(v.array, dt))
