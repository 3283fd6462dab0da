"""``theano.sandbox``: only ``rng_mrg.MRG_RandomStreams`` (the same streams as RandomStreams)."""
from . import rng_mrg  # noqa: F401
