"""A minimal stand-in for torchvision, used ONLY to run the test programs on real PyTorch (the
oracle): torchvision cannot be installed beside the torch 2.13.0 CPU wheel here. It covers what the
programs touch: MNIST/CIFAR10/FakeData read from the shared datasets, ToTensor/Normalize/Compose,
make_grid/save_image. It is never used with deepgrad."""
from . import datasets, transforms, utils  # noqa: F401
