"""The two matrix ops the multivariate normal needs: Cholesky factor and triangular solve.

Both are differentiable ops in deepgrad's style (forward on arrays, backward written with
deepgrad ops, so twice differentiable). They stay private to the distributions; ``deepgrad.linalg``
is the public home of linear algebra.
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from .. import backend


def _tril(g):
    return g.tril()


def _mT(t):
    return t.transpose(-2, -1)


class Cholesky(Function):
    """L with A = L L^T (lower). Backward: sym(L^-T Phi(L^T gL) L^-1), Phi = tril, half diagonal."""

    save_output = True

    def forward(self, a):
        xp = backend.array_module(a)
        try:
            return xp.linalg.cholesky(a)
        except np.linalg.LinAlgError as e:
            raise RuntimeError(f"cholesky: the input (shape {a.shape}) is not positive-definite: {e}") from None

    def backward(self, g):
        L = self.output(0)
        n = L.shape[-1]
        from ..creation import eye
        half = 1 - 0.5 * eye(n, dtype=L.dtype)
        phi = (_mT(L) @ g.tril()).tril() * half
        y = solve_triangular(_mT(L), phi, upper=True)           # L^-T Phi
        x = _mT(solve_triangular(_mT(L), _mT(y), upper=True))   # L^-T Phi L^-1
        return 0.5 * (x + _mT(x))


class SolveTriangular(Function):
    """X with A X = B, A lower (or upper) triangular; batch dimensions broadcast."""

    def forward(self, a, b, upper=False):
        self.save_for_backward(*self.inputs)
        self.upper = upper
        xp = backend.array_module(a)
        a = xp.triu(a) if upper else xp.tril(a)
        self.x = xp.linalg.solve(a, b)
        return self.x

    def backward(self, g):
        a, b = self.saved_tensors
        from ..ops.shape import sum_to
        from ..tensor import Tensor
        ga = gb = None
        gbf = solve_triangular(_mT(a), g, upper=not self.upper)   # A^-T g
        if self.needs_input_grad[1]:
            gb = sum_to(gbf, tuple(b.shape))
        if self.needs_input_grad[0]:
            x = solve_triangular(a, b, upper=self.upper) if gbf.requires_grad else Tensor._make(self.x)
            full = -(gbf @ _mT(x))
            full = full.triu() if self.upper else full.tril()
            ga = sum_to(full, tuple(a.shape))
        return ga, gb


def cholesky(a):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"cholesky: expected a batch of square matrices, got shape {tuple(a.shape)}")
    return Cholesky.apply(a)


def solve_triangular(a, b, upper=False):
    """``A^-1 B`` for triangular ``A`` (only its ``upper`` or lower triangle is read)."""
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != a.shape[-2] or b.shape[-2] != a.shape[-1]:
        raise RuntimeError(f"solve_triangular: shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit")
    if a.dtype != b.dtype:
        raise RuntimeError(f"solve_triangular: dtypes differ ({a.dtype} and {b.dtype})")
    return SolveTriangular.apply(a, b, upper=upper)
