"""The orthogonal parametrization (PyTorch's ``parametrizations.orthogonal``) for real matrices.

A weight ``X`` (n, k) is mapped onto a matrix with orthonormal columns (rows when n < k):

* ``matrix_exp``: ``A = L - L^T`` with ``L`` the lower triangle of ``X`` (zero-padded to n x n),
  ``Q = expm(A)[:, :k]``. ``expm`` is scaling and squaring of a degree-18 Taylor polynomial,
  composed of matmuls, so it is differentiable (twice, too).
* ``householder``: the strictly lower triangle of ``X`` holds Householder vectors ``v_i`` (unit
  diagonal implied), ``tau_i = 2 / (1 + |v_i|^2)``, ``Q = (H_1 ... H_k)[:, :k]``, columns signed by
  the diagonal of ``X`` truncated to an integer (as PyTorch's ``.int()``).
* With ``use_trivialization`` (the default) a buffer ``base`` holds an orthogonal matrix and the
  weight is ``base @ Q``; assigning a weight stores it (orthogonalised by QR if need be) in
  ``base`` and resets the parameter to ``-I``, for which ``Q`` is the identity.
"""
from __future__ import annotations

import math

import numpy as np

from ... import backend
from ...autograd.grad_mode import no_grad
from ...ops.linalg import matmul
from ...ops.shape import cat
from ...tensor import Tensor
from ..module import Module

_MAPS = ("matrix_exp", "cayley", "householder")


def _eye_like(x, n):
    xp = backend.array_module(x.array)
    return Tensor._make(xp.eye(n, dtype=x.array.dtype))


def matrix_exp(a):
    """``exp(a)`` of a square (n, n) Tensor by scaling and squaring (differentiable)."""
    n = a.shape[-1]
    norm1 = float(np.abs(backend.to_numpy(a.detach().array)).sum(axis=-2).max()) if n else 0.0
    s = max(0, int(math.ceil(math.log2(norm1))) + 1) if norm1 > 0.5 else 0
    b = a * (1.0 / 2 ** s) if s else a
    eye = _eye_like(a, n)
    out = eye
    for k in range(18, 0, -1):          # Horner: I + b/1 (I + b/2 (I + ... ))
        out = eye + matmul(b, out) * (1.0 / k)
    for _ in range(s):
        out = matmul(out, out)
    return out


def householder_product(a, tau):
    """``(H_1 ... H_k)[:, :k]`` with ``H_i = I - tau_i v_i v_i^T``, ``v_i`` = column i of the strictly
    lower triangle of ``a`` plus e_i (differentiable in ``a`` and ``tau``)."""
    n, k = a.shape[-2], a.shape[-1]
    xp = backend.array_module(a.array)
    eye = xp.eye(n, k, dtype=a.array.dtype)
    v = a.tril(-1) + Tensor._make(eye)
    q = Tensor._make(eye.copy())
    for i in range(k - 1, -1, -1):
        vi = v[:, i:i + 1]                                   # (n, 1)
        q = q - matmul(vi * tau[i], matmul(vi.transpose(0, 1), q))
    return q


def _make_orthogonal(a):
    """The Q of a QR decomposition of the raw array ``a``, its columns signed so that diag(R) > 0."""
    xp = backend.array_module(a)
    q, r = xp.linalg.qr(a)
    return q * xp.sign(xp.diagonal(r))[None, :]


def _is_orthogonal(q):
    n, k = q.shape
    eps = 10 * n * np.finfo(q.dtype).eps
    xp = backend.array_module(q)
    return bool(xp.allclose(q.T @ q, xp.eye(k, dtype=q.dtype), atol=eps))


class _Orthogonal(Module):
    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.transpose(-2, -1)
            n, k = k, n
        if self.orthogonal_map == "matrix_exp":
            L = X.tril()
            if n != k:
                xp = backend.array_module(X.array)
                L = cat([L, Tensor._make(xp.zeros((n, n - k), dtype=X.array.dtype))], dim=-1)
            Q = matrix_exp(L - L.transpose(-2, -1))
            if n != k:
                Q = Q[:, :k]
        else:
            A = X.tril(-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = householder_product(A, tau)
            xp = backend.array_module(X.array)
            signs = xp.trunc(xp.diagonal(X.array)).astype(X.array.dtype)  # PyTorch's .int(): no gradient
            Q = Q * Tensor._make(signs[None, :])
        if "base" in self._buffers and self.base is not None:
            Q = matmul(self.base, Q)
        elif "base" in self._buffers:
            raise RuntimeError("orthogonal: the parametrization has no base yet; assign the weight first")
        return Q.transpose(-2, -1) if transposed else Q

    def right_inverse(self, Q):
        with no_grad():
            if tuple(Q.shape) != self.shape:
                raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                                 f"Got a tensor of shape {tuple(Q.shape)}.")
            q = Q.detach().array
            n, k = q.shape
            transpose = n < k
            if transpose:
                q = q.T
                n, k = k, n
            xp = backend.array_module(q)
            if "base" not in self._buffers:
                if self.orthogonal_map in ("matrix_exp", "cayley"):
                    raise NotImplementedError("It is not possible to assign to the matrix exponential or the "
                                              "Cayley parametrizations when use_trivialization=False.")
                h, tau = np.linalg.qr(backend.to_numpy(q), mode="raw")
                a = np.ascontiguousarray(h.T)             # geqrf's output: R above, reflectors below
                d = np.sign(np.diagonal(a)).copy()
                d[tau == 0.0] *= -1
                np.fill_diagonal(a, d)
                a = backend.to_device(a, backend.device_of(q)) if xp is not np else a
                return Tensor._make((a.T if transpose else a).astype(q.dtype, copy=False))
            if n == k:
                base = q.copy() if _is_orthogonal(q) else _make_orthogonal(q)
            else:
                from ... import creation
                extra = creation.randn(n, n - k, dtype=Q.dtype, device=Q.device).array
                base = _make_orthogonal(xp.concatenate([q, extra], axis=-1))
            self.base = Tensor._make(base.astype(q.dtype, copy=False))
            neg_id = xp.zeros(self.shape, dtype=q.dtype)
            xp.fill_diagonal(neg_id, -1.0)
            return Tensor._make(neg_id)
