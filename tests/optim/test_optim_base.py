"""The Optimizer base: param groups, zero_grad, closures, versions, argument validation."""
import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.optim as optim


def _p(*shape, value=1.0):
    return dg.tensor(np.full(shape, value, dtype=np.float32), requires_grad=True)


def _tp(*shape, value=1.0):
    return torch.full(shape, value, dtype=torch.float32, requires_grad=True)


# ---- argument validation: same exception type and message as PyTorch ------------------------
INVALID = [
    ("SGD", dict(lr=-1)), ("SGD", dict(lr=0.1, momentum=-0.5)),
    ("SGD", dict(lr=0.1, weight_decay=-1e-3)), ("SGD", dict(lr=0.1, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("Adam", dict(lr=-0.01)), ("Adam", dict(eps=-1.0)), ("Adam", dict(betas=(1.0, 0.999))),
    ("Adam", dict(betas=(0.9, -0.1))), ("Adam", dict(weight_decay=-1.0)),
    ("Adam", dict(betas=(0, 0.9))),
    ("AdamW", dict(lr=-2)), ("AdamW", dict(betas=(0.9, 1.5))),
    ("Adamax", dict(lr=-1)), ("Adamax", dict(eps=-1)), ("Adamax", dict(betas=(-0.1, 0.9))),
    ("Adamax", dict(weight_decay=-1)),
    ("NAdam", dict(lr=-1)), ("NAdam", dict(momentum_decay=-1.0)), ("NAdam", dict(betas=(0.9, 1.0))),
    ("Adagrad", dict(lr=-1)), ("Adagrad", dict(lr_decay=-1)), ("Adagrad", dict(weight_decay=-1)),
    ("Adagrad", dict(initial_accumulator_value=-1)), ("Adagrad", dict(eps=-1)),
    ("RMSprop", dict(lr=-1)), ("RMSprop", dict(eps=-1)), ("RMSprop", dict(momentum=-1)),
    ("RMSprop", dict(weight_decay=-1)), ("RMSprop", dict(alpha=-1)),
    ("Adadelta", dict(lr=-1)), ("Adadelta", dict(rho=1.5)), ("Adadelta", dict(eps=-1)),
    ("Adadelta", dict(weight_decay=-1)),
]


@pytest.mark.parametrize("name,kw", INVALID, ids=lambda v: str(v))
def test_invalid_arguments_match_torch(name, kw):
    with pytest.raises(Exception) as theirs:
        getattr(torch.optim, name)([_tp(2)], **kw)
    with pytest.raises(type(theirs.value)) as ours:
        getattr(optim, name)([_p(2)], **kw)
    assert str(ours.value) == str(theirs.value)


def test_invalid_learning_rate_message():
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.SGD([_p(2)], lr=-1)


def test_defaults_match_torch():
    for name in ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "Adagrad", "RMSprop", "Adadelta"):
        ours = getattr(optim, name)([_p(2)]).defaults
        theirs = getattr(torch.optim, name)([_tp(2)]).defaults
        assert ours == theirs, name


def test_bad_params():
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(_p(2), lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {_p(2)}}], lr=0.1)
    p = _p(2)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    nonleaf = p * 2
    if nonleaf.grad_fn is not None:
        with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
            optim.SGD([nonleaf], lr=0.1)


# ---- groups ---------------------------------------------------------------------------------
def test_param_groups_and_add_param_group():
    a, b, c = _p(2), _p(3), _p(4)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["params"] == [b] or opt.param_groups[1]["params"][0] is b
    assert opt.param_groups[1]["momentum"] == 0.9
    opt.add_param_group({"params": [c], "momentum": 0.0})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["lr"] == 0.1
    assert opt.param_groups[2]["momentum"] == 0.0
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([c])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1], [2]]


def test_named_params():
    a, b = _p(2), _p(3)
    opt = optim.Adam([("w", a), ("b", b)])
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.param_groups[0]["params"][0] is a


def test_lazy_state_and_none_grads_skipped():
    a, b = _p(2), _p(3)
    opt = optim.Adam([a, b], lr=0.1)
    assert len(opt.state) == 0
    a.grad = dg.tensor(np.ones(2, dtype=np.float32))
    opt.step()
    assert a in opt.state and b not in opt.state
    assert opt.state[a]["step"] == 1
    np.testing.assert_array_equal(b.array, np.ones(3, dtype=np.float32))
    assert set(opt.state_dict()["state"]) == {0}


def test_sgd_without_momentum_keeps_no_state():
    a = _p(2)
    a.grad = dg.tensor(np.ones(2, dtype=np.float32))
    opt = optim.SGD([a], lr=0.1)
    opt.step()
    assert opt.state_dict()["state"] == {}
    np.testing.assert_allclose(a.array, 0.9)


def test_update_is_in_place_and_bumps_version():
    a = _p(5)
    arr, v0 = a.array, a._version[0]
    a.grad = dg.tensor(np.ones(5, dtype=np.float32))
    g = a.grad.array.copy()
    opt = optim.Adam([a], lr=0.1, weight_decay=0.1, maximize=True)
    opt.step()
    assert a.array is arr
    assert a._version[0] == v0 + 1
    np.testing.assert_array_equal(a.grad.array, g)      # the gradient is left untouched
    assert a.grad_fn is None


def test_zero_grad():
    a, b = _p(2), _p(3)
    opt = optim.SGD([a, b], lr=0.1)
    a.grad = dg.tensor(np.ones(2, dtype=np.float32))
    garr = a.grad.array
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and a.grad.array is garr
    np.testing.assert_array_equal(a.grad.array, 0)
    assert b.grad is None
    opt.zero_grad()
    assert a.grad is None


def test_closure_runs_with_grad_enabled_and_returns_loss():
    a = _p(3, value=2.0)
    opt = optim.SGD([a], lr=0.1)
    seen = []

    def closure():
        seen.append(dg.is_grad_enabled())
        opt.zero_grad()
        a.grad = dg.tensor(np.full(3, 4.0, dtype=np.float32))
        return 12.0

    with dg.no_grad():
        loss = opt.step(closure)
    assert loss == 12.0 and seen == [True]
    np.testing.assert_allclose(a.array, 2.0 - 0.4)
    assert opt.step() is None


def test_closure_with_autograd_matches_torch():
    """If autograd ops exist, a closure computing a real loss drives the same trajectory."""
    x = np.linspace(-1, 1, 12).astype(np.float32).reshape(4, 3)
    a = dg.tensor(np.full(3, 0.5, dtype=np.float32), requires_grad=True)
    ta = torch.full((3,), 0.5, requires_grad=True)
    opt, topt = optim.SGD([a], lr=0.1, momentum=0.9), torch.optim.SGD([ta], lr=0.1, momentum=0.9)
    xd, xt = dg.tensor(x), torch.from_numpy(x)
    for _ in range(10):
        def closure():
            opt.zero_grad()
            loss = ((xd * a).sum() - 1.0) ** 2
            loss.backward()
            return loss

        def tclosure():
            topt.zero_grad()
            loss = ((xt * ta).sum() - 1.0) ** 2
            loss.backward()
            return loss
        l1, l2 = opt.step(closure), topt.step(tclosure)
        np.testing.assert_allclose(float(l1.item()), float(l2.item()), rtol=1e-5)
    np.testing.assert_allclose(a.array, ta.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_lr_change_between_steps_takes_effect():
    a = _p(2)
    opt = optim.SGD([a], lr=0.1)
    a.grad = dg.tensor(np.ones(2, dtype=np.float32))
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(a.array, 1 - 0.1 - 0.5, rtol=1e-6)


def test_load_state_dict_errors_and_options():
    a, b = _p(2), _p(3)
    opt = optim.Adam([a, b], lr=0.1)
    other = optim.Adam([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(optim.Adam([a]).state_dict())
    src = optim.Adam([_p(2), _p(3)], lr=0.003, betas=(0.5, 0.6))
    opt.load_state_dict(src.state_dict())
    assert opt.param_groups[0]["lr"] == 0.003 and opt.param_groups[0]["betas"] == (0.5, 0.6)
    assert opt.param_groups[0]["params"][0] is a


def test_adamw_loads_as_decoupled():
    a = _p(2)
    src = optim.Adam([_p(2)], weight_decay=0.1)
    opt = optim.AdamW([a])
    opt.load_state_dict(src.state_dict())
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_repr():
    r = repr(optim.SGD([_p(2)], lr=0.1))
    assert r.startswith("SGD (") and "lr: 0.1" in r and "Parameter Group 0" in r


def test_step_speed_reasonable():
    """The per-step overhead stays small: 50 steps of Adam over 50 tensors well under a second."""
    import time
    ps = [_p(32, 32) for _ in range(50)]
    for p in ps:
        p.grad = dg.tensor(np.ones((32, 32), dtype=np.float32))
    opt = optim.Adam(ps, lr=1e-3, weight_decay=1e-2)
    opt.step()
    t0 = time.perf_counter()
    for _ in range(50):
        opt.step()
    assert time.perf_counter() - t0 < 5.0
