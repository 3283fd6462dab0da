"""The op and layer parity grid on the GPU: deepgrad on CuPy against PyTorch on CUDA, the same
float32 inputs, outputs and input/parameter gradients within 1e-4 (relative, with an absolute
floor of 1e-4 times the largest magnitude). Each case is written once against a module ``m``
(``deepgrad`` or ``torch``) so both frameworks run literally the same expression."""
import numpy as np
import pytest
import torch

import deepgrad as dg
from gpu_common import DDEV, TDEV, assert_close, flatten, to_np

TOL = 1e-4


def F(m):
    return m.nn.functional


class C(tuple):
    """The shape of an input that needs no gradient (a class weight ...)."""


def _targets(n, c, seed=1):
    return np.random.default_rng(seed).integers(0, c, n)


T8 = _targets(16, 10)
T_ND = np.random.default_rng(2).integers(0, 5, (4, 6, 6))

# (name, f(m, dev, *xs), input shapes)
CASES = [
    # elementwise
    ("add_broadcast", lambda m, d, a, b: a + b, [(64, 128), (128,)]),
    ("sub_mul", lambda m, d, a, b: (a - b) * a, [(32, 64), (32, 64)]),
    ("div", lambda m, d, a, b: a / (b.abs() + 1), [(32, 64), (32, 64)]),
    ("exp_log", lambda m, d, a: m.exp(a * 0.5) + m.log(a.abs() + 1), [(128, 64)]),
    ("tanh_sigmoid", lambda m, d, a: m.tanh(a) * m.sigmoid(a), [(128, 64)]),
    ("relu_gelu_silu", lambda m, d, a: F(m).relu(a) + F(m).gelu(a) + F(m).silu(a), [(64, 64)]),
    ("elu_leaky_softplus", lambda m, d, a: F(m).elu(a) + F(m).leaky_relu(a, 0.1) + F(m).softplus(a), [(64, 64)]),
    ("pow_sqrt", lambda m, d, a: (a.abs() + 0.1) ** 1.5 + (a.abs() + 0.1).sqrt(), [(64, 64)]),
    ("maximum_where_clamp", lambda m, d, a, b: m.maximum(a, b) + m.where(a > 0, a, b) + a.clamp(-0.5, 0.5),
     [(32, 48), (32, 48)]),
    # reductions and the softmax family
    ("sum_mean", lambda m, d, a: a.sum(1) + a.mean(1), [(64, 96)]),
    ("amax_logsumexp", lambda m, d, a: m.amax(a, 1) + m.logsumexp(a, 1), [(64, 96)]),
    ("var_std", lambda m, d, a: a.var(0) + a.std(0), [(64, 96)]),
    ("softmax", lambda m, d, a: F(m).softmax(a, -1), [(64, 100)]),
    ("log_softmax", lambda m, d, a: F(m).log_softmax(a, 1), [(64, 100)]),
    ("cumsum_norm", lambda m, d, a: a.cumsum(1) * a.norm(), [(16, 32)]),
    # matmul family
    ("matmul", lambda m, d, a, b: a @ b, [(128, 256), (256, 96)]),
    ("bmm", lambda m, d, a, b: m.bmm(a, b), [(8, 32, 64), (8, 64, 16)]),
    ("linear", lambda m, d, x, w, b: F(m).linear(x, w, b), [(32, 64), (48, 64), (48,)]),
    ("einsum", lambda m, d, a, b: m.einsum("bij,bjk->bik", a, b), [(4, 8, 16), (4, 16, 8)]),
    # convolutions
    ("conv2d_same", lambda m, d, x, w, b: F(m).conv2d(x, w, b, padding=1), [(8, 3, 16, 16), (16, 3, 3, 3), (16,)]),
    ("conv2d_stride2", lambda m, d, x, w: F(m).conv2d(x, w, stride=2), [(4, 8, 15, 15), (12, 8, 3, 3)]),
    ("conv2d_groups", lambda m, d, x, w: F(m).conv2d(x, w, padding=1, groups=2), [(4, 8, 12, 12), (8, 4, 3, 3)]),
    ("conv2d_dilation", lambda m, d, x, w: F(m).conv2d(x, w, dilation=2, padding=2), [(2, 4, 12, 12), (6, 4, 3, 3)]),
    ("conv2d_5x5", lambda m, d, x, w, b: F(m).conv2d(x, w, b), [(16, 1, 28, 28), (6, 1, 5, 5), (6,)]),
    ("conv1d", lambda m, d, x, w, b: F(m).conv1d(x, w, b, padding=2), [(4, 3, 32), (8, 3, 5), (8,)]),
    ("conv_transpose2d", lambda m, d, x, w: F(m).conv_transpose2d(x, w, stride=2, padding=1), [(4, 8, 8, 8), (8, 4, 3, 3)]),
    # pooling
    ("max_pool2d", lambda m, d, x: F(m).max_pool2d(x, 2), [(8, 6, 16, 16)]),
    ("max_pool2d_3s2p1", lambda m, d, x: F(m).max_pool2d(x, 3, 2, 1), [(4, 6, 15, 15)]),
    ("avg_pool2d", lambda m, d, x: F(m).avg_pool2d(x, 2), [(8, 6, 16, 16)]),
    ("adaptive_avg_pool2d", lambda m, d, x: F(m).adaptive_avg_pool2d(x, (1, 1)), [(8, 16, 8, 8)]),
    ("max_pool1d", lambda m, d, x: F(m).max_pool1d(x, 2), [(4, 6, 20)]),
    # normalisation
    ("batch_norm_train_2d", lambda m, d, x, w, b: F(m).batch_norm(x, None, None, w, b, training=True),
     [(16, 8, 10, 10), (8,), (8,)]),
    ("batch_norm_train_1d", lambda m, d, x, w, b: F(m).batch_norm(x, None, None, w, b, training=True),
     [(64, 32), (32,), (32,)]),
    ("layer_norm", lambda m, d, x, w, b: F(m).layer_norm(x, (32,), w, b), [(8, 16, 32), (32,), (32,)]),
    ("group_norm", lambda m, d, x, w, b: F(m).group_norm(x, 2, w, b), [(4, 6, 5, 5), (6,), (6,)]),
    # losses
    ("cross_entropy", lambda m, d, x: F(m).cross_entropy(x, m.tensor(T8, device=d)), [(16, 10)]),
    ("cross_entropy_sum", lambda m, d, x: F(m).cross_entropy(x * 3, m.tensor(T8, device=d), reduction="sum"),
     [(16, 10)]),
    ("cross_entropy_ignore", lambda m, d, x: F(m).cross_entropy(x, m.tensor(T8, device=d), ignore_index=3),
     [(16, 10)]),
    ("cross_entropy_smoothing", lambda m, d, x: F(m).cross_entropy(x, m.tensor(T8, device=d), label_smoothing=0.1),
     [(16, 10)]),
    ("cross_entropy_weight", lambda m, d, x, w: F(m).cross_entropy(x, m.tensor(T8, device=d), weight=w.abs() + 0.5),
     [(16, 10), C((10,))]),
    ("cross_entropy_nd", lambda m, d, x: F(m).cross_entropy(x, m.tensor(T_ND, device=d)), [(4, 5, 6, 6)]),
    ("nll_loss", lambda m, d, x: F(m).nll_loss(F(m).log_softmax(x, 1), m.tensor(T8, device=d)), [(16, 10)]),
    ("mse_smooth_l1", lambda m, d, a, b: F(m).mse_loss(a, b) + F(m).smooth_l1_loss(a, b), [(32, 8), (32, 8)]),
    ("bce_with_logits", lambda m, d, a, b: F(m).binary_cross_entropy_with_logits(a, m.sigmoid(b)), [(32, 8), (32, 8)]),
    # attention, embedding, indexing
    ("sdpa", lambda m, d, q, k, v: F(m).scaled_dot_product_attention(q, k, v), [(2, 4, 16, 8)] * 3),
    ("sdpa_causal", lambda m, d, q, k, v: F(m).scaled_dot_product_attention(q, k, v, is_causal=True), [(2, 4, 16, 8)] * 3),
    ("embedding", lambda m, d, w: F(m).embedding(m.tensor(T8, device=d), w), [(10, 12)]),
    ("cat_transpose_reshape", lambda m, d, a, b: m.cat([a, b], 1).transpose(0, 1).reshape(-1, 4), [(8, 6), (8, 10)]),
    ("index_gather", lambda m, d, a: a[m.tensor([3, 1, 1, 0], device=d)].gather(1, m.tensor(np.array([[0, 2]] * 4), device=d)),
     [(6, 5)]),
]


def _run(f, shapes, module, dev, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    xs = [module.tensor(a, device=dev, requires_grad=not isinstance(s, C)) for a, s in zip(arrays, shapes)]
    out = flatten(f(module, dev, *xs))
    cots = [np.random.default_rng(seed + 7).standard_normal(tuple(o.shape)).astype(np.float32) for o in out]
    loss = sum((o * module.tensor(c, device=dev)).sum() for o, c in zip(out, cots))
    loss.backward()
    return [to_np(o) for o in out], [to_np(x.grad) for x in xs]


@pytest.mark.parametrize("name,f,shapes", CASES, ids=[c[0] for c in CASES])
def test_op_parity(name, f, shapes):
    out_d, grads_d = _run(f, shapes, dg, DDEV, 0)
    out_t, grads_t = _run(f, shapes, torch, TDEV, 0)
    for i, (a, b) in enumerate(zip(out_d, out_t)):
        assert_close(a, b, TOL, f"{name}: output {i}")
    for i, (a, b) in enumerate(zip(grads_d, grads_t)):
        if b is None:
            assert a is None or not np.any(a), f"{name}: input {i} has a gradient in deepgrad only"
        else:
            assert a is not None, f"{name}: input {i} has no gradient in deepgrad"
            assert_close(a, b, TOL, f"{name}: grad of input {i}")


# ---- layers: PyTorch's module, its weights copied into deepgrad's -----------------------------
LAYERS = [
    ("lstm", lambda m: m.nn.LSTM(16, 32), (12, 8, 16)),
    ("lstm_2layer_bidir_batch_first", lambda m: m.nn.LSTM(16, 24, num_layers=2, bidirectional=True, batch_first=True),
     (8, 10, 16)),
    ("gru", lambda m: m.nn.GRU(16, 32), (12, 8, 16)),
    ("rnn_tanh", lambda m: m.nn.RNN(16, 32), (12, 8, 16)),
    ("lstm_cell", lambda m: m.nn.LSTMCell(16, 32), (8, 16)),
    ("multihead_attention", lambda m: _MHA(m), (4, 10, 32)),
    ("conv_bn_relu_eval", lambda m: m.nn.Sequential(m.nn.Conv2d(3, 8, 3, padding=1), m.nn.BatchNorm2d(8),
                                                     m.nn.ReLU()).eval(), (4, 3, 12, 12)),
    ("conv_bn_relu_train", lambda m: m.nn.Sequential(m.nn.Conv2d(3, 8, 3, padding=1), m.nn.BatchNorm2d(8),
                                                      m.nn.ReLU()), (4, 3, 12, 12)),
    ("transformer_encoder_layer", lambda m: m.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True),
     (2, 10, 32)),
]


def _MHA(m):
    class MHA(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.att = m.nn.MultiheadAttention(32, 4, batch_first=True)

        def forward(self, x):
            return self.att(x, x, x)[0]
    return MHA()


def _copy_torch_to_dg(tm, dm):
    sd = {k: dg.tensor(v.detach().cpu().numpy()) for k, v in tm.state_dict().items()}
    dm.load_state_dict(sd)


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_parity(name, make, shape):
    torch.manual_seed(0)
    tm = make(torch)
    dm = make(dg)
    _copy_torch_to_dg(tm, dm)
    tm.to(TDEV)
    dm.to(DDEV)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x, device=TDEV, requires_grad=True)
    xd = dg.tensor(x, device=DDEV, requires_grad=True)
    ot, od = flatten(tm(xt)), flatten(dm(xd))
    assert len(ot) == len(od)
    cots = [np.random.default_rng(9 + i).standard_normal(tuple(o.shape)).astype(np.float32) for i, o in enumerate(ot)]
    sum((o * torch.tensor(c, device=TDEV)).sum() for o, c in zip(ot, cots)).backward()
    sum((o * dg.tensor(c, device=DDEV)).sum() for o, c in zip(od, cots)).backward()
    for i, (a, b) in enumerate(zip(od, ot)):
        assert_close(to_np(a), to_np(b), TOL, f"{name}: output {i}")
    assert_close(to_np(xd.grad), to_np(xt.grad), TOL, f"{name}: input grad")
    dparams = dict(dm.named_parameters())
    for k, p in tm.named_parameters():
        assert_close(to_np(dparams[k].grad), to_np(p.grad), TOL, f"{name}: grad of {k}")
    for k, v in tm.state_dict().items():         # running statistics of the training-mode BN
        assert_close(to_np(dm.state_dict()[k]), to_np(v), TOL, f"{name}: {k} after forward")


# ---- optimisers: the same gradients, five steps ------------------------------------------------------
OPTIMS = [
    ("sgd", lambda m, p: m.optim.SGD(p, lr=0.1)),
    ("sgd_momentum_wd", lambda m, p: m.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4)),
    ("sgd_nesterov", lambda m, p: m.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd_dampening_maximize", lambda m, p: m.optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.2, maximize=True)),
    ("adam", lambda m, p: m.optim.Adam(p, lr=1e-2)),
    ("adam_amsgrad_wd", lambda m, p: m.optim.Adam(p, lr=1e-2, amsgrad=True, weight_decay=0.1)),
    ("adamw", lambda m, p: m.optim.AdamW(p, lr=1e-2, weight_decay=0.05)),
    ("rmsprop", lambda m, p: m.optim.RMSprop(p, lr=1e-2, momentum=0.5)),
    ("adagrad", lambda m, p: m.optim.Adagrad(p, lr=0.1)),
]


@pytest.mark.parametrize("name,make", OPTIMS, ids=[c[0] for c in OPTIMS])
def test_optimizer_parity(name, make):
    rng = np.random.default_rng(5)
    shapes = [(64, 32), (32,), (3, 3, 4, 4)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(5)]
    results = []
    for m, dev in ((dg, DDEV), (torch, TDEV)):
        ps = [m.nn.Parameter(m.tensor(a, device=dev)) for a in init]
        opt = make(m, ps)
        for step in grads:
            for p, g in zip(ps, step):
                p.grad = m.tensor(g, device=dev)
            opt.step()
        results.append([to_np(p) for p in ps])
    for i, (a, b) in enumerate(zip(*results)):
        assert_close(a, b, TOL, f"{name}: parameter {i} after 5 steps")
