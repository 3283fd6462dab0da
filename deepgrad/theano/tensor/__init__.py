"""``theano.tensor`` on deepgrad: typed symbolic variables and the ops that combine them.

``import deepgrad.theano.tensor as T`` gives ``T.dscalar()``, ``T.fmatrix('x')``, ``T.ivector()``
(prefixes b, w, i, l: int8/16/32/64; f, d: float32/64; none: ``config.floatX``), ``T.dot``,
``T.grad``, reductions, element-wise math, ``T.switch``, ``T.nnet.sigmoid``/``softmax``/``relu``,
indexing with ``set_subtensor``/``inc_subtensor``, ``T.concatenate``/``T.stack``.
"""
from __future__ import annotations

from ..config import config
from ..graph import (TensorType, TensorVariable, TensorConstant, Variable, as_tensor_variable)  # noqa: F401
from ..gradient import grad  # noqa: F401
from .basic import (add, sub, mul, true_div, int_div, mod, pow, maximum, minimum, eq, neq, lt, gt, le, ge,  # noqa: F401
                    and_, or_, xor, invert, neg, abs_, sqr, sgn, floor, ceil, round, exp, exp2, expm1, log,
                    log1p, log2, log10, sqrt, inv, tanh, sinh, cosh, sin, cos, arctan, erf, sigmoid,
                    softplus, isnan, isinf, switch, where, clip, relu, cast, zeros_like, ones_like, sum,
                    mean, prod, max, min, var, std, argmax, argmin, dot, dimshuffle, transpose,
                    addbroadcast, patternbroadcast, shape, reshape, flatten, concatenate, stack,
                    set_subtensor, inc_subtensor, constant, arange, true_divide, abs, reciprocal,
                    Elemwise, Reduce, Dot, DimShuffle, Subtensor, IncSubtensor, Cast, alloc, zeros, ones,
                    shape_padleft, shape_padright, unbroadcast)
from . import nnet, signal, shared_randomstreams  # noqa: F401

_DTYPES = {"b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32", "d": "float64"}
_KINDS = {"scalar": (), "vector": (False,), "matrix": (False, False), "row": (True, False),
          "col": (False, True), "tensor3": (False,) * 3, "tensor4": (False,) * 4, "tensor5": (False,) * 5}


def _maker(kind, dtype):
    bcast = _KINDS[kind]

    def make(name=None, dtype=dtype):
        return TensorType(dtype or config.floatX, bcast)(name)
    make.__name__ = kind if dtype is None else f"{_rev[dtype]}{kind}"
    make.__doc__ = f"A new symbolic {kind} of dtype {dtype or 'config.floatX'}."
    return make


def _plural(maker):
    def many(*names):
        if len(names) == 1 and isinstance(names[0], int):
            return [maker() for _ in range(names[0])]
        if len(names) == 1 and isinstance(names[0], str) and "," in names[0]:
            names = [n.strip() for n in names[0].split(",")]
        return [maker(n) for n in names]
    return many


_rev = {v: k for k, v in _DTYPES.items()}
for _kind in _KINDS:
    globals()[_kind] = _maker(_kind, None)
    _pl = "matrices" if _kind == "matrix" else _kind + "s"
    globals()[_pl] = _plural(globals()[_kind])
    for _p, _dt in _DTYPES.items():
        globals()[_p + _kind] = _maker(_kind, _dt)
        globals()[_p + _pl] = _plural(globals()[_p + _kind])
del _kind, _pl, _p, _dt


def tensor(dtype=None, broadcastable=(False, False), name=None):
    """A new symbolic variable of any broadcastable pattern (Theano's T.tensor)."""
    return TensorType(dtype or config.floatX, broadcastable)(name)


def outer(x, y):
    """Outer product of two vectors."""
    return dimshuffle(x, 0, "x") * dimshuffle(y, "x", 0)
