"""Spectrum of a model's loss Hessian from Hessian-vector products, never forming the matrix.

As used by PyHessian (Yao et al. 2020) and Ghorbani et al. 2019:

* ``HessianOperator(loss, params)``: ``H v`` for the Hessian of ``loss`` in ``params``. The
  gradient is computed once with ``create_graph=True``; every product is then one more backward
  through that gradient graph (about the cost of a training step's backward).
* ``eigenvalues(loss, params, k, method="lanczos"|"power")``: the top-k eigenvalues (and
  eigenvectors). Lanczos with full reorthogonalisation stops when the Ritz residuals of the
  wanted eigenpairs fall below ``tol``; power iteration deflates the pairs found so far.
* ``trace(loss, params, n_samples)``: Hutchinson's estimator ``E[v^T H v]`` with Rademacher
  ``v``; returns the estimate and its standard error.
* ``density(loss, params, n_iter, n_v)``: stochastic Lanczos quadrature: per random start,
  the Ritz values of an ``n_iter``-step Lanczos run and their Gauss quadrature weights;
  ``spectral_density`` smooths them into a density on a grid.

Vectors are flat float64 NumPy arrays over all parameters (in ``params`` order); ``unflatten``
turns one back into per-parameter arrays.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.api import grad
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor

__all__ = ["HessianOperator", "eigenvalues", "trace", "density", "spectral_density"]


class HessianOperator:
    """``H v`` for the Hessian of a scalar ``loss`` with respect to ``params``.

    ``loss`` is a scalar Tensor still attached to its graph, or a callable returning one.
    """

    def __init__(self, loss, params):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("HessianOperator: params is empty")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise ValueError(f"HessianOperator: parameter {i} must be a Tensor that requires grad")
        with enable_grad():
            if callable(loss):
                loss = loss()
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                raise ValueError(f"HessianOperator: the loss must be a scalar Tensor, got "
                                 f"{tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__}")
            if not loss.requires_grad:
                raise ValueError("HessianOperator: the loss does not depend on params (no grad_fn)")
            gs = grad(loss, self.params, create_graph=True, allow_unused=True)
        self.grads = [g for g in gs]
        self.sizes = [p.numel() for p in self.params]
        self.n = int(sum(self.sizes))
        self.n_products = 0

    @property
    def gradient(self):
        return self._flatten(self.grads)

    def _flatten(self, ts):
        return np.concatenate([np.zeros(s) if t is None else
                               backend.to_numpy(t.array).astype(np.float64).reshape(-1)
                               for t, s in zip(ts, self.sizes)])

    def unflatten(self, v):
        """The flat vector ``v`` as one array per parameter (NumPy, float64)."""
        out, i = [], 0
        for p, s in zip(self.params, self.sizes):
            out.append(v[i:i + s].reshape(p.shape))
            i += s
        return out

    def matvec(self, v):
        """``H v`` for a flat vector ``v`` (float64 NumPy array of length ``n``)."""
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self.n,):
            raise ValueError(f"HessianOperator: expected a vector of {self.n} entries, got shape {v.shape}")
        dot = None
        with enable_grad():
            for g, p, vi in zip(self.grads, self.params, self.unflatten(v)):
                if g is None or not g.requires_grad:
                    continue
                va = backend.to_device(vi.astype(p.dtype), backend.device_of(p.array))
                t = (g * Tensor._make(va)).sum()
                dot = t if dot is None else dot + t
            self.n_products += 1
            if dot is None:          # the loss is linear in params: H = 0
                return np.zeros(self.n)
            hv = grad(dot, self.params, retain_graph=True, allow_unused=True)
        return self._flatten(hv)

    __matmul__ = matvec


def _operator(loss, params):
    return loss if isinstance(loss, HessianOperator) else HessianOperator(loss, params)


def _rng(seed):
    return np.random.default_rng(seed)


def _check_k(k, n, fname):
    k = int(k)
    if k < 1:
        raise ValueError(f"{fname}: k must be at least 1, got {k}")
    if k > n:
        raise ValueError(f"{fname}: asked for k={k} eigenvalues but the Hessian is {n} x {n} "
                         f"(the model has only {n} parameters)")
    return k


def _lanczos(op, v0, m, full_reorth=True):
    """``m`` Lanczos steps from ``v0``: (alphas, betas, basis Q (steps, n))."""
    n = op.n
    q = v0 / np.linalg.norm(v0)
    Q = [q]
    alphas, betas = [], []
    beta, q_prev = 0.0, np.zeros(n)
    for j in range(m):
        w = op.matvec(Q[-1])
        alpha = float(Q[-1] @ w)
        w = w - alpha * Q[-1] - beta * q_prev
        if full_reorth:
            B = np.array(Q)
            for _ in range(2):
                w -= B.T @ (B @ w)
        alphas.append(alpha)
        beta = float(np.linalg.norm(w))
        if j == m - 1 or beta < 1e-10 * max(1.0, abs(alpha)):
            break
        betas.append(beta)
        q_prev = Q[-1]
        Q.append(w / beta)
    return np.array(alphas), np.array(betas[:len(alphas) - 1]), np.array(Q[:len(alphas)])


def _pick(theta, k, which):
    if which == "LM":
        order = np.argsort(-np.abs(theta), kind="stable")
    elif which == "LA":
        order = np.argsort(-theta, kind="stable")
    elif which == "SA":
        order = np.argsort(theta, kind="stable")
    else:
        raise ValueError(f"eigenvalues: which must be 'LM', 'LA' or 'SA', got {which!r}")
    return order[:k]


def eigenvalues(loss, params=None, k=1, method="lanczos", which="LM", max_iter=100, tol=1e-6,
                seed=0, return_eigenvectors=False):
    """The top-``k`` eigenvalues of the loss Hessian (``which``: largest magnitude 'LM', largest
    algebraic 'LA', smallest algebraic 'SA'), sorted in that order, as a NumPy array; with
    ``return_eigenvectors`` also the unit eigenvectors as rows of an array (k, n).

    ``loss``: a scalar Tensor with its graph, a callable returning one, or a HessianOperator.
    ``method="lanczos"`` (full reorthogonalisation; at most ``max(max_iter, 2k)`` products, fewer
    when the residuals ``|beta_m s_mi|`` of the wanted pairs drop below ``tol * max(1, |theta|)``)
    or ``"power"`` (power iteration with deflation, ``max_iter`` products per eigenvalue, stops
    when the estimate changes by less than ``tol`` relatively; always 'LM' of the deflated
    operator, like PyHessian).
    """
    op = _operator(loss, params)
    k = _check_k(k, op.n, "eigenvalues")
    rng = _rng(seed)
    if method == "lanczos":
        m_max = min(op.n, max(int(max_iter), 2 * k))
        v0 = rng.standard_normal(op.n)
        # grow the Krylov space and stop once the wanted Ritz pairs have converged
        n = op.n
        q = v0 / np.linalg.norm(v0)
        Q, alphas, betas = [q], [], []
        beta, q_prev = 0.0, np.zeros(n)
        for j in range(m_max):
            w = op.matvec(Q[-1])
            alpha = float(Q[-1] @ w)
            w = w - alpha * Q[-1] - beta * q_prev
            B = np.array(Q)
            for _ in range(2):
                w -= B.T @ (B @ w)
            alphas.append(alpha)
            beta = float(np.linalg.norm(w))
            T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
            theta, S = np.linalg.eigh(T)
            idx = _pick(theta, min(k, len(theta)), which)
            exhausted = beta < 1e-10 * max(1.0, np.abs(theta).max())
            if len(theta) >= k:
                res = np.abs(beta * S[-1, idx])
                if exhausted or np.all(res <= tol * np.maximum(1.0, np.abs(theta[idx]))):
                    break
            if exhausted or j == m_max - 1:
                break
            betas.append(beta)
            q_prev = Q[-1]
            Q.append(w / beta)
        if len(theta) < k:
            raise RuntimeError(f"eigenvalues: the Krylov space closed after {len(theta)} steps, fewer than "
                               f"k={k}; start from another seed")
        vals = theta[idx]
        if not return_eigenvectors:
            return vals
        vecs = (np.array(Q[:len(theta)]).T @ S[:, idx]).T
        return vals, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    if method != "power":
        raise ValueError(f"eigenvalues: method must be 'lanczos' or 'power', got {method!r}")
    vals, vecs = [], []
    for _ in range(k):
        v = rng.standard_normal(op.n)
        lam = None
        for _ in range(int(max_iter)):
            for u in vecs:
                v -= (u @ v) * u
            v /= np.linalg.norm(v)
            hv = op.matvec(v)
            for u in vecs:
                hv -= (u @ hv) * u
            new = float(v @ hv)
            done = lam is not None and abs(new - lam) <= tol * max(1.0, abs(new))
            lam, v = new, hv
            if done:
                break
        v = v / np.linalg.norm(v)
        vals.append(lam)
        vecs.append(v)
    vals = np.array(vals)
    return (vals, np.array(vecs)) if return_eigenvectors else vals


def trace(loss, params=None, n_samples=100, seed=0):
    """Hutchinson's estimate of ``tr(H)``: the mean of ``v^T H v`` over ``n_samples`` Rademacher
    vectors. Returns ``(estimate, standard_error)`` (the sample standard deviation over
    ``sqrt(n_samples)``)."""
    op = _operator(loss, params)
    n_samples = int(n_samples)
    if n_samples < 2:
        raise ValueError(f"trace: n_samples must be at least 2 (for a standard error), got {n_samples}")
    rng = _rng(seed)
    vals = np.empty(n_samples)
    for i in range(n_samples):
        v = rng.choice([-1.0, 1.0], size=op.n)
        vals[i] = v @ op.matvec(v)
    return float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(n_samples))


def density(loss, params=None, n_iter=100, n_v=1, seed=0):
    """Stochastic Lanczos quadrature: for each of ``n_v`` Rademacher starts, an ``n_iter``-step
    Lanczos run (capped at the number of parameters). Returns ``(nodes, weights)``: lists of
    arrays, the Ritz values and their Gauss quadrature weights (each run's weights sum to 1;
    ``sum(weights * nodes**j)`` estimates ``tr(H^j) / n``)."""
    op = _operator(loss, params)
    m = min(int(n_iter), op.n)
    if m < 1 or int(n_v) < 1:
        raise ValueError(f"density: n_iter and n_v must be positive, got {n_iter}, {n_v}")
    rng = _rng(seed)
    nodes, weights = [], []
    for _ in range(int(n_v)):
        v = rng.choice([-1.0, 1.0], size=op.n)
        a, b, _ = _lanczos(op, v, m)
        T = np.diag(a) + np.diag(b, 1) + np.diag(b, -1)
        theta, S = np.linalg.eigh(T)
        nodes.append(theta)
        weights.append(S[0] ** 2)
    return nodes, weights


def spectral_density(nodes, weights, grid, sigma=None):
    """The density of eigenvalues on ``grid``: each Ritz value a Gaussian of width ``sigma``
    (default: 1% of the spectrum's range) weighted by its quadrature weight, averaged over runs."""
    grid = np.asarray(grid, dtype=np.float64)
    allv = np.concatenate([np.asarray(t) for t in nodes])
    if sigma is None:
        sigma = max(1e-12, 0.01 * float(allv.max() - allv.min()))
    out = np.zeros_like(grid)
    for t, w in zip(nodes, weights):
        d = (grid[:, None] - np.asarray(t)[None, :]) / sigma
        out += (np.exp(-0.5 * d * d) * np.asarray(w)[None, :]).sum(axis=1)
    return out / (len(nodes) * sigma * np.sqrt(2 * np.pi))
