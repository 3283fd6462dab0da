"""Shared pieces of weight normalisation and spectral normalisation (PyTorch's ``_weight_norm``,
``norm_except_dim``, the power iteration)."""
from __future__ import annotations

from ... import backend
from ...ops.linalg import dot, mv
from ...ops.reduce import norm


def norm_except_dim(v, pow=2, dim=0):
    """The ``pow``-norm of ``v`` over every dimension but ``dim``, kept as size-1 dimensions;
    ``dim=-1`` is the norm of the whole tensor (a 0-d tensor), as in PyTorch."""
    if dim == -1:
        return norm(v, pow)
    d = dim % v.ndim
    axes = tuple(i for i in range(v.ndim) if i != d)
    if not axes:
        return v.abs()      # a 1-d tensor normed over no dimension: each entry's absolute value
    return norm(v, pow, dim=axes, keepdim=True)


def weight_norm_fn(v, g, dim):
    """``v * (g / ||v||)`` with the norm taken over every dimension but ``dim`` (differentiable)."""
    return v * (g / norm_except_dim(v, 2, dim))


def weight_matrix(weight, dim):
    """``weight`` with ``dim`` moved first and the rest flattened: (size(dim), -1)."""
    if dim != 0:
        weight = weight.permute(dim, *[d for d in range(weight.ndim) if d != dim])
    return weight.reshape(weight.shape[0], -1)


def _normalize(a, eps, xp):
    n = xp.sqrt((a * a).sum())
    return a / max(float(n), eps)


def power_iteration(w_mat, u, v, n, eps, v_first):
    """``n`` steps of the power method on the raw (h, w) array ``w_mat``, updating the buffers ``u``
    (h,) and ``v`` (w,) in place. PyTorch's legacy hook updates v then u; the parametrization u then v."""
    xp = backend.array_module(w_mat)
    ua, va = u.array, v.array
    for _ in range(n):
        if v_first:
            va[...] = _normalize(w_mat.T @ ua, eps, xp)
            ua[...] = _normalize(w_mat @ va, eps, xp)
        else:
            ua[...] = _normalize(w_mat @ va, eps, xp)
            va[...] = _normalize(w_mat.T @ ua, eps, xp)
    if n:
        u._version[0] += 1
        v._version[0] += 1


def sigma(w_mat, u, v):
    """The spectral-norm estimate ``u . (W v)``, differentiable in ``W`` (u and v are constants)."""
    return dot(u.detach().clone(), mv(w_mat, v.detach().clone()))
