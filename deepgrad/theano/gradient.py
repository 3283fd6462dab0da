"""``T.grad``: one ``Grad`` node per call, evaluated by deepgrad's autograd.

``grad(cost, wrt)`` does not expand the derivative symbolically (Theano does); it adds a node
``Grad{wrt=...}(cost, *wrt)`` whose outputs have the types of ``wrt``. When a function runs, the
walk gives every ``wrt`` variable a Tensor that requires grad (a leaf, or an intermediate value),
computes ``cost`` eagerly with recording on, and this node asks
``deepgrad.autograd.grad(cost, wrt_values)``. A gradient used by a later ``Grad`` (a Hessian
term, a gradient-norm penalty) is computed with ``create_graph=True``, so second derivatives work
the same way as in eager deepgrad.
"""
from __future__ import annotations

import warnings

from .graph import Apply, Op, Variable, ancestors, as_tensor_variable, short_type

__all__ = ["grad", "Grad", "DisconnectedInputError", "disconnected_grad", "zero_grad"]


class DisconnectedInputError(ValueError):
    """Raised by ``grad`` when ``cost`` does not depend on a ``wrt`` variable (Theano's name)."""


class Grad(Op):
    name = "Grad"

    def __init__(self, disconnected):
        self.disconnected = disconnected

    def __str__(self):
        return "Grad"

    def make_node(self, cost, *wrt):
        return Apply(self, [cost, *wrt], [w.type for w in wrt])

    def perform(self, node, values):  # pragma: no cover - function.py evaluates Grad nodes itself
        raise RuntimeError("Grad nodes are evaluated by the function's walk")


def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise", return_disconnected="zero",
         known_grads=None):
    """The gradient of the scalar ``cost`` with respect to ``wrt`` (one variable or a list;
    returns the same structure), Theano's ``T.grad``."""
    if known_grads is not None:
        raise NotImplementedError("T.grad(known_grads=...) is not supported; write the chain rule "
                                  "as cost = (known * x).sum() instead")
    if consider_constant:
        raise NotImplementedError("T.grad(consider_constant=...) is not supported; wrap those "
                                  "variables in theano.gradient.disconnected_grad(x) where they are used")
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(f"grad: disconnected_inputs must be 'raise', 'warn' or 'ignore', got {disconnected_inputs!r}")
    if not isinstance(cost, Variable):
        raise TypeError(f"grad: cost must be a symbolic variable, got {type(cost).__name__}")
    if cost.ndim != 0:
        raise TypeError(f"cost must be a scalar. (grad: got {short_type(cost)}; reduce it first, "
                        "e.g. T.sum(cost) or T.mean(cost))")
    if not cost.dtype.startswith("float"):
        raise TypeError(f"grad: the cost must be a float scalar, got {short_type(cost)}")
    single = isinstance(wrt, Variable)
    wrts = [wrt] if single else list(wrt)
    if not wrts:
        return []
    above = {id(v) for v in ancestors([cost])}
    for w in wrts:
        if not isinstance(w, Variable):
            raise TypeError(f"grad: wrt must be symbolic variables, got {w!r} ({type(w).__name__})")
        if not w.dtype.startswith("float"):
            raise TypeError(f"grad: cannot differentiate with respect to {w!r} of integer or bool type "
                            f"{short_type(w)}")
        if id(w) not in above:
            msg = (f"grad method was asked to compute the gradient with respect to a variable that is "
                   f"not part of the computational graph of the cost, or is used only by a "
                   f"non-differentiable operator: {w!r} ({short_type(w)})")
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(msg)
            if disconnected_inputs == "warn":
                warnings.warn(msg, stacklevel=2)
    outs = Grad(disconnected_inputs).make_node(cost, *wrts).outputs
    for w, g in zip(wrts, outs):
        g.name = f"(d{cost.name or 'cost'}/d{w.name})" if w.name else None
    return outs[0] if single else outs


class _Detach(Op):
    def __init__(self, name):
        self.name = name

    def make_node(self, x):
        x = as_tensor_variable(x, self.name)
        return Apply(self, [x], [x.type])

    def perform(self, node, values):
        v = values[0].detach()
        return [v if self.name == "disconnected_grad" else _ZeroGradFn.apply(values[0])]


def disconnected_grad(x):
    """``x``, through which no gradient flows (Theano's theano.gradient.disconnected_grad)."""
    return _Detach("disconnected_grad")(x)


def zero_grad(x):
    """``x`` whose gradient is zero (Theano's theano.gradient.zero_grad)."""
    return _Detach("zero_grad")(x)


def _zero_grad_fn():
    from ..autograd.function import Function

    class ZeroGrad(Function):
        def forward(self, a):
            return a

        def backward(self, g):
            return (g * 0,)
    return ZeroGrad


_ZeroGradFn = _zero_grad_fn()
