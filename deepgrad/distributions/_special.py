"""``lgamma``, ``digamma`` and ``polygamma`` as differentiable ops, for Gamma, Beta and Dirichlet.

Each function shifts its argument up to x >= 10 with the recurrence (Gamma(x+1) = x Gamma(x)
and its derivatives) and then sums the asymptotic (Stirling) series there; negative arguments of
lgamma and digamma use the reflection formula. Accuracy is about 1e-14 relative in float64.
The derivative of each is the next one (d lgamma = digamma, d digamma = polygamma(1), ...), so
all are differentiable any number of times.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd.function import Function
from .. import backend

_SHIFT = 10.0
# Bernoulli numbers B_2k, k = 1..7
_B2K = [1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6]


def _lgamma_pos(xp, x):
    acc = xp.zeros_like(x)
    x = x.copy()
    for _ in range(int(_SHIFT)):
        m = x < _SHIFT
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
    return out.astype(a.dtype, copy=False)


def _digamma_pos(xp, x):
    acc = xp.zeros_like(x)
    x = x.copy()
    for _ in range(int(_SHIFT)):
        m = x < _SHIFT
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
        out = xp.where((x <= 0) & (x == xp.floor(x)), xp.nan, out)
    return out.astype(a.dtype, copy=False)


def polygamma_array(n, a):
    """The n-th derivative of digamma (n >= 1) for x > 0."""
    if n == 0:
        return digamma_array(a)
    xp = backend.array_module(a)
    x = a.astype(np.float64).copy()
    sign = (-1.0) ** (n + 1)
    nfact = math.factorial(n)
    acc = xp.zeros_like(x)
    shift = _SHIFT + 2 * n
    with np.errstate(all="ignore"):
        for _ in range(int(shift)):
            m = x < shift
            if not m.any():
                break
            acc = acc + xp.where(m, sign * nfact / xp.where(m, x, 1.0) ** (n + 1), 0.0)
            x = xp.where(m, x + 1, x)
        tail = math.factorial(n - 1) / x ** n + nfact / (2 * x ** (n + 1))
        for k, b in enumerate(_B2K, start=1):
            tail = tail + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / x ** (2 * k + n)
        out = acc + sign * tail
        out = xp.where(a <= 0, xp.nan, out)
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


def lgamma(x):
    return Lgamma.apply(x)


def digamma(x):
    return Digamma.apply(x)


def polygamma(n, x):
    return digamma(x) if n == 0 else Polygamma.apply(x, n=int(n))
