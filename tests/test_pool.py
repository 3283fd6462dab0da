"""Pooling, normalisation over neighbourhoods, pixel shuffle, interpolation (deepgrad.ops.pool,
deepgrad.nn.pooling) against PyTorch 2.13."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
import deepgrad.nn as dnn
from deepgrad.ops import pool as P
from opcheck import F32, case_seed as _seed, check_op, rand


def _x(shape, seed, dtype=np.float32):
    return rand(*shape, seed=seed, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------------------------

MAXPOOL2D_GRID = list(itertools.product(
    [2, 3, (3, 2)],             # kernel
    [None, 1, (2, 1)],          # stride
    [0, 1],                     # padding
    [1, 2],                     # dilation
    [False, True],              # ceil_mode
))


@pytest.mark.parametrize("k,s,p,d,ceil", MAXPOOL2D_GRID)
def test_max_pool2d_grid(k, s, p, d, ceil):
    seed = _seed(k, s, p, d, ceil)
    x = _x((1 + seed % 2, 3, 8 + seed % 3, 9), seed)
    fd = lambda x: P.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    ft = lambda x: TF.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    check_op(fd, ft, [x], **F32)


@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True), (4, 3, 2, 2, True),
                                          (3, 1, 1, 3, False)])
def test_max_pool1d(k, s, p, d, ceil):
    x = _x((2, 3, 15), 1)
    check_op(lambda x: P.max_pool1d(x, k, s, p, d, ceil, True), lambda x: TF.max_pool1d(x, k, s, p, d, ceil, True),
             [x], **F32)
    check_op(lambda x: P.max_pool1d(x, k, s, p, d, ceil), lambda x: TF.max_pool1d(x, k, s, p, d, ceil),
             [x[0]], **F32)


def test_max_pool_ties_unbatched_and_gradcheck():
    x = np.random.default_rng(0).integers(0, 3, (2, 7, 8)).astype(np.float32)   # many ties
    check_op(lambda x: P.max_pool2d(x, 3, 2, 1), lambda x: TF.max_pool2d(x, 3, 2, 1), [x], **F32)
    check_op(lambda x: P.max_pool2d(x, 2, 1), lambda x: TF.max_pool2d(x, 2, 1), [x], **F32)
    check_op(lambda x: P.max_pool2d(x, (2, 3), (1, 2), 1, ceil_mode=True),
             lambda x: TF.max_pool2d(x, (2, 3), (1, 2), 1, ceil_mode=True), [_x((1, 2, 5, 6), 3, np.float64)],
             double=False)


def test_max_unpool():
    x = _x((2, 3, 6, 6), 1)
    out, idx = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    ours_out, ours_idx = P.max_pool2d(dg.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(ours_idx.numpy(), idx.numpy())
    for size in (None, (7, 7)):
        check_op(lambda v: P.max_unpool2d(v, ours_idx, 2, output_size=size),
                 lambda v: TF.max_unpool2d(v, idx, 2, output_size=size), [out.numpy()], **F32)
    check_op(lambda v: P.max_unpool2d(v, ours_idx, 2), lambda v: TF.max_unpool2d(v, idx, 2),
             [out.numpy().astype(np.float64)], double=False)
    x1 = _x((2, 3, 9), 2)
    o1, i1 = TF.max_pool1d(torch.tensor(x1), 3, 2, return_indices=True)
    _, j1 = P.max_pool1d(dg.tensor(x1), 3, 2, return_indices=True)
    check_op(lambda v: P.max_unpool1d(v, j1, 3, 2), lambda v: TF.max_unpool1d(v, i1, 3, 2), [o1.numpy()], **F32)
    with pytest.raises(RuntimeError, match="invalid max index"):
        P.max_unpool2d(ours_out, ours_idx * 100, 2)


# ---------------------------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------------------------

AVGPOOL2D_GRID = list(itertools.product(
    [2, 3, (3, 2)],             # kernel
    [None, 1, (2, 1)],          # stride
    [0, 1],                     # padding
    [False, True],              # ceil_mode
    [True, False],              # count_include_pad
    [None, 5],                  # divisor_override
))


@pytest.mark.parametrize("k,s,p,ceil,cip,div", AVGPOOL2D_GRID)
def test_avg_pool2d_grid(k, s, p, ceil, cip, div):
    seed = _seed(k, s, p, ceil, cip, div)
    x = _x((1 + seed % 2, 2, 7 + seed % 3, 8), seed)
    check_op(lambda x: P.avg_pool2d(x, k, s, p, ceil, cip, div), lambda x: TF.avg_pool2d(x, k, s, p, ceil, cip, div),
             [x], **F32)


@pytest.mark.parametrize("k,s,p,ceil,cip", [(2, None, 0, False, True), (3, 2, 1, True, False), (4, 3, 2, True, True)])
def test_avg_pool1d(k, s, p, ceil, cip):
    x = _x((2, 3, 14), 1)
    check_op(lambda x: P.avg_pool1d(x, k, s, p, ceil, cip), lambda x: TF.avg_pool1d(x, k, s, p, ceil, cip), [x], **F32)


def test_avg_pool_gradcheck_f64():
    x = _x((1, 2, 5, 6), 4, np.float64)
    check_op(lambda x: P.avg_pool2d(x, 3, 2, 1, True, False), lambda x: TF.avg_pool2d(x, 3, 2, 1, True, False), [x],
             double=False)


# ---------------------------------------------------------------------------------------------
# adaptive pooling
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,out", [((2, 3, 8, 6), (4, 3)), ((2, 3, 7, 9), (3, 4)), ((1, 2, 5, 5), 1),
                                       ((2, 2, 6, 7), (None, 5)), ((3, 9, 10), (4, 7)), ((2, 3, 4, 4), (6, 5))])
def test_adaptive_pool2d(shape, out):
    x = _x(shape, 1)
    check_op(lambda x: P.adaptive_avg_pool2d(x, out), lambda x: TF.adaptive_avg_pool2d(x, out), [x], **F32)
    check_op(lambda x: P.adaptive_max_pool2d(x, out, True), lambda x: TF.adaptive_max_pool2d(x, out, True), [x],
             **F32)


@pytest.mark.parametrize("L,out", [(10, 4), (12, 4), (5, 7)])
def test_adaptive_pool1d(L, out):
    x = _x((2, 3, L), 2)
    check_op(lambda x: P.adaptive_avg_pool1d(x, out), lambda x: TF.adaptive_avg_pool1d(x, out), [x], **F32)
    check_op(lambda x: P.adaptive_max_pool1d(x, out, True), lambda x: TF.adaptive_max_pool1d(x, out, True), [x],
             **F32)


def test_adaptive_gradcheck_f64():
    x = _x((1, 2, 5, 7), 3, np.float64)
    check_op(lambda x: P.adaptive_avg_pool2d(x, (3, 4)), lambda x: TF.adaptive_avg_pool2d(x, (3, 4)), [x],
             double=False)
    check_op(lambda x: P.adaptive_max_pool2d(x, (3, 4)), lambda x: TF.adaptive_max_pool2d(x, (3, 4)), [x],
             double=False)


# ---------------------------------------------------------------------------------------------
# Lp pooling, LRN, divisive normalisation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p,k,s,ceil", [(2, 2, None, False), (3, (3, 2), 2, True), (1.5, 3, 1, False)])
def test_lp_pool2d(p, k, s, ceil):
    x = np.abs(_x((2, 3, 7, 8), 5)) + 0.1
    check_op(lambda x: P.lp_pool2d(x, p, k, s, ceil), lambda x: TF.lp_pool2d(x, p, k, s, ceil), [x], **F32)
    check_op(lambda x: P.lp_pool2d(x, p, k, s, ceil), lambda x: TF.lp_pool2d(x, p, k, s, ceil),
             [x[:1, :2, :5, :5].astype(np.float64)], double=False)


def test_lp_pool1d_and_lecture_formula():
    x = np.abs(_x((2, 3, 9), 6)) + 0.1
    check_op(lambda x: P.lp_pool1d(x, 2, 3, 2), lambda x: TF.lp_pool1d(x, 2, 3, 2), [x], **F32)
    # notes 002: p = downsample_a((a^p (*) 1_{ph x pw}) ^ (1/p))
    a = np.abs(_x((1, 1, 6, 6), 7, np.float64))
    ref = (a ** 3).reshape(1, 1, 3, 2, 3, 2).sum(axis=(3, 5)) ** (1 / 3)
    np.testing.assert_allclose(P.lp_pool2d(dg.tensor(a), 3, 2).numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("shape,size,alpha,beta,k", [((2, 7, 5, 4), 5, 1e-4, 0.75, 1.0), ((2, 6, 5), 2, 0.5, 0.6, 2.0),
                                                     ((1, 4, 3, 2, 2), 3, 1.0, 1.2, 0.5), ((2, 3, 4, 4), 8, 1.0, 0.75, 1.0)])
def test_local_response_norm(shape, size, alpha, beta, k):
    x = _x(shape, 8)
    check_op(lambda x: P.local_response_norm(x, size, alpha, beta, k),
             lambda x: TF.local_response_norm(x, size, alpha, beta, k), [x], **F32)
    check_op(lambda x: P.local_response_norm(x, size, alpha, beta, k),
             lambda x: TF.local_response_norm(x, size, alpha, beta, k), [x[:1].astype(np.float64)], double=False)


def _divnorm_torch(x, size=(3, 3), depth=None, eps=1e-6):
    s = x * x
    if depth is None:
        s = s.sum(1, keepdim=True)
    else:
        s = TF.avg_pool3d(TF.pad(s[:, None], (0, 0, 0, 0, depth // 2, (depth - 1) // 2)), (depth, 1, 1),
                          stride=1)[:, 0] * depth
    nh, nw = size
    s = TF.avg_pool2d(TF.pad(s, (nw // 2, (nw - 1) // 2, nh // 2, (nh - 1) // 2)), (nh, nw), stride=1) * (nh * nw)
    return x / torch.sqrt(s + eps)


@pytest.mark.parametrize("size,depth", [((3, 3), None), ((2, 3), None), ((3, 3), 3), ((1, 4), 2)])
def test_divisive_normalization(size, depth):
    x = _x((2, 4, 6, 7), 9)
    check_op(lambda x: P.divisive_normalization(x, size, depth), lambda x: _divnorm_torch(x, size, depth), [x], **F32)
    check_op(lambda x: P.divisive_normalization(x, size, depth), lambda x: _divnorm_torch(x, size, depth),
             [x[:1, :3, :4, :5].astype(np.float64)], double=False)
    layer = dnn.DivisiveNormalization(size, depth)
    assert repr(layer) == f"DivisiveNormalization(size={size}, depth={depth}, eps=1e-06)"
    y = layer(dg.tensor(x)).numpy()
    assert y.shape == x.shape and np.all(np.abs(y) <= 1 + 1e-6)    # each |x| is within its own norm


# ---------------------------------------------------------------------------------------------
# pixel shuffle, interpolation
# ---------------------------------------------------------------------------------------------

def test_pixel_shuffle():
    x = _x((2, 8, 3, 4), 1)
    check_op(lambda x: P.pixel_shuffle(x, 2), lambda x: TF.pixel_shuffle(x, 2), [x], **F32)
    check_op(lambda x: P.pixel_shuffle(x, 3), lambda x: TF.pixel_shuffle(x, 3), [_x((9, 2, 2), 2)], **F32)
    check_op(lambda x: P.pixel_unshuffle(x, 2), lambda x: TF.pixel_unshuffle(x, 2), [_x((2, 2, 4, 6), 3)], **F32)
    with pytest.raises(RuntimeError, match="divisible"):
        P.pixel_shuffle(dg.randn(1, 6, 2, 2), 2)


INTERP_GRID = [
    ("nearest", None, dict(size=(8, 5))), ("nearest", None, dict(scale_factor=2)),
    ("nearest", None, dict(scale_factor=(0.5, 1.7))), ("nearest-exact", None, dict(scale_factor=2.5)),
    ("bilinear", False, dict(size=(8, 5))), ("bilinear", True, dict(size=(8, 5))),
    ("bilinear", False, dict(scale_factor=2)), ("bilinear", True, dict(scale_factor=(2.3, 0.6))),
    ("bilinear", False, dict(scale_factor=(2.3, 0.6))), ("bilinear", False, dict(size=(1, 1))),
    ("bilinear", True, dict(size=(1, 9))), ("area", None, dict(size=(3, 4))),
]


@pytest.mark.parametrize("mode,ac,kw", INTERP_GRID)
def test_interpolate(mode, ac, kw):
    x = _x((2, 3, 5, 7), 4)
    check_op(lambda x: P.interpolate(x, mode=mode, align_corners=ac, **kw),
             lambda x: TF.interpolate(x, mode=mode, align_corners=ac, **kw), [x], **F32)


def test_interpolate_1d_and_gradcheck():
    x = _x((2, 3, 6), 5)
    for kw in (dict(scale_factor=2, mode="linear"), dict(size=11, mode="linear", align_corners=True),
               dict(size=4, mode="nearest")):
        check_op(lambda x: P.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw), [x], **F32)
    x64 = _x((1, 2, 3, 4), 6, np.float64)
    check_op(lambda x: P.interpolate(x, scale_factor=1.5, mode="bilinear"),
             lambda x: TF.interpolate(x, scale_factor=1.5, mode="bilinear"), [x64], double=False)
    with pytest.raises(ValueError, match="exactly one"):
        P.interpolate(dg.tensor(x), size=3, scale_factor=2)
    with pytest.raises(NotImplementedError, match="bicubic"):
        P.interpolate(dg.tensor(x64), scale_factor=2, mode="bicubic")


# ---------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------

MODULES = [
    ("MaxPool2d(2)", (2, 3, 8, 8)), ("MaxPool2d((3, 2), stride=(2, 1), padding=1, ceil_mode=True)", (2, 3, 7, 8)),
    ("MaxPool2d(kernel_size=(2, 2), stride=(2, 2))", (1, 2, 6, 6)), ("MaxPool1d(3, 2)", (2, 3, 11)),
    ("AvgPool2d(3, stride=2, padding=1)", (2, 3, 7, 8)), ("AvgPool2d(2, ceil_mode=True, count_include_pad=False)", (2, 3, 7, 7)),
    ("AvgPool1d(3)", (2, 3, 10)), ("AdaptiveAvgPool2d((1, 1))", (2, 3, 5, 5)), ("AdaptiveAvgPool2d(3)", (2, 3, 7, 8)),
    ("AdaptiveMaxPool2d((3, None))", (2, 3, 7, 8)), ("AdaptiveAvgPool1d(4)", (2, 3, 9)), ("AdaptiveMaxPool1d(4)", (2, 3, 9)),
    ("LPPool2d(2, 3, stride=2)", (2, 3, 7, 8)), ("LPPool1d(2.5, 3)", (2, 3, 9)),
    ("LocalResponseNorm(5)", (2, 6, 4, 4)), ("LocalResponseNorm(3, alpha=0.1, beta=0.5, k=2.0)", (2, 6, 4, 4)),
    ("ZeroPad2d(2)", (2, 3, 4, 4)), ("ZeroPad2d((1, 2, 3, 0))", (2, 3, 4, 4)), ("ConstantPad2d(1, 3.5)", (2, 3, 4, 4)),
    ("ReflectionPad2d(1)", (2, 3, 4, 4)), ("ReplicationPad2d((1, 0, 2, 1))", (2, 3, 4, 4)),
    ("CircularPad2d(1)", (2, 3, 4, 4)), ("ZeroPad1d(2)", (2, 3, 4)), ("ReflectionPad1d((1, 2))", (2, 3, 5)),
    ("Upsample(scale_factor=2)", (2, 3, 4, 5)), ("Upsample(size=(4, 5), mode='bilinear', align_corners=True)", (2, 3, 3, 3)),
    ("Upsample(scale_factor=(2, 3), mode='bilinear')", (2, 3, 3, 3)), ("UpsamplingNearest2d(scale_factor=2)", (1, 2, 3, 3)),
    ("UpsamplingBilinear2d(size=7)", (1, 2, 3, 4)), ("PixelShuffle(2)", (2, 8, 3, 3)), ("PixelUnshuffle(2)", (2, 2, 4, 4)),
]


@pytest.mark.parametrize("spec,shape", MODULES)
def test_module(spec, shape):
    t = eval("torch.nn." + spec)
    d = eval("dnn." + spec)
    assert repr(d) == repr(t)
    assert list(d.parameters()) == [] and list(t.parameters()) == []
    x = np.abs(_x(shape, 1)) + 0.1 if spec.startswith("LP") else _x(shape, 1)
    check_op(d, t, [x], **F32)


def test_max_pool_unpool_modules_and_errors():
    x = _x((2, 3, 6, 6), 1)
    dpool, tpool = dnn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)
    dunpool, tunpool = dnn.MaxUnpool2d(2), torch.nn.MaxUnpool2d(2)
    assert repr(dunpool) == repr(tunpool)
    check_op(lambda x: dunpool(*dpool(x)), lambda x: tunpool(*tpool(x)), [x], **F32)
    with pytest.raises(RuntimeError, match=r"MaxPool2d\(kernel_size=5.*\(input of shape \(1, 1, 3, 3\)\).*too small"):
        dnn.MaxPool2d(5, padding=0)(dg.randn(1, 1, 3, 3))
    with pytest.raises(RuntimeError, match="at most half"):
        P.max_pool2d(dg.randn(1, 1, 8, 8), 2, padding=2)
    with pytest.raises(RuntimeError, match=r"AvgPool2d.*expected 3D \(unbatched\) or 4D"):
        dnn.AvgPool2d(2)(dg.randn(8, 8))


def test_lenet_pipeline_against_torch():
    """Conv -> ReLU -> MaxPool -> Conv -> ReLU -> AvgPool -> flatten, the notes' LeNet-like stack."""
    from deepgrad.ops import conv as C
    x, w1, w2 = _x((3, 1, 14, 14), 1), _x((4, 1, 5, 5), 2) * 0.3, _x((5, 4, 3, 3), 3) * 0.3

    def net(lib, x, w1, w2):
        F = P if lib == "dg" else TF
        conv = C.conv2d if lib == "dg" else TF.conv2d
        y = F.max_pool2d((conv(x, w1) * 1).clamp(min=0), 2)
        y = F.adaptive_avg_pool2d((conv(y, w2, padding=1)).clamp(min=0), 2)
        return y.reshape(3, -1)

    check_op(lambda *a: net("dg", *a), lambda *a: net("torch", *a), [x, w1, w2], **F32)
