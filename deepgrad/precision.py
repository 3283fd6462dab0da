"""``deepgrad.precision``: emulated number formats and limited-precision training (deepgrad's own
research tools; PyTorch has no equivalent). The same objects as in :mod:`deepgrad.amp`::

    import deepgrad.precision as P
    with P.low_precision(model, propagation=P.DynamicFixedPoint(10), update=P.DynamicFixedPoint(12),
                         optimizer=opt):
        ...

See :mod:`deepgrad.amp.formats` (the formats, rounding, the differentiable ``quantize``) and
:mod:`deepgrad.amp.precision` (``low_precision``).
"""
from .amp.formats import (NumberFormat, FixedPoint, DynamicFixedPoint, Float16, Quantize, quantize,  # noqa: F401
                          round_nearest, round_stochastic, ROUNDINGS)
from .amp.precision import low_precision  # noqa: F401

__all__ = ["NumberFormat", "FixedPoint", "DynamicFixedPoint", "Float16", "quantize", "round_nearest",
           "round_stochastic", "low_precision"]
