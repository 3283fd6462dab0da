"""PyTorch checkpoints (``torch.save``'s formats) read and written without PyTorch and without
running code from the file.

Reading
-------
A ``torch.save`` file is a zip archive ``PREFIX/data.pkl`` (a pickle of the object, protocol 2)
plus one member ``PREFIX/data/KEY`` per storage (the raw bytes), ``PREFIX/byteorder`` and a few
version records. The pickle names the functions that rebuild each tensor, and a storage appears as
a *persistent id* ``("storage", <storage type>, KEY, <location>, <numel>)``.

:class:`_RestrictedUnpickler` is a subclass of :class:`pickle._Unpickler` (the pure-Python one, so
that each opcode is ours to restrict) whose ``find_class`` answers only from a fixed allow-list of
*stand-ins*: deepgrad's own functions named like torch's rebuild functions, container types and
dtype/storage-type markers. Nothing is imported and no callable from the file runs: a global off
the list raises :class:`UnsafeFileError` naming it, before anything is called. ``BUILD`` (which
would set attributes on an object) is allowed only to add a state dict's ``_metadata`` to an
``OrderedDict``.

Tensors are rebuilt from their storage by a view with the recorded offset, shape and strides,
each checked against the storage's size first (``offset + extent <= numel``, else
:class:`FileError`). Contiguous tensors are views of their storage (two tensors saved from one
storage still share memory, as in PyTorch); non-contiguous ones are copied, within a byte budget
so that a stride-0 tensor cannot blow up into a huge allocation.

The legacy (pre-1.6, non-zip) format -- a pickled magic number, protocol version and system info,
the object's pickle, the pickled list of storage keys, then each storage as an 8-byte element count
and its bytes -- is read by the same unpickler.

Writing
-------
:func:`save_torch` writes the zip format with a pickle emitted opcode by opcode here (protocol 2,
only the allow-listed globals: ``torch._utils._rebuild_tensor_v2``/``_v3``,
``_rebuild_parameter``, ``collections.OrderedDict``, the storage types and dtypes), so
``torch.load(weights_only=True)`` reads it.
"""
from __future__ import annotations

import io as _io
import math
import os
import pickle
import re
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np

from . import backend
from ._files import MiB, FileError, UnsafeFileError
from .tensor import Tensor

__all__ = ["load_torch_zip", "load_torch_legacy", "save_torch", "is_legacy_torch", "MAX_PICKLE_BYTES"]

#: the largest ``data.pkl`` read (a state dict's pickle costs ~150 bytes per tensor)
MAX_PICKLE_BYTES = 64 * MiB

try:
    import ml_dtypes as _mld
except Exception:   # pragma: no cover - ml_dtypes is a dependency
    _mld = None

# ---- dtypes ------------------------------------------------------------------------------------
_STORAGE_TYPES = {   # torch's legacy typed-storage class name -> element dtype
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_, "ComplexDoubleStorage": np.complex128,
    "ComplexFloatStorage": np.complex64,
}
_TORCH_DTYPES = {   # the names torch pickles its dtypes under ("torch", NAME)
    "float64": np.float64, "double": np.float64, "float32": np.float32, "float": np.float32,
    "float16": np.float16, "half": np.float16, "int64": np.int64, "long": np.int64, "int32": np.int32,
    "int": np.int32, "int16": np.int16, "short": np.int16, "int8": np.int8, "uint8": np.uint8,
    "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_,
    "complex64": np.complex64, "cfloat": np.complex64, "complex128": np.complex128, "cdouble": np.complex128,
}
if _mld is not None:
    _STORAGE_TYPES["BFloat16Storage"] = _mld.bfloat16
    _TORCH_DTYPES["bfloat16"] = _mld.bfloat16
    for _n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
        if hasattr(_mld, _n):
            _TORCH_DTYPES[_n] = getattr(_mld, _n)
_STORAGE_TYPES = {k: np.dtype(v) for k, v in _STORAGE_TYPES.items()}
_TORCH_DTYPES = {k: np.dtype(v) for k, v in _TORCH_DTYPES.items()}

_CANONICAL = {"float64": "float64", "float32": "float32", "float16": "float16", "int64": "int64",
              "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16",
              "uint32": "uint32", "uint64": "uint64", "bool": "bool", "complex64": "complex64",
              "complex128": "complex128", "bfloat16": "bfloat16", "float8_e4m3fn": "float8_e4m3fn",
              "float8_e5m2": "float8_e5m2", "float8_e4m3fnuz": "float8_e4m3fnuz", "float8_e5m2fnuz": "float8_e5m2fnuz"}
#: dtype name -> the legacy storage class torch pickles it with (the others: UntypedStorage + dtype)
_WRITE_STORAGE = {np.dtype(v).name: k for k, v in _STORAGE_TYPES.items()}


class _Refused(Exception):
    """Raised inside the unpickler for a file that is malformed (turned into FileError)."""


# ---- the stand-ins the allow-list hands out ------------------------------------------------------
class _StorageType:
    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype      # dtype None: UntypedStorage (bytes)


class _DType:
    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype


class _TypeMarker:
    """torch.Tensor / torch.nn.Parameter as the type argument of ``_rebuild_from_type_v2``."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


class _Storage:
    __slots__ = ("key", "stype", "numel", "dtype")

    def __init__(self, key, stype, numel):
        self.key, self.stype, self.numel = key, stype, numel
        self.dtype = stype.dtype if stype.dtype is not None else np.dtype(np.uint8)


def _check_int(v, what, lo=0):
    if type(v) is not int or v < lo:
        raise _Refused(f"{what} is {str(v)[:40]!r}, not an integer >= {lo}")
    return v


def _check_ints(v, what):
    if type(v) is not tuple or len(v) > 64:
        raise _Refused(f"{what} is a {type(v).__name__}, not a tuple of at most 64 integers")
    for x in v:
        _check_int(x, f"an entry of {what}")
    return v


class _Rebuilder:
    """The functions the allow-list maps torch's rebuild functions to; bound to one file."""

    def __init__(self, load_storage, source, scan=False):
        self.load_storage = load_storage
        self.source = source
        self.copy_budget = 0
        self.scan = scan          # only check the arguments (the legacy format's first pass)

    def tensor(self, storage, offset, size, stride, requires_grad, hooks, dtype=None, metadata=None):
        if not isinstance(storage, _Storage):
            raise _Refused(f"a tensor's storage is a {type(storage).__name__}, not a storage record")
        _check_int(offset, "a tensor's storage offset")
        size = _check_ints(tuple(size) if type(size) is list else size, "a tensor's size")
        stride = _check_ints(tuple(stride) if type(stride) is list else stride, "a tensor's stride")
        if len(size) != len(stride):
            raise _Refused(f"a tensor's size {size} and stride {stride} differ in length")
        if type(requires_grad) is not bool:
            raise _Refused("a tensor's requires_grad is not a bool")
        if hooks is not None and not (isinstance(hooks, dict) and not hooks):
            raise _Refused("a tensor carries backward hooks (code); refused")
        if dtype is None:
            if storage.stype.dtype is None:
                raise _Refused("a tensor on an untyped storage without a dtype")
            dt = storage.stype.dtype
        else:
            if not isinstance(dtype, _DType):
                raise _Refused(f"a tensor's dtype is a {type(dtype).__name__}, not a torch dtype")
            dt = dtype.dtype
        if self.scan:
            return Tensor._make(np.zeros(0, np.float32))
        elems = self.load_storage(storage, dt)             # 1-d array of the storage's elements
        numel = elems.shape[0]
        count = math.prod(size)
        if count == 0:
            if offset > numel:
                raise FileError(self.source, f"has a tensor whose storage offset {offset} is past the end of "
                                             f"its storage ({numel} elements)", f"data/{storage.key}")
            arr = np.empty(size, dtype=dt)
        else:
            extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
            if extent > numel:
                raise FileError(self.source, f"has a tensor of size {size}, stride {stride} at offset {offset} "
                                             f"that reaches element {extent - 1} of a storage of {numel} elements "
                                             f"(out of range)", f"data/{storage.key}")
            contiguous = stride == _contiguous_strides(size)
            if contiguous:
                arr = elems[offset:offset + count].reshape(size)
            else:
                nbytes = count * dt.itemsize
                self.copy_budget -= nbytes
                if self.copy_budget < 0:
                    raise FileError(self.source, f"has non-contiguous tensors that would expand to more bytes "
                                                 f"than the file holds (a tensor of size {size}, stride {stride})",
                                    f"data/{storage.key}")
                raw = elems[offset:].view(f"V{dt.itemsize}")   # (as_strided does not know ml_dtypes' types)
                view = np.lib.stride_tricks.as_strided(raw, shape=size, strides=tuple(s * dt.itemsize for s in stride),
                                                       writeable=False)
                arr = np.array(view, copy=True, order="C").view(dt)
        t = Tensor._make(arr)
        if requires_grad:
            if not backend.is_floating(arr.dtype) and arr.dtype.kind != "c":
                raise _Refused(f"a tensor of dtype {arr.dtype} cannot require grad")
            t.requires_grad_(True)
        return t

    def tensor_v2(self, storage, offset, size, stride, requires_grad, hooks, metadata=None, *rest):
        if rest:
            raise _Refused("_rebuild_tensor_v2 with too many arguments")
        return self.tensor(storage, offset, size, stride, requires_grad, hooks, None, metadata)

    def tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None, *rest):
        if rest:
            raise _Refused("_rebuild_tensor_v3 with too many arguments")
        return self.tensor(storage, offset, size, stride, requires_grad, hooks, dtype, metadata)

    def parameter(self, data, requires_grad, hooks=None, state=None, *rest):
        from .nn.parameter import Parameter
        if rest or not isinstance(data, Tensor) or type(requires_grad) is not bool:
            raise _Refused("_rebuild_parameter with unexpected arguments")
        if hooks is not None and not (isinstance(hooks, dict) and not hooks):
            raise _Refused("a parameter carries backward hooks (code); refused")
        if state not in (None, {}) and not (isinstance(state, dict) and not state):
            raise _Refused("a parameter carries extra state (attributes); refused")
        try:
            return Parameter(data, requires_grad=requires_grad)
        except (TypeError, ValueError, RuntimeError) as e:
            raise _Refused(f"a parameter that cannot be rebuilt ({e})") from None

    def from_type(self, func, new_type, args, state=None):
        if func not in (self.tensor_v2, self.tensor_v3, self.parameter) or not isinstance(new_type, _TypeMarker) \
                or type(args) is not tuple:
            raise _Refused("_rebuild_from_type_v2 with unexpected arguments")
        if state not in (None,) and not (isinstance(state, dict) and not state):
            raise _Refused("a tensor subclass carries attributes; refused")
        t = func(*args)
        if new_type.name == "Parameter" and func is not self.parameter:
            from .nn.parameter import Parameter
            t = Parameter(t, requires_grad=t.requires_grad)
        return t


def _contiguous_strides(size):
    out, acc = [], 1
    for n in reversed(size):
        out.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(out))


def _size(*args):
    if len(args) != 1:
        raise _Refused("torch.Size with unexpected arguments")
    v = tuple(args[0]) if type(args[0]) in (list, tuple) else None
    if v is None:
        raise _Refused("torch.Size of a non-sequence")
    return _check_ints(v, "a torch.Size")


def _codecs_encode(s, encoding="utf-8"):
    if type(s) is not str or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode with unexpected arguments (only bytes in latin1 are read)")
    return s.encode("latin1")


def _device(*args):
    if not args or type(args[0]) is not str or len(args) > 2:
        raise _Refused("torch.device with unexpected arguments")
    return args[0] if len(args) == 1 else f"{args[0]}:{_check_int(args[1], 'a device index')}"


def _complex(*args):
    if len(args) > 2 or any(type(a) not in (int, float) for a in args):
        raise _Refused("complex() with unexpected arguments")
    return complex(*args)


def _set(*args):
    if len(args) > 1 or (args and type(args[0]) not in (list, tuple)):
        raise _Refused("set() with unexpected arguments")
    return set(*args)


def _frozenset(*args):
    if len(args) > 1 or (args and type(args[0]) not in (list, tuple)):
        raise _Refused("frozenset() with unexpected arguments")
    return frozenset(*args)


def _bytearray(*args):
    if len(args) > 1 or (args and type(args[0]) not in (bytes,)):
        raise _Refused("bytearray() with unexpected arguments")
    return bytearray(*args)


def _ordered_dict(*args):
    if args:
        raise _Refused("OrderedDict() with arguments")
    return OrderedDict()


# ---- the unpickler -------------------------------------------------------------------------------
class _RestrictedUnpickler(pickle._Unpickler):
    """A pickle reader whose globals are only the stand-ins of :meth:`find_class`."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, stream, rebuilder, storages, source):
        super().__init__(stream, fix_imports=False, encoding="utf-8", errors="strict")
        self.rebuilder = rebuilder
        self.storages = storages          # key -> _Storage (the first record for each key)
        self.source = source
        r = rebuilder
        self._allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): r.tensor_v2,
            ("torch._utils", "_rebuild_tensor_v3"): r.tensor_v3,
            ("torch._utils", "_rebuild_parameter"): r.parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): r.parameter,
            ("torch._tensor", "_rebuild_from_type_v2"): r.from_type,
            ("torch", "Tensor"): _TypeMarker("Tensor"),
            ("torch.nn.parameter", "Parameter"): _TypeMarker("Parameter"),
            ("collections", "OrderedDict"): _ordered_dict,
            ("torch", "Size"): _size,
            ("torch", "device"): _device,
            ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage", None),
            ("_codecs", "encode"): _codecs_encode,
            ("builtins", "set"): _set, ("builtins", "frozenset"): _frozenset,
            ("builtins", "complex"): _complex, ("builtins", "bytearray"): _bytearray,
            ("__builtin__", "set"): _set, ("__builtin__", "frozenset"): _frozenset,
            ("__builtin__", "complex"): _complex, ("__builtin__", "bytearray"): _bytearray,
        }
        for name, dt in _STORAGE_TYPES.items():
            self._allowed[("torch", name)] = _StorageType(name, dt)
        for name, dt in _TORCH_DTYPES.items():
            self._allowed[("torch", name)] = _DType(name, dt)

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeFileError(self.source, f"its pickle refers to the global {module}.{name}, which is not "
                                               "on deepgrad's allow-list of tensor-rebuilding and container "
                                               "globals; refused before anything ran", "data.pkl") from None

    def persistent_load(self, pid):
        if type(pid) is not tuple or len(pid) not in (5, 6) or pid[0] != "storage":
            raise _Refused(f"an unexpected persistent id {str(pid)[:80]}")
        stype, key, location, numel = pid[1:5]
        if not isinstance(stype, _StorageType):
            raise _Refused("a storage record without a storage type")
        if type(key) is not str or not re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", key):
            raise _Refused(f"a storage key {str(key)[:40]!r}")
        if type(location) is not str:
            raise _Refused("a storage location that is not a string")
        _check_int(numel, "a storage's size")
        if len(pid) == 6 and pid[5] is not None:
            raise _Refused("a legacy storage view record (not supported)")
        known = self.storages.get(key)
        if known is None:
            self.storages[key] = known = _Storage(key, stype, numel)
        elif known.numel * known.dtype.itemsize != numel * (stype.dtype or np.dtype(np.uint8)).itemsize:
            raise FileError(self.source, f"declares storage {key!r} twice with different sizes", "data.pkl")
        return _Storage(key, stype, numel) if known.stype is not stype else known

    def _build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is OrderedDict and type(state) is dict and set(state) <= {"_metadata"} and \
                isinstance(state.get("_metadata", {}), dict):
            inst.__dict__.update(state)
            return
        raise _Refused(f"a BUILD (setting attributes) on a {type(inst).__name__}; only a state dict's "
                       "_metadata is accepted")

    dispatch[pickle.BUILD[0]] = _build


def _unpickle(stream, rebuilder, storages, source, member="data.pkl", what=""):
    try:
        return _RestrictedUnpickler(stream, rebuilder, storages, source).load()
    except FileError:
        raise
    except _Refused as e:
        raise FileError(source, f"has a {what}pickle that deepgrad does not accept: {e}", member) from None
    except RecursionError:
        raise FileError(source, f"has a {what}pickle nested too deeply", member) from None
    except Exception as e:   # noqa: BLE001 - UnpicklingError, EOFError, TypeError, struct.error, ...
        raise FileError(source, f"has a corrupt {what}pickle ({type(e).__name__}: {str(e)[:200]})", member) from None


def _elements(buf, dt, big_endian):
    """The bytes ``buf`` as a 1-d array of ``dt`` (native byte order)."""
    if len(buf) % dt.itemsize:
        return None
    if not big_endian or dt.itemsize == 1:
        return np.frombuffer(buf, dtype=dt)
    unit = dt.itemsize // 2 if dt.kind == "c" else dt.itemsize
    swapped = np.frombuffer(buf, dtype=f">u{unit}").astype(f"<u{unit}")
    return swapped.view(dt)


def _to_device(obj, map_location):
    if map_location is None:
        return obj
    if isinstance(obj, Tensor):
        return obj.to(map_location)
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, _to_device(v, map_location)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _to_device(v, map_location) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_device(v, map_location) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_device(v, map_location) for v in obj)
    return obj


# ---- reading: the zip format ---------------------------------------------------------------------
def torch_prefix(names):
    """The record prefix of a torch zip archive (``"archive"`` in ``archive/data.pkl``), or None."""
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    return pkl[0][:-len("/data.pkl")] if len(pkl) == 1 else None


def load_torch_zip(fh, by_name, source, size, dir_start, map_location, read_member):
    """The object in a torch zip checkpoint whose members are ``by_name`` (zipfile infos).
    ``read_member(info, cap, check_crc)`` returns a member's bytes (bounded, CRC-checked)."""
    prefix = torch_prefix(by_name)
    if prefix is None:
        raise FileError(source, "is not a PyTorch checkpoint (no single PREFIX/data.pkl)")
    strays = [n for n in by_name if not n.startswith(prefix + "/")]
    if strays:
        raise FileError(source, f"mixes records outside its prefix {prefix!r} into a PyTorch checkpoint", strays[0])
    big = False
    bo_name = prefix + "/byteorder"
    if bo_name in by_name:
        bo = bytes(read_member(by_name[bo_name], 16)).strip()
        if bo not in (b"little", b"big"):
            raise FileError(source, f"declares the byte order {bo[:16]!r}", "byteorder")
        big = bo == b"big"
    data = read_member(by_name[prefix + "/data.pkl"], MAX_PICKLE_BYTES)
    cache = {}

    def load_storage(storage, dt):
        member = f"data/{storage.key}"
        ck = (storage.key, dt.str)
        if ck in cache:
            return cache[ck]
        info = by_name.get(f"{prefix}/{member}")
        if info is None:
            raise FileError(source, "is missing (a storage the pickle refers to)", member)
        declared = storage.numel * storage.dtype.itemsize
        if info.file_size != declared:
            raise FileError(source, f"holds {info.file_size:,} bytes but the pickle declares a storage of "
                                    f"{storage.numel:,} x {storage.dtype.itemsize} = {declared:,} bytes", member)
        raw = cache.get(storage.key)
        if raw is None:
            raw = cache[storage.key] = read_member(info, size)
        elems = _elements(raw, dt, big)
        if elems is None:
            raise FileError(source, f"holds {len(raw):,} bytes, not a whole number of {dt.name} elements", member)
        cache[ck] = elems
        return elems

    rebuilder = _Rebuilder(load_storage, source)
    rebuilder.copy_budget = 2 * size + 64 * MiB
    obj = _unpickle(_io.BytesIO(bytes(data)), rebuilder, {}, source)
    return _to_device(obj, map_location)


# ---- reading: the legacy format ------------------------------------------------------------------
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + _LEGACY_MAGIC.to_bytes(10, "little") + b"."


def is_legacy_torch(head):
    return head.startswith(_LEGACY_HEAD)


def load_torch_legacy(fh, source, size, map_location):
    """The object in a legacy (non-zip) ``torch.save`` file, read from the seekable ``fh``.

    Two passes: the first reads the pickles with argument checks only, to learn where the object's
    pickle lies and which storages follow; the second rebuilds the object from the storage bytes."""
    fh.seek(0)
    blob = fh.read(size + 1)
    if len(blob) != size:
        raise FileError(source, "changed while it was read")
    stream = _io.BytesIO(blob)
    storages = {}
    scan = _Rebuilder(None, source, scan=True)
    member = "legacy header"
    if _unpickle(stream, scan, storages, source, member, "magic number ") != _LEGACY_MAGIC:
        raise FileError(source, "is not a legacy PyTorch file (bad magic number)", member)
    version = _unpickle(stream, scan, storages, source, member, "protocol version ")
    if version != 1001:
        raise FileError(source, f"has the unsupported legacy protocol version {str(version)[:20]!r}", member)
    info = _unpickle(stream, scan, storages, source, member, "system info ")
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise FileError(source, "was not written on a little-endian machine (not supported in the legacy format)",
                        member)
    start = stream.tell()
    _unpickle(stream, scan, storages, source, "object pickle", "")
    end = stream.tell()
    keys = _unpickle(stream, scan, {}, source, "storage keys", "")
    if type(keys) is not list or any(type(k) is not str for k in keys) or len(set(keys)) != len(keys):
        raise FileError(source, "has a malformed list of storage keys", "storage keys")
    raw = {}
    for key in keys:
        st = storages.get(key)
        if st is None:
            raise FileError(source, "is listed but no tensor refers to it", f"storage {key}")
        head = stream.read(8)
        if len(head) != 8:
            raise FileError(source, "is truncated", f"storage {key}")
        n = int.from_bytes(head, "little", signed=True)
        nbytes = n * st.dtype.itemsize
        if n != st.numel:
            raise FileError(source, f"declares {n:,} elements where the pickle says {st.numel:,}", f"storage {key}")
        if stream.tell() + nbytes > size:
            raise FileError(source, "runs past the end of the file (truncated)", f"storage {key}")
        raw[key] = bytearray(stream.read(nbytes))
    missing = sorted(set(storages) - set(raw))
    if missing:
        raise FileError(source, "is referred to by a tensor but not in the file", f"storage {missing[0]}")

    def load_storage(storage, dt):
        elems = _elements(raw[storage.key], dt, False)
        if elems is None:
            raise FileError(source, f"is not a whole number of {dt.name} elements", f"storage {storage.key}")
        return elems

    rebuilder = _Rebuilder(load_storage, source)
    rebuilder.copy_budget = 2 * size + 64 * MiB
    obj = _unpickle(_io.BytesIO(blob[start:end]), rebuilder, {}, source, "object pickle", "")
    return _to_device(obj, map_location)


# ---- writing ------------------------------------------------------------------------------------
class _PickleWriter:
    """Emits a protocol-2 pickle of containers, scalars and tensors with torch's globals."""

    def __init__(self):
        self.out = _io.BytesIO()
        self.storages = []      # (key, contiguous little-endian array)
        self._keys = {}         # id(array) -> key (one storage for one array saved twice)
        self._keep = []

    def w(self, b):
        self.out.write(b)

    def glob(self, module, name):
        self.w(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def string(self, s):
        b = s.encode("utf-8", "surrogatepass")
        self.w(b"X" + struct.pack("<I", len(b)) + b)

    def integer(self, v):
        if 0 <= v < 256:
            self.w(b"K" + bytes([v]))
        elif 0 <= v < 65536:
            self.w(b"M" + struct.pack("<H", v))
        elif -2 ** 31 <= v < 2 ** 31:
            self.w(b"J" + struct.pack("<i", v))
        else:
            enc = pickle.encode_long(v)
            if len(enc) < 256:
                self.w(b"\x8a" + bytes([len(enc)]) + enc)
            else:
                self.w(b"\x8b" + struct.pack("<i", len(enc)) + enc)

    def tuple_of(self, items, emit):
        if not items:
            self.w(b")")
            return
        if len(items) <= 3:
            for v in items:
                emit(v)
            self.w(b"\x85\x86\x87"[len(items) - 1:len(items)])
            return
        self.w(b"(")
        for v in items:
            emit(v)
        self.w(b"t")

    def ints(self, items):
        self.tuple_of(list(items), self.integer)

    def tensor(self, t, where, parameter=False):
        a = backend.to_numpy(t.array if isinstance(t, Tensor) else t)
        name = a.dtype.name
        if name not in _CANONICAL:
            raise TypeError(f"deepgrad.save(format='torch'): {where} has dtype {a.dtype}, which PyTorch has no dtype for")
        key = self._keys.get(id(a))
        if key is None:
            key = str(len(self.storages))
            self._keys[id(a)] = key
            self._keep.append(a)
            self.storages.append((key, np.ascontiguousarray(a).reshape(-1)))
        requires_grad = bool(getattr(t, "requires_grad", False))
        if parameter:
            self.glob("torch._utils", "_rebuild_parameter")
            self.w(b"(")
        legacy = _WRITE_STORAGE.get(name)
        self.glob("torch._utils", "_rebuild_tensor_v2" if legacy else "_rebuild_tensor_v3")
        self.w(b"(")
        # persistent id ("storage", storage type, key, location, numel)
        self.w(b"(")
        self.string("storage")
        if legacy:
            self.glob("torch", legacy)
            numel = a.size
        else:
            self.glob("torch.storage", "UntypedStorage")
            numel = a.size * a.dtype.itemsize
        self.string(key)
        self.string("cpu")
        self.integer(numel)
        self.w(b"tQ")
        self.integer(0)
        self.ints(a.shape)
        self.ints(_contiguous_strides(a.shape))
        self.w(b"\x88" if requires_grad and not parameter else b"\x89")
        self.glob("collections", "OrderedDict")
        self.w(b")R")
        if not legacy:
            self.glob("torch", _CANONICAL[name])
        self.w(b"tR")
        if parameter:
            self.w(b"\x88" if requires_grad else b"\x89")
            self.glob("collections", "OrderedDict")
            self.w(b")Rt" + b"R")

    def emit(self, obj, where="obj", depth=0):
        if depth > 200:
            raise ValueError(f"deepgrad.save(format='torch'): {where} is nested more than 200 levels deep")
        from .nn.parameter import Parameter
        if obj is None:
            self.w(b"N")
        elif obj is True:
            self.w(b"\x88")
        elif obj is False:
            self.w(b"\x89")
        elif isinstance(obj, Tensor):
            self.tensor(obj, where, parameter=isinstance(obj, Parameter))
        elif isinstance(obj, np.ndarray) or (not isinstance(obj, (np.generic, str, bytes, int, float, complex, list,
                                                                  tuple, dict)) and hasattr(obj, "__array__")
                                             and backend.array_module(obj) is not np):
            self.tensor(obj, where)
        elif isinstance(obj, np.generic):
            self.emit(obj.item(), where, depth)
        elif isinstance(obj, int):
            self.integer(int(obj))
        elif isinstance(obj, float):
            self.w(b"G" + struct.pack(">d", float(obj)))
        elif isinstance(obj, complex):
            self.glob("builtins", "complex")
            self.emit(obj.real, where, depth)
            self.emit(obj.imag, where, depth)
            self.w(b"\x86R")
        elif isinstance(obj, str):
            self.string(obj)
        elif isinstance(obj, (bytes, bytearray)):
            self.glob("_codecs", "encode")
            self.string(bytes(obj).decode("latin1"))
            self.string("latin1")
            self.w(b"\x86R")
        elif isinstance(obj, tuple):
            self.tuple_of(list(enumerate(obj)), lambda iv: self.emit(iv[1], f"{where}[{iv[0]}]", depth + 1))
        elif isinstance(obj, list):
            self.w(b"]")
            if obj:
                self.w(b"(")
                for i, v in enumerate(obj):
                    self.emit(v, f"{where}[{i}]", depth + 1)
                self.w(b"e")
        elif isinstance(obj, dict):
            if isinstance(obj, OrderedDict):
                self.glob("collections", "OrderedDict")
                self.w(b")R")
            else:
                self.w(b"}")
            if obj:
                self.w(b"(")
                for k, v in obj.items():
                    if not isinstance(k, (str, int, float, bool, type(None), tuple)):
                        raise TypeError(f"deepgrad.save(format='torch'): dict key {k!r} in {where} has type "
                                        f"{type(k).__name__}")
                    self.emit(k, where, depth + 1)
                    self.emit(v, f"{where}[{k!r}]", depth + 1)
                self.w(b"u")
        elif isinstance(obj, os.PathLike):
            self.string(os.fspath(obj))
        else:
            raise TypeError(f"deepgrad.save(format='torch'): cannot save {where} of type {type(obj).__name__}; "
                            "only Tensors, arrays, numbers, strings, None and lists/tuples/dicts of them")


_ALIGN = 64


def save_torch(obj, fh, prefix="archive"):
    """Write ``obj`` to the binary stream ``fh`` in ``torch.save``'s zip format."""
    pw = _PickleWriter()
    pw.w(b"\x80\x02")
    pw.emit(obj)
    pw.w(b".")
    records = [("data.pkl", pw.out.getvalue()), (".format_version", b"1"),
               (".storage_alignment", str(_ALIGN).encode()), ("byteorder", b"little")]
    for key, a in pw.storages:
        a = a if a.dtype.byteorder in "=|<" or sys.byteorder == "big" else a.astype(a.dtype.newbyteorder("<"))
        records.append((f"data/{key}", a))
    records.append(("version", b"3\n"))
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, payload in records:
            full = f"{prefix}/{name}"
            data = payload if isinstance(payload, bytes) else memoryview(payload.view(np.uint8)) \
                if payload.size else b""
            zi = zipfile.ZipInfo(full, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            nbytes = len(data) if isinstance(data, bytes) else data.nbytes
            big = nbytes >= 0xFFFFFFFF - 1024
            offset = zf.fp.tell() if hasattr(zf.fp, "tell") else zf.start_dir
            fixed = 30 + len(full.encode()) + (20 if big else 0)
            pad = (-(offset + fixed + 4)) % _ALIGN
            zi.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad     # 'FB' padding, as torch writes
            zi.file_size = nbytes
            with zf.open(zi, "w", force_zip64=big) as member:
                if nbytes:
                    member.write(data)
