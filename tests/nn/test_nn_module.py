"""Module machinery: registration, iteration, modes, state dicts, hooks, containers, repr, utils."""
import copy
import math
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn
from nnutil import close, sync


class Net(nn.Module):
    def __init__(self, lib=nn):
        super().__init__()
        self.fc1 = lib.Linear(4, 8)
        self.bn = lib.BatchNorm1d(8)
        self.act = lib.ReLU()
        self.head = lib.Sequential(lib.Dropout(0.2), lib.Linear(8, 3))
        self.register_buffer("scale", (dg if lib is nn else torch).ones(3))
        self.register_buffer("tmp", (dg if lib is nn else torch).zeros(1), persistent=False)

    def forward(self, x):
        return self.head(self.act(self.bn(self.fc1(x)))) * self.scale


class TNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.bn = torch.nn.BatchNorm1d(8)
        self.act = torch.nn.ReLU()
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(8, 3))
        self.register_buffer("scale", torch.ones(3))
        self.register_buffer("tmp", torch.zeros(1), persistent=False)

    def forward(self, x):
        return self.head(self.act(self.bn(self.fc1(x)))) * self.scale


def test_registration_and_iteration_match_torch():
    m, tm = Net(), TNet()
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert list(m.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in m.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [n for n, _ in m.named_children()] == [n for n, _ in tm.named_children()]
    assert m.num_parameters() == sum(p.numel() for p in tm.parameters()) == 4 * 8 + 8 + 16 + 8 * 3 + 3
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert repr(m) == repr(tm).replace("TNet", "Net")
    # a shared module / parameter is listed once
    shared = nn.Linear(2, 2)
    s = nn.Sequential(shared, shared)
    assert len(list(s.parameters())) == 2 and len(list(s.modules())) == 2
    # reassigning and deleting
    m.fc1 = nn.Linear(4, 8, bias=False)
    assert "fc1.bias" not in m.state_dict()
    m.extra = nn.Parameter(dg.zeros(2))
    assert "extra" in dict(m.named_parameters())
    del m.extra
    assert "extra" not in dict(m.named_parameters())
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.fc1.weight = dg.zeros(8, 4)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("fc1", dg.zeros(1))


def test_parameter_repr_and_sharing():
    t = dg.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    p.array[0] = 5
    assert t.tolist()[0] == 5                       # shares memory like PyTorch
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.array is not p.array
    r = pickle.loads(pickle.dumps(p))
    assert isinstance(r, nn.Parameter) and r.tolist() == p.tolist()


def test_train_eval_zero_grad_requires_grad_apply_to():
    m = Net()
    assert m.training and m.head[0].training
    m.eval()
    assert not m.training and not m.head[0].training and not m.bn.training
    m.train()
    assert m.bn.training
    m(dg.randn(5, 4)).sum().backward()
    assert m.fc1.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert np.all(m.fc1.weight.grad.numpy() == 0)
    m.zero_grad()
    assert m.fc1.weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    assert m.num_parameters(trainable_only=True) == 0
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Net" and seen[0] == "Linear"
    w = m.fc1.weight
    m.double()
    assert m.fc1.weight is w and w.dtype == dg.float64 and m.bn.running_mean.dtype == dg.float64
    assert m.bn.num_batches_tracked.dtype == dg.int64
    m.to(dg.float32)
    assert w.dtype == dg.float32
    m.to("cpu")


def test_state_dict_round_trip_and_torch_load():
    m, tm = Net(), TNet()
    tm.train()
    tm(torch.randn(6, 4))                       # non-trivial running stats
    sync(m, tm)
    m.eval(), tm.eval()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    close(m(dg.tensor(x)), tm(torch.tensor(x)))
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict) and not sd["fc1.weight"].requires_grad
    assert sd["bn.num_batches_tracked"].item() == 1
    m2 = Net()
    res = m2.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    m2.eval()
    np.testing.assert_array_equal(m2(dg.tensor(x)).detach().numpy(), m(dg.tensor(x)).detach().numpy())
    # the copy is a copy: changing m2 leaves m alone, and parameters keep their identity
    w = m2.fc1.weight
    m2.load_state_dict({k: v.numpy() * 0 for k, v in sd.items()})
    assert m2.fc1.weight is w and np.all(w.detach().numpy() == 0) and np.any(m.fc1.weight.detach().numpy() != 0)


def test_load_state_dict_errors_name_keys():
    m = Net()
    sd = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    del sd["fc1.bias"]
    sd["extra.weight"] = np.zeros(3, np.float32)
    sd["head.1.weight"] = np.zeros((5, 8), np.float32)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "fc1.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for head.1.weight: copying a param with shape (5, 8) from checkpoint, the shape in " \
           "current model is (3, 8)" in msg
    sd["head.1.weight"] = np.zeros((3, 8), np.float32)
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc1.bias"] and res.unexpected_keys == ["extra.weight"]
    with pytest.raises(RuntimeError, match="size mismatch"):
        m.load_state_dict({"fc1.weight": np.zeros((1, 1))}, strict=False)


def test_forward_hooks_and_handles():
    m = nn.Linear(3, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: calls.append("pre") or (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append("post") or out + 1)
    x = dg.randn(4, 3)
    y = m(x)
    assert calls == ["pre", "post"]
    np.testing.assert_allclose(y.detach().numpy(), m.bias.detach().numpy() + 1 + np.zeros((4, 2)), rtol=1e-6)
    h1.remove()
    h2.remove()
    calls.clear()
    m(x)
    assert calls == [] and not m._forward_hooks and not m._forward_pre_hooks
    with m.register_forward_hook(lambda *a: calls.append("ctx")):
        m(x)
    m(x)
    assert calls == ["ctx"]
    feats = {}
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    net[1].register_forward_hook(lambda mod, i, o: feats.setdefault("relu", o))
    net(x)
    assert feats["relu"].shape == (4, 4)


def test_sequential_containers():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    ts = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[0], nn.Linear) and isinstance(s[-1], nn.Linear)
    assert isinstance(s[1:], nn.Sequential) and len(s[1:]) == 2 and repr(s[1:]) == repr(ts[1:])
    assert [type(m).__name__ for m in s] == ["Linear", "ReLU", "Linear"]
    s.append(nn.Sigmoid())
    ts.append(torch.nn.Sigmoid())
    assert repr(s) == repr(ts)
    del s[1]
    del ts[1]
    assert repr(s) == repr(ts)
    s.insert(1, nn.Tanh())
    ts.insert(1, torch.nn.Tanh())
    assert repr(s) == repr(ts)
    with pytest.raises(IndexError):
        s[10]
    named = nn.Sequential(OrderedDict([("conv", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    tnamed = torch.nn.Sequential(OrderedDict([("conv", torch.nn.Linear(2, 2)), ("act", torch.nn.ReLU())]))
    assert repr(named) == repr(tnamed) and named.act is named[1]

    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])
    tml = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU()])
    assert repr(ml) == repr(tml)
    assert len(ml) == 4 and len(list(ml.parameters())) == 6 and isinstance(ml[:2], nn.ModuleList)
    md = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    tmd = torch.nn.ModuleDict({"a": torch.nn.Linear(1, 1), "b": torch.nn.ReLU()})
    assert repr(md) == repr(tmd) and list(md.keys()) == ["a", "b"] and "a" in md
    pl = nn.ParameterList([nn.Parameter(dg.zeros(2)), dg.ones(3)])
    assert len(list(pl.parameters())) == 2 and isinstance(pl[1], nn.Parameter)
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]


def test_reprs_match_torch():
    pairs = [
        (nn.Linear(784, 512), torch.nn.Linear(784, 512)),
        (nn.Linear(3, 2, bias=False), torch.nn.Linear(3, 2, bias=False)),
        (nn.Bilinear(2, 3, 4), torch.nn.Bilinear(2, 3, 4)),
        (nn.Flatten(), torch.nn.Flatten()), (nn.Unflatten(1, (2, 5)), torch.nn.Unflatten(1, (2, 5))),
        (nn.Identity(), torch.nn.Identity()), (nn.Dropout2d(0.1), torch.nn.Dropout2d(0.1)),
        (nn.Embedding(10, 3, padding_idx=0), torch.nn.Embedding(10, 3, padding_idx=0)),
        (nn.BatchNorm2d(6, momentum=None), torch.nn.BatchNorm2d(6, momentum=None)),
        (nn.LayerNorm([3, 4]), torch.nn.LayerNorm([3, 4])), (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
        (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)), (nn.Hardtanh(), torch.nn.Hardtanh()),
        (nn.PReLU(), torch.nn.PReLU()), (nn.GELU(), torch.nn.GELU()), (nn.ELU(), torch.nn.ELU()),
        (nn.Softplus(), torch.nn.Softplus()), (nn.LeakyReLU(), torch.nn.LeakyReLU()),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


def test_clip_grad_and_vector_utils():
    ps = [nn.Parameter(dg.zeros(3)), nn.Parameter(dg.zeros(2, 2))]
    tps = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    rng = np.random.default_rng(0)
    for p, tp in zip(ps, tps):
        g = rng.standard_normal(p.shape).astype(np.float32) * 3
        p.grad, tp.grad = dg.tensor(g), torch.tensor(g)
    for norm_type in (2.0, 1.0, math.inf):
        for p, tp in zip(ps, tps):
            g = rng.standard_normal(p.shape).astype(np.float32) * 3
            p.grad, tp.grad = dg.tensor(g), torch.tensor(g)
        n = nn.utils.clip_grad_norm_(ps, 1.0, norm_type)
        tn = torch.nn.utils.clip_grad_norm_(tps, 1.0, norm_type)
        close(n, tn)
        for p, tp in zip(ps, tps):
            close(p.grad, tp.grad)
    ps[0].grad.array[0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    ps[0].grad.array[0] = 10.0
    nn.utils.clip_grad_value_(ps, 0.5)
    assert np.abs(ps[0].grad.numpy()).max() <= 0.5
    v = nn.utils.parameters_to_vector(ps)
    assert v.shape == (7,)
    nn.utils.vector_to_parameters(dg.arange(7).float(), ps)
    assert ps[1].detach().numpy().tolist() == [[3.0, 4.0], [5.0, 6.0]]
