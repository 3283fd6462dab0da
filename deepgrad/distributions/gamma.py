"""``Gamma(concentration, rate)``, ``Beta(concentration1, concentration0)``, ``Dirichlet(concentration)``.

Densities, entropies and moments are differentiable in the parameters (lgamma and digamma are
ops of _special.py). ``rsample`` is reparameterised as in PyTorch: a Gamma(alpha, 1) draw x has
the implicit gradient dx/dalpha = -(dF/dalpha) / f (F, f: its CDF and density), evaluated with the
regularized incomplete gamma function (``_special.standard_gamma``; first-order only). Beta and
Dirichlet draws are normalised gamma draws, differentiated through that normalisation.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Size, Tensor
from ..autograd.grad_mode import no_grad
from .. import backend
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all
from ._special import digamma, lgamma, standard_gamma



def _standard_gamma(conc, shape):
    """Gamma(conc, 1) draws of ``shape`` (conc broadcast), clamped to the dtype's tiniest value."""
    from ..random import rng
    a = conc.array
    host = np.broadcast_to(backend.to_numpy(a).astype(np.float64), tuple(shape))
    draws = rng().standard_gamma(host)
    draws = np.maximum(draws, np.finfo(a.dtype).tiny).astype(a.dtype)
    return Tensor._make(backend.to_device(draws, backend.device_of(a)))


class Gamma(Distribution):
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        if isinstance(concentration, numbers.Number) and isinstance(rate, numbers.Number):
            batch_shape = Size()
        else:
            batch_shape = self.concentration.shape
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Gamma, batch_shape, _instance, ('concentration', 'rate'))

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def sample(self, sample_shape=Size()):
        with no_grad():
            shape = self._extended_shape(sample_shape)
            return _standard_gamma(self.concentration, shape) / self.rate.expand(*shape)

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        x = standard_gamma(self.concentration.expand(*shape)) / self.rate.expand(*shape)
        return x.clamp(min=float(np.finfo(x.dtype).tiny))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c, r = self.concentration, self.rate
        return c * r.log() + (c - 1) * value.log() - r * value - lgamma(c)

    def entropy(self):
        c = self.concentration
        return c - self.rate.log() + lgamma(c) + (1.0 - c) * digamma(c)


class Dirichlet(Distribution):
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Dirichlet, batch_shape, _instance, ('concentration',), self.event_shape)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        cm1 = (self.concentration - 1).clamp(min=0.0)
        mode = cm1 / cm1.sum(-1, keepdim=True)
        mask = (self.concentration < 1).all(dim=-1, keepdim=True)
        first = backend.array_module(mode.array).zeros(tuple(mode.shape), dtype=mode.dtype)
        first[..., 0] = 1
        return mode.masked_fill(mask, 0.0) + Tensor._make(first) * mask.to(mode.dtype)

    @property
    def variance(self):
        c0 = self.concentration.sum(-1, keepdim=True)
        c = self.concentration
        return c * (c0 - c) / (c0.pow(2) * (c0 + 1))

    def sample(self, sample_shape=Size()):
        with no_grad():
            shape = self._extended_shape(sample_shape)
            g = _standard_gamma(self.concentration, shape)
            x = g / g.sum(-1, keepdim=True)
            eps = float(np.finfo(x.dtype).tiny)
            return x.clamp(eps, 1 - float(np.finfo(x.dtype).eps))

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        g = standard_gamma(self.concentration.expand(*shape))
        x = g / g.sum(-1, keepdim=True)
        return x.clamp(float(np.finfo(x.dtype).tiny), 1 - float(np.finfo(x.dtype).eps))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return ((c - 1) * value.log()).sum(-1) + lgamma(c.sum(-1)) - lgamma(c).sum(-1)

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (lgamma(c).sum(-1) - lgamma(a0) - (k - a0) * digamma(a0)
                - ((c - 1.0) * digamma(c)).sum(-1))


class Beta(Distribution):
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        if isinstance(concentration1, numbers.Number) and isinstance(concentration0, numbers.Number):
            batch_shape = Size()
        else:
            batch_shape = self.concentration1.shape
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Beta, batch_shape, _instance, ('concentration1', 'concentration0'))

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        from ..ops import stack
        return Dirichlet(stack([self.concentration1, self.concentration0], -1),
                         validate_args=False).mode[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def sample(self, sample_shape=Size()):
        with no_grad():
            shape = self._extended_shape(sample_shape)
            x = _standard_gamma(self.concentration1, shape)
            y = _standard_gamma(self.concentration0, shape)
            out = x / (x + y)
            return out.clamp(float(np.finfo(out.dtype).tiny), 1 - float(np.finfo(out.dtype).eps))

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        x = standard_gamma(self.concentration1.expand(*shape))
        y = standard_gamma(self.concentration0.expand(*shape))
        out = x / (x + y)
        return out.clamp(float(np.finfo(out.dtype).tiny), 1 - float(np.finfo(out.dtype).eps))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        return ((a - 1) * value.log() + (b - 1) * (-value).log1p()
                - (lgamma(a) + lgamma(b) - lgamma(a + b)))

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        t = a + b
        return (lgamma(a) + lgamma(b) - lgamma(t) - (a - 1) * digamma(a) - (b - 1) * digamma(b)
                + (t - 2) * digamma(t))
