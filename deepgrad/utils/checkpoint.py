"""Activation checkpointing: ``checkpoint`` and ``checkpoint_sequential`` (``torch.utils.checkpoint``).

``checkpoint(function, *args)`` gives ``function(*args)`` without keeping the activations of the
ops inside it; backward runs ``function`` again (with the random state it had the first time, so
dropout draws the same masks) and differentiates the recomputed graph.

How it is built on the engine: the first call runs ``function`` with grad mode on while
``record_nodes`` notes the nodes it creates. Walking back from the outputs, the edges that leave
that set are the region's boundary: the arguments' nodes, the parameters (leaves), and any older
tensor the function captured from outside. The region's own graph is then dropped, and one
``CheckpointFunction`` node with edges to that boundary takes its place. Its backward reruns
``function``, and propagates the incoming gradients through the fresh graph with an inner
``run_backward`` that stops at the boundary and hands what it captured there to the outer walk.
So parameters used inside receive their gradients through the outer backward (hooks, ``.grad``,
``autograd.grad`` all behave as without checkpointing), and a backward with ``create_graph=True``
differentiates the recomputed graph again.
"""
from __future__ import annotations

import contextlib
import warnings

from ..autograd import function as _fn
from ..autograd.function import Function, record_nodes, run_backward
from ..autograd.grad_mode import _enabled, enable_grad, no_grad
from .. import random as _random

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "noop_context_fn",
           "detach_variable", "set_checkpoint_early_stop"]


class CheckpointError(RuntimeError):
    """The recomputed forward pass did not match the first one."""


def noop_context_fn():
    """The default ``context_fn``: no context around either run."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def detach_variable(inputs):
    """Detached copies of a tuple of Tensors that keep their ``requires_grad``."""
    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: {type(inputs).__name__}")
    out = []
    for x in inputs:
        if not isinstance(x, _fn._Tensor):
            out.append(x)
            continue
        d = x.detach()
        d.requires_grad = x.requires_grad
        out.append(d)
    return tuple(out)


@contextlib.contextmanager
def set_checkpoint_early_stop(enable: bool):
    """Accepted for compatibility: deepgrad's recomputation always runs the whole function."""
    yield

_REENTRANT_WARNING = (
    "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
    "use_reentrant=False is recommended, but if you need to preserve the current default "
    "behavior, you can pass use_reentrant=True.")


class CheckpointFunction(Function):
    """The node standing for one checkpointed call (see the module docstring)."""

    def backward(self, *grads):
        Tensor = _fn._Tensor
        function, args, kwargs = self.saved    # the engine drops ``saved`` once a node has run
        for t, (counter, version) in zip([a for a in args if isinstance(a, Tensor)], self._arg_versions):
            if counter[0] != version:
                raise RuntimeError(
                    f"checkpoint: an input of the checkpointed function (shape {tuple(t.shape)}) was "
                    f"modified by an inplace operation after the forward pass; backward cannot "
                    f"recompute it. Use .clone() before modifying it in place.")
        outer_state = None
        if self._rng_state is not None:
            outer_state = _random.default_generator.get_state()
            _random.default_generator.set_state(self._rng_state)
        try:
            with enable_grad(), self._recompute_context:
                out = function(*args, **kwargs)
        finally:
            if outer_state is not None:
                _random.default_generator.set_state(outer_state)
        outs = _flatten(out)
        roots, root_grads = [], []
        for i, g in zip(self._out_positions, grads):
            t = outs[i] if i < len(outs) else None
            if not isinstance(t, Tensor) or tuple(t.shape) != self._out_shapes[i]:
                    raise CheckpointError(
                    "checkpoint: the recomputed forward pass returned different outputs from the "
                    "first one (a non-deterministic function, or one that depends on global state "
                    "other than the random generator)")
            if g is not None and t.requires_grad:
                roots.append(t)
                root_grads.append(g)
        if not roots:
            return (None,) * len(self.next_edges)
        handles = [self._handle(e) for e in self.next_edges]
        create_graph = _enabled[0]
        got = run_backward(roots, root_grads, retain_graph=create_graph, create_graph=create_graph,
                           inputs=handles, allow_unused=True, accumulate=False, stop=self._stop)
        return tuple(got)

    @staticmethod
    def _handle(edge):
        """A Tensor for ``run_backward(inputs=...)`` that names a boundary edge."""
        if type(edge) is not tuple:
            return edge
        node, nr = edge
        t = _fn._Tensor._make(_fn._ndarray(0))
        t.grad_fn, t._out_nr, t.requires_grad = node, nr, True
        return t

    def name(self):
        return "CheckpointFunctionBackward"


def _flatten(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _boundary(outputs, created):
    """The edges that leave the set of nodes ``created``, walking back from ``outputs``."""
    edges, seen_edges, seen_nodes = [], set(), set()
    stack = []

    def visit(edge):
        if edge is None:
            return
        if type(edge) is tuple:
            node = edge[0]
            if node in created:
                if node not in seen_nodes:
                    seen_nodes.add(node)
                    stack.append(node)
                return
            key = (id(node), edge[1])
        else:
            key = id(edge)
        if key not in seen_edges:
            seen_edges.add(key)
            edges.append(edge)

    for t in outputs:
        visit(t._edge())
    while stack:
        for e in stack.pop().next_edges:
            visit(e)
    return edges


def checkpoint(function, *args, use_reentrant=None, context_fn=noop_context_fn,
               determinism_check="default", debug=False, early_stop=True, preserve_rng_state=True,
               **kwargs):
    """``function(*args, **kwargs)``, recomputed in backward instead of keeping its activations.

    ``use_reentrant`` selects between PyTorch's two variants; both give the same gradients here.
    As in PyTorch, ``use_reentrant=True`` (the default when it is not passed, with a warning)
    accepts no keyword arguments for ``function`` and, when no Tensor argument requires grad,
    returns outputs that do not require grad either (a warning says the gradients will be None).
    ``preserve_rng_state=True`` replays the random generator's state, so dropout masks match.
    """
    if use_reentrant is None:
        warnings.warn(_REENTRANT_WARNING, stacklevel=2)
        use_reentrant = True
    if use_reentrant:
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
    Tensor = _fn._Tensor
    if not _enabled[0]:
        return function(*args, **kwargs)
    if use_reentrant and not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None")
        with no_grad():
            return function(*args)

    rng_state = _random.default_generator.get_state() if preserve_rng_state else None
    forward_context, recompute_context = context_fn()
    with record_nodes() as created, forward_context:
        out = function(*args, **kwargs)
    outs = _flatten(out)
    diff = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
    if not diff:
        return out
    edges = _boundary([outs[i] for i in diff], created)
    del created

    node = _fn._new(CheckpointFunction)
    node.next_edges = edges
    node.needs_input_grad = [True] * len(edges)
    node._freed = False
    node._hooks = None
    node._n_out = len(diff)
    node.saved = (function, args, kwargs)
    node._arg_versions = [(a._version, a._version[0]) for a in args if isinstance(a, Tensor)]
    node._rng_state = rng_state
    node._recompute_context = recompute_context
    node._out_positions = diff
    node._out_shapes = {i: tuple(outs[i].shape) for i in diff}
    node._stop = {e[0] for e in edges if type(e) is tuple}

    wrapped = list(outs)
    for nr, i in enumerate(diff):
        t = Tensor._make(outs[i].array)   # same values; the region's graph is dropped with outs
        t.grad_fn, t._out_nr, t.requires_grad = node, nr, True
        wrapped[i] = t
    del outs
    if isinstance(out, tuple):
        return tuple(wrapped)
    if isinstance(out, list):
        return wrapped
    return wrapped[0]


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (a list or ``nn.Sequential``) in order, checkpointing ``segments`` - 1
    equal segments; the last segment runs normally."""
    if use_reentrant is None:
        warnings.warn(_REENTRANT_WARNING, stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    from ..nn import Sequential
    if isinstance(functions, Sequential):
        functions = list(functions.children())

    def run(start, end):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return run(end + 1, len(functions) - 1)(input)
