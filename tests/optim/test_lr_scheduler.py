"""Every scheduler's learning-rate (and momentum) sequence against PyTorch 2.13, with two param
groups, plus state_dict round trips that resume the same sequence."""
import copy

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.optim as optim

STEPS = 30


def _optimizer(lib, kind="SGD"):
    if lib is torch.optim:
        ps = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    else:
        ps = [dg.tensor(np.zeros(3, dtype=np.float32), requires_grad=True),
              dg.tensor(np.zeros(2, dtype=np.float32), requires_grad=True)]
    groups = [{"params": [ps[0]], "lr": 0.1}, {"params": [ps[1]], "lr": 0.02}]
    if kind == "SGD":
        return lib.SGD(groups, lr=0.1, momentum=0.9)
    return getattr(lib, kind)(groups)


def _warm_cos(e):
    return min(1.0, (e + 1) / 5) * 0.97 ** e


class Scale:
    """A callable object (its ``__dict__`` goes into LambdaLR's state_dict)."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, e):
        return self.factor ** e


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 15], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "CosineAnnealingLR-T7": lambda m, o: m.CosineAnnealingLR(o, T_max=7),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=8),
    "LinearLR-down": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=12),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=4),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=20, power=2.0),
    "LambdaLR": lambda m, o: m.LambdaLR(o, _warm_cos),
    "LambdaLR-list": lambda m, o: m.LambdaLR(o, [_warm_cos, Scale(0.9)]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.95),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=STEPS),
    "OneCycleLR-linear": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.05], total_steps=STEPS,
                                                   anneal_strategy="linear", pct_start=0.4),
    "OneCycleLR-3phase": lambda m, o: m.OneCycleLR(o, max_lr=0.3, epochs=3, steps_per_epoch=10,
                                                   three_phase=True, div_factor=10.0,
                                                   base_momentum=0.8, max_momentum=0.9),
    "OneCycleLR-nomom": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS,
                                                  cycle_momentum=False),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5]),
    "SequentialLR-3": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=3), m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=3, gamma=0.5)], milestones=[4, 12]),
    "SequentialLR-lambda": lambda m, o: m.SequentialLR(
        o, [m.LambdaLR(o, lambda e: (e + 1) / 6), m.MultiStepLR(o, [4, 8])], milestones=[6]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ExponentialLR(o, gamma=0.95), m.StepLR(o, step_size=5, gamma=0.5)]),
}
ADAM_SCHEDULERS = {"OneCycleLR-adam": lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=STEPS)}


def _record(opt, sched):
    return (list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups],
            [g.get("momentum") for g in opt.param_groups],
            [tuple(g["betas"]) if "betas" in g else None for g in opt.param_groups])


def _sequence(lib, make, kind="SGD", steps=STEPS):
    opt = _optimizer(lib, kind)
    sched = make(lib.lr_scheduler, opt)
    seq = [_record(opt, sched)]
    for _ in range(steps):
        opt.step()
        sched.step()
        seq.append(_record(opt, sched))
    return seq


def _same(x, y):
    """Recursive comparison: sequences element by element (same length and kind), ``None`` and
    other non-numbers exactly, numbers to 1e-12 relative (pytest 9's ``approx`` rejects None)."""
    if isinstance(y, (list, tuple)):
        return (isinstance(x, (list, tuple)) and len(x) == len(y)
                and all(_same(a, b) for a, b in zip(x, y)))
    if isinstance(y, (int, float)) and not isinstance(y, bool):
        return (isinstance(x, (int, float)) and not isinstance(x, bool)
                and x == pytest.approx(y, rel=1e-12, abs=1e-15))
    return x is y if y is None else x == y


def _assert_seq_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert len(a) == len(b), f"step {i}: {a} != {b}"
        for x, y in zip(a, b):
            assert _same(x, y), f"step {i}: {a} != {b}"


def test_same_helper_can_fail():
    assert _same([0.1, None, (0.9, 0.999)], [0.1 + 1e-17, None, (0.9, 0.999)])
    assert not _same([None], [0.0])
    assert not _same([0.0], [None])
    assert not _same([0.1, None], [0.1000001, None])
    assert not _same([(0.9, 0.999)], [(0.9, 0.99)])
    assert not _same([0.1], [0.1, 0.2])


ALL = [(k, v, "SGD") for k, v in SCHEDULERS.items()] + \
      [(k, v, "Adam") for k, v in ADAM_SCHEDULERS.items()]


@pytest.mark.parametrize("name,make,kind", ALL, ids=[a[0] for a in ALL])
def test_sequence_matches_torch(name, make, kind):
    _assert_seq_equal(_sequence(optim, make, kind), _sequence(torch.optim, make, kind))


@pytest.mark.parametrize("name,make,kind", ALL, ids=[a[0] for a in ALL])
def test_state_dict_round_trip(name, make, kind):
    half = 12
    opt = _optimizer(optim, kind)
    sched = make(optim.lr_scheduler, opt)
    for _ in range(half):
        opt.step()
        sched.step()
    osd, ssd = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    assert "optimizer" not in ssd
    opt2 = _optimizer(optim, kind)
    sched2 = make(optim.lr_scheduler, opt2)
    sched2.load_state_dict(ssd)
    opt2.load_state_dict(osd)
    seq = [_record(opt2, sched2)]
    for _ in range(STEPS - half):
        opt2.step()
        sched2.step()
        seq.append(_record(opt2, sched2))
    _assert_seq_equal(seq, _sequence(torch.optim, make, kind)[half:])


def test_lambda_state_dict_keeps_callable_objects():
    opt = _optimizer(optim)
    sched = optim.lr_scheduler.LambdaLR(opt, [_warm_cos, Scale(0.9)])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"factor": 0.9}]
    sched2 = optim.lr_scheduler.LambdaLR(_optimizer(optim), [_warm_cos, Scale(0.5)])
    sched2.load_state_dict(sd)
    assert sched2.lr_lambdas[1].factor == 0.9


# ---- ReduceLROnPlateau ------------------------------------------------------------------------
METRICS = [1.0, 0.9, 0.95, 0.95, 0.96, 0.9, 0.89999, 0.97, 0.97, 0.97, 0.97, 0.8, 0.81, 0.82,
           0.83, 0.84, 0.85, 0.86, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6]

PLATEAU = {
    "min-rel": dict(patience=2),
    "min-abs": dict(patience=1, threshold=0.05, threshold_mode="abs", factor=0.5),
    "max-rel": dict(mode="max", patience=1, factor=0.3),
    "max-abs": dict(mode="max", patience=0, threshold=0.01, threshold_mode="abs"),
    "cooldown": dict(patience=1, cooldown=3, factor=0.5),
    "min_lr": dict(patience=0, factor=0.5, min_lr=[0.02, 0.005]),
    "min_lr-scalar": dict(patience=0, factor=0.2, min_lr=0.004, eps=1e-3),
}


def _plateau_sequence(lib, kw, metrics=METRICS, start=None):
    opt = _optimizer(lib)
    sched = lib.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    if start is not None:
        start(opt, sched)
    seq = []
    for m in metrics:
        opt.step()
        sched.step(m)
        seq.append((list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups],
                    sched.num_bad_epochs, sched.cooldown_counter, sched.last_epoch))
    return seq


@pytest.mark.parametrize("kw", PLATEAU.values(), ids=list(PLATEAU))
def test_plateau_matches_torch(kw):
    _assert_seq_equal(_plateau_sequence(optim, kw), _plateau_sequence(torch.optim, kw))


@pytest.mark.parametrize("kw", PLATEAU.values(), ids=list(PLATEAU))
def test_plateau_state_dict_round_trip(kw):
    opt = _optimizer(optim)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    for m in METRICS[:12]:
        opt.step()
        sched.step(m)
    osd, ssd = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())

    def restore(o, s):
        s.load_state_dict(ssd)
        o.load_state_dict(osd)
    ours = _plateau_sequence(optim, kw, METRICS[12:], start=restore)
    _assert_seq_equal(ours, _plateau_sequence(torch.optim, kw)[12:])


def test_plateau_accepts_tensor_metric():
    opt = _optimizer(optim)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(dg.tensor(1.0))
    sched.step(dg.tensor(2.0))
    assert sched.get_last_lr() == pytest.approx([0.01, 0.002])


# ---- validation -------------------------------------------------------------------------------
INVALID = [
    lambda m, o: m.LinearLR(o, start_factor=0),
    lambda m, o: m.LinearLR(o, end_factor=1.5),
    lambda m, o: m.ConstantLR(o, factor=2.0),
    lambda m, o: m.ReduceLROnPlateau(o, factor=1.0),
    lambda m, o: m.ReduceLROnPlateau(o, mode="avg"),
    lambda m, o: m.ReduceLROnPlateau(o, threshold_mode="pct"),
    lambda m, o: m.ReduceLROnPlateau(o, min_lr=[0.1]),
    lambda m, o: m.OneCycleLR(o, max_lr=0.1),
    lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=0),
    lambda m, o: m.OneCycleLR(o, max_lr=0.1, epochs=0, steps_per_epoch=2),
    lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5),
    lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="exp"),
    lambda m, o: m.OneCycleLR(o, max_lr=[0.1], total_steps=10),
    lambda m, o: m.LambdaLR(o, [lambda e: 1.0]),
    lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2)], milestones=[3]),
    lambda m, o: m.SequentialLR(o, [], milestones=[]),
]


@pytest.mark.parametrize("make", INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_invalid_arguments_match_torch(make):
    with pytest.raises(Exception) as theirs:
        make(torch.optim.lr_scheduler, _optimizer(torch.optim))
    with pytest.raises(type(theirs.value)) as ours:
        make(optim.lr_scheduler, _optimizer(optim))
    assert str(ours.value) == str(theirs.value)


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        optim.lr_scheduler.StepLR(object(), step_size=2)


def test_onecycle_too_many_steps():
    opt = _optimizer(optim)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()


def test_scheduler_drives_optimizer_updates():
    """The lr a scheduler writes is the one the next optimizer step uses."""
    p = dg.tensor(np.zeros(1, dtype=np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = dg.tensor(np.ones(1, dtype=np.float32))
        opt.step()
        sched.step()
    np.testing.assert_allclose(p.array, -(1.0 + 0.5 + 0.25))
