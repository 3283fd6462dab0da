"""Elementwise ops: arithmetic, unary maths, activations, comparisons.

Backward formulas are written with deepgrad ops on Tensors, so they are themselves differentiable
(double backward). Masks that select where a gradient flows are constants.
"""
from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function, check_same_device
from ..autograd.grad_mode import _enabled as _grad_enabled
from ..tensor import Tensor
from ._util import as_tensor_like, check_float, promote
from .shape import sum_to

__all__ = [
    "add", "sub", "mul", "div", "true_divide", "divide", "multiply", "subtract", "pow",
    "pow_scalar", "floor_divide", "remainder", "neg", "negative", "abs", "exp", "log", "log1p",
    "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "square", "reciprocal", "sign",
    "floor", "ceil", "round", "trunc", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu",
    "clamp", "clip", "maximum", "minimum", "where", "masked_fill", "nonzero", "eq", "ne", "lt",
    "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
    "greater", "less", "greater_equal", "less_equal", "not_equal",
    "logical_not", "isnan", "isinf", "isfinite", "equal", "allclose", "isclose", "clone",
    "prelu",
]


def _const(array):
    return Tensor._make(array)


# ---------------------------------------------------------------------------------------------
# Binary arithmetic
# ---------------------------------------------------------------------------------------------

class Add(Function):
    def forward(self, a, b, alpha=1):
        self.shapes, self.alpha = (a.shape, b.shape), alpha
        return a + b if alpha == 1 else a + alpha * b

    def backward(self, g):
        sa, sb = self.shapes
        gb = g if self.alpha == 1 else g * self.alpha
        return (sum_to(g, sa) if self.needs_input_grad[0] else None,
                sum_to(gb, sb) if self.needs_input_grad[1] else None)


class Sub(Function):
    def forward(self, a, b, alpha=1):
        self.shapes, self.alpha = (a.shape, b.shape), alpha
        return a - b if alpha == 1 else a - alpha * b

    def backward(self, g):
        sa, sb = self.shapes
        return (sum_to(g, sa) if self.needs_input_grad[0] else None,
                sum_to(-g if self.alpha == 1 else g * -self.alpha, sb) if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(*self.inputs)
        return a * b

    def backward(self, g):
        a, b = self.saved_tensors
        return (sum_to(g * b, a.shape) if self.needs_input_grad[0] else None,
                sum_to(g * a, b.shape) if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(*self.inputs)
        return a / b

    def backward(self, g):
        a, b = self.saved_tensors
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(g / b, a.shape)
        if self.needs_input_grad[1]:
            gb = sum_to(-g * a / (b * b), b.shape)
        return ga, gb


class PowScalar(Function):
    """``x ** p`` for a Python number ``p``."""

    def forward(self, x, p):
        self.save_for_backward(self.inputs[0])
        self.p = p
        return x ** p

    def backward(self, g):
        (x,) = self.saved_tensors
        p = self.p
        if p == 0:
            return g * 0.0
        if p == 1:
            return g
        if p == 2:
            return g * (x * 2.0)
        return g * (pow_scalar(x, p - 1) * p)


class Pow(Function):
    """``a ** b`` with both Tensors."""
    save_output = True

    def forward(self, a, b):
        self.save_for_backward(*self.inputs)
        return a ** b

    def backward(self, g):
        a, b = self.saved_tensors
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(g * b * pow(a, b - 1.0), a.shape)
        if self.needs_input_grad[1]:
            # d(a^b)/db = a^b log a; PyTorch defines it as 0 where a == 0 (and b >= 0).
            zero = a.array == 0
            safe_a = where(_const(zero), ones_like_t(a), a)
            gb = sum_to(where(_const(zero), zeros_like_t(g), g * self.output() * log(safe_a)), b.shape)
        return ga, gb


def ones_like_t(t):
    return _const(backend.array_module(t.array).ones_like(t.array))


def zeros_like_t(t):
    return _const(backend.array_module(t.array).zeros_like(t.array))


def add(input, other, alpha=1):
    a, b = promote(input, other, "add")
    return Add.apply(a, b, alpha=alpha)


def sub(input, other, alpha=1):
    a, b = promote(input, other, "sub")
    if a.dtype.kind == "b":
        raise TypeError("sub: subtraction of bool tensors is not supported; use logical_xor")
    return Sub.apply(a, b, alpha=alpha)


def mul(input, other):
    a, b = promote(input, other, "mul")
    return Mul.apply(a, b)


def div(input, other, rounding_mode=None):
    a, b = promote(input, other, "div")
    if rounding_mode is not None:
        if rounding_mode == "floor":
            return floor_divide(a, b)
        if rounding_mode == "trunc":
            return _nodiff(np.trunc(a.array / b.array).astype(np.promote_types(a.dtype, b.dtype)))
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    if a.dtype.kind not in "fV":  # true division of integers gives the default float dtype
        a, b = a.to(backend.get_default_dtype()), b.to(backend.get_default_dtype())
    return Div.apply(a, b)


true_divide = divide = div
multiply = mul
subtract = sub


def pow(input, exponent):
    if isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        if isinstance(exponent, float) and input.dtype.kind not in "fV":
            input = input.to(backend.get_default_dtype())
        return pow_scalar(input, exponent)
    a, b = promote(input, exponent, "pow")
    return Pow.apply(a, b)


def pow_scalar(x, p):
    return PowScalar.apply(x, p=p)


def floor_divide(input, other):
    a, b = promote(input, other, "floor_divide")
    xp = backend.array_module(a.array)
    return _nodiff(xp.floor_divide(a.array, b.array))


def _nodiff(array):
    return Tensor._make(backend.array_module(array).asarray(array))


# ---------------------------------------------------------------------------------------------
# Unary maths
# ---------------------------------------------------------------------------------------------

class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Exp(Function):
    save_output = True

    def forward(self, x):
        return backend.array_module(x).exp(x)

    def backward(self, g):
        return g * self.output()


class Log(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return backend.array_module(x).log(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g / x


class Log1p(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return backend.array_module(x).log1p(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g / (x + 1.0)


class Expm1(Function):
    save_output = True

    def forward(self, x):
        return backend.array_module(x).expm1(x)

    def backward(self, g):
        return g * (self.output() + 1.0)


class Sqrt(Function):
    save_output = True

    def forward(self, x):
        return backend.array_module(x).sqrt(x)

    def backward(self, g):
        return g / (self.output() * 2.0)


class Rsqrt(Function):
    save_output = True

    def forward(self, x):
        return 1.0 / backend.array_module(x).sqrt(x)

    def backward(self, g):
        y = self.output()
        return g * (y * y * y) * -0.5


class Sin(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return backend.array_module(x).sin(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * cos(x)


class Cos(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return backend.array_module(x).cos(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return -(g * sin(x))


class Tanh(Function):
    save_output = True

    def forward(self, x):
        return backend.array_module(x).tanh(x)

    def backward(self, g):
        y = self.output()
        if not _grad_enabled[0] and y.array.ndim and g.array.dtype == y.array.dtype:
            ya = y.array                         # first order: (1 - y^2) g in one new buffer
            xp = backend.array_module(ya)
            out = xp.multiply(ya, ya)
            xp.subtract(1, out, out=out)
            out *= g.array
            return Tensor._make(out)
        return g * (1.0 - y * y)


class Sigmoid(Function):
    save_output = True

    def forward(self, x):
        xp = backend.array_module(x)
        # 1 / (1 + exp(-x)) in one buffer, in place: 4 passes, no temporaries (8x faster than the
        # two-branch formula on 128x1000). exp(-x) overflows to inf for x << 0, which gives the
        # correct limit 1/inf = 0, so the overflow warning is silenced, not the result.
        out = xp.negative(x, out=xp.empty_like(x))
        with np.errstate(over="ignore"):
            xp.exp(out, out=out)
        out += 1
        return xp.reciprocal(out, out=out)

    def backward(self, g):
        y = self.output()
        if not _grad_enabled[0] and y.array.ndim and g.array.dtype == y.array.dtype:
            # first order: (1 - y) * y * g in one new buffer (the Tensor formula below makes
            # three arrays and three nodes' worth of wrappers)
            ya = y.array
            out = backend.array_module(ya).subtract(1, ya)
            out *= ya
            out *= g.array
            return Tensor._make(out)
        return g * (y * (1.0 - y))


class Abs(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return backend.array_module(x).abs(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * _const(backend.array_module(x.array).sign(x.array))


def neg(input):
    return Neg.apply(input)


negative = neg


def abs(input):
    return Abs.apply(input)


def _float_input(x, name):
    """Integer inputs of transcendental ops are computed in the default float dtype, as in PyTorch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind not in "fV":
        return x.to(backend.get_default_dtype())
    return x


def exp(input):
    return Exp.apply(_float_input(input, "exp"))


def log(input):
    return Log.apply(_float_input(input, "log"))


def log1p(input):
    return Log1p.apply(_float_input(input, "log1p"))


def expm1(input):
    return Expm1.apply(_float_input(input, "expm1"))


def sqrt(input):
    return Sqrt.apply(_float_input(input, "sqrt"))


def rsqrt(input):
    return Rsqrt.apply(_float_input(input, "rsqrt"))


def sin(input):
    return Sin.apply(_float_input(input, "sin"))


def cos(input):
    return Cos.apply(_float_input(input, "cos"))


def tanh(input):
    return Tanh.apply(_float_input(input, "tanh"))


def sigmoid(input):
    return Sigmoid.apply(_float_input(input, "sigmoid"))


def square(input):
    return pow_scalar(input, 2)


def reciprocal(input):
    return div(1.0, _float_input(input, "reciprocal"))


def sign(input):
    """Sign of each element; its gradient is zero everywhere (as in PyTorch)."""
    out = Tensor._make(backend.array_module(input.array).sign(input.array))
    if input.requires_grad:
        return input * 0.0 + out  # keeps the graph so backward yields zeros, not an error
    return out


def floor(input):
    return _nodiff(backend.array_module(input.array).floor(input.array))


def ceil(input):
    return _nodiff(backend.array_module(input.array).ceil(input.array))


def round(input, decimals=0):
    return _nodiff(backend.array_module(input.array).round(input.array, decimals))


def trunc(input):
    return _nodiff(backend.array_module(input.array).trunc(input.array))


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

class Relu(Function):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask if x.dtype.kind in "fV" else backend.array_module(x).maximum(x, 0)

    def backward(self, g):
        # NOTE: the gradient at exactly 0 is 0, as in PyTorch.
        ga, m = g.array, self.mask
        if (not _grad_enabled[0] and type(ga) is np.ndarray and ga.dtype.kind == "f"
                and ga.shape == m.shape):
            # first order: one multiply by a uint8 view of the mask (float * bool is slower)
            # into a buffer laid out as the activation, so that a gradient arriving in another
            # memory order (NCHW from a pooling or flatten above channels-last activations)
            # leaves in the activation's order: the adds and convolutions below then run on
            # matching layouts (in ResNet-20 a mixed-layout residual gradient add took ~8 ms)
            return Tensor._make(np.multiply(ga, m.view(np.uint8), out=np.empty_like(m, dtype=ga.dtype)))
        return g * _const(m.astype(g.array.dtype))


class ReluInplace(Relu):
    """``relu_``: the same values and gradient as :class:`Relu`, written into the input's own
    array when it is a writable floating array (one pass; the backward keeps only the mask, never
    the input, so the old value needs no copy). Used through ``Tensor._inplace(..., alias=True)``,
    which rebases the tensor onto this node and bumps its version."""

    def forward(self, x):
        if x.dtype.char not in "fd" or not getattr(x.flags, "writeable", True):
            return super().forward(x)
        self.mask = x > 0
        # float * uint8 view of the mask: the same products as ``x * mask`` (NaN * 0 stays NaN)
        m = self.mask.view(np.uint8) if type(x) is np.ndarray else self.mask
        return backend.array_module(x).multiply(x, m, out=x)


class LeakyRelu(Function):
    def forward(self, x, negative_slope=0.01):
        xp = backend.array_module(x)
        self.slope = xp.where(x > 0, xp.asarray(1, x.dtype), xp.asarray(negative_slope, x.dtype))
        return x * self.slope

    def backward(self, g):
        return g * _const(self.slope)


class Elu(Function):
    def forward(self, x, alpha=1.0):
        self.save_for_backward(self.inputs[0])
        self.alpha = alpha
        xp = backend.array_module(x)
        return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved_tensors
        pos = _const(x.array > 0)
        return where(pos, g, g * exp(x) * self.alpha)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _erf(xp, x):
    """erf in NumPy alone (no SciPy): Numerical Recipes' Chebyshev fit of erfc, fractional error
    below 1.2e-7 everywhere."""
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * xp.exp(poly)
    return xp.where(x >= 0, 1.0 - erfc, erfc - 1.0)


class Gelu(Function):
    def forward(self, x, approximate="none"):
        self.save_for_backward(self.inputs[0])
        self.approximate = approximate
        xp = backend.array_module(x)
        if approximate == "tanh":
            return (0.5 * x * (1.0 + xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))).astype(x.dtype, copy=False)
        return (0.5 * x * (1.0 + _erf(xp, x / math.sqrt(2.0)))).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved_tensors
        if self.approximate == "tanh":
            inner = (x + x * x * x * 0.044715) * _SQRT_2_OVER_PI
            t = tanh(inner)
            dinner = (1.0 + x * x * (3 * 0.044715)) * _SQRT_2_OVER_PI
            return g * ((1.0 + t) * 0.5 + x * 0.5 * (1.0 - t * t) * dinner)
        cdf = _GeluCdf.apply(x)
        pdf = exp(x * x * -0.5) * _INV_SQRT_2PI
        return g * (cdf + x * pdf)


class _GeluCdf(Function):
    """Phi(x), the standard normal CDF, as a differentiable op (its derivative is the pdf)."""

    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        xp = backend.array_module(x)
        return (0.5 * (1.0 + _erf(xp, x / math.sqrt(2.0)))).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * exp(x * x * -0.5) * _INV_SQRT_2PI


class Softplus(Function):
    def forward(self, x, beta=1.0, threshold=20.0):
        self.save_for_backward(self.inputs[0])
        self.beta, self.threshold = beta, threshold
        xp = backend.array_module(x)
        bx = beta * x
        soft = (xp.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)
        return xp.where(bx > threshold, x, soft)

    def backward(self, g):
        (x,) = self.saved_tensors
        linear = _const(x.array * self.beta > self.threshold)
        return where(linear, g, g * sigmoid(x * self.beta))


def relu(input):
    return Relu.apply(input)


def relu_(input):
    """``input.relu_()``: float32/float64 computed in input's own array (no copy of the old value,
    no write-back pass; the layout is kept); other dtypes (float16/bfloat16 with their own ReLU
    path, integers) through the general in-place machinery as before."""
    if input.array.dtype.char in "fd":
        return input._inplace("relu_", ReluInplace.apply, alias=True)
    return input._inplace("relu_", relu)


def leaky_relu(input, negative_slope=0.01):
    check_float(input, "leaky_relu")
    return LeakyRelu.apply(input, negative_slope=negative_slope)


def elu(input, alpha=1.0):
    check_float(input, "elu")
    return Elu.apply(input, alpha=alpha)


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    check_float(input, "gelu")
    return Gelu.apply(input, approximate=approximate)


def softplus(input, beta=1.0, threshold=20.0):
    check_float(input, "softplus")
    return Softplus.apply(input, beta=beta, threshold=threshold)


def silu(input):
    return input * sigmoid(input)


# ---------------------------------------------------------------------------------------------
# Clamp, maximum/minimum, where
# ---------------------------------------------------------------------------------------------

class Clamp(Function):
    def forward(self, x, min=None, max=None):
        xp = backend.array_module(x)
        self.mask = xp.ones(x.shape, dtype=bool)
        if min is not None:
            self.mask &= x >= min
        if max is not None:
            self.mask &= x <= max
        return xp.clip(x, min, max).astype(x.dtype, copy=False)

    def backward(self, g):
        return g * _const(self.mask.astype(g.array.dtype))


def clamp(input, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min if isinstance(min, Tensor) else as_tensor_like(min, input))
        if max is not None:
            out = minimum(out, max if isinstance(max, Tensor) else as_tensor_like(max, input))
        return out
    return Clamp.apply(input, min=min, max=max)


clip = clamp


class _Extremum(Function):
    """maximum/minimum: the gradient goes to the larger (smaller) input; ties split it evenly."""
    pick = None

    def forward(self, a, b):
        xp = backend.array_module(a)
        self.shapes = (a.shape, b.shape)
        first = a > b if self.pick == "max" else a < b
        tie = a == b
        dt = np.result_type(a.dtype, b.dtype)
        self.wa = first.astype(dt) + tie.astype(dt) * 0.5 if dt.kind in "fV" else None
        return xp.maximum(a, b) if self.pick == "max" else xp.minimum(a, b)

    def backward(self, g):
        sa, sb = self.shapes
        wa = _const(self.wa)
        return (sum_to(g * wa, sa) if self.needs_input_grad[0] else None,
                sum_to(g * (1.0 - wa), sb) if self.needs_input_grad[1] else None)


class Maximum(_Extremum):
    pick = "max"


class Minimum(_Extremum):
    pick = "min"


def maximum(input, other):
    a, b = promote(input, other, "maximum")
    return Maximum.apply(a, b)


def minimum(input, other):
    a, b = promote(input, other, "minimum")
    return Minimum.apply(a, b)


class Where(Function):
    def forward(self, a, b, cond=None):
        self.cond = cond
        self.shapes = (a.shape, b.shape)
        return backend.array_module(a).where(cond, a, b)

    def backward(self, g):
        sa, sb = self.shapes
        zero = zeros_like_t(g)
        return (sum_to(Where.apply(g, zero, cond=self.cond), sa) if self.needs_input_grad[0] else None,
                sum_to(Where.apply(zero, g, cond=self.cond), sb) if self.needs_input_grad[1] else None)


def where(condition, input=None, other=None):
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if isinstance(condition, Tensor):
        cond = condition.array
    else:               # host data, or a raw array of either device (internal callers)
        cond = condition if backend.array_module(condition) is not np else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where: expected condition to be a boolean tensor, got dtype {cond.dtype} "
                           f"(shape {tuple(cond.shape)})")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input, other = _scalar_pair(input, other, backend.array_module(cond))
    a, b = promote(input, other, "where")
    if isinstance(condition, Tensor):
        check_same_device("where", (condition, a, b))
    like = a.array if backend.device_of(a.array).type != "cpu" else b.array   # a device array, if any
    if type(cond) is not type(like):     # host data, or a 0-d CPU tensor (a number, as in PyTorch)
        cond = backend.to_device(backend.to_numpy(cond), backend.device_of(like))
    try:
        np.broadcast_shapes(cond.shape, a.array.shape, b.array.shape)
    except ValueError:
        raise RuntimeError(f"where: condition {tuple(cond.shape)}, input {tuple(a.shape)} and other "
                           f"{tuple(b.shape)} are not broadcastable") from None
    return Where.apply(a, b, cond=cond)


def _scalar_pair(x, y, xp):
    """Two Python scalars as 0-d Tensors of PyTorch's result type: bool with bool stays bool,
    ints give int64, any float gives the default float dtype."""
    vals = (x, y)
    if builtins.all(isinstance(v, (bool, np.bool_)) for v in vals):
        dt = np.dtype(np.bool_)
    elif builtins.all(isinstance(v, (int, np.integer, bool, np.bool_)) for v in vals):
        dt = np.dtype(np.int64)
    elif builtins.any(isinstance(v, complex) for v in vals):
        raise NotImplementedError("where: complex scalars are not supported by deepgrad")
    else:
        dt = backend.get_default_dtype()
    return tuple(Tensor._make(xp.asarray(v, dtype=dt)) for v in vals)


def masked_fill(input, mask, value):
    if isinstance(mask, Tensor):
        check_same_device("masked_fill", (input, mask))
        m = mask.array
    else:
        m = backend.asarray_on(mask, input.array)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}")
    v = value if isinstance(value, Tensor) else as_tensor_like(value, input)
    if v.ndim != 0:
        raise RuntimeError(f"masked_fill: value must be a 0-dim tensor or a number, got shape {tuple(v.shape)}")
    out = Where.apply(v.to(input.dtype) if v.dtype != input.dtype else v, input, cond=backend.array_module(m).broadcast_to(m, np.broadcast_shapes(m.shape, input.shape)))
    if out.shape != input.shape:
        raise RuntimeError(f"masked_fill: mask of shape {tuple(m.shape)} does not broadcast to the input's shape {tuple(input.shape)}")
    return out


def nonzero(input, as_tuple=False):
    idx = backend.array_module(input.array).nonzero(input.array)
    if as_tuple:
        return tuple(_nodiff(i.astype(np.int64)) for i in idx)
    return _nodiff(backend.array_module(input.array).stack(idx, axis=1).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Comparisons, logic, tests (no gradient)
# ---------------------------------------------------------------------------------------------

def _compare(ufunc_name):
    def op(input, other):
        a, b = promote(input, other, ufunc_name)
        xp = backend.array_module(a.array)
        try:
            return _nodiff(getattr(xp, ufunc_name)(a.array, b.array))
        except ValueError:
            raise RuntimeError(f"{ufunc_name}: shapes {tuple(a.shape)} and {tuple(b.shape)} are not broadcastable") from None
    op.__name__ = ufunc_name
    return op


eq = _compare("equal")
ne = _compare("not_equal")
lt = _compare("less")
le = _compare("less_equal")
gt = _compare("greater")
ge = _compare("greater_equal")
logical_and = _compare("logical_and")
logical_or = _compare("logical_or")
logical_xor = _compare("logical_xor")
bitwise_and = _compare("bitwise_and")
bitwise_or = _compare("bitwise_or")
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def logical_not(input):
    return _nodiff(backend.array_module(input.array).logical_not(input.array))


def isnan(input):
    return _nodiff(backend.array_module(input.array).isnan(input.array))


def isinf(input):
    return _nodiff(backend.array_module(input.array).isinf(input.array))


def isfinite(input):
    return _nodiff(backend.array_module(input.array).isfinite(input.array))


def equal(input, other):
    """True when both tensors have the same shape and elements (like ``torch.equal``)."""
    return input.shape == other.shape and bool((input.array == other.array).all())


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(backend.array_module(input.array).allclose(input.array, other.array, rtol, atol, equal_nan))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _nodiff(backend.array_module(input.array).isclose(input.array, other.array, rtol, atol, equal_nan))


# ---------------------------------------------------------------------------------------------
# Copies and conversions
# ---------------------------------------------------------------------------------------------

class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


class Convert(Function):
    """A change of dtype and/or device; the gradient goes back in the input's dtype and device."""

    def forward(self, x, dtype=None, device=None, non_blocking=False):
        self.src = (x.dtype, backend.device_of(x))
        out = x
        if device is not None:
            out = backend.to_device(out, device, non_blocking=non_blocking)
        if dtype is not None and out.dtype != dtype:
            out = out.astype(dtype)
        if out is x:
            out = x.copy()
        return out

    def backward(self, g):
        dt, dev = self.src
        return Convert.apply(g, dtype=dt, device=dev)


def clone(input):
    return Clone.apply(input)


def to_dtype_device(t, dtype, device, copy=False, non_blocking=False):
    same_dtype = dtype is None or dtype == t.array.dtype
    same_device = device is None or backend.device(device) == t.device
    if same_dtype and same_device and not copy:
        return t
    if dtype is not None and dtype.kind not in "fcV" and t.requires_grad:
        # Casting to an integer type leaves the graph (such tensors cannot require grad).
        return _nodiff(t.array.astype(dtype))
    if non_blocking and not same_device:
        return Convert.apply(t, dtype=None if same_dtype else dtype, device=device, non_blocking=True)
    return Convert.apply(t, dtype=None if same_dtype else dtype, device=None if same_device else device)


class PReluFn(Function):
    array_backward = True

    def forward(self, x, w):
        wb = w
        if x.ndim >= 2 and w.size > 1:
            wb = w.reshape((1, w.size) + (1,) * (x.ndim - 2))
        elif w.size == 1:
            wb = w.reshape(())
        self.x, self.wb, self.wshape = x, wb, w.shape
        pos = x > 0
        self.pos = pos
        if self._record:                 # for graph_backward (create_graph=True) only
            self.save_for_backward(*self.inputs)
        return backend.array_module(x).where(pos, x, wb * x).astype(x.dtype, copy=False)

    def graph_backward(self, g):
        """create_graph=True: differentiate ``where(x > 0, x, w * x)`` composed of ordinary ops."""
        from ._graph import reference_grads
        from ..tensor import Tensor as _T
        pos = _T._make(self.pos)

        def ref(x, w):
            return where(pos, x, x * w.reshape(self.wb.shape))
        return reference_grads(ref, self.saved_tensors, [g], self.needs_input_grad)

    def backward(self, g):
        xp = backend.array_module(g)
        pos, x = self.pos, self.x
        gx = xp.where(pos, g, g * self.wb).astype(g.dtype, copy=False) if self.needs_input_grad[0] else None
        gw = None
        if self.needs_input_grad[1]:
            t = xp.where(pos, 0, g * x)
            if len(self.wshape) and self.wshape[0] > 1:
                axes = (0,) + tuple(range(2, x.ndim)) if x.ndim >= 2 else ()
                gw = t.sum(axis=axes).reshape(self.wshape)
            else:
                gw = xp.asarray(t.sum()).reshape(self.wshape)
            gw = gw.astype(g.dtype, copy=False)
        return gx, gw


def prelu(input, weight):
    if weight.numel() != 1:
        C = input.shape[1] if input.ndim >= 2 else (input.shape[0] if input.ndim == 1 else 1)
        if weight.numel() != C:
            raise RuntimeError(f"prelu: mismatch of parameter numbers and input channel size: the weight has "
                               f"{weight.numel()} entries, the input of shape {tuple(input.shape)} has {C} channels")
    return PReluFn.apply(input, weight)


# ---------------------------------------------------------------------------------------------
# Special functions and blends: erf, erfc, erfinv, log2, log10, frac, atan2, lerp, addcmul,
# addcdiv, nan_to_num
# ---------------------------------------------------------------------------------------------

__all__ += ["erf", "erfc", "erfinv", "log2", "log10", "frac", "atan2", "arctan2", "lerp", "addcmul",
            "addcdiv", "nan_to_num"]

_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2.0 / _SQRT_PI


def _exp_minus_square(xp, a):
    """exp(-a*a) without the rounding error of forming a*a for large a: a = hi + lo with hi on a
    1/256 grid, so hi*hi is exact and exp(-a^2) = exp(-hi^2) * exp(-(a-hi)(a+hi))."""
    hi = xp.round(a * 256.0) / 256.0
    return xp.exp(-hi * hi) * xp.exp(-(a - hi) * (a + hi))


def _erf_erfc64(xp, x):
    """(erf(x), erfc(x)) for a float64 array, both to a few ulp (no SciPy).

    |x| < 1.5: erf(a) = 2/sqrt(pi) exp(-a^2) sum_n 2^n a^(2n+1) / (1*3*...*(2n+1)), a series of
    positive terms (no cancellation; 60 terms reach double precision). |x| >= 1.5: the continued
    fraction erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))) summed
    backwards from its 100th term. erfc(-a) = 2 - erfc(a), erf is odd."""
    a = xp.abs(x)
    erf_a = xp.empty_like(a)
    erfc_a = xp.empty_like(a)
    with np.errstate(all="ignore"):
        small = a < 1.5
        s = a[small]
        s2 = s * s
        term, acc = s.copy(), s.copy()
        for n in range(1, 60):
            term = term * (2.0 * s2 / (2 * n + 1))
            acc = acc + term
        e = _TWO_OVER_SQRT_PI * xp.exp(-s2) * acc
        erf_a[small], erfc_a[small] = e, 1.0 - e
        big = ~small            # includes nan (a < 1.5 is False): nan flows through the fraction
        b = a[big]
        t = b.copy()
        for k in range(100, 0, -1):
            t = b + (0.5 * k) / t
        c = _exp_minus_square(xp, b) / _SQRT_PI / t
        c = xp.where(b == np.inf, 0.0, c)
        erfc_a[big], erf_a[big] = c, 1.0 - c
    neg = x < 0
    return xp.where(neg, -erf_a, erf_a), xp.where(neg, 2.0 - erfc_a, erfc_a)


def _erfinv64(xp, y):
    """erfinv of a float64 array: a closed-form first guess (good to ~2e-3) refined by four
    Newton steps on erf (on erfc where |y| > 0.5, whose residual 1-|y| is exact there)."""
    a = xp.abs(y)
    with np.errstate(all="ignore"):
        w = xp.log((1.0 - a) * (1.0 + a))
        k = 0.147
        c = 2.0 / (math.pi * k) + 0.5 * w
        x = xp.sqrt(xp.sqrt(c * c - w / k) - c)
        x = xp.where(a < 1, x, 1.0)         # keep the iteration finite; fixed up below
        tail = a > 0.5
        r = 1.0 - a
        for _ in range(4):
            e, ec = _erf_erfc64(xp, x)
            f = xp.where(tail, r - ec, e - a)
            x = x - f / (_TWO_OVER_SQRT_PI * _exp_minus_square(xp, x))
        x = xp.where(a == 1, np.inf, x)
        x = xp.where((a > 1) | xp.isnan(a), np.nan, x)
    return xp.copysign(x, y)


def _in64(x):
    return x if x.dtype == np.float64 else x.astype(np.float64)


class Erf(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return _erf_erfc64(backend.array_module(x), _in64(x))[0].astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * (exp(-(x * x)) * _TWO_OVER_SQRT_PI)


class Erfc(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return _erf_erfc64(backend.array_module(x), _in64(x))[1].astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * (exp(-(x * x)) * -_TWO_OVER_SQRT_PI)


class Erfinv(Function):
    save_output = True

    def forward(self, x):
        return _erfinv64(backend.array_module(x), _in64(x)).astype(x.dtype, copy=False)

    def backward(self, g):
        y = self.output()
        return g * (exp(y * y) * (_SQRT_PI / 2.0))


def erf(input):
    return Erf.apply(_float_input(input, "erf"))


def erfc(input):
    return Erfc.apply(_float_input(input, "erfc"))


def erfinv(input):
    return Erfinv.apply(_float_input(input, "erfinv"))


class Log2(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return backend.array_module(x).log2(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g / (x * math.log(2.0))


class Log10(Function):
    def forward(self, x):
        self.save_for_backward(self.inputs[0])
        return backend.array_module(x).log10(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g / (x * math.log(10.0))


def log2(input):
    return Log2.apply(_float_input(input, "log2"))


def log10(input):
    return Log10.apply(_float_input(input, "log10"))


class Frac(Function):
    def forward(self, x):
        return x - backend.array_module(x).trunc(x)

    def backward(self, g):
        return g


def frac(input):
    """``input - trunc(input)`` (keeps the sign); its gradient is 1."""
    if not isinstance(input, Tensor):
        raise TypeError(f"frac: expected a Tensor, got {type(input).__name__}")
    if input.array.dtype.kind not in "fV":
        raise NotImplementedError(f"frac: not implemented for dtype {input.dtype} (PyTorch's frac is "
                                  f"defined for floating point tensors only); use input.float()")
    return Frac.apply(input)


class Atan2(Function):
    def forward(self, a, b):
        self.save_for_backward(*self.inputs)
        return backend.array_module(a).arctan2(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        r = g / (a * a + b * b)
        return (sum_to(r * b, a.shape) if self.needs_input_grad[0] else None,
                sum_to(-(r * a), b.shape) if self.needs_input_grad[1] else None)


def atan2(input, other):
    """The angle of the point (other, input): ``arctan(input / other)`` in the right quadrant."""
    a, b = promote(input, other, "atan2")
    if a.array.dtype.kind not in "fV":
        a, b = a.to(backend.get_default_dtype()), b.to(backend.get_default_dtype())
    return Atan2.apply(a, b)


arctan2 = atan2


def _shape3(opname, *ts):
    shapes = [tuple(t.shape) for t in ts if isinstance(t, Tensor)]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise RuntimeError(f"{opname}: shapes {', '.join(map(str, shapes))} are not broadcastable") from None


def lerp(input, end, weight):
    """``input + weight * (end - input)`` (computed from the nearer end, as PyTorch does)."""
    if not isinstance(input, Tensor) or not isinstance(end, Tensor):
        raise TypeError("lerp: input and end must be Tensors")
    if input.array.dtype != end.array.dtype:
        raise RuntimeError(f"lerp: expected dtype {input.dtype} for `end` but got dtype {end.dtype}")
    if input.array.dtype.kind not in "fV":
        raise NotImplementedError(f"lerp: not implemented for dtype {input.dtype} (PyTorch defines lerp "
                                  f"for floating point tensors only); use input.float()")
    if isinstance(weight, Tensor):
        if weight.array.dtype != input.array.dtype:
            if weight.ndim != 0:
                raise RuntimeError(f"lerp: expected dtype {input.dtype} for `weight` but got dtype "
                                   f"{weight.dtype}")
            weight = weight.to(input.array.dtype)
        _shape3("lerp", input, end, weight)
        near = _const(backend.array_module(weight.array).abs(weight.array) < 0.5)
    else:
        _shape3("lerp", input, end)
        near = None
    d = end - input
    if near is None:
        return input + d * weight if builtins.abs(weight) < 0.5 else end - d * (1.0 - weight)
    return where(near, input + d * weight, end - d * (1.0 - weight))


def _check_value(value, ts, opname):
    if isinstance(value, float) and all(t.array.dtype.kind in "biu" for t in ts if isinstance(t, Tensor)):
        raise RuntimeError(f"{opname}: for integral input tensors, argument value must not be a "
                           f"floating point number")


def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2`` (with broadcasting and PyTorch's type promotion)."""
    _shape3("addcmul", input, tensor1, tensor2)
    _check_value(value, (input, tensor1, tensor2), "addcmul")
    prod = mul(tensor1, tensor2)
    if value != 1:
        prod = prod * value
    out = add(input, prod)
    return out


def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2`` (integer tensor1 and tensor2 are an error, as in
    PyTorch)."""
    if isinstance(tensor1, Tensor) and isinstance(tensor2, Tensor) and \
            tensor1.array.dtype.kind in "biu" and tensor2.array.dtype.kind in "biu":
        raise RuntimeError(f"addcdiv: integer division with addcdiv is not supported (tensor1 dtype "
                           f"{tensor1.dtype}, tensor2 dtype {tensor2.dtype}); convert them with .float()")
    _shape3("addcdiv", input, tensor1, tensor2)
    q = div(tensor1, tensor2)
    if value != 1:
        q = q * value
    return add(input, q)


class NanToNum(Function):
    def forward(self, x, nan=0.0, posinf=None, neginf=None):
        xp = backend.array_module(x)
        self.finite = xp.isfinite(x)
        return xp.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        return where(_const(self.finite), g, zeros_like_t(g))


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN -> ``nan``, +inf -> ``posinf`` (default: the dtype's largest finite value), -inf ->
    ``neginf`` (default: the most negative). The gradient is zero at replaced elements."""
    if not isinstance(input, Tensor):
        raise TypeError(f"nan_to_num: expected a Tensor, got {type(input).__name__}")
    if input.array.dtype.kind not in "fV":
        return clone(input)
    return NanToNum.apply(input, nan=nan, posinf=posinf, neginf=neginf)


# ---------------------------------------------------------------------------------------------
# Trigonometric and hyperbolic functions, exp2, sinc; the gamma family (lgamma, digamma,
# polygamma, mvlgamma); binary blends (copysign, hypot, logaddexp, xlogy, fmod, remainder,
# float_power, ldexp, fmax/fmin); sign tests and bit operations (no gradient). Integer inputs of
# the transcendental ones are computed in the default float dtype, as in PyTorch.
# ---------------------------------------------------------------------------------------------

__all__ += ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin",
            "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "exp2", "deg2rad", "rad2deg",
            "sinc", "lgamma", "digamma", "polygamma", "mvlgamma", "logit", "sgn", "fix",
            "absolute", "positive", "copysign", "hypot", "logaddexp", "logaddexp2", "xlogy", "fmod",
            "float_power", "ldexp", "fmax", "fmin", "clamp_min", "clamp_max", "heaviside",
            "signbit", "isposinf", "isneginf", "isreal", "frexp", "nextafter", "bitwise_xor",
            "bitwise_not", "bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm", "real",
            "imag", "is_complex", "is_floating_point", "is_nonzero", "is_same_size", "is_signed"]


def _unary(name, forward, backward, save="input"):
    """A unary op class: ``forward(xp, x)`` on arrays; ``backward(g, x_or_y)`` in deepgrad ops on
    the saved input (``save="input"``) or output (``save="output"``), so it differentiates again."""
    def fwd(self, x):
        if save == "input":
            self.save_for_backward(self.inputs[0])
        with np.errstate(all="ignore"):
            return forward(backend.array_module(x), x)

    def bwd(self, g):
        v = self.saved_tensors[0] if save == "input" else self.output()
        return backward(g, v)

    cls = type(name, (Function,), {"forward": fwd, "backward": bwd, "save_output": save == "output"})
    cls.__module__ = __name__
    return cls


Tan = _unary("Tan", lambda xp, x: xp.tan(x), lambda g, y: g * (y * y + 1.0), save="output")
Asin = _unary("Asin", lambda xp, x: xp.arcsin(x), lambda g, x: g * rsqrt(1.0 - x * x))
Acos = _unary("Acos", lambda xp, x: xp.arccos(x), lambda g, x: -(g * rsqrt(1.0 - x * x)))
Atan = _unary("Atan", lambda xp, x: xp.arctan(x), lambda g, x: g / (x * x + 1.0))
Sinh = _unary("Sinh", lambda xp, x: xp.sinh(x), lambda g, x: g * cosh(x))
Cosh = _unary("Cosh", lambda xp, x: xp.cosh(x), lambda g, x: g * sinh(x))
Asinh = _unary("Asinh", lambda xp, x: xp.arcsinh(x), lambda g, x: g * rsqrt(x * x + 1.0))
Acosh = _unary("Acosh", lambda xp, x: xp.arccosh(x), lambda g, x: g * rsqrt((x - 1.0) * (x + 1.0)))
Atanh = _unary("Atanh", lambda xp, x: xp.arctanh(x), lambda g, x: g / (1.0 - x * x))
Exp2 = _unary("Exp2", lambda xp, x: xp.exp2(x), lambda g, y: g * y * math.log(2.0), save="output")


def _sinc_grad(g, x):
    # d/dx sin(pi x)/(pi x) = (cos(pi x) - sinc(x)) / x, and 0 at x = 0
    zero = _const(x.array == 0)
    safe = x + zero.to(x.dtype)
    return g * ((cos(safe * math.pi) - sinc(safe)) / safe) * _const(x.array != 0).to(x.dtype)


Sinc = _unary("Sinc", lambda xp, x: xp.sinc(x), _sinc_grad)


def tan(input):
    return Tan.apply(_float_input(input, "tan"))


def asin(input):
    return Asin.apply(_float_input(input, "asin"))


def acos(input):
    return Acos.apply(_float_input(input, "acos"))


def atan(input):
    return Atan.apply(_float_input(input, "atan"))


def sinh(input):
    return Sinh.apply(_float_input(input, "sinh"))


def cosh(input):
    return Cosh.apply(_float_input(input, "cosh"))


def asinh(input):
    return Asinh.apply(_float_input(input, "asinh"))


def acosh(input):
    return Acosh.apply(_float_input(input, "acosh"))


def atanh(input):
    return Atanh.apply(_float_input(input, "atanh"))


arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def exp2(input):
    return Exp2.apply(_float_input(input, "exp2"))


def sinc(input):
    return Sinc.apply(_float_input(input, "sinc"))


def deg2rad(input):
    return _float_input(input, "deg2rad") * (math.pi / 180.0)


def rad2deg(input):
    return _float_input(input, "rad2deg") * (180.0 / math.pi)


# ---- the gamma family: float64-accurate on arrays; each derivative is the next function -------
# Each shifts its argument up to x >= 10 with the recurrence (Gamma(x+1) = x Gamma(x) and its
# derivatives) and sums the asymptotic (Stirling) series there; lgamma and digamma use the
# reflection formula below 1/2. About 1e-14 relative in float64.

_GAMMA_SHIFT = 10.0
_B2K = [1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6]   # Bernoulli numbers B_2k


def _lgamma_pos(xp, x):
    acc = xp.zeros_like(x)
    x = x.copy()
    for _ in range(int(_GAMMA_SHIFT)):
        m = x < _GAMMA_SHIFT
        if not m.any():
            break
        acc = acc - xp.where(m, xp.log(xp.where(m, x, 1.0)), 0.0)
        x = xp.where(m, x + 1, x)
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv * (1 / 12 + inv2 * (-1 / 360 + inv2 * (1 / 1260 + inv2 * (-1 / 1680 + inv2 * (
        1 / 1188 + inv2 * (-691 / 360360 + inv2 * (1 / 156)))))))
    return acc + (x - 0.5) * xp.log(x) - x + 0.5 * math.log(2 * math.pi) + series


def lgamma_array(a):
    xp = backend.array_module(a)
    x = a.astype(np.float64)
    with np.errstate(all="ignore"):
        neg = x < 0.5
        out = _lgamma_pos(xp, xp.where(neg, 1 - x, x))
        refl = math.log(math.pi) - xp.log(xp.abs(xp.sin(math.pi * x))) - out
        out = xp.where(neg, refl, out)
        out = xp.where((x <= 0) & (x == xp.floor(x)), xp.inf, out)
        out = xp.where(x == -np.inf, xp.inf, out)
    return out.astype(a.dtype, copy=False)


def _digamma_pos(xp, x):
    acc = xp.zeros_like(x)
    x = x.copy()
    for _ in range(int(_GAMMA_SHIFT)):
        m = x < _GAMMA_SHIFT
        if not m.any():
            break
        acc = acc - xp.where(m, 1.0 / xp.where(m, x, 1.0), 0.0)
        x = xp.where(m, x + 1, x)
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 * (
        1 / 132 - inv2 * (691 / 32760 - inv2 / 12))))))
    return acc + xp.log(x) - 0.5 / x - series


def digamma_array(a):
    xp = backend.array_module(a)
    x = a.astype(np.float64)
    with np.errstate(all="ignore"):
        neg = x < 0.5
        out = _digamma_pos(xp, xp.where(neg, 1 - x, x))
        out = xp.where(neg, out - math.pi / xp.tan(math.pi * x), out)
        out = xp.where((x < 0) & (x == xp.floor(x)), xp.nan, out)
        out = xp.where(x == 0, -xp.inf, out)
    return out.astype(a.dtype, copy=False)


def polygamma_array(n, a):
    """The n-th derivative of digamma (n >= 1); the upward shift is valid for negative non-integer
    x too; at the poles (non-positive integers) +-inf as PyTorch."""
    if n == 0:
        return digamma_array(a)
    xp = backend.array_module(a)
    x = a.astype(np.float64).copy()
    sign = (-1.0) ** (n + 1)
    nfact = math.factorial(n)
    acc = xp.zeros_like(x)
    shift = _GAMMA_SHIFT + 2 * n
    with np.errstate(all="ignore"):
        finite = x[xp.isfinite(x)]
        lowest = float(finite.min()) if finite.size else 0.0
        for _ in range(int(shift) + builtins.min(builtins.max(int(math.ceil(-lowest)), 0), 100000)):
            m = x < shift
            if not m.any():
                break
            acc = acc + xp.where(m, sign * nfact / xp.where(m, x, 1.0) ** (n + 1), 0.0)
            x = xp.where(m, x + 1, x)
        tail = math.factorial(n - 1) / x ** n + nfact / (2 * x ** (n + 1))
        for k, b in enumerate(_B2K, start=1):
            tail = tail + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / x ** (2 * k + n)
        out = acc + sign * tail
        out = xp.where((a <= 0) & (a == xp.floor(a)), sign * xp.inf, out)
    return out.astype(a.dtype, copy=False)


class Lgamma(Function):
    def forward(self, a):
        self.save_for_backward(*self.inputs)
        return lgamma_array(a)

    def backward(self, g):
        x, = self.saved_tensors
        return g * digamma(x)


class Digamma(Function):
    def forward(self, a):
        self.save_for_backward(*self.inputs)
        return digamma_array(a)

    def backward(self, g):
        x, = self.saved_tensors
        return g * polygamma(1, x)


class Polygamma(Function):
    def forward(self, a, n=1):
        self.save_for_backward(*self.inputs)
        self.n = n
        return polygamma_array(n, a)

    def backward(self, g):
        x, = self.saved_tensors
        return g * polygamma(self.n + 1, x)


def lgamma(input):
    return Lgamma.apply(_float_input(input, "lgamma"))


def digamma(input):
    return Digamma.apply(_float_input(input, "digamma"))


def polygamma(n, input):
    n = int(n)
    if n < 0:
        raise RuntimeError(f"polygamma(n, x) does not support negative n (got n={n})")
    x = _float_input(input, "polygamma")
    return Digamma.apply(x) if n == 0 else Polygamma.apply(x, n=n)


def mvlgamma(input, p):
    """log of the multivariate gamma function of dimension ``p``: sum_i lgamma(x - i/2) + const."""
    p = int(p)
    if p < 1:
        raise RuntimeError(f"mvlgamma: p has to be greater than or equal to 1 (got p={p})")
    x = _float_input(input, "mvlgamma")
    out = lgamma(x)
    for i in range(1, p):
        out = out + lgamma(x - i / 2.0)
    return out + p * (p - 1) / 4.0 * math.log(math.pi)


def logit(input, eps=None):
    x = _float_input(input, "logit")
    if eps is not None:
        x = clamp(x, eps, 1.0 - eps)
    return log(x) - log1p(-x)


def sgn(input):
    return sign(input)


fix = trunc
absolute = abs


def positive(input):
    if input.dtype == np.bool_:
        raise TypeError("positive: the `+` operator on a bool tensor is not supported")
    return input


# ---- binary blends --------------------------------------------------------------------------

def _float_pair(input, other, opname):
    a, b = promote(input, other, opname)
    if a.dtype.kind not in "fV":
        dt = backend.get_default_dtype()
        a, b = a.to(dt), b.to(dt)
    return a, b


class Copysign(Function):
    def forward(self, a, b):
        xp = backend.array_module(a)
        self.shapes = (a.shape, b.shape)
        # d/da |a| sign(b) = sign(a) * sign(b), and 0 at a = 0 (PyTorch); nothing flows to b
        self.ratio = xp.sign(a) * xp.copysign(xp.ones_like(b), b)
        return xp.copysign(a, b)

    def backward(self, g):
        sa, sb = self.shapes
        return (sum_to(g * _const(self.ratio), sa) if self.needs_input_grad[0] else None,
                sum_to(g * 0.0, sb) if self.needs_input_grad[1] else None)


def copysign(input, other):
    a, b = _float_pair(input, other, "copysign")
    return Copysign.apply(a, b)


class Hypot(Function):
    save_output = True

    def forward(self, a, b):
        self.save_for_backward(*self.inputs)
        return backend.array_module(a).hypot(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        q = g / self.output()
        return (sum_to(q * a, a.shape) if self.needs_input_grad[0] else None,
                sum_to(q * b, b.shape) if self.needs_input_grad[1] else None)


def hypot(input, other):
    a, b = promote(input, other, "hypot")
    check_float(a, "hypot")
    return Hypot.apply(a, b)


class LogAddExp(Function):
    def forward(self, a, b, base2=False):
        self.save_for_backward(*self.inputs)
        self.base2 = base2
        xp = backend.array_module(a)
        return xp.logaddexp2(a, b) if base2 else xp.logaddexp(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        d = (a - b) * math.log(2.0) if self.base2 else a - b
        return (sum_to(g * sigmoid(d), a.shape) if self.needs_input_grad[0] else None,
                sum_to(g * sigmoid(-d), b.shape) if self.needs_input_grad[1] else None)


def logaddexp(input, other):
    a, b = _float_pair(input, other, "logaddexp")
    return LogAddExp.apply(a, b)


def logaddexp2(input, other):
    a, b = _float_pair(input, other, "logaddexp2")
    return LogAddExp.apply(a, b, base2=True)


def _xlogy_array(xp, x, y):
    with np.errstate(all="ignore"):
        return xp.where((x == 0) & ~xp.isnan(y), xp.zeros_like(x * y), x * xp.log(y))


class XLogY(Function):
    def forward(self, x, y):
        self.save_for_backward(*self.inputs)
        return _xlogy_array(backend.array_module(x), x, y)

    def backward(self, g):
        x, y = self.saved_tensors
        gx = gy = None
        if self.needs_input_grad[0]:
            # PyTorch: g * log(y), also where x == 0 (zero there only when y <= 0)
            gx = xlogy(g, y) * _const(~((x.array == 0) & (y.array <= 0))).to(g.dtype)
            gx = sum_to(gx, x.shape)
        if self.needs_input_grad[1]:
            gy = sum_to(g * x / y, y.shape)
        return gx, gy


def xlogy(input, other):
    """``input * log(other)``, and 0 where input is 0 (unless other is nan)."""
    a, b = _float_pair(input, other, "xlogy")
    return XLogY.apply(a, b)


class _Modulo(Function):
    """a - b * round(a / b) with floor (remainder, Python's %) or trunc (fmod, C's fmod)."""

    def forward(self, a, b, floor=True):
        self.save_for_backward(*self.inputs)
        self.floor = floor
        xp = backend.array_module(a)
        with np.errstate(all="ignore"):
            return xp.mod(a, b) if floor else xp.fmod(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        gb = None
        if self.needs_input_grad[1]:
            xp = backend.array_module(a.array)
            with np.errstate(all="ignore"):
                q = a.array / b.array
                q = xp.floor(q) if self.floor else xp.trunc(q)
            gb = sum_to(-(g * _const(q)), b.shape)
        return (sum_to(g, a.shape) if self.needs_input_grad[0] else None), gb


def _modulo(input, other, floor, opname):
    a, b = promote(input, other, opname)
    xp = backend.array_module(a.array)
    if a.dtype.kind in "iu":
        if bool((b.array == 0).any()):
            raise RuntimeError(f"{opname}: ZeroDivisionError (integer division by zero)")
        return _nodiff(xp.mod(a.array, b.array) if floor else xp.fmod(a.array, b.array))
    if a.dtype.kind == "b":
        raise RuntimeError(f"{opname}: not implemented for 'Bool'")
    return _Modulo.apply(a, b, floor=floor)


def remainder(input, other):
    """Python's ``%``: the result has the sign of the divisor (differentiable in both)."""
    return _modulo(input, other, True, "remainder")


def fmod(input, other):
    """C's fmod: the result has the sign of the dividend (differentiable in both)."""
    return _modulo(input, other, False, "fmod")


def float_power(input, exponent):
    """``pow`` computed in float64 (PyTorch's float_power)."""
    if isinstance(exponent, Tensor):
        exponent = exponent.to(np.float64)
    elif not isinstance(exponent, numbers.Number):
        raise TypeError(f"float_power: exponent must be a Tensor or a number, got {type(exponent).__name__}")
    else:
        exponent = float(exponent)
    if not isinstance(input, Tensor):
        return pow(float(input), exponent)
    return pow(input.to(np.float64), exponent)


def ldexp(input, other):
    """``input * 2**other``."""
    a, b = _float_pair(input, other, "ldexp")
    return a * pow(2.0, b)


def fmax(input, other):
    """Elementwise maximum that ignores nan (nan only where both are nan)."""
    a, b = promote(input, other, "fmax")
    xp = backend.array_module(a.array)
    with np.errstate(invalid="ignore"):
        take_a = xp.isnan(b.array) | (a.array >= b.array)
    return where(_const(take_a), a, b)


def fmin(input, other):
    """Elementwise minimum that ignores nan (nan only where both are nan)."""
    a, b = promote(input, other, "fmin")
    xp = backend.array_module(a.array)
    with np.errstate(invalid="ignore"):
        take_a = xp.isnan(b.array) | (a.array <= b.array)
    return where(_const(take_a), a, b)


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


# ---- no gradient: sign tests, rounding helpers, bit operations --------------------------------

def heaviside(input, values):
    a, v = promote(input, values, "heaviside")
    xp = backend.array_module(a.array)
    if a.dtype.kind == "b":
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes")
    return _nodiff(xp.where(a.array == 0, v.array, (a.array > 0).astype(a.dtype)))


def signbit(input):
    return _nodiff(backend.array_module(input.array).signbit(input.array))


def isposinf(input):
    return _nodiff(input.array == np.inf)


def isneginf(input):
    return _nodiff(input.array == -np.inf)


def isreal(input):
    return _nodiff(backend.array_module(input.array).ones(input.array.shape, dtype=np.bool_))


def frexp(input):
    """(mantissa, exponent) with input = mantissa * 2**exponent and 0.5 <= |mantissa| < 1."""
    check_float(input, "frexp")
    from .reduce import return_types
    m, e = backend.array_module(input.array).frexp(input.array)
    return return_types.frexp(_nodiff(m), _nodiff(e.astype(np.int32)))


def nextafter(input, other):
    a, b = promote(input, other, "nextafter")
    check_float(a, "nextafter")
    return _nodiff(backend.array_module(a.array).nextafter(a.array, b.array))


def _bitwise(ufunc_name, opname):
    def op(input, other):
        a, b = promote(input, other, opname)
        if a.dtype.kind in "fV":
            raise RuntimeError(f"{opname}: not implemented for floating point dtype {a.dtype}")
        xp = backend.array_module(a.array)
        try:
            return _nodiff(getattr(xp, ufunc_name)(a.array, b.array))
        except ValueError:
            raise RuntimeError(f"{opname}: shapes {tuple(a.shape)} and {tuple(b.shape)} are not broadcastable") from None
    op.__name__ = opname
    return op


bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")
bitwise_left_shift = _bitwise("left_shift", "bitwise_left_shift")
bitwise_right_shift = _bitwise("right_shift", "bitwise_right_shift")
gcd = _bitwise("gcd", "gcd")
lcm = _bitwise("lcm", "lcm")


def bitwise_not(input):
    if input.dtype.kind in "fV":
        raise RuntimeError(f"bitwise_not: not implemented for floating point dtype {input.dtype}")
    return _nodiff(backend.array_module(input.array).invert(input.array))


def real(input):
    """The real part: the tensor itself for real dtypes (deepgrad has no complex dtypes)."""
    return input


def imag(input):
    raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")


def is_complex(input):
    return input.dtype.kind == "c"


def is_floating_point(input):
    return input.is_floating_point()


def is_nonzero(input):
    if input.numel() == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if input.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(input.array.reshape(()))


def is_same_size(input, other):
    return tuple(input.shape) == tuple(other.shape)


def is_signed(input):
    return input.dtype.kind in "fic"
