import gzip
import numpy as np
import pytest

from deepgrad.data import datasets as D


@pytest.fixture(scope="session")
def shared_dir():
    d = D.shared_datasets_dir()
    if d is None:
        pytest.skip("shared datasets folder not found (set DEEPGRAD_DATA)")
    return d


@pytest.fixture(scope="session")
def cifar_train(shared_dir):
    return D.CIFAR10(root=shared_dir, train=True)


@pytest.fixture(scope="session")
def cifar_test(shared_dir):
    return D.CIFAR10(root=shared_dir, train=False)


@pytest.fixture(scope="session")
def cifar_test_bin(shared_dir):
    """The raw bytes of test_batch.bin (decompressed once)."""
    return gzip.decompress((shared_dir / "cifar10" / "test_batch.bin.gz").read_bytes())


@pytest.fixture(scope="session")
def mnist_test():
    return D.MNIST(train=False)
