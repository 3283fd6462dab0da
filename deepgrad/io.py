"""``deepgrad.save`` / ``deepgrad.load``: state dicts and checkpoints without pickle.

A saved file is one ``.npz`` archive (a zip of ``.npy`` files, every member *stored*, uncompressed):

* every array (a Tensor's or a NumPy one) is a member ``a0.npy``, ``a1.npy``, ...;
* the member ``__deepgrad__.npy`` holds the UTF-8 JSON of the object's structure, where arrays
  appear as references (``{"__tensor__": "a3"}``) and the types JSON lacks are tagged (tuples,
  dicts with non-string keys, NumPy scalars, non-finite floats), plus the SHA-256 of every array
  member (``"sha256": {"a0": "..."}``).

Files from strangers
--------------------
:func:`load` treats every file as hostile. It never unpickles (a pickle, e.g. from ``torch.save``,
and an object array are refused with :class:`UnsafeFileError`), and it is bounded and strict:

* only a regular file is opened (a FIFO, a directory, ``/dev/zero`` behind a symlink are refused at
  once, see :func:`deepgrad._files.open_regular`), of at most :data:`MAX_FILE_BYTES`;
* the zip central directory is parsed, but only the structure record and the members it refers to
  are read, each exactly once and from non-overlapping byte ranges, so reading costs at most the
  file's size; any other member, a compressed or encrypted member, a local header that disagrees
  with the central directory, is refused;
* each ``.npy`` header is parsed here (bounded length; a numeric, bool or fixed-width string dtype,
  never object, structured or void; a shape whose size must equal the bytes the member really
  holds) before anything is allocated;
* every member's CRC-32 is checked against the zip record before use, and, in files written by
  this version, its SHA-256 against the structure record; so a flipped byte (even in a header,
  ``'<f4'`` -> ``'<f2'``) is an error, never a silently different tensor;
* the structure record is bounded in size, nesting depth and integer length and decoded by a closed
  set of tags.

Every failure is one exception type, :class:`deepgrad.FileError` (a subclass of ``ValueError`` and
``OSError``; :class:`UnsafeFileError` and ``MissingFileError`` are subclasses of it) whose message
names the file and the member. Files written by older versions (without SHA-256) still load, checked
by CRC.

Files are written atomically: into a temporary file in the destination's directory, flushed and
fsync'ed, then moved over the destination with ``os.replace``; a crash mid-write leaves the old file
as it was (and, after a hard kill, a ``.NAME.*.tmp`` file that :func:`remove_stale_tmp` deletes).
"""
from __future__ import annotations

import ast
import hashlib
import io as _io
import json
import math
import os
import re
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from . import backend
from ._files import GiB, MiB, FileError, MissingFileError, UnsafeFileError, check_alloc, open_regular
from .tensor import Tensor

__all__ = ["save", "load", "UnsafeFileError", "FileError", "MissingFileError", "atomic_write", "remove_stale_tmp"]

_STRUCT = "__deepgrad__"
_RECORD = _STRUCT + ".npy"
_FORMAT = "deepgrad.save"
_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"

#: the largest file :func:`load` reads
MAX_FILE_BYTES = 64 * GiB
#: the largest structure record (the JSON member)
MAX_RECORD_BYTES = 256 * MiB
#: the largest zip central directory (about 200,000 members)
MAX_DIRECTORY_BYTES = 16 * MiB
#: the longest ``.npy`` header (deepgrad writes about 120 bytes)
MAX_NPY_HEADER = 1 << 16
#: the deepest nesting of lists/dicts in the structure record
MAX_DEPTH = 200
#: the most digits of an integer in the structure record
MAX_INT_DIGITS = 1000

_UMASK = os.umask(0o022)
os.umask(_UMASK)


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


def _process_start_time():
    """When this process started (seconds since the epoch); the import time where unknown."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])           # field 22 (starttime), counted after the ')' that ends field 2
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except Exception:   # noqa: BLE001 - not Linux
        return _IMPORTED


_IMPORTED = time.time()
_TMP_NAME = re.compile(r"^\.(?P<base>.+)\.[A-Za-z0-9_]{8}\.tmp$")


def remove_stale_tmp(directory, names=None, older_than=None):
    """Delete the temporary files that :func:`atomic_write` leaves beside a destination when the
    process is killed mid-write (``.NAME.XXXXXXXX.tmp``), for the destinations ``names`` in
    ``directory`` (all names when None), if they were last modified before ``older_than``
    (default: when this process started, so that a write in progress elsewhere is left alone).
    Only regular files are removed, never through a symlink. Returns the paths removed."""
    if older_than is None:
        older_than = _process_start_time()
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for entry in entries:
        m = _TMP_NAME.match(entry)
        if not m or (names is not None and m.group("base") not in names):
            continue
        path = os.path.join(directory, entry)
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= older_than:
                continue
            os.unlink(path)
            removed.append(path)
        except OSError:
            continue
    return removed


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


# ---- saving -------------------------------------------------------------------------------------
class _HashingWriter:
    """A write-only stream that forwards to ``fp`` and hashes what passes through."""

    def __init__(self, fp):
        self.fp = fp
        self.sha = hashlib.sha256()

    def write(self, b):
        self.sha.update(b)
        return self.fp.write(b)


_FORMATS = ("deepgrad", "safetensors", "torch")


def _format_of(f, format):
    if format is not None:
        if format not in _FORMATS:
            raise ValueError(f"deepgrad.save/load: unknown format {format!r}; expected one of {_FORMATS}")
        return format
    if not hasattr(f, "read") and not hasattr(f, "write"):
        name = os.fspath(f)
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        if name.lower().endswith(".safetensors"):
            return "safetensors"
    return None


def save(obj, f, format=None, metadata=None):
    """Save ``obj`` (a state dict: nested dicts/lists/tuples of Tensors, arrays, numbers, strings,
    None) to ``f`` (a path, written atomically, or a writable binary file object).

    ``format``: ``"deepgrad"`` (the default: the .npz format described above), ``"safetensors"``
    (the default for a path ending in ``.safetensors``; a flat dict of tensors, with ``metadata``
    a dict of str -> str; needs ``pip install deepgrad[interop]``) or ``"torch"`` (``torch.save``'s
    zip format, which ``torch.load(weights_only=True)`` reads).

    >>> import deepgrad, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> deepgrad.save({"w": deepgrad.ones(2), "step": 3}, p)
    >>> deepgrad.load(p)["step"]
    3
    """
    from ._save_check import refuse_whole_objects
    refuse_whole_objects(obj)   # a Module/Optimizer anywhere in obj: say to save its state_dict()
    fmt = _format_of(f, format)
    if metadata is not None and fmt != "safetensors":
        raise ValueError("deepgrad.save: metadata= is for format='safetensors' (a .safetensors file)")
    if fmt in ("safetensors", "torch"):
        if fmt == "safetensors":
            from ._safetensors import save_safetensors
            blob = save_safetensors(obj, f, metadata)

            def write_other(fh):
                fh.write(blob)
        else:
            from ._torchfile import save_torch

            def write_other(fh):
                save_torch(obj, fh)
        if hasattr(f, "write"):
            write_other(f)
        else:
            atomic_write(f, write_other)
        return
    enc = _Encoder()
    structure = enc.encode(obj)

    def write(fh):
        with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            hashes = {}
            for name, a in enc.arrays.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    hw = _HashingWriter(member)
                    np.lib.format.write_array(hw, a, allow_pickle=False)
                hashes[name] = hw.sha.hexdigest()
            header = {"format": _FORMAT, "version": _VERSION, "obj": structure, "sha256": hashes}
            blob = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
            with zf.open(_RECORD, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.frombuffer(blob, dtype=np.uint8), allow_pickle=False)

    if hasattr(f, "write"):
        write(f)
    else:
        atomic_write(f, write)


# ---- loading: the zip container ---------------------------------------------------------------
_LOCAL = struct.Struct("<4s5H3L2H")


def _bad(source, message, member=None):
    return FileError(source, message, member)


def _check_directory(fh, source):
    """Bound the central directory before zipfile parses it (its entries cost ~10x their bytes)."""
    try:
        end = zipfile._EndRecData(fh)
    except Exception as e:   # noqa: BLE001 - a crafted end record: any failure is a corrupt file
        raise _bad(source, f"is not a readable zip archive ({type(e).__name__}: {e})") from None
    if not end:
        raise _bad(source, "is not a zip archive (no end-of-central-directory record; truncated?)")
    size = end[zipfile._ECD_SIZE]
    if size > MAX_DIRECTORY_BYTES:
        raise _bad(source, f"has a zip central directory of {size:,} bytes, more than the "
                           f"{MAX_DIRECTORY_BYTES:,} a deepgrad file may have")


def _read_member(fh, info, source, file_size, dir_start, cap, taken, crc_zero_ok=False):
    """The raw bytes of a stored (uncompressed) member, checked against its CRC-32; ``taken``
    collects the byte ranges already read so that no two members share bytes."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise _bad(source, "is encrypted; deepgrad files are not", name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise _bad(source, f"is compressed (zip method {info.compress_type}); deepgrad writes stored "
                           "(uncompressed) members only", name)
    size = info.file_size
    if info.compress_size != size:
        raise _bad(source, f"declares {info.compress_size:,} stored bytes but {size:,} uncompressed bytes", name)
    if size > cap:
        raise _bad(source, f"is {size:,} bytes, more than the {cap:,} it may have", name)
    off = info.header_offset
    if not 0 <= off <= file_size - _LOCAL.size:
        raise _bad(source, "has a local header outside the file (truncated or corrupt)", name)
    fh.seek(off)
    sig, _, flags, method, _, _, _, _, _, nlen, elen = _LOCAL.unpack(fh.read(_LOCAL.size))
    if sig != _ZIP_MAGIC:
        raise _bad(source, "has no local header where the central directory says (corrupt)", name)
    if method != zipfile.ZIP_STORED or flags & 0x1:
        raise _bad(source, "has a local header that is compressed or encrypted, unlike deepgrad's", name)
    local_name = fh.read(nlen)
    expected = name.encode("utf-8" if flags & 0x800 else "cp437", errors="replace")
    if local_name != expected and local_name.replace(b"\\", b"/") != expected:
        raise _bad(source, f"has a local header naming {local_name[:80]!r} (corrupt)", name)
    start = off + _LOCAL.size + nlen + elen
    end = start + size
    if end > min(dir_start, file_size):
        raise _bad(source, "runs past the end of the member data (truncated or corrupt)", name)
    for lo, hi in taken:
        if off < hi and lo < end:
            raise _bad(source, "overlaps another member's bytes (a crafted archive)", name)
    taken.append((off, end))
    fh.seek(start)
    buf = bytearray(size)
    if fh.readinto(buf) != size:
        raise _bad(source, "is truncated", name)
    if zlib.crc32(buf) != info.CRC and not (crc_zero_ok and info.CRC == 0):   # torch may skip CRCs
        raise _bad(source, "fails its CRC-32 check (the file is corrupt)", name)
    return buf


# ---- loading: .npy members ----------------------------------------------------------------------
#: the array kinds a file may hold: bool, integers, floats, complex, and fixed-width byte/unicode
#: strings (plain data that deepgrad.save writes too); no object, structured or void arrays
_KINDS = "biufcSU"


def _parse_npy(buf, source, member):
    """The array in the ``.npy`` bytes ``buf`` (a bytearray: the array shares and may write it),
    refusing anything but a plain numeric/bool dtype whose declared size is exactly the data held."""
    n = len(buf)
    if n < 10 or bytes(buf[:6]) != b"\x93NUMPY":
        raise _bad(source, "is not an .npy array (bad magic)", member)
    major = buf[6]
    if major == 1:
        hlen, start = int.from_bytes(buf[8:10], "little"), 10
    elif major in (2, 3):
        if n < 12:
            raise _bad(source, "has a truncated .npy header", member)
        hlen, start = int.from_bytes(buf[8:12], "little"), 12
    else:
        raise _bad(source, f"has an unsupported .npy format version {major}.{buf[7]}", member)
    if hlen > MAX_NPY_HEADER:
        raise _bad(source, f"has an .npy header of {hlen:,} bytes, more than the {MAX_NPY_HEADER:,} allowed", member)
    if start + hlen > n:
        raise _bad(source, "has a truncated .npy header", member)
    try:
        text = bytes(buf[start:start + hlen]).decode("utf-8" if major == 3 else "latin1")
        d = ast.literal_eval(text)
    except Exception as e:   # noqa: BLE001 - SyntaxError, ValueError, MemoryError, RecursionError...
        raise _bad(source, f"has an unreadable .npy header ({type(e).__name__})", member) from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise _bad(source, "has an .npy header without exactly 'descr', 'fortran_order' and 'shape'", member)
    descr, fortran, shape = d["descr"], d["fortran_order"], d["shape"]
    if not isinstance(descr, str) or len(descr) > 16:
        raise _bad(source, f"has an unsupported .npy dtype {str(descr)[:40]!r}", member)
    try:
        dtype = np.dtype(descr)
    except Exception:   # noqa: BLE001
        raise _bad(source, f"has an unknown .npy dtype {descr!r}", member) from None
    if dtype.hasobject:
        raise UnsafeFileError(source, "contains an object array, which would need pickle (and could run code) "
                                      "to read; refused", member)
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise _bad(source, f"has the .npy dtype {descr!r}; deepgrad stores only numeric, bool and string arrays", member)
    if type(fortran) is not bool:
        raise _bad(source, "has an .npy header whose 'fortran_order' is not a bool", member)
    if not isinstance(shape, tuple) or len(shape) > 64 or any(type(s) is not int for s in shape):
        raise _bad(source, f"has an invalid .npy shape {str(shape)[:80]}", member)
    data = n - start - hlen
    nbytes = check_alloc(shape, dtype.itemsize, data, source, member)
    if nbytes != data:
        raise _bad(source, f"holds {data:,} bytes of data but its header declares {descr} {shape} "
                           f"({nbytes:,} bytes)", member)
    count = nbytes // dtype.itemsize
    if count == 0:
        return np.empty(shape, dtype=dtype)
    a = np.frombuffer(buf, dtype=dtype, count=count, offset=start + hlen)
    return a.reshape(shape, order="F" if fortran else "C")


# ---- loading: the structure record ----------------------------------------------------------
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


class _TooLong(ValueError):
    pass


def _parse_int(s):
    if len(s.lstrip("-")) > MAX_INT_DIGITS:
        raise _TooLong(f"an integer of {len(s):,} digits (more than {MAX_INT_DIGITS})")
    return int(s)


def _parse_record(raw, source):
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(source, f"has a structure record that is not UTF-8 ({e.reason} at byte {e.start})", _RECORD) from None
    bare = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    steps = (np.isin(bare, (ord("["), ord("{"))).astype(np.int64) - np.isin(bare, (ord("]"), ord("}"))))
    depth = int(np.cumsum(steps).max(initial=0))
    if depth > MAX_DEPTH:
        raise _bad(source, f"has a structure record nested {depth} levels deep (more than {MAX_DEPTH})", _RECORD)
    try:
        header = json.loads(text, parse_int=_parse_int)
    except _TooLong as e:
        raise _bad(source, f"has a structure record with {e}", _RECORD) from None
    except (ValueError, RecursionError, MemoryError, TypeError, OverflowError) as e:
        raise _bad(source, f"has an unreadable structure record ({type(e).__name__}: {str(e)[:200]})", _RECORD) from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT or "obj" not in header:
        raise _bad(source, "has no deepgrad structure record", _RECORD)
    version = header.get("version", _VERSION)
    if type(version) is not int or version < 1:
        raise _bad(source, f"has an invalid format version {str(version)[:40]!r}", _RECORD)
    if version > _VERSION:
        raise _bad(source, f"was written by a newer deepgrad (format version {version} > {_VERSION})", _RECORD)
    hashes = header.get("sha256")
    if hashes is not None and not (isinstance(hashes, dict) and all(
            isinstance(v, str) and len(v) == 64 for v in hashes.values())):
        raise _bad(source, "has a malformed 'sha256' table in its structure record", _RECORD)
    return header


_ARRAY_TAGS = ("__tensor__", "__ndarray__", "__npscalar__")


def _references(obj, source):
    """The array names the structure refers to (an iterative walk: no recursion)."""
    refs, stack = set(), [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, list):
            stack.extend(o)
        elif isinstance(o, dict):
            for tag in _ARRAY_TAGS:
                if tag in o:
                    name = o[tag]
                    if not isinstance(name, str) or not name or len(name) > 64:
                        raise _bad(source, f"refers to an invalid array name {str(name)[:40]!r}", _RECORD)
                    refs.add(name)
            stack.extend(o.values())
    return refs


def _decode(obj, arrays, source, map_location):
    def bad(msg):
        raise _bad(source, f"is not a valid deepgrad file ({msg})", _RECORD)

    def only(o, allowed):
        if not set(o) <= allowed:
            bad(f"unexpected keys {sorted(o)[:6]!r} in a tagged value")

    def dec(o):
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        if isinstance(o, list):
            return [dec(v) for v in o]
        if not isinstance(o, dict):
            bad(f"unexpected {type(o).__name__}")
        if "__tensor__" in o:
            only(o, {"__tensor__", "requires_grad"})
            rg = o.get("requires_grad", False)
            if type(rg) is not bool:
                bad("requires_grad is not a bool")
            a = arrays[o["__tensor__"]]
            if rg and a.dtype.kind not in "fc":
                bad(f"a tensor of dtype {a.dtype} cannot require grad")
            t = Tensor._make(a)
            if map_location is not None:
                t = t.to(map_location)
            if rg:
                t.requires_grad_(True)
            return t
        if "__ndarray__" in o:
            only(o, {"__ndarray__"})
            return arrays[o["__ndarray__"]]
        if "__npscalar__" in o:
            only(o, {"__npscalar__"})
            a = arrays[o["__npscalar__"]]
            if a.ndim != 0:
                bad("a NumPy scalar that is not 0-d")
            return a[()]
        if "__float__" in o:
            only(o, {"__float__"})
            v = o["__float__"]
            if v not in ("nan", "inf", "-inf"):
                bad(f"bad float {str(v)[:20]!r}")
            return float(v)
        if "__tuple__" in o:
            only(o, {"__tuple__"})
            if not isinstance(o["__tuple__"], list):
                bad("malformed tuple")
            return tuple(dec(v) for v in o["__tuple__"])
        if "__odict__" in o:
            only(o, {"__odict__"})
            items = o["__odict__"]
            if not isinstance(items, list) or not all(
                    isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in items):
                bad("malformed ordered dict record")
            return OrderedDict((k, dec(v)) for k, v in items)
        if "__dict__" in o:
            only(o, {"__dict__", "ordered"})
            items = o["__dict__"]
            if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 for p in items):
                bad("malformed dict record")
            pairs = []
            for k, v in items:
                k = dec(k)
                try:
                    hash(k)
                except TypeError:
                    bad(f"unhashable dict key of type {type(k).__name__}")
                pairs.append((k, dec(v)))
            return OrderedDict(pairs) if o.get("ordered") else dict(pairs)
        if any(k.startswith("__") for k in o):
            bad(f"unknown tag in {sorted(o)[:6]!r}")
        return {k: dec(v) for k, v in o.items()}

    return dec(obj)


# ---- loading: the public function -------------------------------------------------------------
def _read_object(f, source):
    """A seekable binary stream over a file object's content, read up to :data:`MAX_FILE_BYTES`."""
    try:
        fileno = f.fileno()
    except Exception:   # noqa: BLE001 - BytesIO and friends
        fileno = None
    if fileno is not None:
        st = os.fstat(fileno)
        if not stat.S_ISREG(st.st_mode):
            raise _bad(source, "is not a regular file (a pipe, device or socket); deepgrad reads a regular file")
    out = _io.BytesIO()
    total = 0
    while True:                      # in chunks: read(n) may allocate n bytes up front
        chunk = f.read(1 << 20)
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError("deepgrad.load: the file object must be opened in binary mode")
        if not chunk:
            break
        total += len(chunk)
        if total > MAX_FILE_BYTES:
            raise _bad(source, f"is more than the {MAX_FILE_BYTES:,} bytes a deepgrad file may have")
        out.write(chunk)
    out.seek(0)
    return out


def _load(fh, source, map_location, fmt=None):
    from . import _safetensors, _torchfile
    size = fh.seek(0, 2)
    if size > MAX_FILE_BYTES:
        raise _bad(source, f"is {size:,} bytes, more than the {MAX_FILE_BYTES:,} a deepgrad file may have")
    fh.seek(0)
    head = fh.read(16)
    fh.seek(0)
    if fmt == "safetensors" or (fmt is None and _safetensors.is_safetensors(head)):
        blob = bytearray(size)
        if fh.readinto(blob) != size:
            raise _bad(source, "changed while it was read")
        return _safetensors.load_safetensors(None, map_location, blob=blob, source=source)
    if _torchfile.is_legacy_torch(head) and fmt in (None, "torch"):
        return _torchfile.load_torch_legacy(fh, source, size, map_location)
    head = head[:4]
    last = b""
    if size:
        fh.seek(size - 1)
        last = fh.read(1)
    if head[:1] == b"\x80" or (head[:1] in b"(]}clI" and head[:1] and last == b"."):
        raise UnsafeFileError(source, "is a pickle file (for instance written by pickle.dump), and loading a "
                                      "pickle can run arbitrary code; refused. deepgrad reads its own .npz "
                                      "format (deepgrad.save), safetensors files and torch.save's checkpoints "
                                      "(through an allow-list of tensor globals).")
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_EMPTY_ZIP_MAGIC)):
        raise _bad(source, f"is not a deepgrad file (expected a .npz archive written by deepgrad.save; "
                           f"it starts with {head!r})")
    _check_directory(fh, source)
    fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
        infos = zf.infolist()
        dir_start = zf.start_dir
    except Exception as e:   # noqa: BLE001 - BadZipFile, struct.error, ValueError, UnicodeDecodeError...
        raise _bad(source, f"is a corrupt or truncated zip archive ({type(e).__name__}: {e})") from None
    by_name = {}
    for info in infos:
        if info.filename in by_name:
            raise _bad(source, "appears twice in the archive (a crafted file)", info.filename)
        by_name[info.filename] = info
    if _RECORD not in by_name and _torchfile.torch_prefix(by_name) is not None and fmt in (None, "torch"):
        taken_t = []

        def read_member(info, cap):
            return _read_member(fh, info, source, size, dir_start, cap, taken_t, crc_zero_ok=True)
        return _torchfile.load_torch_zip(fh, by_name, source, size, dir_start, map_location, read_member)
    if _RECORD not in by_name:
        if any(n.endswith(".pkl") for n in by_name):
            raise UnsafeFileError(source, "is a zip holding pickles but not in torch.save's layout (one "
                                          "PREFIX/data.pkl), and loading a pickle can run arbitrary code; refused.")
        raise _bad(source, "is an .npz archive but not one written by deepgrad.save (no structure record); "
                           "use numpy.load for plain archives")
    taken = []
    raw = _read_member(fh, by_name[_RECORD], source, size, dir_start, MAX_RECORD_BYTES, taken)
    record = _parse_npy(raw, source, _RECORD)
    if record.dtype != np.uint8 or record.ndim != 1:
        raise _bad(source, "is not a uint8 vector (the structure record)", _RECORD)
    header = _parse_record(record, source)
    refs = _references(header["obj"], source)
    extra = sorted(set(by_name) - {_RECORD} - {r + ".npy" for r in refs})
    if extra:
        raise _bad(source, f"holds {len(extra)} member(s) the structure record does not refer to "
                           f"({', '.join(repr(e) for e in extra[:3])}); deepgrad files hold no other members")
    hashes = header.get("sha256")
    arrays = {}
    for name in sorted(refs):
        member = name + ".npy"
        if member not in by_name:
            raise _bad(source, f"is not a valid deepgrad file (missing array {name!r})", _RECORD)
        buf = _read_member(fh, by_name[member], source, size, dir_start, MAX_FILE_BYTES, taken)
        if hashes is not None:
            digest = hashes.get(name)
            if digest is None:
                raise _bad(source, "has no SHA-256 in the structure record", member)
            if hashlib.sha256(buf).hexdigest() != digest:
                raise _bad(source, "fails its SHA-256 check (the file is corrupt or was altered)", member)
        arrays[name] = _parse_npy(buf, source, member)
    return _decode(header["obj"], arrays, source, map_location)


def load(f, map_location=None, weights_only=True, format=None):
    """Load what :func:`save` wrote, from a path or a readable binary file object.

    Also reads safetensors files (``format="safetensors"``, a path ending in ``.safetensors``, or
    recognised by their header) and PyTorch checkpoints written by ``torch.save`` (the zip format
    and the legacy one, recognised by their layout) through a restricted unpickler that accepts only
    the tensor-rebuilding and container globals, see :mod:`deepgrad._torchfile`.

    Never runs code from the file: any other pickle file, a pickle referring to any other global,
    or an archive holding object arrays, raises :class:`UnsafeFileError`. Any other problem with the file (missing, not a regular file, too
    large, truncated, corrupt, crafted) raises :class:`FileError` naming the file and the member;
    no other exception escapes for a bad file. ``map_location`` (a device) moves the Tensors;
    ``weights_only`` is accepted for PyTorch compatibility and is always in effect."""
    if map_location is not None:
        backend.device(map_location)          # a bad device is the caller's error, not the file's
    if hasattr(f, "read"):
        name = getattr(f, "name", None)
        source = name if isinstance(name, (str, bytes, os.PathLike)) else "<file object>"
        fh, own = _read_object(f, source), False
    else:
        source = os.fspath(f)
        fh, own = open_regular(source, "deepgrad file"), True
    try:
        return _load(fh, source, map_location, _format_of(f, format))
    except FileError:
        raise
    except (RuntimeError, ValueError) as e:
        if map_location is not None and "device" in str(e).lower() and not isinstance(e, RecursionError):
            raise
        raise _bad(source, f"is corrupt or not a deepgrad file ({type(e).__name__}: {str(e)[:300]})") from None
    except (TypeError, KeyError, IndexError, OverflowError, MemoryError, EOFError, OSError,
            struct.error, zipfile.BadZipFile, UnicodeError, AttributeError) as e:
        raise _bad(source, f"is corrupt or not a deepgrad file ({type(e).__name__}: {str(e)[:300]})") from None
    finally:
        if own:
            fh.close()
from ._safetensors import safetensors_metadata  # noqa: E402,F401  (the str -> str table of a .safetensors file)
