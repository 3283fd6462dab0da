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
from .kl import kl_divergence, register_kl

__all__ = ["Distribution", "Normal", "Bernoulli", "Categorical", "OneHotCategorical", "Uniform",
           "MultivariateNormal", "Independent", "Gamma", "Beta", "Dirichlet", "kl_divergence", "register_kl", "constraints"]
