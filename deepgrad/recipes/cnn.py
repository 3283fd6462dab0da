"""Convolutional recipes: LeNet-5 and the lecture notes' CNN on MNIST; ResNet-20 and a fast small
CNN on CIFAR-10.

MNIST is standardised once and served from arrays (as in ``mnist.py``), shaped (N, 1, 28, 28).
CIFAR-10 is kept as uint8 (N, 3, 32, 32); each batch is augmented (training only) and normalised
by the DataLoader's ``batch_transform``: random 32x32 crop of the image zero-padded by 4 pixels
(black, as torchvision pads the image before ``ToTensor``), horizontal flip with probability 1/2,
then ``x / 255`` and per-channel standardisation with the training set's mean and std.
"""
from __future__ import annotations

import numpy as np

from . import Recipe, Splits, register
from .mnist import mnist_preprocess, mnist_splits

#: per-channel mean and std of the CIFAR-10 training images on the [0, 1] scale
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ---------------------------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------------------------
class _MNISTConvRecipe(Recipe):
    classes = [str(d) for d in range(10)]

    def build_data(self, hp, root=None):
        return mnist_splits(hp, root, flatten=False)

    def preprocess(self, array):
        return mnist_preprocess(array, flatten=False)

    def build_scheduler(self, hp, optimizer, steps_per_epoch):
        from ..optim.lr_scheduler import OneCycleLR
        return OneCycleLR(optimizer, max_lr=hp["lr"], epochs=int(hp["epochs"]), steps_per_epoch=steps_per_epoch,
                          pct_start=hp.get("pct_start", 0.25)), "batch"


@register
class MnistLeNet5(_MNISTConvRecipe):
    name = "mnist-lenet5"
    summary = "LeNet-5 (conv 6@5x5, pool, conv 16@5x5, pool, 120-84-10; ReLU, max-pool) on MNIST"
    reproduces = ">= 99.0% test accuracy (LeCun et al. 1998 report 0.95% test error for LeNet-5)"
    target = 0.99
    # Adam under a one-cycle schedule (per batch); no augmentation, no weight decay.
    defaults = dict(epochs=5, batch_size=128, lr=3e-3, optimizer="adam")

    def build_model(self, hp):
        from ..models import lenet5
        return lenet5(num_classes=10)


@register
class MnistCNN(_MNISTConvRecipe):
    name = "mnist-cnn"
    summary = "the lecture notes' CNN (conv-BN-conv-BN-pool-dropout-FC-BN-FC) on MNIST"
    reproduces = ">= 99.2% test accuracy (the Keras/PyTorch MNIST CNN examples report ~99.2%)"
    target = 0.992
    defaults = dict(epochs=5, batch_size=128, lr=3e-3, optimizer="adam")

    def build_model(self, hp):
        from ..models import mnist_cnn
        return mnist_cnn(num_classes=10)


# ---------------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------------
class ToFloatNormalize:
    """uint8 (N, C, H, W) batch -> float32 ``(x / 255 - mean[c]) / std[c]`` (a Tensor stays a
    Tensor). Deterministic: the test-time transform, and the last step of the training one."""

    deterministic = True

    def __init__(self, mean=CIFAR_MEAN, std=CIFAR_STD):
        self.mean, self.std = tuple(mean), tuple(std)
        m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
        s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
        self._scale = np.float32(1 / 255) / s          # x * scale + shift, one fused pass each
        self._shift = -m / s

    def __call__(self, batch):
        from .. import backend
        from ..tensor import Tensor
        x = batch.array if isinstance(batch, Tensor) else batch
        xp = backend.array_module(x)
        y = x.astype(np.float32) if x.dtype != np.float32 else x.copy()
        y *= xp.asarray(self._scale)
        y += xp.asarray(self._shift)
        return Tensor._make(y) if isinstance(batch, Tensor) else y

    def __repr__(self):
        return f"ToFloatNormalize(mean={self.mean}, std={self.std})"


def cifar_train_transform(augment=True, padding=4):
    """The training batch transform: crop (``padding`` zero pixels) + flip, then normalise."""
    from ..data import transforms as T
    steps = [T.BatchRandomCrop(32, padding=padding), T.BatchRandomHorizontalFlip()] if augment else []
    return T.Compose(steps + [ToFloatNormalize()])


def cifar_splits(hp, root=None):
    """uint8 CIFAR-10 as (train, None, test) ``TensorDataset``s of (N, 3, 32, 32) images and int64
    labels; ``hp["subset"]`` keeps the first N samples of each split."""
    from ..data import CIFAR10, TensorDataset

    def split(train):
        ds = CIFAR10(root=root, train=train)
        x, y = np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64)
        if hp.get("subset"):
            x, y = x[:hp["subset"]], y[:hp["subset"]]
        return TensorDataset(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y)

    return Splits(split(True), None, split(False))


class _CifarRecipe(Recipe):
    classes = CIFAR_CLASSES

    def build_data(self, hp, root=None):
        return cifar_splits(hp, root)

    def build_loaders(self, hp, splits):
        """Augmentation (crop + flip) on the training loader only; both normalise."""
        from .. import random
        from ..data.dataloader import DataLoader
        gen = random.Generator().manual_seed(hp["seed"] + 1)
        bs = hp["batch_size"]
        train = DataLoader(splits.train, batch_size=bs, shuffle=True, generator=gen,
                           batch_transform=cifar_train_transform(hp.get("augment", True)))
        evaluation = max(bs, 1000)
        test_tf = ToFloatNormalize()
        val = (DataLoader(splits.val, batch_size=evaluation, batch_transform=test_tf)
               if splits.val is not None else None)
        test = (DataLoader(splits.test, batch_size=evaluation, batch_transform=test_tf)
                if splits.test is not None else None)
        return train, val, test

    def preprocess(self, array):
        """An image (H x W x 3, uint8 or [0, 1] floats; greyscale is replicated) -> a normalised
        (1, 3, 32, 32) batch (resized to 32x32 if needed)."""
        from ..data.transforms import functional as TF
        from ..tensor import Tensor
        a = np.asarray(array)
        a = a.astype(np.float32) / 255 if a.dtype == np.uint8 else a.astype(np.float32)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=-1)
        if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:       # already CHW
            a = a.transpose(1, 2, 0)
        if a.ndim != 3 or a.shape[-1] not in (3, 4):
            raise ValueError(f"expected an H x W x 3 RGB image, got shape {a.shape}")
        if a.max() > 1.0:
            a = a / 255.0
        x = np.ascontiguousarray(a[..., :3].transpose(2, 0, 1))
        if x.shape[1:] != (32, 32):
            x = TF.resize(x, (32, 32))
        x = (x - np.asarray(CIFAR_MEAN, np.float32).reshape(3, 1, 1)) / np.asarray(CIFAR_STD, np.float32).reshape(3, 1, 1)
        return Tensor._make(np.ascontiguousarray(x[None], dtype=np.float32))


@register
class Cifar10ResNet20(_CifarRecipe):
    name = "cifar10-resnet20"
    summary = "ResNet-20 (He et al. 2016, section 4.2, option-A shortcuts) on CIFAR-10"
    reproduces = ("8.75% test error (91.25% accuracy) after 164 epochs (He et al. 2016, Table 6): SGD momentum "
                  "0.9, weight decay 1e-4, lr 0.1 / 10 at 50% and 75% of training, batch 128, crop + flip")
    target = 0.91
    defaults = dict(epochs=164, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=1e-4,
                    depth=20, augment=True)

    def build_model(self, hp):
        from ..models import CifarResNet
        return CifarResNet(int(hp["depth"]), num_classes=10)

    def build_scheduler(self, hp, optimizer, steps_per_epoch):
        """lr / 10 at 50% and 75% of the epochs (the paper's 32k and 48k of 64k iterations)."""
        from ..optim.lr_scheduler import MultiStepLR
        e = int(hp["epochs"])
        milestones = sorted({max(1, e // 2), max(1, (3 * e) // 4)})
        return MultiStepLR(optimizer, milestones=milestones, gamma=0.1), "epoch"


class QuickNet:
    """Factory for cifar10-quick's network (a namespace, built lazily so that importing the recipe
    registry stays light)."""

    @staticmethod
    def build(width=32, num_classes=10):
        from .. import nn

        def block(cin, cout):   # conv 3x3 - BN - ReLU - max-pool 2
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2)]

        w = int(width)
        return nn.Sequential(
            *block(3, w),            # 32 -> 16
            *block(w, 2 * w),        # 16 -> 8
            *block(2 * w, 4 * w),    # 8 -> 4
            nn.Conv2d(4 * w, 8 * w, 3, padding=1, bias=False), nn.BatchNorm2d(8 * w), nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d((1, 1)), nn.Flatten(),
            nn.Linear(8 * w, num_classes))


@register
class Cifar10Quick(_CifarRecipe):
    name = "cifar10-quick"
    summary = "a small fast CNN (4 conv-BN-ReLU layers, 24-48-96-192 channels, max-pools) on CIFAR-10, one-cycle SGD"
    reproduces = ">= 75% test accuracy in a run of at most 30 minutes on 2 CPU cores"
    target = 0.75
    defaults = dict(epochs=4, batch_size=128, lr=0.2, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                    width=24, augment=True, pct_start=0.25)

    def build_model(self, hp):
        return QuickNet.build(hp["width"])

    def build_optimizer(self, hp, model):
        from .. import optim
        return optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"], nesterov=True,
                         weight_decay=hp["weight_decay"])

    def build_scheduler(self, hp, optimizer, steps_per_epoch):
        from ..optim.lr_scheduler import OneCycleLR
        return OneCycleLR(optimizer, max_lr=hp["lr"], epochs=int(hp["epochs"]), steps_per_epoch=steps_per_epoch,
                          pct_start=hp["pct_start"], anneal_strategy="linear"), "batch"
