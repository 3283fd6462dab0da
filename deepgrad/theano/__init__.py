"""Theano's API on deepgrad: build a symbolic graph, compile it with ``function``, call it.

    import deepgrad.theano as theano
    from deepgrad.theano import tensor        # or: import deepgrad.theano.tensor as T
    a = tensor.dscalar(); b = tensor.dscalar()
    f = theano.function([a, b], a + b)
    assert 4.0 == f(1.5, 2.5)

Variables are typed (dtype + broadcastable pattern) and checked as the graph is built; a
function walks the graph with deepgrad's eager ops, ``T.grad`` runs deepgrad's autograd inside
that walk, and ``updates`` write shared variables after the outputs are computed (see
docs/architecture.md, "Theano-style symbolic graphs"). ``printing.debugprint``/``pp`` print a
graph; ``deepgrad.utils.graphviz.to_dot`` draws it.
"""
from __future__ import annotations

from .config import config  # noqa: F401
from .graph import (Variable, TensorVariable, TensorConstant, SharedVariable, TensorType, Apply, Op,  # noqa: F401
                    clone_replace as clone)
from .gradient import grad, DisconnectedInputError  # noqa: F401
from . import gradient, tensor, printing, sandbox  # noqa: F401
from .function import function, shared, MissingInputError, Function, In  # noqa: F401
from .printing import pp, debugprint, print_graph  # noqa: F401



def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, **kwargs):
    """Theano's symbolic loop is not provided."""
    raise NotImplementedError(
        "theano.scan is not supported by deepgrad.theano: for a loop of known length, build the "
        "graph with a Python loop (h = T.tanh(T.dot(x[t], W) + T.dot(h, U)) for t in range(n)); "
        "for loops of data-dependent length, write the step with eager deepgrad ops (deepgrad.nn.RNN, "
        "or a Python loop over Tensors) instead")


__all__ = ["scan", "function", "shared", "grad", "tensor", "printing", "config", "pp", "debugprint", "clone",
           "MissingInputError", "DisconnectedInputError", "Variable", "SharedVariable", "In"]
