"""``theano.sandbox.rng_mrg.MRG_RandomStreams``: deepgrad draws from its own Generator, so this is
``RandomStreams`` under Theano's other name (the numbers differ from Theano's MRG31k3p anyway)."""
from ..tensor.shared_randomstreams import RandomStreams as MRG_RandomStreams  # noqa: F401

__all__ = ["MRG_RandomStreams"]
