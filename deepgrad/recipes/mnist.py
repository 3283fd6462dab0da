"""MNIST recipes: the lecture notes' 784-512-512-10 ReLU network and a linear softmax baseline.

The data are standardised once (MNIST's mean 0.1307 and std 0.3081, as in the PyTorch examples)
and served from arrays, so a batch is one fancy-index: the loop's time goes to the matmuls.
"""
from __future__ import annotations

import numpy as np

from . import Recipe, Splits, register

MEAN, STD = 0.1307, 0.3081


def mnist_splits(hp, root=None, flatten=True):
    """Standardised float32 MNIST as (train, None, test) ``TensorDataset``s; ``hp["subset"]``
    keeps the first N samples of each split (for smoke tests)."""
    from ..data import MNIST, TensorDataset

    def split(train):
        ds = MNIST(root=root, train=train)
        x, y = np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64)
        if hp.get("subset"):
            x, y = x[:hp["subset"]], y[:hp["subset"]]
        x = (x.astype(np.float32) / np.float32(255) - np.float32(MEAN)) / np.float32(STD)
        x = x.reshape(len(x), -1) if flatten else x[:, None]
        return TensorDataset(x, y)

    return Splits(split(True), None, split(False))


def mnist_preprocess(array, flatten=True):
    """An image file's pixels -> a standardised (1, 784) batch: greyscale, resized to 28x28,
    scaled to [0, 1] and inverted when the digit is dark on a light background (MNIST digits are
    light on black)."""
    from ..tensor import Tensor
    a = np.asarray(array)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255
    a = a.astype(np.float32)
    if a.ndim == 1 and a.size == 784:
        a = a.reshape(28, 28)
    if a.ndim == 3:                       # H x W x C: drop alpha, average the colours
        a = a[..., :3].mean(axis=-1) if a.shape[-1] in (3, 4) else a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"expected a 28x28 image (or HxW, HxWxC), got shape {a.shape}")
    if a.max() > 1.0:                     # 0..255 floats
        a = a / 255.0
    if a.shape != (28, 28):
        a = _resize(a, 28, 28)
    if a.mean() > 0.5:
        a = 1.0 - a
    x = (a - MEAN) / STD
    x = x.reshape(1, -1) if flatten else x[None, None]
    return Tensor._make(np.ascontiguousarray(x, dtype=np.float32))


def _resize(a, h, w):
    """Area-average (downscale) / nearest (upscale) resize of a 2-d array, NumPy only."""
    H, W = a.shape
    rows = (np.arange(h + 1) * H / h).astype(int)
    cols = (np.arange(w + 1) * W / w).astype(int)
    out = np.empty((h, w), np.float32)
    for i in range(h):
        r0, r1 = rows[i], max(rows[i + 1], rows[i] + 1)
        for j in range(w):
            c0, c1 = cols[j], max(cols[j + 1], cols[j] + 1)
            out[i, j] = a[r0:r1, c0:c1].mean()
    return out


class _MNISTRecipe(Recipe):
    classes = [str(d) for d in range(10)]

    def build_data(self, hp, root=None):
        return mnist_splits(hp, root)

    def preprocess(self, array):
        return mnist_preprocess(array)


@register
class MnistMLP(_MNISTRecipe):
    name = "mnist-mlp"
    summary = "784-512-512-10 ReLU MLP on MNIST (the lecture notes' network)"
    reproduces = (">= 98% test accuracy in 10 epochs (Krzakala's crash course; the Keras/PyTorch MNIST "
                  "MLP examples report ~98.2-98.4%)")
    target = 0.98
    # Adam with a per-batch cosine decay to 0 converges in a few epochs; dropout 0.2 (as in the
    # Keras mnist_mlp example) keeps the 670k-parameter net from memorising the training set.
    defaults = dict(epochs=10, batch_size=128, lr=1e-3, optimizer="adam", hidden=512, dropout=0.2)

    def build_model(self, hp):
        from .. import nn
        h, p = hp["hidden"], hp["dropout"]
        # NOTE: the notes' printout ends with a ReLU after the last Linear; clamping the logits at
        # zero only hurts cross-entropy, so (as in PyTorch's current quickstart) the logits are raw.
        return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, h), nn.ReLU(), nn.Dropout(p),
                             nn.Linear(h, h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, 10))

    def build_scheduler(self, hp, optimizer, steps_per_epoch):
        from ..optim.lr_scheduler import CosineAnnealingLR
        return CosineAnnealingLR(optimizer, T_max=hp["epochs"] * steps_per_epoch), "batch"


@register
class MnistSoftmax(_MNISTRecipe):
    name = "mnist-softmax"
    summary = "linear softmax classifier (multinomial logistic regression) on MNIST"
    reproduces = "the linear baseline: ~92% test accuracy (LeCun et al. 1998 report 88-92% for linear classifiers)"
    target = 0.91
    defaults = dict(epochs=5, batch_size=128, lr=1e-3, optimizer="adam")

    def build_model(self, hp):
        from .. import nn
        return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
