"""Printers of symbolic graphs: ``debugprint`` (Theano's indented tree), ``pp`` (one infix
expression) and ``pydotprint`` (Graphviz, through ``deepgrad.utils.graphviz.to_dot``).

``debugprint`` prints each output as a tree: a node's line is ``Op [id X] 'name'``, its inputs
follow one level deeper behind `` |``; a node met a second time shows its id again without its
subtree, so a shared subexpression is printed once. For a function, each line of a node ends with
the node's position in the evaluation order, and each update is printed as one more tree under a
line naming the shared variable it writes.
"""
from __future__ import annotations

import sys

from .graph import Apply, SharedVariable, TensorConstant, Variable, short_type

__all__ = ["debugprint", "pp", "pprint", "pydotprint", "print_graph"]


def _roots(obj):
    """(list of (header or None, variable), order or None) for a variable, a list, an Apply or a function."""
    from .function import Function
    if isinstance(obj, Function):
        roots = [(None, v) for v in obj.outputs]
        roots += [(f"update of {k!r}", v) for k, v in obj.update_pairs]
        return roots, obj.order
    if isinstance(obj, Apply):
        return [(None, v) for v in obj.outputs], None
    if isinstance(obj, Variable):
        return [(None, obj)], None
    if isinstance(obj, (list, tuple)) and all(isinstance(o, (Variable, Apply)) for o in obj):
        out = []
        for o in obj:
            out += _roots(o)[0]
        return out, None
    raise TypeError(f"debugprint: expected a symbolic variable, a list of them or a function, got "
                    f"{type(obj).__name__}")


def _char_id(n):
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def debugprint(obj, depth=-1, print_type=False, file=None, ids="CHAR", stop_on_name=False, done=None):
    """Print the graph of ``obj`` (a variable, a list of them, or a function) as an indented tree.
    ``file='str'`` returns the text; otherwise it is written to ``file`` (default stdout), which is
    returned."""
    roots, order = _roots(obj)
    pos = {id(n): i for i, n in enumerate(order)} if order is not None else {}
    names = {}

    def ident(v):
        if ids == "":
            return ""
        if id(v) not in names:
            names[id(v)] = (_char_id(len(names)) if ids == "CHAR" else str(len(names)) if ids == "int"
                            else str(id(v)))
        return f" [id {names[id(v)]}]"

    lines = []
    expanded = set()

    def typ(v):
        return f" <{short_type(v)}>" if print_type else ""

    for header, root in roots:
        if header:
            lines.append(f"{header}:")
        stack = [(root, "", 0)]
        while stack:
            v, prefix, level = stack.pop()
            if v.owner is None:
                lines.append(f"{prefix}{v!r}{ident(v)}{typ(v)}")
                continue
            node = v.owner
            op = str(node.op) + (f".{v.index}" if len(node.outputs) > 1 else "")
            seen = id(node) in expanded
            tail = f" {pos[id(node)]}" if id(node) in pos else ""
            lines.append(f"{prefix}{op}{ident(v)} '{v.name or ''}'{typ(v)}{tail}")
            if seen or (depth >= 0 and level >= depth) or (stop_on_name and v.name and level > 0):
                continue
            expanded.add(id(node))
            for inp in reversed(node.inputs):   # pushed reversed: printed in input order
                stack.append((inp, prefix + " |", level + 1))
    text = "\n".join(lines) + "\n"
    if file == "str":
        return text
    out = sys.stdout if file is None else file
    out.write(text)
    return out


def pp(obj):
    """The graph of ``obj`` as one infix expression, e.g. ``mean(((dot(W.T, inputs) - targets) ** 2))``.
    A function prints one line per output and per update."""
    from .function import Function
    if isinstance(obj, Function):
        parts = [_pp(v, {}) for v in obj.outputs]
        parts += [f"{k!r} <- {_pp(v, {})}" for k, v in obj.update_pairs]
        return "\n".join(parts)
    if isinstance(obj, (list, tuple)):
        return "\n".join(pp(o) for o in obj)
    if not isinstance(obj, Variable):
        raise TypeError(f"pp: expected a symbolic variable or a function, got {type(obj).__name__}")
    return _pp(obj, {})


pprint = pp


def _pp(v, memo):
    """Iterative (post-order) so that a deep chain does not hit the recursion limit."""
    stack = [(v, False)]
    while stack:
        var, ready = stack.pop()
        if id(var) in memo:
            continue
        if var.owner is None:
            memo[id(var)] = _leaf(var)
            continue
        if not ready:
            stack.append((var, True))
            stack.extend((i, False) for i in var.owner.inputs if id(i) not in memo)
            continue
        memo[id(var)] = _pp_node(var, [memo[id(i)] for i in var.owner.inputs])
    return memo[id(v)]


def _leaf(v):
    if isinstance(v, TensorConstant) or isinstance(v, SharedVariable) or v.name:
        return repr(v)
    return f"<{short_type(v)}>"


def _pp_node(var, args):
    from .gradient import Grad
    from .tensor.basic import Arange, Cast, DimShuffle, Elemwise, Reduce, Shape, Subtensor, IncSubtensor, _Sym
    node = var.owner
    op = node.op
    if isinstance(op, Elemwise):
        if op.pp_infix and len(args) == 2:
            return f"({args[0]} {op.pp_infix} {args[1]})"
        if op.pp_prefix and len(args) == 1:
            return f"{op.pp_prefix}{args[0]}"
        return f"{op.name}({', '.join(args)})"
    if isinstance(op, DimShuffle):
        x = node.inputs[0]
        if op.new_order == tuple(reversed(range(x.ndim))) and x.ndim == 2:
            return f"{args[0]}.T"
        return f"{args[0]}.dimshuffle({', '.join(repr(d) for d in op.new_order)})"
    if isinstance(op, Reduce):
        extra = "" if op.axis is None else f", axis={list(op.axis)}"
        return f"{op.name}({args[0]}{extra})"
    if isinstance(op, Cast):
        return f"{op.dtype}({args[0]})"
    if isinstance(op, (Subtensor, IncSubtensor)):
        syms = args[1:] if isinstance(op, Subtensor) else args[2:]

        def part(p):
            return syms[p.k] if isinstance(p, _Sym) else ("" if p is None else str(p))
        parts = []
        for t in op.template:
            if isinstance(t, slice):
                s = f"{part(t.start)}:{part(t.stop)}" + (f":{part(t.step)}" if t.step is not None else "")
                parts.append(s)
            elif isinstance(t, _Sym):
                parts.append(syms[t.k])
            else:
                parts.append("None" if t is None else str(t))
        idx = f"{args[0]}[{', '.join(parts)}]"
        if isinstance(op, IncSubtensor):
            return f"{'set_subtensor' if op.set else 'inc_subtensor'}({idx}, {args[1]})"
        return idx
    if isinstance(op, Grad):
        wrt = args[1:]
        w = wrt[0] if len(wrt) == 1 else "[" + ", ".join(wrt) + "]"
        return f"grad({args[0]}, {w})" + (f"[{var.index}]" if len(wrt) > 1 else "")
    if isinstance(op, Shape):
        return f"{args[0]}.shape"
    if isinstance(op, Arange):
        it = iter(args)
        a, b, st = (next(it) if t is None else str(t) for t in op.template)
        return f"arange({a}, {b})" if st == "1" else f"arange({a}, {b}, {st})"
    name = getattr(op, "name", None) or str(op)
    return f"{name}({', '.join(args)})"


def pydotprint(fct, outfile=None, format="png", **kwargs):
    """Theano's graph picture: writes Graphviz .dot text (and, with the ``dot`` program installed,
    the rendered ``outfile``); returns the .dot text. See ``deepgrad.utils.graphviz.to_dot``."""
    from ..utils.graphviz import to_dot
    return to_dot(fct, path=outfile)


def _eager_tree(tensors, params=None):
    """The autograd graph behind eager Tensors as debugprint-style lines (backward nodes, leaves)."""
    names = {id(p): n for n, p in (params or {}).items()}
    ids, lines, expanded = {}, [], set()

    def ident(x):
        if id(x) not in ids:
            ids[id(x)] = _char_id(len(ids))
        return f" [id {ids[id(x)]}]"

    for t in tensors:
        if t.grad_fn is None:
            what = names.get(id(t), "leaf" if t.requires_grad else "constant (no grad_fn)")
            lines.append(f"{what} {tuple(t.shape)}{ident(t)}")
            continue
        stack = [(t.grad_fn, "")]
        while stack:
            item, prefix = stack.pop()
            if not hasattr(item, "next_edges"):   # a leaf Tensor
                lines.append(f"{prefix}{names.get(id(item), 'leaf')} {tuple(item.shape)}{ident(item)}")
                continue
            lines.append(f"{prefix}{item.name()}{ident(item)}")
            if id(item) in expanded:
                continue
            expanded.add(id(item))
            edges = [e for e in (getattr(item, "next_edges", None) or ()) if e is not None]
            for e in reversed(edges):
                stack.append((e[0] if isinstance(e, tuple) else e, prefix + " |"))
    return "\n".join(lines) + "\n"


def captured_program(obj):
    """The recorded program of ``obj`` when it is one (it has ``print`` and ``to_dot``, as
    deepgrad.compiler's Program) or holds one (``last_program``, as a compiled function); else None."""
    if callable(getattr(obj, "to_dot", None)) and callable(getattr(obj, "print", None)):
        return obj
    prog = getattr(obj, "last_program", None)
    if prog is not None and callable(getattr(prog, "to_dot", None)):
        return prog
    return None


def print_graph(obj, file=None, params=None, print_type=False):
    """Print the graph of ``obj``: a deepgrad.theano variable/list/function (``debugprint``), an
    eager deepgrad Tensor (its autograd graph: backward nodes and the leaves, named from
    ``params`` such as ``dict(model.named_parameters())``), or a program captured by
    ``deepgrad.compile`` (or a compiled function: its last program). ``file='str'`` returns the
    text."""
    import io
    from ..tensor import Tensor
    prog = captured_program(obj)
    if prog is not None:
        buf = io.StringIO()
        prog.print(file=buf)
        text = buf.getvalue()
    elif isinstance(obj, Tensor) or (isinstance(obj, (list, tuple)) and obj and all(isinstance(o, Tensor) for o in obj)):
        text = _eager_tree([obj] if isinstance(obj, Tensor) else list(obj), params)
    else:
        text = debugprint(obj, file="str", print_type=print_type)
    if file == "str":
        return text
    (sys.stdout if file is None else file).write(text)
    return None
