"""The symbolic graph of ``deepgrad.theano``: types, variables, apply nodes.

A graph is a DAG of :class:`Variable` (typed by a :class:`TensorType`: a dtype and a
*broadcastable* pattern, as in Theano) and :class:`Apply` nodes (an :class:`Op` applied to input
variables, making output variables). Nothing is computed while the graph is built: ``make_node``
only checks and infers types, so a mistake (``dot`` of a bool, a reduction over a missing axis,
the gradient of a non-scalar) is reported where it is written, naming the op and the types.

Each op's ``perform`` runs deepgrad's own eager ops on real Tensors; ``function.py`` walks the
graph once per call in topological order. Gradients (``T.grad``) are one ``Grad`` node whose value
deepgrad's autograd computes during that walk (see ``function.py``), not a symbolic expansion.
"""
from __future__ import annotations

import numpy as np

from .config import config

__all__ = ["TensorType", "Variable", "TensorVariable", "TensorConstant", "SharedVariable", "Apply", "Op",
           "toposort", "ancestors", "clone_replace", "as_tensor_variable", "short_type", "upcast"]

# Theano's one-letter dtype prefixes (dscalar, fmatrix, ivector, ...)
_PREFIX = {"float64": "d", "float32": "f", "float16": "h", "int8": "b", "int16": "w", "int32": "i",
           "int64": "l", "complex64": "c", "complex128": "z"}
_KIND_NAMES = {(): "scalar", (False,): "vector", (False, False): "matrix", (True, False): "row",
               (False, True): "col"}


def _kind_name(bcast):
    if bcast in _KIND_NAMES:
        return _KIND_NAMES[bcast]
    if not any(bcast):
        return f"tensor{len(bcast)}" if len(bcast) > 2 else "tensor"
    return f"tensor{len(bcast)}{{broadcastable={bcast}}}"


def short_type(t) -> str:
    """The Theano short name of a type: ``dmatrix``, ``fvector``, ``bool scalar``, ``drow``."""
    t = t.type if isinstance(t, Variable) else t
    kind = _kind_name(t.broadcastable)
    p = _PREFIX.get(t.dtype)
    return f"{p}{kind}" if p else f"{t.dtype} {kind}"


def upgrade_to_float(dtype):
    """The float dtype an op like exp, log or true division gives for ``dtype`` (Theano's rule:
    small integers to float32, larger ones to float64)."""
    dtype = str(dtype)
    if dtype in ("bool", "int8", "uint8", "int16", "uint16"):
        return "float32"
    if dtype in ("int32", "uint32", "int64", "uint64"):
        return "float64"
    return dtype


def upcast(*vars_) -> str:
    """The result dtype of combining variables: NumPy's promotion, with Python numbers "weak" (they
    never widen a tensor of their own kind: ``fmatrix * 0.5`` stays float32), as NEP 50 does."""
    strong = [np.dtype(v.type.dtype) for v in vars_ if not (isinstance(v, TensorConstant) and v.weak is not None)]
    parts = []
    for v in vars_:
        if isinstance(v, TensorConstant) and v.weak is not None:
            w = v.weak
            if type(w) is int and any(d.kind in "iu" and not np.iinfo(d).min <= w <= np.iinfo(d).max for d in strong):
                # an int too large for the tensor's type widens it (int8 + 300: int16), as Theano's constants do
                w = next(np.dtype(t) for t in ("int8", "int16", "int32", "int64", "uint64")
                         if np.iinfo(t).min <= w <= np.iinfo(t).max)
            parts.append(w)
        else:
            parts.append(np.dtype(v.type.dtype))
    if all(not isinstance(p, np.dtype) for p in parts):   # only Python numbers
        parts = [np.asarray(p).dtype if not isinstance(p, float) else np.dtype(config.floatX) for p in parts]
    return str(np.result_type(*parts))


class TensorType:
    """A dtype and a broadcastable pattern (one bool per dimension; True = always of length 1)."""

    def __init__(self, dtype, broadcastable, name=None):
        dtype = config.floatX if dtype == "floatX" else str(np.dtype(dtype))
        self.dtype = dtype
        self.broadcastable = tuple(bool(b) for b in broadcastable)
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.broadcastable)

    def __call__(self, name=None):
        """A new variable of this type: ``TensorType('float64', (False, False))('x')``."""
        return TensorVariable(self, name=name)

    def __eq__(self, other):
        return (isinstance(other, TensorType) and other.dtype == self.dtype
                and other.broadcastable == self.broadcastable)

    def __hash__(self):
        return hash((self.dtype, self.broadcastable))

    def __repr__(self):
        return f"TensorType({self.dtype}, {_kind_name(self.broadcastable)})"

    __str__ = __repr__

    def filter(self, data, allow_downcast=None):
        """``data`` as an ndarray of this type, or TypeError naming what is wrong (Theano's rules:
        a safe upcast is always fine, float32 -> float64 included; a Python number is fine when it
        converts without loss; a float64 array into a float32 slot needs ``allow_input_downcast``)."""
        if type(data) is float and self.dtype == "float64" and not self.broadcastable:
            return np.asarray(data, dtype=np.float64)    # the common scalar call, kept cheap
        from ..tensor import Tensor
        if isinstance(data, Tensor):
            from ..backend import to_numpy
            data = to_numpy(data.detach().array)
        if isinstance(data, np.ndarray) and data.dtype == self.dtype:
            arr = data
        elif allow_downcast:
            arr = np.asarray(data, dtype=self.dtype)
        else:
            python = isinstance(data, (bool, int, float, list, tuple))
            src = np.asarray(data)
            if src.dtype == object:
                raise TypeError(f"{self} cannot store a value of type {type(data).__name__}")
            if python:
                arr = np.asarray(data, dtype=self.dtype)
                nan = arr.dtype.kind in "fc" and src.dtype.kind in "fc"
                same = np.array_equal(arr, src, equal_nan=nan) or (allow_downcast is None and isinstance(data, float)
                                                   and self.dtype == config.floatX)
                if not same:
                    raise TypeError(f"{self} cannot store accurately value {data!r}, it would be "
                                    f"represented as {arr!r}. If you do not mind this precision "
                                    f"loss, you can: 1) explicitly convert your data to a numpy "
                                    f"array of dtype {self.dtype}, or 2) set "
                                    f"\"allow_input_downcast=True\" when calling \"function\".")
            elif str(np.result_type(src.dtype, self.dtype)) == self.dtype:
                arr = src.astype(self.dtype)
            else:
                raise TypeError(f"{self} cannot store a value of dtype {src.dtype} without risking "
                                f"loss of precision. If you do not mind this loss, you can: 1) "
                                f"explicitly cast your data to {self.dtype}, or 2) set "
                                f"\"allow_input_downcast=True\" when calling \"function\".")
        if arr.ndim != self.ndim:
            raise TypeError(f"Wrong number of dimensions: expected {self.ndim}, got {arr.ndim} with "
                            f"shape {arr.shape}.")
        for size, b in zip(arr.shape, self.broadcastable):
            if b and size != 1:
                raise TypeError(f"Non-unit value on shape on a broadcastable dimension. {arr.shape} "
                                f"{self.broadcastable}")
        return arr


class Variable:
    """A symbolic value: the output ``index`` of ``owner`` (an Apply), or a leaf when owner is None.
    Arithmetic builds new nodes; ``==`` stays identity (use ``T.eq``), as in Theano."""

    def __init__(self, type, owner=None, index=None, name=None):  # noqa: A002
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name

    # ---- type ---------------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def broadcastable(self):
        return self.type.broadcastable

    def __repr__(self):
        if self.name:
            return self.name
        if self.owner is not None:
            return f"{self.owner.op}.{self.index}" if len(self.owner.outputs) > 1 else f"{self.owner.op}.0"
        return f"<{self.type}>"

    __str__ = __repr__

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __bool__(self):
        raise TypeError("Variables do not support boolean operations: a symbolic value has no truth "
                        "value while the graph is built (use T.switch for a data-dependent choice, "
                        "T.eq for element-wise equality).")

    def __len__(self):
        raise TypeError("len() of a symbolic variable is unknown while the graph is built; use "
                        "x.shape[0].")

    def __iter__(self):
        raise TypeError("a symbolic variable cannot be iterated while the graph is built; index it "
                        "(x[i]) instead.")

    def eval(self, inputs_to_values=None):
        """Compute this variable now: ``(a + b).eval({a: 1.5, b: 2.5})``."""
        from .function import function
        inputs_to_values = inputs_to_values or {}
        keys = list(inputs_to_values)
        f = function(keys, self)
        return f(*[inputs_to_values[k] for k in keys])

    def clone(self):
        return type(self)(self.type, name=self.name)


def _B():
    from .tensor import basic
    return basic


class TensorVariable(Variable):
    """A symbolic tensor: Python's operators and Theano's methods build graph nodes."""

    # arithmetic (== and != stay identity, as in Theano: use T.eq / T.neq)
    def __add__(self, o): return _B().add(self, o)                # noqa: E704
    def __radd__(self, o): return _B().add(o, self)               # noqa: E704
    def __sub__(self, o): return _B().sub(self, o)                # noqa: E704
    def __rsub__(self, o): return _B().sub(o, self)               # noqa: E704
    def __mul__(self, o): return _B().mul(self, o)                # noqa: E704
    def __rmul__(self, o): return _B().mul(o, self)               # noqa: E704
    def __truediv__(self, o): return _B().true_div(self, o)       # noqa: E704
    def __rtruediv__(self, o): return _B().true_div(o, self)      # noqa: E704
    def __floordiv__(self, o): return _B().int_div(self, o)       # noqa: E704
    def __rfloordiv__(self, o): return _B().int_div(o, self)      # noqa: E704
    def __mod__(self, o): return _B().mod(self, o)                # noqa: E704
    def __rmod__(self, o): return _B().mod(o, self)               # noqa: E704
    def __pow__(self, o): return _B().pow(self, o)                # noqa: E704
    def __rpow__(self, o): return _B().pow(o, self)               # noqa: E704
    def __neg__(self): return _B().neg(self)                      # noqa: E704
    def __abs__(self): return _B().abs_(self)                     # noqa: E704
    def __invert__(self): return _B().invert(self)                # noqa: E704
    def __and__(self, o): return _B().and_(self, o)               # noqa: E704
    def __rand__(self, o): return _B().and_(o, self)              # noqa: E704
    def __or__(self, o): return _B().or_(self, o)                 # noqa: E704
    def __ror__(self, o): return _B().or_(o, self)                # noqa: E704
    def __xor__(self, o): return _B().xor(self, o)                # noqa: E704
    def __rxor__(self, o): return _B().xor(o, self)               # noqa: E704
    def __lt__(self, o): return _B().lt(self, o)                  # noqa: E704
    def __le__(self, o): return _B().le(self, o)                  # noqa: E704
    def __gt__(self, o): return _B().gt(self, o)                  # noqa: E704
    def __ge__(self, o): return _B().ge(self, o)                  # noqa: E704
    def __getitem__(self, idx): return _B().subtensor(self, idx)  # noqa: E704

    __hash__ = Variable.__hash__
    __eq__ = Variable.__eq__

    # methods
    @property
    def T(self):  # noqa: N802
        return _B().transpose(self)

    @property
    def shape(self):
        return _B().shape(self)

    def dimshuffle(self, *order):
        return _B().dimshuffle(self, *order)

    def transpose(self, *axes):
        return _B().transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (list, tuple))
                              else (axes or None))

    def reshape(self, shape, ndim=None):
        return _B().reshape(self, shape, ndim)

    def flatten(self, ndim=1):
        return _B().flatten(self, ndim)

    def astype(self, dtype):
        return _B().cast(self, dtype)

    def dot(self, other):
        return _B().dot(self, other)

    def sum(self, axis=None, keepdims=False, **kw): return _B().sum(self, axis, keepdims, **kw)    # noqa: E704
    def mean(self, axis=None, keepdims=False, **kw): return _B().mean(self, axis, keepdims, **kw)  # noqa: E704
    def prod(self, axis=None, keepdims=False, **kw): return _B().prod(self, axis, keepdims, **kw)  # noqa: E704
    def max(self, axis=None, keepdims=False): return _B().max(self, axis, keepdims)                # noqa: E704
    def min(self, axis=None, keepdims=False): return _B().min(self, axis, keepdims)                # noqa: E704
    def var(self, axis=None, keepdims=False): return _B().var(self, axis, keepdims)                # noqa: E704
    def std(self, axis=None, keepdims=False): return _B().std(self, axis, keepdims)                # noqa: E704
    def argmax(self, axis=None, keepdims=False): return _B().argmax(self, axis, keepdims)          # noqa: E704
    def argmin(self, axis=None, keepdims=False): return _B().argmin(self, axis, keepdims)          # noqa: E704
    def clip(self, a_min, a_max): return _B().clip(self, a_min, a_max)                             # noqa: E704

    def norm(self, L, axis=None):  # noqa: N803
        b = _B()
        if L == 1:
            return b.sum(b.abs_(self), axis)
        if L == 2:
            return b.sqrt(b.sum(b.sqr(self), axis))
        return b.pow(b.sum(b.pow(b.abs_(self), L), axis), 1.0 / L)


class TensorConstant(TensorVariable):
    """A constant in the graph. ``weak`` is the Python number it came from (it does not widen a
    tensor's dtype), or None for arrays."""

    def __init__(self, type, data, name=None, weak=None):  # noqa: A002
        super().__init__(type, name=name)
        self.data = data
        self.weak = weak

    def __repr__(self):
        if self.name:
            return self.name
        if self.data.ndim == 0:
            return repr(self.data.item())
        return f"TensorConstant{{{np.array2string(self.data, threshold=6)}}}" if self.data.size <= 6 \
            else f"TensorConstant{{{self.type}}}"

    def clone(self):
        return self


class SharedVariable(TensorVariable):
    """A variable with a value kept between calls (``theano.shared``); functions read it and
    ``updates`` write it."""

    def __init__(self, type, value, name=None, allow_downcast=None):  # noqa: A002
        super().__init__(type, name=name)
        self.allow_downcast = allow_downcast
        self._value = type.filter(value, allow_downcast=True)

    def get_value(self, borrow=False, return_internal_type=False):
        return self._value if borrow else self._value.copy()

    def set_value(self, new_value, borrow=False):
        v = self.type.filter(new_value, allow_downcast=self.allow_downcast)
        if not borrow and v is new_value:
            v = v.copy()
        self._value = v

    @property
    def value(self):
        return self.get_value()

    def __repr__(self):
        return self.name if self.name else f"<{self.type} shared>"

    def clone(self):
        return self


class Apply:
    """One op applied to input variables; ``outputs`` are its result variables."""

    def __init__(self, op, inputs, output_types):
        self.op = op
        self.inputs = list(inputs)
        self.outputs = [TensorVariable(t, owner=self, index=i) for i, t in enumerate(output_types)]

    @property
    def out(self):
        return self.outputs[0]

    def __repr__(self):
        return f"{self.op}({', '.join(map(repr, self.inputs))})"


class Op:
    """A symbolic operation. Subclasses define ``make_node`` (check and infer types: return an
    Apply), ``perform(node, values)`` (deepgrad Tensors in, a list of Tensors out) and a string
    form for the printers (``__str__``; ``pp_infix`` when it prints as an operator)."""

    pp_infix = None     # e.g. "+": pp prints (a + b)
    name = None

    def reads_values(self, node) -> bool:
        """Whether ``perform`` turns an input's value into a Python number (an index, a size):
        such a graph is not replayed by the compiler (see function.py)."""
        return False

    def __call__(self, *inputs, **kwargs):
        node = self.make_node(*inputs, **kwargs)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def make_node(self, *inputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def perform(self, node, values):  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self):
        return self.name or type(self).__name__

    __repr__ = __str__


def as_tensor_variable(x, opname="as_tensor_variable", ndim=None) -> Variable:
    """A symbolic variable for ``x``: a Variable as is, a Python number, NumPy array or deepgrad
    Tensor as a constant. Anything else is a TypeError naming the op."""
    from ..tensor import Tensor
    if isinstance(x, Variable):
        v = x
    elif isinstance(x, (bool, int, float, np.number, np.bool_, np.ndarray, list, tuple, Tensor)):
        weak = None
        if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
            weak = x
            data = np.asarray(x, dtype=config.floatX) if isinstance(x, float) else np.asarray(x)
        elif isinstance(x, Tensor):
            data = np.asarray(x.detach().array)
        else:
            data = np.asarray(x)
            if data.dtype == object:
                raise TypeError(f"{opname}: cannot convert {x!r} to a symbolic tensor (ragged or "
                                "non-numeric data)")
        v = TensorConstant(TensorType(data.dtype, tuple(s == 1 for s in data.shape)), data, weak=weak)
    else:
        raise TypeError(f"{opname}: cannot convert {x!r} (of type {type(x).__name__}) to a symbolic "
                        "tensor variable")
    if ndim is not None and v.ndim != ndim:
        raise TypeError(f"{opname}: expected a {ndim}-d tensor, got {short_type(v)}")
    return v


def toposort(outputs, stop=()):
    """The Apply nodes needed for ``outputs``, each after the nodes computing its inputs
    (iterative depth-first walk: no recursion limit on long chains); the walk does not go above
    the variables in ``stop`` (a function's inputs may be intermediate variables)."""
    order, seen = [], set()
    stop = {id(v) for v in stop}
    for out in outputs:
        if out.owner is None or id(out.owner) in seen or id(out) in stop:
            continue
        stack = [(out.owner, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for inp in reversed(node.inputs):
                if inp.owner is not None and id(inp.owner) not in seen and id(inp) not in stop:
                    stack.append((inp.owner, False))
    return order


def ancestors(outputs):
    """Every variable that ``outputs`` depend on (the outputs included)."""
    seen, stack, out = set(), list(outputs), []
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        out.append(v)
        if v.owner is not None:
            stack.extend(v.owner.inputs)
    return out


def clone_replace(outputs, replace):
    """``outputs`` rebuilt with each variable ``k`` of ``replace`` swapped for ``replace[k]``
    (Theano's ``givens``). A replacement must have the replaced variable's dtype and ndim."""
    memo = {}
    for k, v in replace.items():
        if not isinstance(k, Variable):
            raise TypeError(f"givens: the keys must be symbolic variables, got {k!r}")
        v = as_tensor_variable(v, "givens")
        if v.dtype != k.dtype or v.ndim != k.ndim:
            raise TypeError(f"givens: cannot replace {k!r} ({short_type(k)}) by {v!r} ({short_type(v)}): "
                            "the types differ (cast the replacement, e.g. T.cast(v, dtype))")
        memo[id(k)] = v
    for node in toposort(outputs):
        ins = [memo.get(id(i), i) for i in node.inputs]
        if all(a is b for a, b in zip(ins, node.inputs)):
            continue
        new = node.op.make_node(*ins)   # types are inferred (and checked) again
        for o, n in zip(node.outputs, new.outputs):
            if n.type != o.type:
                raise TypeError(f"givens: replacing changes the type of {node.op}'s output from "
                                f"{short_type(o)} to {short_type(n)}")
        for o, n in zip(node.outputs, new.outputs):
            n.name = o.name
            if id(o) not in memo:
                memo[id(o)] = n
    return [memo.get(id(o), o) for o in outputs]
