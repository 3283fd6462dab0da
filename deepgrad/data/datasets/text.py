"""Tiny Shakespeare, character level (Karpathy's char-rnn corpus, 1,115,394 characters).

The vocabulary is the sorted set of characters of the whole text (65 of them), so the train and
validation splits share it; ``encode``/``decode`` map strings to int64 ids and back. The first
``train_fraction`` (0.9) of the text is the training split, the rest validation. Sample ``i`` is
``(x, y)``: ``x = ids[s:s + seq_len]`` and ``y = ids[s + 1:s + seq_len + 1]`` (the next character
at every position) with ``s = i * stride`` (``stride`` defaults to ``seq_len``: non-overlapping
windows; ``stride=1`` gives every window).

The file (plain or gzip) may hold at most ``max_bytes`` bytes, as stored and decompressed (default
``deepgrad.data.datasets._formats.MAX_TEXT_BYTES``, 256 MiB, or ``$DEEPGRAD_MAX_TEXT_BYTES``).
"""
from __future__ import annotations

import os

import numpy as np

from ..._files import check_alloc
from ..dataset import Dataset
from . import _download, _formats, _paths

__all__ = ["TinyShakespeare", "CharVocab"]


class CharVocab:
    """A character vocabulary: ``encode(str) -> int64 array``, ``decode(ids) -> str``."""

    def __init__(self, chars):
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.itos = dict(enumerate(self.chars))
        self._table = None
        self._cps = None
        if all(ord(c) < 256 for c in self.chars):
            table = np.full(256, -1, dtype=np.int64)
            for i, c in enumerate(self.chars):
                table[ord(c)] = i
            self._table = table

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.chars)

    def encode(self, text) -> np.ndarray:
        if self._table is not None and text.isascii():
            ids = self._table[np.frombuffer(text.encode("latin-1"), dtype=np.uint8)]
            if ids.size and ids.min() < 0:
                bad = text[int(np.argmax(ids < 0))]
                raise KeyError(f"encode: character {bad!r} is not in the vocabulary")
            return ids
        # any text: code points (4 bytes each) looked up among the vocabulary's sorted code points,
        # never a Python list of one object per character
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        if self._cps is None:
            order = sorted(range(len(self.chars)), key=lambda i: ord(self.chars[i]) if len(self.chars[i]) == 1 else -1)
            self._cps = (np.array([ord(self.chars[i]) if len(self.chars[i]) == 1 else 0xFFFFFFFF for i in order],
                                  dtype=np.uint32), np.array(order, dtype=np.int64))
        keys, ids = self._cps
        pos = np.searchsorted(keys, cps)
        pos_c = np.minimum(pos, max(len(keys) - 1, 0))
        ok = (pos < len(keys)) & (keys[pos_c] == cps) if len(keys) else np.zeros(len(cps), bool)
        if not ok.all():
            bad = text[int(np.argmin(ok))]
            raise KeyError(f"encode: character {bad!r} is not in the vocabulary")
        return ids[pos_c]

    def decode(self, ids) -> str:
        if hasattr(ids, "array"):
            ids = ids.array
        ids = np.asarray(ids).reshape(-1)
        return "".join(self.chars[int(i)] for i in ids)


class TinyShakespeare(Dataset):
    """Character-level Tiny Shakespeare windows for next-character prediction."""

    folder = "tinyshakespeare"
    filename = "input.txt"
    url = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
    sha256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False,
                 seq_len=128, stride=None, train_fraction=0.9, verify=True, max_bytes=None):
        if seq_len < 1:
            raise ValueError(f"TinyShakespeare: seq_len must be >= 1, got {seq_len}")
        if not 0 < train_fraction < 1:
            raise ValueError(f"TinyShakespeare: train_fraction must be in (0, 1), got {train_fraction}")
        self.root = _paths.resolve_root(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.seq_len = int(seq_len)
        self.stride = int(stride) if stride is not None else self.seq_len
        if self.stride < 1:
            raise ValueError(f"TinyShakespeare: stride must be >= 1, got {stride}")
        path = self._find()
        if path is None and download:
            _download.download_url(self.url, self.root / self.folder, self.filename, sha256=self.sha256)
            path = self._find()
        if path is None:
            dirs = "\n".join(f"  {d}" for d in self._dirs())
            raise FileNotFoundError(f"TinyShakespeare: {self.filename} not found; looked in:\n{dirs}\n"
                                    f"Pass root=<folder>, set $DEEPGRAD_DATA, or use download=True.")
        self.path = path
        self.text = _formats.read_text(path, self.sha256 if verify else None, max_bytes=max_bytes)
        # the int64 ids take 8 bytes a character: bounded before they are made
        check_alloc((len(self.text),), 8, 8 * (_formats.MAX_TEXT_BYTES if max_bytes is None else int(max_bytes)),
                    path, what="character ids")
        self.vocab = CharVocab.from_text(self.text)
        ids = self.vocab.encode(self.text)
        cut = int(len(ids) * train_fraction)
        self.data = ids[:cut] if train else ids[cut:]
        self.data.flags.writeable = False
        if len(self.data) < self.seq_len + 1:
            raise ValueError(f"TinyShakespeare: the split has {len(self.data)} characters, fewer than "
                             f"seq_len + 1 = {self.seq_len + 1}")

    def _dirs(self):
        return [self.root / self.folder, self.root]

    def _find(self):
        for d in self._dirs():
            p = d / self.filename
            if p.is_file():
                return p
            if os.path.lexists(p):
                raise _formats.DatasetFileError(p, "is not a regular file; deepgrad reads dataset files only "
                                                   "from regular files")
        return None

    # vocabulary helpers
    @property
    def chars(self):
        return self.vocab.chars

    @property
    def vocab_size(self):
        return len(self.vocab)

    @property
    def stoi(self):
        return self.vocab.stoi

    @property
    def itos(self):
        return self.vocab.itos

    def encode(self, text):
        return self.vocab.encode(text)

    def decode(self, ids):
        return self.vocab.decode(ids)

    def __len__(self):
        return (len(self.data) - self.seq_len - 1) // self.stride + 1

    def __getitem__(self, index):
        n = len(self)
        index = int(index)
        if index < -n or index >= n:
            raise IndexError(f"TinyShakespeare: index {index} out of range for {n} windows")
        if index < 0:
            index += n
        s = index * self.stride
        x = self.data[s:s + self.seq_len].copy()
        y = self.data[s + 1:s + self.seq_len + 1].copy()
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def _get_batch(self, indices):
        if self.transform is not None or self.target_transform is not None:
            return None
        starts = np.asarray(indices, dtype=np.int64) * self.stride
        w = self.data[starts[:, None] + np.arange(self.seq_len + 1)]
        return w[:, :-1].copy(), w[:, 1:].copy()

    def __repr__(self):
        return (f"TinyShakespeare(split={'train' if self.train else 'val'}, chars={len(self.data)}, "
                f"vocab={self.vocab_size}, seq_len={self.seq_len}, windows={len(self)})")
