"""Principal components analysis with deepgrad's own linear algebra (deck 004: "if the manifold is
linear, learning is easy and can be done in closed form: compute the eigenvectors of the data
covariance matrix"), so that PCA and autoencoders are compared in one framework.

``X`` (n, d) is centred; with ``Xc = U S Vᵀ`` (``deepgrad.linalg.svd``) the principal axes are
the rows of ``Vᵀ`` and the variances ``S²/(n-1)``. ``method="eigh"`` diagonalises the d x d
covariance ``XcᵀXc/(n-1)`` with ``deepgrad.linalg.eigh`` instead (faster when n >> d, e.g. MNIST's
60,000 x 784; squares the condition number, so it is computed in float64). Signs are fixed so
that each component's largest-magnitude entry is positive.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor

__all__ = ["PCA"]


class PCA:
    """``PCA(n_components=None, method="auto")``: ``fit``, ``transform``, ``inverse_transform``,
    ``fit_transform``; after ``fit``: ``components_`` (k, d), ``explained_variance_`` (k),
    ``explained_variance_ratio_`` (k), ``singular_values_``, ``mean_`` (d) -- all Tensors, in the
    input's dtype. ``n_components``: an int, or None for min(n, d). ``method``: ``"svd"``,
    ``"eigh"`` or ``"auto"`` (eigh when n >= 4·d, else svd)."""

    def __init__(self, n_components=None, method="auto"):
        if method not in ("auto", "svd", "eigh"):
            raise ValueError(f"PCA: method must be 'auto', 'svd' or 'eigh', got {method!r}")
        if n_components is not None and (not isinstance(n_components, (int, np.integer)) or n_components < 1):
            raise ValueError(f"PCA: n_components must be a positive int or None, got {n_components!r}")
        self.n_components = n_components
        self.method = method

    def __repr__(self):
        return f"PCA(n_components={self.n_components}, method={self.method!r})"

    @staticmethod
    def _tensor(X, who):
        t = X if isinstance(X, Tensor) else Tensor._make(np.asarray(X))
        if t.dim() != 2:
            raise ValueError(f"PCA.{who}: expected a 2-d (samples, features) input, got shape {tuple(t.shape)}")
        if not backend.is_floating(t.array.dtype):
            t = Tensor._make(t.array.astype(backend.get_default_dtype()))
        return t

    def fit(self, X):
        from .. import linalg
        X = self._tensor(X, "fit")
        n, d = X.shape
        k = min(n, d) if self.n_components is None else int(self.n_components)
        if k > min(n, d):
            raise ValueError(f"PCA.fit: n_components={k} exceeds min(n_samples, n_features) = {min(n, d)} "
                             f"(input shape {(n, d)})")
        if n < 2:
            raise ValueError(f"PCA.fit: needs at least 2 samples, got input shape {(n, d)}")
        dt = X.array.dtype
        method = self.method if self.method != "auto" else ("eigh" if n >= 4 * d else "svd")
        with no_grad():
            mean = X.mean(0)
            Xc = X - mean
            if method == "svd":
                _, S, Vh = linalg.svd(Xc, full_matrices=False)
                var = S * S / (n - 1)
                total = var.sum()
                comps = Vh
            else:
                X64 = Xc.to(np.float64) if dt != np.float64 else Xc
                C = X64.t() @ X64 / (n - 1)
                w, V = linalg.eigh(C)
                w, V = w.flip(0).clamp(min=0), V.flip(1)
                var, comps, total = w, V.t(), w.sum()
                S = (var * (n - 1)).sqrt()
            comps = comps[:k]
            xp = backend.array_module(comps.array)
            a = comps.array
            sign = xp.sign(a[xp.arange(k), xp.abs(a).argmax(1)])
            sign[sign == 0] = 1
            self.components_ = Tensor._make((a * sign[:, None]).astype(dt))
            self.explained_variance_ = Tensor._make(var.array[:k].astype(dt))
            self.explained_variance_ratio_ = Tensor._make((var.array[:k] / total.array).astype(dt))
            self.singular_values_ = Tensor._make(S.array[:k].astype(dt))
            self.mean_ = mean
        self.n_components_, self.n_samples_, self.n_features_in_ = k, n, d
        return self

    def _fitted(self, who):
        if not hasattr(self, "components_"):
            raise RuntimeError(f"PCA.{who}: call fit(X) first")

    def transform(self, X):
        """``(X - mean_) @ components_ᵀ``: the coordinates on the principal axes."""
        self._fitted("transform")
        X = self._tensor(X, "transform")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"PCA.transform: fitted on {self.n_features_in_} features, got input shape "
                             f"{tuple(X.shape)}")
        return (X - self.mean_) @ self.components_.t()

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        """``Z @ components_ + mean_``: the reconstruction from the coordinates."""
        self._fitted("inverse_transform")
        Z = self._tensor(Z, "inverse_transform")
        if Z.shape[1] != self.n_components_:
            raise ValueError(f"PCA.inverse_transform: expected {self.n_components_} components per row, got shape "
                             f"{tuple(Z.shape)}")
        return Z @ self.components_ + self.mean_

    def reconstruction_error(self, X):
        """Mean over the rows of ``‖x - inverse_transform(transform(x))‖²``."""
        X = self._tensor(X, "reconstruction_error")
        R = self.inverse_transform(self.transform(X))
        return float(((X - R) ** 2).sum(1).mean().item())
