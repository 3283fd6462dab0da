"""Convolutions (deepgrad.ops.conv, deepgrad.nn.conv) against PyTorch 2.13."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
import deepgrad.nn as dnn
from deepgrad.ops import conv as C
from deepgrad.ops import pool as P
from deepgrad.ops.shape import pad
from opcheck import F32, assert_close, case_seed as _seed, check_op, rand


def _args(x, w, b):
    return [x, w] + ([b] if b is not None else [])


def _ops(dg_fn, torch_fn, has_bias, **kw):
    if has_bias:
        return (lambda x, w, b: dg_fn(x, w, b, **kw)), (lambda x, w, b: torch_fn(x, w, b, **kw))
    return (lambda x, w: dg_fn(x, w, **kw)), (lambda x, w: torch_fn(x, w, **kw))


# ---------------------------------------------------------------------------------------------
# conv2d / conv1d grids (float32, forward + input/weight/bias gradients)
# ---------------------------------------------------------------------------------------------

CONV2D_GRID = [
    c for c in itertools.product(
        [1, 2, (2, 3)],                                     # stride
        [0, 1, (2, 0), "same", "valid"],                    # padding
        [1, (2, 1)],                                        # dilation
        [(4, 6, 1), (4, 6, 2), (4, 8, 4)],                  # (in, out, groups): plain, grouped, depthwise x2
        [(3, 3), (2, 3)],                                   # kernel
    ) if not (c[1] == "same" and c[0] != 1)
] + [(1, 0, 1, (4, 6, 1), (1, 1)), (2, 0, 1, (4, 6, 2), (1, 1)), (1, "same", 2, (3, 5, 1), (4, 5))]


@pytest.mark.parametrize("stride,padding,dilation,chans,kernel", CONV2D_GRID)
def test_conv2d_grid(stride, padding, dilation, chans, kernel):
    cin, cout, groups = chans
    seed = _seed(stride, padding, dilation, chans, kernel)
    n = 1 if seed % 3 == 0 else 2
    x = rand(n, cin, 7, 9 + seed % 2, seed=seed, dtype=np.float32)
    w = rand(cout, cin // groups, *kernel, seed=seed + 1, dtype=np.float32)
    has_bias = seed % 4 != 1
    b = rand(cout, seed=seed + 2, dtype=np.float32) if has_bias else None
    f, t = _ops(C.conv2d, TF.conv2d, has_bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    check_op(f, t, _args(x, w, b), **F32)


CONV1D_GRID = [
    c for c in itertools.product([1, 3], [0, 2, "same"], [1, 3], [(3, 4, 1), (4, 6, 2), (3, 6, 3)], [1, 4])
    if not (c[1] == "same" and c[0] != 1)
]


@pytest.mark.parametrize("stride,padding,dilation,chans,k", CONV1D_GRID)
def test_conv1d_grid(stride, padding, dilation, chans, k):
    cin, cout, groups = chans
    seed = _seed(stride, padding, dilation, chans, k)
    L = 13 + seed % 2
    x = rand(1 + seed % 2, cin, L, seed=seed, dtype=np.float32)
    w = rand(cout, cin // groups, k, seed=seed + 1, dtype=np.float32)
    b = rand(cout, seed=seed + 2, dtype=np.float32)
    f, t = _ops(C.conv1d, TF.conv1d, True, stride=stride, padding=padding, dilation=dilation, groups=groups)
    check_op(f, t, [x, w, b], **F32)


CONVT2D_GRID = [
    c for c in itertools.product(
        [1, 2, (3, 2)],                    # stride
        [0, 1, (1, 2)],                    # padding
        [0, 1],                            # output_padding
        [1, 2],                            # dilation
        [(4, 6, 1), (4, 6, 2)],            # (in, out, groups)
        [(3, 3), (2, 3)],                  # kernel
    ) if not (c[2] == 1 and (min(c[0]) if isinstance(c[0], tuple) else c[0]) == 1 and c[3] == 1)
]


@pytest.mark.parametrize("stride,padding,output_padding,dilation,chans,kernel", CONVT2D_GRID)
def test_conv_transpose2d_grid(stride, padding, output_padding, dilation, chans, kernel):
    cin, cout, groups = chans
    seed = _seed(stride, padding, output_padding, dilation, chans, kernel)
    x = rand(1 + seed % 2, cin, 5, 4 + seed % 3, seed=seed, dtype=np.float32)
    w = rand(cin, cout // groups, *kernel, seed=seed + 1, dtype=np.float32)
    b = rand(cout, seed=seed + 2, dtype=np.float32)
    f, t = _ops(C.conv_transpose2d, TF.conv_transpose2d, seed % 3 != 0, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation, groups=groups)
    check_op(f, t, _args(x, w, b if seed % 3 != 0 else None), **F32)


@pytest.mark.parametrize("stride,padding,output_padding,groups", [(1, 0, 0, 1), (2, 1, 1, 2), (3, 2, 2, 1)])
def test_conv_transpose1d(stride, padding, output_padding, groups):
    x = rand(2, 4, 7, seed=1, dtype=np.float32)
    w = rand(4, 6 // groups, 3, seed=2, dtype=np.float32)
    b = rand(6, seed=3, dtype=np.float32)
    f, t = _ops(C.conv_transpose1d, TF.conv_transpose1d, True, stride=stride, padding=padding,
                output_padding=output_padding, groups=groups)
    check_op(f, t, [x, w, b], **F32)


# ---------------------------------------------------------------------------------------------
# float64: torch at 1e-6 and central-difference gradcheck on small cases
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2),
                                dict(groups=2, stride=(1, 2), padding=(1, 0))])
def test_conv2d_gradcheck_f64(kw):
    x, w, b = rand(2, 2, 5, 6, seed=4), rand(4, 2 // kw.get("groups", 1), 3, 2, seed=5), rand(4, seed=6)
    f, t = _ops(C.conv2d, TF.conv2d, True, **kw)
    check_op(f, t, [x, w, b], double=False)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1), dict(dilation=2, groups=2)])
def test_conv_transpose2d_gradcheck_f64(kw):
    x, w, b = rand(1, 2, 3, 4, seed=7), rand(2, 2 // kw.get("groups", 1), 2, 3, seed=8), rand(2, seed=9)
    f, t = _ops(C.conv_transpose2d, TF.conv_transpose2d, True, **kw)
    check_op(f, t, [x, w, b], double=False)


def test_conv1d_gradcheck_f64():
    f, t = _ops(C.conv1d, TF.conv1d, True, stride=2, padding=1, dilation=2)
    check_op(f, t, [rand(2, 3, 9, seed=1), rand(2, 3, 3, seed=2), rand(2, seed=3)], double=False)


def test_conv1d_lecture_example():
    """Notes 001: input 1 4 -1 0 2 -2 1 3 3 1, kernel 1 2 0 -1 -> 9 0 1 3 -5 -3 6."""
    x = dg.tensor([[[1., 4, -1, 0, 2, -2, 1, 3, 3, 1]]])
    w = dg.tensor([[[1., 2, 0, -1]]])
    assert C.conv1d(x, w).tolist() == [[[9., 0, 1, 3, -5, -3, 6]]]


def test_unbatched_and_partial_grads():
    x, w, b = rand(3, 6, 5, seed=1), rand(4, 3, 3, 3, seed=2), rand(4, seed=3)
    check_op(lambda x, w, b: C.conv2d(x, w, b, padding=1), lambda x, w, b: TF.conv2d(x, w, b, padding=1),
             [x, w, b], double=False, gradcheck=False)
    for need in ([True, False], [False, True]):
        xs = [dg.tensor(a, requires_grad=r) for a, r in zip((x[None], w), need)]
        ts = [torch.tensor(a, requires_grad=r) for a, r in zip((x[None], w), need)]
        C.conv2d(*xs, stride=2).sum().backward()
        TF.conv2d(*ts, stride=2).sum().backward()
        for a, t in zip(xs, ts):
            assert (a.grad is None) == (t.grad is None)
            if t.grad is not None:
                assert_close(a.grad, t.grad)
    with dg.no_grad():
        y = C.conv2d(dg.tensor(x), dg.tensor(w))
    assert y.grad_fn is None and tuple(y.shape) == (4, 4, 3)


def test_chain_conv_pool_conv_layouts():
    """Outputs come back as channel-major views; a following pool/conv must read them right."""
    x, w1, w2 = rand(2, 2, 9, 8, seed=1), rand(3, 2, 3, 3, seed=2), rand(2, 3, 2, 2, seed=3)

    def run(lib, x, w1, w2):
        F = P if lib == "dg" else TF
        conv = C.conv2d if lib == "dg" else TF.conv2d
        y = conv(x, w1, padding=1)
        y = F.max_pool2d(y * y, 2, ceil_mode=True)
        y = conv(y, w2, stride=2)
        return F.avg_pool2d(y, 2, ceil_mode=True) * 3

    check_op(lambda *a: run("dg", *a), lambda *a: run("torch", *a), [x, w1, w2], double=False)


def test_padding_modes_functional():
    x = rand(2, 3, 5, 6, seed=1)
    for mode in ("reflect", "replicate", "circular", "constant"):
        check_op(lambda x: pad(x, (2, 1, 3, 4), mode), lambda x: TF.pad(x, (2, 1, 3, 4), mode=mode), [x],
                 double=False)
    check_op(lambda x: pad(x, (-1, 2, 0, -2)), lambda x: TF.pad(x, (-1, 2, 0, -2)), [x], double=False)
    check_op(lambda x: C.zero_pad2d(x, 2), lambda x: TF.pad(x, (2, 2, 2, 2)), [x], double=False)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

def test_errors():
    x = dg.randn(2, 3, 8, 8)
    with pytest.raises(RuntimeError, match=r"expected input\[2, 3, 8, 8\] to have 2 channels"):
        C.conv2d(x, dg.randn(4, 2, 3, 3))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater"):
        C.conv2d(x, dg.randn(4, 3, 9, 9))
    with pytest.raises(RuntimeError, match="divisible by groups"):
        C.conv2d(x, dg.randn(5, 1, 3, 3), groups=3)
    with pytest.raises(RuntimeError, match="not supported for strided"):
        C.conv2d(x, dg.randn(4, 3, 3, 3), padding="same", stride=2)
    with pytest.raises(RuntimeError, match="4D"):
        C.conv2d(dg.randn(8, 8), dg.randn(4, 3, 3, 3))
    with pytest.raises(RuntimeError, match="same dtype"):
        C.conv2d(x.double(), dg.randn(4, 3, 3, 3))
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        C.conv_transpose2d(x, dg.randn(3, 2, 3, 3), stride=2, output_padding=2)
    conv = dnn.Conv2d(1, 6, 5)
    with pytest.raises(RuntimeError, match=r"Conv2d\(1, 6, kernel_size=\(5, 5\), stride=\(1, 1\)\).*1 channels.*"
                                           r"\(2, 3, 8, 8\)"):
        conv(x)
    with pytest.raises(RuntimeError, match=r"Conv2d\(1, 6.*Kernel size can't be greater"):
        conv(dg.randn(2, 1, 4, 4))
    with pytest.raises(ValueError, match="divisible by groups"):
        dnn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        dnn.Conv2d(3, 4, 3, padding_mode="mirror")


# ---------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------

MODULES = [
    "Conv2d(1, 6, 5)", "Conv2d(1, 6, kernel_size=(5, 5))", "Conv2d(3, 64, kernel_size=11, stride=4, padding=2)",
    "Conv2d(4, 8, (3, 2), stride=(2, 1), padding=1, dilation=2, groups=2, bias=False, padding_mode='reflect')",
    "Conv2d(4, 8, 3, padding='same')", "Conv2d(4, 4, 3, groups=4, padding='valid')",
    "Conv1d(4, 8, 3, stride=2, padding=1, padding_mode='circular')", "Conv1d(1, 1, 4, bias=False)",
    "ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)",
    "ConvTranspose2d(16, 8, (2, 3), dilation=2, bias=False)", "ConvTranspose1d(4, 6, 3)",
]


@pytest.mark.parametrize("spec", MODULES)
def test_module_repr_params_and_forward(spec):
    t = eval("torch.nn." + spec)
    d = eval("dnn." + spec)
    assert repr(d) == repr(t)
    assert [tuple(p.shape) for p in d.parameters()] == [tuple(p.shape) for p in t.parameters()]
    assert sum(p.numel() for p in d.parameters()) == sum(p.numel() for p in t.parameters())
    fan_in = d.weight[0].numel() if not d.transposed else d.weight.shape[1] * math.prod(d.kernel_size)
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(d.weight.detach().numpy()).max() <= bound + 1e-7
    if d.bias is not None:
        assert np.abs(d.bias.detach().numpy()).max() <= bound + 1e-7
    with torch.no_grad():
        t.weight.copy_(torch.tensor(d.weight.detach().numpy()))
        if t.bias is not None:
            t.bias.copy_(torch.tensor(d.bias.detach().numpy()))
    nd = len(d.kernel_size)
    x = rand(2, d.in_channels, *([11, 10][:nd]), seed=1, dtype=np.float32)
    xd, xt = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = d(xd), t(xt)
    assert_close(yd, yt, np.float32)
    g = rand(*yt.shape, seed=2, dtype=np.float32)
    yd.backward(dg.tensor(g))
    yt.backward(torch.tensor(g))
    assert_close(xd.grad, xt.grad, np.float32)
    assert_close(d.weight.grad, t.weight.grad, np.float32, rtol=1e-4, atol=1e-4)


def test_init_statistics_and_lenet_shapes():
    dg.manual_seed(0)
    conv = dnn.Conv2d(16, 32, 3)
    w = conv.weight.detach().numpy()
    bound = 1 / math.sqrt(16 * 9)
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound     # U(-b, b) has std b/sqrt(3)
    net = dnn.Sequential(dnn.Conv2d(1, 6, 5), dnn.ReLU(), dnn.MaxPool2d(2, 2), dnn.Conv2d(6, 16, 5), dnn.ReLU(),
                         dnn.MaxPool2d(2, 2))
    assert tuple(net(dg.randn(4, 1, 28, 28)).shape) == (4, 16, 4, 4)


def test_conv_transpose_output_size():
    d = dnn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    t = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    x = rand(1, 3, 4, 5, seed=0, dtype=np.float32)
    assert tuple(d(dg.tensor(x), output_size=[8, 10]).shape) == tuple(t(torch.tensor(x), output_size=[8, 10]).shape)
    with pytest.raises(ValueError, match="valid sizes"):
        d(dg.tensor(x), output_size=[12, 10])
