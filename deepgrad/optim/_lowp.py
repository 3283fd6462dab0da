"""Optimiser updates of float16/bfloat16 parameters: the update runs in float32 on upcast copies
of the parameter, its gradient and its state, and the parameter and the state shaped like it are
rounded back (to nearest even) once. PyTorch's CPU kernels also compute each op of the update in
float32, rounding after every op; here the whole update rounds once, which differs from PyTorch by
at most a rounding step of the low dtype and is several times cheaper (NumPy has no vectorised
float16 arithmetic: see ops/_lowp.py)."""
from __future__ import annotations

from ..ops._lowp import down, down_keep, set_shadow, shadow_of, up
from ..tensor import Tensor


def lowp_update(opt, p, grad, state, group):
    """One step of ``opt`` for the float16/bfloat16 parameter Tensor ``p`` (gradient array
    ``grad``); returns the shadows to register once ``p``'s version is bumped."""
    param = p.array
    dt = param.dtype
    p32 = shadow_of(p)
    # The shadow is updated in place, as a float32 parameter's array is: a node that saved it (a
    # retained graph) is refused by the version check, as it would be in float32.
    p32 = up(param) if p32 is None else p32
    g = p.grad
    g32 = shadow_of(g) if g is not None and g.array is grad else None   # (linear's backward leaves one)
    if g32 is None:
        g32 = up(grad)
    lowp = {}                                          # state key -> its low-precision Tensor
    for k, v in list(state.items()):                   # the state's low-precision tensors, in float32
        if isinstance(v, Tensor) and v.array.dtype == dt:
            lowp[k] = v
            f = shadow_of(v)
            state[k] = Tensor._make(up(v.array) if f is None else f)
    if not state:
        opt._init_state(p32, state, group)
    g = opt._effective_grad(p32, g32, group)
    opt._update(p32, g, state, group)
    down_keep(p32, dt, out=param)
    for k, v in list(state.items()):
        # state shaped like the parameter stays in its dtype (PyTorch's momentum_buffer, exp_avg);
        # a buffer made during the update (SGD's momentum on its first step) is such state too
        if isinstance(v, Tensor) and (k in lowp or (v.array.shape == param.shape and v.array.dtype == p32.dtype
                                                    and k != "step")):
            f = v.array if v.array.flags.c_contiguous and v.array.flags.writeable else v.array.copy()
            if f is p32:
                f = f.copy()
            old = lowp.get(k)
            if old is not None and old.array.shape == f.shape:
                down_keep(f, dt, out=old.array)        # the same Tensor and array, as PyTorch's in-place update
                state[k] = old
            else:
                state[k] = Tensor._make(down_keep(f, dt))
            set_shadow(state[k], f)
    return p32
