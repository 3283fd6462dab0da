"""``torch.special``: PyTorch's scipy-style names for deepgrad's special functions (each is the
deepgrad op of the same meaning, with its gradient). Names PyTorch has here that deepgrad lacks
raise NotImplementedError naming ``torch.special.X``."""
from __future__ import annotations

import math

from . import backend as _backend
from . import ops as _ops
from ._torch_api import TorchAPIMissing

expit = _ops.sigmoid
logit = _ops.logit
gammaln = _ops.lgamma
digamma = psi = _ops.digamma
polygamma = _ops.polygamma
multigammaln = _ops.mvlgamma
erf = _ops.erf
erfc = _ops.erfc
erfinv = _ops.erfinv
exp2 = _ops.exp2
expm1 = _ops.expm1
log1p = _ops.log1p
sinc = _ops.sinc
xlogy = _ops.xlogy
round = _ops.round  # noqa: A001
softmax = _ops.softmax
log_softmax = _ops.log_softmax
logsumexp = _ops.logsumexp


def entr(input):
    """-x log x (0 at 0, -inf below 0)."""
    x = input if input.dtype.kind in "fV" else input.to(_backend.get_default_dtype())
    out = 0.0 - _ops.xlogy(x, x)
    return _ops.where(x < 0, float("-inf"), out)


def ndtr(input):
    """The standard normal CDF."""
    return (_ops.erf(input * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5


def ndtri(input):
    """The inverse of the standard normal CDF."""
    return _ops.erfinv(input * 2.0 - 1.0) * math.sqrt(2.0)


def log_ndtr(input):
    return _ops.log(ndtr(input))


def xlog1py(input, other):
    """x * log1p(y), 0 where x is 0."""
    return _ops.where(input == 0, 0.0, input * _ops.log1p(other))


def erfcx(input):
    return _ops.exp(input * input) * _ops.erfc(input)


_TORCH_SPECIAL = ("airy_ai bessel_j0 bessel_j1 bessel_y0 bessel_y1 chebyshev_polynomial_t "
                  "chebyshev_polynomial_u chebyshev_polynomial_v chebyshev_polynomial_w gammainc "
                  "gammaincc hermite_polynomial_h hermite_polynomial_he i0 i0e i1 i1e laguerre_polynomial_l "
                  "legendre_polynomial_p modified_bessel_i0 modified_bessel_i1 modified_bessel_k0 "
                  "modified_bessel_k1 scaled_modified_bessel_k0 scaled_modified_bessel_k1 "
                  "shifted_chebyshev_polynomial_t shifted_chebyshev_polynomial_u "
                  "shifted_chebyshev_polynomial_v shifted_chebyshev_polynomial_w spherical_bessel_j0 "
                  "zeta").split()


def __getattr__(name):
    if name in _TORCH_SPECIAL:
        raise TorchAPIMissing(f"torch.special.{name} is not implemented in deepgrad")
    raise AttributeError(f"module 'deepgrad.special' has no attribute {name!r}")
