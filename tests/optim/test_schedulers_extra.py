"""CyclicLR and CosineAnnealingWarmRestarts against PyTorch 2.13: lr (and momentum / beta1)
sequences over several cycles, fractional and jumping ``step(epoch)``, composition inside
SequentialLR / ChainedScheduler, state_dict round trips, argument errors."""
import copy
import math

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.optim as optim

STEPS = 70


def _optimizer(lib, kind="SGD"):
    if lib is torch.optim:
        ps = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    else:
        ps = [dg.zeros(3, requires_grad=True), dg.zeros(2, requires_grad=True)]
    groups = [{"params": [ps[0]], "lr": 0.1}, {"params": [ps[1]], "lr": 0.02}]
    if kind == "SGD":
        return lib.SGD(groups, lr=0.1, momentum=0.9)
    if kind == "SGD-nomom":
        return lib.SGD(groups, lr=0.1)
    return getattr(lib, kind)(groups)


class Halve:
    """A callable scale policy whose ``__dict__`` goes into CyclicLR's state_dict."""

    def __init__(self, base):
        self.base = base

    def __call__(self, x):
        return self.base ** x


def _exp_scale(x):
    return 0.97 ** x


def _record(opt, sched):
    return (list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups],
            [g.get("momentum") for g in opt.param_groups],
            [tuple(g["betas"]) if "betas" in g else None for g in opt.param_groups])


def _same(x, y):
    """``None`` and other non-numbers exactly, numbers to 1e-12 relative, sequences elementwise."""
    if isinstance(y, (list, tuple)):
        return (isinstance(x, (list, tuple)) and len(x) == len(y)
                and all(_same(a, b) for a, b in zip(x, y)))
    if isinstance(y, (int, float)) and not isinstance(y, bool):
        return (isinstance(x, (int, float)) and not isinstance(x, bool)
                and math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15))
    return x is y if y is None else x == y


def _assert_seq_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert _same(a, b), f"step {i}: {a} != {b}"


SCHEDULERS = {
    "Cyclic-triangular": ("SGD", lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1,
                                                         step_size_up=5)),
    "Cyclic-asym-lists": ("SGD", lambda m, o: m.CyclicLR(o, base_lr=[0.01, 0.001],
                                                         max_lr=[0.2, 0.05], step_size_up=3,
                                                         step_size_down=7,
                                                         base_momentum=[0.8, 0.7],
                                                         max_momentum=[0.95, 0.9])),
    "Cyclic-triangular2": ("SGD", lambda m, o: m.CyclicLR(o, 0.001, 0.1, step_size_up=4,
                                                          mode="triangular2")),
    "Cyclic-exp_range": ("SGD", lambda m, o: m.CyclicLR(o, 0.001, 0.1, step_size_up=6,
                                                        step_size_down=2, mode="exp_range",
                                                        gamma=0.98)),
    "Cyclic-scale_fn-cycle": ("SGD", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=4,
                                                             scale_fn=Halve(0.5))),
    "Cyclic-scale_fn-iter": ("SGD", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=4,
                                                            scale_fn=_exp_scale,
                                                            scale_mode="iterations")),
    "Cyclic-nomomentum": ("SGD-nomom", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3,
                                                               cycle_momentum=False)),
    "Cyclic-adam-beta1": ("Adam", lambda m, o: m.CyclicLR(o, 1e-4, 1e-2, step_size_up=5,
                                                          base_momentum=0.85,
                                                          max_momentum=0.95)),
    "CAWR-T5": ("SGD", lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5)),
    "CAWR-T3-mult2": ("SGD", lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                        eta_min=0.001)),
    "CAWR-T2-mult3": ("SGD", lambda m, o: m.CosineAnnealingWarmRestarts(o, 2, 3, 1e-4)),
    "Sequential-cyclic-cawr": ("SGD", lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=4),
            m.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=2)], milestones=[4])),
    "Chained-cawr-exp": ("SGD", lambda m, o: m.ChainedScheduler(
        [m.CosineAnnealingWarmRestarts(o, T_0=7), m.ExponentialLR(o, gamma=0.99)])),
}


def _sequence(lib, kind, make, steps=STEPS):
    opt = _optimizer(lib, kind)
    sched = make(lib.lr_scheduler, opt)
    seq = [_record(opt, sched)]
    for _ in range(steps):
        opt.step()
        sched.step()
        seq.append(_record(opt, sched))
    return seq


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_sequence_matches_torch(name):
    kind, make = SCHEDULERS[name]
    _assert_seq_equal(_sequence(optim, kind, make), _sequence(torch.optim, kind, make))


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_state_dict_round_trip(name):
    kind, make = SCHEDULERS[name]
    half = 23
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
    _assert_seq_equal(seq, _sequence(torch.optim, kind, make)[half:])


def test_cyclic_state_dict_keeps_callable_object_not_function():
    sched = optim.lr_scheduler.CyclicLR(_optimizer(optim), 0.01, 0.1, scale_fn=Halve(0.5))
    sd = sched.state_dict()
    assert sd["_scale_fn_custom"] == {"base": 0.5}
    fresh = optim.lr_scheduler.CyclicLR(_optimizer(optim), 0.01, 0.1, scale_fn=Halve(0.9))
    fresh.load_state_dict(sd)
    assert fresh._scale_fn_custom.base == 0.5
    plain = optim.lr_scheduler.CyclicLR(_optimizer(optim), 0.01, 0.1, scale_fn=_exp_scale)
    assert plain.state_dict()["_scale_fn_custom"] is None
    tsd = torch.optim.lr_scheduler.CyclicLR(_optimizer(torch.optim), 0.01, 0.1,
                                            scale_fn=Halve(0.5)).state_dict()
    assert tsd["_scale_fn_custom"] == sd["_scale_fn_custom"]


# ---- CosineAnnealingWarmRestarts.step(epoch) ----------------------------------------------------
def _epoch_sequence(lib, make, epochs):
    opt = _optimizer(lib)
    sched = make(lib.lr_scheduler, opt)
    seq = [_record(opt, sched)]
    for e in epochs:
        opt.step()
        sched.step(e) if e is not None else sched.step()
        seq.append(_record(opt, sched) + (sched.last_epoch, sched.T_cur, sched.T_i))
    return seq


ITERS = 7
FRACTIONAL = [e + i / ITERS for e in range(12) for i in range(ITERS)]
JUMPS = [None, None, 26, None, None, 3.5, None, 100, 0, None, 47.25, None, 9]
CAWR = {
    "T5": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5),
    "T3-mult2": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
    "T1-mult3": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=1, T_mult=3),
}


@pytest.mark.parametrize("epochs", [FRACTIONAL, JUMPS], ids=["fractional", "jumps"])
@pytest.mark.parametrize("name", list(CAWR))
def test_warm_restarts_explicit_epochs_match_torch(name, epochs):
    _assert_seq_equal(_epoch_sequence(optim, CAWR[name], epochs),
                      _epoch_sequence(torch.optim, CAWR[name], epochs))


# ---- errors -------------------------------------------------------------------------------------
def _error_type(lib, fn):
    try:
        fn(lib, _optimizer(lib))
    except Exception as e:         # noqa: BLE001 - the type is what is compared
        return type(e)
    return None


BAD = {
    "cyclic-bad-mode": lambda m, o: m.lr_scheduler.CyclicLR(o, 0.01, 0.1, mode="zigzag"),
    "cyclic-list-length": lambda m, o: m.lr_scheduler.CyclicLR(o, [0.01], 0.1),
    "cyclic-momentum-unsupported": lambda m, o: m.lr_scheduler.CyclicLR(
        m.Adagrad([{"params": o.param_groups[0]["params"]}]), 0.01, 0.1),
    "cawr-T0-zero": lambda m, o: m.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0),
    "cawr-T0-float": lambda m, o: m.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2.5),
    "cawr-Tmult-zero": lambda m, o: m.lr_scheduler.CosineAnnealingWarmRestarts(o, 3, T_mult=0),
    "cawr-eta-str": lambda m, o: m.lr_scheduler.CosineAnnealingWarmRestarts(o, 3, eta_min="0"),
    "cawr-negative-epoch": lambda m, o: m.lr_scheduler.CosineAnnealingWarmRestarts(o, 3).step(-1),
}


@pytest.mark.parametrize("name", list(BAD))
def test_errors_match_torch(name):
    theirs = _error_type(torch.optim, BAD[name])
    assert theirs is not None
    assert _error_type(optim, BAD[name]) is theirs
