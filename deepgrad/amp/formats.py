"""Emulated number formats for limited-precision training research (issue 15).

Hardware that trains networks in fixed point (Courbariaux, Bengio & David 2014, "Training deep
neural networks with low precision multiplications"; Gupta et al. 2015, "Deep learning with limited
numerical precision") is emulated here on float32/float64 arrays: every value a format touches is
rounded onto the format's grid and saturated at its range, and the arithmetic between roundings
stays in the array's own precision (as a multiplier-accumulator with a wide accumulator does).

Formats (PyTorch has none of these; they are deepgrad's own research tools):

* :class:`FixedPoint` ``(integer_bits, fraction_bits, rounding)`` -- Gupta et al.'s <IL, FL>: the
  integer bits include the sign bit, so the grid is ``2**-fraction_bits`` and the range is
  ``[-2**(integer_bits-1), 2**(integer_bits-1) - 2**-fraction_bits]``; values outside saturate.
* :class:`DynamicFixedPoint` ``(bits, integer_bits=None, ...)`` -- ``bits`` in all, with a shared
  exponent (the position of the radix point, i.e. ``integer_bits``) per tensor or group of tensors,
  updated from overflow rates as Courbariaux et al. do: if more than ``max_overflow_rate`` of the
  values seen since the last update overflowed, one more integer bit; else if twice the values
  would still overflow at most that rate, one fewer.
* :class:`Float16` -- IEEE half precision (NumPy's float16) as a rounding of float32 values.

Rounding is ``"nearest"`` (round half to even, deterministic) or ``"stochastic"`` (round up with
probability equal to the distance from the lower grid point, so ``E[round(x)] = x``), drawing from a
deepgrad :class:`~deepgrad.random.Generator` (``generator=None``: the global one).

A format's ``quantize(array, generator=None)`` rounds a raw array; calling the format on a Tensor
returns a rounded Tensor without a graph. :func:`quantize` is the differentiable version: identity
with rounding on the forward values and on the incoming gradient (a straight-through estimator).
:mod:`deepgrad.amp.low_precision` applies formats to a whole model.
"""
from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function

__all__ = ["NumberFormat", "FixedPoint", "DynamicFixedPoint", "Float16", "round_nearest", "round_stochastic",
           "quantize", "Quantize", "ROUNDINGS"]

ROUNDINGS = ("nearest", "stochastic")


def _check_rounding(rounding, who):
    if rounding not in ROUNDINGS:
        raise ValueError(f"{who}: rounding must be one of {ROUNDINGS}, got {rounding!r}")
    return rounding


def _check_int(value, name, who):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {name} must be an int, got {type(value).__name__}")
    return int(value)


def _work_dtype(a):
    """Rounding works in float32 for float16 inputs, else in the array's own floating dtype."""
    if a.dtype.kind != "f":
        raise TypeError(f"number formats round floating-point arrays, got dtype {a.dtype}")
    return a.dtype if a.dtype.itemsize >= 4 else np.dtype(np.float32)


def _uniform(xp, shape, dtype, generator):
    """U[0, 1) of ``shape`` from ``generator`` (a deepgrad Generator; None: the global one)."""
    from ..random import rng
    u = rng(generator).random(shape, dtype=np.float64 if dtype == np.float64 else np.float32)
    return u if xp is np else xp.asarray(u)


def round_nearest(x):
    """``x`` rounded to the nearest integer, halves to even (deterministic)."""
    xp = backend.array_module(x)
    return xp.rint(x)


def round_stochastic(x, generator=None):
    """``x`` rounded to ``floor(x) + 1`` with probability ``x - floor(x)``, else to ``floor(x)``:
    unbiased, ``E[round_stochastic(x)] = x``. Exact in the array's precision: the fraction is
    compared with a uniform draw rather than added to it, so large values lose nothing."""
    xp = backend.array_module(x)
    lo = xp.floor(x)
    with np.errstate(invalid="ignore"):      # inf - inf: the comparison below is False, inf stays
        frac = x - lo
    return lo + (_uniform(xp, x.shape, x.dtype, generator) < frac)


def _round(s, rounding, generator):
    return round_nearest(s) if rounding == "nearest" else round_stochastic(s, generator)


class NumberFormat:
    """Base class of the emulated formats. Subclasses implement ``quantize(array, generator)``."""

    rounding = "nearest"

    def quantize(self, x, generator=None):
        raise NotImplementedError

    def quantize_saturated(self, x, generator=None):
        """``(rounded, saturated)``: ``saturated`` is a boolean array of the values beyond the
        format's range (clipped to it), or None when there are none (or the format, like
        ``Float16``, does not saturate)."""
        return self.quantize(x, generator), None

    def group(self):
        """A format for one more tensor or group of tensors: stateless formats return themselves,
        :class:`DynamicFixedPoint` a copy with its own exponent and overflow counts."""
        return self

    def __call__(self, x, generator=None):
        """Round an array (returns an array) or a Tensor (returns a Tensor without a graph)."""
        from ..tensor import Tensor
        if isinstance(x, Tensor):
            return Tensor._make(self.quantize(x.array, generator))
        if not hasattr(x, "dtype"):
            x = np.asarray(x, dtype=np.float32)
        return self.quantize(x, generator)


class FixedPoint(NumberFormat):
    """Fixed point with ``integer_bits`` (sign included) and ``fraction_bits``: values are
    multiples of ``2**-fraction_bits`` in ``[min, max]`` with ``min = -2**(integer_bits-1)`` and
    ``max = 2**(integer_bits-1) - 2**-fraction_bits``; values beyond saturate (no wrap-around).

    >>> FixedPoint(2, 14)        # Gupta et al.'s 16-bit <2, 14>: step 2**-14, range [-2, 2)
    FixedPoint(integer_bits=2, fraction_bits=14, rounding='nearest')
    """

    def __init__(self, integer_bits, fraction_bits, rounding="nearest"):
        who = "FixedPoint"
        il = _check_int(integer_bits, "integer_bits", who)
        fl = _check_int(fraction_bits, "fraction_bits", who)
        if il < 0 or fl < 0:
            raise ValueError(f"{who}: integer_bits and fraction_bits must be >= 0, got integer_bits={il}, "
                             f"fraction_bits={fl}")
        if il + fl < 1:
            raise ValueError(f"{who}: a format needs at least one bit, got integer_bits={il}, fraction_bits={fl}")
        self.integer_bits, self.fraction_bits = il, fl
        self.rounding = _check_rounding(rounding, who)

    @property
    def bits(self):
        return self.integer_bits + self.fraction_bits

    @property
    def step(self):
        return 2.0 ** -self.fraction_bits

    @property
    def max(self):
        return 2.0 ** (self.integer_bits - 1) - self.step

    @property
    def min(self):
        return -2.0 ** (self.integer_bits - 1)

    def quantize(self, x, generator=None):
        return _fixed(x, self.integer_bits, self.fraction_bits, self.rounding, generator)[0]

    def quantize_saturated(self, x, generator=None):
        r, _, _, sat = _fixed(x, self.integer_bits, self.fraction_bits, self.rounding, generator, mask=True)
        return r, sat

    def __repr__(self):
        return (f"FixedPoint(integer_bits={self.integer_bits}, fraction_bits={self.fraction_bits}, "
                f"rounding={self.rounding!r})")


def _fixed(x, il, fl, rounding, generator, count=False, mask=False):
    """``(rounded, overflows, overflows_of_2x, saturated)`` of ``x`` in <il, fl> (counts only if
    ``count``; the boolean array of values beyond the range, or None when there are none, only if
    ``mask``). Scaling by powers of two is exact, so the grid points are hit exactly."""
    xp = backend.array_module(x)
    dt = _work_dtype(x)
    s = x.astype(dt, copy=False) * dt.type(2.0 ** fl)
    hi = 2.0 ** (il - 1 + fl) - 1          # the largest integer code; the smallest is -(hi + 1)
    lo = -(hi + 1)
    over = over2 = 0
    sat = None
    if count or mask:
        sat = (s > hi) | (s < lo)                                       # beyond [min, max]: saturates
        over = int(xp.count_nonzero(sat))
        if count:
            over2 = int(xp.count_nonzero((s > hi / 2) | (s < lo / 2)))  # 2x beyond [min, max]
        if not over:
            sat = None
    r = _round(s, rounding, generator)
    r = xp.clip(r, lo, hi)
    r *= dt.type(2.0 ** -fl)
    return r.astype(x.dtype, copy=False), over, over2, sat


class DynamicFixedPoint(NumberFormat):
    """``bits`` in all (sign included) with a shared, moving exponent: ``integer_bits`` (which may be
    negative or exceed ``bits``: it is the radix point's position) and ``fraction_bits = bits -
    integer_bits``.

    Each call of :meth:`quantize` counts the values that overflow the current range and those that
    would overflow if doubled; every ``update_every`` calls (and on :meth:`update`), as in
    Courbariaux et al. 2014: if the overflow rate exceeds ``max_overflow_rate`` the integer part
    grows by one bit; otherwise, if the rate of overflow of twice the values is at most
    ``max_overflow_rate``, it shrinks by one bit. ``integer_bits=None`` takes the first tensor's
    exponent (the smallest range that holds its largest magnitude).

    One instance is one group (one shared exponent). :meth:`group` makes a fresh group with the
    same settings; :class:`~deepgrad.amp.low_precision` does that for each tensor it rounds.
    """

    def __init__(self, bits, integer_bits=None, rounding="nearest", max_overflow_rate=1e-4, update_every=1):
        who = "DynamicFixedPoint"
        bits = _check_int(bits, "bits", who)
        if bits < 1:
            raise ValueError(f"{who}: a format needs at least one bit, got bits={bits}")
        if integer_bits is not None:
            integer_bits = _check_int(integer_bits, "integer_bits", who)
        rate = float(max_overflow_rate)
        if not 0 <= rate < 1:
            raise ValueError(f"{who}: max_overflow_rate must be in [0, 1), got {max_overflow_rate!r}")
        every = _check_int(update_every, "update_every", who)
        if every < 0:
            raise ValueError(f"{who}: update_every must be >= 0 (0: only on update()), got {every}")
        self.bits = bits
        self.initial_integer_bits = self.integer_bits = integer_bits
        self.rounding = _check_rounding(rounding, who)
        self.max_overflow_rate = rate
        self.update_every = every
        self._reset_counts()
        self.history = []          # integer_bits after each update

    def _reset_counts(self):
        self.seen = self.overflows = self.overflows_2x = self.calls = 0

    @property
    def fraction_bits(self):
        return None if self.integer_bits is None else self.bits - self.integer_bits

    def group(self):
        g = copy.copy(self)
        g.integer_bits = self.initial_integer_bits
        g._reset_counts()
        g.history = []
        return g

    def _fit(self, x):
        xp = backend.array_module(x)
        m = float(xp.max(xp.abs(x))) if x.size else 0.0
        if not m or not math.isfinite(m):
            return None
        return math.floor(math.log2(m)) + 2   # 2**(il-1) in (m, 2m]: m fits, 2m does not

    def quantize(self, x, generator=None):
        return self.quantize_saturated(x, generator)[0]

    def quantize_saturated(self, x, generator=None):
        if self.integer_bits is None:
            self.integer_bits = self._fit(x)
            if self.integer_bits is None:            # all zeros (or not finite): nothing to fit yet
                r, _, _, sat = _fixed(x, self.bits, 0, self.rounding, generator, mask=True)
                return r, sat
        il = self.integer_bits
        r, over, over2, sat = _fixed(x, il, self.bits - il, self.rounding, generator, count=True)
        self.seen += int(x.size)
        self.overflows += over
        self.overflows_2x += over2
        self.calls += 1
        if self.update_every and self.calls >= self.update_every:
            self.update()
        return r, sat

    #: the exponent stays within ``fraction_bits <= 100`` and ``integer_bits <= 100`` (a group of
    #: zeros, e.g. the gradient of a dead unit, would otherwise shrink it without end until the
    #: scale ``2**fraction_bits`` overflowed float32)
    EXPONENT_LIMIT = 100

    def update(self):
        """Move the exponent from the overflow counts gathered since the last update; returns the
        new ``integer_bits``."""
        if self.seen and self.integer_bits is not None:
            if self.overflows / self.seen > self.max_overflow_rate:
                self.integer_bits = min(self.integer_bits + 1, self.EXPONENT_LIMIT)
            elif self.overflows_2x / self.seen <= self.max_overflow_rate:
                self.integer_bits = max(self.integer_bits - 1, self.bits - self.EXPONENT_LIMIT)
            self.history.append(self.integer_bits)
        self._reset_counts()
        return self.integer_bits

    def __repr__(self):
        return (f"DynamicFixedPoint(bits={self.bits}, integer_bits={self.integer_bits}, rounding={self.rounding!r}, "
                f"max_overflow_rate={self.max_overflow_rate}, update_every={self.update_every})")


class Float16(NumberFormat):
    """IEEE half precision (1 sign, 5 exponent, 10 fraction bits) as a rounding of wider floats:
    ``nearest`` is NumPy's float16 conversion (overflow gives inf, as half arithmetic does);
    ``stochastic`` picks one of the two neighbouring half-precision values with probabilities
    proportional to closeness (unbiased)."""

    bits = 16

    def __init__(self, rounding="nearest"):
        self.rounding = _check_rounding(rounding, "Float16")

    def quantize(self, x, generator=None):
        xp = backend.array_module(x)
        _work_dtype(x)
        if self.rounding == "nearest" and x.dtype == np.float32 and type(x) is np.ndarray:
            from ..ops._lowp import round_f16       # NumPy's float16 cast is a scalar loop (~4-7x slower)
            return round_f16(x)
        h = x.astype(np.float16)
        if self.rounding == "nearest":
            return h.astype(x.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            hx = h.astype(x.dtype)
            lo = xp.where(hx > x, xp.nextafter(h, np.float16(-np.inf)), h)
            hi = xp.nextafter(lo, np.float16(np.inf))
            lo_x, hi_x = lo.astype(x.dtype), hi.astype(x.dtype)
            p = (x - lo_x) / (hi_x - lo_x)
            up = _uniform(xp, x.shape, x.dtype if x.dtype == np.float64 else np.float32, generator) < p
        out = xp.where(up, hi_x, lo_x)
        return xp.where(xp.isfinite(lo_x) & xp.isfinite(hi_x), out, hx).astype(x.dtype, copy=False)

    def __repr__(self):
        return f"Float16(rounding={self.rounding!r})"


# ---- the differentiable rounding -------------------------------------------------------------------

class Quantize(Function):
    """Identity with rounding: the forward values rounded by ``fmt``, the incoming gradient by
    ``grad_fmt`` (None: left as it is). The rounding is straight-through (its derivative is taken
    to be one, as the papers' hardware simply rounds each propagated quantity); the saturation is
    not: where ``fmt`` clipped a value to its range the gradient is zero, the derivative of the
    clipping. (Passing it through let the network push saturated logits further without effect on
    the loss; weights grew until training diverged: Gupta et al.'s <2,14> MLP went from 28% to 48%
    test error in its second epoch.)"""

    array_backward = True

    def forward(self, x, fmt=None, grad_fmt=None, generator=None):
        self.grad_fmt, self.generator, self.saturated = grad_fmt, generator, None
        if fmt is None:
            return x.copy()
        r, self.saturated = fmt.quantize_saturated(x, generator)
        return r

    def backward(self, g):
        if self.grad_fmt is not None:
            g = self.grad_fmt.quantize(g, self.generator)
        if self.saturated is not None:
            g = g.copy() if self.grad_fmt is None else g
            g[self.saturated] = 0
        return g

    def graph_backward(self, g):
        # the gradient as a graph: the same rounding of g, itself straight-through, and the same mask
        from ..tensor import Tensor
        if self.saturated is not None:
            keep = ~self.saturated
            g = g * Tensor._make(keep.astype(g.array.dtype))
        return Quantize.apply(g, fmt=self.grad_fmt, generator=self.generator)


def quantize(input, fmt=None, grad_fmt=None, generator=None):
    """``input`` rounded by ``fmt`` on the forward pass, its gradient rounded by ``grad_fmt`` on the
    backward pass (either may be None: no rounding there). Returns a Tensor."""
    from ..tensor import Tensor
    if not isinstance(input, Tensor):
        raise TypeError(f"quantize: expected a Tensor, got {type(input).__name__}")
    for name, f in (("fmt", fmt), ("grad_fmt", grad_fmt)):
        if f is not None and not isinstance(f, NumberFormat):
            raise TypeError(f"quantize: {name} must be a NumberFormat (FixedPoint, DynamicFixedPoint, Float16) "
                            f"or None, got {type(f).__name__}")
    if input.array.dtype.kind != "f":
        raise TypeError(f"quantize: expected a floating-point tensor, got dtype {input.array.dtype}")
    return Quantize.apply(input, fmt=fmt, grad_fmt=grad_fmt, generator=generator)
