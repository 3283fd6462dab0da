"""In-place ReLU (``relu_``, ``F.relu(inplace=True)``, ``nn.ReLU(inplace=True)``) computed in the
tensor's own array: the same values, gradients, graph and errors as PyTorch's, on C-contiguous,
channels-last and sliced inputs, and as deepgrad's out-of-place relu."""
import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.nn import functional as F

LAYOUTS = ["contiguous", "channels_last", "slice"]


def _arrays(layout, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((4, 3, 5, 6)).astype(dtype)
    a[0, 0, 0, :3] = 0.0                      # exact zeros: gradient 0 there, as in PyTorch
    return a


def _apply(M, t, layout, how):
    """Build ``h`` from a tracked leaf ``t`` in the given layout, then relu it in place."""
    h = t * 2.0
    if layout == "channels_last":
        h = h.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    elif layout == "slice":
        h = h[:, 1:]
    if how == "method":
        r = h.relu_()
    elif how == "functional":
        r = (F if M is dg else torch.nn.functional).relu(h, inplace=True)
    else:
        r = (dg.nn if M is dg else torch.nn).ReLU(inplace=True)(h)
    assert r is h
    return h


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("how", ["method", "functional", "module"])
def test_relu_inplace_matches_torch(layout, dtype, how):
    a = _arrays(layout, dtype)
    w = np.random.default_rng(1).standard_normal(a.shape).astype(dtype)
    out = {}
    for M in (dg, torch):
        t = M.tensor(a, requires_grad=True)
        h = _apply(M, t, layout, how)
        ww = M.tensor(w[:, 1:] if layout == "slice" else w)
        (h * ww).sum().backward()
        out[M] = (h.detach().numpy(), t.grad.numpy(), h.grad_fn is not None)
    np.testing.assert_array_equal(out[dg][0], out[torch][0])
    np.testing.assert_allclose(out[dg][1], out[torch][1], rtol=1e-6)
    assert out[dg][0].dtype == out[torch][0].dtype and out[dg][2] and out[torch][2]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_relu_inplace_same_as_out_of_place(layout):
    a = _arrays(layout, np.float32, seed=3)
    res = []
    for inplace in (False, True):
        t = dg.tensor(a, requires_grad=True)
        h = t * 2.0
        if layout == "channels_last":
            h = h.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        elif layout == "slice":
            h = h[:, 1:]
        strides = h.array.strides
        r = F.relu(h, inplace=inplace)
        (r * r).sum().backward()
        res.append((r.detach().numpy().copy(), t.grad.numpy().copy()))
        if inplace:     # written into h's own memory: the layout is kept
            assert r is h and h.array.strides == strides
    np.testing.assert_array_equal(res[0][0], res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])


def test_relu_inplace_writes_into_the_base_of_a_view():
    for M in (dg, torch):
        base = M.tensor([[-1.0, 2.0], [3.0, -4.0]])
        base[:, 1].relu_()
        assert base.tolist() == [[-1.0, 2.0], [3.0, 0.0]]


def test_relu_inplace_without_grad_and_on_integers():
    for M in (dg, torch):
        x = M.tensor([-1.5, 0.0, 2.0])
        y = M.tensor([-3, 0, 4])
        with M.no_grad():
            x.relu_()
        y.relu_()
        assert x.tolist() == [0.0, 0.0, 2.0] and y.tolist() == [0, 0, 4]
        assert str(y.dtype).endswith("int64")


def test_relu_inplace_on_a_saved_output_is_an_error_at_backward():
    # sigmoid keeps its output for backward: modifying it in place must fail at backward
    for M in (dg, torch):
        t = M.tensor([-1.0, 0.5, 2.0], requires_grad=True)
        s = t.sigmoid()
        s.relu_()
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            s.sum().backward()


def test_relu_inplace_on_a_leaf_requiring_grad_is_an_error():
    for M in (dg, torch):
        t = M.tensor([-1.0, 0.5], requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            t.relu_()


def test_relu_inplace_second_order():
    a = np.array([-1.0, 0.3, 2.0])
    res = []
    for M in (dg, torch):
        t = M.tensor(a, requires_grad=True)
        h = t * t
        h.relu_()
        (g,) = M.autograd.grad((h * t).sum(), t, create_graph=True)
        (gg,) = M.autograd.grad(g.sum(), t)
        res.append((g.detach().numpy(), gg.numpy()))
    np.testing.assert_allclose(res[0][0], res[1][0])
    np.testing.assert_allclose(res[0][1], res[1][1])


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_relu_inplace_allocates_only_its_mask(layout):
    """The tracked float path keeps no copy of the old value and builds no result array: its only
    allocation is the boolean mask (1 byte per element; the general path took 9)."""
    import tracemalloc
    t = dg.tensor(np.random.default_rng(0).standard_normal((8, 16, 64, 64), dtype=np.float32),
                  requires_grad=True)
    h = t * 1.0
    if layout == "channels_last":
        h = h.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    n = h.numel()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        h.relu_()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * n, f"relu_ allocated {peak} bytes for {n} elements"
    assert h.grad_fn is not None
