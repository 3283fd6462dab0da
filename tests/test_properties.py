"""Property tests: random (broadcastable) shapes, dims and dtypes for the elementwise ops and the
reductions, compared with PyTorch (forward, first and second gradients)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import deepgrad as dg
from opcheck import check_op

SETTINGS = settings(max_examples=20, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

DTYPES = st.sampled_from([np.float64, np.float32])


def _data(shape, seed, dtype, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


# ---- elementwise -----------------------------------------------------------------------------

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, None),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, None),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, None),
    "div": (lambda a, b: a / b, lambda a, b: a / b, "pos_b"),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, "pos_a"),
    "maximum": (dg.maximum, torch.maximum, None),
    "minimum": (dg.minimum, torch.minimum, None),
    "where": (lambda a, b: dg.where(a > 0, a, b), lambda a, b: torch.where(a > 0, a, b), None),
    "add_alpha": (lambda a, b: dg.add(a, b, alpha=-0.5), lambda a, b: torch.add(a, b, alpha=-0.5), None),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3),
       seed=st.integers(0, 2 ** 16), dtype=DTYPES)
def test_binary_broadcasting(name, shapes, seed, dtype):
    f, tf, domain = BINARY[name]
    sa, sb = shapes.input_shapes
    a = _data(sa, seed, dtype, *((0.5, 2.0) if domain == "pos_a" else (-2.0, 2.0)))
    b = _data(sb, seed + 1, dtype, *((0.5, 2.0) if domain == "pos_b" else (-2.0, 2.0)))
    check_op(f, tf, [a, b], gradcheck=False)


UNARY = {
    "neg": (lambda x: -x, lambda x: -x, None),
    "abs": (dg.abs, torch.abs, None),
    "exp": (dg.exp, torch.exp, None),
    "log": (dg.log, torch.log, "pos"),
    "log1p": (dg.log1p, torch.log1p, "pos"),
    "expm1": (dg.expm1, torch.expm1, None),
    "sqrt": (dg.sqrt, torch.sqrt, "pos"),
    "rsqrt": (dg.rsqrt, torch.rsqrt, "pos"),
    "sin": (dg.sin, torch.sin, None),
    "cos": (dg.cos, torch.cos, None),
    "tanh": (dg.tanh, torch.tanh, None),
    "sigmoid": (dg.sigmoid, torch.sigmoid, None),
    "relu": (dg.relu, torch.relu, None),
    "gelu": (dg.gelu, TF.gelu, None),
    "softplus": (dg.softplus, TF.softplus, None),
    "silu": (dg.silu, TF.silu, None),
    "elu": (dg.elu, TF.elu, None),
    "square": (dg.square, torch.square, None),
    "reciprocal": (dg.reciprocal, torch.reciprocal, "pos"),
    "pow_scalar": (lambda x: x ** 3, lambda x: x ** 3, None),
    "clamp": (lambda x: dg.clamp(x, -0.5, 1.0), lambda x: torch.clamp(x, -0.5, 1.0), None),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(shape=array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3), seed=st.integers(0, 2 ** 16),
       dtype=DTYPES)
def test_unary(name, shape, seed, dtype):
    f, tf, domain = UNARY[name]
    x = _data(shape, seed, dtype, *((0.2, 3.0) if domain == "pos" else (-3.0, 3.0)))
    # gelu uses a 1.2e-7-accurate erf; the rest match to float64 rounding.
    tol = dict(rtol=1e-6, atol=1e-6) if name == "gelu" and dtype == np.float64 else {}
    check_op(f, tf, [x], gradcheck=False, **tol)


# ---- reductions -------------------------------------------------------------------------------

@st.composite
def shape_and_dims(draw, single=False, nonempty=False, allow_none=True):
    shape = draw(array_shapes(min_dims=0, max_dims=4, min_side=1 if nonempty else 0, max_side=3))
    nd = len(shape)
    keepdim = draw(st.booleans())
    if nd == 0:
        dim = draw(st.sampled_from([None, 0, -1] if allow_none else [0, -1]))
        return shape, dim, keepdim
    choices = ["int"] + (["none"] if allow_none else []) + ([] if single else ["tuple"])
    kind = draw(st.sampled_from(choices))
    if kind == "none":
        return shape, None, keepdim
    if kind == "int":
        return shape, draw(st.integers(-nd, nd - 1)), keepdim
    axes = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    signs = draw(st.lists(st.booleans(), min_size=len(axes), max_size=len(axes)))
    return shape, tuple(a - nd if s else a for a, s in zip(axes, signs)), keepdim


def _torch_dims(dim):
    return {} if dim is None else {"dim": dim}


REDUCE = {
    "sum": lambda m, x, d, k: m.sum(x, **_torch_dims(d), keepdim=k) if d is not None else m.sum(x),
    "mean": lambda m, x, d, k: m.mean(x, **_torch_dims(d), keepdim=k) if d is not None else m.mean(x),
    "var": lambda m, x, d, k: m.var(x, **_torch_dims(d), keepdim=k),
    "std": lambda m, x, d, k: m.std(x, **_torch_dims(d), keepdim=k, correction=0),
    "amax": lambda m, x, d, k: m.amax(x, dim=() if d is None else d, keepdim=k),
    "amin": lambda m, x, d, k: m.amin(x, dim=() if d is None else d, keepdim=k),
    "logsumexp": lambda m, x, d, k: m.logsumexp(x, dim=tuple(range(x.ndim)) if d is None else d, keepdim=k),
    "norm2": lambda m, x, d, k: m.norm(x, 2, d, k),
    "norm1": lambda m, x, d, k: m.norm(x, 1, d, k),
    "norm3": lambda m, x, d, k: m.norm(x, 3, d, k),
    "norm_inf": lambda m, x, d, k: m.norm(x, math.inf, d, k),
}

NEEDS_NONEMPTY = {"amax", "amin", "norm_inf", "var", "std", "norm2", "norm3"}


@pytest.mark.parametrize("name", sorted(REDUCE))
@pytest.mark.filterwarnings("ignore:.*degrees of freedom", "ignore:invalid value:RuntimeWarning",
                            "ignore:divide by zero:RuntimeWarning")
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2 ** 16), dtype=DTYPES)
def test_reduction(name, data, seed, dtype):
    shape, dim, keepdim = data.draw(shape_and_dims(nonempty=name in NEEDS_NONEMPTY))
    f = REDUCE[name]
    x = _data(shape, seed, dtype)
    if name in ("var", "std") and x.size == 1:
        x = x.reshape(shape)  # n - correction = 0: nan/inf like torch; skip gradients there
        check_op(lambda t: f(dg, t, dim, keepdim), lambda t: f(torch, t, dim, keepdim), [x], grad=False)
        return
    check_op(lambda t: f(dg, t, dim, keepdim), lambda t: f(torch, t, dim, keepdim), [x], gradcheck=False)


SINGLE_DIM = {
    "softmax": lambda m, x, d, k: m.softmax(x, d),
    "log_softmax": lambda m, x, d, k: m.log_softmax(x, d),
    "cumsum": lambda m, x, d, k: m.cumsum(x, d),
    "prod": lambda m, x, d, k: m.prod(x, d, keepdim=k),
    "max_dim": lambda m, x, d, k: tuple(m.max(x, d, keepdim=k)),
    "min_dim": lambda m, x, d, k: tuple(m.min(x, d, keepdim=k)),
    "sort": lambda m, x, d, k: tuple(m.sort(x, d, descending=k)),
    "topk": lambda m, x, d, k: tuple(m.topk(x, 1, d, largest=k)),
}


@pytest.mark.parametrize("name", sorted(SINGLE_DIM))
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2 ** 16), dtype=DTYPES)
def test_single_dim_reduction(name, data, seed, dtype):
    nonempty = name in ("max_dim", "min_dim", "topk")
    shape, dim, keepdim = data.draw(shape_and_dims(single=True, nonempty=nonempty, allow_none=False))
    f = SINGLE_DIM[name]
    x = _data(shape, seed, dtype, *((0.5, 1.5) if name == "prod" else (-2.0, 2.0)))
    check_op(lambda t: f(dg, t, dim, keepdim), lambda t: f(torch, t, dim, keepdim), [x], gradcheck=False)


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3),
       seed=st.integers(0, 2 ** 16), dtype=DTYPES)
def test_composite_broadcast_then_reduce(shapes, seed, dtype):
    """A small graph mixing broadcasting elementwise ops with reductions (double backward too)."""
    sa, sb = shapes.input_shapes

    def f(m):
        def run(a, b):
            y = (a * b + a.exp()).sum(0) if len(shapes.result_shape) else a * b + a.exp()
            return (y * y).mean() + (a - b).abs().amax()
        return run

    check_op(f(dg), f(torch), [_data(sa, seed, dtype), _data(sb, seed + 1, dtype)], gradcheck=False)
