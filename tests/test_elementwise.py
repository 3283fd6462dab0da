"""Elementwise ops against PyTorch: values, gradients, float64 gradcheck, double backward."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
from opcheck import check_op, rand, noncontig

SHAPE_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((0, 3), (3,)),
               ((1,), (5,))]

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "add_alpha": (lambda a, b: dg.add(a, b, alpha=2.5), lambda a, b: torch.add(a, b, alpha=2.5)),
    "sub_alpha": (lambda a, b: dg.sub(a, b, alpha=-1.5), lambda a, b: torch.sub(a, b, alpha=-1.5)),
    "pow": (lambda a, b: a.abs() ** b, lambda a, b: a.abs() ** b),
    "maximum": (dg.maximum, torch.maximum),
    "minimum": (dg.minimum, torch.minimum),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary(name, shapes, dtype):
    f, tf = BINARY[name]
    a = rand(*shapes[0], seed=1, dtype=dtype)
    b = rand(*shapes[1], seed=2, low=0.5, high=2.0, dtype=dtype)
    check_op(f, tf, [a, b])


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
    "leaky_relu": (lambda x: dg.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1), None),
    "elu": (lambda x: dg.elu(x, 1.5), lambda x: TF.elu(x, 1.5), None),
    "gelu": (dg.gelu, TF.gelu, None),
    "gelu_tanh": (lambda x: dg.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"), None),
    "softplus": (lambda x: dg.softplus(x, beta=2.0, threshold=3.0), lambda x: TF.softplus(x, beta=2.0, threshold=3.0), None),
    "silu": (dg.silu, TF.silu, None),
    "square": (dg.square, torch.square, None),
    "reciprocal": (dg.reciprocal, torch.reciprocal, "pos"),
    "pow_scalar": (lambda x: x ** 3, lambda x: x ** 3, None),
    "pow_frac": (lambda x: x ** 1.5, lambda x: x ** 1.5, "pos"),
    "pow_neg": (lambda x: x ** -2, lambda x: x ** -2, "pos"),
    "rpow": (lambda x: 2.0 ** x, lambda x: 2.0 ** x, None),
    "rsub": (lambda x: 1.0 - x, lambda x: 1.0 - x, None),
    "rdiv": (lambda x: 3.0 / x, lambda x: 3.0 / x, "pos"),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7), None),
    "clamp_min": (lambda x: x.clamp(min=0.1), lambda x: x.clamp(min=0.1), None),
    "sign": (lambda x: dg.sign(x) * x, lambda x: torch.sign(x) * x, None),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(3, 4), (), (0,), (2, 1, 3)], ids=str)
def test_unary(name, shape):
    f, tf, domain = UNARY[name]
    x = rand(*shape, seed=3, low=0.2 if domain == "pos" else -2.0, high=2.0)
    check_op(f, tf, [x])
    check_op(f, tf, [x.astype(np.float32)], gradcheck=False)


def test_noncontiguous_inputs():
    a = noncontig(rand(4, 5, seed=1))
    b = rand(5, 4, seed=2).T
    assert not b.flags.c_contiguous
    check_op(lambda x, y: x * y + x.exp(), lambda x, y: x * y + x.exp(), [a, b])


def test_where_and_masked_fill():
    x, y = rand(3, 4, seed=1), rand(4, seed=2)
    cond = rand(3, 4, seed=3) > 0
    check_op(lambda a, b: dg.where(dg.tensor(cond), a, b), lambda a, b: torch.where(torch.tensor(cond), a, b), [x, y])
    m = rand(1, 4, seed=4) > 0
    check_op(lambda a: a.masked_fill(dg.tensor(m), -1.5), lambda a: a.masked_fill(torch.tensor(m), -1.5), [x])


def test_ties_split_gradient_like_torch():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 1.0, 4.0])
    check_op(dg.maximum, torch.maximum, [a, b], gradcheck=False)
    check_op(dg.minimum, torch.minimum, [a, b], gradcheck=False)
    x = np.array([-1.0, 0.0, 1.0])  # relu'(0) = 0; clamp passes the gradient at the bounds
    check_op(dg.relu, torch.relu, [x], gradcheck=False)
    check_op(lambda t: t.clamp(0.0, 1.0), lambda t: t.clamp(0.0, 1.0), [x], gradcheck=False)


def test_comparisons_and_logic_have_no_grad():
    x = dg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for r in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2):
        assert r.dtype == np.bool_ and not r.requires_grad
    assert ((x > 1) & (x < 3)).tolist() == [False, True, False]
    assert ((x < 2) | (x > 2)).tolist() == [True, False, True]
    assert (~(x > 1)).tolist() == [True, False, False]


def test_type_promotion_like_torch():
    f32 = dg.ones(2)
    assert (f32 * 2.5).dtype == np.float32
    assert (f32 + dg.ones(2, dtype=dg.float64)).dtype == np.float64
    i64 = dg.tensor([1, 2])
    assert i64.dtype == np.int64
    assert (i64 * 2).dtype == np.int64
    assert (i64 * 2.5).dtype == np.float32
    assert (i64 + f32).dtype == np.float32
    assert (i64 / 2).dtype == np.float32
    assert dg.exp(i64).dtype == np.float32


def test_broadcast_error_names_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"add.*\(2, 3\).*\(4,\)"):
        dg.ones(2, 3) + dg.ones(4)
    with pytest.raises(RuntimeError, match=r"mul.*\(2, 3\).*\(2,\)"):
        dg.ones(2, 3) * dg.ones(2)


def test_float_only_ops_reject_ints_clearly():
    with pytest.raises(TypeError, match="gelu"):
        dg.gelu(dg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="floating point"):
        dg.tensor([1, 2]).requires_grad_()


def test_huge_inputs_stay_finite():
    x = dg.tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = dg.sigmoid(x) + dg.softplus(x) * 0 + dg.tanh(x)
    y.backward(dg.ones(3))
    assert np.isfinite(y.detach().numpy()).all()
    assert np.isfinite(x.grad.numpy()).all()
