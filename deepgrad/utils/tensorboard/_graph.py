"""The graph of one forward pass as a TensorFlow ``GraphDef`` for TensorBoard's GRAPHS tab.

torch traces the model with the JIT; deepgrad already records every op of a forward pass in the
autograd graph, so it runs the model once with its floating-point inputs requiring gradients and
walks that graph back from the outputs. To group the nodes by module, a pre-hook on every
submodule starts ``record_nodes`` (the engine's hook on node creation) and the forward hook ends
it: a node belongs to the innermost module that was running when it was made. Names follow
torch's: ``Net/Linear[fc1]/LinearFn_3``, parameters ``Net/Linear[fc1]/weight``, inputs
``input/input.0`` and outputs ``output/output.0`` (op ``IO Node``).
"""
from __future__ import annotations

import numpy as np

from ...autograd.function import record_nodes
from ...autograd.grad_mode import enable_grad
from ...tensor import Tensor


def _flat_tensors(x):
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _flat_tensors(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _flat_tensors(v)]
    return []


def _as_inputs(input_to_model):
    if input_to_model is None:
        raise ValueError("SummaryWriter.add_graph: input_to_model is needed to run the model once "
                         "(a Tensor or a tuple of Tensors)")
    args = input_to_model if isinstance(input_to_model, (tuple, list)) else (input_to_model,)
    out = []
    for a in args:
        if not isinstance(a, Tensor):
            a = Tensor(np.asarray(a))
        if a.is_floating_point():            # a leaf of its own, so the graph reaches the input
            a = a.detach().requires_grad_(True)
        out.append(a)
    return tuple(out)


def trace(model, input_to_model):
    """Run ``model`` once; returns ``(inputs, outputs, scope_of_node, module_paths, shapes)``."""
    inputs = _as_inputs(input_to_model)
    paths = {"": type(model).__name__}              # module name -> scope ("Net/Linear[fc1]")
    by_id = {id(model): paths[""]}
    for name, mod in model.named_modules():           # parents come before their children
        if name:
            parent, _, attr = name.rpartition(".")
            paths[name] = by_id[id(mod)] = f"{paths[parent]}/{type(mod).__name__}[{attr}]"
    scope, shapes, stack, handles = {}, {}, [], []

    def pre(mod, args):
        rec = record_nodes()
        stack.append((mod, rec, rec.__enter__()))

    def post(mod, args, out):
        m, rec, nodes = stack.pop()
        rec.__exit__(None, None, None)
        for node in nodes:
            scope.setdefault(node, by_id[id(m)])
        for t in _flat_tensors(out):
            if t.grad_fn is not None:
                shapes[(t.grad_fn, t._out_nr)] = tuple(t.shape)

    for mod in model.modules():
        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))
    try:
        with enable_grad():
            out = model(*inputs)
    finally:
        while stack:                         # forward raised: end the recordings, innermost first
            stack.pop()[1].__exit__(None, None, None)
        for h in handles:
            h.remove()
    return inputs, _flat_tensors(out), scope, paths, shapes


def build_graph(model, input_to_model, tbx):
    """A ``GraphDef`` of ``model`` run on ``input_to_model``."""
    inputs, outputs, scope, paths, shapes = trace(model, input_to_model)
    root = paths[""]
    NodeDef, AttrValue = tbx.node_def.NodeDef, tbx.attr_value.AttrValue
    TensorShapeProto = tbx.shape.TensorShapeProto

    def shape_attr(shape):
        if shape is None:
            return {}
        proto = TensorShapeProto(dim=[TensorShapeProto.Dim(size=int(s)) for s in shape])
        return {"_output_shapes": AttrValue(list=AttrValue.ListValue(shape=[proto]))}

    nodes, leaf_names = [], {}
    for i, x in enumerate(inputs):
        leaf_names[id(x)] = name = f"input/input.{i}"
        nodes.append(NodeDef(name=name, op="IO Node", attr=shape_attr(x.shape)))
    for pname, p in model.named_parameters():
        owner, _, attr = pname.rpartition(".")
        leaf_names[id(p)] = name = f"{paths[owner]}/{attr}"
        nodes.append(NodeDef(name=name, op="Parameter", attr=shape_attr(p.shape)))

    # post-order walk from the outputs: every node after the nodes it reads
    order, seen = [], set()
    stack = [(t.grad_fn, False) for t in outputs if t.grad_fn is not None]
    while stack:
        fn, done = stack.pop()
        if done:
            order.append(fn)
            continue
        if fn in seen:
            continue
        seen.add(fn)
        stack.append((fn, True))
        stack.extend((e[0], False) for e in reversed(fn.next_edges)
                     if isinstance(e, tuple) and e[0] not in seen)
    node_names = {}
    for k, fn in enumerate(order):
        node_names[fn] = f"{scope.get(fn, root)}/{type(fn).__name__}_{k}"

    def edge_name(e):
        if e is None:
            return None
        if isinstance(e, tuple):
            fn, nr = e
            return node_names[fn] + (f":{nr}" if nr else "")
        if id(e) not in leaf_names:          # a leaf that is neither an input nor a parameter
            leaf_names[id(e)] = name = f"{root}/constant.{len(leaf_names)}"
            nodes.append(NodeDef(name=name, op="Constant", attr=shape_attr(e.shape)))
        return leaf_names[id(e)]

    for fn in order:
        ins = [n for n in map(edge_name, fn.next_edges) if n is not None]
        nodes.append(NodeDef(name=node_names[fn], op=type(fn).__name__, input=ins,
                             attr=shape_attr(shapes.get((fn, 0)))))
    for i, t in enumerate(outputs):
        src = (node_names[t.grad_fn] + (f":{t._out_nr}" if t._out_nr else "")) if t.grad_fn is not None \
            else leaf_names.get(id(t))
        nodes.append(NodeDef(name=f"output/output.{i}", op="IO Node", input=[src] if src else [],
                             attr=shape_attr(t.shape)))
    return tbx.graph.GraphDef(node=nodes, versions=tbx.versions.VersionDef(producer=22))
