"""Byte-mutation fuzzing of the IDX and CIFAR readers (issue 10).

Every outcome must be a successful read of content identical to the original, or a
``deepgrad._files.FileError``; nothing else (no other exception type, no hang, no runaway memory).
The readers are called as the dataset classes call them: with the SHA-256 of the payload, so a
mutation that keeps the structure valid is caught by the checksum (and, for gzip, by its CRC).

``tests/data/test_loader_security.py`` runs it under hypothesis with a small budget; run this file
for a longer campaign:

    PYTHONPATH=. python tests/data/_fuzz_readers.py SECONDS
"""
from __future__ import annotations

import collections
import gzip
import hashlib
import os
import re
import sys
import tempfile
import time

import numpy as np

from deepgrad._files import FileError
from deepgrad.data import datasets as D


def _idx(a, code=0x08):
    a = np.asarray(a)
    head = bytes([0, 0, code, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


def originals():
    """name -> (file bytes, reader(path) -> result, expected result)."""
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    idx_payload = _idx(imgs)
    idx_sha = hashlib.sha256(idx_payload).hexdigest()
    n = 4
    labels = rng.integers(0, 10, n).astype(np.uint8)
    pix = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    cifar_payload = np.concatenate([labels[:, None], pix], axis=1).tobytes()
    cifar_sha = hashlib.sha256(cifar_payload).hexdigest()
    cifar_images = pix.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)

    def idx_reader(path):
        return D.read_idx(path, 2051, (None, 28, 28), sha256=idx_sha)

    def idx_reader_unverified(path):
        return D.read_idx(path)

    def cifar_reader(path):
        return D.read_cifar_bin(path, 1, n, cifar_sha, 10)

    return {
        "idx.gz": (gzip.compress(idx_payload, 6), idx_reader, imgs),
        "idx": (idx_payload, idx_reader, imgs),
        "idx-unverified.gz": (gzip.compress(idx_payload, 6), idx_reader_unverified, None),
        "cifar.gz": (gzip.compress(cifar_payload, 6), cifar_reader, (cifar_images, labels)),
        "cifar": (cifar_payload, cifar_reader, (cifar_images, labels)),
    }


def _same(got, want):
    if want is None:
        return True            # unverified: any content is a legitimate parse
    if isinstance(want, tuple):
        return np.array_equal(got[0], want[0]) and np.array_equal(got[1][:, 0], want[1])
    return np.array_equal(got, want)


def check_one(path, data, reader, want):
    """Write ``data`` to ``path``, read it; the outcome label ('ok' or 'FileError: ...'). Raises
    AssertionError for a forbidden outcome."""
    with open(path, "wb") as f:
        f.write(data)
    D.clear_cache()
    try:
        got = reader(path)
    except FileError as e:
        return "FileError: " + re.sub(r"\b[\w,-]*\d[\w,-]*\b", "#", e.message.split("(")[0].split(";")[0])[:44]
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"{type(e).__name__} escaped the reader: {e}") from e
    assert _same(got, want), "a mutated file loaded with different content"
    return "ok"


def mutate(data, rng):
    """A random mutation: flipped/set bytes, an insertion, a deletion, a truncation, or an
    extension."""
    b = bytearray(data)
    kind = rng.integers(0, 6)
    if kind <= 1 and b:
        for _ in range(int(rng.integers(1, 5))):
            i = int(rng.integers(0, len(b)))
            b[i] = int(rng.integers(0, 256)) if kind == 0 else b[i] ^ (1 << int(rng.integers(0, 8)))
    elif kind == 2:
        i = int(rng.integers(0, len(b) + 1))
        b[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
    elif kind == 3 and b:
        i = int(rng.integers(0, len(b)))
        del b[i:i + int(rng.integers(1, 9))]
    elif kind == 4:
        del b[int(rng.integers(0, len(b) + 1)):]
    else:
        b += bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
    return bytes(b)


def campaign(seconds, seed=0):
    rng = np.random.default_rng(seed)
    cases = originals()
    counts = collections.Counter()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            for name, (data, reader, want) in cases.items():
                out = check_one(os.path.join(d, name), mutate(data, rng), reader, want)
                counts[(name, out)] += 1
    return counts


if __name__ == "__main__":
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    c = campaign(secs)
    total = sum(c.values())
    print(f"{total} mutated files read in {secs:.0f} s; every outcome an identical load or a FileError")
    for (name, out), k in sorted(c.items()):
        print(f"  {name:18s} {out:55s} {k}")
