"""deepgrad.utils.checkpoint: recompute in backward, same gradients as without it and as torch."""
import gc
import warnings
import weakref

import numpy as np
import pytest
import torch
import torch.utils.checkpoint as tcp

import deepgrad as dg
import deepgrad.utils.checkpoint as dcp

RNG = np.random.default_rng(0)
IN, HID, OUT = 5, 7, 3


def make_pair(p=0.0):
    tm = torch.nn.Sequential(torch.nn.Linear(IN, HID), torch.nn.Tanh(), torch.nn.Dropout(p),
                             torch.nn.Linear(HID, HID), torch.nn.ReLU(), torch.nn.Linear(HID, OUT)).double()
    dm = dg.nn.Sequential(dg.nn.Linear(IN, HID), dg.nn.Tanh(), dg.nn.Dropout(p),
                          dg.nn.Linear(HID, HID), dg.nn.ReLU(), dg.nn.Linear(HID, OUT)).double()
    with dg.no_grad():
        for (name, tp), (dname, dp) in zip(tm.named_parameters(), dm.named_parameters()):
            assert name == dname
            dp.copy_(dg.tensor(tp.detach().numpy().copy()))
    return dm, tm


def grads(m):
    return [p.grad.numpy().copy() for p in m.parameters()]


def zero(m):
    for p in m.parameters():
        p.grad = None


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_matches_plain_run_and_torch(use_reentrant):
    dm, tm = make_pair()
    x = RNG.standard_normal((4, IN))
    xd = dg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    calls = []

    def block(m, M):
        def f(h):
            calls.append(1)
            return m[3](m[2](m[1](m[0](h))))
        return f

    yd = dcp.checkpoint(block(dm, dg), xd, use_reentrant=use_reentrant)
    yt = tcp.checkpoint(block(tm, torch), xt, use_reentrant=use_reentrant)
    assert len(calls) == 2
    ld = dm[5](dm[4](yd)).pow(2).sum()
    lt = tm[5](tm[4](yt)).pow(2).sum()
    ld.backward()
    lt.backward()
    assert len(calls) == 4                                  # recomputed once in backward each
    np.testing.assert_allclose(ld.item(), lt.item(), rtol=1e-12)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-10)
    for gd, p in zip(grads(dm), tm.parameters()):
        np.testing.assert_allclose(gd, p.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_dropout_masks_replayed(use_reentrant):
    dm, _ = make_pair(p=0.5)
    x = dg.tensor(RNG.standard_normal((6, IN)), requires_grad=True)

    def run(ckpt):
        zero(dm)
        x.grad = None
        dg.manual_seed(123)
        h = dcp.checkpoint(dm[:4], x, use_reentrant=use_reentrant) if ckpt else dm[:4](x)
        dm[4:](h).pow(2).sum().backward()
        after = dg.rand(3).numpy().copy()                  # backward leaves the generator as it was
        return grads(dm), x.grad.numpy().copy(), after

    g0, x0, a0 = run(False)
    g1, x1, a1 = run(True)
    for a, b in zip(g0, g1):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(a0, a1)
    # Without preserving the state the recomputation draws other masks: gradients differ.
    zero(dm)
    dg.manual_seed(123)
    h = dcp.checkpoint(dm[:4], x, use_reentrant=use_reentrant, preserve_rng_state=False)
    x.grad = None
    dm[4:](h).pow(2).sum().backward()
    assert not np.array_equal(x.grad.numpy(), x0)


def test_activations_are_not_kept():
    dm, _ = make_pair()
    x = dg.tensor(RNG.standard_normal((4, IN)), requires_grad=True)
    refs = []

    def f(h):
        a = dm[1](dm[0](h))
        refs.append(weakref.ref(a.array))                  # saved by Tanh and by the Linear after
        return dm[3](a)
    y = dcp.checkpoint(f, x, use_reentrant=False)
    gc.collect()
    assert refs[0]() is None                               # the inner activation is gone
    z = f(x)                                               # without checkpoint it is kept
    assert refs[1]() is not None
    y.sum().backward()
    z.sum().backward()


def test_autograd_grad_and_double_backward():
    dm, tm = make_pair()
    x = RNG.standard_normal((3, IN))
    for M, m, cp in ((dg, dm, dcp), (torch, tm, tcp)):
        xx = M.tensor(x, requires_grad=True)
        y = cp.checkpoint(lambda h: m[1](m[0](h)), xx, use_reentrant=False).pow(3).sum()
        gx, gw = M.autograd.grad(y, (xx, m[0].weight), create_graph=True)
        hx, = M.autograd.grad((gx * gx).sum() + gw.sum(), xx)
        if M is dg:
            res_d = (gx.detach().numpy().copy(), gw.detach().numpy().copy(), hx.numpy().copy())
        else:
            res_t = (gx.detach().numpy(), gw.detach().numpy(), hx.numpy())
    for a, b in zip(res_d, res_t):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


X_CAPTURE = RNG.standard_normal((2, IN))
W_CAPTURE = RNG.standard_normal((IN, IN))


def test_captured_tensor_with_history_and_hooks():
    # The function closes over a non-leaf tensor that is also used outside: its graph must be
    # walked once, by the outer backward; a parameter's hook runs once.
    for M, cp in ((dg, dcp), (torch, tcp)):
        w = M.tensor(W_CAPTURE, requires_grad=True)
        x = M.tensor(X_CAPTURE, requires_grad=True)
        memory = (x * 2).tanh()
        calls = []
        w.register_hook(lambda g: calls.append(1))
        y = cp.checkpoint(lambda h: (h @ w + memory).sin(), x * 1, use_reentrant=False)
        loss = (y.sum() + memory.sum() * 0.5) ** 2
        loss.backward()
        assert len(calls) == 1
        if M is dg:
            rd = (x.grad.numpy().copy(), w.grad.numpy().copy())
        else:
            rt = (x.grad.numpy(), w.grad.numpy())
    for a, b in zip(rd, rt):
        np.testing.assert_allclose(a, b, rtol=1e-10)




def test_reentrant_rules_match_torch():
    dm, tm = make_pair()
    x = RNG.standard_normal((2, IN))
    for M, m, cp in ((dg, dm, dcp), (torch, tm, tcp)):
        xx = M.tensor(x)                                    # no input requires grad
        with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
            y = cp.checkpoint(m[0], xx, use_reentrant=True)
        assert not y.requires_grad
        y = cp.checkpoint(m[0], xx, use_reentrant=False)    # the parameters still get gradients
        assert y.requires_grad
        with pytest.warns(UserWarning, match="use_reentrant"):
            cp.checkpoint(m[0], M.tensor(x, requires_grad=True))
        with pytest.raises(ValueError, match="Unexpected keyword arguments"):
            cp.checkpoint(lambda h, k=1: h * k, xx, k=2, use_reentrant=True)
        out = cp.checkpoint(lambda h, k=1: h * k, M.tensor(x, requires_grad=True), k=2, use_reentrant=False)
        np.testing.assert_allclose(np.asarray(out.detach().numpy()), x * 2)


def test_multiple_outputs_and_non_tensor_outputs():
    x = RNG.standard_normal((3, 4))
    for M, cp in ((dg, dcp), (torch, tcp)):
        xx = M.tensor(x, requires_grad=True)
        a, b, n = cp.checkpoint(lambda h: (h.exp(), h.sin(), 7), xx, use_reentrant=False)
        assert n == 7
        (a.sum() * 2).backward()                         # b receives no gradient
        if M is dg:
            gd = xx.grad.numpy().copy()
        else:
            gt = xx.grad.numpy()
    np.testing.assert_allclose(gd, gt, rtol=1e-12)


@pytest.mark.parametrize("segments", [1, 2, 3])
def test_checkpoint_sequential(segments):
    dm, tm = make_pair()
    x = RNG.standard_normal((4, IN))
    xd = dg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    dcp.checkpoint_sequential(dm, segments, xd, use_reentrant=False).sum().backward()
    tcp.checkpoint_sequential(tm, segments, xt, use_reentrant=False).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-10)
    for gd, p in zip(grads(dm), tm.parameters()):
        np.testing.assert_allclose(gd, p.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_import_paths_and_no_grad_call():
    import deepgrad.utils
    from deepgrad.utils.checkpoint import checkpoint, checkpoint_sequential  # noqa: F401
    assert deepgrad.utils.checkpoint.checkpoint is dcp.checkpoint
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    with dg.no_grad():
        y = dcp.checkpoint(lambda h: h * 2, x, use_reentrant=False)
    assert not y.requires_grad


def test_custom_function_inside_checkpoint():
    x = RNG.standard_normal((3, 4))
    res = {}
    for M, cp in ((dg, dcp), (torch, tcp)):
        class Cube(M.autograd.Function):
            @staticmethod
            def forward(ctx, h):
                ctx.save_for_backward(h)
                return h ** 3

            @staticmethod
            def backward(ctx, g):
                h, = ctx.saved_tensors
                return 3 * g * h ** 2
        w = M.tensor(W_CAPTURE[:4, :4].copy(), requires_grad=True)
        xx = M.tensor(x, requires_grad=True)
        y = cp.checkpoint(lambda h: Cube.apply(h @ w).tanh(), xx, use_reentrant=False)
        y.sum().backward()
        res[M.__name__] = (xx.grad.numpy().copy(), w.grad.numpy().copy())
    for a, b in zip(res["deepgrad"], res["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_modified_input_and_second_backward_are_errors():
    for M, cp in ((dg, dcp), (torch, tcp)):
        x = M.tensor(X_CAPTURE, requires_grad=True)
        h = x * 1
        y = cp.checkpoint(lambda a: a.exp(), h, use_reentrant=False)
        with M.no_grad():
            h.add_(1)
        with pytest.raises(RuntimeError):
            y.sum().backward()
        y = cp.checkpoint(lambda a: a.exp(), x * 1, use_reentrant=False).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="(?i)second time|freed"):
            y.backward()


def test_nested_checkpoints():
    dm, tm = make_pair()
    x = RNG.standard_normal((4, IN))
    res = {}
    for M, m, cp in ((dg, dm, dcp), (torch, tm, tcp)):
        xx = M.tensor(x, requires_grad=True)

        def inner(h):
            return m[1](m[0](h))

        def outer(h):
            return m[4](m[3](cp.checkpoint(inner, h, use_reentrant=False)))
        m[5](cp.checkpoint(outer, xx, use_reentrant=False)).pow(2).sum().backward()
        res[M.__name__] = [xx.grad.numpy().copy()] + [p.grad.numpy().copy() for p in m.parameters()]
    for a, b in zip(res["deepgrad"], res["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_context_fn_and_helpers():
    import contextlib
    for M, cp in ((dg, dcp), (torch, tcp)):
        log = []

        @contextlib.contextmanager
        def mark(tag):
            log.append(tag)
            yield

        x = M.tensor(X_CAPTURE, requires_grad=True)
        y = cp.checkpoint(lambda h: h.sin(), x, use_reentrant=False,
                          context_fn=lambda: (mark("forward"), mark("recompute")))
        assert log == ["forward"]
        y.sum().backward()
        assert log == ["forward", "recompute"]
        with pytest.raises(ValueError, match="context_fn"):
            cp.checkpoint(lambda h: h.sin(), x, use_reentrant=True,
                          context_fn=lambda: (mark("a"), mark("b")))
        d = cp.detach_variable((x, 3))
        assert d[0].requires_grad and d[0].grad_fn is None and d[1] == 3
        assert issubclass(cp.CheckpointError, RuntimeError)
