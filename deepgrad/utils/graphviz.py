"""Graphviz ``.dot`` text of a computation graph -- the picture the lectures draw.

``to_dot(obj, path=None, params=None)`` accepts

* a symbolic graph of ``deepgrad.theano`` (a variable, a list of them, or a compiled function):
  apply nodes are boxes, inputs green ellipses, shared variables blue, constants grey, outputs
  orange; an edge between two nodes is labelled with the type of the variable it carries
  (Theano's ``pydotprint`` picture); a function's updates are dashed edges back into the shared
  variable they write;
* a program recorded by ``deepgrad.compile`` (or a compiled function: its last program), drawn
  by the program's own ``to_dot``;
* an eager deepgrad Tensor (or a list/tuple of them) whose ``grad_fn`` records how it was
  computed: the backward nodes (``MulBackward``, ``MmBackward``, ...) are boxes, the leaves that
  require grad light blue boxes labelled with their name (from ``params``, e.g.
  ``dict(model.named_parameters())``) and shape, and the output a green box (torchviz's
  ``make_dot`` picture).

Writing the text needs nothing but Python. ``path`` ending in ``.dot``/``.gv`` writes the text;
ending in ``.png``/``.svg``/``.pdf`` also writes ``path`` with the suffix ``.dot`` and, when the
Graphviz ``dot`` program is installed, renders the picture (``render`` says whether it did).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["to_dot", "render", "dot_available"]

_STYLE = {
    "input": 'shape=ellipse, style=filled, fillcolor="#8fdf8f"',
    "shared": 'shape=ellipse, style=filled, fillcolor="#9fc8ef"',
    "constant": 'shape=ellipse, style=filled, fillcolor="#dddddd"',
    "output": 'shape=ellipse, style=filled, fillcolor="#f6c27a"',
    "op": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "grad": 'shape=box, style="rounded,filled", fillcolor="#f2d7ee"',
    "leaf": 'shape=box, style=filled, fillcolor="lightblue"',
    "root": 'shape=box, style=filled, fillcolor="darkolivegreen1"',
    "fn": 'shape=box, style=filled, fillcolor="lightgrey"',
}


def _q(s) -> str:
    """A double-quoted dot string; newlines become dot's centred line breaks."""
    s = str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def _header(name):
    return [f"digraph {_q(name)} {{", "  rankdir=TB;",
            '  node [fontname="Helvetica", fontsize=11];', '  edge [fontname="Helvetica", fontsize=9];']


# ---------------------------------------------------------------------------------------------
# Symbolic graphs (deepgrad.theano)
# ---------------------------------------------------------------------------------------------

def _symbolic_dot(obj, name):
    from ..theano.function import Function
    from ..theano.graph import SharedVariable, TensorConstant, Variable, short_type, toposort
    from ..theano.gradient import Grad
    if isinstance(obj, Function):
        outputs, updates, stop = list(obj.outputs), list(obj.update_pairs), obj.input_vars
        inputs = set(id(v) for v in obj.input_vars)
    else:
        outputs = [obj] if isinstance(obj, Variable) else list(obj)
        updates, stop, inputs = [], (), set()
    roots = outputs + [v for _, v in updates]
    order = toposort(roots, stop=stop)
    ids, lines = {}, _header(name)

    def nid(x):
        if id(x) not in ids:
            ids[id(x)] = f"n{len(ids)}"
        return ids[id(x)]

    def var_node(v, kind):
        label = f"{v!r}\n{short_type(v)}" if (v.name or isinstance(v, (TensorConstant, SharedVariable))) \
            else short_type(v)
        lines.append(f"  {nid(v)} [label={_q(label)}, {_STYLE[kind]}];")

    drawn = set()

    def source(v):
        """The dot node an edge carrying ``v`` starts from (its apply node, or a leaf ellipse)."""
        if v.owner is not None and id(v) not in inputs:
            return nid(v.owner)
        if id(v) not in drawn:
            drawn.add(id(v))
            kind = ("shared" if isinstance(v, SharedVariable) else "constant" if isinstance(v, TensorConstant)
                    else "input")
            var_node(v, kind)
        return nid(v)

    for node in order:
        label = str(node.op)
        if isinstance(node.op, Grad):
            label = "Grad wrt " + ", ".join(repr(w) for w in node.inputs[1:])
        lines.append(f"  {nid(node)} [label={_q(label)}, {_STYLE['grad' if isinstance(node.op, Grad) else 'op']}];")
        for k, v in enumerate(node.inputs):
            src = source(v)
            elabel = f"{k} {short_type(v)}" if len(node.inputs) > 1 else short_type(v)
            if isinstance(node.op, Grad) and k == 0:
                elabel = f"cost {short_type(v)}"
            lines.append(f"  {src} -> {nid(node)} [label={_q(elabel)}];")
    for i, v in enumerate(outputs):
        out_id = f"out{i}"
        label = (f"{v.name}\n" if v.name else f"output {i}\n") + short_type(v)
        lines.append(f"  {out_id} [label={_q(label)}, {_STYLE['output']}];")
        lines.append(f"  {source(v)} -> {out_id};")
    for k, v in updates:
        tgt = source(k)
        lines.append(f"  {source(v)} -> {tgt} [style=dashed, color=\"#3060c0\", label={_q('update')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Eager autograd graphs (a Tensor's grad_fn)
# ---------------------------------------------------------------------------------------------

def _eager_dot(tensors, params, name, show_saved=False):
    names = {id(p): n for n, p in (params or {}).items()}
    ids, lines = {}, _header(name)

    def nid(x):
        if id(x) not in ids:
            ids[id(x)] = f"n{len(ids)}"
        return ids[id(x)]

    def shape(t):
        return "(" + ", ".join(str(s) for s in t.shape) + ")"

    seen = set()
    stack = []
    for i, t in enumerate(tensors):
        label = (names.get(id(t), f"output {i}" if len(tensors) > 1 else "output")) + f"\n{shape(t)}"
        lines.append(f"  {nid(t)} [label={_q(label)}, {_STYLE['root']}];")
        if t.grad_fn is not None:
            lines.append(f"  {nid(t.grad_fn)} -> {nid(t)};")
            stack.append(t.grad_fn)
        elif t.requires_grad:
            seen.add(id(t))
    while stack:   # iterative walk: deep graphs (long RNN unrolls) do not hit the recursion limit
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        lines.append(f"  {nid(fn)} [label={_q(fn.name())}, {_STYLE['fn']}];")
        for edge in getattr(fn, "next_edges", None) or ():
            if edge is None:
                continue
            if isinstance(edge, tuple):
                nxt = edge[0]
                lines.append(f"  {nid(nxt)} -> {nid(fn)};")
                stack.append(nxt)
            else:   # a leaf Tensor that requires grad
                if id(edge) not in seen:
                    seen.add(id(edge))
                    label = (names.get(id(edge), "") + "\n" + shape(edge)).strip("\n")
                    lines.append(f"  {nid(edge)} [label={_q(label)}, {_STYLE['leaf']}];")
                lines.append(f"  {nid(edge)} -> {nid(fn)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------

def dot_available() -> bool:
    """Whether the Graphviz ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def render(dot_text: str, path, format=None) -> bool:  # noqa: A002
    """Render ``dot_text`` into ``path`` with the ``dot`` program; False (nothing written) when
    Graphviz is not installed."""
    exe = shutil.which("dot")
    if exe is None:
        return False
    path = Path(path)
    fmt = format or path.suffix.lstrip(".") or "png"
    subprocess.run([exe, f"-T{fmt}", "-o", str(path)], input=dot_text.encode(), check=True, timeout=60)
    return True


def to_dot(obj, path=None, params=None, name="G") -> str:
    """Graphviz ``.dot`` text of ``obj`` (a symbolic variable/list/function of deepgrad.theano, or
    an eager Tensor or list of Tensors); see the module docstring. Writes ``path`` when given."""
    from ..tensor import Tensor
    from ..theano.function import Function
    from ..theano.graph import Variable
    from ..theano.printing import captured_program
    prog = None if isinstance(obj, (Variable, Function, Tensor)) else captured_program(obj)
    if prog is not None:
        text = prog.to_dot()
    elif isinstance(obj, (Variable, Function)) or (isinstance(obj, (list, tuple)) and obj
                                                 and all(isinstance(o, Variable) for o in obj)):
        text = _symbolic_dot(obj, name)
    elif isinstance(obj, Tensor) or (isinstance(obj, (list, tuple)) and obj and all(isinstance(o, Tensor) for o in obj)):
        text = _eager_dot([obj] if isinstance(obj, Tensor) else list(obj), params, name)
    else:
        raise TypeError(f"to_dot: expected a deepgrad Tensor (its autograd graph), a deepgrad.theano "
                        f"variable or function, or a list of them; got {type(obj).__name__}")
    if path is not None:
        path = Path(path)
        if path.suffix.lower() in (".png", ".svg", ".pdf"):
            path.with_suffix(".dot").write_text(text)
            render(text, path)
        else:
            path.write_text(text)
    return text
