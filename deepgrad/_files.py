"""The one discipline for every file deepgrad reads from a user or a stranger.

Checkpoints, state dicts, datasets, archives, images and ``.npy`` inputs all go through these
helpers, so the same promises hold everywhere:

* **Regular files only.** :func:`open_regular` opens without blocking (a FIFO cannot hang us) and
  refuses anything that is not a regular file once opened (a FIFO, a device such as ``/dev/zero``
  reached through a symlink, a directory, a socket).
* **Bounded sizes.** :func:`read_bytes` refuses files larger than a cap before reading them;
  :func:`decompress_capped` streams gzip/zlib/deflate data and stops as soon as the output passes
  a cap derived from what the caller expects, so a compression bomb costs at most the cap.
* **One error type.** Every failure is a :class:`FileError` (a subclass of both ``ValueError`` and
  ``OSError``, so ``except ValueError`` and ``except OSError`` both catch it) whose message names
  the file and, where there is one, the member of an archive.
"""
from __future__ import annotations

import os
import stat
import zlib

__all__ = ["FileError", "MissingFileError", "UnsafeFileError", "open_regular", "read_bytes", "decompress_capped",
           "decompress_prefix", "check_alloc", "MiB", "GiB"]

MiB = 1 << 20
GiB = 1 << 30


class FileError(OSError, ValueError):
    """deepgrad could not read a file: missing, not a regular file, too large, corrupt, truncated,
    or not in the expected format. The message names the file (and the archive member)."""

    def __init__(self, path, message, member=None):
        self.path = None if path is None else os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
        self.member = member
        where = repr(self.path) if self.path is not None else "<file>"
        if member is not None:
            where += f" (member {member!r})"
        self.message = message
        super().__init__(f"{where}: {message}")

    def __str__(self):
        return self.args[0] if self.args else ""


class MissingFileError(FileError, FileNotFoundError):
    """The file does not exist (also a ``FileNotFoundError``)."""


class UnsafeFileError(FileError):
    """A file that could run code when loaded (a pickle, an object array) was refused."""


def open_regular(path, what="file"):
    """Open ``path`` for binary reading; it must be a regular file (after following symlinks).

    Opening uses ``O_NONBLOCK`` so that a FIFO returns at once instead of waiting for a writer;
    the descriptor is then checked with ``fstat`` (no race between check and use) and switched
    back to blocking reads.
    """
    p = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise MissingFileError(p, f"no such {what}") from None
    except IsADirectoryError:
        raise FileError(p, f"is a directory, not a {what}") from None
    except OSError as e:
        raise FileError(p, f"cannot open {what}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                    else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise FileError(p, f"is {kind}; deepgrad reads a {what} only from a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, max_bytes, what="file"):
    """The whole content of the regular file ``path``, refusing files over ``max_bytes``."""
    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise FileError(path, f"is {size:,} bytes, more than the {max_bytes:,} a {what} may have")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:   # the file grew while we read it
        raise FileError(path, f"is more than the {max_bytes:,} bytes a {what} may have")
    return data


def decompress_capped(data, max_out, path=None, member=None, kind="gzip"):
    """Decompress ``data`` (``kind``: ``"gzip"``, ``"zlib"`` or raw ``"deflate"``), streaming, and
    raise :class:`FileError` as soon as the output would exceed ``max_out`` bytes. Concatenated
    gzip members are followed, as ``gzip.decompress`` does. Truncated or corrupt streams raise
    :class:`FileError` too."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "zlib": zlib.MAX_WBITS, "deflate": -zlib.MAX_WBITS}[kind]
    out = []
    total = 0
    buf = memoryview(data)
    chunk = 1 << 16
    try:
        while True:
            d = zlib.decompressobj(wbits)
            pending = buf
            while True:
                piece = d.decompress(pending, chunk)
                total += len(piece)
                if total > max_out:
                    raise FileError(path, f"decompresses to more than {max_out:,} bytes, more than it can "
                                          f"legitimately hold (a corrupt file or a compression bomb)", member)
                out.append(piece)
                if d.eof:
                    break
                pending = d.unconsumed_tail
                if not pending and not piece:
                    raise FileError(path, f"truncated {kind} data", member)
            rest = d.unused_data
            if kind != "gzip" or not rest or not rest.lstrip(b"\x00"):
                break
            buf = memoryview(rest)
    except zlib.error as e:
        raise FileError(path, f"corrupt {kind} data ({e})", member) from None
    return b"".join(out)


def decompress_prefix(data, n, path=None, member=None, kind="gzip"):
    """The first ``n`` bytes (fewer if the stream is shorter) of the decompressed ``data``, without
    decompressing the rest: enough to read a header that says how large the whole should be.
    Concatenated gzip members are followed; a corrupt start raises :class:`FileError`, a stream
    that merely ends early returns what it has (the full read reports the truncation)."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "zlib": zlib.MAX_WBITS, "deflate": -zlib.MAX_WBITS}[kind]
    out = bytearray()
    buf = memoryview(data)
    try:
        while len(out) < n:
            d = zlib.decompressobj(wbits)
            pending = buf
            while len(out) < n:
                piece = d.decompress(pending, n - len(out))
                out += piece
                if d.eof:
                    break
                pending = d.unconsumed_tail
                if not pending and not piece:
                    return bytes(out)
            if len(out) >= n or kind != "gzip":
                break
            rest = d.unused_data
            if not rest or not rest.lstrip(b"\x00"):
                break
            buf = memoryview(rest)
    except zlib.error as e:
        raise FileError(path, f"corrupt {kind} data ({e})", member) from None
    return bytes(out)


def check_alloc(shape, itemsize, max_bytes, path=None, member=None, what="array"):
    """Refuse a declared ``shape`` whose size (in bytes, exact integer arithmetic) exceeds
    ``max_bytes`` or whose dimensions are negative; returns the number of bytes."""
    n = 1
    for s in shape:
        if not isinstance(s, int) or s < 0:
            raise FileError(path, f"declares an invalid {what} shape {tuple(shape)!r}", member)
        n *= s
    nbytes = n * int(itemsize)
    if nbytes > max_bytes:
        raise FileError(path, f"declares {what} of shape {tuple(shape)!r} ({nbytes:,} bytes), more than "
                              f"the {max_bytes:,} bytes it may have", member)
    return nbytes
