"""deepgrad.compile's memory plan (``compiler.config.memory_plan``, off by default): temporaries of
the replay live in buffers allocated once per program and shared by lifetime; results, gradients
and state are never such a buffer, so what a call returned is not overwritten by the next replay,
and training stays bit-identical to eager."""
import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F
from deepgrad.compiler import config

from test_compile import _train


@pytest.fixture
def plan(monkeypatch):
    monkeypatch.setattr(config, "memory_plan", True)


def _exact(m1, m2):
    sd1, sd2 = m1.state_dict(), m2.state_dict()
    for k in sd1:
        np.testing.assert_array_equal(sd2[k].array, sd1[k].array, err_msg=k)


@pytest.mark.parametrize("name", ["mlp", "lenet5", "char_lstm", "transformer"])
def test_pool_bit_identical_to_eager_and_used(name, plan):
    m1, l1, _ = _train(name, compiled=False, steps=4)
    m2, l2, step = _train(name, compiled=True, steps=4)
    assert l1 == l2
    _exact(m1, m2)
    st = step._compiled.last_program.stats
    assert st["pooled"] > 0 and st["pool_buffers"] <= st["pooled"]
    assert st["pool_bytes"] <= st["pooled_bytes"]


@pytest.mark.parametrize("on", [True, False])
def test_results_and_grads_of_a_call_survive_the_next_replay(on, monkeypatch):
    monkeypatch.setattr(config, "memory_plan", on)
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        h = model[1](model[0](x))
        out = model[4](model[3](model[2](h)))
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss, out * 2.0, h.sum(1)

    cstep = dg.compile(step, fullgraph=True)
    rs = np.random.RandomState(0)

    def batch():
        return dg.tensor(rs.randn(8, 12).astype(np.float32)), dg.tensor(rs.randint(0, 4, 8))
    for _ in range(3):                       # two recordings, then replays
        cstep(*batch())
    assert (cstep._compiled.last_program.stats.get("pooled", 0) > 0) == on
    kept = cstep(*batch())
    grads = [p.grad.array for p in model.parameters()]
    copies = [k.array.copy() for k in kept], [g.copy() for g in grads]
    for _ in range(2):
        cstep(*batch())
    for a, c in zip(kept, copies[0]):
        np.testing.assert_array_equal(a.array, c)
    for g, c in zip(grads, copies[1]):
        np.testing.assert_array_equal(g, c)


def test_view_of_a_temporary_keeps_its_buffer_alive(plan):
    # ``ascontiguousarray`` copies a Rec at capture but returns its argument at replay: the plan
    # must treat its result as the same memory as the argument
    def f(a, b):
        t = a.array @ b.array
        y = np.ascontiguousarray(t).reshape(-1)
        z = np.multiply(a.array, b.array)  # a fresh temporary of t's shape made while y lives
        return dg.Tensor._make((y * 1.0).sum() + z.sum())

    cf = dg.compile(f)
    rs = np.random.RandomState(1)
    for _ in range(4):
        a = dg.tensor(rs.randn(5, 5).astype(np.float32))
        b = dg.tensor(rs.randn(5, 5).astype(np.float32))
        assert cf(a, b).item() == f(a, b).item()


def test_pool_off_gives_the_same_program_results(monkeypatch):
    monkeypatch.setattr(config, "memory_plan", True)
    m1, l1, _ = _train("resnet20", compiled=True, steps=3, batch=2)
    monkeypatch.setattr(config, "memory_plan", False)
    m2, l2, step = _train("resnet20", compiled=True, steps=3, batch=2)
    assert step._compiled.last_program.stats.get("pooled") is None
    assert l1 == l2
    _exact(m1, m2)
