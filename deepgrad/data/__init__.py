"""Data loading: datasets, samplers, the DataLoader, transforms and the standard datasets.

PyTorch's ``torch.utils.data`` API (``Dataset``, ``TensorDataset``, ``DataLoader``, samplers,
``random_split``) plus torchvision-like ``transforms`` and ``datasets`` (MNIST, FashionMNIST,
CIFAR10, CIFAR100, TinyShakespeare), in NumPy.
"""
from . import transforms, datasets
from .dataset import (Dataset, IterableDataset, TensorDataset, ArrayDataset, Subset, ConcatDataset, ChainDataset,
                      random_split)
from .sampler import (Sampler, SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler,
                      BatchSampler)
from .dataloader import DataLoader, default_collate, default_convert, get_worker_info, WorkerInfo
from .datasets import MNIST, FashionMNIST, CIFAR10, CIFAR100, TinyShakespeare, shared_datasets_dir
from .distributed import DistributedSampler

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "ArrayDataset", "Subset", "ConcatDataset", "ChainDataset",
           "random_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler", "DataLoader", "default_collate", "default_convert",
           "transforms", "datasets", "MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "TinyShakespeare",
           "shared_datasets_dir", "get_worker_info", "WorkerInfo", "DistributedSampler"]
