"""Parsers for the canonical dataset file formats, in NumPy, with strict validation.

* IDX (MNIST, Fashion-MNIST): big-endian header ``00 00 <type> <ndim>`` + ``ndim`` uint32 sizes,
  then the data; gzip-compressed or not (detected from the content).
* CIFAR "binary version": fixed-size records of label byte(s) + 3072 channel-planar pixels
  (1024 R, 1024 G, 1024 B, each 32x32 row-major); ``.bin`` or ``.bin.gz``.
* plain text (UTF-8).

Every error names the file: bad gzip stream, truncated data, wrong magic number or dimensions,
and (when the expected SHA-256 of the payload is known) checksum mismatches.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import threading
import zlib
from pathlib import Path

import numpy as np

from ._download import ChecksumError

__all__ = ["DatasetFileError", "ChecksumError", "read_payload", "parse_idx", "read_idx", "read_cifar_bin",
           "read_text", "clear_cache"]


class DatasetFileError(ValueError):
    """A dataset file is malformed (truncated, corrupted, or not the expected file)."""


_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

_cache: dict = {}
_cache_lock = threading.Lock()


def clear_cache():
    """Forget parsed files (they are cached by path, size and modification time)."""
    with _cache_lock:
        _cache.clear()


def _cached(path, key, fn):
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"dataset file not found: {path}") from None
    k = (str(path.resolve()), st.st_size, st.st_mtime_ns, key)
    with _cache_lock:
        hit = _cache.get(k)
    if hit is not None:
        return hit
    value = fn()
    with _cache_lock:
        _cache[k] = value
    return value


def read_payload(path, file_md5=None) -> bytes:
    """The file's bytes, gunzipped if they start with the gzip magic number. ``file_md5``: the
    expected MD5 of the file as stored (checked before decompressing)."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if file_md5 is not None:
        got = hashlib.md5(raw).hexdigest()
        if got != file_md5.lower():
            raise ChecksumError(f"{path}: MD5 of the file is {got}, expected {file_md5}; the file is corrupted, "
                                f"truncated or not the right file. Delete it (and download it again).")
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise DatasetFileError(f"{path}: corrupted or truncated gzip data ({e})") from None
    return raw


def _check_sha256(path, payload, sha256):
    if sha256 is None:
        return
    got = hashlib.sha256(payload).hexdigest()
    if got != sha256.lower():
        raise ChecksumError(f"{path}: SHA-256 of the data is {got}, expected {sha256}; the file is corrupted or "
                            f"not the right file. Delete it (and download it again).")


def parse_idx(payload: bytes, path="<bytes>", expected_magic=None, expected_shape=None):
    """Decode an IDX payload into an ndarray (native byte order)."""
    if len(payload) < 4:
        raise DatasetFileError(f"{path}: too short for an IDX file ({len(payload)} bytes)")
    if payload[0] != 0 or payload[1] != 0:
        raise DatasetFileError(f"{path}: not an IDX file (the first two bytes are {payload[0]:#04x} "
                               f"{payload[1]:#04x}, expected 0x00 0x00)")
    magic = int.from_bytes(payload[:4], "big")
    code, ndim = payload[2], payload[3]
    if expected_magic is not None and magic != expected_magic:
        raise DatasetFileError(f"{path}: wrong IDX magic number {magic} (expected {expected_magic}); "
                               f"is this the right file?")
    if code not in _IDX_DTYPES:
        raise DatasetFileError(f"{path}: unknown IDX data type code {code:#04x}")
    if ndim == 0:
        raise DatasetFileError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise DatasetFileError(f"{path}: truncated IDX header ({len(payload)} bytes, need {header})")
    shape = tuple(int.from_bytes(payload[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if expected_shape is not None:
        for i, (got, want) in enumerate(zip(shape, expected_shape)):
            if want is not None and got != want:
                raise DatasetFileError(f"{path}: IDX dimension {i} is {got}, expected {want} (shape {shape})")
        if len(shape) != len(expected_shape):
            raise DatasetFileError(f"{path}: IDX file has {len(shape)} dimensions {shape}, expected "
                                   f"{len(expected_shape)}")
    dtype = _IDX_DTYPES[code]
    need = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(payload) < need:
        raise DatasetFileError(f"{path}: truncated IDX data: header declares shape {shape} ({need} bytes) but "
                               f"the file holds {len(payload)} bytes")
    if len(payload) > need:
        raise DatasetFileError(f"{path}: {len(payload) - need} unexpected trailing bytes after the IDX data "
                               f"of shape {shape}")
    arr = np.frombuffer(payload, dtype=dtype, offset=header)
    return arr.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path, expected_magic=None, expected_shape=None, sha256=None, file_md5=None):
    """Read an IDX file (``.gz`` or raw). ``sha256``: expected digest of the uncompressed data;
    ``file_md5``: of the file as stored. The result is cached and read-only."""
    def load():
        payload = read_payload(path, file_md5)
        a = parse_idx(payload, path, expected_magic, expected_shape)
        _check_sha256(path, payload, sha256)
        a.flags.writeable = False
        return a
    return _cached(path, ("idx", expected_magic, expected_shape, sha256, file_md5), load)


CIFAR_IMAGE_BYTES = 3 * 32 * 32


def read_cifar_bin(path, label_bytes=1, expected_records=None, sha256=None, num_classes=None):
    """Read a CIFAR binary batch: ``(images (N, 32, 32, 3) uint8 HWC, labels (N, label_bytes))``.

    ``label_bytes`` is 1 for CIFAR-10 and 2 (coarse, fine) for CIFAR-100. Cached, read-only.
    """
    def load():
        payload = read_payload(path)
        rec = label_bytes + CIFAR_IMAGE_BYTES
        if len(payload) == 0 or len(payload) % rec:
            raise DatasetFileError(f"{path}: {len(payload)} bytes is not a whole number of {rec}-byte CIFAR records "
                                   f"(truncated or not a CIFAR binary file)")
        n = len(payload) // rec
        if expected_records is not None and n != expected_records:
            raise DatasetFileError(f"{path}: holds {n} CIFAR records, expected {expected_records}")
        _check_sha256(path, payload, sha256)
        recs = np.frombuffer(payload, dtype=np.uint8).reshape(n, rec)
        labels = recs[:, :label_bytes].astype(np.int64)
        if num_classes is not None:
            for k, nc in enumerate(num_classes if isinstance(num_classes, (tuple, list)) else [num_classes]):
                bad = labels[:, k] >= nc
                if bad.any():
                    i = int(np.argmax(bad))
                    raise DatasetFileError(f"{path}: record {i} has label {labels[i, k]} (expected < {nc}); the file "
                                           f"is corrupted or not a CIFAR-{nc if nc in (10, 100) else ''} batch")
        images = np.ascontiguousarray(recs[:, label_bytes:].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1))
        images.flags.writeable = False
        labels.flags.writeable = False
        return images, labels
    return _cached(path, ("cifar", label_bytes, expected_records, sha256, str(num_classes)), load)


def read_text(path, sha256=None, encoding="utf-8") -> str:
    def load():
        payload = read_payload(path)
        _check_sha256(path, payload, sha256)
        try:
            return payload.decode(encoding)
        except UnicodeDecodeError as e:
            raise DatasetFileError(f"{path}: not valid {encoding} text ({e})") from None
    return _cached(path, ("text", sha256, encoding), load)


def file_size(path) -> int:
    return os.stat(path).st_size
