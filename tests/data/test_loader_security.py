"""A stranger's dataset file, archive, image or .npy can neither hang deepgrad nor exhaust its
memory, and every failure is a ``deepgrad._files.FileError`` naming the file (issue 10).

Each reproduction of the issue is a test here: gzip bombs for the IDX/CIFAR/text readers (peak RSS
measured in a subprocess), an archive bomb and symlink escapes for ``extract_archive``, every
archive failure type, FIFOs and ``/dev/zero`` symlinks given as dataset files, image bombs and
crafted ``.npy`` inputs for ``deepgrad predict``, and a hypothesis byte-mutation fuzz of the IDX and
CIFAR readers (``_fuzz_readers.py`` runs a longer campaign).
"""
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from deepgrad._files import FileError, UnsafeFileError
from deepgrad.data import _inputs
from deepgrad.data import datasets as D
from deepgrad.data.datasets import _download

sys.path.insert(0, str(Path(__file__).parent))
import _fuzz_readers as fuzz  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RSS_LIMIT_MB = 400
MiB = 1 << 20


# ---- helpers ------------------------------------------------------------------------------------
def _idx_header(shape, code=0x08):
    return bytes([0, 0, code, len(shape)]) + b"".join(int(s).to_bytes(4, "big") for s in shape)


_ZEROS_MEMBER = {}


def _gzip_bomb(prefix, total):
    """A gzip file (concatenated members, as gzip allows) that inflates to ``prefix`` followed by
    ``total`` zero bytes, about 1 KB per MiB of output: ~1 MB for 1 GiB."""
    chunk = 32 * MiB
    if chunk not in _ZEROS_MEMBER:
        _ZEROS_MEMBER[chunk] = gzip.compress(bytes(chunk), 9)
    first = gzip.compress(prefix + bytes(chunk), 9)
    return first + _ZEROS_MEMBER[chunk] * (total // chunk - 1)


# VmHWM (Linux) is the peak of this process image alone; ru_maxrss would also count what the
# forked parent (pytest) held before exec
_PEAK_RSS = """
def peak_rss_mb():
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


def _in_subprocess(code, timeout=120):
    """Run ``code`` in a fresh interpreter; it must set ``result``. Returns (result, peak RSS MiB)."""
    script = ("import json\nresult = None\n" + code + "\n" + _PEAK_RSS +
              "print(json.dumps({'result': result, 'rss': peak_rss_mb()}))\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                         env=env, cwd=str(REPO))
    assert out.returncode == 0, out.stderr[-3000:]
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["result"], d["rss"]


CATCH = """
from deepgrad._files import FileError
try:
    {call}
    result = ['no error', '']
except FileError as e:
    result = ['FileError', str(e)]
except BaseException as e:
    result = [type(e).__name__, str(e)]
"""


def _bomb_run(setup, call):
    (kind, msg), rss = _in_subprocess(setup + CATCH.format(call=call))
    return kind, msg, rss


def _raises_promptly(fn, timeout=15):
    """Call ``fn`` in a daemon thread: it must raise (the exception is returned) within ``timeout``."""
    box = {}

    def run():
        try:
            fn()
            box["ok"] = True
        except BaseException as e:  # noqa: BLE001
            box["exc"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "hung (a FIFO or a device was read)"
    assert "exc" in box, "no error raised"
    return box["exc"]


# ---- gzip bombs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bomb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bombs")
    (root / "mnist").mkdir()
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(_gzip_bomb(_idx_header((10000, 28, 28)), 1 << 30))
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (D.bundled_dir("mnist") / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (root / "cifar10").mkdir()
    (root / "cifar10" / "test_batch.bin.gz").write_bytes(_gzip_bomb(b"", 1 << 30))
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_bytes(_gzip_bomb(b"First Citizen:\n", 1 << 30))
    return root


def test_idx_gzip_bomb_is_bounded(bomb_root):
    """Issue: a 1 MB .gz reached 2.09 GB RSS; now the header's shape caps decompression."""
    p = bomb_root / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert p.stat().st_size < 2 * MiB
    kind, msg, rss = _bomb_run("from deepgrad.data import datasets as D\n",
                               f"D.MNIST(root={str(bomb_root)!r}, train=False)")
    assert kind == "FileError" and "t10k-images-idx3-ubyte.gz" in msg and "decompresses to more than" in msg, msg
    print(f"peak RSS {rss:.0f} MB")
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MB"


def test_idx_header_declaring_a_huge_shape(tmp_path):
    p = tmp_path / "huge-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(_idx_header((60000, 100000, 100000)) + bytes(1000)))
    with pytest.raises(D.DatasetFileError, match=r"huge-idx3-ubyte\.gz.*shape \(60000, 100000, 100000\)"):
        D.read_idx(p)
    with pytest.raises(FileError, match="more than"):
        D.read_idx(p, max_bytes=10 * MiB)


def test_cifar_gzip_bomb_is_bounded(bomb_root):
    kind, msg, rss = _bomb_run("from deepgrad.data import datasets as D\n",
                               f"D.CIFAR10(root={str(bomb_root)!r}, train=False)")
    assert kind == "FileError" and "test_batch.bin.gz" in msg and "10000 CIFAR records" in msg, msg
    print(f"peak RSS {rss:.0f} MB")
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MB"


def test_text_gzip_bomb_is_bounded(bomb_root):
    """Issue: a 1 GiB text bomb tried to allocate 8 GiB."""
    kind, msg, rss = _bomb_run("from deepgrad.data import datasets as D\n",
                               f"D.TinyShakespeare(root={str(bomb_root)!r}, verify=False)")
    assert kind == "FileError" and "input.txt" in msg and "decompresses to more than" in msg, msg
    print(f"peak RSS {rss:.0f} MB")
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MB"


def test_text_cap_is_configurable_and_checked_before_reading(tmp_path):
    d = tmp_path / "tinyshakespeare"
    d.mkdir()
    p = d / "input.txt"
    with open(p, "wb") as f:           # a sparse 2 GiB file: refused from its size, nothing read
        f.truncate(2 << 30)
    with pytest.raises(FileError, match=r"input\.txt.*more than"):
        D.TinyShakespeare(root=tmp_path, verify=False)
    p.write_bytes(b"abcdefgh" * 1000)
    with pytest.raises(FileError, match="more than the 4,000"):
        D.TinyShakespeare(root=tmp_path, verify=False, max_bytes=4000, seq_len=4)
    ts = D.TinyShakespeare(root=tmp_path, verify=False, max_bytes=8000, seq_len=4)
    assert ts.vocab_size == 8


def test_char_vocab_non_ascii_encode():
    v = D.CharVocab.from_text("héllo wörld €")
    s = "wörld € héllo"
    ids = v.encode(s)
    assert ids.dtype == np.int64 and v.decode(ids) == s
    assert ids.tolist() == [v.stoi[c] for c in s]
    with pytest.raises(KeyError, match="'x' is not in the vocabulary"):
        v.encode("héx")


def test_parse_idx_dimension_overflow_has_a_clear_message():
    """Issue: dims whose product overflows int64 gave nonsense messages."""
    payload = _idx_header((0xFFFFFFFF,) * 4) + bytes(16)
    with pytest.raises(D.DatasetFileError, match=r"shape \(4294967295, 4294967295, 4294967295, 4294967295\).*"
                                                 r"more than"):
        D.parse_idx(payload, "x.idx")
    payload = _idx_header((1 << 16, 1 << 16, 1 << 16, 1 << 16), 0x0E) + bytes(16)
    with pytest.raises(D.DatasetFileError, match=r"x\.idx.*\(65536, 65536, 65536, 65536\) of float64"):
        D.parse_idx(payload, "x.idx")


def test_cifar_meta_invalid_utf8_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(D.CIFAR10, "records_per_file", 3)
    d = tmp_path / "cifar10"
    d.mkdir()
    (d / "test_batch.bin").write_bytes(bytes(3 * 3073))
    (d / "batches.meta.txt").write_bytes(b"airplane\n\xff\xfe\xfa car\n")
    with pytest.raises(D.DatasetFileError, match=r"batches\.meta\.txt.*not valid utf-8"):
        D.CIFAR10(root=tmp_path, train=False, verify=False)


def test_download_is_capped(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(FileError, match=r"larger than 1,048,576 bytes"):
        D.download_url("file:///dev/zero", tmp_path, "z.bin", max_bytes=MiB)
    assert list(tmp_path.iterdir()) == []


def test_missing_dataset_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.gz.*not found") as e:
        D.read_idx(tmp_path / "nope.gz")
    assert isinstance(e.value, D.DatasetFileError)


def test_dataset_errors_are_file_errors():
    for cls in (D.DatasetFileError, D.ChecksumError, D.UnsafeArchiveError):
        assert issubclass(cls, FileError) and issubclass(cls, ValueError) and issubclass(cls, OSError)
    assert issubclass(D.ChecksumError, RuntimeError) and issubclass(D.UnsafeArchiveError, UnsafeFileError)
    e = D.DatasetFileError("a/b.gz", "truncated")
    assert e.path == "a/b.gz" and "b.gz" in str(e) and "truncated" in str(e)
    assert str(D.DatasetFileError("just a message")) == "just a message"


# ---- FIFOs and devices ----------------------------------------------------------------------------
def _readers():
    return {
        "read_idx": D.read_idx, "read_cifar_bin": lambda p: D.read_cifar_bin(p, 1, 10),
        "read_text": D.read_text, "read_names": D._formats.read_names,
        "read_payload": D._formats.read_payload, "extract_archive": lambda p: D.extract_archive(p, p.parent / "x"),
        "read_image": _inputs.read_image, "read_npy": _inputs.read_npy, "file_digest": D.file_digest,
    }


@pytest.mark.parametrize("reader", sorted(_readers()))
@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "/dev/urandom", "dir"])
def test_fifo_and_devices_are_refused_at_once(tmp_path, reader, target):
    p = tmp_path / "data-file.gz"
    if target == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(p)
    elif target == "dir":
        p.mkdir()
    else:
        if not os.path.exists(target):
            pytest.skip(f"no {target}")
        p.symlink_to(target)
    e = _raises_promptly(lambda: _readers()[reader](p))
    assert isinstance(e, FileError), f"{type(e).__name__}: {e}"
    assert "data-file.gz" in str(e)


def test_dataset_class_with_a_fifo_file_does_not_hang(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        os.mkfifo(d / name)
    e = _raises_promptly(lambda: D.MNIST(root=tmp_path, train=False))
    assert isinstance(e, FileError) and "t10k-images-idx3-ubyte.gz" in str(e) and "regular file" in str(e)


# ---- archives -------------------------------------------------------------------------------------
def _tar(path, members, mode="w"):
    """members: (name, bytes | None for a folder | TarInfo)."""
    with tarfile.open(path, mode) as tf:
        for name, data in members:
            if isinstance(data, tarfile.TarInfo):
                tf.addfile(data)
                continue
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _tar_bomb(path, total):
    """A .tar.gz of about 1 MB holding one member of ``total`` zero bytes."""
    info = tarfile.TarInfo("big.bin")
    info.size = total
    head = info.tobuf(tarfile.GNU_FORMAT)
    path.write_bytes(_gzip_bomb(head, total) + gzip.compress(bytes(1024)))
    return path


def test_archive_bomb_writes_a_bounded_number_of_bytes(tmp_path, monkeypatch):
    """Issue: a 1 MB archive wrote 1 GiB to disk."""
    archive = _tar_bomb(tmp_path / "bomb.tar.gz", 1 << 30)
    assert archive.stat().st_size < 2 * MiB
    peak = []
    orig = _download._Plan.write

    def spy(self, *a):
        try:
            return orig(self, *a)
        finally:
            peak.append(self.written)
    monkeypatch.setattr(_download._Plan, "write", spy)
    dest = tmp_path / "dest"
    with pytest.raises(D.UnsafeArchiveError, match=r"bomb\.tar\.gz.*big\.bin.*more than"):
        D.extract_archive(archive, dest)
    assert max(peak, default=0) <= max(_download.MIN_EXTRACT_CAP, 100 * archive.stat().st_size) + MiB
    assert list(dest.iterdir()) == []                       # the partial extraction is gone
    with pytest.raises(D.UnsafeArchiveError, match="more than the 1,048,576"):
        D.extract_archive(archive, dest, max_bytes=MiB)
    assert max(peak, default=0) <= 2 * MiB


def test_extraction_counts_the_bytes_it_writes(tmp_path):
    """The declared sizes are checked first; the bytes actually written are counted too (a
    backstop for formats whose declared size could lie)."""
    plan = _download._Plan(tmp_path / "x.tar", 10 * MiB, 2 * MiB, 10)
    plan.write(str(tmp_path), ("a",), io.BytesIO(bytes(MiB + 5)), "a")
    with pytest.raises(D.UnsafeArchiveError, match=r"'b'.*member extracts to more than 2,097,152"):
        plan.write(str(tmp_path), ("b",), io.BytesIO(bytes(5 * MiB)), "b")
    plan.written = 9 * MiB
    with pytest.raises(D.UnsafeArchiveError, match=r"'c'.*archive extracts to more than 10,485,760"):
        plan.write(str(tmp_path), ("c",), io.BytesIO(bytes(2 * MiB)), "c")
    assert plan.written <= 10 * MiB + _download._CHUNK


def test_archive_declared_sizes_refused_before_reading(tmp_path):
    archive = _tar(tmp_path / "two.tar", [("a.bin", bytes(3000)), ("b.bin", bytes(3000))])
    with pytest.raises(D.UnsafeArchiveError, match=r"two\.tar.*'b\.bin'.*more than 5,000"):
        D.extract_archive(archive, tmp_path / "d", max_bytes=5000)
    with pytest.raises(D.UnsafeArchiveError, match=r"'a\.bin'.*member declares"):
        D.extract_archive(archive, tmp_path / "d", max_member_bytes=1000)
    with pytest.raises(D.UnsafeArchiveError, match="more than 1 members"):
        D.extract_archive(archive, tmp_path / "d", max_members=1)
    D.extract_archive(archive, tmp_path / "d")
    assert (tmp_path / "d" / "b.bin").stat().st_size == 3000


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_extract_does_not_write_through_a_symlinked_folder_in_dest(tmp_path, fmt):
    """Issue: extraction wrote through a symlinked directory already inside the destination."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    if fmt == "tar":
        archive = _tar(tmp_path / "a.tar", [("sub/x.txt", b"pwned")])
    else:
        archive = tmp_path / "a.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("sub/x.txt", "pwned")
    with pytest.raises(D.UnsafeArchiveError, match="symbolic link"):
        D.extract_archive(archive, dest)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in dest.iterdir()) == ["sub"]          # no temporary folder left


def test_extract_replaces_a_symlinked_file_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    dest = tmp_path / "dest"
    (dest / "d").mkdir(parents=True)
    (dest / "d" / "f.txt").symlink_to(target)
    D.extract_archive(_tar(tmp_path / "a.tar", [("d/f.txt", b"new")]), dest)
    assert target.read_text() == "keep me"
    assert not (dest / "d" / "f.txt").is_symlink() and (dest / "d" / "f.txt").read_text() == "new"


def test_extract_deep_symlink_component(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    (dest / "a" / "b").mkdir(parents=True)
    (dest / "a" / "b" / "c").symlink_to(outside)
    archive = _tar(tmp_path / "a.tar", [("a/b/c/d/e.txt", b"x")])
    with pytest.raises(D.UnsafeArchiveError, match=r"'a/b/c'.*symbolic link"):
        D.extract_archive(archive, dest)
    assert list(outside.iterdir()) == []


def _zip_bytes(members, compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        for name, data in members:
            z.writestr(name, data)
    return bytearray(buf.getvalue())


def _patch_zip(b, local_off, central_off, fmt, value):
    """Set a field in every local header (PK\\3\\4) and central record (PK\\1\\2)."""
    i = 0
    while (i := b.find(b"PK\x03\x04", i)) >= 0:
        struct.pack_into(fmt, b, i + local_off, value)
        i += 4
    i = 0
    while (i := b.find(b"PK\x01\x02", i)) >= 0:
        struct.pack_into(fmt, b, i + central_off, value)
        i += 4
    return bytes(b)


def _archive_cases(tmp_path):
    """name -> (archive path, member named in the error or None)."""
    cases = {}
    good_tgz = tmp_path / "good.tar.gz"
    _tar(good_tgz, [("d/a.bin", os.urandom(200000)), ("d/b.bin", bytes(10))], "w:gz")
    raw = good_tgz.read_bytes()
    (tmp_path / "truncated.tar.gz").write_bytes(raw[:len(raw) // 2])
    cases["truncated tar.gz (EOFError)"] = (tmp_path / "truncated.tar.gz", "d/a.bin")
    plain = _tar(tmp_path / "plain.tar", [("x.bin", os.urandom(100000))]).read_bytes()
    (tmp_path / "truncated.tar").write_bytes(plain[:50000])
    cases["truncated tar (ReadError)"] = (tmp_path / "truncated.tar", "x.bin")
    cases["name clash file then folder (NotADirectoryError)"] = (
        _tar(tmp_path / "clash1.tar", [("a", b"file"), ("a/b", b"x")]), "a/b")
    cases["name clash folder then file"] = (_tar(tmp_path / "clash2.tar", [("a/b", b"x"), ("a", b"file")]), "a")
    cases["empty member name (IsADirectoryError)"] = (_tar(tmp_path / "empty.tar", [("", b"x")]), "")
    cases["dot member name"] = (_tar(tmp_path / "dot.tar", [("./", b"x")]), "./")
    (tmp_path / "encrypted.zip").write_bytes(_patch_zip(_zip_bytes([("s.txt", "secret")]), 6, 8, "<H", 0x1))
    cases["encrypted zip (RuntimeError)"] = (tmp_path / "encrypted.zip", "s.txt")
    (tmp_path / "deflate64.zip").write_bytes(_patch_zip(_zip_bytes([("d.txt", "x" * 100)], zipfile.ZIP_DEFLATED),
                                                        8, 10, "<H", 9))
    cases["deflate64 zip (NotImplementedError)"] = (tmp_path / "deflate64.zip", "d.txt")
    b = _zip_bytes([("c.txt", "hello world")])
    b[b.find(b"hello")] ^= 1
    (tmp_path / "crc.zip").write_bytes(bytes(b))
    cases["zip CRC mismatch (BadZipFile)"] = (tmp_path / "crc.zip", "c.txt")
    b = _zip_bytes([("h.txt", "hello")])
    b[0:4] = b"PK\x09\x09"
    (tmp_path / "badheader.zip").write_bytes(bytes(b))
    cases["zip bad local header (BadZipFile)"] = (tmp_path / "badheader.zip", "h.txt")
    (tmp_path / "garbage.tar").write_bytes(os.urandom(3000))
    cases["not an archive (tarfile.ReadError)"] = (tmp_path / "garbage.tar", None)
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    cases["device member"] = (_tar(tmp_path / "dev.tar", [("dev", dev)]), "dev")
    hl = tarfile.TarInfo("hard")
    hl.type = tarfile.LNKTYPE
    hl.linkname = "x"
    cases["hard link member"] = (_tar(tmp_path / "hard.tar", [("x", b"1"), ("hard", hl)]), "hard")
    sl = tarfile.TarInfo("soft")
    sl.type = tarfile.SYMTYPE
    sl.linkname = "/etc"
    cases["symlink member"] = (_tar(tmp_path / "soft.tar", [("soft", sl)]), "soft")
    cases["long component"] = (_tar(tmp_path / "long.tar", [("d/" + "n" * 300, b"x")]), "d/" + "n" * 300)
    z = tmp_path / "zipsym.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("zlink")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    cases["zip symlink member"] = (z, "zlink")
    return cases


def test_every_archive_failure_is_a_file_error_naming_archive_and_member(tmp_path):
    cases = _archive_cases(tmp_path)
    assert len(cases) >= 16
    failures = []
    for label, (archive, member) in cases.items():
        dest = tmp_path / ("dest-" + archive.stem)
        try:
            D.extract_archive(archive, dest)
        except FileError as e:
            if archive.name not in str(e):
                failures.append(f"{label}: archive not named: {e}")
            if member is not None and e.member != member:
                failures.append(f"{label}: member {e.member!r}, expected {member!r}: {e}")
            if dest.exists() and any(p.name != ".extract" for p in dest.iterdir()):
                failures.append(f"{label}: left files behind: {list(dest.iterdir())}")
        except BaseException as e:  # noqa: BLE001
            failures.append(f"{label}: {type(e).__name__}: {e}")
        else:
            failures.append(f"{label}: extracted without error")
    assert not failures, "\n".join(failures)


def test_good_archives_still_extract(tmp_path):
    _tar(tmp_path / "g.tar.gz", [("top", None), ("top/a.txt", b"A"), ("top/sub/b.txt", b"B"), ("top/a.txt", b"A2")],
         "w:gz")
    D.extract_archive(tmp_path / "g.tar.gz", tmp_path / "out")
    assert (tmp_path / "out" / "top" / "a.txt").read_bytes() == b"A2"      # a later duplicate wins, as tar
    assert (tmp_path / "out" / "top" / "sub" / "b.txt").read_bytes() == b"B"
    z = tmp_path / "g.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/", "")
        zf.writestr("d/x.txt", "X" * 1000)
    D.extract_archive(z, tmp_path / "out")                                 # into an existing folder
    assert (tmp_path / "out" / "d" / "x.txt").read_text() == "X" * 1000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["d", "top"]


# ---- images and .npy inputs (deepgrad predict) ----------------------------------------------------
def _png(path, w, h, bit_depth=8, color_type=0, row=None):
    """A valid PNG of zero pixels (or ``row`` repeated), written with a streaming compressor."""
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row_bytes = (w * bpp * bit_depth + 7) // 8
    line = b"\x00" + (row if row is not None else bytes(row_bytes))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    c = zlib.compressobj(9)
    parts = []
    block = line * max(1, (4 * MiB) // len(line))
    rows_per_block = len(block) // len(line)
    done = 0
    while done < h:
        n = min(rows_per_block, h - done)
        parts.append(c.compress(block if n == rows_per_block else line * n))
        done += n
    parts.append(c.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def image_bombs(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    return {"10000": _png(d / "bomb10000.png", 10000, 10000), "20000": _png(d / "bomb20000.png", 20000, 20000, 1)}


def test_image_bomb_10000_refused_before_decoding(image_bombs):
    """Issue: a 97 KB 10000x10000 PNG peaked at 905 MB."""
    p = image_bombs["10000"]
    assert p.stat().st_size < 200_000
    kind, msg, rss = _bomb_run("from deepgrad.recipes._runner import read_input\n", f"read_input({str(p)!r})")
    assert kind == "FileError" and "bomb10000.png" in msg and "10000x10000" in msg, msg
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MB"


def test_image_bomb_20000_is_a_file_error_and_pil_global_untouched(image_bombs):
    """Issue: a 20000x20000 PNG gave PIL's DecompressionBombError traceback."""
    from PIL import Image
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(FileError, match=r"bomb20000\.png"):
        _inputs.read_image(image_bombs["20000"])
    assert Image.MAX_IMAGE_PIXELS == before
    with pytest.raises(FileError, match=r"more than the 1,000,000 pixels"):
        _inputs.read_image(image_bombs["10000"], max_pixels=10 ** 6)


def test_small_images_read_like_pil(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(_inputs.read_image(tmp_path / "rgb.png"), rgb)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.jpg")
    with Image.open(tmp_path / "g.jpg") as im:
        np.testing.assert_array_equal(_inputs.read_image(tmp_path / "g.jpg"), np.asarray(im))
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert _inputs.read_image(tmp_path / "p.png").shape == (12, 17, 4)
    with pytest.raises(FileError, match="more than the 100 pixels"):
        _inputs.read_image(tmp_path / "rgb.png", max_pixels=100)


@pytest.mark.parametrize("content", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated"])
def test_bad_images_are_file_errors(tmp_path, content):
    from PIL import Image
    p = tmp_path / "x.png"
    if content == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
        p.write_bytes(p.read_bytes()[:3000])
    else:
        p.write_bytes(content)
    with pytest.raises(FileError, match=r"x\.png"):
        _inputs.read_image(p)


def _npy_with_header(path, header_dict, data=b"", pad_to=None, version=(1, 0)):
    h = repr(header_dict).encode("latin1")
    if pad_to:
        h = h + b" " * (pad_to - len(h))
    h += b"\n"
    if version == (1, 0):
        path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data)
    else:
        path.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(h)) + h + data)
    return path


def test_npy_huge_shape_refused_before_allocation(tmp_path):
    """Issue: a huge-shape .npy gave a MemoryError traceback."""
    p = _npy_with_header(tmp_path / "huge.npy", {"descr": "<f8", "fortran_order": False, "shape": (10 ** 6, 10 ** 6)})
    kind, msg, rss = _bomb_run("from deepgrad.recipes._runner import read_input\n", f"read_input({str(p)!r})")
    assert kind == "FileError" and "huge.npy" in msg and "(1000000, 1000000)" in msg, msg
    assert rss < RSS_LIMIT_MB
    p = _npy_with_header(tmp_path / "short.npy", {"descr": "<f4", "fortran_order": False, "shape": (100, 100)},
                         bytes(400))
    with pytest.raises(FileError, match=r"short\.npy.*truncated \.npy data"):
        _inputs.read_npy(p)


def test_npy_header_over_numpy_limit_is_named_as_such(tmp_path):
    """Issue: a header over 10,000 bytes was reported as 'contains an object array'."""
    p = _npy_with_header(tmp_path / "big-header.npy", {"descr": "<f4", "fortran_order": False, "shape": (2,)},
                         bytes(8), pad_to=20000, version=(2, 0))
    with pytest.raises(FileError, match=r"big-header\.npy.*header of 20,001 bytes, over NumPy's limit") as e:
        _inputs.read_npy(p)
    assert "object" not in str(e.value)


def test_npy_object_and_odd_dtypes_refused(tmp_path):
    p = _npy_with_header(tmp_path / "obj.npy", {"descr": "|O", "fortran_order": False, "shape": (2,)}, bytes(16))
    with pytest.raises(UnsafeFileError, match=r"obj\.npy.*object array"):
        _inputs.read_npy(p)
    np.save(tmp_path / "s.npy", np.array(["ab", "c"]))
    with pytest.raises(FileError, match="numeric arrays only"):
        _inputs.read_npy(tmp_path / "s.npy")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': 1+}   \n")
    with pytest.raises(FileError, match=r"bad\.npy.*header"):
        _inputs.read_npy(tmp_path / "bad.npy")
    (tmp_path / "notnpy.npy").write_bytes(b"hello")
    with pytest.raises(FileError, match=r"notnpy\.npy"):
        _inputs.read_npy(tmp_path / "notnpy.npy")


@pytest.mark.parametrize("arr", [np.arange(12, dtype=np.float32).reshape(3, 4),
                                 np.asfortranarray(np.arange(24, dtype=">i4").reshape(2, 3, 4)),
                                 np.array(3.5), np.zeros((0, 5), np.uint8), np.array([True, False])])
def test_npy_round_trip_equals_numpy(tmp_path, arr):
    np.save(tmp_path / "a.npy", arr)
    got = _inputs.read_npy(tmp_path / "a.npy")
    want = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert got.shape == want.shape and got.dtype == want.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, want)
    (tmp_path / "a.npy").write_bytes((tmp_path / "a.npy").read_bytes() + b"x")
    with pytest.raises(FileError, match="unexpected bytes"):
        _inputs.read_npy(tmp_path / "a.npy")


# ---- fuzzing ---------------------------------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_FUZZ = fuzz.originals()
_FUZZ_EXAMPLES = int(os.environ.get("DEEPGRAD_FUZZ_EXAMPLES", 200))


@settings(max_examples=_FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=st.sampled_from(sorted(_FUZZ)),
       edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 1 << 20)),
       extra=st.binary(max_size=16),
       insert=st.one_of(st.none(), st.tuples(st.integers(0, 1 << 20), st.binary(min_size=1, max_size=8))))
def test_fuzz_idx_and_cifar_readers(tmp_path_factory, case, edits, cut, extra, insert):
    data, reader, want = _FUZZ[case]
    b = bytearray(data)
    for pos, val in edits:
        b[pos % len(b)] = val
    if insert is not None:
        i = insert[0] % (len(b) + 1)
        b[i:i] = insert[1]
    if cut is not None:
        del b[cut % (len(b) + 1):]
    b += extra
    d = tmp_path_factory.mktemp("fuzz", numbered=True)
    fuzz.check_one(str(d / case), bytes(b), reader, want)      # an identical load or a FileError


def test_fuzz_unmutated_originals_load():
    with pytest.MonkeyPatch.context():
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            for name, (data, reader, want) in _FUZZ.items():
                assert fuzz.check_one(os.path.join(d, name), data, reader, want) == "ok"
