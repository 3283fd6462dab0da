"""Higher-order helpers built on ``grad(create_graph=True)``."""
from __future__ import annotations


from .api import grad


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def vjp(func, inputs, v=None, create_graph=False):
    """``(func(inputs), v^T J)``."""
    single = not isinstance(inputs, (tuple, list))
    xs = tuple(x.detach().requires_grad_(True) for x in _tuple(inputs))
    out = func(*xs)
    gs = grad(out, xs, grad_outputs=v, create_graph=create_graph, allow_unused=True,
              materialize_grads=True)
    out = out if create_graph else out.detach()
    return out, (gs[0] if single else gs)


def hvp(func, inputs, v, create_graph=False):
    """``(func(inputs), H v)``: the exact Hessian-vector product of a scalar function, by double
    backward (``grad`` of ``<grad f, v>``)."""
    single = not isinstance(inputs, (tuple, list))
    xs = tuple(x.detach().requires_grad_(True) for x in _tuple(inputs))
    vs = _tuple(v)
    out = func(*xs)
    if out.numel() != 1:
        raise RuntimeError(f"hvp: func must return a scalar tensor, got shape {tuple(out.shape)}")
    gs = grad(out, xs, create_graph=True, allow_unused=True, materialize_grads=True)
    dot = None
    for g, vi in zip(gs, vs):
        if tuple(vi.shape) != tuple(g.shape):
            raise RuntimeError(f"hvp: v has shape {tuple(vi.shape)} but the input has shape {tuple(g.shape)}")
        term = (g * vi).sum()
        dot = term if dot is None else dot + term
    hv = grad(dot, xs, create_graph=create_graph, allow_unused=True, materialize_grads=True)
    out = out if create_graph else out.detach()
    return out, (hv[0] if single else hv)


def jacobian(func, inputs):
    """The full Jacobian of ``func`` at ``inputs`` (one backward per output element)."""
    import numpy as np
    single = not isinstance(inputs, (tuple, list))
    xs = tuple(x.detach().requires_grad_(True) for x in _tuple(inputs))
    out = func(*xs)
    rows = [[] for _ in xs]
    flat = out.reshape(-1)
    for k in range(flat.shape[0]):
        gs = grad(flat[k], xs, retain_graph=True, allow_unused=True, materialize_grads=True)
        for r, g in zip(rows, gs):
            r.append(g.array)
    from ..tensor import Tensor
    jac = tuple(Tensor._make(np.stack(r).reshape(tuple(out.shape) + tuple(x.shape))) for r, x in zip(rows, xs))
    return jac[0] if single else jac
