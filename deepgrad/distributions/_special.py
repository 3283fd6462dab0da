"""Special functions for the distributions: ``lgamma``, ``digamma`` and ``polygamma`` (from
ops/elementwise.py), erf/erfinv, the regularised incomplete gamma and standard_gamma.

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

# lgamma, digamma and polygamma live in ops/elementwise.py (deepgrad.lgamma, ...), the single
# implementation; the names stay importable from here for the distributions.
from ..ops.elementwise import (digamma, digamma_array, lgamma, lgamma_array, polygamma,  # noqa: E402,F401
                               polygamma_array)


_erf_u = np.frompyfunc(math.erf, 1, 1)
_erfc_u = np.frompyfunc(math.erfc, 1, 1)


def erf_array(a):
    xp = backend.array_module(a)
    host = backend.to_numpy(a).astype(np.float64)
    return xp.asarray(_erf_u(host).astype(np.float64)).astype(a.dtype, copy=False)


def erfinv_array(a):
    """Inverse error function: Giles' single-precision approximation, then Newton steps on erf."""
    xp = backend.array_module(a)
    x = backend.to_numpy(a).astype(np.float64)
    with np.errstate(all="ignore"):
        w = -np.log((1.0 - x) * (1.0 + x))
        small = w < 5.0
        ws = w - 2.5
        p1 = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                  -0.00417768164, 0.246640727, 1.50140941):
            p1 = c + p1 * ws
        wl = np.sqrt(w) - 3.0
        p2 = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                  0.00943887047, 1.00167406, 2.83297682):
            p2 = c + p2 * wl
        y = np.abs(np.where(small, p1, p2) * x)
        ax = np.abs(x)
        tail = ax >= 0.5
        log_c = np.log(np.where(tail, 1.0 - ax, 1.0))
        for _ in range(6):
            # centre: Newton on erf(y) = |x|; tails: on log erfc(y) = log(1 - |x|), well scaled there
            dens = 2 / math.sqrt(math.pi) * np.exp(-y * y)
            ec = np.maximum(_erfc_u(y).astype(np.float64), 1e-300)
            step = np.where(tail, -(np.log(ec) - log_c) * ec / dens,
                            (_erf_u(y).astype(np.float64) - ax) / dens)
            y = np.where(np.isfinite(step), y - step, y)
        y = np.sign(x) * y
        y = np.where(x == 1, np.inf, np.where(x == -1, -np.inf, y))
        y = np.where(np.abs(x) > 1, np.nan, y)
    return xp.asarray(y).astype(a.dtype, copy=False)


class Erf(Function):
    def forward(self, a):
        self.save_for_backward(*self.inputs)
        return erf_array(a)

    def backward(self, g):
        x, = self.saved_tensors
        return g * (2 / math.sqrt(math.pi)) * (-(x * x)).exp()


class Erfinv(Function):
    save_output = True

    def forward(self, a):
        return erfinv_array(a)

    def backward(self, g):
        y = self.output(0)
        return g * (math.sqrt(math.pi) / 2) * (y * y).exp()


def erf(x):
    return Erf.apply(x)


def erfinv(x):
    return Erfinv.apply(x)


# ---- the regularized incomplete gamma function and reparameterised gamma draws ---------------

def _gammainc_parts(a, x):
    """``(P, Q, lower)`` of the regularized incomplete gamma at (a, x), float64 NumPy arrays:
    ``lower`` marks where the series for P was used (x < a + 1); elsewhere Q came from the
    continued fraction (modified Lentz). Each is accurate where it is the smaller of the two."""
    a, x = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(x, np.float64))
    shape = a.shape
    a, x = a.ravel(), x.ravel()
    lower = x < a + 1
    P = np.empty_like(a)
    Q = np.empty_like(a)
    with np.errstate(all="ignore"):
        # series: P = x^a e^-x / Gamma(a+1) * sum_n x^n / ((a+1)...(a+n))
        i = np.flatnonzero(lower & (x > 0))
        aa, xs = a[i], x[i]
        term = 1.0 / aa
        total = term.copy()
        for n in range(1, 5000):
            term = term * xs / (aa + n)
            total = total + term
            if np.all(term <= total * 1e-16):
                break
        P[i] = total * np.exp(aa * np.log(xs) - xs - lgamma_array(aa))
        Q[i] = 1 - P[i]
        # continued fraction for Q
        j = np.flatnonzero(~lower)
        aa, xc = a[j], x[j]
        tiny = 1e-300
        b = xc + 1 - aa
        c = np.full_like(b, 1 / tiny)
        d = 1 / b
        h = d.copy()
        for k in range(1, 5000):
            an = -k * (k - aa)
            b = b + 2
            d = an * d + b
            d = np.where(np.abs(d) < tiny, tiny, d)
            c = b + an / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            d = 1 / d
            delta = d * c
            h = h * delta
            if np.all(np.abs(delta - 1) <= 1e-14):
                break
        Q[j] = np.exp(aa * np.log(xc) - xc - lgamma_array(aa)) * h
        P[j] = 1 - Q[j]
    P[x <= 0], Q[x <= 0] = 0.0, 1.0
    return P.reshape(shape), Q.reshape(shape), lower.reshape(shape)


def standard_gamma_grad_array(alpha, x):
    """d x / d alpha for a Gamma(alpha, 1) draw x: the implicit derivative -dF/dalpha / f, with
    dF/dalpha by a central difference of whichever of P or Q is the small, accurate one."""
    a = np.asarray(alpha, np.float64)
    xv = np.asarray(x, np.float64)
    h = 1e-5 * a
    P1, Q1, low = _gammainc_parts(a + h, xv)
    P0, Q0, _ = _gammainc_parts(a - h, xv)
    dF = np.where(low, P1 - P0, Q0 - Q1) / (2 * h)
    with np.errstate(all="ignore"):
        dens = np.exp((a - 1) * np.log(xv) - xv - lgamma_array(a))
        out = -dF / dens
    return np.where(np.isfinite(out), out, 0.0)


class StandardGamma(Function):
    """Gamma(alpha, 1) draws, reparameterised: the gradient is the implicit one, dx/dalpha.
    First-order only (its backward works on arrays)."""

    array_backward = True
    # Its derivative is an implicit-function gradient evaluated numerically; differentiating that
    # again has no closed form worth its cost. The engine names the op if create_graph asks.
    first_order_only = "the implicit reparameterisation gradient of a Gamma draw is itself numerical"

    def forward(self, alpha):
        from ..random import rng
        host = backend.to_numpy(alpha).astype(np.float64)
        draws = np.maximum(rng().standard_gamma(host), np.finfo(alpha.dtype).tiny)
        self.alpha, self.draws = host, draws
        return backend.to_device(draws.astype(alpha.dtype), backend.device_of(alpha))

    def backward(self, g):
        grad = standard_gamma_grad_array(self.alpha, self.draws)
        return g * backend.to_device(grad.astype(g.dtype), backend.device_of(g))


def standard_gamma(alpha):
    return StandardGamma.apply(alpha)
