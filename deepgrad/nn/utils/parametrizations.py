"""``deepgrad.nn.utils.parametrizations``: ``weight_norm`` and ``spectral_norm`` as
parametrizations (``register_parametrization``), with PyTorch's state-dict keys
(``parametrizations.weight.original0/original1``; ``parametrizations.weight.original`` and
``parametrizations.weight.0._u/_v``)."""
from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from . import parametrize
from ._norms import norm_except_dim, power_iteration, sigma, weight_matrix, weight_norm_fn

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


class _WeightNorm(Module):
    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_norm_fn(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """Reparameterise ``module.<name>`` as ``g * v / ||v||`` (Salimans & Kingma, 2016); ``g`` is
    ``parametrizations.<name>.original0``, ``v`` is ``original1``. ``dim=None`` norms the whole tensor."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got n_power_iterations="
                             f"{n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            w_mat = weight_matrix(weight, self.dim)
            h, w = w_mat.shape
            from ... import creation
            u = creation.randn(h, dtype=weight.dtype, device=weight.device)
            v = creation.randn(w, dtype=weight.dtype, device=weight.device)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            power_iteration(w_mat.detach().array, self._u, self._v, 15, self.eps, v_first=False)

    def forward(self, weight):
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        w_mat = weight_matrix(weight, self.dim)
        if self.training:
            with no_grad():
                power_iteration(w_mat.detach().array, self._u, self._v, self.n_power_iterations, self.eps,
                                v_first=False)
        return weight / sigma(w_mat, self._u, self._v)

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divide ``module.<name>`` by its largest singular value, estimated by power iteration
    (Miyato et al., 2018), one step per training-mode access. ``dim`` defaults to 1 for
    transposed convolutions, else 0."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        from ..conv import _ConvTransposeNd
        dim = 1 if isinstance(module, _ConvTransposeNd) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    """Constrain the matrix ``module.<name>`` to orthonormal columns (or rows): ``orthogonal_map``
    'matrix_exp' (default for square matrices) or 'householder' (default otherwise); see
    ``deepgrad.nn.utils._orthogonal``. 'cayley' and complex or batched weights are not supported."""
    from ._orthogonal import _MAPS, _Orthogonal
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _MAPS:
        raise ValueError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    if orthogonal_map == "cayley":
        raise NotImplementedError("torch.nn.utils.parametrizations.orthogonal(orthogonal_map='cayley') is not "
                                  "implemented in deepgrad; use 'matrix_exp' or 'householder'")
    if weight.ndim > 2 or weight.array.dtype.kind == "c":
        raise NotImplementedError("torch.nn.utils.parametrizations.orthogonal on batched or complex weights is not "
                                  "implemented in deepgrad; it supports one real matrix")
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
