"""Autograd around views and in-place writes: setitem gradients against PyTorch, the version
counter check, leaf checks, and the retain_graph second-backward error."""
import numpy as np
import pytest
import torch

import deepgrad as dg
from opcheck import check_op, rand, convert_index as conv


I = np.array
SET_CASES = [
    (1, (3,)), ((slice(None), 0), (4,)), ((slice(1, 3), slice(None)), (2, 3)), ((slice(1, 3), slice(None)), (3,)),
    ((slice(1, 3), slice(None)), (1, 3)), ((Ellipsis, 2), ()), ((0, slice(None, None, 2)), (2,)),
    (I([0, 2]), (2, 3)), (I([3, 0, 1]), (3,)), ((I([0, 1]), I([2, 2])), (2,)), ((slice(None), I([0, 2])), (4, 1)),
    (I([True, False, True, True]), (3, 3)), (I([[True, False, True]] * 4), (8,)), ((1, I([0, 2])), (2,)),
    ((None, 1), (1, 3)), ((slice(None), 1), (1, 1, 4)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("index,vshape", SET_CASES)
def test_setitem_gradients(index, vshape, dtype):
    di, ti = conv(index, dg), conv(index, torch)

    def make(idx):
        def f(x, v):
            y = x * 1.0
            y[idx] = v
            return y
        return f

    a, v = rand(4, 3, dtype=dtype), rand(*vshape, dtype=dtype, seed=1)
    check_op(make(di), make(ti), [a, v])
    fd, ft = make(di), make(ti)
    check_op(lambda x, w: fd(x, w) * x, lambda x, w: ft(x, w) * x, [a, v])   # double backward


def test_setitem_into_fresh_tensor_and_twice():
    def f(a, b):
        mod = torch if isinstance(a, torch.Tensor) else dg
        out = mod.zeros(3, 4, dtype=a.dtype)
        out[0] = a
        out[1:, 1:] = b * 2.0
        out[2, 0] = a[1]
        return out
    check_op(f, f, [rand(4), rand(2, 3, seed=1)])


def test_setitem_scalar_value_grad():
    def f(x):
        y = x * 2.0
        y[0, 1] = 0.0
        y[:, 2] = 7.0
        return y
    check_op(f, f, [rand(2, 3)])


def test_setitem_value_dtype_converted():
    x = dg.zeros(3, dtype=dg.float64)
    v = dg.ones(2, dtype=dg.float32, requires_grad=True)
    x[1:] = v
    assert x.dtype == np.float64 and x.grad_fn is not None
    x.backward(dg.tensor([1.0, 2.0, 3.0], dtype=dg.float64))
    assert v.grad.dtype == np.float32
    np.testing.assert_array_equal(v.grad.numpy(), [2.0, 3.0])


def test_setitem_repeated_index_value_grad_matches_torch():
    def f(x, v):
        y = x * 1.0
        y[(torch if isinstance(x, torch.Tensor) else dg).tensor([0, 0, 2])] = v
        return y
    a = rand(3, 2)
    v = np.stack([a[0] + 1, a[0] + 1, a[2] - 1])   # equal values at the repeated index: deterministic
    check_op(f, f, [a, v], gradcheck=False)


def test_setitem_bumps_version_and_saved_tensor_error():
    a = dg.randn(3, requires_grad=True)
    b = a * 2.0
    c = b * b                 # Mul saves b
    v0 = b._version[0]
    b[0] = 1.0
    assert b._version[0] == v0 + 1
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*version 1; expected version 0"):
        c.backward(dg.ones(3))
    # PyTorch agrees
    ta = torch.randn(3, requires_grad=True)
    tb = ta * 2.0
    tc = tb * tb
    tb[0] = 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tc.backward(torch.ones(3))


def test_inplace_on_view_detected_through_base():
    a = dg.randn(2, 3, requires_grad=True)
    b = a * 1.0
    c = b.exp() * b
    b[0][1] = 5.0             # a view of b written in place: shares b's version counter
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.backward(dg.ones(2, 3))


def test_output_kept_by_node_modified_in_place():
    a = dg.randn(3, requires_grad=True)
    y = a.exp()               # Exp uses its output in backward
    y[1] = 0.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward(dg.ones(3))


def test_setitem_on_leaf_requiring_grad():
    w = dg.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="setitem: a leaf Variable that requires grad"):
        w[0] = 1.0
    with dg.no_grad():
        w[0] = 1.0
    assert w[0].item() == 1.0 and w.is_leaf and w.requires_grad
    assert w._version[0] == 1


def test_setitem_with_tracked_value_makes_nonleaf():
    out = dg.zeros(2, 2)
    x = dg.randn(2, requires_grad=True)
    out[0] = x * 3.0
    assert out.requires_grad and not out.is_leaf
    out.backward(dg.ones(2, 2))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_no_grad_setitem_untracked():
    x = dg.randn(3, requires_grad=True)
    y = x * 2.0
    with dg.no_grad():
        y[0] = 5.0
    assert y.grad_fn is not None and y.grad_fn.name() == "MulBackward"


def test_retain_graph_second_backward_error():
    x = dg.randn(4, 3, requires_grad=True)
    y = (x[1:, ::2] * x[1:, ::2]).reshape(-1)
    loss_grad = dg.ones(*y.shape)
    y.backward(loss_grad)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(loss_grad)
    # with retain_graph it works and accumulates
    x.grad = None
    z = x.permute(1, 0)[0] * 2.0
    z.backward(dg.ones(4), retain_graph=True)
    z.backward(dg.ones(4))
    np.testing.assert_allclose(x.grad.numpy()[:, 0], [4.0] * 4)


def test_view_of_leaf_inplace_error_and_grad_through_views():
    x = dg.randn(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        x.view(6)[0] = 1.0
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        x.t()[1:][0, 0] = 1.0
    f = lambda t: t.t().reshape(-1)[::2].unsqueeze(0).expand(3, 3)
    check_op(f, f, [rand(2, 3)])
    check_op(lambda t: f(t) ** 2, lambda t: f(t) ** 2, [rand(2, 3)])
