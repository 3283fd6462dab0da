"""The lecture notes' models end to end: build, print, train a few steps, load torch state dicts."""
import numpy as np
import torch

import deepgrad as dg
from deepgrad import nn
import deepgrad.nn.functional as F
from nnutil import close, sync


def make_notes_network(lib):
    class NeuralNetwork(lib.Module):
        def __init__(self):
            super(NeuralNetwork, self).__init__()
            self.flatten = lib.Flatten()
            self.linear_relu_stack = lib.Sequential(
                lib.Linear(28 * 28, 512),
                lib.ReLU(),
                lib.Linear(512, 512),
                lib.ReLU(),
                lib.Linear(512, 10),
                lib.ReLU()
            )

        def forward(self, x):
            x = self.flatten(x)
            logits = self.linear_relu_stack(x)
            return logits
    return NeuralNetwork()


NOTES_REPR = """NeuralNetwork(
  (flatten): Flatten(start_dim=1, end_dim=-1)
  (linear_relu_stack): Sequential(
    (0): Linear(in_features=784, out_features=512, bias=True)
    (1): ReLU()
    (2): Linear(in_features=512, out_features=512, bias=True)
    (3): ReLU()
    (4): Linear(in_features=512, out_features=10, bias=True)
    (5): ReLU()
  )
)"""


def test_notes_network_prints_and_trains_like_torch():
    # float64 and a seeded torch init: in float32 the final ReLU's kink sits within rounding of a
    # few pre-activations, and the two libraries' different (both correct) summation orders can
    # send one unit to opposite sides of it (seen once: 23 of 262,144 weights off by 5e-5).
    torch.manual_seed(0)
    model, tmodel = make_notes_network(nn), make_notes_network(torch.nn)
    assert repr(model) == repr(tmodel) == NOTES_REPR
    assert model.num_parameters() == 669_706
    model, tmodel = model.double(), tmodel.double()
    sync(model, tmodel)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (32, 1, 28, 28))
    y = rng.integers(0, 10, 32)
    opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    loss_fn, tloss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(3):
        opt.zero_grad()
        topt.zero_grad()
        loss = loss_fn(model(dg.tensor(x)), dg.tensor(y))
        tloss = tloss_fn(tmodel(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
        close(loss, tloss, "loss", rtol=1e-10)
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for (n, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        close(p, tp, n, rtol=1e-9, atol=1e-12)


class MLP(nn.Module):
    """An MLP classifier with batch norm, dropout and a softmax head (the notes' regularisation slide)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc1_bn = nn.BatchNorm1d(64)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(64, 3)

    def forward(self, x):
        x = F.relu(self.fc1_bn(self.fc1(x)))
        return F.log_softmax(self.fc2(self.dropout(x)), dim=1)


class TMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(20, 64)
        self.fc1_bn = torch.nn.BatchNorm1d(64)
        self.dropout = torch.nn.Dropout(0.25)
        self.fc2 = torch.nn.Linear(64, 3)

    def forward(self, x):
        x = torch.nn.functional.relu(self.fc1_bn(self.fc1(x)))
        return torch.nn.functional.log_softmax(self.fc2(self.dropout(x)), dim=1)


def test_mlp_with_batchnorm_dropout_trains_and_loads_torch_weights():
    dg.manual_seed(0)
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((3, 20)) * 2
    y = rng.integers(0, 3, 300)
    x = (centers[y] + rng.standard_normal((300, 20))).astype(np.float32)
    model = MLP()
    assert repr(model) == repr(TMLP()).replace("TMLP", "MLP")
    opt = dg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    first = last = None
    for epoch in range(6):
        for i in range(0, 300, 50):
            xb, yb = dg.tensor(x[i:i + 50]), dg.tensor(y[i:i + 50])
            loss = F.nll_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            first = loss.item() if first is None else first
            last = loss.item()
    assert last < first * 0.5
    model.eval()
    acc = (model(dg.tensor(x)).argmax(1).numpy() == y).mean()
    assert acc > 0.9
    probs = model(dg.tensor(x[:5])).exp()
    np.testing.assert_allclose(probs.sum(1).detach().numpy(), 1.0, rtol=1e-5)

    # a torch-trained model's state dict (NumPy arrays, by name) gives the same eval outputs
    tmodel = TMLP()
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.05)
    for i in range(0, 300, 50):
        topt.zero_grad()
        torch.nn.functional.nll_loss(tmodel(torch.tensor(x[i:i + 50])), torch.tensor(y[i:i + 50])).backward()
        topt.step()
    tmodel.eval()
    fresh = MLP()
    sync(fresh, tmodel)
    fresh.eval()
    close(fresh(dg.tensor(x[:40])), tmodel(torch.tensor(x[:40])), "eval output", rtol=1e-4, atol=1e-5)
    assert int(fresh.fc1_bn.num_batches_tracked.item()) == 6
    # and ours loads back into torch by name
    back = TMLP()
    back.load_state_dict({k: torch.tensor(v.numpy().copy()) for k, v in model.state_dict().items()})
    back.eval()
    close(model(dg.tensor(x[:40])), back(torch.tensor(x[:40])), "torch from ours", rtol=1e-4, atol=1e-5)
