"""Property tests of the convolution and pooling fast paths (deepgrad.ops.conv / ops.pool ``_FAST``):
on random shapes, dtypes and memory layouts, including those a fast path must not take (dilation,
groups, strides, float64/float16, non-contiguous inputs, overlapping or padded pooling windows),
the result with the fast paths on equals the result with them off, and both match PyTorch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import deepgrad as dg
from deepgrad.ops import conv as C, pool as P

SETTINGS = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

TOL = {np.float64: 1e-10, np.float32: 2e-4, np.float16: 2e-2}


def _layout(a, kind):
    """``a`` (NCHW values) in the memory ``kind``: 'nchw', 'nhwc' (channels last behind an NCHW
    view, as conv outputs are) or 'sliced' (a non-contiguous view)."""
    if kind == "nhwc":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if kind == "sliced":
        big = np.zeros(a.shape[:3] + (2 * a.shape[3],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    return np.ascontiguousarray(a)


def _tensor(a, requires_grad=False):
    """A Tensor on ``a``'s own memory (``dg.tensor`` would copy it to C order, and the layout
    under test would be gone); asserts the layout arrived."""
    t = dg.from_numpy(a)
    assert t.numpy().strides == a.strides
    return t.requires_grad_(True) if requires_grad else t


def _both(module, run):
    """``run()`` with the module's fast paths on, then off (the flag restored either way)."""
    assert module._FAST is True
    fast = run()
    module._FAST = False
    try:
        plain = run()
    finally:
        module._FAST = True
    return fast, plain


def _close(a, b, dtype, scale=1.0):
    tol = TOL[dtype] * max(1.0, scale)
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=tol, atol=tol)


# ---- convolution -----------------------------------------------------------------------------

@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    cin = groups * draw(st.integers(1, 4))
    cout = groups * draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2])))
    dil = (draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2])))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, dil[0] * (kh - 1) + 1 - 2 * pad[0]), 11))
    w = draw(st.integers(max(1, dil[1] * (kw - 1) + 1 - 2 * pad[1]), 11))
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64, np.float16]))
    lay = draw(st.sampled_from(["nchw", "nhwc", "sliced"]))
    bias = draw(st.booleans())
    return (n, cin, h, w), (cout, cin // groups, kh, kw), stride, pad, dil, groups, dtype, lay, bias


def _conv_run(case, seed=0):
    xs, ws, stride, pad, dil, groups, dtype, lay, bias = case
    rng = np.random.default_rng(seed)
    x = _layout(rng.standard_normal(xs).astype(dtype), lay)
    w = (rng.standard_normal(ws) * 0.5).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None

    def run():
        dx, dw = _tensor(x, requires_grad=True), dg.tensor(w, requires_grad=True)
        db = dg.tensor(b, requires_grad=True) if bias else None
        y = C.conv2d(dx, dw, db, stride, pad, dil, groups)
        gy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
        # the upstream gradient in the layout a channels-last network hands back
        y.backward(_tensor(_layout(gy, "nhwc")))
        return [y.detach().numpy(), dx.grad.numpy(), dw.grad.numpy()] + ([db.grad.numpy()] if bias else [])
    return x, w, b, run


def _check_conv(case):
    xs, ws, stride, pad, dil, groups, dtype, lay, bias = case
    x, w, b, run = _conv_run(case)
    fast, plain = _both(C, run)
    scale = float(np.prod(ws[1:]))
    for a, p in zip(fast, plain):
        assert a.dtype == p.dtype == dtype and a.shape == p.shape
        _close(a, p, dtype, scale ** 0.5)
    if dtype == np.float16:
        return
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    ty = TF.conv2d(tx, tw, tb, stride, pad, dil, groups)
    gy = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(gy))
    want = [ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()] + ([tb.grad.numpy()] if bias else [])
    for a, t in zip(fast, want):
        _close(a, t, dtype, scale ** 0.5)


@SETTINGS
@given(case=conv_cases())
# LeNet-5 conv2 (6 -> 16 channels, 5x5): banded-weight col2im (offset-major with the band off)
@example(case=((4, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1), 1, np.float32, "nhwc", True))
# the band with a W stride and dilation, and one image wider than 3 kernels (offset-major)
@example(case=((3, 4, 9, 9), (5, 4, 3, 3), (2, 2), (0, 0), (1, 2), 1, np.float64, "sliced", True))
@example(case=((2, 4, 6, 17), (5, 4, 3, 3), (1, 1), (1, 1), (1, 1), 1, np.float32, "nhwc", False))
# ResNet's C == O 3x3: the flipped-kernel correlation
@example(case=((2, 8, 9, 9), (8, 8, 3, 3), (1, 1), (1, 1), (1, 1), 1, np.float32, "nhwc", False))
# strided along W: (kernel row, output column) blocks instead of offset-major columns
@example(case=((4, 6, 14, 14), (16, 6, 5, 5), (2, 2), (0, 0), (1, 1), 1, np.float32, "nhwc", True))
@example(case=((4, 6, 14, 14), (16, 6, 5, 5), (1, 2), (1, 1), (2, 1), 1, np.float64, "nhwc", False))
# the same shapes where neither may be taken: dilation along W, groups, stride 2, float64
@example(case=((4, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 2), 1, np.float32, "nhwc", True))
@example(case=((4, 6, 14, 14), (16, 3, 5, 5), (1, 1), (0, 0), (1, 1), 2, np.float32, "sliced", True))
@example(case=((2, 8, 9, 9), (8, 8, 3, 3), (2, 2), (1, 1), (1, 1), 1, np.float64, "nchw", False))
# 1x1 convolutions as plain GEMMs (no im2col), and the 1x1 shapes that must copy: stride 2,
# groups, channels-first columns (few channels), padding
@example(case=((2, 8, 5, 6), (12, 8, 1, 1), (1, 1), (0, 0), (1, 1), 1, np.float32, "nhwc", True))
@example(case=((2, 8, 5, 6), (12, 8, 1, 1), (1, 1), (1, 2), (1, 1), 1, np.float64, "sliced", False))
@example(case=((2, 8, 5, 6), (12, 8, 1, 1), (2, 2), (0, 0), (1, 1), 1, np.float32, "nhwc", True))
@example(case=((2, 8, 5, 6), (12, 4, 1, 1), (1, 1), (0, 0), (1, 1), 2, np.float32, "nhwc", True))
@example(case=((2, 2, 5, 9), (3, 2, 1, 1), (1, 1), (0, 0), (1, 1), 1, np.float16, "nchw", True))
def test_conv_fast_equals_plain(case):
    _check_conv(case)


def test_conv_fast_paths_are_taken_and_refused():
    """The decisions themselves: taken for LeNet-5 conv2 and ResNet-20's 3x3 layers, refused
    where the fast kernel cannot run (groups, W dilation, strides, channels-first columns)."""
    def geo(n, c, h, o, k, s=(1, 1), d=(1, 1), g=1, pad=0):
        hp = h + 2 * pad
        ho = (hp - d[0] * (k - 1) - 1) // s[0] + 1
        wo = (hp - d[1] * (k - 1) - 1) // s[1] + 1
        return C._Geom(n, hp, hp, c, o, (k, k), s, d, (ho, wo), g, 4)
    lenet2 = geo(128, 6, 14, 16, 5)
    assert C._offset_col2im(lenet2) and not C._flip_xgrad(lenet2, 14, 14)
    # the banded-weight col2im: LeNet-5 conv2 (Wp 14 <= 3 * 5), strided too; not ResNet's or the
    # MNIST CNN's 3x3 (Wp 34, 26), not groups, not channels-first columns (LeNet conv1)
    assert C._band_col2im(lenet2) and C._band_col2im(geo(128, 6, 14, 16, 5, s=(2, 2)))
    assert not C._band_col2im(geo(32, 16, 32, 16, 3, pad=1))
    assert not C._band_col2im(geo(64, 32, 26, 64, 3))
    assert not C._band_col2im(geo(128, 6, 14, 16, 5, g=2))
    assert not C._band_col2im(geo(128, 1, 28, 6, 5, pad=2))
    strided = geo(128, 6, 14, 16, 5, s=(2, 2))
    assert not C._offset_col2im(strided) and C._row_col2im(strided, strided.nb)
    assert not C._offset_col2im(geo(128, 6, 14, 16, 5, g=2))
    r1 = geo(32, 16, 32, 16, 3, pad=1)
    assert C._flip_xgrad(r1, 32, 32)
    assert not C._row_col2im(geo(128, 6, 14, 16, 5, d=(1, 2)), 4)
    assert not C._row_col2im(geo(128, 6, 14, 16, 5, g=2), 4)
    assert not C._flip_xgrad(geo(32, 16, 32, 16, 3, s=(2, 2), pad=1), 32, 32)
    assert not C._flip_xgrad(geo(128, 1, 28, 6, 5, pad=2), 28, 28)      # LeNet conv1: channels-first
    assert geo(8, 64, 8, 256, 1).pointwise                               # a ResNet-50 1x1
    assert not geo(8, 64, 8, 256, 1, s=(2, 2)).pointwise
    assert not geo(8, 64, 8, 256, 1, g=2).pointwise
    assert not geo(8, 2, 8, 256, 1).pointwise                            # channels-first columns
    assert not geo(8, 64, 8, 256, 3, pad=1).pointwise


# ---- max pooling -----------------------------------------------------------------------------

@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.sampled_from([None, None, 1, 2, (2, 1)]))
    pad = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    dil = draw(st.sampled_from([1, 1, 1, 2]))
    ceil = draw(st.booleans())
    h = draw(st.integers(dil * (kh - 1) + 1, 12))
    w = draw(st.integers(dil * (kw - 1) + 1, 12))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 5)), h, w)
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64, np.float16]))
    lay = draw(st.sampled_from(["nchw", "nhwc", "sliced"]))
    glay = draw(st.sampled_from(["nchw", "nhwc"]))
    ties = draw(st.booleans())
    return shape, (kh, kw), stride, pad, dil, ceil, dtype, lay, glay, ties


def _check_pool(case):
    shape, k, stride, pad, dil, ceil, dtype, lay, glay, ties = case
    rng = np.random.default_rng(3)
    a = rng.standard_normal(shape)
    if ties:        # ReLU-like zeros and repeated values: the winner is the first maximum
        a = np.maximum(np.round(a * 2), 0)
    x = _layout(a.astype(dtype), lay)

    def run():
        t = _tensor(x, requires_grad=True)
        y, idx = P.max_pool2d(t, k, stride, pad, dil, ceil, return_indices=True)
        g = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
        y.backward(_tensor(_layout(g, glay)))
        return y.detach().numpy(), idx.numpy(), t.grad.numpy(), g
    fast, plain = _both(P, run)
    for a_, p_ in zip(fast, plain):
        assert a_.dtype == p_.dtype and a_.shape == p_.shape
        np.testing.assert_array_equal(a_, p_)
    if dtype == np.float16:
        return
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = TF.max_pool2d(tx, k, stride, pad, dil, ceil, return_indices=True)
    ty.backward(torch.tensor(fast[3]))
    np.testing.assert_array_equal(fast[0], ty.detach().numpy())
    np.testing.assert_array_equal(fast[1], tidx.numpy())
    np.testing.assert_allclose(fast[2], tx.grad.numpy(), rtol=TOL[dtype], atol=TOL[dtype])


@SETTINGS
@given(case=pool_cases())
# kernel == stride tiling the input (LeNet-5, the MNIST CNN): no zero fill, channels-last input
# with an NCHW gradient (a flatten after pooling)
@example(case=((2, 6, 8, 8), (2, 2), None, (0, 0), 1, False, np.float32, "nhwc", "nchw", True))
# the same where the windows do not tile: odd size, padding, ceil_mode, overlap, dilation
@example(case=((2, 6, 9, 8), (2, 2), None, (0, 0), 1, False, np.float32, "nhwc", "nchw", True))
@example(case=((2, 6, 8, 8), (2, 2), None, (1, 1), 1, False, np.float64, "nchw", "nhwc", False))
@example(case=((2, 6, 9, 9), (2, 2), None, (0, 0), 1, True, np.float32, "sliced", "nchw", True))
@example(case=((2, 6, 8, 8), (3, 3), 1, (1, 1), 1, False, np.float32, "nhwc", "nchw", True))
@example(case=((2, 6, 8, 8), (2, 2), None, (0, 0), 2, False, np.float16, "nhwc", "nchw", True))
def test_max_pool_fast_equals_plain(case):
    _check_pool(case)


def test_max_pool_tiling_decision():
    assert P._tiles((2, 2), (2, 2), (1, 1), (4, 4), (1, 1, 8, 8))
    assert not P._tiles((2, 2), (2, 2), (1, 1), (4, 4), (1, 1, 9, 8))      # a row left over
    assert not P._tiles((2, 2), (1, 1), (1, 1), (7, 7), (1, 1, 8, 8))      # overlapping windows
    assert not P._tiles((2, 2), (2, 2), (2, 2), (3, 3), (1, 1, 8, 8))      # dilation
    assert not P._tiles((3, 3), (2, 2), (1, 1), (3, 3), (1, 1, 7, 7))      # kernel != stride


def test_max_pool_nan_same_both_ways():
    """NaNs take the same (plain) route either way: the fast path never answers differently."""
    a = np.random.default_rng(5).standard_normal((2, 3, 6, 6)).astype(np.float32)
    a[0, 1, 2, 3] = a[1, 2, 0, 0] = np.nan
    x = _layout(a, "nhwc")

    def run():
        t = _tensor(x, requires_grad=True)
        y, idx = P.max_pool2d(t, 2, return_indices=True)
        y.backward(dg.ones_like(y))
        return y.detach().numpy(), idx.numpy(), t.grad.numpy()
    fast, plain = _both(P, run)
    for a_, p_ in zip(fast, plain):
        np.testing.assert_array_equal(a_, p_)
