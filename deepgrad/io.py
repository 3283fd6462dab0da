"""``deepgrad.save`` / ``deepgrad.load``: state dicts and checkpoints without pickle.

A saved file is one ``.npz`` archive (a zip of ``.npy`` files) written with ``allow_pickle=False``:

* every array (a Tensor's or a NumPy one) is an entry ``a0``, ``a1``, ...;
* the entry ``__deepgrad__`` holds the UTF-8 JSON of the object's structure, where arrays appear as
  references (``{"__tensor__": "a3"}``) and the types JSON lacks are tagged (tuples, dicts with
  non-string keys, NumPy scalars, non-finite floats).

Loading never unpickles: ``np.load(..., allow_pickle=False)`` refuses object arrays, the structure is
plain JSON decoded by a closed set of tags, and a pickle file (e.g. from ``torch.save``) is
recognised and refused with :class:`UnsafeFileError` before NumPy sees it. A file from a stranger
therefore cannot run code.

Files are written atomically: into a temporary file in the destination's directory, flushed and
fsync'ed, then moved over the destination with ``os.replace``; a crash mid-write leaves the old file
as it was.
"""
from __future__ import annotations

import io as _io
import json
import math
import os
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["save", "load", "UnsafeFileError", "atomic_write"]

_STRUCT = "__deepgrad__"
_FORMAT = "deepgrad.save"
_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


_UMASK = os.umask(0o022)
os.umask(_UMASK)


class UnsafeFileError(ValueError):
    """A file that could run code when loaded (a pickle, an object array) was refused."""


# ---- atomic writes ----------------------------------------------------------------------------
def atomic_write(path, write, mode="wb"):
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then move it over ``path``.

    If ``write`` raises (or the process dies) the previous content of ``path`` is untouched and the
    temporary file is removed (or, after a hard kill, left as a ``.tmp`` file beside it).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        try:   # mkstemp makes the file private (0600): give it the mode open() would have given it
            os.chmod(tmp, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o666 & ~_UMASK)
        except OSError:
            pass
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; not every platform can open a directory
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ---- encoding -----------------------------------------------------------------------------------
class _Encoder:
    def __init__(self):
        self.arrays = {}

    def _array(self, a, where):
        a = backend.to_numpy(a)
        if a.dtype.hasobject:
            raise TypeError(f"deepgrad.save: {where} is an object array, which cannot be saved without pickle")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = a if a.flags.c_contiguous else a.copy()  # (ascontiguousarray makes 0-d 1-d)
        return name

    def encode(self, obj, where="obj"):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, Tensor):
            out = {"__tensor__": self._array(obj.array, where)}
            if obj.requires_grad:
                out["requires_grad"] = True
            return out
        if isinstance(obj, np.ndarray) or backend.array_module(obj) is not np:
            return {"__ndarray__": self._array(obj, where)}
        if isinstance(obj, np.generic):
            return {"__npscalar__": self._array(np.asarray(obj), where)}
        if isinstance(obj, (list, tuple)):
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
            return items if type(obj) is list else {"__tuple__": items}
        if isinstance(obj, dict):
            if all(type(k) is str and not k.startswith("__") for k in obj):
                body = {k: self.encode(v, f"{where}[{k!r}]") for k, v in obj.items()}
                return body if not isinstance(obj, OrderedDict) else {"__odict__": list(body.items())}
            items = [[self._key(k, where), self.encode(v, f"{where}[{k!r}]")] for k, v in obj.items()]
            return {"__dict__": items, **({"ordered": True} if isinstance(obj, OrderedDict) else {})}
        if isinstance(obj, (os.PathLike,)):
            return os.fspath(obj)
        raise TypeError(f"deepgrad.save: cannot save {where} of type {type(obj).__name__}; "
                        "only Tensors, arrays, numbers, strings, None and lists/tuples/dicts of them")

    def _key(self, k, where):
        if k is None or isinstance(k, (bool, int, float, str)):
            return self.encode(k, where)
        if isinstance(k, tuple):
            return self.encode(k, where)
        raise TypeError(f"deepgrad.save: dict key {k!r} in {where} has type {type(k).__name__}; "
                        "keys must be str, int, float, bool, None or tuples of them")


def _decode(obj, arrays, source, map_location):
    def bad(msg):
        raise ValueError(f"deepgrad.load: {source} is not a valid deepgrad file ({msg})")

    def arr(name):
        if not isinstance(name, str) or name not in arrays:
            bad(f"missing array {name!r}")
        return arrays[name]

    def dec(o):
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        if isinstance(o, list):
            return [dec(v) for v in o]
        if not isinstance(o, dict):
            bad(f"unexpected {type(o).__name__}")
        if "__tensor__" in o:
            t = Tensor._make(arr(o["__tensor__"]))
            if map_location is not None:
                t = t.to(map_location)
            if o.get("requires_grad"):
                t.requires_grad_(True)
            return t
        if "__ndarray__" in o:
            return arr(o["__ndarray__"])
        if "__npscalar__" in o:
            return arr(o["__npscalar__"])[()]
        if "__float__" in o:
            v = o["__float__"]
            if v not in ("nan", "inf", "-inf"):
                bad(f"bad float {v!r}")
            return float(v)
        if "__tuple__" in o:
            return tuple(dec(v) for v in o["__tuple__"])
        if "__odict__" in o:
            return OrderedDict((k, dec(v)) for k, v in o["__odict__"])
        if "__dict__" in o:
            items = o["__dict__"]
            if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 for p in items):
                bad("malformed dict record")
            pairs = [(dec(k), dec(v)) for k, v in items]
            return OrderedDict(pairs) if o.get("ordered") else dict(pairs)
        if any(isinstance(k, str) and k.startswith("__") for k in o):
            bad(f"unknown tag in {sorted(o)!r}")
        return {k: dec(v) for k, v in o.items()}

    return dec(obj)


# ---- public API ---------------------------------------------------------------------------------
def save(obj, f):
    """Save ``obj`` (a state dict: nested dicts/lists/tuples of Tensors, arrays, numbers, strings,
    None) to ``f`` (a path, written atomically, or a writable binary file object).

    >>> import deepgrad, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> deepgrad.save({"w": deepgrad.ones(2), "step": 3}, p)
    >>> deepgrad.load(p)["step"]
    3
    """
    from ._save_check import refuse_whole_objects
    refuse_whole_objects(obj)   # a Module/Optimizer anywhere in obj: say to save its state_dict()
    enc = _Encoder()
    structure = enc.encode(obj)
    header = {"format": _FORMAT, "version": _VERSION, "obj": structure}
    blob = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    entries = dict(enc.arrays)
    entries[_STRUCT] = np.frombuffer(blob, dtype=np.uint8)

    if hasattr(f, "write"):
        _savez(f, entries)
    else:
        atomic_write(f, lambda fh: _savez(fh, entries))


def _savez(fh, entries):
    """``np.savez`` with every member written by ``np.lib.format.write_array(allow_pickle=False)``."""
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in entries.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)


def load(f, map_location=None, weights_only=True):
    """Load what :func:`save` wrote. Never unpickles: a pickle file, or an archive holding object
    arrays, raises :class:`UnsafeFileError` naming the file. ``map_location`` (a device) moves the
    Tensors; ``weights_only`` is accepted for PyTorch compatibility and is always in effect."""
    if hasattr(f, "read"):
        source = getattr(f, "name", "<file object>")
        data = f.read()
    else:
        source = os.fspath(f)
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"deepgrad.load: no such file: {source!r}") from None
    head = data[:4]
    if head[:1] == b"\x80" or _looks_like_pickle(data):
        raise UnsafeFileError(
            f"deepgrad.load: refused to load {source!r}: it is a pickle file (for instance written by "
            "torch.save or pickle.dump), and loading a pickle can run arbitrary code. deepgrad "
            "reads only its own .npz format (deepgrad.save).")
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_EMPTY_ZIP_MAGIC)):
        raise ValueError(f"deepgrad.load: {source!r} is not a deepgrad file (expected a .npz archive "
                         f"written by deepgrad.save; it starts with {head!r})")
    try:
        with np.load(_io.BytesIO(data), allow_pickle=False) as npz:
            names = list(npz.files)
            if _STRUCT not in names and any(n.endswith(".pkl") for n in names):
                raise UnsafeFileError(
                    f"deepgrad.load: refused to load {source!r}: it is a zip holding pickles (the format of "
                    "torch.save), and loading a pickle can run arbitrary code. Convert it with torch: "
                    "numpy arrays from state_dict() saved by deepgrad.save.")
            if _STRUCT not in names:
                raise ValueError(f"deepgrad.load: {source!r} is an .npz archive but not one written by "
                                 "deepgrad.save (no structure record); use numpy.load for plain archives")
            arrays = {n: npz[n] for n in names}
            for n, a in arrays.items():
                if not isinstance(a, np.ndarray):
                    raise ValueError(f"deepgrad.load: {source!r}: member {n!r} is not an .npy array")
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise UnsafeFileError(f"deepgrad.load: refused to load {source!r}: it contains an object array, "
                                  "which would need pickle (and could run code) to read") from None
        if str(e).startswith("deepgrad.load"):
            raise
        raise ValueError(f"deepgrad.load: {source!r} is corrupt or not a deepgrad file: {e}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise ValueError(f"deepgrad.load: {source!r} is corrupt or truncated: {e}") from None
    raw = arrays.pop(_STRUCT)
    try:
        header = json.loads(raw.astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"deepgrad.load: {source!r} has an unreadable structure record: {e}") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT or "obj" not in header:
        raise ValueError(f"deepgrad.load: {source!r} has no deepgrad structure record")
    if header.get("version", 0) > _VERSION:
        raise ValueError(f"deepgrad.load: {source!r} was written by a newer deepgrad "
                         f"(format version {header['version']} > {_VERSION})")
    return _decode(header["obj"], arrays, repr(source), map_location)


def _looks_like_pickle(data):
    """Protocol 2+ pickles start with PROTO (0x80); protocol 0-1 ones end with STOP ('.')."""
    return not data.startswith(_ZIP_MAGIC) and data[:1] in b"(]}clI" and data.endswith(b".")
