"""deepgrad.compile: the replayed SGD step over flat parameter / momentum buffers
(compiler/_flatopt.py) gives eager's parameters bit for bit, for every SGD option, and the
parameters stay ordinary tensors (state_dict, p.data, load_state_dict, held gradients)."""
import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F
from deepgrad.compiler import _flatopt, config


def _net():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _run(compiled, opt_kw, steps=6, groups=False, between=None):
    dg.manual_seed(0)
    model = _net()
    if groups:
        params = [{"params": model[0].parameters(), "lr": 0.03},
                  {"params": model[2].parameters(), **opt_kw}]
    else:
        params = model.parameters()
    opt = dg.optim.SGD(params, **{"lr": 0.05, **opt_kw})

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    f = dg.compile(step, fullgraph=True) if compiled else step
    rs = np.random.RandomState(3)
    losses = []
    for k in range(steps):
        x = dg.tensor(rs.randn(5, 6).astype(np.float32))
        y = dg.tensor(rs.randint(0, 3, 5))
        losses.append(f(x, y).item())
        if between is not None:
            between(k, model, opt)
    return model, opt, losses, f


CASES = [dict(momentum=0.9), dict(momentum=0.0), dict(momentum=0.9, nesterov=True),
         dict(momentum=0.8, dampening=0.3), dict(momentum=0.9, weight_decay=1e-2),
         dict(momentum=0.9, weight_decay=1e-2, maximize=True), dict(momentum=0.0, maximize=True)]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("groups", [False, True])
def test_flat_sgd_matches_eager(kw, groups):
    m1, o1, l1, _ = _run(False, kw, groups=groups)
    m2, o2, l2, f = _run(True, kw, groups=groups)
    flat = _flatopt._FLAT.get(o2)
    assert flat is not None and flat.flat_steps >= 3, flat
    assert l1 == l2
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        np.testing.assert_array_equal(b.array, a.array, err_msg=k)
    # momentum buffers (in the optimizer's state_dict) too
    s1, s2 = o1.state_dict()["state"], o2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for k in s1:
        np.testing.assert_array_equal(s2[k]["momentum_buffer"].array, s1[k]["momentum_buffer"].array)


def test_flat_sgd_follows_rebinding_load_state_dict_and_lr_changes():
    def between(k, model, opt):
        if k == 2:          # p.data = new array: the layout is rebuilt from it
            model[0].weight.data = model[0].weight.array * 0.5
        if k == 3:
            opt.param_groups[0]["lr"] = 0.01
        if k == 4:          # new momentum-buffer Tensors
            opt.load_state_dict(opt.state_dict())
    m1, o1, l1, _ = _run(False, dict(momentum=0.9), steps=7, between=between)
    m2, o2, l2, f = _run(True, dict(momentum=0.9), steps=7, between=between)
    assert l1 == l2
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(b.array, a.array)
    assert _flatopt._FLAT[o2].rebuilds >= 2


def test_flat_parameters_are_views_and_gradients_are_the_engines():
    m2, o2, _, f = _run(True, dict(momentum=0.9), steps=4)
    flat = _flatopt._FLAT[o2]
    ps = list(m2.parameters())
    assert all(np.shares_memory(p.array, flat.P) for p in ps)
    held = [p.grad.array.copy() for p in ps]
    refs = [p.grad for p in ps]
    x = dg.tensor(np.random.RandomState(0).randn(5, 6).astype(np.float32))
    f(x, dg.tensor(np.array([0, 1, 2, 0, 1])))
    for r, h in zip(refs, held):          # the previous step's gradients are untouched
        np.testing.assert_array_equal(r.array, h)
    # an eager step on the view parameters agrees with the state dict
    sd = m2.state_dict()
    assert sd["0.weight"].shape == (8, 6)


def test_flat_optimizer_off(monkeypatch):
    monkeypatch.setattr(config, "flat_optimizer", False)
    m1, o1, l1, _ = _run(False, dict(momentum=0.9))
    m2, o2, l2, _ = _run(True, dict(momentum=0.9))
    assert o2 not in _flatopt._FLAT
    assert l1 == l2


def test_big_parameters_keep_the_real_step():
    # mean size above max_mean_size: the per-parameter step (memory-bound) stays
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 80), nn.Linear(80, 300))
    assert sum(p.numel() for p in model.parameters()) / 4 > _flatopt.max_mean_size
    opt = dg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    f = dg.compile(step)
    for _ in range(4):
        f(dg.randn(4, 512), dg.tensor(np.array([0, 1, 2, 0])))
    assert opt not in _flatopt._FLAT
    assert not any(np.shares_memory(p.array, q.array) for p in model.parameters() for q in model.parameters()
                   if p is not q)
