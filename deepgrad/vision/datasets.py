"""torchvision.datasets on deepgrad: MNIST, FashionMNIST, CIFAR10/100 (deepgrad.data.datasets),
plus ``FakeData`` and ``ImageFolder``/``DatasetFolder``.

Images come out as torchvision gives PIL images to a transform: here uint8 NumPy arrays,
``(H, W)`` or ``(H, W, C)``, which every deepgrad transform (and ``ToTensor``) takes.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..data.datasets import *  # noqa: F401,F403
from ..data.datasets import VisionDataset  # noqa: F401

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "FakeData", "ImageFolder", "DatasetFolder",
           "VisionDataset", "IMG_EXTENSIONS"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_MAX_PIXELS = 64 * 1024 * 1024   # one image may decode to at most 64 Mpixel (a bigger one is refused)


class FakeData(Dataset):
    """``size`` random images of ``image_size`` (C, H, W) with random labels in
    ``[0, num_classes)``; image ``i`` is the same every time (seeded by ``i + random_offset``)."""

    def __init__(self, size=1000, image_size=(3, 224, 224), num_classes=10, transform=None,
                 target_transform=None, random_offset=0):
        if len(image_size) != 3 or any(int(s) <= 0 for s in image_size):
            raise ValueError(f"FakeData: image_size must be (C, H, W) with positive sizes, got {image_size!r}")
        if int(size) < 0 or int(num_classes) <= 0:
            raise ValueError(f"FakeData: size must be >= 0 and num_classes > 0, got {size}, {num_classes}")
        self.size, self.image_size, self.num_classes = int(size), tuple(int(s) for s in image_size), int(num_classes)
        self.transform, self.target_transform, self.random_offset = transform, target_transform, int(random_offset)

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        index = int(index)
        if not -self.size <= index < self.size:
            raise IndexError(f"FakeData: index {index} out of range for {self.size} samples")
        index %= self.size
        rng = np.random.Generator(np.random.PCG64(index + self.random_offset))
        c, h, w = self.image_size
        img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        img = img[:, :, 0] if c == 1 else img
        target = int(rng.integers(0, self.num_classes))
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self):
        return f"FakeData(size={self.size}, image_size={self.image_size}, num_classes={self.num_classes})"


def pil_loader(path):
    """An image file as a uint8 RGB array ``(H, W, 3)``; the size is checked before decoding."""
    from PIL import Image
    from .._files import FileError, open_regular
    with open_regular(path, "image") as f:
        try:
            img = Image.open(f)
            w, h = img.size
            if w * h > _MAX_PIXELS:
                raise FileError(path, f"is a {w}x{h} image, more than the {_MAX_PIXELS:,} pixels an image may have")
            return np.asarray(img.convert("RGB"))
        except FileError:
            raise
        except Exception as e:  # PIL raises many types for a bad file
            raise FileError(path, f"is not a readable image ({type(e).__name__}: {e})") from None


class DatasetFolder(Dataset):
    """Samples arranged as ``root/<class>/<file>``: ``classes`` are the sorted sub-folder names,
    ``samples`` the ``(path, class_index)`` pairs in sorted order, ``targets`` their labels."""

    def __init__(self, root, loader, extensions=None, transform=None, target_transform=None, is_valid_file=None,
                 allow_empty=False):
        if (extensions is None) == (is_valid_file is None):
            raise ValueError(f"{type(self).__name__}: pass exactly one of extensions and is_valid_file")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{type(self).__name__}: no such folder: {str(self.root)!r}")
        self.loader, self.transform, self.target_transform = loader, transform, target_transform
        self.classes = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        if not self.classes:
            raise FileNotFoundError(f"{type(self).__name__}: no class folders in {str(self.root)!r}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        valid = is_valid_file or (lambda p: p.lower().endswith(tuple(e.lower() for e in extensions)))
        self.samples = []
        for c in self.classes:
            found = []
            for dirpath, _, files in sorted(os.walk(self.root / c, followlinks=True)):
                found += [os.path.join(dirpath, f) for f in sorted(files) if valid(os.path.join(dirpath, f))]
            if not found and not allow_empty:
                raise FileNotFoundError(f"{type(self).__name__}: class folder {c!r} in {str(self.root)!r} "
                                        f"holds no valid file (extensions {extensions})")
            self.samples += [(p, self.class_to_idx[c]) for p in found]
        self.imgs = self.samples
        self.targets = [t for _, t in self.samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, target = self.samples[int(index)]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target


class ImageFolder(DatasetFolder):
    """Images arranged as ``root/<class>/<image>`` (torchvision's ImageFolder), loaded as RGB."""

    def __init__(self, root, transform=None, target_transform=None, loader=pil_loader, is_valid_file=None,
                 allow_empty=False):
        super().__init__(root, loader, IMG_EXTENSIONS if is_valid_file is None else None, transform=transform,
                         target_transform=target_transform, is_valid_file=is_valid_file, allow_empty=allow_empty)
