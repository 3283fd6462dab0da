"""Building blocks of the second-order routes of the fused ops (``graph_backward``).

A fused op (``array_backward = True``) keeps its raw-array backward for first-order gradients; the
engine calls its ``graph_backward`` instead when ``create_graph=True``. Four ways to write one:

* ``LinearMap``: an op whose gradient is a *fixed linear map* of the output gradient (pooling's
  scatter, embedding's row sums, NLL's pick) runs that map as a Function whose own backward is the
  adjoint map (and the adjoint's backward is the map again), so it is differentiable to any order
  at the price of the raw kernels.
* ``reference_grads``: differentiate a composed reference implementation of the op (ordinary
  deepgrad ops, twice differentiable) inside the backward, with ``create_graph=True``. Proxies
  (identity nodes) stand for the op's inputs and mark where that inner backward stops, so it
  never walks into the outer graph.
* Hand-written Functions that close on themselves (convolution: ops/conv.py).
* The op's first-order backward as one Function whose backward is the closed-form second
  derivative on raw arrays (the batch-statistics norms' ``NormGrad``, ops/normalization.py).
"""
from __future__ import annotations

from .. import backend
from ..autograd.function import Function, run_backward
from ..tensor import Tensor


class LinearMap(Function):
    """``y = f(x)`` for a linear ``f`` on raw arrays with the adjoint ``fT``; backward is
    ``fT(g)`` as another ``LinearMap`` (so every order is available). Extra inputs ``deps`` are
    tensors the map was derived from (max pooling's input): they get zero gradients, as PyTorch
    gives them, so a gradient of the gradient reaches them."""

    def forward(self, x, *deps, f=None, fT=None):
        self.f, self.fT = f, fT
        if self._record:
            self.dep_shapes = [(d.shape, d.dtype) for d in deps]
        return f(x)

    def backward(self, g):
        gx = LinearMap.apply(g, f=self.fT, fT=self.f) if self.needs_input_grad[0] else None
        out = [gx]
        for (shape, dt), need in zip(self.dep_shapes, self.needs_input_grad[1:]):
            out.append(Tensor._make(backend.array_module(g.array).zeros(shape, dt)) if need else None)
        return tuple(out)


def linear_map(x, f, fT, *deps):
    deps = tuple(d for d in deps if d is not None and d.requires_grad)
    return LinearMap.apply(x, *deps, f=f, fT=fT)


class _Proxy(Function):
    """Identity: a node of its own that marks where an inner backward stops."""

    def forward(self, x):
        return x

    def backward(self, g):
        return g


def reference_grads(ref, inputs, grads, need):
    """Gradients of ``ref(*inputs)`` (Tensor or tuple) against ``grads``, as a graph.

    ``need[i]``: whether input ``i``'s gradient is wanted. Returns one Tensor or None per input.
    """
    proxies = [_Proxy.apply(t) if (t is not None and n and t.requires_grad) else None
               for t, n in zip(inputs, need)]
    args = [p if p is not None else t for p, t in zip(proxies, inputs)]
    outs = ref(*args)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
    want = [p for p in proxies if p is not None]
    if not pairs or not want:
        return (None,) * len(inputs)
    got = run_backward([o for o, _ in pairs], [g for _, g in pairs], retain_graph=True,
                       create_graph=True, inputs=want, allow_unused=True, accumulate=False,
                       stop={p.grad_fn for p in want})
    it = iter(got)
    return tuple(next(it) if p is not None else None for p in proxies)
