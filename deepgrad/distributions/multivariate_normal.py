"""``MultivariateNormal(loc, covariance_matrix=None, precision_matrix=None, scale_tril=None)``.

Everything is computed from the lower Cholesky factor L (covariance = L L^T): the covariance
is factored with a differentiable Cholesky, a precision matrix is inverted through its own
factor; log_prob solves L z = x - loc (one triangular solve) and log det = 2 sum(log diag L).
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Size
from ..autograd.grad_mode import no_grad
from . import constraints
from .distribution import Distribution
from .utils import _diagonal, lazy_property
from ._linalg import cholesky, solve_triangular


def _mT(t):
    return t.transpose(-2, -1)


def _batch_mahalanobis(L, x):
    """``x^T (L L^T)^-1 x`` over broadcast batch dimensions."""
    shape = np.broadcast_shapes(tuple(L.shape[:-2]), tuple(x.shape[:-1]))
    n = L.shape[-1]
    z = solve_triangular(L.expand(*shape, n, n), x.expand(*shape, n).unsqueeze(-1))
    return z.squeeze(-1).pow(2).sum(-1)


def _precision_to_scale_tril(P):
    from ..creation import eye
    Lp = cholesky(P)
    n = P.shape[-1]
    lp_inv = solve_triangular(Lp, eye(n, dtype=P.dtype).expand(*P.shape))   # Lp^-1
    cov = _mT(lp_inv) @ lp_inv                                               # P^-1
    return cholesky(0.5 * (cov + _mT(cov)))


class MultivariateNormal(Distribution):
    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        given = scale_tril if scale_tril is not None else (
            covariance_matrix if covariance_matrix is not None else precision_matrix)
        name = ("scale_tril" if scale_tril is not None else
                "covariance_matrix" if covariance_matrix is not None else "precision_matrix")
        if given.dim() < 2:
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional leading batch dimensions")
        batch_shape = np.broadcast_shapes(tuple(given.shape[:-2]), tuple(loc.shape[:-1]))
        n = loc.shape[-1]
        setattr(self, name, given.expand(*batch_shape, n, n) if tuple(given.shape) != batch_shape + (n, n) else given)
        self.loc = loc.expand(*batch_shape, n) if tuple(loc.shape) != batch_shape + (n,) else loc
        super().__init__(Size(batch_shape), Size((n,)), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateNormal, _instance)
        batch_shape = Size(batch_shape)
        n = self._event_shape[0]
        new.loc = self.loc.expand(*batch_shape, n)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(*batch_shape, n, n))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _full(self, m):
        n = self._event_shape[0]
        return m.expand(*self._batch_shape, n, n)

    @lazy_property
    def scale_tril(self):
        return self._full(self._unbroadcasted_scale_tril)

    @lazy_property
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return self._full(L @ _mT(L))

    @lazy_property
    def precision_matrix(self):
        from ..creation import eye
        L = self._unbroadcasted_scale_tril
        n = L.shape[-1]
        l_inv = solve_triangular(L, eye(n, dtype=L.dtype).expand(*L.shape))
        return self._full(_mT(l_inv) @ l_inv)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(*self._batch_shape, *self._event_shape)

    def rsample(self, sample_shape=Size()):
        from ..creation import randn
        shape = self._extended_shape(sample_shape)
        eps = randn(*shape, dtype=self.loc.dtype)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self):
        return _diagonal(self._unbroadcasted_scale_tril).log().sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        M = _batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        k = self._event_shape[0]
        return -0.5 * (k * math.log(2 * math.pi) + M) - self._half_log_det()

    def entropy(self):
        k = self._event_shape[0]
        H = 0.5 * k * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        if len(self._batch_shape) == 0:
            return H
        return H.expand(*self._batch_shape)
