"""Second-order derivatives through the fused ops, autograd.functional and the Hessian tools,
against PyTorch 2.13 in float64.

For each op family: the first gradients with ``create_graph=True`` and then the gradient of
``<grad, v>`` (a Hessian-vector product of ``<f, w>``) with respect to every input equal
PyTorch's within 1e-6; ``gradgradcheck`` on small cases.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.autograd.functional as TAF
import torch.nn.functional as TF

import deepgrad as dg
import deepgrad.autograd.functional as DAF
import deepgrad.nn.functional as F
from deepgrad.utils import hessian as H

torch.set_num_threads(1)
TOL = 1e-6


def _close(a, b, tol=TOL):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    err = float(np.abs(a - b).max()) if a.size else 0.0
    assert err <= tol * scale, f"max abs difference {err:.3g} (scale {scale:.3g})"


def second_order(fd, ft, shapes, seed=0):
    """Compare f, grad(<f, w>) (create_graph) and grad(<grad, v>) between deepgrad and torch."""
    rng = np.random.default_rng(seed)
    arrs = [rng.standard_normal(s) for s in shapes]
    d = [dg.tensor(a, requires_grad=True) for a in arrs]
    t = [torch.tensor(a, requires_grad=True) for a in arrs]
    yd, yt = fd(*d), ft(*t)
    _close(yd, yt)
    w = rng.standard_normal(tuple(yt.shape))
    gd = dg.autograd.grad(yd, d, dg.tensor(w), create_graph=True, allow_unused=True)
    gt = torch.autograd.grad(yt, t, torch.tensor(w), create_graph=True, allow_unused=True)
    for a, b in zip(gd, gt):
        if b is None:
            assert a is None
        else:
            _close(a, b)
    vs = [rng.standard_normal(a.shape) for a in arrs]
    live = [(a, b, v) for a, b, v in zip(gd, gt, vs) if b is not None]
    sd = sum((a * dg.tensor(v)).sum() for a, _, v in live)
    st = sum((b * torch.tensor(v)).sum() for _, b, v in live)
    ht = torch.autograd.grad(st, t, allow_unused=True, materialize_grads=True)
    if not sd.requires_grad:       # the gradient is constant: torch's second derivatives are zero
        assert all(float(b.abs().max()) == 0 for b in ht)
        return
    hd = dg.autograd.grad(sd, d, allow_unused=True, materialize_grads=True)
    for a, b in zip(hd, ht):
        _close(a, b)


def sq(f):
    """``f(x * x, ...)``: makes the second derivative in x non-trivial for ops linear in x."""
    return lambda x, *rest: f(x * x, *rest)


# ---- convolution and transposed convolution ---------------------------------------------------

CONV_GRID = [  # (input, weight, options)
    ((2, 4, 7, 6), (6, 2, 3, 2), dict(stride=2, padding=1, dilation=(1, 2), groups=2)),
    ((2, 3, 6, 6), (4, 3, 3, 3), dict(stride=1, padding=1)),
    ((2, 3, 6, 5), (4, 3, 2, 2), dict(padding="same")),
    ((1, 1, 9, 9), (3, 1, 4, 4), dict(stride=(2, 1))),
    ((6, 5, 5), (6, 1, 3, 3), dict(groups=6, padding=2, dilation=2)),    # unbatched, depthwise
    ((2, 4, 9), (4, 2, 3), dict(stride=2, padding=2, dilation=2, groups=2)),
    ((4, 7), (2, 4, 3), dict(padding=1)),                                  # unbatched 1-d
]


@pytest.mark.parametrize("xs,ws,kw", CONV_GRID)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_second_order(xs, ws, kw, bias):
    nd = len(ws) - 2
    fd, ft = (F.conv1d, TF.conv1d) if nd == 1 else (F.conv2d, TF.conv2d)
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    second_order(lambda x, w, *b: fd(x, w, *b, **kw), lambda x, w, *b: ft(x, w, *b, **kw), shapes)


CONVT_GRID = [
    ((2, 4, 5, 6), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ((2, 3, 5, 4), (3, 2, 3, 3), dict(padding=1, dilation=2)),
    ((2, 3, 4, 4), (3, 2, 2, 3), dict(stride=(2, 3), output_padding=(1, 2))),
    ((2, 3, 7), (3, 2, 3), dict(stride=3, padding=1, output_padding=2)),
    ((3, 4, 4), (3, 2, 3, 3), dict(stride=1)),                             # unbatched
    ((2, 3, 4, 4), (3, 4, 2, 3), dict(stride=1, padding=1, dilation=2, output_padding=1)),
]


@pytest.mark.parametrize("xs,ws,kw", CONVT_GRID)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose_second_order(xs, ws, kw, bias):
    nd = len(ws) - 2
    fd, ft = (F.conv_transpose1d, TF.conv_transpose1d) if nd == 1 else (F.conv_transpose2d, TF.conv_transpose2d)
    shapes = [xs, ws] + ([(ws[1] * kw.get("groups", 1),)] if bias else [])
    second_order(lambda x, w, *b: fd(x, w, *b, **kw), lambda x, w, *b: ft(x, w, *b, **kw), shapes)


# The first-order tests' grids (tests/test_conv.py, tests/test_pool.py), in float64 and second order.
from test_conv import CONV1D_GRID, CONV2D_GRID, CONVT2D_GRID  # noqa: E402
from test_pool import AVGPOOL2D_GRID, MAXPOOL2D_GRID  # noqa: E402


@pytest.mark.parametrize("stride,padding,dilation,chans,kernel", CONV2D_GRID)
def test_conv2d_grid_second_order(stride, padding, dilation, chans, kernel):
    cin, cout, groups = chans
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    second_order(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: TF.conv2d(x, w, b, **kw),
                 [(2, cin, 7, 6), (cout, cin // groups) + tuple(kernel), (cout,)])


@pytest.mark.parametrize("stride,padding,dilation,chans,k", CONV1D_GRID)
def test_conv1d_grid_second_order(stride, padding, dilation, chans, k):
    cin, cout, groups = chans
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    second_order(lambda x, w: F.conv1d(x, w, **kw), lambda x, w: TF.conv1d(x, w, **kw),
                 [(2, cin, 13), (cout, cin // groups, k)])


@pytest.mark.parametrize("stride,padding,output_padding,dilation,chans,kernel", CONVT2D_GRID)
def test_conv_transpose2d_grid_second_order(stride, padding, output_padding, dilation, chans, kernel):
    cin, cout, groups = chans
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    second_order(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), lambda x, w, b: TF.conv_transpose2d(x, w, b, **kw),
                 [(2, cin, 4, 5), (cin, cout // groups) + tuple(kernel), (cout,)])


@pytest.mark.parametrize("k,s,p,d,ceil", MAXPOOL2D_GRID)
def test_max_pool2d_grid_second_order(k, s, p, d, ceil):
    second_order(sq(lambda x: F.max_pool2d(x, k, s, p, d, ceil)), sq(lambda x: TF.max_pool2d(x, k, s, p, d, ceil)),
                 [(2, 2, 8, 9)])


@pytest.mark.parametrize("k,s,p,ceil,cip,div", AVGPOOL2D_GRID)
def test_avg_pool2d_grid_second_order(k, s, p, ceil, cip, div):
    second_order(sq(lambda x: F.avg_pool2d(x, k, s, p, ceil, cip, div)),
                 sq(lambda x: TF.avg_pool2d(x, k, s, p, ceil, cip, div)), [(2, 2, 7, 8)])


def test_conv_third_order_and_gradgradcheck():
    x = dg.tensor(np.random.default_rng(1).standard_normal((1, 2, 5, 5)), requires_grad=True)
    w = dg.tensor(np.random.default_rng(2).standard_normal((3, 2, 3, 3)), requires_grad=True)
    assert dg.autograd.gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w])
    assert dg.autograd.gradgradcheck(lambda x, w: F.conv_transpose2d(x, w.transpose(0, 1), stride=2),
                                     [x[:, :, :3, :3].detach().requires_grad_(), w])
    # third order: the Corr family closes on itself
    xt, wt = torch.tensor(x.detach().numpy(), requires_grad=True), torch.tensor(w.detach().numpy(), requires_grad=True)
    res = []
    for M, FF, a, b in ((dg, F, x, w), (torch, TF, xt, wt)):
        y = (FF.conv2d(a, b, padding=1) ** 2).sum()
        g, = M.autograd.grad(y, a, create_graph=True)
        g2, = M.autograd.grad((g * g).sum(), b, create_graph=True)
        g3, = M.autograd.grad((g2 ** 2).sum(), a)
        res.append(g3)
    _close(*res)


# ---- pooling --------------------------------------------------------------------------------

POOLS = [
    ("max_pool2d", (2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", (2, 3, 7, 7), dict(kernel_size=2, ceil_mode=True)),
    ("max_pool2d", (3, 8, 8), dict(kernel_size=3, stride=1, dilation=2)),
    ("max_pool1d", (2, 3, 9), dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", (2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d", (2, 3, 7, 7), dict(kernel_size=2, ceil_mode=True)),
    ("avg_pool2d", (2, 3, 6, 6), dict(kernel_size=2, divisor_override=3)),
    ("avg_pool1d", (2, 3, 9), dict(kernel_size=3, stride=2)),
    ("adaptive_avg_pool2d", (2, 3, 7, 7), dict(output_size=(3, 2))),
    ("adaptive_avg_pool2d", (2, 3, 6, 6), dict(output_size=1)),
    ("adaptive_avg_pool1d", (2, 3, 7), dict(output_size=3)),
    ("adaptive_max_pool2d", (2, 3, 7, 7), dict(output_size=(3, 2))),
    ("adaptive_max_pool1d", (2, 3, 9), dict(output_size=4)),
]


@pytest.mark.parametrize("name,shape,kw", POOLS)
def test_pool_second_order(name, shape, kw):
    fd, ft = getattr(F, name), getattr(TF, name)
    second_order(sq(lambda x: fd(x, **kw)), sq(lambda x: ft(x, **kw)), [shape])


@pytest.mark.parametrize("name,kw", [("max_pool2d", dict(kernel_size=2)), ("avg_pool2d", dict(kernel_size=2))])
def test_pool_gradient_of_gradient_is_zero_in_input(name, kw):
    # the gradient of a pooling op does not depend on its input: zeros, as in PyTorch
    x = dg.randn(1, 2, 4, 4, dtype=dg.float64, requires_grad=True)
    g, = dg.autograd.grad((getattr(F, name)(x, **kw) ** 2).sum(), x, create_graph=True)
    y = getattr(F, name)(x, **kw)
    g, = dg.autograd.grad(y, x, dg.ones_like(y) * 2.0, create_graph=True)
    h, = dg.autograd.grad(g.sum(), x)
    assert float(h.abs().max()) == 0.0


def test_pool_gradgradcheck():
    x = dg.tensor(np.random.default_rng(3).standard_normal((1, 2, 5, 5)), requires_grad=True)
    assert dg.autograd.gradgradcheck(lambda x: F.max_pool2d(x * x, 3, 2, 1), [x])
    assert dg.autograd.gradgradcheck(lambda x: F.avg_pool2d(x * x, 3, 2, 1), [x])
    assert dg.autograd.gradgradcheck(lambda x: F.adaptive_max_pool2d(x * x, 2), [x])


# ---- normalisation --------------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (5, 3)])
def test_batch_norm_second_order(training, affine, shape):
    rng = np.random.default_rng(4)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5

    def make(M, FF):
        def f(x, *p):
            return FF.batch_norm(x * x if not training else x, M.tensor(rm.copy()), M.tensor(rv.copy()), *p,
                                 training=training)
        return f
    second_order(make(dg, F), make(torch, TF), [shape] + ([(3,), (3,)] if affine else []))


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_second_order(affine):
    sh = [(2, 3, 4)] + ([(3, 4), (3, 4)] if affine else [])
    second_order(lambda x, *p: F.layer_norm(x, (3, 4), *p), lambda x, *p: TF.layer_norm(x, (3, 4), *p), sh)


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_second_order(affine):
    sh = [(2, 4, 3, 2)] + ([(4,), (4,)] if affine else [])
    second_order(lambda x, *p: F.group_norm(x, 2, *p), lambda x, *p: TF.group_norm(x, 2, *p), sh)


def test_norm_gradgradcheck():
    x = dg.tensor(np.random.default_rng(5).standard_normal((3, 2, 2)), requires_grad=True)
    w = dg.tensor(np.random.default_rng(6).standard_normal(2), requires_grad=True)
    b = dg.tensor(np.random.default_rng(7).standard_normal(2), requires_grad=True)
    assert dg.autograd.gradgradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, w, b])
    assert dg.autograd.gradgradcheck(lambda x, w, b: F.group_norm(x, 1, w, b), [x, w, b])


# ---- losses ---------------------------------------------------------------------------------

_RNG = np.random.default_rng(8)
TGT = np.array([0, 2, 4, 2])
TGT3 = _RNG.integers(0, 5, size=(3, 2, 2))
WCLS = _RNG.random(5) + 0.5


@pytest.mark.parametrize("reduction,ls,weighted,ignore",
                         list(itertools.product(["mean", "sum", "none"], [0.0, 0.2], [False, True], [-100, 2])))
def test_cross_entropy_second_order(reduction, ls, weighted, ignore):
    def make(M, FF):
        return lambda x: FF.cross_entropy(x, M.tensor(TGT), weight=M.tensor(WCLS) if weighted else None,
                                          reduction=reduction, label_smoothing=ls, ignore_index=ignore)
    second_order(make(dg, F), make(torch, TF), [(4, 5)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_extra_dims_and_probabilities(reduction):
    def spatial(M, FF):
        return lambda x: FF.cross_entropy(x, M.tensor(TGT3), reduction=reduction, label_smoothing=0.1)
    second_order(spatial(dg, F), spatial(torch, TF), [(3, 5, 2, 2)])

    def probs(M, FF):
        return lambda x, p: FF.cross_entropy(x, p.softmax(1), reduction=reduction, label_smoothing=0.1,
                                             weight=M.tensor(WCLS))
    second_order(probs(dg, F), probs(torch, TF), [(4, 5), (4, 5)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_second_order(reduction):
    def make(M, FF):
        return lambda x: FF.nll_loss(FF.log_softmax(x, 1), M.tensor(TGT), weight=M.tensor(WCLS),
                                     reduction=reduction, ignore_index=2)
    second_order(make(dg, F), make(torch, TF), [(4, 5)])


def test_loss_gradgradcheck():
    x = dg.tensor(np.random.default_rng(9).standard_normal((3, 4)), requires_grad=True)
    t = dg.tensor(np.array([1, 0, 3]))
    assert dg.autograd.gradgradcheck(lambda x: F.cross_entropy(x, t, label_smoothing=0.1), [x])
    assert dg.autograd.gradgradcheck(lambda x: F.nll_loss(x * x, t, reduction="sum"), [x])


# ---- embedding, attention, small linear maps ------------------------------------------------

@pytest.mark.parametrize("padding_idx,scale", [(None, False), (1, False), (None, True), (1, True)])
def test_embedding_second_order(padding_idx, scale):
    idx = np.array([[1, 0, 3], [1, 5, 1]])

    def make(M, FF):
        return lambda w: FF.embedding(M.tensor(idx), w * w, padding_idx=padding_idx, scale_grad_by_freq=scale)
    second_order(make(dg, F), make(torch, TF), [(6, 3)])


@pytest.mark.parametrize("causal", [False, True])
def test_attention_second_order(causal):
    second_order(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                 lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=causal),
                 [(2, 3, 4), (2, 3, 4), (2, 3, 5)])


def test_pixel_shuffle_interpolate_prelu_second_order():
    second_order(sq(lambda x: F.pixel_shuffle(x, 2)), sq(lambda x: TF.pixel_shuffle(x, 2)), [(2, 8, 2, 2)])
    kw = dict(scale_factor=2, mode="bilinear", align_corners=False)
    second_order(sq(lambda x: F.interpolate(x, **kw)), sq(lambda x: TF.interpolate(x, **kw)), [(2, 3, 3, 4)])
    second_order(lambda x, w: F.prelu(x * x - 1, w), lambda x, w: TF.prelu(x * x - 1, w), [(2, 3, 4), (3,)])


# ---- recurrent layers -----------------------------------------------------------------------

@pytest.mark.parametrize("kind,bidirectional,init", [
    ("LSTM", False, False), ("LSTM", True, True), ("GRU", False, True), ("GRU", True, False),
    ("RNN", False, True)])
def test_rnn_second_order(kind, bidirectional, init):
    torch.manual_seed(0)
    tm = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional).double()
    dm = getattr(dg.nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional).double()
    dm.load_state_dict({k: dg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    D = 2 if bidirectional else 1
    shapes = [(4, 2, 3)] + ([(2 * D, 2, 4)] * (2 if kind == "LSTM" else 1) if init else [])

    def make(m):
        def f(x, *s):
            st = None if not s else (tuple(s) if kind == "LSTM" else s[0])
            return m(x * x, st)[0]
        return f
    second_order(make(dm), make(tm), shapes)
    # Hessian-vector product in the parameters
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 2, 3))
    vs = [rng.standard_normal(tuple(p.shape)) for p in tm.parameters()]
    res = []
    for M, m in ((dg, dm), (torch, tm)):
        ps = list(m.parameters())
        loss = (m(M.tensor(x))[0] ** 2).sum()
        gs = M.autograd.grad(loss, ps, create_graph=True)
        dot = sum((g * M.tensor(v)).sum() for g, v in zip(gs, vs))
        res.append(M.autograd.grad(dot, ps))
    for a, b in zip(*res):
        _close(a, b)


def test_packed_lstm_second_order():
    torch.manual_seed(1)
    tm = torch.nn.LSTM(3, 4).double()
    dm = dg.nn.LSTM(3, 4).double()
    dm.load_state_dict({k: dg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    lengths = [4, 2, 3]

    def make(M, m, pack):
        def f(x):
            out, (h, c) = m(pack(x * x, lengths, enforce_sorted=False))
            return h
        return f
    import torch.nn.utils.rnn as trnn
    second_order(make(dg, dm, dg.nn.utils.rnn.pack_padded_sequence), make(torch, tm, trnn.pack_padded_sequence),
                 [(4, 3, 3)])


def test_rnn_gradgradcheck():
    from deepgrad.ops.recurrent import rnn_layer
    rng = np.random.default_rng(11)
    ts = [dg.tensor(rng.standard_normal(s), requires_grad=True)
          for s in [(3, 2, 2), (2, 2), (2, 2), (8, 2), (8, 2), (8,), (8,)]]
    assert dg.autograd.gradgradcheck(lambda *a: rnn_layer("LSTM", *a)[0], ts)


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_local_response_norm_second_order(size):
    second_order(lambda x: F.local_response_norm(x, size, alpha=0.3, beta=0.6, k=1.5),
                 lambda x: TF.local_response_norm(x, size, alpha=0.3, beta=0.6, k=1.5), [(2, 4, 3, 2)])


@pytest.mark.parametrize("size,depth", [((3, 3), None), ((2, 3), 2), ((1, 1), 3)])
def test_divisive_normalization_second_order(size, depth):
    # no PyTorch counterpart: the create_graph gradient equals the fused first-order one, and
    # gradgradcheck passes
    x = dg.tensor(np.random.default_rng(22).standard_normal((2, 3, 4, 3)), requires_grad=True)
    g0, = dg.autograd.grad(F.divisive_normalization(x, size, depth).sum(), x)
    g1, = dg.autograd.grad(F.divisive_normalization(x, size, depth).sum(), x, create_graph=True)
    _close(g1, g0, 1e-12)
    assert dg.autograd.gradgradcheck(lambda x: F.divisive_normalization(x, size, depth), [x])


@pytest.mark.parametrize("p,reduction,weighted", [(1, "mean", False), (2, "sum", True), (2, "none", False)])
def test_multi_margin_second_order(p, reduction, weighted):
    # PyTorch 2.13 has no derivative for multi_margin_loss_backward: gradgradcheck only
    x = dg.tensor(np.random.default_rng(21).standard_normal((4, 5)), requires_grad=True)
    w = dg.tensor(WCLS) if weighted else None
    assert dg.autograd.gradgradcheck(
        lambda x: F.multi_margin_loss(x * x, dg.tensor(TGT), p=p, margin=0.7, reduction=reduction, weight=w), [x])


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_second_order(bias):
    second_order(lambda a, b, w, *c: F.bilinear(a, b, w, *c), lambda a, b, w, *c: TF.bilinear(a, b, w, *c),
                 [(3, 2), (3, 4), (5, 2, 4)] + ([(5,)] if bias else []))


@pytest.mark.parametrize("mode,padding_mode,align_corners",
                         list(itertools.product(["bilinear", "nearest"], ["zeros", "border", "reflection"],
                                                [False, True])))
def test_grid_sample_second_order(mode, padding_mode, align_corners):
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    second_order(lambda x, g: F.grid_sample(x * x, g * 1.3, **kw), lambda x, g: TF.grid_sample(x * x, g * 1.3, **kw),
                 [(2, 3, 4, 5), (2, 3, 2, 2)])


def test_fused_op_without_a_second_order_route_names_itself():
    # every fused op of deepgrad has a graph_backward; a user's array_backward op may not
    class Cube(dg.autograd.Function):
        array_backward = True

        def forward(self, x):
            self.x = x
            return x ** 3

        def backward(self, g):
            return 3 * self.x ** 2 * g

    x = dg.tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Cube has a first-order-only backward.*create_graph"):
        dg.autograd.grad(Cube.apply(x), x, grad_outputs=dg.ones(1), create_graph=True)
    from deepgrad.autograd.function import Function
    import deepgrad
    fused = [c for c in _subclasses(Function) if c.array_backward and c.__module__.startswith("deepgrad.")
             and not getattr(c, "first_order_only", None)]     # documented exceptions name their reason
    assert fused and all(hasattr(c, "graph_backward") for c in fused), \
        [c.__name__ for c in fused if not hasattr(c, "graph_backward")]
    assert deepgrad


def _subclasses(cls):
    out = []
    for c in cls.__subclasses__():
        out.append(c)
        out.extend(_subclasses(c))
    return out


# ---- autograd.functional --------------------------------------------------------------------

def _fn(M):
    def f(x, y):
        return (x.sin() * (y.sum() + x)).exp(), (x * x).sum() * y
    return f


def _scalar(M):
    return lambda x, y: (x.sin() ** 2).sum() * (y * y).sum() + (x[0] * y[1, 1]) ** 3


def _nested_close(a, b):
    if isinstance(b, tuple):
        assert isinstance(a, tuple) and len(a) == len(b)
        for p, q in zip(a, b):
            _nested_close(p, q)
    else:
        _close(a, b, 1e-10)


def test_functional_matches_torch():
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal(3), rng.standard_normal((2, 2))
    va, vb = rng.standard_normal(3), rng.standard_normal((2, 2))
    for name in ("jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"):
        fd, ft = (_scalar(dg), _scalar(torch)) if name in ("hessian", "hvp", "vhp") else (_fn(dg), _fn(torch))
        args_d, args_t = (dg.tensor(a), dg.tensor(b)), (torch.tensor(a), torch.tensor(b))
        extra_d = () if name in ("jacobian", "hessian") else \
            ((dg.tensor(va), dg.tensor(vb)) if name != "vjp" else (tuple(dg.tensor(z) for z in _vjp_v(rng)),))
        extra_t = () if name in ("jacobian", "hessian") else \
            ((torch.tensor(va), torch.tensor(vb)) if name != "vjp" else (tuple(torch.tensor(z) for z in _vjp_v(rng)),))
        if name != "vjp" and extra_d:
            extra_d, extra_t = (extra_d,), (extra_t,)
        _nested_close(getattr(DAF, name)(fd, args_d, *extra_d), getattr(TAF, name)(ft, args_t, *extra_t))
    # single inputs give Tensors, not tuples
    hd = DAF.hessian(lambda x: (x.sin() ** 3).sum(), dg.tensor(a))
    ht = TAF.hessian(lambda x: (x.sin() ** 3).sum(), torch.tensor(a))
    _close(hd, ht, 1e-12)
    jd = DAF.jacobian(lambda x: x.exp() * x.sum(), dg.tensor(a), vectorize=True)
    _close(jd, TAF.jacobian(lambda x: x.exp() * x.sum(), torch.tensor(a), vectorize=True), 1e-12)


def test_jvp_through_fused_ops_matches_torch():
    # the double-vjp trick differentiates each backward in its output gradient
    x, y = _data(23, 3)
    ps = _cnn_params(24)
    v = np.random.default_rng(25).standard_normal(x.shape)
    res = []
    for M, FF, AF in ((dg, F, DAF), (torch, TF, TAF)):
        def f(z):
            return FF.cross_entropy(_cnn(M, FF, z, *[M.tensor(p) for p in ps]), M.tensor(y), reduction="none")
        res.append(AF.jvp(f, M.tensor(x), M.tensor(v)))
    _nested_close(res[0], res[1])


def _vjp_v(rng):
    r = np.random.default_rng(13)
    return r.standard_normal(3), r.standard_normal((2, 2))


def test_functional_create_graph_and_errors():
    a = np.array([0.3, -1.2, 0.7])
    res = []
    for M, AF in ((dg, DAF), (torch, TAF)):
        x = M.tensor(a, requires_grad=True)
        _, hv = AF.hvp(lambda z: (z.sin() ** 3).sum(), x, M.tensor(a * 2), create_graph=True)
        Hm = AF.hessian(lambda z: (z.cos() * z).sum() ** 2, x, create_graph=True)
        res.append(M.autograd.grad((hv ** 2).sum() + (Hm ** 2).sum(), x)[0])
    _close(*res, 1e-10)
    with pytest.raises(RuntimeError, match="single element"):
        DAF.hessian(lambda z: z * 2, dg.tensor(a))
    with pytest.raises(RuntimeError, match="invalid size"):
        DAF.hvp(lambda z: z.sum(), dg.tensor(a), dg.tensor(a[:2]))
    with pytest.raises(RuntimeError, match="independent"):
        DAF.vjp(lambda z, y: z.sum(), (dg.tensor(a), dg.tensor(a)), dg.tensor(1.0), strict=True)


# ---- a small CNN: Hessian, spectrum, WGAN-GP, MAML --------------------------------------------

def _cnn_params(seed=14):
    rng = np.random.default_rng(seed)
    shapes = [(6, 1, 3, 3), (6,), (6,), (6,), (3, 54), (3,)]     # conv, bn weight/bias, linear: 237
    return [rng.standard_normal(s) * 0.5 + (1.0 if i == 2 else 0.0) for i, s in enumerate(shapes)]


def _cnn(M, FF, x, cw, cb, bw, bb, lw, lb):
    h = FF.conv2d(x, cw, cb, padding=1)
    h = FF.batch_norm(h, None, None, bw, bb, training=True)
    h = FF.max_pool2d(FF.relu(h), 2)           # (N, 6, 3, 3)
    return FF.linear(h.reshape(h.shape[0], -1), lw, lb)


def _data(seed=15, n=6):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 6, 6)), rng.integers(0, 3, size=n)


@pytest.fixture(scope="module")
def cnn_hessian():
    x, y = _data()
    ps = _cnn_params()
    out = []
    for M, FF, AF in ((dg, F, DAF), (torch, TF, TAF)):
        def loss(*p):
            return FF.cross_entropy(_cnn(M, FF, M.tensor(x), *p), M.tensor(y))
        Hm = AF.hessian(loss, tuple(M.tensor(p) for p in ps))
        n = sum(p.size for p in ps)
        dense = np.block([[np.asarray(Hm[i][j].detach().numpy()).reshape(ps[i].size, ps[j].size)
                           for j in range(len(ps))] for i in range(len(ps))])
        assert dense.shape == (n, n)
        out.append(dense)
    return out


def test_cnn_hessian_matches_torch(cnn_hessian):
    hd, ht = cnn_hessian
    assert hd.shape[0] == 237
    assert np.abs(hd - ht).max() <= 1e-8 * max(1.0, np.abs(ht).max())


def _cnn_operator():
    x, y = _data()
    ps = [dg.tensor(p, requires_grad=True) for p in _cnn_params()]
    loss = F.cross_entropy(_cnn(dg, F, dg.tensor(x), *ps), dg.tensor(y))
    return H.HessianOperator(loss, ps)


def test_hessian_tools_against_the_dense_spectrum(cnn_hessian):
    dense = cnn_hessian[1]
    ev = np.linalg.eigvalsh(dense)
    op = _cnn_operator()
    v = np.random.default_rng(16).standard_normal(op.n)
    assert np.abs(op.matvec(v) - dense @ v).max() < 1e-9
    n0 = op.n_products
    top = H.eigenvalues(op, k=3, method="lanczos", which="LA", tol=1e-8)
    assert np.abs(top - ev[::-1][:3]).max() < 1e-6
    assert op.n_products - n0 < op.n                  # converged before the Krylov space filled
    lm = H.eigenvalues(op, k=1)
    assert abs(lm[0] - ev[np.argmax(np.abs(ev))]) < 1e-6
    vals, vecs = H.eigenvalues(op, k=1, method="power", max_iter=300, tol=1e-10, return_eigenvectors=True)
    order = np.argsort(-np.abs(ev))
    assert abs(vals[0] - ev[order[0]]) < 1e-4 * abs(ev[order[0]])
    assert abs(abs(vecs[0] @ dense @ vecs[0]) - abs(vals[0])) < 1e-4 * abs(vals[0])
    est, se = H.trace(op, n_samples=30, seed=1)
    assert se > 0 and abs(est - np.trace(dense)) < 3 * se   # within three standard errors
    nodes, weights = H.density(op, n_iter=25, n_v=2, seed=2)
    rng = np.random.default_rng(2)
    for t, w in zip(nodes, weights):
        vr = rng.choice([-1.0, 1.0], size=op.n)
        assert abs(w.sum() - 1) < 1e-10
        assert abs((w * t).sum() - vr @ dense @ vr / op.n) < 1e-8
    grid = np.linspace(ev.min() - 1, ev.max() + 1, 400)
    dens = H.spectral_density(nodes, weights, grid)
    assert abs(np.trapezoid(dens, grid) - 1) < 1e-2
    with pytest.raises(ValueError, match="only .* parameters"):
        H.eigenvalues(op, k=op.n + 1)


def test_hessian_tools_on_a_quadratic():
    rng = np.random.default_rng(26)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    lam = np.array([5.0, -3.0, 2.0, 1.0, -0.5, 0.25])
    A = (Q * lam) @ Q.T
    x = dg.tensor(rng.standard_normal(6), requires_grad=True)
    y = dg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    z = dg.cat([x, y.reshape(-1)])[:6]
    op = H.HessianOperator(0.5 * (z * (dg.tensor(A) @ z)).sum() + (y ** 2).sum() * 0, [x, y])
    assert op.n == 12
    full = np.zeros((12, 12))
    full[:6, :6] = A
    v = rng.standard_normal(12)
    assert np.allclose(op.matvec(v), full @ v)
    vals = H.eigenvalues(op, k=2, method="power", max_iter=2000, tol=1e-14)
    assert np.allclose(vals, [5.0, -3.0], atol=1e-6)
    assert np.allclose(H.eigenvalues(op, k=2, which="SA"), [-3.0, -0.5], atol=1e-8)
    assert np.allclose(H.eigenvalues(op, k=3, which="LA"), [5.0, 2.0, 1.0], atol=1e-8)
    with pytest.raises(ValueError, match="k=13 eigenvalues .* only 12 parameters"):
        H.eigenvalues(op, k=13)
    with pytest.raises(ValueError, match="method"):
        H.eigenvalues(op, k=1, method="arnoldi")
    assert abs(H.trace(op, n_samples=20)[0] - lam.sum()) < 1e-9 + 3 * H.trace(op, n_samples=20)[1]


def test_wgan_gp_step_matches_torch():
    rng = np.random.default_rng(17)
    real, fake, eps = rng.standard_normal((4, 1, 6, 6)), rng.standard_normal((4, 1, 6, 6)), rng.random((4, 1, 1, 1))
    ps = [rng.standard_normal(s) * 0.4 for s in [(3, 1, 3, 3), (3,), (1, 3), (1,)]]
    grads = []
    for M, FF in ((dg, F), (torch, TF)):
        w = [M.tensor(p, requires_grad=True) for p in ps]

        def critic(z):
            h = FF.leaky_relu(FF.conv2d(z, w[0], w[1], stride=2), 0.2)
            h = FF.avg_pool2d(h, 2, 1)
            return FF.linear(h.reshape(h.shape[0], -1), w[2], w[3])
        xh = (M.tensor(eps) * M.tensor(real) + (1 - M.tensor(eps)) * M.tensor(fake)).requires_grad_(True)
        d = critic(xh)
        g, = M.autograd.grad(d.sum(), xh, create_graph=True)
        gp = ((g.reshape(4, -1).norm(2, dim=1) - 1) ** 2).mean()
        loss = critic(M.tensor(fake)).mean() - critic(M.tensor(real)).mean() + 10.0 * gp
        loss.backward()
        grads.append([p.grad for p in w])
    for a, b in zip(*grads):
        _close(a, b)


def test_maml_one_step_matches_torch():
    xs, ys = _data(18, 4)
    xq, yq = _data(19, 4)
    ps = _cnn_params(20)
    grads = []
    for M, FF in ((dg, F), (torch, TF)):
        w = [M.tensor(p, requires_grad=True) for p in ps]
        inner = FF.cross_entropy(_cnn(M, FF, M.tensor(xs), *w), M.tensor(ys))
        gs = M.autograd.grad(inner, w, create_graph=True)
        fast = [p - 0.1 * g for p, g in zip(w, gs)]
        outer = FF.cross_entropy(_cnn(M, FF, M.tensor(xq), *fast), M.tensor(yq))
        outer.backward()
        grads.append([p.grad for p in w])
    for a, b in zip(*grads):
        _close(a, b)
