"""Every layer and activation vs PyTorch with the same weights: forward, input and parameter grads."""
import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn
import deepgrad.nn.functional as F
from nnutil import close, compare, randn, sync


# ---- linear layers ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(8, 20), (3, 4, 20), (20,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape, bias):
    compare(nn.Linear(20, 7, bias=bias), torch.nn.Linear(20, 7, bias=bias), randn(*shape))


def test_linear_float64_and_double_backward():
    m, tm = nn.Linear(5, 3).double(), torch.nn.Linear(5, 3).double()
    compare(m, tm, randn(4, 5, dtype=np.float64), rtol=1e-7, atol=1e-9)
    # create_graph through the fused op: d/dx of sum(grad_W ** 2) matches torch
    x = dg.tensor(randn(4, 5, dtype=np.float64), requires_grad=True)
    tx = torch.tensor(x.detach().numpy().copy(), requires_grad=True)
    (gw,) = dg.autograd.grad(m(x).tanh().sum(), [m.weight], create_graph=True)
    (tgw,) = torch.autograd.grad(tm(tx).tanh().sum(), [tm.weight], create_graph=True)
    (gx,) = dg.autograd.grad((gw * gw).sum(), [x])
    (tgx,) = torch.autograd.grad((tgw * tgw).sum(), [tx])
    close(gx, tgx, "double backward", 1e-7, 1e-9)


def test_linear_bad_input_names_layer_and_shapes():
    m = nn.Linear(784, 512)
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=784, out_features=512, bias=True\): expected "
                                           r"input with last dimension 784, got shape \(32, 100\)"):
        m(dg.randn(32, 100))
    with pytest.raises(RuntimeError, match="dtype"):
        m(dg.randn(2, 784, dtype=dg.float64))
    with pytest.raises(TypeError, match="Linear"):
        m(np.zeros((2, 784), np.float32))


def test_bilinear_identity_flatten_unflatten():
    compare(nn.Bilinear(4, 5, 3), torch.nn.Bilinear(4, 5, 3), randn(6, 4), randn(6, 5, seed=1))
    compare(nn.Identity(3, foo=1), torch.nn.Identity(3, foo=1), randn(2, 3))
    compare(nn.Flatten(), torch.nn.Flatten(), randn(2, 3, 4, 5))
    compare(nn.Flatten(0, 2), torch.nn.Flatten(0, 2), randn(2, 3, 4, 5))
    compare(nn.Unflatten(1, (2, 6)), torch.nn.Unflatten(1, (2, 6)), randn(3, 12, 2))


# ---- activations -------------------------------------------------------------------------------

ACTS = [
    ("ReLU", (), {}), ("LeakyReLU", (0.2,), {}), ("ELU", (), {"alpha": 0.7}), ("GELU", (), {}),
    ("GELU", (), {"approximate": "tanh"}), ("SiLU", (), {}), ("Sigmoid", (), {}), ("Tanh", (), {}),
    ("Softmax", (), {"dim": 1}), ("LogSoftmax", (), {"dim": -1}), ("Softplus", (), {"beta": 2.0, "threshold": 5.0}),
    ("Hardtanh", (), {"min_val": -0.5, "max_val": 1.5}), ("ReLU6", (), {}), ("SELU", (), {}), ("Mish", (), {}),
    ("LogSigmoid", (), {}), ("Softsign", (), {}), ("Hardswish", (), {}), ("Hardsigmoid", (), {}), ("CELU", (), {}),
    ("Softmin", (), {"dim": 1}), ("GLU", (), {}), ("Tanhshrink", (), {}),
]


@pytest.mark.parametrize("name,args,kwargs", ACTS, ids=[a[0] + str(a[2]) for a in ACTS])
def test_activation(name, args, kwargs):
    x = randn(4, 6, 4, scale=3.0)
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    compare(ours, theirs, x, do_sync=False)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("num", [1, 6])
def test_prelu(num):
    m, tm = nn.PReLU(num, init=0.1), torch.nn.PReLU(num, init=0.1)
    compare(m, tm, randn(4, 6, 3))
    assert repr(m) == repr(tm)


def test_inplace_relu_and_repr():
    x = dg.tensor([-1.0, 2.0])
    y = nn.ReLU(inplace=True)(x)
    assert y is x and x.tolist() == [0.0, 2.0]
    assert repr(nn.ReLU(inplace=True)) == repr(torch.nn.ReLU(inplace=True))
    assert repr(nn.LeakyReLU(0.1, True)) == repr(torch.nn.LeakyReLU(0.1, True))


# ---- dropout ------------------------------------------------------------------------------------

def test_dropout_train_statistics_and_eval_identity():
    dg.manual_seed(1)
    p = 0.3
    m = nn.Dropout(p)
    x = dg.ones(200, 500, requires_grad=True)
    y = m(x)
    a = y.detach().numpy()
    frac = (a == 0).mean()
    assert abs(frac - p) < 0.01, frac                       # 100k Bernoulli draws: sd 0.0015
    np.testing.assert_allclose(np.unique(a), [0.0, 1 / (1 - p)], rtol=1e-6)
    assert abs(a.mean() - 1.0) < 0.02                       # inverted dropout keeps the mean
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), a)       # gradient = the scaled mask
    m.eval()
    z = dg.randn(5, 5)
    assert m(z) is z
    assert repr(m) == repr(torch.nn.Dropout(p)) == "Dropout(p=0.3, inplace=False)"
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    assert F.dropout(z, 0.5, training=False) is z
    assert np.all(F.dropout(z, 1.0).numpy() == 0)


def test_dropout_reproducible_with_seed():
    dg.manual_seed(7)
    a = nn.Dropout()(dg.ones(50)).numpy()
    dg.manual_seed(7)
    b = nn.Dropout()(dg.ones(50)).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout2d_drops_whole_channels():
    dg.manual_seed(0)
    y = nn.Dropout2d(0.5)(dg.ones(20, 30, 4, 4)).numpy()
    per_channel = y.reshape(20, 30, -1)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))
    assert abs((per_channel[..., 0] == 0).mean() - 0.5) < 0.06
    m = nn.Dropout2d(0.5).eval()
    x = dg.ones(2, 3, 4, 4)
    assert m(x) is x


# ---- normalisation ------------------------------------------------------------------------------

def _bn_pair(cls, *args, **kwargs):
    return getattr(nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (16, 5)), ("BatchNorm1d", (8, 5, 7)),
                                       ("BatchNorm2d", (4, 5, 3, 3))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_train_eval_running_stats(cls, shape, momentum):
    m, tm = _bn_pair(cls, 5, momentum=momentum)
    with torch.no_grad():
        tm.weight.uniform_(0.5, 1.5)
        tm.bias.uniform_(-0.5, 0.5)
    sync(m, tm)
    for step in range(3):
        x = randn(*shape, seed=step, scale=2.0) + 1.0
        compare(m, tm, x, do_sync=False, seed=step)
        m.zero_grad(), tm.zero_grad()
    for name in ("running_mean", "running_var"):
        close(getattr(m, name), getattr(tm, name), name, 1e-5, 1e-6)
    assert int(m.num_batches_tracked.item()) == 3 == int(tm.num_batches_tracked)
    m.eval(), tm.eval()
    compare(m, tm, randn(*shape, seed=9), do_sync=False)
    for name in ("running_mean", "running_var"):        # eval never updates the stats
        close(getattr(m, name), getattr(tm, name), name, 1e-5, 1e-6)
    assert repr(m) == repr(tm)


@pytest.mark.parametrize("kwargs", [{"affine": False}, {"track_running_stats": False}, {"bias": False}])
def test_batchnorm_variants(kwargs):
    m, tm = _bn_pair("BatchNorm1d", 4, **kwargs)
    compare(m, tm, randn(6, 4))
    m.eval(), tm.eval()
    compare(m, tm, randn(6, 4, seed=1), do_sync=False)
    assert repr(m) == repr(tm)
    assert list(m.state_dict()) == list(tm.state_dict())


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4.*expected 2D or 3D input \(got 4D input"):
        nn.BatchNorm1d(4)(dg.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(dg.randn(1, 4))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm2d(4)(dg.randn(2, 3, 5, 5))


@pytest.mark.parametrize("shape,kwargs", [((4, 6, 10), {}), ((4, 6, 10), {"bias": False}),
                                          ((4, 6, 10), {"elementwise_affine": False})])
def test_layernorm(shape, kwargs):
    m, tm = nn.LayerNorm(10, **kwargs), torch.nn.LayerNorm(10, **kwargs)
    if m.weight is not None:
        with torch.no_grad():
            tm.weight.uniform_(0.5, 1.5)
    compare(m, tm, randn(*shape, scale=3.0))
    assert repr(m) == repr(tm)


def test_layernorm_two_dims():
    m, tm = nn.LayerNorm([6, 10]), torch.nn.LayerNorm([6, 10])
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
    compare(m, tm, randn(4, 6, 10))
    with pytest.raises(ValueError, match=r"LayerNorm\(\(6, 10\).*got shape \(4, 10, 6\)"):
        m(dg.randn(4, 10, 6))


@pytest.mark.parametrize("groups", [1, 3, 6])
def test_groupnorm(groups):
    m, tm = nn.GroupNorm(groups, 6), torch.nn.GroupNorm(groups, 6)
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
    compare(m, tm, randn(3, 6, 4, 5, scale=2.0))
    assert repr(m) == repr(tm)
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)


# ---- embedding ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 2}, {"padding_idx": -1}, {"scale_grad_by_freq": True}])
def test_embedding(kwargs):
    m, tm = nn.Embedding(10, 4, **kwargs), torch.nn.Embedding(10, 4, **kwargs)
    idx = np.array([[1, 2, 3, 2], [9, 2, 0, 1]], dtype=np.int64)
    compare(m, tm, idx)
    assert repr(m) == repr(tm)


def test_embedding_max_norm_and_from_pretrained():
    m, tm = nn.Embedding(10, 4, max_norm=1.0), torch.nn.Embedding(10, 4, max_norm=1.0)
    idx = np.array([1, 5, 5, 7], dtype=np.int64)
    compare(m, tm, idx)
    close(m.weight, tm.weight, "renormalised weight")
    assert repr(m) == repr(tm)
    w = randn(5, 3)
    e = nn.Embedding.from_pretrained(dg.tensor(w))
    assert not e.weight.requires_grad
    np.testing.assert_array_equal(e(dg.tensor([4, 0])).numpy(), w[[4, 0]])
    assert nn.Embedding.from_pretrained(dg.tensor(w), freeze=False).weight.requires_grad
    with pytest.raises(IndexError, match=r"Embedding\(5, 3\): embedding: index 5 is out of range"):
        e(dg.tensor([5]))
    with pytest.raises(TypeError, match="integer"):
        e(dg.tensor([1.0]))


def test_default_init_distributions_like_torch():
    dg.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    w = lin.weight.detach().numpy()
    assert w.min() >= -bound and w.max() <= bound and abs(w.std() - bound / np.sqrt(3)) < 1e-3
    b = lin.bias.detach().numpy()
    assert b.min() >= -bound and b.max() <= bound
    e = nn.Embedding(1000, 100).weight.detach().numpy()
    assert abs(e.mean()) < 0.01 and abs(e.std() - 1) < 0.01
    bn = nn.BatchNorm2d(3)
    assert bn.weight.tolist() == [1.0] * 3 and bn.bias.tolist() == [0.0] * 3
    bl = nn.Bilinear(50, 20, 30).weight.detach().numpy()
    assert bl.max() <= 1 / np.sqrt(50) and abs(bl.std() - 1 / np.sqrt(150)) < 2e-3


# ---- fused ops: float64 central differences ------------------------------------------------------

def _gc(fn, *arrays):
    xs = [dg.tensor(a, requires_grad=True) for a in arrays]
    assert dg.autograd.gradcheck(fn, xs)


def test_fused_ops_gradcheck_float64():
    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s)  # noqa: E731
    t = dg.tensor([0, 2, 1, 2])
    _gc(lambda x: F.cross_entropy(x, t, weight=dg.tensor([1.0, 2.0, 0.5], dtype=dg.float64),
                                  label_smoothing=0.1), r(4, 3))
    _gc(lambda x, p: F.cross_entropy(x, p.softmax(1)), r(4, 3), r(4, 3))
    _gc(lambda x: F.nll_loss(x, t, reduction="sum"), r(4, 3))
    _gc(lambda x: F.multi_margin_loss(x, t, p=2, margin=0.7), r(4, 3))
    rm, rv = dg.zeros(3, dtype=dg.float64), dg.ones(3, dtype=dg.float64)
    _gc(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), r(5, 3, 2), r(3), r(3))
    _gc(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), r(5, 3), r(3), r(3))
    _gc(lambda x, w, b: F.layer_norm(x, (4,), w, b), r(3, 4), r(4), r(4))
    _gc(lambda x, w, b: F.group_norm(x, 2, w, b), r(2, 4, 3), r(4), r(4))
    _gc(lambda x, w: F.prelu(x, w), r(3, 2, 2), np.array([0.1, 0.3]))
    _gc(lambda a, b, w: F.bilinear(a, b, w), r(3, 2), r(3, 4), r(5, 2, 4))
    _gc(lambda w: F.embedding(dg.tensor([[0, 2], [2, 1]]), w), r(3, 2))


def test_fused_ops_refuse_double_backward_clearly():
    # cross_entropy differentiates twice now (tests/test_second_order.py); an op without a
    # second-order route still refuses by name
    x = dg.tensor(randn(4, 3, dtype=np.float64), requires_grad=True)
    (g,) = dg.autograd.grad(F.cross_entropy(x, dg.tensor([0, 1, 2, 0])), [x], create_graph=True)
    assert g.requires_grad

    class Cube(dg.autograd.Function):      # a fused op without graph_backward
        array_backward = True

        def forward(self, a):
            self.a = a
            return a ** 3

        def backward(self, g):
            return 3 * self.a ** 2 * g
    with pytest.raises(RuntimeError, match="Cube has a first-order"):
        dg.autograd.grad(Cube.apply(x).sum(), [x], create_graph=True)
