"""Probability distributions with PyTorch's ``torch.distributions`` API: ``sample``,
differentiable ``rsample``, ``log_prob``, ``entropy``, moments and ``kl_divergence``."""
from . import constraints
from .distribution import Distribution
from .normal import Normal
from .bernoulli import Bernoulli
from .categorical import Categorical, OneHotCategorical
from .uniform import Uniform
from .multivariate_normal import MultivariateNormal
from .independent import Independent
from .gamma import Gamma, Beta, Dirichlet
from .simple import Exponential, Laplace, Poisson
from .kl import kl_divergence, register_kl

__all__ = ["Distribution", "Normal", "Bernoulli", "Categorical", "OneHotCategorical", "Uniform",
           "MultivariateNormal", "Independent", "Gamma", "Beta", "Dirichlet", "Exponential",
           "Laplace", "Poisson", "kl_divergence", "register_kl", "constraints"]


class _Missing(NotImplementedError, AttributeError):
    """A torch.distributions name deepgrad lacks (also an AttributeError, so hasattr() is False)."""


_TORCH_NAMES = {
    "Binomial", "Cauchy", "Chi2", "ContinuousBernoulli", "ExponentialFamily", "FisherSnedecor",
    "GeneralizedPareto", "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "InverseGamma",
    "Kumaraswamy", "LKJCholesky", "LogNormal", "LogisticNormal", "LowRankMultivariateNormal",
    "MixtureSameFamily", "Multinomial", "NegativeBinomial", "OneHotCategoricalStraightThrough",
    "Pareto", "RelaxedBernoulli", "RelaxedOneHotCategorical", "StudentT", "VonMises", "Weibull",
    "Wishart", "TransformedDistribution", "biject_to", "transform_to", "transforms"}


def __getattr__(name):
    if name in _TORCH_NAMES or name.endswith("Transform"):
        raise _Missing(f"torch.distributions.{name} is not implemented in deepgrad; available: "
                       f"{', '.join(n for n in __all__ if n[0].isupper())}")
    raise AttributeError(f"module 'deepgrad.distributions' has no attribute {name!r}")
