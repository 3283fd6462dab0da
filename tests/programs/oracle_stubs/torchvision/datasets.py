import gzip
import os
from pathlib import Path

import numpy as np
import torch


def _shared():
    return Path(os.environ["DEEPGRAD_DATA"])


class _Base(torch.utils.data.Dataset):
    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        img, y = self.data[i], int(self.targets[i])
        img = img.numpy() if isinstance(img, torch.Tensor) else img
        return (self.transform(img) if self.transform else img), y


_CACHE = {}


def _read(name):
    if name not in _CACHE:
        _CACHE[name] = gzip.decompress((_shared() / name).read_bytes())
    return _CACHE[name]


class MNIST(_Base):
    def __init__(self, root, train=True, download=False, transform=None):
        p = "train" if train else "t10k"
        raw = _read(f"mnist/{p}-images-idx3-ubyte.gz")
        lab = _read(f"mnist/{p}-labels-idx1-ubyte.gz")
        self.data = torch.from_numpy(np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28).copy())
        self.targets = torch.from_numpy(np.frombuffer(lab, np.uint8, offset=8).astype(np.int64))
        self.transform = transform


class CIFAR10(_Base):
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train=True, download=False, transform=None):
        names = [f"data_batch_{i}.bin.gz" for i in range(1, 6)] if train else ["test_batch.bin.gz"]
        recs = np.concatenate([np.frombuffer(_read(f"cifar10/{n}"), np.uint8)
                               .reshape(-1, 3073) for n in names])
        self.data = recs[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        self.targets = recs[:, 0].astype(np.int64).tolist()
        self.transform = transform


class FakeData(_Base):
    def __init__(self, size=1000, image_size=(3, 224, 224), num_classes=10, transform=None):
        rng = np.random.default_rng(0)
        c, h, w = image_size
        self.data = rng.integers(0, 256, (size, h, w, c), dtype=np.uint8)
        self.targets = rng.integers(0, num_classes, size).tolist()
        self.transform = transform
