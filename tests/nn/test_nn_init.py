"""Initialisers: calculate_gain exactly as PyTorch; sample moments of large draws vs the formulas."""
import math

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn
from deepgrad.nn import init


@pytest.mark.parametrize("args", [("linear",), ("conv1d",), ("conv2d",), ("conv_transpose3d",), ("sigmoid",),
                                  ("tanh",), ("relu",), ("leaky_relu",), ("leaky_relu", 0.2), ("leaky_relu", 3),
                                  ("selu",)])
def test_calculate_gain_matches_torch(args):
    assert init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)
    assert type(init.calculate_gain(*args)) is type(torch.nn.init.calculate_gain(*args))


@pytest.mark.parametrize("args,msg", [(("foo",), "Unsupported nonlinearity foo"),
                                      (("leaky_relu", True), "negative_slope True not a valid number"),
                                      (("leaky_relu", "x"), "negative_slope x not a valid number")])
def test_calculate_gain_errors(args, msg):
    with pytest.raises(ValueError, match=msg):
        init.calculate_gain(*args)
    with pytest.raises(ValueError, match=msg):
        torch.nn.init.calculate_gain(*args)


def test_fan_in_fan_out():
    assert init._calculate_fan_in_and_fan_out(dg.empty(20, 30, 3, 3)) == (270, 180)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(dg.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(dg.empty(3, 3), mode="fan_avg")


def _moments(t):
    a = t.detach().numpy().astype(np.float64)
    return a.mean(), a.var(), a.min(), a.max()


SHAPE = (400, 250)          # 100k draws: the sample std of the variance is ~0.5% of it
FAN_IN, FAN_OUT = 250, 400


def _check(t, mean, var, lo=None, hi=None):
    m, v, mn, mx = _moments(t)
    sd = math.sqrt(var)
    assert abs(m - mean) < 5 * sd / math.sqrt(t.numel()) + 1e-12, (m, mean)
    assert abs(v - var) < 0.03 * var, (v, var)
    if lo is not None:
        assert mn >= lo and mx <= hi


def test_uniform_normal_constant():
    _check(init.uniform_(dg.empty(*SHAPE), -2.0, 4.0), 1.0, 3.0, -2.0, 4.0)
    _check(init.normal_(dg.empty(*SHAPE), 0.5, 2.0), 0.5, 4.0)
    assert np.all(init.constant_(dg.empty(3, 3), 0.3).numpy() == np.float32(0.3))
    assert np.all(init.zeros_(dg.ones(3)).numpy() == 0) and np.all(init.ones_(dg.zeros(3)).numpy() == 1)
    np.testing.assert_array_equal(init.eye_(dg.empty(3, 4)).numpy(), np.eye(3, 4))
    with pytest.raises(ValueError, match="2 dimensions"):
        init.eye_(dg.empty(3))
    d = init.dirac_(dg.empty(4, 2, 3, 3)).numpy()
    np.testing.assert_array_equal(d, torch.nn.init.dirac_(torch.empty(4, 2, 3, 3)).numpy())


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier(gain):
    var = gain ** 2 * 2.0 / (FAN_IN + FAN_OUT)
    a = math.sqrt(3 * var)
    _check(init.xavier_uniform_(dg.empty(*SHAPE), gain), 0.0, var, -a, a)
    _check(init.xavier_normal_(dg.empty(*SHAPE), gain), 0.0, var)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity,a", [("relu", 0), ("leaky_relu", 0.1), ("leaky_relu", math.sqrt(5)),
                                            ("tanh", 0)])
def test_kaiming(mode, nonlinearity, a):
    fan = FAN_IN if mode == "fan_in" else FAN_OUT
    gain = init.calculate_gain(nonlinearity, a)
    var = gain ** 2 / fan
    b = math.sqrt(3 * var)
    _check(init.kaiming_uniform_(dg.empty(*SHAPE), a, mode, nonlinearity), 0.0, var, -b, b)
    _check(init.kaiming_normal_(dg.empty(*SHAPE), a, mode, nonlinearity), 0.0, var)


def test_trunc_normal():
    t = init.trunc_normal_(dg.empty(*SHAPE), mean=0.0, std=1.0, a=-1.0, b=2.0)
    ref = torch.nn.init.trunc_normal_(torch.empty(*SHAPE), 0.0, 1.0, -1.0, 2.0).numpy().astype(np.float64)
    m, v, mn, mx = _moments(t)
    assert mn >= -1 and mx <= 2
    assert abs(m - ref.mean()) < 0.015 and abs(v - ref.var()) < 0.02


def test_orthogonal_and_sparse():
    for shape in [(6, 10), (10, 6), (4, 3, 2)]:
        q = init.orthogonal_(dg.empty(*shape), gain=2.0).numpy().reshape(shape[0], -1)
        small = q @ q.T if shape[0] <= q.shape[1] else q.T @ q
        np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-5)
    s = init.sparse_(dg.empty(100, 50), sparsity=0.3, std=0.5).numpy()
    assert np.all((s == 0).sum(0) >= 30)
    with pytest.raises(ValueError):
        init.sparse_(dg.empty(3), 0.1)


def test_generator_and_global_seed_reproducible():
    g1, g2 = dg.Generator().manual_seed(3), dg.Generator().manual_seed(3)
    a = init.kaiming_normal_(dg.empty(5, 5), generator=g1).numpy()
    b = init.kaiming_normal_(dg.empty(5, 5), generator=g2).numpy()
    np.testing.assert_array_equal(a, b)
    dg.manual_seed(11)
    w1 = nn.Linear(5, 5).weight.detach().numpy().copy()
    dg.manual_seed(11)
    w2 = nn.Linear(5, 5).weight.detach().numpy().copy()
    np.testing.assert_array_equal(w1, w2)


def test_init_in_place_on_parameters_keeps_identity_and_graph_free():
    lin = nn.Linear(4, 3)
    w = lin.weight
    v = w._version[0]
    out = init.xavier_uniform_(lin.weight)
    assert out is w and w.grad_fn is None and w.requires_grad and w._version[0] > v
