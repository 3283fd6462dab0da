"""``torch.autograd.functional``: vjp, jvp, jacobian, hessian, vhp, hvp.

Everything is reverse mode on top of ``grad(create_graph=True)``:

* ``jvp`` uses the *double-vjp trick*: with a dummy cotangent ``u`` (zeros that require grad),
  ``g(u) = J^T u`` is linear in ``u``, so ``d<g(u), v>/du = J v``. It costs two backward passes
  and needs every op on the path to differentiate its backward in the gradient (all of deepgrad's
  do, see docs/architecture.md "Second order").
* ``jacobian`` runs one backward per output element (``vectorize`` is accepted and changes
  nothing: the rows are computed in a loop either way; ``strategy="forward-mode"`` computes the
  same matrix by reverse mode).
* ``hessian`` is the jacobian of the gradient; ``hvp``/``vhp`` are one double backward each
  (the Hessian of a scalar function is symmetric, so both return the same vector).

Inputs are detached copies that require grad; with ``create_graph=True`` they are identity
views of the given tensors instead, so the results stay differentiable with respect to them.
Inputs the function does not use get zero gradients, or an error with ``strict=True``.
"""
from __future__ import annotations

from .api import grad
from .grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(x, what, fname):
    from ..tensor import Tensor
    is_tuple = isinstance(x, (tuple, list))
    xs = tuple(x) if is_tuple else (x,)
    for i, t in enumerate(xs):
        if not isinstance(t, Tensor):
            if is_tuple:
                raise TypeError(f"The {what} given to {fname} must be either a Tensor or a tuple of "
                                f"Tensors but the value at index {i} has type {type(t).__name__}.")
            raise TypeError(f"The {what} given to {fname} must be either a Tensor or a tuple of "
                            f"Tensors but the given {what} has type {type(t).__name__}.")
    return is_tuple, xs


def _prepare(inputs, create_graph):
    from ..ops._graph import _Proxy
    out = []
    for x in inputs:
        if create_graph and x.requires_grad:
            out.append(_Proxy.apply(x))          # stays attached to the caller's graph
        else:
            out.append(x.detach().requires_grad_(True))
    return tuple(out)


def _post(ts, create_graph, is_tuple):
    ts = tuple(t if create_graph or t is None else t.detach() for t in ts)
    return ts if is_tuple else ts[0]


def _validate_v(v, other, is_other_tuple):
    if len(v) != len(other):
        if is_other_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, other)):
        if tuple(a.shape) != tuple(b.shape):
            pre = f"Entry {i} in " if is_other_tuple else ""
            raise RuntimeError(f"{pre}v has invalid size: should be {tuple(b.shape)} but got {tuple(a.shape)}.")


def _zeros_like(t):
    from ..tensor import Tensor
    from .. import backend
    return Tensor._make(backend.array_module(t.array).zeros(t.shape, t.dtype))


def _grads(outputs, inputs, grad_outputs, create_graph, strict, what):
    """``grad`` with zeros for inputs that are unused (``strict`` raises instead)."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs or [None] * len(outputs)) if o.requires_grad]
    if not pairs:
        if strict:
            raise RuntimeError(f"The output of the user-provided function is independent of the inputs. "
                               f"This is not allowed in strict mode ({what}).")
        return tuple(_zeros_like(x) for x in inputs)
    gs = grad([o for o, _ in pairs], list(inputs),
              grad_outputs=None if grad_outputs is None else [g for _, g in pairs],
              retain_graph=True, create_graph=create_graph, allow_unused=True)
    out = []
    for i, (g, x) in enumerate(zip(gs, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(f"The output of the user-provided function is independent of input "
                                   f"{i}. This is not allowed in strict mode ({what}).")
            g = _zeros_like(x)
        out.append(g)
    return tuple(out)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T J)``: a vector-Jacobian product (one backward)."""
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        xs = _prepare(inputs, create_graph)
        out = func(*xs)
        is_out_tuple, outs = _as_tuple(out, "outputs of the user-provided function", "vjp")
        if v is not None:
            _, vs = _as_tuple(v, "v", "vjp")
            _validate_v(vs, outs, is_out_tuple)
        else:
            if len(outs) != 1 or outs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function returns "
                                   "a single Tensor with a single element.")
            vs = None
        gs = _grads(outs, xs, vs, create_graph, strict, "vjp")
    return _post(outs, create_graph, is_out_tuple), _post(gs, create_graph, is_in_tuple)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)``: a Jacobian-vector product by the double-vjp trick (two reverse
    passes: ``J v = d<J^T u, v>/du`` for a dummy cotangent ``u``), not true forward mode."""
    from ..tensor import Tensor
    from .. import backend
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        xs = _prepare(inputs, create_graph)
        if v is not None:
            _, vs = _as_tuple(v, "v", "jvp")
            _validate_v(vs, xs, is_in_tuple)
        else:
            if len(xs) != 1 or xs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the input to the user-provided "
                                   "function is a single Tensor with a single element.")
            vs = (Tensor._make(backend.array_module(xs[0].array).ones(xs[0].shape, xs[0].dtype)),)
        out = func(*xs)
        is_out_tuple, outs = _as_tuple(out, "outputs of the user-provided function", "jvp")
        us = tuple(_zeros_like(o).requires_grad_(True) for o in outs)
        live = [(o, u) for o, u in zip(outs, us) if o.requires_grad]
        if not live:
            if strict:
                raise RuntimeError("The output of the user-provided function is independent of the "
                                   "inputs. This is not allowed in strict mode (jvp).")
            res = tuple(_zeros_like(o) for o in outs)
        else:
            gs = grad([o for o, _ in live], list(xs), grad_outputs=[u for _, u in live],
                      retain_graph=True, create_graph=True, allow_unused=True)
            terms = [(g, vi) for g, vi in zip(gs, vs) if g is not None and g.requires_grad]
            if not terms:
                res = tuple(_zeros_like(o) for o in outs)
            else:
                dot = None
                for g, vi in terms:
                    t = (g * vi).sum()
                    dot = t if dot is None else dot + t
                jv = grad(dot, list(us), retain_graph=True, create_graph=create_graph, allow_unused=True)
                res = tuple(_zeros_like(o) if j is None else j for j, o in zip(jv, outs))
    return _post(outs, create_graph, is_out_tuple), _post(res, create_graph, is_out_tuple)


def _stack_rows(rows, out_shape, in_shape, create_graph):
    from ..tensor import Tensor
    from .. import backend
    shape = tuple(out_shape) + tuple(in_shape)
    if create_graph:
        from ..ops.shape import stack
        return stack(rows, 0).reshape(shape)
    xp = backend.array_module(rows[0].array)
    return Tensor._make(xp.stack([r.array for r in rows]).reshape(shape))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: entry ``[i][j]`` has shape
    ``outputs[i].shape + inputs[j].shape`` (a Tensor when both are single Tensors)."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    if strategy == "forward-mode" and create_graph:
        raise NotImplementedError("jacobian: `create_graph=True` and `strategy=\"forward-mode\"` are not "
                                  "supported together; use strategy=\"reverse-mode\".")
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        xs = _prepare(inputs, create_graph)
        out = func(*xs)
        is_out_tuple, outs = _as_tuple(out, "outputs of the user-provided function", "jacobian")
        result = []
        for i, o in enumerate(outs):
            if strict and not o.requires_grad:
                raise RuntimeError(f"Output {i} of the user-provided function is independent of the inputs. "
                                   f"This is not allowed in strict mode (jacobian).")
            rows = [[] for _ in xs]
            flat = o.reshape(-1)
            for k in range(o.numel()):
                if o.requires_grad:
                    gs = _grads([flat[k]], xs, None, create_graph, False, "jacobian")
                else:
                    gs = tuple(_zeros_like(x) for x in xs)
                for r, g in zip(rows, gs):
                    r.append(g)
            if o.numel() == 0:
                from ..tensor import Tensor
                from .. import backend
                xp = backend.array_module(o.array)
                jac = tuple(Tensor._make(xp.zeros(tuple(o.shape) + tuple(x.shape), o.dtype)) for x in xs)
            else:
                jac = tuple(_stack_rows(r, o.shape, x.shape, create_graph) for r, x in zip(rows, xs))
            result.append(jac)
    result = [tuple(j if create_graph else j.detach() for j in row) for row in result]
    if is_out_tuple:
        return tuple(row if is_in_tuple else row[0] for row in result)
    return result[0] if is_in_tuple else result[0][0]


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar ``func``: a Tensor ``inputs.shape * 2`` for one input, else a
    tuple of tuples with block ``[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``."""
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")

    def grad_fn(*xs):
        out = func(*xs)
        is_out_tuple, outs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        if is_out_tuple:
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if outs[0].numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a "
                               "single element")
        return _grads([outs[0].reshape(())], xs, None, True, strict, "hessian")

    res = jacobian(grad_fn, inputs, create_graph=create_graph, strict=strict, vectorize=vectorize)
    return res if is_in_tuple else res[0][0]


def _second(func, inputs, v, create_graph, strict, fname):
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", fname)
        xs = _prepare(inputs, create_graph)
        if v is not None:
            _, vs = _as_tuple(v, "v", fname)
            _validate_v(vs, xs, is_in_tuple)
        else:
            if len(xs) != 1 or xs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the input to the user-provided "
                                   "function is a single Tensor with a single element.")
            from ..tensor import Tensor
            from .. import backend
            vs = (Tensor._make(backend.array_module(xs[0].array).ones(xs[0].shape, xs[0].dtype)),)
        out = func(*xs)
        is_out_tuple, outs = _as_tuple(out, "outputs of the user-provided function", fname)
        if is_out_tuple:
            raise RuntimeError(f"The function given to {fname} should return a single Tensor")
        if outs[0].numel() != 1:
            raise RuntimeError(f"The Tensor returned by the function given to {fname} should contain a "
                               f"single element")
        gs = _grads([outs[0]], xs, None, True, strict, fname)
        dot = None
        for g, vi in zip(gs, vs):
            if g.requires_grad:
                t = (g * vi).sum()
                dot = t if dot is None else dot + t
        if dot is None:
            if strict:
                raise RuntimeError(f"The jacobian of the user-provided function is independent of the "
                                   f"inputs. This is not allowed in strict mode ({fname}).")
            res = tuple(_zeros_like(x) for x in xs)
        else:
            res = _grads([dot], xs, None, create_graph, strict, fname)
    return _post(outs, create_graph, False), _post(res, create_graph, is_in_tuple)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T H)`` of a scalar function, by double backward."""
    return _second(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)`` of a scalar function, by double backward (``grad`` of
    ``<grad f, v>``; the Hessian is symmetric, so this equals ``vhp``)."""
    return _second(func, inputs, v, create_graph, strict, "hvp")
