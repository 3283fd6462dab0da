"""Datasets in their canonical file formats: MNIST, FashionMNIST, CIFAR10, CIFAR100, TinyShakespeare.

Parsers (``read_idx``, ``read_cifar_bin``, ``read_text``) validate magic numbers, sizes and
SHA-256 checksums and name the file in every error; they read regular files only and cap
decompression at the size the file must hold (``deepgrad._files``). ``download_url`` /
``extract_archive`` fetch and unpack atomically and safely (size caps, no writing through
symlinks). Every failure is a ``deepgrad._files.FileError`` (``DatasetFileError``,
``ChecksumError``, ``UnsafeArchiveError``). ``shared_datasets_dir()`` finds ``../shared/datasets`` (or
``$DEEPGRAD_DATA``) for tests and CI.
"""
from ._download import (ChecksumError, UnsafeArchiveError, check_digest, download_from_mirrors, download_url,
                        extract_archive, file_digest)
from ._formats import DatasetFileError, clear_cache, parse_idx, read_cifar_bin, read_idx, read_text
from ._paths import bundled_dir, default_root, resolve_root, shared_datasets_dir
from .text import CharVocab, TinyShakespeare
from .vision import CIFAR10, CIFAR100, MNIST, FashionMNIST, VisionDataset

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "TinyShakespeare", "CharVocab", "VisionDataset",
           "DatasetFileError", "ChecksumError", "UnsafeArchiveError", "read_idx", "parse_idx", "read_cifar_bin",
           "read_text", "clear_cache", "download_url", "download_from_mirrors", "extract_archive", "check_digest",
           "file_digest", "default_root", "resolve_root", "shared_datasets_dir", "bundled_dir"]
