"""Toy recipes that run in seconds: XOR, the problem a single perceptron cannot solve."""
from __future__ import annotations

import numpy as np

from . import Recipe, Splits, register

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.int64)


def xor_data(n, noise, seed):
    """``n`` noisy copies of the four XOR corners (Gaussian jitter of std ``noise``)."""
    g = np.random.default_rng(seed)
    idx = g.integers(0, 4, n)
    x = XOR_X[idx] + g.normal(0, noise, (n, 2)).astype(np.float32)
    return x.astype(np.float32), XOR_Y[idx]


@register
class XorMLP(Recipe):
    name = "xor-mlp"
    summary = "2-8-2 tanh network on (noisy) XOR"
    reproduces = ("Minsky & Papert's XOR: no perceptron solves it, one hidden layer does "
                  "(Rumelhart, Hinton & Williams 1986); 100% accuracy on the four corners")
    target = 1.0
    defaults = dict(epochs=20, batch_size=32, lr=0.05, optimizer="adam", hidden=8, samples=512, noise=0.1)
    classes = ["0", "1"]

    def build_model(self, hp):
        from .. import nn
        return nn.Sequential(nn.Linear(2, hp["hidden"]), nn.Tanh(), nn.Linear(hp["hidden"], 2))

    def build_data(self, hp, root=None):
        from ..data import TensorDataset
        n = hp["subset"] or hp["samples"]
        train = TensorDataset(*xor_data(n, hp["noise"], hp["seed"]))
        # the test set: the four exact corners, plus fresh noisy samples
        xt, yt = xor_data(252, hp["noise"], hp["seed"] + 1000)
        test = TensorDataset(np.concatenate([XOR_X, xt]), np.concatenate([XOR_Y, yt]))
        return Splits(train, None, test)

    def preprocess(self, array):
        from ..tensor import Tensor
        a = np.asarray(array, dtype=np.float32)
        if a.shape[-1] != 2:
            raise ValueError(f"xor-mlp takes points with 2 coordinates, got shape {a.shape}")
        return Tensor._make(a.reshape(-1, 2))
