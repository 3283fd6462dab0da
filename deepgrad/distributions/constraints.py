"""Constraints on parameters and supports (PyTorch's ``torch.distributions.constraints``).

``constraint.check(value)`` returns a bool Tensor of the batch shape: which entries satisfy it.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor

__all__ = ["Constraint", "boolean", "dependent", "dependent_property", "greater_than",
           "greater_than_eq", "half_open_interval", "independent", "integer_interval", "interval",
           "less_than", "lower_cholesky", "lower_triangular", "nonnegative_integer", "positive",
           "positive_definite", "positive_integer", "real", "real_vector", "simplex", "unit_interval",
           "nonnegative", "symmetric"]


def _t(array):
    return Tensor._make(np.asarray(array))


def _arr(v):
    """Validation runs on the host: CuPy arrays are copied to NumPy."""
    from .. import backend
    return backend.to_numpy(v.array) if isinstance(v, Tensor) else np.asarray(v)


class Constraint:
    is_discrete = False
    event_dim = 0

    def check(self, value):
        raise NotImplementedError

    def __repr__(self):
        return self.__class__.__name__[1:] + "()"


class _Dependent(Constraint):
    """Depends on other parameters: cannot be checked on its own."""

    def __init__(self, *, is_discrete=False, event_dim=0):
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, *, is_discrete=False, event_dim=0):
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, x):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint):
    return isinstance(constraint, _Dependent)


class _DependentProperty(property, _Dependent):
    def __init__(self, fn=None, *, is_discrete=False, event_dim=0):
        property.__init__(self, fn)
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, fn):
        return _DependentProperty(fn, is_discrete=self.is_discrete, event_dim=self.event_dim)


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        a = _arr(value)
        return _t((a == 0) | (a == 1))


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        a = _arr(value)
        return _t((a % 1 == 0) & (_arr(self.lower_bound) <= a) & (a <= _arr(self.upper_bound)))

    def __repr__(self):
        return f"IntegerInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        a = _arr(value)
        return _t((a % 1 == 0) & (a >= self.lower_bound))


class _Real(Constraint):
    def check(self, value):
        a = _arr(value)
        return _t(a == a)          # False only for NaN


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return _t(_arr(self.lower_bound) < _arr(value))

    def __repr__(self):
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _GreaterThanEq(_GreaterThan):
    def check(self, value):
        return _t(_arr(self.lower_bound) <= _arr(value))

    def __repr__(self):
        return f"GreaterThanEq(lower_bound={self.lower_bound})"


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return _t(_arr(value) < _arr(self.upper_bound))


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        a = _arr(value)
        return _t((_arr(self.lower_bound) <= a) & (a <= _arr(self.upper_bound)))

    def __repr__(self):
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _HalfOpenInterval(_Interval):
    def check(self, value):
        a = _arr(value)
        return _t((_arr(self.lower_bound) <= a) & (a < _arr(self.upper_bound)))

    def __repr__(self):
        return f"HalfOpenInterval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _Independent(Constraint):
    def __init__(self, base_constraint, reinterpreted_batch_ndims):
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        a = _arr(self.base_constraint.check(value))
        n = self.reinterpreted_batch_ndims
        if n:
            a = a.reshape(a.shape[:a.ndim - n] + (-1,)).all(-1)
        return _t(a)

    def __repr__(self):
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        a = _arr(value)
        return _t((a >= 0).all(-1) & (np.abs(a.sum(-1) - 1) < 1e-6))


class _LowerTriangular(Constraint):
    event_dim = 2

    def check(self, value):
        a = _arr(value)
        return _t((np.tril(a) == a).reshape(a.shape[:-2] + (-1,)).all(-1))


class _LowerCholesky(Constraint):
    event_dim = 2

    def check(self, value):
        a = _arr(value)
        tril = (np.tril(a) == a).reshape(a.shape[:-2] + (-1,)).all(-1)
        pos = (np.diagonal(a, axis1=-2, axis2=-1) > 0).all(-1)
        return _t(tril & pos)


class _Symmetric(Constraint):
    event_dim = 2

    def check(self, value):
        a = _arr(value)
        if a.ndim < 2:
            return _t(np.zeros((), dtype=bool))
        return _t(np.isclose(a, np.swapaxes(a, -1, -2), atol=1e-6).reshape(a.shape[:-2] + (-1,)).all(-1))


class _PositiveDefinite(_Symmetric):
    def check(self, value):
        sym = _arr(super().check(value))
        a = _arr(value)
        if not sym.all():
            return _t(sym)
        with np.errstate(all="ignore"):
            return _t(np.linalg.eigvalsh(a).min(-1) > 0)


dependent = _Dependent()
dependent_property = _DependentProperty
independent = _Independent
boolean = _Boolean()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = _Independent(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
symmetric = _Symmetric()
positive_definite = _PositiveDefinite()
