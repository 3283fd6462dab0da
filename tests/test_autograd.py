"""The autograd engine: graph walks, accumulation, hooks, grad(), double backward, errors."""
import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.autograd.functional import hvp


def test_shared_subexpression_and_reuse():
    x = dg.tensor([1.5, -2.0], requires_grad=True)
    y = x * x
    z = y * x + y + x          # x used three times, y twice
    z.backward(dg.ones(2))
    tx = torch.tensor([1.5, -2.0], requires_grad=True)
    ty = tx * tx
    (ty * tx + ty + tx).backward(torch.ones(2))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_accumulates_across_calls_and_zero():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        (x * 2.0).backward(dg.ones(2))
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.grad.zero_()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0])


def test_same_leaf_two_inputs_do_not_alias_grads():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = dg.tensor([3.0, 4.0], requires_grad=True)
    (x + y).backward(dg.ones(2))
    x.grad.mul_(10.0)
    np.testing.assert_allclose(y.grad.numpy(), [1.0, 1.0])


def test_second_backward_through_freed_graph_is_a_clear_error():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).exp()
    y.backward(dg.ones(2))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(dg.ones(2))


def test_retain_graph_allows_second_backward():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).exp()
    y.backward(dg.ones(2), retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.backward(dg.ones(2))
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1)


def test_backward_on_non_scalar_needs_gradient():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2.0).backward()


def test_backward_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        dg.tensor([1.0]).backward()


def test_hooks_on_leaf_and_intermediate():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    y = x * 3.0
    y.register_hook(lambda g: g * 2.0)     # replaces y's gradient
    y.backward(dg.ones(2))
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    np.testing.assert_allclose(seen[0], [6.0, 6.0])


def test_retain_grad_on_intermediate():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    (y * y).backward(dg.ones(2))
    np.testing.assert_allclose(y.grad.numpy(), [6.0, 12.0])


def test_grad_returns_without_touching_dot_grad():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    w = dg.tensor([3.0, 4.0], requires_grad=True)
    y = x * w
    gx, = dg.autograd.grad(y, [x], grad_outputs=dg.ones(2))
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    assert x.grad is None and w.grad is None


def test_grad_allow_unused():
    x = dg.tensor([1.0], requires_grad=True)
    u = dg.tensor([1.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match="allow_unused"):
        dg.autograd.grad(y, [x, u], grad_outputs=dg.ones(1), retain_graph=True)
    gx, gu = dg.autograd.grad(y, [x, u], grad_outputs=dg.ones(1), allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_grad_wrt_intermediate():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    y = h.exp()
    gh, = dg.autograd.grad(y, h, grad_outputs=dg.ones(2))
    np.testing.assert_allclose(gh.numpy(), np.exp([1.0, 4.0]))


def test_double_backward_matches_torch():
    xv = np.array([0.3, -1.2, 2.0])
    x = dg.tensor(xv, requires_grad=True)
    tx = torch.tensor(xv, requires_grad=True)
    f = lambda a, lib: (lib.tanh(a) * a.exp() + a ** 3) / (1.0 + a * a)
    g, = dg.autograd.grad(f(x, dg), x, grad_outputs=dg.ones(3), create_graph=True)
    tg, = torch.autograd.grad(f(tx, torch), tx, grad_outputs=torch.ones(3), create_graph=True)
    gg, = dg.autograd.grad(g, x, grad_outputs=dg.ones(3))
    tgg, = torch.autograd.grad(tg, tx, grad_outputs=torch.ones(3))
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-10)


def test_hvp_is_exact():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    A = dg.tensor(a)

    def f(x):  # 0.5 x^T A x + sum(x^4): Hessian A + diag(12 x^2)
        return (x * (A * x).sum(1)).sum() * 0.5 + (x ** 4).sum()

    x = dg.tensor([0.5, -1.0])
    v = dg.tensor([1.0, 2.0])
    _, hv = hvp(f, x, v)
    H = a + np.diag(12 * x.numpy() ** 2)
    np.testing.assert_allclose(hv.numpy(), H @ v.numpy(), rtol=1e-12)


def test_inplace_modification_of_saved_tensor_is_detected():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    z = y * y          # saves y
    y.mul_(3.0)        # modifies it in place
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward(dg.ones(2))


def test_inplace_on_output_saved_by_exp_is_detected():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()        # saves its output
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward(dg.ones(2))


def test_tracked_inplace_ops_give_torch_gradients():
    xv = np.array([1.0, -2.0, 3.0])
    x = dg.tensor(xv, requires_grad=True)
    y = x * 2.0
    y.add_(x * x)
    y.mul_(3.0)
    y.backward(dg.ones(3))
    tx = torch.tensor(xv, requires_grad=True)
    ty = tx * 2.0
    ty.add_(tx * tx)
    ty.mul_(3.0)
    ty.backward(torch.ones(3))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_inplace_on_leaf_requiring_grad_is_refused():
    x = dg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1.0)
    with dg.no_grad():
        x.add_(1.0)   # allowed under no_grad, as in PyTorch
    assert x.item() == 2.0


def test_no_grad_context_and_decorator():
    x = dg.tensor([1.0], requires_grad=True)
    with dg.no_grad():
        assert not (x * 2).requires_grad
        with dg.enable_grad():
            assert (x * 2).requires_grad

    @dg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert (x * 2).requires_grad
    with dg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert dg.is_grad_enabled()
    dg.set_grad_enabled(False)
    assert not dg.is_grad_enabled()
    dg.set_grad_enabled(True)

    @dg.set_grad_enabled(False)
    def g(t):
        return t * 2

    assert dg.is_grad_enabled() and not g(x).requires_grad


def test_anomaly_mode_names_the_op():
    x = dg.tensor([-1.0, 1.0], requires_grad=True)
    with dg.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="Log forward produced NaN"):
            dg.log(x)
        y = dg.sqrt(x * x - 1.0)    # sqrt(0): forward finite, backward divides by zero
        with pytest.raises(RuntimeError, match="Sqrt backward produced Inf"):
            y.backward(dg.ones(2))
    assert not dg.autograd.is_anomaly_enabled()


def test_deep_graph_has_no_recursion_limit():
    x = dg.tensor([1.0], dtype=dg.float64, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0001
    y.backward(dg.ones(1))
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 20000], rtol=1e-9)


def test_gradcheck_catches_a_wrong_gradient():
    class Bad(dg.autograd.Function):
        def forward(self, x):
            return x * x

        def backward(self, g):
            return g * 3.0   # wrong on purpose

    x = dg.tensor([0.5, 1.5], dtype=dg.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="gradcheck failed"):
        dg.autograd.gradcheck(lambda t: Bad.apply(t), [x])
    assert dg.autograd.gradcheck(lambda t: t.exp() * t, [x])


def test_first_order_only_op_refuses_create_graph():
    class Square(dg.autograd.Function):
        array_backward = True

        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return 2 * self.x * g

    x = dg.tensor([2.0], requires_grad=True)
    y = Square.apply(x)
    with pytest.raises(RuntimeError, match="first-order"):
        dg.autograd.grad(y, x, grad_outputs=dg.ones(1), create_graph=True)


def test_create_graph_grad_is_writable():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    (x.sum() * 3.0).backward(create_graph=True)
    x.grad.detach().zero_()  # a broadcast view here would be read-only


def test_leaf_gradients_never_alias_other_memory():
    a = dg.tensor([1.0, 2.0], requires_grad=True)
    b = dg.tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(dg.ones(2))                  # one gradient buffer reaches two leaves
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    user = dg.ones(2)
    c = dg.tensor([1.0, 2.0], requires_grad=True)
    c.backward(user)                              # the caller's own gradient tensor
    (c + 0.0).backward(user)
    assert not np.shares_memory(c.grad.numpy(), user.numpy())
    kept = []
    d = dg.tensor([1.0, 2.0], requires_grad=True)
    d.register_hook(lambda g: kept.append(g))     # a hook keeps the gradient it saw
    (d * 2.0).backward(dg.ones(2))
    assert not np.shares_memory(kept[0].numpy(), d.grad.numpy())
    np.testing.assert_allclose(user.numpy(), [1.0, 1.0])
