"""End to end: a deepgrad MLP and a torch MLP with identical weights, trained on identical batches
for 50 steps (forward, backward and optimiser all deepgrad's), end on the same weights."""
import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.optim as optim

nn = pytest.importorskip("deepgrad.nn")


def _models(seed=0):
    torch.manual_seed(seed)
    tm = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))
    dm = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    for dp, tp in zip(dm.parameters(), tm.parameters()):
        dp.array[...] = tp.detach().numpy()
    return dm, tm


def _batches(n=50, seed=3):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((32, 8)).astype(np.float32), rng.integers(0, 4, 32))
            for _ in range(n)]


@pytest.mark.parametrize("name,kw,sched", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3), None),
    ("AdamW", dict(lr=1e-2, amsgrad=True), "onecycle"),
    ("RMSprop", dict(lr=1e-3, centered=True, momentum=0.5), None),
])
def test_mlp_training_matches_torch(name, kw, sched):
    dm, tm = _models()
    opt = getattr(optim, name)(dm.parameters(), **kw)
    topt = getattr(torch.optim, name)(tm.parameters(), **kw)
    if sched == "onecycle":
        s = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=50)
        ts = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=50)
    dloss, tloss = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    for x, y in _batches():
        opt.zero_grad()
        ld = dloss(dm(dg.tensor(x)), dg.tensor(y))
        ld.backward()
        opt.step()
        topt.zero_grad()
        lt = tloss(tm(torch.from_numpy(x)), torch.from_numpy(y))
        lt.backward()
        topt.step()
        if sched:
            s.step()
            ts.step()
        np.testing.assert_allclose(float(ld.item()), float(lt.item()), rtol=1e-4, atol=1e-5)
    for dp, tp in zip(dm.parameters(), tm.parameters()):
        np.testing.assert_allclose(dp.array, tp.detach().numpy(), rtol=1e-5, atol=1e-5)
