"""deepgrad.compile: captured-and-replayed training steps give eager's parameters (bit for bit:
the replay runs the same NumPy calls in the same order), guards re-record instead of replaying
a wrong branch, graph breaks fall back to eager (or raise under fullgraph=True)."""
import warnings

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F
from deepgrad.compiler import GraphBreak, config


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(8, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.1, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.layer(self.emb(x)).mean(1))


class CharLSTM(nn.Module):
    def __init__(self, V=11, H=16):
        super().__init__()
        self.emb = nn.Embedding(V, 8)
        self.lstm = nn.LSTM(8, H, batch_first=True)
        self.out = nn.Linear(H, V)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.out(h).reshape(-1, 11)


def _models():
    from deepgrad.models import lenet, resnet
    return {
        "mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3),
                                      nn.Linear(32, 10)),
                lambda rs, b: rs.randn(b, 1, 8, 8), 10),
        "autoencoder": (lambda: nn.Sequential(nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 8),
                                              nn.Linear(8, 32), nn.Sigmoid(), nn.Linear(32, 64)),
                        lambda rs, b: rs.rand(b, 64), None),
        "lenet5": (lambda: lenet.lenet5(), lambda rs, b: rs.randn(b, 1, 28, 28), 10),
        "mnist_cnn": (lambda: lenet.mnist_cnn(), lambda rs, b: rs.randn(b, 1, 28, 28), 10),
        "resnet20": (lambda: resnet.resnet20(), lambda rs, b: rs.randn(b, 3, 32, 32), 10),
        "char_lstm": (CharLSTM, lambda rs, b: rs.randint(0, 11, (b, 7)), 11),
        "transformer": (TinyTransformer, lambda rs, b: rs.randn(b, 6, 8), 5),
    }


def _train(name, compiled, steps=3, batch=4, sched=False, adam=False):
    make, data, C = _models()[name]
    dg.manual_seed(0)
    model = make()
    opt = (dg.optim.Adam(model.parameters(), lr=1e-3) if adam else
           dg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    sch = dg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5) if sched else None

    def step(x, y):
        opt.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y) if C else F.mse_loss(out, y)
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = dg.compile(step)
    rs = np.random.RandomState(1)
    dg.manual_seed(7)
    losses = []
    for _ in range(steps):
        xa = data(rs, batch)
        x = dg.tensor(xa.astype(np.float32) if xa.dtype.kind == "f" else xa)
        if C is None:
            y = x
        else:
            n = x.shape[0] * (7 if name == "char_lstm" else 1)
            y = dg.tensor(rs.randint(0, C, n))
        losses.append(step(x, y).item())
        if sch:
            sch.step()
    return model, losses, step


def _same(m1, m2, rtol=1e-6):
    sd1, sd2 = m1.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys()
    for k in sd1:
        a, b = sd1[k].array, sd2[k].array
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("name", ["mlp", "autoencoder", "lenet5", "mnist_cnn", "resnet20", "char_lstm",
                                  "transformer"])
def test_compiled_training_matches_eager(name):
    steps = 2 if name == "resnet20" else 4
    m1, l1, _ = _train(name, False, steps=steps, batch=2 if name == "resnet20" else 4)
    m2, l2, st = _train(name, True, steps=steps, batch=2 if name == "resnet20" else 4)
    cf = st._compiled
    assert not cf.eager_reasons, cf.eager_reasons
    assert cf.last_program is not None
    assert l1 == l2
    _same(m1, m2, rtol=0)       # the same NumPy calls in the same order: bit-identical
