"""Recording the array-level work of one eager call.

Every deepgrad op works on raw NumPy arrays. During a capture the arrays that carry data (the
inputs, the state tensors' arrays, everything computed from them) are ``Rec`` arrays: an ndarray
subclass that computes exactly what a plain array computes (on plain views of itself) and notes
every call -- ufuncs (``__array_ufunc__``: operators, in-place operators, reductions, ``out=``),
NumPy functions (``__array_function__``), ndarray methods, indexing and index assignment -- as a
node ``outs = fn(*args, **kwargs)`` of a linear program whose variables are *slots*. Fresh arrays
made by NumPy's creation functions and draws from deepgrad's generators are recorded too (their
functions are swapped while a capture runs, for the capturing thread only), so a buffer that is
allocated and then filled with data is followed.

Values that leave the array world (``bool(a)``, ``a.item()``, ``float(a)``) become guards: the
replay recomputes them and gives up when one differs. What cannot be replayed (printing an array,
``tolist()``) is a graph break. The eager run always completes: a break only marks the trace as
unusable (or raises under ``fullgraph=True``).
"""
from __future__ import annotations

import operator
import os
import sys
import threading

import numpy as np

_ND = np.ndarray
_view = np.ndarray.view
_local = threading.local()
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NP_DIR = os.path.dirname(os.path.abspath(np.__file__))


class GraphBreak(RuntimeError):
    """Raised under ``fullgraph=True`` when the captured function does something that cannot be
    replayed (named with the user's source line)."""


class Slot:
    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def __repr__(self):
        return f"v{self.i}"


def active():
    return getattr(_local, "tracer", None)


def user_frame():
    """'file:line: source' of the innermost frame outside deepgrad and NumPy."""
    f = sys._getframe(1)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not (fn.startswith(_PKG_DIR) or fn.startswith(_NP_DIR)) and "<__array_function__" not in fn:
            import linecache
            line = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
            return f"{f.f_code.co_filename}:{f.f_lineno}: {line}"
        f = f.f_back
    return "<unknown>"


def plain(x):
    return _view(x, _ND) if isinstance(x, Rec) else x


def _unwrap(x):
    """Rec -> plain view, through tuples/lists/dicts (arguments of a call)."""
    t = type(x)
    if t is Rec:
        return _view(x, _ND)
    if t is tuple or t is list:
        if any(isinstance(e, (Rec, tuple, list)) for e in x):
            return t(_unwrap(e) for e in x)
        return x
    if t is dict:
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _has_rec(x):
    t = type(x)
    if t is Rec:
        return True
    if t is tuple or t is list:
        return any(_has_rec(e) for e in x)
    if t is dict:
        return any(_has_rec(v) for v in x.values())
    return False


def _root(a):
    """The object that owns ``a``'s memory (following ``.base``)."""
    while True:
        b = getattr(a, "base", None)
        if b is None:
            return a
        a = b


class Node:
    __slots__ = ("kind", "fn", "args", "kwargs", "outs", "label", "value", "where", "writes", "pure",
                 "reads", "weak", "used", "cmp_of")

    def __init__(self, kind, fn, args, kwargs, outs, label, value=None, where=None):
        self.kind = kind          # "call" | "guard" | "opaque" | "bind" | "rng"
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.outs = outs          # None, a Slot, or a tuple of Slots
        self.label = label
        self.value = value        # guard: the expected value; bind: (tensor, attr)
        self.where = where
        self.writes = ()          # slots whose memory this node writes
        self.pure = False
        self.weak = False         # a number's value guard, dropped if it was only compared
        self.used = False
        self.cmp_of = None


# ndarray methods that write into the array itself
_INPLACE_METHODS = {"__setitem__", "fill", "sort", "put", "partition", "itemset", "resize", "setfield",
                    "setflags", "byteswap"}
# NumPy functions that cannot be replayed: a graph break
_BREAK_FUNCS = {"array2string", "array_repr", "array_str", "save", "savez", "savez_compressed",
                "savetxt", "tofile"}
# functions whose result depends only on shapes/dtypes (no guard needed)
_STATIC_FUNCS = {"shape", "ndim", "size", "result_type", "may_share_memory", "iscomplexobj",
                 "isrealobj", "isscalar", "min_scalar_type", "can_cast", "broadcast_shapes"}
_WRITE_FUNCS = {"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"}


class Tracer:
    def __init__(self, fullgraph=False):
        self.thread = threading.get_ident()
        self.fullgraph = fullgraph
        self.nodes = []
        self.n = 0
        self.slot_of = {}         # id(Rec) -> slot index
        self.keep = []            # every Rec registered (keeps ids unique)
        self.values = {}          # slot -> capture-time array (for folding and printing)
        self.const = set()        # slots whose value depends on nothing but constants
        self.paused = 0
        self.broken = None        # reason of the first graph break
        self.guards = 0
        self.roots = set()        # ids of the memory owners of every slot's array
        self.const_by_root = {}   # memory owner id -> constant slots living there
        self.numbers = []         # [GInt/GFloat, its value-guard node]

    # ---- slots --------------------------------------------------------------------------------
    def new_slot(self, rec, const=False):
        i = self.n
        self.n += 1
        self.slot_of[id(rec)] = i
        self.keep.append(rec)
        self.values[i] = rec
        r = id(_root(rec))
        self.roots.add(r)
        if const:
            self.const.add(i)
            self.const_by_root.setdefault(r, []).append(i)
        return Slot(i)

    def input_slot(self, array):
        """Register a plain array as an input of the program; returns (Rec view, Slot)."""
        r = _view(array, Rec)
        return r, self.new_slot(r)

    def template(self, x):
        """Arguments with Rec arrays replaced by Slots (and tracked memory checked)."""
        t = type(x)
        if t is Rec:
            i = self.slot_of.get(id(x))
            if i is None:
                return self._foreign(x)
            return Slot(i)
        if t is tuple or t is list:
            return t(self.template(e) for e in x)
        if t is dict:
            return {k: self.template(v) for k, v in x.items()}
        if isinstance(x, _ND):
            self._check_plain(x)
        return x

    def _foreign(self, x):
        # A Rec that no recorded call produced: made by NumPy internals from a tracked array
        # (a method we do not intercept), or left over from an earlier capture (a cache).
        if getattr(x, "_dg_gen", None) is None:
            self.graph_break("an array made by an unrecorded NumPy operation on tracked data")
            return plain(x)
        return plain(x)    # a stale capture's array kept in some cache: a constant

    def _check_plain(self, x):
        # a plain array that views tracked memory (np.lib.stride_tricks, np.ndarray(buffer=...))
        r = _root(x)
        if isinstance(r, Rec) or id(r) in self._tracked_roots():
            self.graph_break("a plain view of a tracked array (made outside NumPy's dispatch)")

    def _tracked_roots(self):
        return self.roots

    def is_const(self, args):
        """True when every Slot in ``args`` (a template) is a constant slot."""
        ok = [True]

        def walk(x):
            t = type(x)
            if t is Slot:
                if x.i not in self.const:
                    ok[0] = False
            elif t is tuple or t is list:
                for e in x:
                    walk(e)
            elif t is dict:
                for e in x.values():
                    walk(e)
        walk(args)
        return ok[0]

    # ---- recording ----------------------------------------------------------------------------
    def wrap_result(self, res, outs_given, const):
        """Turn a call's plain result into Recs with new slots; returns (value, slot template)."""
        if isinstance(res, _ND):
            if outs_given:
                for orig, pv in outs_given:
                    if res is pv:
                        return orig, self.template(orig) if isinstance(orig, Rec) else None
            r = _view(res, Rec)
            r._dg_gen = self
            return r, self.new_slot(r, const)
        if isinstance(res, np.generic):
            r = _view(np.asarray(res), Rec)
            r._dg_gen = self
            return r, self.new_slot(r, const)
        if type(res) is tuple and res and all(isinstance(e, (_ND, np.generic)) for e in res):
            vals, slots = zip(*(self.wrap_result(e, outs_given, const) for e in res))
            return tuple(vals), tuple(slots)
        return res, False    # not an array: the caller decides (guard)

    def record(self, fn, args, kwargs, res, label, writes=None, rng=False):
        """Note ``res = fn(*args, **kwargs)`` (args still holding Recs); returns what the caller
        should see (Recs for arrays)."""
        if self.paused or self.broken is not None and not self.fullgraph:
            return _unwrap_res(res)
        targs = self.template(args)
        tkw = self.template(kwargs) if kwargs else {}
        const = not rng and self.is_const((targs, tkw))
        outs_given = []
        out = kwargs.get("out") if kwargs else None
        if out is not None:
            for o in (out if type(out) is tuple else (out,)):
                if isinstance(o, _ND):
                    outs_given.append((o, None))
        wr = []
        if writes is not None:
            wr.append(writes)
        for o, _ in outs_given:
            wr.append(o)
        # the plain views that the real call received as out=: match the result by identity
        if outs_given:
            outs_given = [(o, p) for (o, _), p in zip(outs_given, self._last_outs)]
        val, outs = self.wrap_result(res, outs_given, const)
        if outs is False and res is None:
            outs = None
        if outs is False:
            # a Python value made from array data: a guard (unless it depends on constants only)
            if not (const or _static(fn)):
                self._add(Node("guard", fn, targs, tkw, None, label, value=res, where=None))
                self.guards += 1
            return res
        node = Node("rng" if rng else "call", fn, targs, tkw, outs, label)
        if isinstance(res, np.generic):
            node.value = "scalar"          # replay: np.asarray(...) as the capture saw a 0-d array
        wslots = []
        for w in wr:
            t = self.template(w)
            if type(t) is Slot:
                wslots.append(t)
                if not const:
                    self._unconst(t)
            elif isinstance(w, _ND):
                node.writes = node.writes  # writing a plain (untracked) array: by reference
        node.writes = tuple(wslots)
        node.pure = not wr and not rng
        self._add(node)
        return val

    def _unconst(self, slot):
        # written with data: neither this slot nor any slot sharing its memory is constant now
        r = id(_root(self.values[slot.i]))
        for i in self.const_by_root.pop(r, ()):
            self.const.discard(i)

    def _add(self, node):
        self.nodes.append(node)

    def guard_value(self, fn, arr, label, weak=False):
        """A Python value read from an array (bool, item, float ...). With ``weak`` a number comes
        back as a GInt/GFloat whose comparisons are guarded instead of its value (``item()`` and
        the ``int``/``float`` names seen by deepgrad's modules during a capture)."""
        res = fn(plain(arr))
        if self.paused or self.broken is not None:
            return res
        t = self.template(arr)
        if type(t) is Slot and t.i in self.const:
            return res
        node = Node("guard", fn, (t,), {}, None, label, value=res)
        self._add(node)
        self.guards += 1
        if type(res) in (int, float, bool) and not weak:
            cmp = _compare_after_call(sys._getframe(2))
            if cmp is not None:
                # ``int(x) >= 0``: the number goes straight into a comparison; guard its outcome
                op, other = cmp
                try:
                    r = _Compare._OPS[op](res, other)
                except Exception:
                    r = None
                if type(r) is bool:
                    node.weak = True
                    self.compare_guard(node, op, other, r)
                    self.nodes.remove(node)
                    return res
        if weak and type(res) in (int, float):
            # a number: only how it compares needs to hold at replay, unless it is used otherwise
            node.weak = True
            g = (GInt if type(res) is int else GFloat)(res)
            g._dg = (self, node)
            self.numbers.append([g, node])
            return g
        return res

    def compare_guard(self, node, op, other, result):
        """``value OP other`` came out ``result`` at capture: guard that, right where the value
        was read."""
        if self.paused:
            return
        k = next(i for i, n in enumerate(self.nodes) if n is node)
        j = k + 1
        while j < len(self.nodes) and getattr(self.nodes[j], "cmp_of", None) is node:
            j += 1
        g = Node("guard", _Compare(node.fn, op, other), node.args, node.kwargs, None,
                 f"{node.label}{op}{other if other is not None else ''}", value=result)
        g.cmp_of = node
        self.nodes.insert(j, g)
        self.guards += 1

    def finish_numbers(self):
        """Drop the value guards of numbers that were only compared (and did not escape)."""
        drop = set()
        escaped = False
        for entry in self.numbers:
            g = entry[0]
            # references: the list entry, ``g`` and getrefcount's argument; more means it escaped
            if sys.getrefcount(g) > 3:
                escaped = True
            elif not node_used(entry[1]):
                drop.add(id(entry[1]))
            del g
        self.numbers = []
        if escaped and self.broken is None:
            # kept by Python code (a list, an attribute, the return value): whatever it does with
            # the number would not happen at replay
            self.broken = "a number read from array data (.item()) that outlives the call"
        if drop:
            self.nodes = [n for n in self.nodes if id(n) not in drop]

    def graph_break(self, why):
        where = user_frame()
        if self.fullgraph:
            raise GraphBreak(f"deepgrad.compile(fullgraph=True): cannot capture {why} at {where}")
        if self.broken is None:
            self.broken = f"{why} at {where}"


_CODE_CACHE = {}
_LOADS = {"LOAD_CONST", "LOAD_FAST", "LOAD_DEREF", "LOAD_GLOBAL", "LOAD_NAME"}


def _compare_after_call(frame):
    """If the instruction after the call running in ``frame`` loads a plain number and compares
    the call's result with it (``int(x.max()) < C``), return (op, number)."""
    try:
        code = frame.f_code
        ins = _CODE_CACHE.get(code)
        if ins is None:
            import dis
            lst = [i for i in dis.get_instructions(code)]
            ins = _CODE_CACHE[code] = (lst, {i.offset: k for k, i in enumerate(lst)})
        lst, at = ins
        k = at.get(frame.f_lasti)
        if k is None or not lst[k].opname.startswith("CALL") or k + 2 >= len(lst):
            return None
        ld, cmp = lst[k + 1], lst[k + 2]
        if cmp.opname != "COMPARE_OP" or ld.opname not in _LOADS:
            return None
        if ld.opname == "LOAD_CONST":
            v = ld.argval
        elif ld.opname == "LOAD_FAST":
            v = frame.f_locals[ld.argval]
        elif ld.opname == "LOAD_DEREF":
            v = frame.f_locals[ld.argval]
        else:
            name = ld.argval
            v = frame.f_globals[name] if name in frame.f_globals else frame.f_builtins[name]
        if type(v) not in (int, float, bool):
            return None
        op = cmp.argrepr.replace("bool(", "").rstrip(")")
        if op not in ("<", "<=", ">", ">=", "==", "!="):
            return None
        return op, v
    except Exception:
        return None


def node_used(n):
    return n.used


class _Compare:
    __slots__ = ("fn", "op", "other", "__name__")
    _OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
            "!=": operator.ne, "bool": None}

    def __init__(self, fn, op, other):
        self.fn, self.op, self.other = fn, op, other
        self.__name__ = f"cmp{op}"

    def __call__(self, a):
        v = self.fn(a)
        if self.op == "bool":
            return bool(v)
        return self._OPS[self.op](v, self.other)


def _number_class(base):
    """A Python int/float read from array data during a capture. Comparing it with a plain number
    guards only the comparison's outcome; any other use guards the value itself."""

    exact = base.__int__ if base is int else base.__float__

    def used(self):
        d = self.__dict__.get("_dg")
        if d is not None:
            d[1].used = True
        return exact(self)

    def make_cmp(op, pyop):
        def cmp(self, other):
            r = pyop(exact(self), other)
            d = self.__dict__.get("_dg")
            if d is not None and type(other) in (int, float, bool) and r is not NotImplemented:
                d[0].compare_guard(d[1], op, other, r)
            elif d is not None:
                d[1].used = True
            return r
        return cmp

    ns = {}
    for op, pyop, name in (("<", operator.lt, "__lt__"), ("<=", operator.le, "__le__"),
                           (">", operator.gt, "__gt__"), (">=", operator.ge, "__ge__"),
                           ("==", operator.eq, "__eq__"), ("!=", operator.ne, "__ne__")):
        ns[name] = make_cmp(op, pyop)

    def __bool__(self):
        r = base.__bool__(exact(self))
        d = self.__dict__.get("_dg")
        if d is not None:
            d[0].compare_guard(d[1], "bool", None, r)
        return r
    ns["__bool__"] = __bool__
    ns["__hash__"] = lambda self: hash(used(self))
    for name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
                 "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__",
                 "__rpow__", "__neg__", "__pos__", "__abs__", "__int__", "__float__", "__index__",
                 "__round__", "__trunc__", "__floor__", "__ceil__", "__format__", "__str__",
                 "__repr__", "__divmod__", "__rdivmod__", "__and__", "__rand__", "__or__", "__ror__",
                 "__xor__", "__rxor__", "__lshift__", "__rshift__", "__invert__", "__complex__",
                 "is_integer", "as_integer_ratio", "bit_length", "hex", "conjugate", "__reduce__",
                 "__reduce_ex__", "__getnewargs__", "__copy__", "__deepcopy__"):
        if hasattr(base, name):
            def f(self, *a, _n=name):
                return getattr(used(self), _n)(*a)
            ns[name] = f
    return type("G" + base.__name__.capitalize(), (base,), ns)


GInt = _number_class(int)
GFloat = _number_class(float)


def _static(fn):
    return getattr(fn, "__name__", "") in _STATIC_FUNCS


def _unwrap_res(res):
    if type(res) is Rec:
        return _view(res, _ND)
    return res


def _tracer_for_call():
    tr = getattr(_local, "tracer", None)
    if tr is None or tr.paused:
        return None
    return tr


def _call(fn, args, kwargs, label, writes=None):
    """Run ``fn`` on plain views and record it."""
    tr = _tracer_for_call()
    pa = _unwrap(args)
    pk = _unwrap(kwargs) if kwargs else {}
    if tr is None:
        res = fn(*pa, **pk)
        if kwargs and "out" in kwargs:
            return _restore_out(res, pk.get("out"), kwargs.get("out"))
        return res
    out = pk.get("out") if pk else None
    tr._last_outs = list(out) if type(out) is tuple else ([out] if out is not None else [])
    res = fn(*pa, **pk)
    return tr.record(fn, args, kwargs, res, label, writes=writes)


def _restore_out(res, plain_out, orig_out):
    if type(plain_out) is tuple:
        if type(res) is tuple:
            return tuple(o if r is p else r for r, p, o in zip(res, plain_out, orig_out))
        return orig_out[0] if plain_out and res is plain_out[0] else res
    return orig_out if res is plain_out else res


class Rec(np.ndarray):
    """An ndarray that records what is done with it while a capture runs."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = ufunc if method == "__call__" else getattr(ufunc, method)
        label = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        if method == "at":
            return _call(fn, inputs, kwargs, label, writes=inputs[0])
        return _call(fn, inputs, kwargs, label)

    def __array_function__(self, func, types, args, kwargs):
        name = getattr(func, "__name__", "?")
        tr = _tracer_for_call()
        if tr is not None and name in _BREAK_FUNCS:
            tr.graph_break(f"np.{name} (output of array data)")
            tr = None
        if tr is not None and name in _WRITE_FUNCS:
            return _call(func, args, kwargs, f"np.{name}", writes=args[0] if args else None)
        return _call(func, args, kwargs, f"np.{name}")

    # ---- Python values read from data: guards ---------------------------------------------
    def __bool__(self):
        tr = _tracer_for_call()
        if tr is None:
            return bool(_view(self, _ND))
        return tr.guard_value(bool, self, "bool")

    def __float__(self):
        tr = _tracer_for_call()
        if tr is None:
            return float(_view(self, _ND))
        return tr.guard_value(float, self, "float")

    def __int__(self):
        tr = _tracer_for_call()
        if tr is None:
            return int(_view(self, _ND))
        return tr.guard_value(int, self, "int")

    def __index__(self):
        tr = _tracer_for_call()
        if tr is None:
            return _view(self, _ND).__index__()
        return tr.guard_value(_ND.__index__, self, "index")

    def __complex__(self):
        tr = _tracer_for_call()
        if tr is None:
            return complex(_view(self, _ND))
        return tr.guard_value(complex, self, "complex")

    def item(self, *args):
        tr = _tracer_for_call()
        if tr is None:
            return _view(self, _ND).item(*args)
        return tr.guard_value(_item if not args else (lambda a: a.item(*args)), self, "item", weak=True)

    def tolist(self):
        tr = _tracer_for_call()
        if tr is not None:
            tr.graph_break("Tensor.tolist()/ndarray.tolist()")
        return _view(self, _ND).tolist()

    def tobytes(self, order="C"):
        tr = _tracer_for_call()
        if tr is not None:
            tr.graph_break("ndarray.tobytes()")
        return _view(self, _ND).tobytes(order)

    def __repr__(self):
        tr = _tracer_for_call()
        if tr is not None:
            tr.graph_break("printing an array (repr)")
        return repr(_view(self, _ND))

    def __str__(self):
        tr = _tracer_for_call()
        if tr is not None:
            tr.graph_break("printing an array (str)")
        return str(_view(self, _ND))

    def __format__(self, spec):
        tr = _tracer_for_call()
        if tr is not None:
            tr.graph_break("formatting an array")
        return _view(self, _ND).__format__(spec)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __reduce__(self):
        return _view(self, _ND).__reduce__()

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        return arr

    @property
    def T(self):
        return _call(_ND.transpose, (self,), {}, ".transpose")

    @property
    def mT(self):
        return _call(_mT, (self,), {}, ".mT")

    @property
    def real(self):
        return _call(np.real, (self,), {}, "np.real")

    @property
    def imag(self):
        return _call(np.imag, (self,), {}, "np.imag")


def _item(a):
    return a.item()


def _mT(a):
    return a.mT


_SKIP = {"__array_ufunc__", "__array_function__", "__bool__", "__float__", "__int__", "__index__",
         "__complex__", "item", "tolist", "tobytes", "__repr__", "__str__", "__format__", "__iter__",
         "__reduce__", "__reduce_ex__", "__array_wrap__", "__array_finalize__", "__array_prepare__",
         "__new__", "__init__", "__getattribute__", "__setattr__", "__delattr__", "__len__",
         "__class__", "__sizeof__", "__init_subclass__", "__subclasshook__", "__hash__", "__eq__",
         "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__dir__", "__class_getitem__",
         "__setstate__", "__getstate__", "__array_namespace__", "__dlpack__", "__dlpack_device__",
         "__array__", "__array_interface__", "__array_struct__", "__array_priority__", "__buffer__",
         "__release_buffer__", "__contains__", "__copy__", "__deepcopy__", "view", "dump", "dumps",
         "T", "mT", "real", "imag", "to_device", "__abs__", "__neg__", "__pos__", "__invert__",
         "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__",
         "__rmul__", "__imul__", "__truediv__", "__rtruediv__", "__itruediv__", "__floordiv__",
         "__rfloordiv__", "__ifloordiv__", "__mod__", "__rmod__", "__imod__", "__pow__",
         "__rpow__", "__ipow__", "__matmul__", "__rmatmul__", "__imatmul__", "__and__", "__rand__",
         "__iand__", "__or__", "__ror__", "__ior__", "__xor__", "__rxor__", "__ixor__",
         "__lshift__", "__rlshift__", "__ilshift__", "__rshift__", "__rrshift__", "__irshift__",
         "__divmod__", "__rdivmod__", "getfield", "setflags"}


def _make_method(name, base):
    label = f".{name}"
    if name in _INPLACE_METHODS:
        def method(self, *args, **kwargs):
            return _call(base, (self,) + args, kwargs, label, writes=self)
    else:
        def method(self, *args, **kwargs):
            return _call(base, (self,) + args, kwargs, label)
    method.__name__ = name
    return method


for _name in dir(_ND):
    if _name in _SKIP or (_name.startswith("__") and _name not in ("__getitem__", "__setitem__", "__copy__")):
        continue
    _attr = getattr(_ND, _name)
    if callable(_attr) and not isinstance(_attr, type):
        setattr(Rec, _name, _make_method(_name, _attr))


def _view_method(self, *args, **kwargs):
    if not args and not kwargs:
        return _call(_ND.view, (self,), {}, ".view")
    a0 = args[0] if args else kwargs.get("type", kwargs.get("dtype"))
    if isinstance(a0, type) and issubclass(a0, _ND):
        if a0 is Rec:
            return self
        return _view(self, a0) if not _tracer_for_call() else self
    return _call(_ND.view, (self,) + args, kwargs, ".view")


Rec.view = _view_method


# ---- numpy functions swapped during a capture (creation and conversion) ------------------------
_CREATE = ("empty", "zeros", "ones", "full", "arange", "eye", "identity", "linspace", "tri")
_CONVERT = ("asarray", "ascontiguousarray", "asfortranarray", "array", "asanyarray", "require")


def _creation(name, orig):
    label = f"np.{name}"

    def f(*args, **kwargs):
        tr = _tracer_for_call()
        if tr is None or tr.thread != threading.get_ident():
            return orig(*_unwrap(args), **_unwrap(kwargs))
        tr._last_outs = []
        res = orig(*_unwrap(args), **_unwrap(kwargs))
        return tr.record(orig, args, kwargs, res, label)
    f.__name__ = name
    f.__wrapped__ = orig
    return f


def _conversion(name, orig):
    label = f"np.{name}"

    def f(*args, **kwargs):
        tr = _tracer_for_call()
        if tr is None or tr.thread != threading.get_ident() or not (_has_rec(args) or _has_rec(kwargs)):
            return orig(*_unwrap(args), **_unwrap(kwargs))
        a0 = args[0] if args else None
        if (name in ("asarray", "asanyarray") and type(a0) is Rec and len(args) == 1
                and kwargs.get("dtype") in (None, a0.dtype) and kwargs.get("copy") is not True
                and kwargs.get("order") in (None, "K", "A")):
            return a0
        tr._last_outs = []
        res = orig(*_unwrap(args), **_unwrap(kwargs))
        return tr.record(orig, args, kwargs, res, label)
    f.__name__ = name
    f.__wrapped__ = orig
    return f


def _as_strided(orig):
    def f(x, shape=None, strides=None, subok=False, writeable=True):
        tr = _tracer_for_call()
        if tr is None or type(x) is not Rec or tr.thread != threading.get_ident():
            return orig(plain(x), shape, strides, subok, writeable)
        tr._last_outs = []
        res = orig(plain(x), shape, strides, subok, writeable)
        return tr.record(orig, (x, shape, strides, subok, writeable), {}, res,
                         "np.lib.stride_tricks.as_strided")
    f.__wrapped__ = orig
    return f


class RecGen:
    """Stands in for a deepgrad Generator's NumPy generator while a capture runs: every draw is
    a node that draws from the same generator at replay."""

    def __init__(self, gen, npgen):
        self._gen = gen
        self._np = npgen

    def __getattr__(self, name):
        attr = getattr(self._np, name)
        if not callable(attr) or name.startswith("_") or name in ("bit_generator",):
            return attr
        gen = self._gen

        def draw(*args, **kwargs):
            tr = _tracer_for_call()
            pa, pk = _unwrap(args), _unwrap(kwargs)
            if tr is None:
                return attr(*pa, **pk)
            out = pk.get("out")
            tr._last_outs = [out] if out is not None else []
            res = attr(*pa, **pk)
            return tr.record(RngDraw(gen, name), args, kwargs, res, f"rng.{name}",
                             writes=kwargs.get("out"), rng=True)
        return draw


class RngDraw:
    """At replay: ``gen.np.<name>(...)`` on the live generator (``manual_seed`` rebinds ``np``)."""
    __slots__ = ("gen", "name", "__name__")

    def __init__(self, gen, name):
        self.gen = gen
        self.name = name
        self.__name__ = f"rng.{name}"

    def __call__(self, *args, **kwargs):
        return getattr(self.gen.np, self.name)(*args, **kwargs)


class Patches:
    """Swap NumPy's creation/conversion functions, ``as_strided`` and the generators' ``np``
    attribute for recording versions; undo on exit. Other threads see the originals' behaviour."""

    def __enter__(self):
        from .. import random as dgrandom
        self.saved = []
        for name in _CREATE:
            orig = getattr(np, name)
            self.saved.append((np, name, orig))
            setattr(np, name, _creation(name, orig))
        for name in _CONVERT:
            orig = getattr(np, name)
            self.saved.append((np, name, orig))
            setattr(np, name, _conversion(name, orig))
        st = np.lib.stride_tricks
        self.saved.append((st, "as_strided", st.as_strided))
        st.as_strided = _as_strided(st.as_strided)
        G = dgrandom.Generator
        thread = threading.get_ident()

        def get_np(self_):
            raw = self_.__dict__["np"]
            tr = getattr(_local, "tracer", None)
            if tr is None or threading.get_ident() != thread:
                return raw
            return RecGen(self_, raw)

        def set_np(self_, v):
            self_.__dict__["np"] = v
        G.np = property(get_np, set_np)
        self.gen_cls = G
        return self

    def __init__(self, extra_globals=()):
        self.extra_globals = list(extra_globals)

    def __exit__(self, *exc):
        for mod, name, orig in reversed(self.saved):
            setattr(mod, name, orig)
        try:
            del self.gen_cls.np
        except AttributeError:
            pass
        return False
