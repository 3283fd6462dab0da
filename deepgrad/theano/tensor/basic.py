"""The ops of ``deepgrad.theano.tensor``: each checks and infers types when the graph is built and
runs deepgrad's eager ops on Tensors when a function is called.

Types follow Theano: a dtype and a broadcastable pattern. Element-wise ops pad the shorter input
on the left with broadcastable dimensions and broadcast only along dimensions that are
broadcastable (declared, or known to be of length 1): two matrices of shapes (3, 4) and (1, 4)
do not add unless the second is a ``row`` -- deepgrad checks this when the function runs and says
"Input dimension mis-match" as Theano does. Results are cast to the dtype the graph promised
(deepgrad's ops follow PyTorch's promotion, in which a float64 0-d tensor does not widen a float32
matrix; Theano's does), so a function returns the dtypes its graph shows.
"""
from __future__ import annotations

import builtins

import numpy as np

from ... import backend
from ...tensor import Tensor
from ..config import config
from ..graph import (Apply, Op, TensorType, TensorConstant, Variable, as_tensor_variable, short_type,
                     upcast, upgrade_to_float)

_INT_KINDS = "biu"
_bmax, _bsum = builtins.max, builtins.sum   # this module defines T.max and T.sum


def _dg():
    import deepgrad
    return deepgrad


_DT = {}


def _cast(t, dtype):
    """``t`` as ``dtype`` (a name); a no-op when it already is (the common case, kept cheap)."""
    dt = _DT.get(dtype)
    if dt is None:
        dt = _DT[dtype] = np.dtype(dtype)
    a = t.array.dtype
    return t if a is dt or a == dt else t.to(dt)


def _types(vars_):
    return ", ".join(short_type(v) for v in vars_)


# ---------------------------------------------------------------------------------------------
# Element-wise ops
# ---------------------------------------------------------------------------------------------

class Elemwise(Op):
    """An element-wise op. ``kind``: 'upcast' (the inputs' common dtype), 'float' (that dtype made
    a float: exp, log, true division), 'bool' (comparisons), 'int' (bitwise: integer or bool
    inputs only)."""

    def __init__(self, name, fn, nin, kind="upcast", symbol=None, unary_symbol=None):
        self.name, self.fn, self.nin, self.kind = name, fn, nin, kind
        self.pp_infix = symbol
        self.pp_prefix = unary_symbol

    def __str__(self):
        return f"Elemwise{{{self.name}}}"

    def make_node(self, *inputs):
        if len(inputs) != self.nin:
            raise TypeError(f"{self.name}: expected {self.nin} inputs, got {len(inputs)}")
        ins = [as_tensor_variable(x, self.name) for x in inputs]
        for v in ins:
            if v.dtype.startswith("complex"):
                raise TypeError(f"{self.name}: complex inputs are not supported (got {_types(ins)})")
        common = upcast(*ins)
        if self.kind == "int" and np.dtype(common).kind not in _INT_KINDS + "?":
            raise TypeError(f"{self.name}: bitwise operations need integer or bool inputs, got {_types(ins)}")
        if self.kind == "float":
            out_dtype = upgrade_to_float(common)
        elif self.kind == "bool":
            out_dtype = "bool"
        else:
            out_dtype = common
        if self.kind == "upcast" and self.name in ("neg", "sub") and common == "bool":
            raise TypeError(f"{self.name}: cannot subtract or negate bool tensors ({_types(ins)}); "
                            "use T.invert or T.xor")
        nd = _bmax(v.ndim for v in ins)
        bcast = tuple(all(((True,) * (nd - v.ndim) + v.broadcastable)[d] for v in ins) for d in range(nd))
        node = Apply(self, ins, [TensorType(out_dtype, bcast)])
        node.compute_dtype = common if self.kind in ("bool", "int") else out_dtype
        return node

    def perform(self, node, values):
        check_broadcast(self.name, node.inputs, values)
        cd = node.compute_dtype
        out = self.fn(*[_cast(v, cd) for v in values])
        return [_cast(out, node.outputs[0].dtype)]


def check_broadcast(opname, inputs, values):
    """Theano's rule: along a dimension, every input that is not broadcastable there must have the
    same length (deepgrad's NumPy broadcasting alone would stretch a length-1 dimension)."""
    nd = _bmax(len(v.shape) for v in values)
    if nd == 0 or len(values) < 2:
        return
    for d in range(nd):
        size, who = None, None
        for i, (var, val) in enumerate(zip(inputs, values)):
            k = d - (nd - len(val.shape))
            if k < 0 or var.broadcastable[k]:
                continue
            n = val.shape[k]
            if size is None:
                size, who = n, i
            elif n != size:
                raise ValueError(f"{opname}: Input dimension mis-match. (input[{who}].shape[{d}] = {size}, "
                                 f"input[{i}].shape[{d}] = {n}); a dimension broadcasts only when its type "
                                 f"says so (a row, a col, T.addbroadcast or x.dimshuffle('x', 0))")


def _E(name, fn, nin, kind="upcast", symbol=None, prefix=None):
    op = Elemwise(name, fn, nin, kind, symbol, prefix)

    def apply(*xs):
        return op(*xs)
    apply.__name__ = name
    apply.op = op
    apply.__doc__ = f"Element-wise {name} (Theano's T.{name})."
    return apply


def _sqr(x):
    return x * x


def _relu_fn(x):
    return _dg().relu(x)


def _softplus_fn(x):
    return _dg().nn.functional.softplus(x)


def _lazy(name):
    def fn(*xs):
        return getattr(_dg(), name)(*xs)
    return fn


add = _E("add", _lazy("add"), 2, symbol="+")
sub = _E("sub", _lazy("sub"), 2, symbol="-")
mul = _E("mul", _lazy("mul"), 2, symbol="*")
true_div = _E("true_div", _lazy("div"), 2, kind="float", symbol="/")
int_div = _E("int_div", _lazy("floor_divide"), 2, symbol="//")
mod = _E("mod", _lazy("remainder"), 2, symbol="%")
pow = _E("pow", _lazy("pow"), 2, symbol="**")  # noqa: A001
maximum = _E("maximum", _lazy("maximum"), 2)
minimum = _E("minimum", _lazy("minimum"), 2)
eq = _E("eq", _lazy("eq"), 2, kind="bool", symbol="==")
neq = _E("neq", _lazy("ne"), 2, kind="bool", symbol="!=")
lt = _E("lt", _lazy("lt"), 2, kind="bool", symbol="<")
gt = _E("gt", _lazy("gt"), 2, kind="bool", symbol=">")
le = _E("le", _lazy("le"), 2, kind="bool", symbol="<=")
ge = _E("ge", _lazy("ge"), 2, kind="bool", symbol=">=")
and_ = _E("and_", _lazy("bitwise_and"), 2, kind="int", symbol="&")
or_ = _E("or_", _lazy("bitwise_or"), 2, kind="int", symbol="|")
xor = _E("xor", _lazy("bitwise_xor"), 2, kind="int", symbol="^")
invert = _E("invert", _lazy("bitwise_not"), 1, kind="int", prefix="~")
neg = _E("neg", _lazy("neg"), 1, prefix="-")
abs_ = _E("abs_", _lazy("abs"), 1)
sqr = _E("sqr", _sqr, 1)
sgn = _E("sgn", _lazy("sign"), 1)
floor = _E("floor", _lazy("floor"), 1)
ceil = _E("ceil", _lazy("ceil"), 1)
round = _E("round", _lazy("round"), 1)  # noqa: A001
exp = _E("exp", _lazy("exp"), 1, kind="float")
exp2 = _E("exp2", _lazy("exp2"), 1, kind="float")
expm1 = _E("expm1", _lazy("expm1"), 1, kind="float")
log = _E("log", _lazy("log"), 1, kind="float")
log1p = _E("log1p", _lazy("log1p"), 1, kind="float")
log2 = _E("log2", _lazy("log2"), 1, kind="float")
log10 = _E("log10", _lazy("log10"), 1, kind="float")
sqrt = _E("sqrt", _lazy("sqrt"), 1, kind="float")
inv = _E("inv", _lazy("reciprocal"), 1, kind="float")
tanh = _E("tanh", _lazy("tanh"), 1, kind="float")
sinh = _E("sinh", _lazy("sinh"), 1, kind="float")
cosh = _E("cosh", _lazy("cosh"), 1, kind="float")
sin = _E("sin", _lazy("sin"), 1, kind="float")
cos = _E("cos", _lazy("cos"), 1, kind="float")
arctan = _E("arctan", _lazy("arctan"), 1, kind="float")
erf = _E("erf", _lazy("erf"), 1, kind="float")
sigmoid = _E("sigmoid", _lazy("sigmoid"), 1, kind="float")
softplus = _E("softplus", _softplus_fn, 1, kind="float")
isnan = _E("isnan", _lazy("isnan"), 1, kind="bool")
isinf = _E("isinf", _lazy("isinf"), 1, kind="bool")
true_divide = true_div
abs = abs_  # noqa: A001
reciprocal = inv


class Switch(Op):
    """``switch(cond, a, b)``: a where cond is true, else b (broadcast over all three)."""
    name = "switch"

    def __str__(self):
        return "Elemwise{switch}"

    def make_node(self, cond, a, b):
        cond, a, b = (as_tensor_variable(x, "switch") for x in (cond, a, b))
        if cond.dtype.startswith(("float", "complex")):
            raise TypeError(f"switch: the condition must be bool or integer, got {short_type(cond)} "
                            "(compare it first, e.g. T.gt(x, 0))")
        dtype = upcast(a, b)
        nd = _bmax(cond.ndim, a.ndim, b.ndim)
        bcast = tuple(all(((True,) * (nd - v.ndim) + v.broadcastable)[d] for v in (cond, a, b)) for d in range(nd))
        return Apply(self, [cond, a, b], [TensorType(dtype, bcast)])

    def perform(self, node, values):
        check_broadcast("switch", node.inputs, values)
        c, a, b = values
        dtype = node.outputs[0].dtype
        return [_dg().where(_cast(c, "bool"), _cast(a, dtype), _cast(b, dtype))]


_switch = Switch()


def switch(cond, ift, iff):
    """Theano's ``T.switch`` (NumPy's where): element-wise ``ift if cond else iff``."""
    return _switch(cond, ift, iff)


where = switch


def clip(x, min, max):  # noqa: A002
    """``x`` limited to ``[min, max]`` (Theano's T.clip)."""
    return minimum(maximum(x, min), max)


def relu(x, alpha=0):
    """``max(x, 0)``; with ``alpha``, the leaky version ``x`` or ``alpha * x`` (Theano's nnet.relu)."""
    if alpha == 0:
        return _relu_op(x)
    x = as_tensor_variable(x, "relu")
    return switch(gt(x, 0), x, alpha * x)


_relu_op = _E("relu", _relu_fn, 1)


class Cast(Op):
    def __init__(self, dtype):
        self.dtype = config.floatX if dtype == "floatX" else str(np.dtype(dtype))

    def __str__(self):
        return f"Elemwise{{Cast{{{self.dtype}}}}}"

    def make_node(self, x):
        x = as_tensor_variable(x, "cast")
        return Apply(self, [x], [TensorType(self.dtype, x.broadcastable)])

    def perform(self, node, values):
        return [_cast(values[0], self.dtype)]


def cast(x, dtype):
    """``x`` converted to ``dtype`` ('float32', 'int64', 'floatX', ...)."""
    x = as_tensor_variable(x, "cast")
    d = config.floatX if dtype == "floatX" else str(np.dtype(dtype))
    return x if x.dtype == d else Cast(d)(x)


class FillLike(Op):
    """``zeros_like`` / ``ones_like``: a tensor of x's shape filled with ``value``."""

    def __init__(self, value, dtype=None):
        self.value, self.dtype = value, dtype

    def __str__(self):
        return f"FillLike{{{self.value}}}"

    def make_node(self, x):
        x = as_tensor_variable(x, "fill")
        return Apply(self, [x], [TensorType(self.dtype or x.dtype, x.broadcastable)])

    def perform(self, node, values):
        dtype = np.dtype(node.outputs[0].dtype)
        return [Tensor._make(backend.array_module(values[0].array).full(values[0].shape, self.value, dtype=dtype))]


def zeros_like(x, dtype=None):
    return FillLike(0, dtype)(x)


def ones_like(x, dtype=None):
    return FillLike(1, dtype)(x)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------

def _norm_axis(opname, x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{opname}: axis must be an int or a list of ints, got {a!r}")
        if not -x.ndim <= a < _bmax(x.ndim, 1):
            raise ValueError(f"{opname}: axis {a} is out of range for {short_type(x)} (ndim {x.ndim})")
        out.append(int(a) % _bmax(x.ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{opname}: repeated axis in {axis!r}")
    return tuple(sorted(out))


class Reduce(Op):
    """sum, mean, prod, max, min, var, std, argmax, argmin over ``axis`` (None: all)."""

    def __init__(self, name, axis, keepdims=False):
        self.name, self.axis, self.keepdims = name, axis, keepdims

    def __str__(self):
        a = "" if self.axis is None else f"axis={list(self.axis)}"
        k = ", keepdims" if self.keepdims else ""
        return f"{self.name.capitalize()}{{{a}{k}}}" if a or k else self.name.capitalize()

    def out_dtype(self, dtype):
        kind = np.dtype(dtype).kind
        if self.name in ("sum", "prod"):
            return "int64" if kind in "b" or (kind in "iu" and np.dtype(dtype).itemsize < 8) else dtype
        if self.name in ("mean", "var", "std"):   # Theano sums integers in int64, then divides: float64
            return dtype if kind == "f" else "float64"
        if self.name in ("argmax", "argmin"):
            return "int64"
        return dtype

    def make_node(self, x):
        x = as_tensor_variable(x, self.name)
        if self.name in ("argmax", "argmin") and self.axis is not None and len(self.axis) > 1:
            raise ValueError(f"{self.name}: one axis at a time, got {list(self.axis)}")
        axes = range(x.ndim) if self.axis is None else self.axis
        if self.keepdims:
            bcast = tuple(True if d in axes else b for d, b in enumerate(x.broadcastable))
        else:
            bcast = tuple(b for d, b in enumerate(x.broadcastable) if d not in axes)
        return Apply(self, [x], [TensorType(self.out_dtype(x.dtype), bcast)])

    def perform(self, node, values):
        dg = _dg()
        x = values[0]
        out_dtype = node.outputs[0].dtype
        whole = self.axis is None or len(self.axis) == x.ndim
        dim = None if whole and not self.keepdims else (tuple(range(x.ndim)) if self.axis is None else self.axis)
        if x.ndim == 0:
            dim = None
        kd = self.keepdims
        n = self.name
        if n in ("mean", "var", "std"):
            x = _cast(x, out_dtype)
        if n == "sum":
            r = dg.sum(_cast(x, out_dtype), dim=dim, keepdim=kd) if dim is not None else dg.sum(_cast(x, out_dtype))
        elif n == "prod":
            xx = _cast(x, out_dtype)
            if dim is None:
                r = dg.prod(xx)
            else:
                r = xx
                for d in sorted(dim, reverse=True):
                    r = dg.prod(r, dim=d, keepdim=kd)
        elif n == "mean":
            r = dg.mean(x, dim=dim, keepdim=kd) if dim is not None else dg.mean(x)
        elif n in ("var", "std"):
            f = dg.var if n == "var" else dg.std
            r = f(x, dim=dim, keepdim=kd, correction=0) if dim is not None else f(x, correction=0)
        elif n in ("max", "min"):
            f = dg.amax if n == "max" else dg.amin
            r = f(x, dim=dim if dim is not None else tuple(range(x.ndim)), keepdim=kd) if x.ndim else x
        else:   # argmax / argmin
            f = dg.argmax if n == "argmax" else dg.argmin
            r = f(x, dim=dim[0], keepdim=kd) if dim is not None and x.ndim else f(x)
        return [_cast(r, out_dtype)]


def _reduce(name):
    def fn(x, axis=None, keepdims=False, **kwargs):
        if kwargs.get("dtype") is not None or kwargs.get("acc_dtype") is not None:
            x = cast(x, kwargs.get("dtype") or kwargs.get("acc_dtype"))
        x = as_tensor_variable(x, name)
        if name in ("var", "std") and (kwargs.get("ddof", 0) or kwargs.get("corrected")):
            raise NotImplementedError(f"T.{name}: only ddof=0 (Theano's default) is supported; "
                                      "scale by n / (n - 1) for the unbiased estimate")
        return Reduce(name, None if axis is None else _norm_axis(name, x, axis), keepdims)(x)
    fn.__name__ = name
    fn.__doc__ = f"Theano's T.{name}(x, axis=None, keepdims=False)."
    return fn


sum = _reduce("sum")  # noqa: A001
mean = _reduce("mean")
prod = _reduce("prod")
max = _reduce("max")  # noqa: A001
min = _reduce("min")  # noqa: A001
var = _reduce("var")
std = _reduce("std")
argmax = _reduce("argmax")
argmin = _reduce("argmin")


# ---------------------------------------------------------------------------------------------
# Dot, shape and movement
# ---------------------------------------------------------------------------------------------

class Dot(Op):
    """NumPy's dot: vector.vector -> scalar, matrix.vector, matrix.matrix; higher ranks contract
    the last axis of ``a`` with the second-to-last of ``b``."""
    name = "dot"

    def make_node(self, a, b):
        a, b = as_tensor_variable(a, "dot"), as_tensor_variable(b, "dot")
        for v in (a, b):
            if v.dtype == "bool" or v.dtype.startswith("complex"):
                raise TypeError(f"dot: cannot multiply {short_type(a)} by {short_type(b)}: dot needs "
                                f"real numeric inputs (cast the {v.dtype} one first)")
        if a.ndim == 0 or b.ndim == 0:
            raise TypeError(f"dot: cannot multiply {short_type(a)} by {short_type(b)} (use * for a scalar)")
        kb = b.ndim - 2 if b.ndim >= 2 else 0
        bcast = a.broadcastable[:-1] + b.broadcastable[:kb] + b.broadcastable[kb + 1:]
        return Apply(self, [a, b], [TensorType(upcast(a, b), bcast)])

    def perform(self, node, values):
        dg = _dg()
        dtype = node.outputs[0].dtype
        a, b = (_cast(v, dtype) for v in values)
        if a.ndim <= 2 and b.ndim <= 2:
            if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
                raise ValueError(f"Shape mismatch: x has {a.shape[-1]} cols (and "
                                 f"{a.shape[0] if a.ndim == 2 else 1} rows) but y has "
                                 f"{b.shape[0 if b.ndim == 1 else -2]} rows (and "
                                 f"{b.shape[-1] if b.ndim == 2 else 1} cols)")
            return [dg.matmul(a, b)]
        kb = b.ndim - 2 if b.ndim >= 2 else 0
        return [dg.tensordot(a, b, dims=([a.ndim - 1], [kb]))]


_dot = Dot()


def dot(a, b):
    """Theano's T.dot: matrix products for vectors and matrices, a scalar times a tensor when one
    side is 0-d, tensordot over (last axis of a, second-to-last of b) beyond."""
    a, b = as_tensor_variable(a, "dot"), as_tensor_variable(b, "dot")
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    return _dot(a, b)


class DimShuffle(Op):
    """Reorder dimensions and insert broadcastable ones ('x'); a dimension may be dropped only if
    it is broadcastable."""

    def __init__(self, new_order):
        self.new_order = tuple(new_order)

    def __str__(self):
        return "DimShuffle{" + ",".join(str(d) for d in self.new_order) + "}"

    def make_node(self, x):
        x = as_tensor_variable(x, "dimshuffle")
        kept = [d for d in self.new_order if d != "x"]
        for d in kept:
            if not isinstance(d, (int, np.integer)) or not 0 <= d < x.ndim:
                raise ValueError(f"dimshuffle: {self.new_order} is not a valid order for {short_type(x)} "
                                 f"(ndim {x.ndim}: use 0..{x.ndim - 1} and 'x')")
        if len(set(kept)) != len(kept):
            raise ValueError(f"dimshuffle: repeated dimension in {self.new_order}")
        for d in range(x.ndim):
            if d not in kept and not x.broadcastable[d]:
                raise ValueError(f"dimshuffle: cannot drop the non-broadcastable dimension {d} of "
                                 f"{short_type(x)} (new order {self.new_order})")
        bcast = tuple(True if d == "x" else x.broadcastable[d] for d in self.new_order)
        return Apply(self, [x], [TensorType(x.dtype, bcast)])

    def perform(self, node, values):
        x = values[0]
        kept = [d for d in self.new_order if d != "x"]
        remaining = sorted(kept)
        if len(remaining) != x.ndim:
            x = x.reshape(tuple(x.shape[d] for d in remaining))
        perm = [remaining.index(d) for d in kept]
        if perm != sorted(perm):
            x = x.permute(*perm)
        shape = []
        it = iter(x.shape)
        for d in self.new_order:
            shape.append(1 if d == "x" else next(it))
        if len(shape) != x.ndim:
            x = x.reshape(tuple(shape))
        return [x]


def dimshuffle(x, *order):
    if len(order) == 1 and isinstance(order[0], (list, tuple)):
        order = order[0]
    return DimShuffle(order)(x)


def transpose(x, axes=None):
    x = as_tensor_variable(x, "transpose")
    return DimShuffle(tuple(reversed(range(x.ndim))) if axes is None else tuple(axes))(x)


def addbroadcast(x, *axes):
    """``x`` with the given dimensions marked broadcastable (checked to be 1 when the function runs)."""
    x = as_tensor_variable(x, "addbroadcast")
    return Rebroadcast({int(a): True for a in axes})(x)


def patternbroadcast(x, broadcastable):
    x = as_tensor_variable(x, "patternbroadcast")
    return Rebroadcast(dict(enumerate(broadcastable)))(x)


class Rebroadcast(Op):
    def __init__(self, axes):
        self.axes = axes

    def __str__(self):
        return "Rebroadcast{" + ",".join(f"{k}:{v}" for k, v in sorted(self.axes.items())) + "}"

    def make_node(self, x):
        for a in self.axes:
            if not 0 <= a < x.ndim:
                raise ValueError(f"addbroadcast: axis {a} out of range for {short_type(x)}")
        bcast = tuple(self.axes.get(d, b) for d, b in enumerate(x.broadcastable))
        return Apply(self, [x], [TensorType(x.dtype, bcast)])

    def perform(self, node, values):
        x = values[0]
        for a, b in self.axes.items():
            if b and x.shape[a] != 1:
                raise ValueError(f"addbroadcast: dimension {a} has length {x.shape[a]}, not 1 "
                                 f"(shape {tuple(x.shape)})")
        return [x]


class Shape(Op):
    name = "Shape"

    def make_node(self, x):
        x = as_tensor_variable(x, "shape")
        return Apply(self, [x], [TensorType("int64", (False,))])

    def perform(self, node, values):
        return [Tensor._make(np.asarray(tuple(values[0].shape), dtype=np.int64))]


_shape = Shape()


def shape(x):
    return _shape(x)


def _symbolic_ints(opname, seq):
    """Split a sequence of Python ints and symbolic int scalars into a template and inputs."""
    template, ins = [], []
    for s in seq:
        if isinstance(s, Variable):
            if s.ndim != 0 or np.dtype(s.dtype).kind not in _INT_KINDS:
                raise TypeError(f"{opname}: a symbolic size must be an integer scalar, got {short_type(s)}")
            template.append(None)
            ins.append(s)
        else:
            template.append(int(s))
    return tuple(template), ins


def _fill_template(template, values):
    it = iter(values)
    return tuple(int(next(it).item()) if t is None else t for t in template)


class Reshape(Op):
    def __init__(self, template):
        self.template = template

    def reads_values(self, node):
        return len(node.inputs) > 1

    def __str__(self):
        return "Reshape{" + ",".join("?" if t is None else str(t) for t in self.template) + "}"

    def make_node(self, x, *sizes):
        return Apply(self, [x, *sizes], [TensorType(x.dtype, tuple(t == 1 for t in self.template))])

    def perform(self, node, values):
        shape = _fill_template(self.template, values[1:])
        x = values[0]
        try:
            return [x.reshape(shape)]
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"reshape: cannot reshape an array of shape {tuple(x.shape)} into {shape}") from e


def reshape(x, newshape, ndim=None):
    x = as_tensor_variable(x, "reshape")
    if isinstance(newshape, Variable):
        raise NotImplementedError("reshape: give the new shape as a tuple of ints and symbolic int "
                                  "scalars, e.g. (x.shape[0], -1)")
    if isinstance(newshape, (int, np.integer)):
        newshape = (newshape,)
    template, ins = _symbolic_ints("reshape", newshape)
    if _bsum(1 for t in template if t == -1) > 1:
        raise ValueError(f"reshape: only one dimension can be -1, got {newshape}")
    return Reshape(template)(x, *ins)


class Flatten(Op):
    def __init__(self, ndim):
        self.ndim = ndim

    def __str__(self):
        return f"Flatten{{{self.ndim}}}"

    def make_node(self, x):
        if not 1 <= self.ndim <= _bmax(x.ndim, 1):
            raise ValueError(f"flatten: ndim={self.ndim} is not in 1..{x.ndim} for {short_type(x)}")
        bc = x.broadcastable[:self.ndim - 1] + (all(x.broadcastable[self.ndim - 1:]),)
        return Apply(self, [x], [TensorType(x.dtype, bc)])

    def perform(self, node, values):
        x = values[0]
        return [x.reshape(tuple(x.shape[:self.ndim - 1]) + (-1,))]


def flatten(x, ndim=1, outdim=None):
    return Flatten(outdim or ndim)(as_tensor_variable(x, "flatten"))


class Join(Op):
    def __init__(self, axis, stack=False):
        self.axis, self.stack = axis, stack

    def __str__(self):
        return f"{'Stack' if self.stack else 'Join'}{{axis={self.axis}}}"

    def make_node(self, *xs):
        name = "stack" if self.stack else "concatenate"
        xs = [as_tensor_variable(x, name) for x in xs]
        if not xs:
            raise ValueError(f"{name}: needs at least one tensor")
        if len({x.ndim for x in xs}) != 1:
            raise TypeError(f"{name}: all inputs must have the same number of dimensions, got {_types(xs)}")
        nd = xs[0].ndim + (1 if self.stack else 0)
        if not 0 <= self.axis < nd:
            raise ValueError(f"{name}: axis {self.axis} out of range for {_types(xs)}")
        bcast = [all(x.broadcastable[d] for x in xs) for d in range(xs[0].ndim)]
        if self.stack:
            bcast.insert(self.axis, len(xs) == 1)
        else:
            bcast[self.axis] = False
        return Apply(self, xs, [TensorType(upcast(*xs), tuple(bcast))])

    def perform(self, node, values):
        dtype = node.outputs[0].dtype
        vals = [_cast(v, dtype) for v in values]
        return [_dg().stack(vals, dim=self.axis) if self.stack else _dg().cat(vals, dim=self.axis)]


def concatenate(tensor_list, axis=0):
    x0 = as_tensor_variable(tensor_list[0], "concatenate") if tensor_list else None
    axis = axis % x0.ndim if x0 is not None and x0.ndim else axis
    return Join(axis)(*tensor_list)


def stack(tensors, axis=0):
    x0 = as_tensor_variable(tensors[0], "stack") if tensors else None
    axis = axis % (x0.ndim + 1) if x0 is not None else axis
    return Join(axis, stack=True)(*tensors)


# ---------------------------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------------------------

class _Sym:
    """A placeholder in an index template for the k-th symbolic input."""
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k

    def __repr__(self):
        return f"<{self.k}>"


def _index_template(x, idx):
    """(template, symbolic inputs, result ndim, broadcastable) for ``x[idx]``."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    ins, template, dummy = [], [], []

    def sym(v, role):
        v = as_tensor_variable(v, "Subtensor")
        if np.dtype(v.dtype).kind not in _INT_KINDS + ("?" if role == "index" else ""):
            raise TypeError(f"Subtensor: indices must be integers{' or bools' if role == 'index' else ''}, "
                            f"got {short_type(v)} for {short_type(x)}")
        ins.append(v)
        return _Sym(len(ins) - 1), v

    for it in idx:
        if isinstance(it, slice):
            parts, dparts = [], []
            for p in (it.start, it.stop, it.step):
                if isinstance(p, Variable):
                    s, v = sym(p, "slice")
                    if v.ndim != 0:
                        raise TypeError(f"Subtensor: a slice bound must be a scalar, got {short_type(v)}")
                    parts.append(s)
                    dparts.append(None)
                else:
                    parts.append(p)
                    dparts.append(p)
            template.append(slice(*parts))
            dummy.append(slice(*dparts))
        elif isinstance(it, (Variable, np.ndarray, list)):
            s, v = sym(it, "index")
            template.append(s)
            if v.ndim == 0:
                dummy.append(0)
            elif v.dtype == "bool":
                dummy.append(np.ones((1,) * v.ndim, dtype=bool))
            else:
                dummy.append(np.zeros((1,) * v.ndim, dtype=np.int64))
        elif it is None or it is Ellipsis or isinstance(it, (int, np.integer)):
            template.append(it)
            dummy.append(0 if isinstance(it, (int, np.integer)) else it)
        else:
            raise TypeError(f"Subtensor: cannot index {short_type(x)} with {it!r}")
    try:
        res = np.zeros((1,) * x.ndim)[tuple(dummy)]
    except IndexError as e:
        raise IndexError(f"Subtensor: cannot index {short_type(x)} with {idx!r}: {e}") from None
    # broadcastable: exact for basic indexing, all False with advanced indices
    if any(isinstance(t, _Sym) and ins[t.k].ndim > 0 for t in template) or Ellipsis in template:
        bcast = (False,) * res.ndim
    else:
        bcast, d = [], 0
        for t in template:
            if t is None:
                bcast.append(True)
            elif isinstance(t, slice):
                bcast.append(x.broadcastable[d] if t == slice(None) else False)
                d += 1
            else:
                d += 1
        bcast += list(x.broadcastable[d:])
        bcast = tuple(bcast)
    return tuple(template), ins, bcast


def _real_index(template, values):
    def val(p):
        if not isinstance(p, _Sym):
            return p
        v = values[p.k]
        if v.dtype == np.bool_:
            return v                       # a mask
        return int(v.item()) if v.ndim == 0 else _cast(v, "int64")
    out = []
    for t in template:
        if isinstance(t, slice):
            out.append(slice(val(t.start), val(t.stop), val(t.step)))
        else:
            out.append(val(t))
    return tuple(out)


def _template_str(template):
    parts = []
    for t in template:
        if isinstance(t, slice):
            s = ":".join("" if p is None else ("?" if isinstance(p, _Sym) else str(p))
                         for p in (t.start, t.stop, t.step))
            parts.append(s.rstrip(":") if t.step is None else s)
        elif isinstance(t, _Sym):
            parts.append("?")
        else:
            parts.append(str(t))
    return ", ".join(parts)


class Subtensor(Op):
    def __init__(self, template, bcast):
        self.template, self.bcast = template, bcast

    def reads_values(self, node):
        return any(v.ndim == 0 for v in node.inputs[1:])

    def __str__(self):
        return f"Subtensor{{{_template_str(self.template)}}}"

    def make_node(self, x, *ins):
        return Apply(self, [x, *ins], [TensorType(x.dtype, self.bcast)])

    def perform(self, node, values):
        return [values[0][_real_index(self.template, values[1:])]]


def subtensor(x, idx):
    x = as_tensor_variable(x, "Subtensor")
    template, ins, bcast = _index_template(x, idx)
    return Subtensor(template, bcast)(x, *ins)


class IncSubtensor(Op):
    """``set_subtensor(x[idx], y)`` / ``inc_subtensor(x[idx], y)``: a new tensor, x unchanged."""

    def __init__(self, template, set_instead_of_inc):
        self.template, self.set = template, set_instead_of_inc

    def reads_values(self, node):
        return any(v.ndim == 0 for v in node.inputs[2:])

    def __str__(self):
        return f"{'SetSubtensor' if self.set else 'IncSubtensor'}{{{_template_str(self.template)}}}"

    def make_node(self, x, y, *ins):
        return Apply(self, [x, y, *ins], [x.type])

    def perform(self, node, values):
        x, y = values[0], _cast(values[1], node.outputs[0].dtype)
        idx = _real_index(self.template, values[2:])
        out = x.clone()
        if self.set:
            out[idx] = y
        elif len(idx) == 1 and isinstance(idx[0], Tensor) and idx[0].ndim == 1 and idx[0].dtype != np.bool_:
            # repeated indices accumulate, as np.add.at (Theano's inc_subtensor does the same)
            src = y.expand(tuple(idx[0].shape) + tuple(x.shape[1:])) if tuple(y.shape) != (
                tuple(idx[0].shape) + tuple(x.shape[1:])) else y
            out = _dg().index_add(x, 0, idx[0], src)
        else:
            out[idx] = out[idx] + y
        return [out]


def _inc_or_set(x_sub, y, set_):
    name = "set_subtensor" if set_ else "inc_subtensor"
    if not isinstance(x_sub, Variable) or x_sub.owner is None or not isinstance(x_sub.owner.op, Subtensor):
        raise TypeError(f"{name}: the first argument must be an indexed tensor such as x[2:5], got {x_sub!r}")
    y = as_tensor_variable(y, name)
    if y.ndim > x_sub.ndim:
        raise TypeError(f"{name}: cannot fit {short_type(y)} into {short_type(x_sub)}")
    node = x_sub.owner
    return IncSubtensor(node.op.template, set_)(node.inputs[0], y, *node.inputs[1:])


def set_subtensor(x, y):
    """A copy of the tensor ``x`` indexes, with ``x``'s part replaced by ``y``: ``set_subtensor(a[1:], 0)``."""
    return _inc_or_set(x, y, True)


def inc_subtensor(x, y):
    """A copy of the tensor ``x`` indexes, with ``y`` added to that part (repeated indices add up)."""
    return _inc_or_set(x, y, False)


# ---------------------------------------------------------------------------------------------
# Constructors of variables
# ---------------------------------------------------------------------------------------------

def constant(x, name=None, ndim=None, dtype=None):
    data = np.asarray(x, dtype=dtype)
    v = TensorConstant(TensorType(data.dtype, tuple(s == 1 for s in data.shape)), data, name=name)
    if ndim is not None and v.ndim != ndim:
        raise ValueError(f"constant: expected ndim {ndim}, got {v.ndim}")
    return v


def arange(start, stop=None, step=1, dtype=None):
    """Theano's T.arange for Python or symbolic integer bounds."""
    if stop is None:
        start, stop = 0, start
    template, ins = _symbolic_ints("arange", (start, stop, step))
    return Arange(template, dtype or "int64")(*ins)


class Arange(Op):
    def __init__(self, template, dtype):
        self.template, self.dtype = template, dtype

    def reads_values(self, node):
        return bool(node.inputs)

    def __str__(self):
        return "ARange{" + ",".join("?" if t is None else str(t) for t in self.template) + "}"

    def make_node(self, *ins):
        return Apply(self, list(ins), [TensorType(self.dtype, (False,))])

    def perform(self, node, values):
        a, b, s = _fill_template(self.template, values)
        return [Tensor._make(np.arange(a, b, s, dtype=self.dtype))]


class Alloc(Op):
    """``alloc(value, *shape)``: ``value`` broadcast to ``shape`` (ints or symbolic int scalars)."""

    def __init__(self, template):
        self.template = template

    def __str__(self):
        return "Alloc{" + ",".join("?" if t is None else str(t) for t in self.template) + "}"

    def reads_values(self, node):
        return len(node.inputs) > 1

    def make_node(self, value, *sizes):
        value = as_tensor_variable(value, "alloc")
        if value.ndim > len(self.template):
            raise TypeError(f"alloc: a {short_type(value)} value does not fit {len(self.template)} dimensions")
        return Apply(self, [value, *sizes], [TensorType(value.dtype, tuple(t == 1 for t in self.template))])

    def perform(self, node, values):
        shape = _fill_template(self.template, values[1:])
        v = values[0]
        return [_dg().zeros(shape, dtype=v.dtype) + v]


def alloc(value, *shape):
    """``value`` (a scalar or a tensor that broadcasts) filling a new tensor of ``shape``."""
    template, ins = _symbolic_ints("alloc", shape)
    return Alloc(template)(value, *ins)


def zeros(shape, dtype=None):
    """A tensor of zeros of ``shape`` (ints or symbolic int scalars); dtype defaults to floatX."""
    shape = (shape,) if isinstance(shape, (int, np.integer, Variable)) else tuple(shape)
    return alloc(constant(np.asarray(0, dtype=dtype or config.floatX)), *shape)


def ones(shape, dtype=None):
    shape = (shape,) if isinstance(shape, (int, np.integer, Variable)) else tuple(shape)
    return alloc(constant(np.asarray(1, dtype=dtype or config.floatX)), *shape)


def shape_padleft(x, n_ones=1):
    """``x`` with ``n_ones`` broadcastable dimensions added in front."""
    x = as_tensor_variable(x, "shape_padleft")
    return DimShuffle(("x",) * n_ones + tuple(range(x.ndim)))(x)


def shape_padright(x, n_ones=1):
    x = as_tensor_variable(x, "shape_padright")
    return DimShuffle(tuple(range(x.ndim)) + ("x",) * n_ones)(x)


def unbroadcast(x, *axes):
    """``x`` with the given dimensions no longer marked broadcastable."""
    x = as_tensor_variable(x, "unbroadcast")
    return Rebroadcast({int(a): False for a in axes})(x)
