"""Downloading and extracting dataset files: checksummed, atomic, and safe.

``download_url`` streams a URL (``http(s)://`` or ``file://``, via urllib) into a temporary file
in the destination folder while hashing it, checks the SHA-256 (or MD5 where that is the only
published checksum), then moves it into place with ``os.replace``: a file at the final path is
always complete. ``extract_archive`` unpacks tar/zip archives into a fresh temporary folder it
creates itself, refusing unsafe members (absolute paths, ``..``, links, devices, name clashes) and
stopping at a size cap while it streams, then moves the result into the destination without
following any symbolic link found there. Every failure is a :class:`deepgrad._files.FileError`
naming the archive and the member.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..._files import FileError, GiB, UnsafeFileError, open_regular

__all__ = ["ChecksumError", "UnsafeArchiveError", "file_digest", "check_digest", "download_url",
           "download_from_mirrors", "extract_archive", "MAX_EXTRACT_BYTES", "MAX_EXTRACT_RATIO", "MAX_EXTRACT_MEMBERS"]

_CHUNK = 1 << 20

MAX_EXTRACT_BYTES = 4 * GiB          # total bytes extract_archive may write (per call; overridable)
MAX_EXTRACT_RATIO = 100              # ... and at most this many times the archive's size,
MIN_EXTRACT_CAP = 64 * (1 << 20)     # ... but never less than this (small archives of text compress well)
MAX_EXTRACT_MEMBERS = 100_000


class _LegacyMessage:
    """Accept ``Error(path, message, member=None)`` or a single ready-made message."""

    def __init__(self, path, message=None, member=None):
        if message is None:
            message, path = path, None
        super().__init__(path, message, member)
        if self.path is None:
            self.args = (message,)


class ChecksumError(_LegacyMessage, FileError, RuntimeError):
    """A file's checksum is not the expected one (corrupted, truncated or the wrong file).
    A :class:`deepgrad._files.FileError` (``ValueError``/``OSError``); also a ``RuntimeError``,
    as it was before."""


class UnsafeArchiveError(_LegacyMessage, UnsafeFileError, RuntimeError):
    """An archive member would be written outside the extraction folder, is a link or a device,
    or the archive is over the size cap. A :class:`deepgrad._files.UnsafeFileError`."""


def file_digest(path, algorithm="sha256") -> str:
    h = hashlib.new(algorithm)
    with open_regular(path) as f:             # a FIFO or a device is refused, never read forever
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def check_digest(path, sha256=None, md5=None, actual=None):
    """Raise ChecksumError naming ``path`` unless its digest matches."""
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected is None:
            continue
        got = actual.get(algo) if actual else None
        if got is None:
            got = file_digest(path, algo)
        if got.lower() != expected.lower():
            raise ChecksumError(path, f"{algo.upper()} mismatch (expected {expected}, got {got}); the file is "
                                      f"corrupted, truncated or not the right file. Delete it and download it again.")


def _urlopen(url, timeout):
    """Open ``url`` (patched in tests; the suite never reaches the internet)."""
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http(s)/file only, checked below)


MAX_DOWNLOAD_BYTES = 8 * GiB


def download_url(url, folder, filename=None, sha256=None, md5=None, timeout=60.0, overwrite=False,
                 max_bytes=MAX_DOWNLOAD_BYTES) -> Path:
    """Fetch ``url`` into ``folder/filename`` atomically; verify the checksum before the move.
    A download larger than ``max_bytes`` (default 8 GiB; ``file:///dev/zero`` never ends) is
    stopped and removed."""
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https", "file"):
        raise ValueError(f"download_url: unsupported URL scheme {scheme!r} in {url}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    filename = filename or PurePosixPath(url.split("?", 1)[0]).name
    dest = folder / filename
    if dest.exists() and not overwrite:
        try:
            check_digest(dest, sha256, md5)
            return dest
        except ChecksumError:
            pass  # re-download over a bad copy
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    try:
        hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
        got = 0
        with os.fdopen(fd, "wb") as out, _urlopen(url, timeout) as resp:
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                got += len(chunk)
                if max_bytes is not None and got > max_bytes:
                    raise FileError(dest, f"download of {url} is larger than {max_bytes:,} bytes; stopped")
                out.write(chunk)
                for h in hashes.values():
                    h.update(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = {k: h.hexdigest() for k, h in hashes.items()}
        try:
            check_digest(tmp, sha256, md5, actual)
        except ChecksumError as e:
            raise ChecksumError(dest, f"download of {url}: {e.message}") from None
        os.replace(tmp, dest)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def download_from_mirrors(mirrors, filename, folder, sha256=None, md5=None, timeout=60.0) -> Path:
    """Try ``mirror + filename`` for each mirror in turn; raise with every mirror's error."""
    errors = []
    for m in mirrors:
        url = m if m.endswith(filename) else m.rstrip("/") + "/" + filename
        try:
            return download_url(url, folder, filename, sha256=sha256, md5=md5, timeout=timeout)
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(f"  {url}: {type(e).__name__}: {e}")
    raise RuntimeError(f"could not download {filename} into {folder}:\n" + "\n".join(errors))


# ---- extraction ---------------------------------------------------------------------------------
def _member_parts(name, archive, is_dir=False):
    """The path components of a member name, or FileError if it is unsafe or empty."""
    if "\x00" in name:
        raise UnsafeArchiveError(archive, "member name contains a NUL byte", name)
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise UnsafeArchiveError(archive, "member has an absolute path", name)
    parts = [p for p in PurePosixPath(norm).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(archive, "member would be extracted outside the destination", name)
    if not parts and not is_dir:
        raise FileError(archive, "member has an empty name", name)
    for p in parts:
        if len(p.encode("utf-8", "surrogateescape")) > 255:
            raise FileError(archive, "member has a path component longer than 255 bytes", name)
    return tuple(parts)


class _Plan:
    """Members extracted so far into the private temporary folder, checked for clashes."""

    def __init__(self, archive, max_bytes, max_member_bytes, max_members):
        self.archive, self.max_bytes, self.max_member_bytes = archive, max_bytes, max_member_bytes
        self.max_members = max_members
        self.files, self.dirs = {}, set()
        self.written = 0
        self.count = 0

    def add_dir(self, parts, name):
        self._count(name)
        self._add_parents(parts, name)

    def _add_parents(self, parts, name):
        for i in range(1, len(parts) + 1):
            p = parts[:i]
            if p in self.files:
                raise FileError(self.archive, f"name clash: {'/'.join(p)!r} is both a file and a folder", name)
            self.dirs.add(p)

    def add_file(self, parts, name, declared):
        self._count(name)
        if parts in self.dirs:
            raise FileError(self.archive, f"name clash: {'/'.join(parts)!r} is both a folder and a file", name)
        self._add_parents(parts[:-1], name)
        if declared is not None and declared > self.max_member_bytes:
            raise UnsafeArchiveError(self.archive, f"member declares {declared:,} bytes, more than the "
                                                   f"{self.max_member_bytes:,} a member may have", name)
        if declared is not None and self.written + declared > self.max_bytes:
            raise UnsafeArchiveError(self.archive, f"the archive would extract to more than {self.max_bytes:,} "
                                                   f"bytes", name)
        self.files[parts] = name

    def _count(self, name):
        self.count += 1
        if self.count > self.max_members:
            raise UnsafeArchiveError(self.archive, f"more than {self.max_members:,} members", name)

    def write(self, tmp, parts, src, name):
        """Stream ``src`` into ``tmp/parts`` (a fresh file), counting bytes against the caps."""
        target = os.path.join(tmp, *parts)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):          # a later duplicate of the same name replaces it, as tar does
            os.unlink(target)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        n = 0
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                n += len(chunk)
                self.written += len(chunk)
                if n > self.max_member_bytes:
                    raise UnsafeArchiveError(self.archive, f"member extracts to more than {self.max_member_bytes:,} "
                                                           f"bytes", name)
                if self.written > self.max_bytes:
                    raise UnsafeArchiveError(self.archive, f"the archive extracts to more than {self.max_bytes:,} "
                                                           f"bytes", name)
                out.write(chunk)


def _extract_zip(f, archive, tmp, plan, state):
    with zipfile.ZipFile(f) as z:
        infos = z.infolist()
        if len(infos) > plan.max_members:
            raise UnsafeArchiveError(archive, f"more than {plan.max_members:,} members")
        for info in infos:
            state["member"] = info.filename
            mode = (info.external_attr >> 16) & 0o170000
            if mode == 0o120000:
                raise UnsafeArchiveError(archive, "member is a symbolic link", info.filename)
            if mode and mode not in (0o100000, 0o040000):
                raise UnsafeArchiveError(archive, "member is not a regular file or folder", info.filename)
            if info.flag_bits & 0x1:
                raise FileError(archive, "member is encrypted; deepgrad does not extract encrypted archives",
                                info.filename)
            is_dir = info.is_dir()
            parts = _member_parts(info.filename, archive, is_dir)
            if is_dir:
                plan.add_dir(parts, info.filename)
                continue
            plan.add_file(parts, info.filename, info.file_size)
        for info in infos:
            if info.is_dir():
                continue
            state["member"] = info.filename
            parts = _member_parts(info.filename, archive)
            with z.open(info) as src:
                plan.write(tmp, parts, src, info.filename)


def _extract_tar(f, archive, tmp, plan, state):
    with tarfile.open(fileobj=f, mode="r:*") as tf:
        for m in tf:                      # streaming: each header is checked before the data is read
            state["member"] = m.name
            if m.issym() or m.islnk():
                raise UnsafeArchiveError(archive, f"member is a link ({m.linkname!r}); refusing to extract links",
                                         m.name)
            if not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(archive, "member is not a regular file or folder", m.name)
            parts = _member_parts(m.name, archive, m.isdir())
            if m.isdir():
                plan.add_dir(parts, m.name)
                if parts:
                    os.makedirs(os.path.join(tmp, *parts), exist_ok=True)
                continue
            plan.add_file(parts, m.name, m.size)
            src = tf.extractfile(m)
            plan.write(tmp, parts, src, m.name)
        state["member"] = None


_NOFOLLOW_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def _open_subdir(parent_fd, name, archive, rel, create):
    """A descriptor for the real folder ``name`` inside ``parent_fd`` (never through a symlink)."""
    if create:
        try:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        except FileExistsError:
            pass
    try:
        return os.open(name, _NOFOLLOW_DIR, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise UnsafeArchiveError(archive, f"{rel!r} in the destination is a symbolic link or not a folder; "
                                              f"refusing to extract through it") from None
        raise


def _move_into(tmp, dest, archive, plan):
    """Move the extracted tree into ``dest`` through folder descriptors opened with O_NOFOLLOW, so
    no symbolic link inside ``dest`` (made before or during the extraction) is followed."""
    if not (os.mkdir in os.supports_dir_fd and os.open in os.supports_dir_fd):   # pragma: no cover (Windows)
        return _move_into_lstat(tmp, dest, archive, plan)
    root = os.open(dest, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for parts in sorted(plan.dirs, key=len):
            if parts:
                fd = _walk(root, parts, archive, create=True)
                os.close(fd)
        for parts, name in plan.files.items():
            fd = _walk(root, parts[:-1], archive, create=True)
            try:
                try:
                    st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                if st is not None and stat.S_ISDIR(st.st_mode):
                    raise FileError(archive, f"{'/'.join(parts)!r} is a folder in the destination", name)
                # rename replaces a symlink at the target itself; it never writes through it
                os.replace(os.path.join(tmp, *parts), parts[-1], dst_dir_fd=fd)
            finally:
                os.close(fd)
    finally:
        os.close(root)


def _walk(root, parts, archive, create):
    fd = os.dup(root)
    for i, p in enumerate(parts):
        try:
            nfd = _open_subdir(fd, p, archive, "/".join(parts[:i + 1]), create)
        finally:
            os.close(fd)
        fd = nfd
    return fd


def _move_into_lstat(tmp, dest, archive, plan):   # pragma: no cover (platforms without dir_fd)
    for parts in sorted(plan.dirs | {p[:-1] for p in plan.files}, key=len):
        cur = Path(dest)
        for p in parts:
            cur = cur / p
            if os.path.islink(cur) or (os.path.lexists(cur) and not os.path.isdir(cur)):
                raise UnsafeArchiveError(archive, f"{str(cur)!r} is a symbolic link or not a folder")
            cur.mkdir(exist_ok=True)
    for parts in plan.files:
        os.replace(os.path.join(tmp, *parts), os.path.join(dest, *parts))


def extract_archive(archive, dest, max_bytes=None, max_member_bytes=None, max_members=None,
                    max_ratio=MAX_EXTRACT_RATIO) -> Path:
    """Extract a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip into ``dest`` safely.

    * Members with absolute paths, ``..``, an empty name, symbolic or hard links, devices or FIFOs,
      and names that are both a file and a folder are refused.
    * The archive is streamed into a fresh temporary folder created inside ``dest``, counting the
      bytes actually written: more than ``max_bytes`` in all (default: ``max_ratio`` (100) times the
      archive's size, at least 64 MiB and at most ``MAX_EXTRACT_BYTES``, 4 GiB), more than
      ``max_member_bytes`` for one member, or more than ``max_members`` members stops it, so a
      1 MB compression bomb writes at most 100 MB before it is refused (and then removed).
    * Only then is the result moved into ``dest``, through folder descriptors opened without
      following symbolic links: a symlinked folder already inside ``dest`` is never written
      through.
    * On any failure nothing is moved into ``dest`` and :class:`deepgrad._files.FileError` (or its
      subclass :class:`UnsafeArchiveError`) is raised naming the archive and the member.
    """
    archive, dest = Path(archive), Path(dest)
    max_members = MAX_EXTRACT_MEMBERS if max_members is None else int(max_members)
    state = {"member": None}
    dest.mkdir(parents=True, exist_ok=True)
    with open_regular(archive, "archive") as f:
        if max_bytes is None:
            max_bytes = MAX_EXTRACT_BYTES
            if max_ratio is not None:
                size = os.fstat(f.fileno()).st_size
                max_bytes = min(max_bytes, max(MIN_EXTRACT_CAP, int(max_ratio * size)))
        max_bytes = int(max_bytes)
        max_member_bytes = max_bytes if max_member_bytes is None else int(max_member_bytes)
        plan = _Plan(archive, max_bytes, max_member_bytes, max_members)
        tmp = tempfile.mkdtemp(dir=dest, prefix=".extract-")
        try:
            try:
                if zipfile.is_zipfile(f):
                    f.seek(0)
                    _extract_zip(f, archive, tmp, plan, state)
                else:
                    f.seek(0)
                    _extract_tar(f, archive, tmp, plan, state)
            except FileError:
                raise
            except tarfile.ReadError as e:
                if state["member"] is None and plan.count == 0:
                    raise FileError(archive, f"not a readable tar or zip archive ({e})") from None
                raise FileError(archive, f"corrupt or truncated archive ({e})", state["member"]) from None
            except (EOFError, tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error) as e:
                raise FileError(archive, f"corrupt or truncated archive ({type(e).__name__}: {e})",
                                state["member"]) from None
            except NotImplementedError as e:
                raise FileError(archive, f"unsupported archive feature ({e})", state["member"]) from None
            except RuntimeError as e:       # zipfile: encrypted member, bad password
                raise FileError(archive, f"cannot extract ({e})", state["member"]) from None
            except (OSError, ValueError, UnicodeError, MemoryError) as e:
                raise FileError(archive, f"cannot extract ({type(e).__name__}: {e})", state["member"]) from None
            try:
                _move_into(tmp, dest, archive, plan)
            except FileError:
                raise
            except OSError as e:
                raise FileError(dest, f"cannot move the extracted files of {str(archive)!r} into place "
                                      f"({e.strerror or e})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
