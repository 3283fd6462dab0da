"""deepgrad on the strict CuPy stand-in: every op, layer and optimiser on the "cuda" device.

``deepgrad.testing.strict_cuda()`` makes "cuda" a device whose arrays refuse NumPy as CuPy does (and
refuse NumPy functions, which CuPy would forward), so a ``numpy`` call on a device array anywhere in
deepgrad fails here, on a machine without a GPU. The op grid is the table-driven op tests of the
other files, re-run through ``opcheck.check_on_device`` (cpu against "cuda": values, first and second
gradients); the CPU results themselves are checked against PyTorch by those files.
"""
import inspect
import os
import sys

import numpy as np
import pytest

import deepgrad as dg
import opcheck
from deepgrad.testing import strict_cuda

import test_attention, test_conv, test_elementwise, test_index, test_linalg, test_ops_extra  # noqa: E401
import test_pool, test_reduce, test_rnn, test_shape, test_inplace, test_linalg_api, test_api_surface  # noqa: E401
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn"))
import nnutil, test_nn_layers, test_nn_compat  # noqa: E401,E402

OP_MODULES = [test_nn_compat, test_elementwise, test_reduce, test_shape, test_index, test_linalg, test_conv, test_pool,
              test_attention, test_rnn, test_ops_extra, test_inplace, test_linalg_api, test_api_surface]


@pytest.fixture(autouse=True)
def cuda():
    with strict_cuda() as xp:
        opcheck.DEVICE[0] = nnutil.DEVICE[0] = "cuda"
        try:
            yield xp
        finally:
            opcheck.DEVICE[0] = nnutil.DEVICE[0] = None


#: grid cases that close over tensors made on the CPU outside the case (PyTorch raises the same
#: "same device" error for them on CUDA); each has a device version below.
NOT_IN_GRID = {"test_pool.test_max_unpool"}


def _grid():
    """The test functions of OP_MODULES that check ops through opcheck.check_op."""
    found = {}
    for mod in OP_MODULES:
        for name, fn in vars(mod).items():
            if f"{mod.__name__}.{name}" in NOT_IN_GRID:
                continue
            if name.startswith("test_") and callable(fn) and "check_op(" in inspect.getsource(fn):
                found[f"test_grid_{mod.__name__[5:]}__{name[5:]}"] = fn
    for name, fn in vars(test_nn_layers).items():
        if name.startswith("test_") and callable(fn) and "compare(" in inspect.getsource(fn):
            found[f"test_grid_nn_layers__{name[5:]}"] = fn
    return found


globals().update(_grid())


# ---- functional ops the op files test without opcheck: losses, norms, layers, attention ---------
from deepgrad import nn  # noqa: E402
import deepgrad.nn.functional as F  # noqa: E402
from opcheck import check_on_device, rand  # noqa: E402


def _ix(*shape, high=4, seed=0):
    return np.random.default_rng(seed).integers(0, high, shape)


def _prob(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, shape)


FUNCTIONAL = [
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t), [rand(5, 4), _ix(5)]),
    ("cross_entropy_weighted_ls", lambda x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.1,
                                                                  ignore_index=2), [rand(5, 4), _ix(5), _prob(4)]),
    ("cross_entropy_probs", lambda x, p: F.cross_entropy(x, p.softmax(1)), [rand(5, 4), rand(5, 4, seed=1)]),
    ("cross_entropy_2d", lambda x, t: F.cross_entropy(x, t, reduction="none"), [rand(2, 4, 3, 3), _ix(2, 3, 3)]),
    ("nll_loss", lambda x, t: F.nll_loss(F.log_softmax(x, 1), t, reduction="sum"), [rand(5, 4), _ix(5)]),
    ("mse_l1_huber", lambda a, b: F.mse_loss(a, b) + F.l1_loss(a, b) + F.huber_loss(a, b, delta=0.5)
     + F.smooth_l1_loss(a, b, beta=0.3), [rand(4, 3), rand(4, 3, seed=1)]),
    ("bce", lambda p, y: F.binary_cross_entropy(p, y, weight=y + 1.0), [_prob(4, 3), _prob(4, 3, seed=1)]),
    ("bce_logits", lambda x, y, pw: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw),
     [rand(4, 3), _prob(4, 3, seed=1), _prob(3, seed=2)]),
    ("kl_div", lambda a, b: F.kl_div(F.log_softmax(a, 1), F.softmax(b, 1), reduction="batchmean"),
     [rand(4, 3), rand(4, 3, seed=1)]),
    ("margin_losses", lambda a, b, y: F.margin_ranking_loss(a, b, y) + F.hinge_embedding_loss(a, y)
     + F.soft_margin_loss(a, y), [rand(6), rand(6, seed=1), np.sign(rand(6, seed=2))]),
    ("multi_margin", lambda x, t: F.multi_margin_loss(x, t, p=2, margin=0.5), [rand(5, 4), _ix(5)]),
    ("cosine_embedding", lambda a, b, y: F.cosine_embedding_loss(a, b, y, margin=0.1),
     [rand(4, 3), rand(4, 3, seed=1), np.sign(rand(4, seed=2))]),
    ("triplet", lambda a, p, n: F.triplet_margin_loss(a, p, n), [rand(4, 3), rand(4, 3, seed=1), rand(4, 3, seed=2)]),
    ("distances", lambda a, b: F.pairwise_distance(a, b) + F.cosine_similarity(a, b), [rand(4, 3), rand(4, 3, seed=1)]),
    ("batch_norm_train", lambda x, w, b: F.batch_norm(x, dg.zeros(3), dg.ones(3), w, b, training=True),
     [rand(4, 3, 2, 2), rand(3, seed=1), rand(3, seed=2)]),
    ("batch_norm_eval", lambda x, m, v: F.batch_norm(x, m, v.abs() + 0.5, training=False),
     [rand(4, 3, 5), rand(3, seed=1), rand(3, seed=2)]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), [rand(3, 2, 4), rand(4, seed=1), rand(4, seed=2)]),
    ("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), [rand(2, 4, 3, 3), rand(4, seed=1), rand(4, seed=2)]),
    ("local_response_norm", lambda x: F.local_response_norm(x, 3), [rand(2, 4, 3, 3)]),
    ("normalize", lambda x: F.normalize(x, dim=1), [rand(3, 4)]),
    ("linear_bilinear", lambda x, w, b, u: F.linear(x, w, b) + F.bilinear(x, x, u).sum(),
     [rand(3, 4), rand(2, 4, seed=1), rand(2, seed=2), rand(1, 4, 4, seed=3)]),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, dilation=1, groups=1),
     [rand(2, 3, 7, 7), rand(4, 3, 3, 3, seed=1), rand(4, seed=2)]),
    ("conv2d_groups_dilation", lambda x, w: F.conv2d(x, w, padding=2, dilation=2, groups=2),
     [rand(1, 4, 6, 6), rand(4, 2, 3, 3, seed=1)]),
    ("conv1d", lambda x, w: F.conv1d(x, w, stride=2, padding=1), [rand(2, 3, 9), rand(4, 3, 3, seed=1)]),
    ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
     [rand(2, 3, 4, 4), rand(3, 2, 3, 3, seed=1), rand(2, seed=2)]),
    ("conv_transpose1d", lambda x, w: F.conv_transpose1d(x, w, stride=2), [rand(2, 3, 5), rand(3, 2, 3, seed=1)]),
    ("pools", lambda x: F.max_pool2d(x, 2) .sum() + F.avg_pool2d(x, 3, 1, 1).sum() + F.lp_pool2d(x.abs() + 0.1, 2, 2).sum()
     + F.adaptive_avg_pool2d(x, 3).sum() + F.adaptive_max_pool2d(x, (2, 3)).sum(), [rand(2, 3, 6, 6)]),
    ("pools_1d", lambda x: F.max_pool1d(x, 3, 2, 1).sum() + F.avg_pool1d(x, 2).sum() + F.adaptive_avg_pool1d(x, 4).sum()
     + F.adaptive_max_pool1d(x, 3).sum(), [rand(2, 3, 8)]),
    ("max_pool_unpool", lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2), [rand(2, 3, 6, 6)]),
    ("interpolate", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).sum()
     + F.interpolate(x, size=(5, 3), mode="nearest").sum(), [rand(2, 3, 4, 4)]),
    ("pixel_shuffle_pad", lambda x: F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).sum()
     + F.pad(x, (1, 2, 0, 1), mode="reflect").sum() + F.pad(x, (1, 1), value=0.5).sum(), [rand(1, 8, 3, 3)]),
    ("unfold_fold", lambda x: F.fold(F.unfold(x, 2, padding=1), (4, 4), 2, padding=1), [rand(2, 3, 4, 4)]),
    ("grid_sample", lambda x, th: F.grid_sample(x, F.affine_grid(th, (2, 3, 4, 4), align_corners=False),
                                                align_corners=False), [rand(2, 3, 5, 5), rand(2, 2, 3, seed=1, low=-0.5, high=0.5)]),
    ("embedding", lambda w, i: F.embedding(i, w, padding_idx=1), [rand(5, 3), _ix(2, 4, high=5)]),
    ("one_hot", lambda i: F.one_hot(i, 5), [_ix(2, 3, high=5)]),
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [rand(2, 3, 4), rand(2, 5, 4, seed=1), rand(2, 5, 4, seed=2)]),
    ("sdpa_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     [rand(2, 4, 4), rand(2, 4, 4, seed=1), rand(2, 4, 4, seed=2)]),
    ("sdpa_masks", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m > 0).sum()
     + F.scaled_dot_product_attention(q, k, v, attn_mask=m).sum(), [rand(2, 3, 4), rand(2, 5, 4, seed=1),
                                                                    rand(2, 5, 4, seed=2), rand(3, 5, seed=3, low=-0.5)]),
    ("activations", lambda x: (F.relu6(x) + F.hardtanh(x) + F.hardswish(x) + F.hardsigmoid(x) + F.mish(x) + F.selu(x)
                               + F.celu(x) + F.softsign(x) + F.tanhshrink(x) + F.logsigmoid(x) + F.threshold(x, 0.1, 2.0)
                               + F.glu(dg.cat([x, x], 1), 1) + F.softmin(x, 1) + F.prelu(x, dg.tensor([0.25], dtype=x.dtype))),
     [rand(3, 4)]),
]


@pytest.mark.parametrize("name", ["dropout", "dropout2d", "alpha_dropout", "module"])
def test_dropout_on_device(name):
    """The device draws its masks from its own generator, so the masks differ from the CPU's: check
    what a mask must satisfy. dropout/dropout2d: y = x * m with m in {0, 1/(1-p)} (per channel for
    dropout2d) and dy/dx = m; alpha_dropout: y = a x + c on each entry, dy/dx = a in {0, a_keep}."""
    p = 0.3
    x = dg.tensor(rand(4, 5, 3, 3) + 3.0, device="cuda", requires_grad=True)   # no zeros in x
    fn = {"dropout": lambda t: F.dropout(t, p), "dropout2d": lambda t: F.dropout2d(t, p),
          "alpha_dropout": lambda t: F.alpha_dropout(t, p, training=True),
          "module": lambda t: nn.Dropout(p).train()(t)}[name]
    y = fn(x)
    assert y.device == x.device and y.dtype == x.dtype and y.shape == x.shape
    y.sum().backward()
    yh, xh, gh = (t.detach().cpu().numpy() for t in (y, x, x.grad))
    assert x.grad.device == x.device
    if name == "alpha_dropout":
        assert len(np.unique(np.round(gh, 6))) == 2
        return
    np.testing.assert_allclose(yh, xh * gh, rtol=1e-12)
    assert set(np.unique(np.round(gh, 9))) <= {0.0, round(1 / (1 - p), 9)} and 0 < (gh == 0).mean() < 1
    if name == "dropout2d":
        assert np.all(gh.min(axis=(2, 3)) == gh.max(axis=(2, 3)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,f,inputs", FUNCTIONAL, ids=[c[0] for c in FUNCTIONAL])
def test_functional_on_device(name, f, inputs, dtype):
    inputs = [a.astype(dtype) if a.dtype.kind == "f" else a for a in inputs]
    check_on_device(f, inputs, double=dtype == np.float64 and name not in NO_DOUBLE)


#: fused ops without a second-order route (the engine names them in its error)
NO_DOUBLE = set()


# ---- modules, the zoo's models, optimisers, schedulers: a CPU copy against a device copy --------
class _First(nn.Module):
    """Output 0 of a module returning a tuple (RNN layers), plus the sum of its states."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        out, state = self.m(x)
        states = state if isinstance(state, tuple) else (state,)
        return out + sum(s.sum() for s in states)


def _mha():
    class Self(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            return self.att(x, x, x, need_weights=True)[0]
    return Self()


MODULES = [
    ("conv_bn_relu_pool", lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3)), [(2, 3, 4, 4)]),
    ("conv_transpose_gn", lambda: nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2), nn.GroupNorm(2, 4), nn.GELU(),
                                                nn.AdaptiveAvgPool2d(1)), [(2, 3, 3, 3)]),
    ("conv1d_bn1d_ln", lambda: nn.Sequential(nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4), nn.LayerNorm(5), nn.Tanh()), [(2, 3, 7)]),
    ("rnn", lambda: _First(nn.RNN(4, 5, num_layers=2, batch_first=True)), [(2, 3, 4)]),
    ("lstm", lambda: _First(nn.LSTM(4, 5, num_layers=2, bidirectional=True)), [(3, 2, 4)]),
    ("gru", lambda: _First(nn.GRU(4, 5, batch_first=True)), [(2, 3, 4)]),
    ("cells", lambda: _Cells(), [(2, 4)]),
    ("mha", _mha, [(2, 3, 8)]),
    ("transformer_layer", lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), [(2, 3, 8)]),
    ("mlp", lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)),
     [(4, 3, 4)]),
    ("lenet5", lambda: _zoo().models.lenet5(), [(2, 1, 28, 28)]),
    ("resnet20", lambda: _zoo().models.resnet20(), [(2, 3, 8, 8)]),
]


class _Cells(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.LSTMCell(4, 3), nn.GRUCell(4, 3), nn.RNNCell(4, 3)

    def forward(self, x):
        h, c = self.a(x)
        return h + c + self.b(x) + self.c(x)


def _zoo():
    import deepgrad.models  # noqa: F401
    return dg


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name,make,shapes", MODULES, ids=[c[0] for c in MODULES])
def test_module_on_device(name, make, shapes, train, dtype):
    """float64: to 1e-6. float32 only to 1e-3: the CPU takes fast paths (channels-last batch norm,
    im2col layouts) that the device does not, and their rounding differs in deep models."""
    dg.manual_seed(0)
    m = make().train(train).to(dtype)
    inputs = [np.random.default_rng(i).standard_normal(s).astype(dtype) for i, s in enumerate(shapes)]
    tol = dict(rtol=1e-6, atol=1e-9) if dtype == np.float64 else dict(rtol=1e-3, atol=1e-5)
    nnutil.compare_on_device(m, *inputs, **tol)


def test_char_lstm_on_device():
    dg.manual_seed(0)
    m = dg.models.CharRNN(11, embed_dim=6, hidden_size=8, num_layers=2)
    ids = np.random.default_rng(0).integers(0, 11, (2, 5))
    nnutil.compare_on_device(m, ids, rtol=1e-5, atol=1e-6)


def _train(model, opt_fn, dev, steps=3, sched_fn=None, scaler=False, clip=None):
    """A few optimiser steps of ``model`` (a copy moved to ``dev``); returns the host values of the
    parameters and of the optimiser state."""
    import copy
    m = copy.deepcopy(model).to(dev)
    opt = opt_fn(m.parameters())
    sched = sched_fn(opt) if sched_fn else None
    sc = dg.amp.GradScaler(dev, init_scale=2.0 ** 8) if scaler else None
    rng = np.random.default_rng(0)
    for step in range(steps):
        x = dg.tensor(rng.standard_normal((4, 5)).astype(np.float32), device=dev)
        y = dg.tensor(rng.integers(0, 3, 4), device=dev)
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        if sc is not None:
            sc.scale(loss).backward()
            sc.unscale_(opt)
        else:
            loss.backward()
        if clip:
            n = nn.utils.clip_grad_norm_(m.parameters(), clip)
            assert n.device == dg.device(dev)
        if isinstance(opt, dg.optim.LBFGS):
            opt.step(lambda: F.cross_entropy(m(x), y))
        elif sc is not None:
            sc.step(opt)
            sc.update()
        else:
            opt.step()
        if sched is not None:
            sched.step(loss.item()) if isinstance(sched, dg.optim.lr_scheduler.ReduceLROnPlateau) else sched.step()
    for p in m.parameters():
        assert p.device == dg.device(dev)
    state = {}

    def host(name, v):
        if isinstance(v, (list, tuple)):
            for i, e in enumerate(v):
                host(f"{name}.{i}", e)
        elif isinstance(v, dg.Tensor):
            assert v.device == dg.device(dev) or v.ndim == 0, f"optimizer state {name} on {v.device}"
            state[name] = v.detach().cpu().numpy()
        else:
            state[name] = v
    for k, st in opt.state_dict()["state"].items():
        for n, v in st.items():
            host(f"{k}.{n}", v)
    return [p.detach().cpu().numpy() for p in m.parameters()], state, opt.param_groups[0]["lr"]


OPTIMIZERS = [
    ("sgd_momentum_nesterov", lambda p: dg.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("sgd_plain", lambda p: dg.optim.SGD(p, lr=0.1)),
    ("adam_amsgrad", lambda p: dg.optim.Adam(p, lr=0.01, amsgrad=True, weight_decay=1e-2)),
    ("adamw", lambda p: dg.optim.AdamW(p, lr=0.01)),
    ("adamax", lambda p: dg.optim.Adamax(p, lr=0.01)),
    ("nadam", lambda p: dg.optim.NAdam(p, lr=0.01)),
    ("adagrad", lambda p: dg.optim.Adagrad(p, lr=0.1, lr_decay=0.01)),
    ("rmsprop_centered", lambda p: dg.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True)),
    ("adadelta", lambda p: dg.optim.Adadelta(p)),
    ("lbfgs", lambda p: dg.optim.LBFGS(p, lr=0.5, max_iter=4, history_size=3)),
]

L = dg.optim.lr_scheduler
SCHEDULERS = [
    ("step", lambda o: L.StepLR(o, 2, 0.5)), ("multistep", lambda o: L.MultiStepLR(o, [1, 2])),
    ("cosine", lambda o: L.CosineAnnealingLR(o, 4)), ("warm_restarts", lambda o: L.CosineAnnealingWarmRestarts(o, 2)),
    ("onecycle", lambda o: L.OneCycleLR(o, 0.2, total_steps=5)), ("cyclic", lambda o: L.CyclicLR(o, 0.01, 0.1, 2)),
    ("plateau", lambda o: L.ReduceLROnPlateau(o, patience=0)), ("linear", lambda o: L.LinearLR(o)),
    ("exponential", lambda o: L.ExponentialLR(o, 0.9)), ("polynomial", lambda o: L.PolynomialLR(o, 4)),
    ("lambda", lambda o: L.LambdaLR(o, lambda e: 1.0 / (e + 1))),
]


def _small():
    dg.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3))


def _same_training(**kw):
    model = _small()
    (pc, sc, lc), (pd, sd, ld) = _train(model, dev="cpu", **kw), _train(model, dev="cuda", **kw)
    assert lc == ld and sc.keys() == sd.keys()
    for a, b in zip(pc, pd):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    for k in sc:
        if isinstance(sc[k], np.ndarray):
            np.testing.assert_allclose(sd[k], sc[k], rtol=1e-6, atol=1e-7, err_msg=k)
        else:
            assert sd[k] == sc[k], k


@pytest.mark.parametrize("name,opt", OPTIMIZERS, ids=[c[0] for c in OPTIMIZERS])
def test_optimizer_on_device(name, opt):
    _same_training(opt_fn=opt)


@pytest.mark.parametrize("name,sched", SCHEDULERS, ids=[c[0] for c in SCHEDULERS])
def test_scheduler_on_device(name, sched):
    _same_training(opt_fn=OPTIMIZERS[0][1], sched_fn=sched, steps=4)


def test_grad_scaler_and_clip_grad_norm_on_device():
    _same_training(opt_fn=OPTIMIZERS[2][1], scaler=True, clip=0.5)


# ---- Tensor and Module device API, factories, checkpoints, errors ----------------------------
FACTORIES = [
    ("zeros", lambda **d: dg.zeros(2, 3, **d)), ("ones", lambda **d: dg.ones((2, 3), dtype=dg.int64, **d)),
    ("empty", lambda **d: dg.empty(2, 3, **d).zero_()), ("full", lambda **d: dg.full((2, 2), 1.5, **d)),
    ("eye", lambda **d: dg.eye(3, 2, **d)), ("arange", lambda **d: dg.arange(1, 7, 2, **d)),
    ("arange_float", lambda **d: dg.arange(0.0, 1.0, 0.25, **d)), ("linspace", lambda **d: dg.linspace(0, 1, 5, **d)),
    ("logspace", lambda **d: dg.logspace(0, 2, 3, **d)), ("tensor", lambda **d: dg.tensor([[1.0, 2.0]], **d)),
    ("as_tensor", lambda **d: dg.as_tensor(np.arange(3), **d)),
    ("rand", lambda **d: dg.rand(2, 3, **d)), ("randn", lambda **d: dg.randn(2, 3, dtype=dg.float64, **d)),
    ("randint", lambda **d: dg.randint(0, 5, (2, 3), **d)), ("randperm", lambda **d: dg.randperm(6, **d)),
    ("normal", lambda **d: dg.normal(0.0, 2.0, (3,), **d)),
]
RANDOM_FACTORIES = {
    "rand": lambda v: np.all((v >= 0) & (v < 1)), "randn": lambda v: np.all(np.isfinite(v)),
    "randint": lambda v: np.all((v >= 0) & (v < 5)), "randperm": lambda v: sorted(v.tolist()) == list(range(6)),
    "normal": lambda v: np.all(np.isfinite(v)),
}
LIKE = ["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"]


@pytest.mark.parametrize("name,make", FACTORIES, ids=[c[0] for c in FACTORIES])
def test_factory_device(name, make):
    dg.manual_seed(3)
    c = make()
    dg.manual_seed(3)
    g = make(device="cuda")
    assert c.device == dg.device("cpu") and g.device == dg.device("cuda:0") and g.is_cuda
    assert g.dtype == c.dtype and g.shape == c.shape
    v = g.cpu().numpy()
    if name in RANDOM_FACTORIES:       # the device may draw from its own generator: check the law
        assert RANDOM_FACTORIES[name](v), name
    elif name != "empty":
        np.testing.assert_array_equal(v, c.numpy())
    dg.set_default_device("cuda")
    try:
        dg.manual_seed(3)
        d = make()
    finally:
        dg.set_default_device(None)
    assert d.device == dg.device("cuda") and dg.get_default_device() == dg.device("cpu")


def test_like_factories_keep_the_device():
    x = dg.randn(2, 3, device="cuda")
    for name in LIKE:
        assert getattr(dg, name)(x).device == x.device, name
    assert dg.full_like(x, 2.0).device == x.device and dg.randint_like(x, 5).device == x.device
    assert dg.zeros_like(x, device="cpu").device == dg.device("cpu")
    for name in ("new_zeros", "new_ones", "new_empty"):
        assert getattr(x, name)(4).device == x.device, name
    assert x.new_full((2,), 3.0).device == x.device and x.new_tensor([1, 2]).device == x.device
    b = dg.bernoulli(dg.full((3, 4), 0.5, device="cuda"))
    assert b.device == x.device
    assert dg.multinomial(dg.ones(2, 5, device="cuda"), 3).device == x.device


def test_tensor_moves():
    a = dg.randn(3, 4, requires_grad=True)
    g = a.to("cuda")
    assert g.device == dg.device("cuda:0") and g.requires_grad and g.grad_fn is not None
    assert a.cuda().device == g.device and a.cuda(0).device == g.device and g.cuda() is g
    assert g.to("cuda") is g and g.cpu().device == dg.device("cpu") and a.cpu() is a
    h = g.to(dg.float64)
    assert h.device == g.device and h.dtype == dg.float64
    assert g.to("cpu", dg.float64).dtype == dg.float64
    assert g.to(dg.zeros(1, dtype=dg.float64)).device == dg.device("cpu")
    assert a.to(g).device == g.device
    (g * 2).sum().backward()
    assert a.grad.device == dg.device("cpu")               # the gradient flows back to the CPU leaf
    np.testing.assert_array_equal(a.grad.numpy(), np.full((3, 4), 2.0, np.float32))
    assert g.get_device() == 0 and a.get_device() == -1
    assert float(g.sum()) == pytest.approx(float(a.sum()), rel=1e-6)
    assert g.tolist() == a.tolist() and g[0, 0].item() == a[0, 0].item()
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
        g.numpy()
    np.testing.assert_array_equal(g.numpy(force=True), a.detach().numpy())
    text = str(g)
    assert "device='cuda:0'" in text and repr(g) == text
    assert "device" not in str(a)


def test_indexing_and_assignment_on_device():
    g = dg.arange(12.0, device="cuda").reshape(3, 4)
    c = dg.arange(12.0).reshape(3, 4)
    for idx in (1, (slice(None), 2), dg.tensor([2, 0]), np.array([1, 1]), [0, 2], g > 5,
                (dg.tensor([0, 2], device="cuda"), dg.tensor([1, 3], device="cuda"))):
        cidx = tuple(i.cpu() if isinstance(i, dg.Tensor) else i for i in idx) if isinstance(idx, tuple) else \
            (idx.cpu() if isinstance(idx, dg.Tensor) else idx)
        out = g[idx]
        assert out.device == g.device
        np.testing.assert_array_equal(out.cpu().numpy(), c[cidx].numpy())
    g[0] = 5.0
    g[1] = dg.tensor([1.0, 2.0, 3.0, 4.0], device="cuda")
    g[2, 1:3] = np.array([7.0, 8.0])
    assert g.cpu().tolist() == [[5.0] * 4, [1.0, 2.0, 3.0, 4.0], [8.0, 7.0, 8.0, 11.0]]
    g.add_(1.0).mul_(dg.tensor(2.0))                      # a 0-d CPU tensor acts as a number
    assert g.device == dg.device("cuda")


def test_mixing_devices_raises_pytorch_error():
    g, c = dg.randn(2, 3, device="cuda"), dg.randn(2, 3)
    msg = r"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
    for f, op in ((lambda: g + c, "add"), (lambda: c * g, "mul"), (lambda: dg.matmul(g, c.t()), "matmul"),
                  (lambda: dg.cat([g, c]), "cat"), (lambda: dg.stack([c, g]), "stack"),
                  (lambda: dg.where(c > 0, g, g), "where"), (lambda: g.masked_fill(c > 0, 1.0), "masked_fill"),
                  (lambda: nn.Linear(3, 2)(g), "linear"), (lambda: F.mse_loss(g, c), "")):
        with pytest.raises(RuntimeError, match=msg + r".*" + op):
            f()
    assert (g * dg.tensor(2.0)).device == g.device        # 0-d CPU tensors are numbers, as in PyTorch


def test_module_to_and_checkpoints(tmp_path):
    dg.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    x = dg.randn(2, 1, 4, 4)
    ref = m.eval()(x)
    assert m.to("cuda") is m and all(p.device == dg.device("cuda") for p in m.parameters())
    assert all(b.device == dg.device("cuda") for b in m.buffers())
    out = m(x.cuda())
    np.testing.assert_allclose(out.detach().cpu().numpy(), ref.detach().numpy(), rtol=1e-6)
    sd = m.state_dict()
    assert all(v.device == dg.device("cuda") for v in sd.values())
    dg.save(sd, tmp_path / "gpu.pt")
    on_cpu = dg.load(tmp_path / "gpu.pt", map_location="cpu")
    assert all(v.device == dg.device("cpu") for v in on_cpu.values())
    back = dg.load(tmp_path / "gpu.pt", map_location="cuda")
    assert all(v.device == dg.device("cuda") for v in back.values())
    fresh = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2)).eval()
    fresh.load_state_dict(on_cpu)
    np.testing.assert_allclose(fresh(x).detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    fresh.cuda().load_state_dict(on_cpu)                   # CPU tensors into a module on the device
    assert all(p.device == dg.device("cuda") for p in fresh.parameters())
    m.cpu()
    assert all(p.device == dg.device("cpu") for p in m.parameters())
    opt = dg.optim.Adam(fresh.parameters())
    fresh(x.cuda()).sum().backward()
    opt.step()
    dg.save(opt.state_dict(), tmp_path / "opt.pt")
    st = dg.load(tmp_path / "opt.pt", map_location="cpu")
    opt2 = dg.optim.Adam(fresh.parameters())
    opt2.load_state_dict(st)                               # state follows its parameter's device
    assert all(v.device == dg.device("cuda") for s in opt2.state.values() for v in s.values()
               if isinstance(v, dg.Tensor) and v.ndim)


def test_cuda_runtime_queries_on_the_stand_in(cuda):
    assert dg.cuda.is_available() and dg.cuda.device_count() == 1 and dg.cuda.current_device() == 0
    assert "stand-in" in dg.cuda.get_device_name(0)
    dg.cuda.synchronize()
    before = dg.cuda.memory_allocated()
    x = dg.zeros(1000, dtype=dg.float64, device="cuda")
    assert dg.cuda.memory_allocated() - before == 8000
    del x
    assert dg.cuda.memory_allocated() == before
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        dg.zeros(2, device="cuda:1")


def test_two_devices():
    with strict_cuda(device_count=2):
        a = dg.ones(3, device="cuda:1")
        assert a.device == dg.device("cuda:1") and str(a.device) == "cuda:1"
        assert (a * 2).to("cuda:0").device == dg.device("cuda:0")


def test_strict_stand_in_refuses_numpy(cuda):
    xp = cuda
    a = xp.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="numpy.exp"):
        np.exp(a)
    with pytest.raises(TypeError, match="numpy.concatenate"):
        np.concatenate([a, a])
    with pytest.raises(TypeError, match="host operand"):
        a + np.ones(3)
    with pytest.raises(TypeError, match="NumPy array"):
        xp.maximum(a, np.ones(3))
    assert isinstance(a + 1, xp.ndarray) and isinstance(np.float32(2) * a, xp.ndarray)
    assert isinstance(a.sum(), xp.ndarray) and a.sum().ndim == 0 and float(a.sum()) == 15.0
    assert xp.asnumpy(a).sum() == 15.0 and a.get().shape == (2, 3) and a.tolist()[1] == [3.0, 4.0, 5.0]
    with pytest.raises(NotImplementedError, match="real GPU"):
        xp.ElementwiseKernel("T x", "T y", "y = x", "copy")(a)
    assert xp.fuse(lambda u: u * 2)(a).shape == (2, 3)


# ---- value tables (no gradients): each case builds its tensors with M.tensor(...) -----------
import test_ops_extra as _extra  # noqa: E402

VALUE_TABLES = [("api", c) for c in test_api_surface.VALUE_CASES + test_api_surface.HELPER_CASES] + \
               [("extra", c) for c in _extra.VALUES]


def _tree(x, dev):
    if isinstance(x, (tuple, list)):
        return [_tree(v, dev) for v in x]
    if isinstance(x, dg.Tensor):
        assert x.device == dg.device(dev), f"a result on {x.device}, expected {dev}"
        return x.detach().cpu().numpy()
    return x


def _same_tree(a, b, what="result"):
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), what
        for i, (u, v) in enumerate(zip(a, b)):
            _same_tree(u, v, f"{what}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, what
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-12, equal_nan=True, err_msg=what)
    else:
        assert a == b or (a != a and b != b), f"{what}: {b!r} != cpu {a!r}"


@pytest.mark.parametrize("case", VALUE_TABLES, ids=[f"{t}-{c[0]}" for t, c in VALUE_TABLES])
def test_values_on_device(case):
    _, (name, f) = case
    dg.manual_seed(0)
    cpu = _tree(f(dg), "cpu")
    dg.set_default_device("cuda")
    try:
        dg.manual_seed(0)
        dev = _tree(f(dg), "cuda")
    finally:
        dg.set_default_device(None)
    _same_tree(cpu, dev)


# ---- distributions: moments, entropy, log_prob and its gradients, samples -------------------
import test_distributions as _dist  # noqa: E402


def _dist_run(case, dev):
    name, ctor, pnames, vnames = case
    ps = [dg.tensor(_dist.P[p].copy(), device=dev, requires_grad=True) for p in pnames]
    d = ctor(dg, *ps)
    got = {}
    for attr in ("mean", "mode", "variance", "stddev"):
        try:
            got[attr] = getattr(d, attr)
        except NotImplementedError:
            pass
    try:
        got["entropy"] = d.entropy()
    except NotImplementedError:
        pass
    lp = [d.log_prob(dg.tensor(_dist.V[v], device=dev)) for v in vnames]
    got.update({f"log_prob {v}": t for v, t in zip(vnames, lp)})
    if lp:
        grads = dg.autograd.grad(sum(t.sum() for t in lp), ps, allow_unused=True, retain_graph=True)
        got.update({f"grad {p}": g for p, g in zip(pnames, grads) if g is not None})
    out = {k: _tree(v, dev) for k, v in got.items()}
    # draws: the device may use its own generator, so only where, what shape and which dtype
    sample = d.sample((3,))
    out["sample"] = (sample.device.type, tuple(sample.shape), str(sample.dtype))
    if d.has_rsample:
        r = d.rsample((2,))
        grads = dg.autograd.grad(r.sum(), ps, allow_unused=True)
        out["rsample"] = (r.device.type, tuple(r.shape), [None if g is None else (g.device.type, tuple(g.shape))
                                                          for g in grads])
    return out


@pytest.mark.parametrize("case", _dist.CASES, ids=[c[0] for c in _dist.CASES])
def test_distribution_on_device(case):
    cpu = _dist_run(case, "cpu")
    dg.set_default_device("cuda")      # tensors the constructors make themselves
    try:
        dev = _dist_run(case, "cuda")
    finally:
        dg.set_default_device(None)
    assert cpu.keys() == dev.keys()
    for k in cpu:
        if k in ("sample", "rsample"):
            assert str(cpu[k]).replace("cpu", "cuda") == str(dev[k]), k
        else:
            _same_tree(cpu[k], dev[k], k)


def test_environment_switch_runs_a_program_on_the_stand_in():
    import subprocess
    code = ("import deepgrad as dg; x = dg.ones(2, device='cuda'); "
            "print(dg.cuda.is_available(), x.device, type(x.array).__module__)")
    env = dict(os.environ, DEEPGRAD_STRICT_CUDA="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if "cupy" in out.stdout:            # a machine with CuPy keeps it: the switch only fills a gap
        return
    assert out.stdout.split() == ["True", "cuda:0", "deepgrad.testing.strict_xp"], out.stderr[-2000:]


@pytest.mark.parametrize("make", [lambda: nn.Conv2d(2, 3, 3), lambda: nn.ConvTranspose1d(2, 3, 3), lambda: nn.BatchNorm2d(3),
                                  lambda: nn.PReLU(2), lambda: nn.LSTM(3, 4), lambda: nn.MultiheadAttention(4, 2),
                                  lambda: nn.Embedding(5, 3), lambda: _zoo().models.resnet20(),
                                  lambda: _zoo().models.RBM(6, 4)], ids=lambda f: "")
def test_modules_built_under_the_default_device_live_there(make):
    dg.set_default_device("cuda")
    try:
        m = make()
    finally:
        dg.set_default_device(None)
    tensors = list(m.named_parameters()) + list(m.named_buffers())
    assert tensors and all(t.device == dg.device("cuda") for _, t in tensors), \
        [n for n, t in tensors if t.device != dg.device("cuda")]
    assert nn.PReLU(device="cuda").weight.device == dg.device("cuda")


INPLACE_NAMES = sorted(test_api_surface.INPLACE_UNARY) + [n for n, _ in test_api_surface.INPLACE_ARGS]


@pytest.mark.parametrize("name", INPLACE_NAMES)
def test_inplace_variants_on_device(name):
    args = dict(test_api_surface.INPLACE_ARGS).get(name, ())
    lo, hi = test_api_surface.INPLACE_UNARY.get(name, (0.2, 1.5))
    cpu = _tree(test_api_surface._inplace_case(dg, name, args, lo, hi), "cpu")
    dg.set_default_device("cuda")
    try:
        dev = _tree(test_api_surface._inplace_case(dg, name, args, lo, hi), "cuda")
    finally:
        dg.set_default_device(None)
    _same_tree(cpu, dev, name)


def test_int_relu_and_cpu_only_methods():
    i = dg.tensor([-2, 0, 3], device="cuda")
    assert dg.relu(i).cpu().tolist() == [0, 0, 3] and dg.relu(i).device == i.device
    with pytest.raises(TypeError, match="CPU"):
        i.apply_(lambda v: v)
    with pytest.raises(TypeError, match="CPU"):
        i.map_(i, lambda a, b: a)


def test_generation_on_device_matches_cpu():
    import copy
    dg.manual_seed(0)
    m = dg.models.CharRNN(9, 4, 6).eval()
    ids = m.generate([1, 2, 3], 6, generator=5)
    assert np.array_equal(copy.deepcopy(m).cuda().generate([1, 2, 3], 6, generator=5), ids)
    dg.manual_seed(0)
    s = dg.models.Seq2Seq(7, 7, 4, 8).eval()
    src = dg.tensor([[1, 2, 3], [3, 2, 1]])
    out = s.greedy(src, 4)
    g = copy.deepcopy(s).cuda()
    assert np.array_equal(g.greedy(src.cuda(), 4), out) and isinstance(g.greedy(src.cuda(), 4), np.ndarray)
    assert g(src.cuda(), dg.zeros(2, 4, dtype=dg.int64, device="cuda")).device == dg.device("cuda")


def test_utilities_on_device():
    from deepgrad.utils.checkpoint import checkpoint
    dg.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).cuda()
    x = dg.randn(3, 4, device="cuda", requires_grad=True)
    checkpoint(m, x, use_reentrant=False).sum().backward()
    assert x.grad.device == x.device
    t = dg.randn(3, dtype=dg.float64, device="cuda", requires_grad=True)
    assert dg.autograd.gradcheck(lambda u: (u * u.sin()).sum(), [t])
    assert dg.autograd.gradgradcheck(lambda u: (u ** 3).sum(), [t])
    h = dg.autograd.functional.hessian(lambda u: (u ** 3).sum(), t.detach())
    np.testing.assert_allclose(h.cpu().numpy(), np.diag(6 * t.detach().cpu().numpy()), rtol=1e-12)
    assert dg.autograd.functional.jacobian(lambda u: u.sin(), t.detach()).device == t.device
    nn.utils.clip_grad_value_(m.parameters(), 0.1)
    vec = nn.utils.parameters_to_vector(m.parameters())
    assert vec.device == x.device
    nn.utils.vector_to_parameters(vec * 2, m.parameters())
    P = nn.utils.parametrizations
    for wrap in (P.weight_norm, P.spectral_norm, P.orthogonal):
        assert wrap(nn.Linear(3, 3).cuda())(dg.randn(2, 3, device="cuda")).device == x.device
    packed = nn.utils.rnn.pack_padded_sequence(dg.randn(4, 2, 3, device="cuda"), [4, 2])
    out, (hn, cn) = nn.LSTM(3, 4).cuda()(packed)
    assert out.data.device == x.device and hn.device == x.device
    assert "Total params: 58" in str(dg.utils.summary(m, (4,), verbose=0))
