"""Downloading and extracting dataset files: checksummed, atomic, and safe.

``download_url`` streams a URL (``http(s)://`` or ``file://``, via urllib) into a temporary file
in the destination folder while hashing it, checks the SHA-256 (or MD5 where that is the only
published checksum), then moves it into place with ``os.replace``: a file at the final path is
always complete. ``extract_archive`` unpacks tar/zip archives after rejecting members that would
land outside the destination (absolute paths, ``..``, links, devices).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["ChecksumError", "UnsafeArchiveError", "file_digest", "check_digest", "download_url",
           "download_from_mirrors", "extract_archive"]

_CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """A file's checksum is not the expected one (corrupted, truncated or the wrong file)."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would be written outside the extraction folder."""


def file_digest(path, algorithm="sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
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
            raise ChecksumError(f"{path}: {algo.upper()} mismatch (expected {expected}, got {got}); the file is "
                                f"corrupted, truncated or not the right file. Delete it and download it again.")


def _urlopen(url, timeout):
    """Open ``url`` (patched in tests; the suite never reaches the internet)."""
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http(s)/file only, checked below)


def download_url(url, folder, filename=None, sha256=None, md5=None, timeout=60.0, overwrite=False) -> Path:
    """Fetch ``url`` into ``folder/filename`` atomically; verify the checksum before the move."""
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
        with os.fdopen(fd, "wb") as out, _urlopen(url, timeout) as resp:
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                for h in hashes.values():
                    h.update(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = {k: h.hexdigest() for k, h in hashes.items()}
        try:
            check_digest(tmp, sha256, md5, actual)
        except ChecksumError as e:
            raise ChecksumError(f"download of {url} -> {dest}: " + str(e).split(": ", 1)[1]) from None
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


def _check_member_name(name, archive):
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in p.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be extracted outside the destination")


def extract_archive(archive, dest) -> Path:
    """Extract a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip into ``dest`` safely.

    Every member is checked first (no absolute paths, no ``..``, no symbolic or hard links, no
    device files); nothing is written if any member is unsafe. Extraction goes into a temporary
    folder inside ``dest`` whose entries are then moved into place.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                _check_member_name(info.filename, archive)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:
                    raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link")
            tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
            try:
                z.extractall(tmp)
                _move_into(tmp, dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return dest
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as e:
        raise RuntimeError(f"{archive}: not a readable tar or zip archive ({e})") from None
    with tf:
        members = tf.getmembers()
        for m in members:
            _check_member_name(m.name, archive)
            if m.issym() or m.islnk():
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a link ({m.linkname!r}); refusing to "
                                         "extract links")
            if not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} is not a regular file or directory")
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
        try:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(tmp, members=members, **kwargs)
            _move_into(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _move_into(src_root, dest):
    for dirpath, dirnames, filenames in os.walk(src_root):
        rel = Path(dirpath).relative_to(src_root)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for f in filenames:
            os.replace(Path(dirpath) / f, dest / rel / f)
