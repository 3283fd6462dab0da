"""The four benchmark models as deepgrad / PyTorch twins with the same state_dict names, their
batches, and one training step; shared by tests/gpu/test_models.py and benchmarks/gpu/bench_gpu.py.

MLP 784-512-512-10 (batch 128), LeNet-5 (batch 128, 1x28x28), ResNet-20 (CIFAR, option-A
shortcuts, batch 128, 3x32x32), char-LSTM (vocabulary 65, embedding 64, LSTM 256, T=64, B=32):
cross-entropy and SGD with momentum 0.9 (lr 0.01; 0.5 without momentum for the char-LSTM, as
benchmarks/bench_rnn.py).
"""
from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

V, E, H, T, B = 65, 64, 256, 64, 32


def _mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def _char_lstm(lib, vocab=V, embed=E, hidden=H):
    nn = lib.nn

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, embed)
            self.lstm = nn.LSTM(embed, hidden)
            self.head = nn.Linear(hidden, vocab)

        def forward(self, x):
            out, _ = self.lstm(self.embed(x))
            return self.head(out.reshape(-1, out.shape[-1]))
    return CharLSTM()


def build(name, lib, small=False):
    """(model, x, y) of case ``name`` for ``lib`` (deepgrad or torch) on the host; ``small``:
    tiny sizes for a dry run."""
    import deepgrad as dg
    rng = np.random.default_rng(0)
    batch = 8 if small else 128
    if name == "mlp":
        model = _mlp(lib)
        x = rng.random((batch, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, batch)
    elif name == "lenet5":
        if lib is dg:
            model = dg.models.lenet5()
        else:
            from bench_cnn import TorchLeNet5
            model = TorchLeNet5()
        x = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, batch)
    elif name == "resnet20":
        if lib is dg:
            model = dg.models.resnet20()
        else:
            from bench_cnn import TorchResNet20
            model = TorchResNet20()
        x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
        y = rng.integers(0, 10, batch)
    elif name == "char_lstm":
        t, b = (8, 4) if small else (T, B)
        model = _char_lstm(lib, hidden=32 if small else H)
        data = rng.integers(0, V, size=(t + 1, b))
        x, y = data[:-1], data[1:].reshape(-1)
    else:
        raise KeyError(name)
    return model, x, y


NAMES = ["mlp", "lenet5", "resnet20", "char_lstm"]


def optimizer(name, lib, params):
    if name == "char_lstm":
        return lib.optim.SGD(params, lr=0.5)
    return lib.optim.SGD(params, lr=0.01, momentum=0.9)


def same_weights(src_dg, dst, lib):
    """Copy deepgrad model ``src_dg``'s state into ``dst`` (a deepgrad or torch model)."""
    sd = {k: lib.tensor(np.array(v.detach().cpu().numpy())) for k, v in src_dg.state_dict().items()}
    dst.load_state_dict(sd)


def make_step(model, x, y, opt, lib):
    """One training step as a callable returning the loss tensor (no host sync inside)."""
    F = lib.nn.functional

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step
