"""Property tests of the layout-keeping fast paths (issue 14): ReLU's first-order backward writes
its gradient in the activation's memory order, constant padding and a slice's backward allocate
in their input's/gradient's order. Values must equal PyTorch's (and the create_graph formula) on
random shapes and every mix of layouts, including the ones the fast path must not take
(non-float, broadcast, negative strides, 1-3-d)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepgrad as dg

SETTINGS = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _layout(a, kind):
    """``a``'s values in memory ``kind``: 'c', 'last' (the second axis innermost, as conv outputs
    are), 'sliced' (non-contiguous) or 'flipped' (a negative stride)."""
    if kind == "last" and a.ndim >= 3:
        perm = (0,) + tuple(range(2, a.ndim)) + (1,)
        inv = np.argsort(perm)
        return np.ascontiguousarray(a.transpose(perm)).transpose(inv)
    if kind == "sliced":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if kind == "flipped":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    return np.ascontiguousarray(a)


LAYOUTS = st.sampled_from(["c", "last", "sliced", "flipped"])


def _shape(draw, lo=1, hi=4):
    nd = draw(st.integers(lo, hi))
    return tuple(draw(st.integers(1, 5)) for _ in range(nd))


@settings(SETTINGS)
@given(st.data())
def test_relu_backward_any_layout(data):
    shape = _shape(data.draw, 1, 4)
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.float16]))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    xa = rng.standard_normal(shape).astype(dtype)
    xa[rng.random(shape) < 0.1] = 0                        # the gradient at exactly 0 is 0
    ga = rng.standard_normal(shape).astype(dtype)
    x = _layout(xa, data.draw(LAYOUTS))
    g = _layout(ga, data.draw(LAYOUTS))
    xd = dg.from_numpy(x).requires_grad_()
    y = dg.nn.functional.relu(xd)
    y.backward(dg.from_numpy(g))
    xt = torch.tensor(xa, requires_grad=True)
    torch.relu(xt).backward(torch.tensor(ga))
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())
    np.testing.assert_array_equal(y.detach().numpy(), torch.relu(torch.tensor(xa)).numpy())
    # the create_graph formula gives the same numbers
    xd2 = dg.from_numpy(x).requires_grad_()
    (gx,) = dg.autograd.grad(dg.nn.functional.relu(xd2), xd2, dg.from_numpy(g), create_graph=True)
    np.testing.assert_array_equal(gx.detach().numpy(), xt.grad.numpy())


def test_relu_backward_channels_last_gradient_layout():
    x = _layout(np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32), "last")
    xd = dg.from_numpy(x).requires_grad_()
    dg.nn.functional.relu(xd).backward(dg.ones(2, 3, 4, 5))        # an NCHW gradient
    assert xd.grad.numpy().transpose(0, 2, 3, 1).flags.c_contiguous


@settings(SETTINGS)
@given(st.data())
def test_constant_pad_keeps_layout(data):
    shape = _shape(data.draw, 1, 4)
    lay = data.draw(LAYOUTS)
    npad = data.draw(st.integers(1, len(shape)))
    pads = []
    for i in range(npad):
        n = shape[len(shape) - 1 - i]
        pads += [data.draw(st.integers(-(n // 2), 2)), data.draw(st.integers(-(n // 2), 2))]
    value = data.draw(st.sampled_from([0.0, 1.5]))
    a = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    x = _layout(a, lay)
    xd = dg.from_numpy(x).requires_grad_()
    y = dg.nn.functional.pad(xd, pads, value=value)
    xt = torch.tensor(a, requires_grad=True)
    yt = TF.pad(xt, pads, value=value)
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
    gy = np.random.default_rng(2).standard_normal(tuple(yt.shape)).astype(np.float32)
    y.backward(dg.from_numpy(_layout(gy, data.draw(LAYOUTS))))
    yt.backward(torch.tensor(gy))
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


def test_constant_pad_channels_last_stays_channels_last():
    x = _layout(np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(np.float32), "last")
    y = dg.nn.functional.pad(dg.from_numpy(x)[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2))
    assert tuple(y.shape) == (2, 8, 3, 3)
    assert y.detach().numpy().transpose(0, 2, 3, 1).flags.c_contiguous
    np.testing.assert_array_equal(
        y.numpy(), TF.pad(torch.tensor(np.ascontiguousarray(x))[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2)).numpy())


@settings(SETTINGS)
@given(st.data())
def test_slice_backward_any_layout(data):
    shape = _shape(data.draw, 1, 4)
    key = tuple(slice(data.draw(st.integers(0, n - 1)), None, data.draw(st.integers(1, 3))) for n in shape)
    a = np.random.default_rng(3).standard_normal(shape).astype(np.float64)
    xd = dg.from_numpy(_layout(a, data.draw(LAYOUTS))).requires_grad_()
    xt = torch.tensor(a, requires_grad=True)
    yt = xt[key]
    gy = np.random.default_rng(4).standard_normal(tuple(yt.shape))
    xd[key].backward(dg.from_numpy(_layout(gy, data.draw(LAYOUTS))))
    yt.backward(torch.tensor(gy))
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("key", [(0,), (slice(None), None), (Ellipsis, 1)])
def test_slice_backward_rank_changing_keys(key):
    a = np.random.default_rng(5).standard_normal((3, 4, 5)).astype(np.float32)
    xd = dg.from_numpy(_layout(a, "last")).requires_grad_()
    xt = torch.tensor(a, requires_grad=True)
    xd[key].sum().backward()
    xt[key].sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@settings(SETTINGS)
@given(st.data())
def test_batch_norm_second_order_channel_view_equals_general(data):
    """NormGrad's per-channel second derivative on batch norm's channel view (channels-last,
    (N, C, S) and refused layouts) equals the general formula (fast paths off) and PyTorch."""
    import deepgrad.ops.normalization as NZ
    n, c = data.draw(st.integers(2, 4)), data.draw(st.integers(1, 6))
    shape = (n, c) + tuple(data.draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
    lay = data.draw(st.sampled_from(["c", "last", "sliced"]))
    affine = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    xa = rng.standard_normal(shape) * 2 + 1
    wa, ba = rng.standard_normal(c), rng.standard_normal(c)
    u = rng.standard_normal(shape)
    v = rng.standard_normal(c)

    def run(fast):
        NZ._fast_bn[0] = fast
        try:
            x = dg.from_numpy(_layout(xa, lay)).requires_grad_()
            w = dg.tensor(wa, requires_grad=True) if affine else None
            b = dg.tensor(ba, requires_grad=True) if affine else None
            ps = [x] + ([w, b] if affine else [])
            y = dg.nn.functional.batch_norm(x, None, None, w, b, training=True)
            gs = dg.autograd.grad((y * y * y).sum(), ps, create_graph=True)
            dot = (gs[0] * dg.from_numpy(_layout(u, lay))).sum()
            if affine:
                dot = dot + (gs[1] * dg.tensor(v)).sum() + (gs[2] * dg.tensor(v[::-1].copy())).sum()
            return [h.detach().numpy() for h in dg.autograd.grad(dot, ps)]
        finally:
            NZ._fast_bn[0] = True

    fast, plain = run(True), run(False)
    xt = torch.tensor(xa, requires_grad=True)
    wt = torch.tensor(wa, requires_grad=True) if affine else None
    bt = torch.tensor(ba, requires_grad=True) if affine else None
    ps = [xt] + ([wt, bt] if affine else [])
    yt = TF.batch_norm(xt, None, None, wt, bt, training=True)
    gs = torch.autograd.grad((yt ** 3).sum(), ps, create_graph=True)
    dot = (gs[0] * torch.tensor(u)).sum()
    if affine:
        dot = dot + (gs[1] * torch.tensor(v)).sum() + (gs[2] * torch.tensor(v[::-1].copy())).sum()
    ref = [h.numpy() for h in torch.autograd.grad(dot, ps)]
    for a, b, r in zip(fast, plain, ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(a, r, rtol=1e-7, atol=1e-7)
