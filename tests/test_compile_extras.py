"""deepgrad.compile: tensor hooks are never silently dropped (the step breaks the graph and runs
eagerly, so the hook runs on every call; fullgraph=True names it), dynamic=True and the CUDA-graph /
autotuning modes say once what they do here, and a returned ``loss.item()`` is replayed."""
import warnings

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F
from deepgrad.compiler import GraphBreak


def _setup(hook_on):
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    seen = []

    def step(x, y):
        opt.zero_grad()
        h = model[1](model[0](x))
        if hook_on == "intermediate":
            h.register_hook(lambda g: seen.append(float(g.abs().sum())))
        loss = F.mse_loss(model[2](h), y)
        loss.backward()
        opt.step()
        return loss
    if hook_on == "leaf":
        model[0].weight.register_hook(lambda g: seen.append(float(g.abs().sum())) or g * 2)
    return model, step, seen


def _square_loss_step(m, **sgd):
    """A training step of ``m`` on the mean squared output, SGD lr 0.1 (plus ``sgd`` options)."""
    opt = dg.optim.SGD(m.parameters(), lr=0.1, **sgd)

    def step(x):
        opt.zero_grad()
        loss = m(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss
    return step


def _batches(n):
    """``n`` (input, target) pairs of shapes (3, 4) and (3, 2), the same every call."""
    rs = np.random.RandomState(0)
    return [(dg.tensor(rs.randn(3, 4).astype(np.float32)), dg.tensor(rs.randn(3, 2).astype(np.float32)))
            for _ in range(n)]


@pytest.mark.parametrize("hook_on", ["intermediate", "leaf"])
def test_tensor_hooks_run_every_call(hook_on):
    xs = _batches(4)
    m1, s1, seen1 = _setup(hook_on)
    m2, s2, seen2 = _setup(hook_on)
    c = dg.compile(s2)
    l1 = [s1(x, y).item() for x, y in xs]
    l2 = [c(x, y).item() for x, y in xs]
    assert len(seen2) == len(seen1) == 4
    assert seen1 == seen2 and l1 == l2
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(b.array, a.array)
    reasons = list(c._compiled.eager_reasons.values())
    assert reasons and "hook" in reasons[0]


def test_tensor_hook_fullgraph_raises():
    _, step, _ = _setup("intermediate")
    c = dg.compile(step, fullgraph=True)
    with pytest.raises(GraphBreak, match="hook"):
        c(dg.randn(3, 4), dg.randn(3, 2))


def test_hook_on_input_of_compiled_forward_is_not_replayed_twice():
    dg.manual_seed(0)
    lin = nn.Linear(3, 2)
    calls = []
    lin.weight.register_hook(lambda g: calls.append(1) or g * 2)
    cm = dg.compile(lin)
    ref = nn.Linear(3, 2)
    ref.load_state_dict(lin.state_dict())
    ref.weight.register_hook(lambda g: g * 2)
    for _ in range(3):
        x = dg.randn(4, 3)
        lin.zero_grad()
        ref.zero_grad()
        cm(x).sum().backward()
        ref(x).sum().backward()
        np.testing.assert_allclose(lin.weight.grad.array, ref.weight.grad.array, rtol=1e-6)
    assert len(calls) == 3


def test_dynamic_true_warns_and_records_per_shape():
    with pytest.warns(UserWarning, match="dynamic=True"):
        f = dg.compile(lambda x: (x * 2).sum(), dynamic=True)
    for n in (2, 3, 2):
        assert f(dg.ones(n)).item() == 2 * n
    assert f._compiled.recordings == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dg.compile(lambda x: x, dynamic=False)
        dg.compile(lambda x: x)


@pytest.mark.parametrize("mode,warns", [("reduce-overhead", True), ("max-autotune", True),
                                        ("max-autotune-no-cudagraphs", True), ("default", False)])
def test_mode_is_said_and_replays_the_same(mode, warns):
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    ref = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    ref.load_state_dict(model.state_dict())

    mk = _square_loss_step
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        c = dg.compile(mk(model), mode=mode)
    assert any("CUDA graphs" in str(x.message) for x in w) == warns
    assert all(x.filename == __file__ for x in w)
    e = mk(ref)
    rs = np.random.RandomState(0)
    for _ in range(4):
        x = dg.tensor(rs.randn(5, 8).astype(np.float32))
        assert c(x).item() == e(x).item()
    for a, b in zip(ref.parameters(), model.parameters()):
        np.testing.assert_array_equal(b.array, a.array)
    assert c._compiled.recordings == 2 and not c._compiled.eager_reasons


def _item_setup(kind):
    dg.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    log = []

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        v = loss.item()
        if kind == "compared" and v > 1e6:     # a branch on it: guarded
            loss = loss * 0
        loss.backward()
        opt.step()
        if kind == "logged":                    # kept by Python code: runs eagerly
            log.append(v)
        if kind == "dict":
            return {"loss": v, "again": v, "t": loss.detach()}
        return v
    return model, step, log


@pytest.mark.parametrize("kind", ["plain", "dict", "compared", "logged"])
def test_returned_item_is_recomputed_by_the_replay(kind):
    xs = _batches(5)
    m1, s1, log1 = _item_setup(kind)
    m2, s2, log2 = _item_setup(kind)
    c = dg.compile(s2)
    r1 = [s1(x, y) for x, y in xs]
    r2 = [c(x, y) for x, y in xs]
    if kind == "dict":
        assert [r["loss"] for r in r1] == [r["loss"] for r in r2]
        assert all(r["loss"] == r["again"] and type(r["loss"]) is float for r in r2)
        for a, b in zip(r1, r2):
            np.testing.assert_array_equal(b["t"].array, a["t"].array)
    else:
        assert r1 == r2 and all(type(v) is float for v in r2)
    assert log1 == log2
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(b.array, a.array)
    cf = c._compiled
    if kind == "logged":
        assert cf.eager_reasons
    else:
        assert not cf.eager_reasons and cf.recordings == 2, cf.eager_reasons


def test_padding_zero_fill_is_elided_and_results_are_eager():
    # conv2d with padding: np.zeros then the interior assigned -> only the border is zeroed
    dg.manual_seed(0)
    m1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=2))
    m2 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=2))
    m2.load_state_dict(m1.state_dict())

    def mk(m):
        return _square_loss_step(m, momentum=0.9)
    e, c = mk(m1), dg.compile(mk(m2))
    rs = np.random.RandomState(0)
    for _ in range(4):
        x = dg.tensor(rs.randn(2, 3, 6, 6).astype(np.float32) + 1)   # nonzero border values matter
        assert c(x).item() == e(x).item()
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(b.array, a.array)
    prog = c._compiled.last_program
    if "np.zeros" in (prog.source or "") or prog.stats.get("pad_zeros"):
        assert prog.stats.get("pad_zeros", 0) >= 1


def test_pad_empty_zeroes_exactly_the_outside():
    from deepgrad.compiler._program import _pad_empty
    for shape, box in [((4, 3, 6, 6), (slice(None), slice(None), slice(1, 5), slice(1, 5))),
                       ((5, 7), (slice(2, None),)), ((3, 4), (slice(0, 3), slice(1, 2)))]:
        z = _pad_empty(shape, np.float32, box)
        z[box] = 7
        r = np.zeros(shape, np.float32)
        r[box] = 7
        np.testing.assert_array_equal(z, r)
