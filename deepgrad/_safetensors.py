"""safetensors files (Hugging Face's format) through the ``safetensors`` package's NumPy API.

A safetensors file is an 8-byte little-endian header length, a JSON header (each tensor's dtype,
shape and byte range; an optional ``"__metadata__"`` table of str -> str) and the raw bytes. The
``safetensors`` package (an optional dependency: ``pip install deepgrad[interop]``) writes and
validates it; deepgrad adds the file discipline of :mod:`deepgrad._files` (a regular file of
bounded size, every failure a :class:`FileError` naming the file and the tensor) and the dtypes
NumPy lacks (bfloat16 and float8 through ``ml_dtypes``).
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict

import numpy as np

from . import backend
from ._files import GiB, FileError, open_regular
from .tensor import Tensor

__all__ = ["save_safetensors", "load_safetensors", "safetensors_metadata", "is_safetensors"]

#: the largest safetensors file read (the whole file is read into memory)
MAX_FILE_BYTES = 64 * GiB
#: the longest JSON header (the safetensors package's own limit is 100 MB)
MAX_HEADER_BYTES = 100 * 1000 * 1000

_INSTALL = "pip install deepgrad[interop]"


def _package():
    try:
        import safetensors
        import safetensors.numpy  # noqa: F401
    except ImportError as e:
        raise ImportError(f"deepgrad: reading and writing .safetensors files needs the 'safetensors' package "
                          f"({e}); install it with: {_INSTALL}") from None
    return safetensors


def _dtypes():
    out = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
           "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
           "BOOL": np.bool_, "C64": np.complex64}
    try:
        import ml_dtypes as m
        out["BF16"] = m.bfloat16
        for tag, name in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"),
                          ("F8_E4M3FNUZ", "float8_e4m3fnuz"), ("F8_E5M2FNUZ", "float8_e5m2fnuz")):
            if hasattr(m, name):
                out[tag] = getattr(m, name)
    except ImportError:   # pragma: no cover - ml_dtypes is a dependency
        pass
    return {k: np.dtype(v) for k, v in out.items()}


def is_safetensors(head):
    """Whether the first bytes of a file look like a safetensors header (length, then ``{``)."""
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < MAX_HEADER_BYTES


# ---- writing ------------------------------------------------------------------------------------
def _flat_arrays(obj):
    if not isinstance(obj, dict):
        raise TypeError(f"deepgrad.save(format='safetensors'): a safetensors file holds a flat dict of named tensors "
                        f"(a state dict), not a {type(obj).__name__}")
    out = OrderedDict()
    for k, v in obj.items():
        if type(k) is not str:
            raise TypeError(f"deepgrad.save(format='safetensors'): key {k!r} is not a str")
        if isinstance(v, Tensor):
            a = backend.to_numpy(v.array)
        elif isinstance(v, np.ndarray) or backend.array_module(v) is not np:
            a = backend.to_numpy(v)
        else:
            raise TypeError(f"deepgrad.save(format='safetensors'): {k!r} is a {type(v).__name__}; a safetensors file "
                            "holds only tensors (put numbers and strings in metadata=, as str -> str)")
        out[k] = np.ascontiguousarray(a) if a.ndim else np.array(a, copy=True)
    return out


def save_safetensors(obj, f, metadata=None, write=None):
    """Write the flat dict of tensors ``obj`` (and ``metadata``, str -> str) as safetensors bytes."""
    st = _package()
    arrays = _flat_arrays(obj)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(type(k) is str and type(v) is str for k, v in metadata.items()):
            raise TypeError("deepgrad.save(format='safetensors'): metadata must be a dict of str -> str")
        metadata = dict(metadata)
    known = set(_dtypes().values())
    for k, a in arrays.items():
        if a.dtype not in known:
            raise TypeError(f"deepgrad.save(format='safetensors'): {k!r} has dtype {a.dtype}, which the "
                            f"safetensors format has no code for")
    try:
        blob = st.numpy.save(dict(arrays), metadata=metadata)
    except Exception as e:   # noqa: BLE001 - SafetensorError
        raise ValueError(f"deepgrad.save(format='safetensors'): {e}") from None
    return blob


# ---- reading ------------------------------------------------------------------------------------
def _header(blob, source):
    if len(blob) < 8:
        raise FileError(source, f"is {len(blob)} bytes, too short for a safetensors file")
    n = int.from_bytes(blob[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise FileError(source, f"declares a safetensors header of {n:,} bytes, more than the {MAX_HEADER_BYTES:,} "
                                "allowed", "header")
    if 8 + n > len(blob):
        raise FileError(source, f"declares a safetensors header of {n:,} bytes but holds only {len(blob) - 8:,} "
                                "(truncated)", "header")
    try:
        header = json.loads(bytes(blob[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FileError(source, f"has an unreadable safetensors header ({type(e).__name__}: {str(e)[:200]})",
                        "header") from None
    if not isinstance(header, dict):
        raise FileError(source, "has a safetensors header that is not a JSON object", "header")
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise FileError(source, "has a '__metadata__' that is not a table of str -> str", "header")
    return header


def _read_all(f, source, header_only=False):
    """The file's bytes (only the length and header when ``header_only``), size-checked first."""
    if hasattr(f, "read"):
        from .io import _read_object
        return bytearray(_read_object(f, source).getvalue())
    with open_regular(f, "safetensors file") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise FileError(source, f"is {size:,} bytes, more than the {MAX_FILE_BYTES:,} a safetensors file may have")
        if header_only and size >= 8:
            head = fh.read(8)
            n = min(int.from_bytes(head, "little"), MAX_HEADER_BYTES + 1, size - 8)
            return bytearray(head + fh.read(n))
        blob = bytearray(size)
        if fh.readinto(blob) != size:
            raise FileError(source, "changed while it was read")
        return blob


def _source(f):
    if hasattr(f, "read"):
        name = getattr(f, "name", None)
        return name if isinstance(name, (str, bytes, os.PathLike)) else "<file object>"
    return os.fspath(f)


def load_safetensors(f, map_location=None, blob=None, source=None):
    """The tensors of a safetensors file, as an ordered dict in the file's order."""
    st = _package()
    source = _source(f) if source is None else source
    blob = _read_all(f, source) if blob is None else blob
    header = _header(blob, source)
    try:
        entries = st.deserialize(bytes(blob))
    except Exception as e:   # noqa: BLE001 - SafetensorError
        raise FileError(source, f"is not a valid safetensors file ({str(e)[:300]})") from None
    types = _dtypes()
    found = {}
    for name, info in entries:
        dt = types.get(info.get("dtype"))
        if dt is None:
            raise FileError(source, f"has the dtype {str(info.get('dtype'))[:20]!r}, which deepgrad cannot hold", name)
        shape = tuple(int(s) for s in info["shape"])
        data = info["data"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dt.itemsize != len(data):
            raise FileError(source, f"holds {len(data):,} bytes for shape {shape} of {dt.name}", name)
        a = np.frombuffer(bytearray(data), dtype=dt, count=count).reshape(shape)
        t = Tensor._make(a)
        found[name] = t.to(map_location) if map_location is not None else t
    order = [k for k in header if k != "__metadata__" and k in found]
    return OrderedDict((k, found[k]) for k in order)


def safetensors_metadata(f):
    """The ``__metadata__`` table (str -> str) of a safetensors file; ``{}`` where it has none."""
    source = _source(f)
    blob = _read_all(f, source, header_only=True)
    return dict(_header(blob, source).get("__metadata__") or {})
