"""Parsers for the canonical dataset file formats, in NumPy, with strict validation.

* IDX (MNIST, Fashion-MNIST): big-endian header ``00 00 <type> <ndim>`` + ``ndim`` uint32 sizes,
  then the data; gzip-compressed or not (detected from the content).
* CIFAR "binary version": fixed-size records of label byte(s) + 3072 channel-planar pixels
  (1024 R, 1024 G, 1024 B, each 32x32 row-major); ``.bin`` or ``.bin.gz``.
* plain text (UTF-8).

Every file is read through :mod:`deepgrad._files`: regular files only (a FIFO or a symlink to
``/dev/zero`` is refused at once), sizes bounded before allocation, and gzip data decompressed with
a cap derived from what the file must hold (the IDX header's shape, the CIFAR record count), so a
compression bomb costs at most that much memory. Every error is a :class:`DatasetFileError` or
:class:`ChecksumError` (both :class:`deepgrad._files.FileError`, a ``ValueError`` and an
``OSError``) naming the file: bad gzip stream, truncated data, wrong magic number or dimensions,
sizes over the cap, and (when the expected SHA-256 of the payload is known) checksum mismatches.

Caps (module attributes, overridable per call with ``max_bytes=``): ``MAX_DATA_BYTES`` (1 GiB) for
an IDX/CIFAR payload whose size the caller does not pin down, ``MAX_TEXT_BYTES`` (256 MiB, or
``$DEEPGRAD_MAX_TEXT_BYTES``) for a text corpus.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from ..._files import FileError, GiB, MiB, MissingFileError, decompress_capped, decompress_prefix, read_bytes
from ._download import ChecksumError

__all__ = ["DatasetFileError", "ChecksumError", "read_payload", "parse_idx", "read_idx", "read_cifar_bin",
           "read_text", "read_names", "clear_cache", "MAX_DATA_BYTES", "MAX_TEXT_BYTES"]


class DatasetFileError(FileError):
    """A dataset file is malformed (truncated, corrupted, too large, or not the expected file).

    A :class:`deepgrad._files.FileError` (so also a ``ValueError`` and an ``OSError``). Raised as
    ``DatasetFileError(path, message)``; a single argument is taken as the whole message."""

    def __init__(self, path, message=None, member=None):
        if message is None:
            message, path = path, None
        super().__init__(path, message, member)
        if self.path is None:
            self.args = (message,)


class MissingDatasetFileError(DatasetFileError, MissingFileError):
    """A dataset file does not exist (also a ``FileNotFoundError``)."""


MAX_DATA_BYTES = 1 * GiB
MAX_TEXT_BYTES = int(os.environ.get("DEEPGRAD_MAX_TEXT_BYTES", 256 * MiB))

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
        real = str(path.resolve())
    except FileNotFoundError:
        raise MissingDatasetFileError(path, "dataset file not found") from None
    except OSError as e:
        raise DatasetFileError(path, f"cannot read the dataset file ({e.strerror or e})") from None
    k = (real, st.st_size, st.st_mtime_ns, key)
    with _cache_lock:
        hit = _cache.get(k)
    if hit is not None:
        return hit
    value = fn()
    with _cache_lock:
        _cache[k] = value
    return value


def _read_raw(path, max_file_bytes, file_md5=None):
    """The file's bytes as stored (regular files only, at most ``max_file_bytes``), MD5-checked."""
    raw = read_bytes(path, max_file_bytes, "dataset file")
    if file_md5 is not None:
        got = hashlib.md5(raw).hexdigest()
        if got != file_md5.lower():
            raise ChecksumError(path, f"MD5 of the file is {got}, expected {file_md5}; the file is corrupted, "
                                      f"truncated or not the right file. Delete it (and download it again).")
    return raw


def _stored_cap(cap):
    """The largest file (as stored) that can hold ``cap`` bytes of content: gzip of incompressible
    data is slightly larger than the data."""
    return cap + cap // 64 + (1 << 16)


def _is_gzip(raw):
    return raw[:2] == b"\x1f\x8b"


def _gunzip(raw, path, max_out):
    try:
        return decompress_capped(raw, max_out, path, kind="gzip")
    except DatasetFileError:
        raise
    except FileError as e:
        raise DatasetFileError(path, e.message) from None


def read_payload(path, file_md5=None, max_bytes=None) -> bytes:
    """The file's bytes, gunzipped if they start with the gzip magic number. ``file_md5``: the
    expected MD5 of the file as stored (checked before decompressing). ``max_bytes`` (default
    ``MAX_DATA_BYTES``) caps both the file and its decompressed content."""
    cap = MAX_DATA_BYTES if max_bytes is None else int(max_bytes)
    raw = _read_raw(path, cap, file_md5)
    return _gunzip(raw, path, cap) if _is_gzip(raw) else raw


def _check_sha256(path, payload, sha256):
    if sha256 is None:
        return
    got = hashlib.sha256(payload).hexdigest()
    if got != sha256.lower():
        raise ChecksumError(path, f"SHA-256 of the data is {got}, expected {sha256}; the file is corrupted or "
                                  f"not the right file. Delete it (and download it again).")


def _idx_header(payload, path, expected_magic=None, expected_shape=None):
    """Validate the IDX header at the start of ``payload``: ``(header_len, shape, dtype, nbytes)``
    where ``nbytes`` (exact integer arithmetic) is the size of the data after the header."""
    if len(payload) < 4:
        raise DatasetFileError(path, f"too short for an IDX file ({len(payload)} bytes)")
    if payload[0] != 0 or payload[1] != 0:
        raise DatasetFileError(path, f"not an IDX file (the first two bytes are {payload[0]:#04x} "
                                     f"{payload[1]:#04x}, expected 0x00 0x00)")
    magic = int.from_bytes(bytes(payload[:4]), "big")
    code, ndim = payload[2], payload[3]
    if expected_magic is not None and magic != expected_magic:
        raise DatasetFileError(path, f"wrong IDX magic number {magic} (expected {expected_magic}); "
                                     f"is this the right file?")
    if code not in _IDX_DTYPES:
        raise DatasetFileError(path, f"unknown IDX data type code {code:#04x}")
    if ndim == 0:
        raise DatasetFileError(path, "IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise DatasetFileError(path, f"truncated IDX header ({len(payload)} bytes, need {header})")
    shape = tuple(int.from_bytes(bytes(payload[4 + 4 * i:8 + 4 * i]), "big") for i in range(ndim))
    if expected_shape is not None:
        for i, (got, want) in enumerate(zip(shape, expected_shape)):
            if want is not None and got != want:
                raise DatasetFileError(path, f"IDX dimension {i} is {got}, expected {want} (shape {shape})")
        if len(shape) != len(expected_shape):
            raise DatasetFileError(path, f"IDX file has {len(shape)} dimensions {shape}, expected "
                                         f"{len(expected_shape)}")
    dtype = _IDX_DTYPES[code]
    count = 1
    for s in shape:           # Python ints: no int64 overflow, however large the dimensions
        count *= s
    return header, shape, dtype, count * dtype.itemsize


def _check_idx_size(path, shape, dtype, nbytes, cap):
    if nbytes > cap:
        raise DatasetFileError(path, f"IDX header declares shape {shape} of {dtype.name} ({nbytes:,} bytes), more "
                                     f"than the {cap:,} bytes a dataset file may hold (corrupt file?)")


def parse_idx(payload: bytes, path="<bytes>", expected_magic=None, expected_shape=None, max_bytes=None):
    """Decode an IDX payload into an ndarray (native byte order). ``max_bytes`` (default
    ``MAX_DATA_BYTES``) bounds the array the header may declare."""
    header, shape, dtype, nbytes = _idx_header(payload, path, expected_magic, expected_shape)
    _check_idx_size(path, shape, dtype, nbytes, MAX_DATA_BYTES if max_bytes is None else int(max_bytes))
    need = header + nbytes
    if len(payload) < need:
        raise DatasetFileError(path, f"truncated IDX data: header declares shape {shape} ({need:,} bytes) but "
                                     f"the file holds {len(payload):,} bytes")
    if len(payload) > need:
        raise DatasetFileError(path, f"{len(payload) - need} unexpected trailing bytes after the IDX data "
                                     f"of shape {shape}")
    arr = np.frombuffer(payload, dtype=dtype, offset=header)
    return arr.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path, expected_magic=None, expected_shape=None, sha256=None, file_md5=None, max_bytes=None):
    """Read an IDX file (``.gz`` or raw). ``sha256``: expected digest of the uncompressed data;
    ``file_md5``: of the file as stored; ``max_bytes`` (default ``MAX_DATA_BYTES``): the largest
    array the header may declare. The result is cached and read-only.

    A gzip file is decompressed in two steps: first only the header (at most 1,024 bytes), which
    is validated and gives the exact size the data must have; then the whole stream with that size
    as its cap, so a compression bomb stops at the size the header declared."""
    cap = MAX_DATA_BYTES if max_bytes is None else int(max_bytes)

    def load():
        raw = _read_raw(path, _stored_cap(cap + 4 + 4 * 255), file_md5)
        if _is_gzip(raw):
            try:
                head = decompress_prefix(raw, 4 + 4 * 255, path)
            except FileError as e:
                raise DatasetFileError(path, e.message) from None
            header, shape, dtype, nbytes = _idx_header(head, path, expected_magic, expected_shape)
            _check_idx_size(path, shape, dtype, nbytes, cap)
            payload = _gunzip(raw, path, header + nbytes)
        else:
            payload = raw
        a = parse_idx(payload, path, expected_magic, expected_shape, cap)
        _check_sha256(path, payload, sha256)
        a.flags.writeable = False
        return a
    return _cached(path, ("idx", expected_magic, expected_shape, sha256, file_md5, cap), load)


CIFAR_IMAGE_BYTES = 3 * 32 * 32


def read_cifar_bin(path, label_bytes=1, expected_records=None, sha256=None, num_classes=None, max_bytes=None):
    """Read a CIFAR binary batch: ``(images (N, 32, 32, 3) uint8 HWC, labels (N, label_bytes))``.

    ``label_bytes`` is 1 for CIFAR-10 and 2 (coarse, fine) for CIFAR-100. With
    ``expected_records`` the file may hold exactly that many records (the cap on decompression);
    otherwise at most ``max_bytes`` (default ``MAX_DATA_BYTES``). Cached, read-only.
    """
    rec = label_bytes + CIFAR_IMAGE_BYTES
    if expected_records is not None:
        cap = int(expected_records) * rec
    else:
        cap = MAX_DATA_BYTES if max_bytes is None else int(max_bytes)

    def load():
        raw = _read_raw(path, _stored_cap(cap))
        if _is_gzip(raw):
            try:
                payload = decompress_capped(raw, cap, path, kind="gzip")
            except FileError as e:
                if expected_records is not None and "more than" in e.message:
                    raise DatasetFileError(path, f"decompresses to more than the {cap:,} bytes of "
                                                 f"{expected_records} CIFAR records (corrupt file or compression "
                                                 f"bomb)") from None
                raise DatasetFileError(path, e.message) from None
        else:
            payload = raw
        if len(payload) == 0 or len(payload) % rec:
            raise DatasetFileError(path, f"{len(payload)} bytes is not a whole number of {rec}-byte CIFAR records "
                                         f"(truncated or not a CIFAR binary file)")
        n = len(payload) // rec
        if expected_records is not None and n != expected_records:
            raise DatasetFileError(path, f"holds {n} CIFAR records, expected {expected_records}")
        _check_sha256(path, payload, sha256)
        recs = np.frombuffer(payload, dtype=np.uint8).reshape(n, rec)
        labels = recs[:, :label_bytes].astype(np.int64)
        if num_classes is not None:
            for k, nc in enumerate(num_classes if isinstance(num_classes, (tuple, list)) else [num_classes]):
                bad = labels[:, k] >= nc
                if bad.any():
                    i = int(np.argmax(bad))
                    raise DatasetFileError(path, f"record {i} has label {labels[i, k]} (expected < {nc}); the file "
                                                 f"is corrupted or not a CIFAR-{nc if nc in (10, 100) else ''} batch")
        images = np.ascontiguousarray(recs[:, label_bytes:].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1))
        images.flags.writeable = False
        labels.flags.writeable = False
        return images, labels
    return _cached(path, ("cifar", label_bytes, expected_records, sha256, str(num_classes), cap), load)


def read_text(path, sha256=None, encoding="utf-8", max_bytes=None) -> str:
    """A text file (``.gz`` or plain), decoded; at most ``max_bytes`` bytes (default
    ``MAX_TEXT_BYTES``) as stored and once decompressed. Cached."""
    cap = MAX_TEXT_BYTES if max_bytes is None else int(max_bytes)

    def load():
        raw = _read_raw(path, cap)
        payload = _gunzip(raw, path, cap) if _is_gzip(raw) else raw
        del raw
        _check_sha256(path, payload, sha256)
        try:
            return payload.decode(encoding)
        except UnicodeDecodeError as e:
            raise DatasetFileError(path, f"not valid {encoding} text ({e})") from None
        except LookupError as e:
            raise ValueError(f"read_text: {e}") from None
    return _cached(path, ("text", sha256, encoding, cap), load)


def read_names(path, max_bytes=1 * MiB, encoding="utf-8"):
    """The non-empty stripped lines of a small text file of names (``batches.meta.txt``)."""
    data = read_bytes(path, max_bytes, "class-names file")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise DatasetFileError(path, f"not valid {encoding} text ({e})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def file_size(path) -> int:
    return os.stat(path).st_size
