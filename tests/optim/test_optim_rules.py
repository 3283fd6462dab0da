"""Every optimiser against PyTorch 2.13: 50 steps over the combinations of its options, from the
same float32 parameters with the same gradient sequence, must land on PyTorch's parameters."""
import copy
import itertools

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.optim as optim

SHAPES = [(16, 8), (16,), (4, 16), (4,)]
STEPS = 50
TOL = 1e-5


def _init(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) * 0.5 for s in SHAPES]


def _grads(steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(steps)]


INIT = _init()
GRADS = _grads()


def _dg_params(arrays):
    return [dg.tensor(a.copy(), requires_grad=True) for a in arrays]


def _torch_params(arrays):
    return [torch.tensor(a.copy(), requires_grad=True) for a in arrays]


def _groups(params, group_opts):
    if group_opts is None:
        return params
    return [dict(params=params[:2], **group_opts[0]), dict(params=params[2:], **group_opts[1])]


def run_torch(name, kwargs, steps=STEPS, group_opts=None):
    ps = _torch_params(INIT)
    opt = getattr(torch.optim, name)(_groups(ps, group_opts), **kwargs)
    for gs in GRADS[:steps]:
        for p, g in zip(ps, gs):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
    return [p.detach().numpy() for p in ps]


def _dg_steps(opt, ps, grads):
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = dg.tensor(g.copy())
        opt.step()


def run_dg(name, kwargs, steps=STEPS, group_opts=None):
    ps = _dg_params(INIT)
    opt = getattr(optim, name)(_groups(ps, group_opts), **kwargs)
    _dg_steps(opt, ps, GRADS[:steps])
    return [p.array for p in ps], opt


def _grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


def _sgd_cases():
    cases = []
    for c in _grid(weight_decay=[0, 0.01], maximize=[False, True],
                   mom=[(0, 0, False), (0.9, 0, False), (0.9, 0, True), (0.9, 0.3, False)]):
        m, d, n = c.pop("mom")
        cases.append(dict(lr=0.05, momentum=m, dampening=d, nesterov=n, **c))
    return cases


CASES = (
    [("SGD", c) for c in _sgd_cases()]
    + [("Adam", dict(lr=0.01, **c)) for c in _grid(amsgrad=[False, True], weight_decay=[0, 0.1],
                                                   maximize=[False, True])]
    + [("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, decoupled_weight_decay=True,
                     weight_decay=0.1))]
    + [("AdamW", dict(lr=0.01, **c)) for c in _grid(amsgrad=[False, True],
                                                    weight_decay=[0.01, 0.1],
                                                    maximize=[False, True])]
    + [("AdamW", {})]
    + [("Adagrad", dict(lr=0.1, **c)) for c in _grid(lr_decay=[0, 0.01], weight_decay=[0, 0.1],
                                                     initial_accumulator_value=[0, 0.1],
                                                     maximize=[False, True])]
    + [("RMSprop", dict(lr=0.01, **c)) for c in _grid(centered=[False, True],
                                                      momentum=[0, 0.9], weight_decay=[0, 0.1],
                                                      maximize=[False, True])]
    + [("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, centered=True))]
    + [("NAdam", dict(lr=0.01, **c)) for c in _grid(weight_decay=[0, 0.1],
                                                    decoupled_weight_decay=[False, True],
                                                    maximize=[False, True],
                                                    momentum_decay=[4e-3, 2e-2])]
    + [("Adadelta", dict(**c)) for c in _grid(weight_decay=[0, 0.1], maximize=[False, True],
                                              rho=[0.9, 0.5])]
    + [("Adadelta", dict(lr=0.5, eps=1e-4))]
    + [("Adamax", dict(lr=0.01, **c)) for c in _grid(weight_decay=[0, 0.1],
                                                     maximize=[False, True])]
    + [("Adamax", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-4))]
    + [(name, {}) for name in ("Adam", "Adamax", "NAdam", "Adagrad", "RMSprop", "Adadelta")]
)


def _id(case):
    name, kw = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in kw.items())


def _assert_close(ours, theirs):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_torch(case):
    name, kw = case
    ours, _ = run_dg(name, kw)
    _assert_close(ours, run_torch(name, kw))


@pytest.mark.parametrize("name,kw,groups", [
    ("SGD", dict(lr=0.05), [dict(momentum=0.9, nesterov=True), dict(lr=0.01, weight_decay=0.1)]),
    ("Adam", dict(lr=0.01), [dict(amsgrad=True), dict(lr=0.003, betas=(0.5, 0.9))]),
    ("RMSprop", dict(lr=0.01), [dict(centered=True), dict(momentum=0.5, maximize=True)]),
    ("Adagrad", dict(lr=0.1), [dict(lr_decay=0.1), dict(weight_decay=0.2)]),
])
def test_param_groups_match_torch(name, kw, groups):
    ours, opt = run_dg(name, kw, group_opts=groups)
    assert len(opt.param_groups) == 2
    _assert_close(ours, run_torch(name, kw, group_opts=groups))


STATEFUL = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
    ("Adadelta", dict(weight_decay=0.1)),
    ("Adamax", dict(lr=0.01)),
]


@pytest.mark.parametrize("case", STATEFUL, ids=_id)
def test_state_dict_round_trip_resumes(case):
    """Save mid-run, load into a fresh optimiser over copies of the parameters, continue: the
    trajectory is the uninterrupted one (and PyTorch's)."""
    name, kw = case
    half = 20
    ours, opt = run_dg(name, kw, steps=half)
    sd = copy.deepcopy(opt.state_dict())
    ps2 = _dg_params(ours)
    opt2 = getattr(optim, name)(ps2, **kw)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["params"] == [] or opt2.param_groups[0]["params"][0] is ps2[0]
    _dg_steps(opt2, ps2, GRADS[half:])
    _assert_close([p.array for p in ps2], run_torch(name, kw))
    # Loading copies: the original optimiser's state is not shared with the new one.
    k = next(iter(opt2.state[ps2[0]]))
    if isinstance(opt2.state[ps2[0]][k], dg.Tensor):
        assert opt2.state[ps2[0]][k].array is not opt.state[opt.param_groups[0]["params"][0]][k].array


@pytest.mark.parametrize("case", STATEFUL, ids=_id)
def test_state_dict_layout_matches_torch(case):
    name, kw = case
    _, opt = run_dg(name, kw, steps=3)
    ps = _torch_params(INIT)
    topt = getattr(torch.optim, name)(ps, **kw)
    for gs in GRADS[:3]:
        for p, g in zip(ps, gs):
            p.grad = torch.from_numpy(g.copy())
        topt.step()
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert set(ours["state"]) == set(theirs["state"]) == {0, 1, 2, 3}
    for i in ours["state"]:
        assert set(ours["state"][i]) == set(theirs["state"][i])
        for key, val in theirs["state"][i].items():
            mine = ours["state"][i][key]
            mine = mine.array if isinstance(mine, dg.Tensor) else mine
            np.testing.assert_allclose(np.asarray(mine, dtype=np.float64),
                                       val.detach().double().numpy(), rtol=1e-5, atol=1e-6)
    assert [g["params"] for g in ours["param_groups"]] == [[0, 1, 2, 3]]
    assert set(ours["param_groups"][0]) == set(theirs["param_groups"][0])
    for key, val in theirs["param_groups"][0].items():
        assert ours["param_groups"][0][key] == val, key


def test_load_torch_state_dict_converted():
    """A PyTorch checkpoint, tensors converted to deepgrad, resumes the PyTorch trajectory."""
    kw = dict(lr=0.01, amsgrad=True, weight_decay=0.1)
    ps = _torch_params(INIT)
    topt = torch.optim.Adam(ps, **kw)
    for gs in GRADS[:20]:
        for p, g in zip(ps, gs):
            p.grad = torch.from_numpy(g.copy())
        topt.step()
    sd = topt.state_dict()
    conv = {"param_groups": sd["param_groups"],
            "state": {i: {k: (v.item() if k == "step" else dg.tensor(v.numpy().copy()))
                          for k, v in s.items()} for i, s in sd["state"].items()}}
    dps = _dg_params([p.detach().numpy() for p in ps])
    opt = optim.Adam(dps, **kw)
    opt.load_state_dict(conv)
    _dg_steps(opt, dps, GRADS[20:])
    _assert_close([p.array for p in dps], run_torch("Adam", kw))


def test_float64_params():
    ps = [dg.tensor(a.astype(np.float64), requires_grad=True) for a in INIT]
    tps = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in INIT]
    opt, topt = optim.Adam(ps, lr=0.01), torch.optim.Adam(tps, lr=0.01)
    for gs in GRADS[:10]:
        for p, tp, g in zip(ps, tps, gs):
            p.grad = dg.tensor(g.astype(np.float64))
            tp.grad = torch.from_numpy(g.astype(np.float64))
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        assert p.array.dtype == np.float64
        np.testing.assert_allclose(p.array, tp.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", STATEFUL[:4], ids=_id)
def test_state_dict_survives_save_load(case, tmp_path):
    """Through deepgrad.io (no pickle): int keys, tuples (betas), None and floats survive."""
    io = pytest.importorskip("deepgrad.io")
    name, kw = case
    half = 20
    ours, opt = run_dg(name, kw, steps=half)
    io.save(opt.state_dict(), tmp_path / "opt.dg")
    sd = io.load(tmp_path / "opt.dg")
    ps2 = _dg_params(ours)
    opt2 = getattr(optim, name)(ps2, **kw)
    opt2.load_state_dict(sd)
    _dg_steps(opt2, ps2, GRADS[half:])
    _assert_close([p.array for p in ps2], run_torch(name, kw))
