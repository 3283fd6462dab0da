"""Recording one forward call: every op application, with its input Tensors and configuration.

``recording()`` swaps the engine's node allocator (``autograd.function._new``, the seam that
``record_nodes`` uses too), so ops pay nothing when no export is running. Each node it hands out
gets an instance-level ``forward`` that notes ``(op class, node, input Tensors, keyword
configuration, output arrays)`` once the op's own forward has run. The exporter then names values
by the graph edges autograd records anyway: an output Tensor's ``(grad_fn, _out_nr)`` is the
record's node and output index, which stays true through in-place ops (they rebase the tensor onto
the new node) -- so the traced inputs must require grad, and the exporter makes them.
"""
from __future__ import annotations

from ..autograd import function as _function


class Record:
    """One op application seen during the trace."""

    __slots__ = ("cls", "node", "inputs", "attrs", "outs")

    def __init__(self, cls, node, inputs, attrs, outs):
        self.cls, self.node, self.inputs, self.attrs, self.outs = cls, node, inputs, attrs, outs

    def __repr__(self):
        shapes = ", ".join(str(tuple(t.shape)) for t in self.inputs)
        return f"<{self.cls.__name__}({shapes})>"


class recording:
    """``with recording() as (records, created):`` -- ``records`` gets one ``Record`` per op
    forward run inside, ``created`` the ids of every graph node allocated (a node that was
    created but never recorded is a user-defined Function, which the exporter cannot see into)."""

    def __enter__(self):
        self._prev = prev = _function._new
        records, created = self.records, self.created = [], {}

        def new(cls):
            node = prev(cls)
            created[id(node)] = node          # kept alive: ids stay unique during the export
            forward = node.forward

            def traced(*arrays, **attrs):
                inputs = node.inputs
                out = forward(*arrays, **attrs)
                records.append(Record(cls, node, tuple(inputs) if inputs is not None else (), attrs,
                                      out if type(out) is tuple else (out,)))
                return out
            node.forward = traced
            return node
        _function._new = new
        return records, created

    def __exit__(self, *exc):
        _function._new = self._prev
        return False
