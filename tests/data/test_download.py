"""Downloads (file:// URLs and a patched fetch only; never the network) and safe extraction."""
import hashlib
import io
import os
import tarfile
import zipfile

import numpy as np
import pytest

from deepgrad.data import datasets as D
from deepgrad.data.datasets import _download


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def test_download_file_url_verifies_and_moves_atomically(tmp_path):
    src = tmp_path / "src" / "blob.bin"
    src.parent.mkdir()
    payload = os.urandom(3 * (1 << 20) + 17)
    src.write_bytes(payload)
    dest_dir = tmp_path / "dest"
    p = D.download_url(src.as_uri(), dest_dir, sha256=_sha(payload))
    assert p == dest_dir / "blob.bin" and p.read_bytes() == payload
    assert sorted(os.listdir(dest_dir)) == ["blob.bin"]                   # no temporary files left
    # md5-only verification also works
    p2 = D.download_url(src.as_uri(), dest_dir, "other.bin", md5=hashlib.md5(payload).hexdigest())
    assert p2.read_bytes() == payload


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "data.txt"
    src.write_bytes(b"hello")
    with pytest.raises(D.ChecksumError, match=r"data\.txt.*SHA256 mismatch"):
        D.download_url(src.as_uri(), tmp_path / "out", sha256="0" * 64)
    assert os.listdir(tmp_path / "out") == []


def test_interrupted_download_keeps_old_file(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "f.bin").write_bytes(b"old complete file")

    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() >= 4:
                raise ConnectionResetError("connection reset mid-transfer")
            return super().read(2)

    monkeypatch.setattr(_download, "_urlopen", lambda url, timeout: Broken(b"new data that never arrives"))
    with pytest.raises(ConnectionResetError):
        D.download_url("https://example.invalid/f.bin", dest, overwrite=True)
    assert (dest / "f.bin").read_bytes() == b"old complete file"
    assert os.listdir(dest) == ["f.bin"]
    with pytest.raises(ValueError, match="scheme"):
        D.download_url("ftp://example.invalid/f.bin", dest)


def test_existing_valid_file_is_not_refetched(tmp_path, monkeypatch):
    (tmp_path / "a.bin").write_bytes(b"abc")
    monkeypatch.setattr(_download, "_urlopen", lambda *a: pytest.fail("should not download"))
    assert D.download_url("https://example.invalid/a.bin", tmp_path, sha256=_sha(b"abc")).read_bytes() == b"abc"


def test_mirrors_fall_back_and_report(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "x.txt").write_bytes(b"x")
    p = D.download_from_mirrors([(tmp_path / "missing").as_uri() + "/", good.as_uri() + "/"], "x.txt",
                                tmp_path / "out", sha256=_sha(b"x"))
    assert p.read_bytes() == b"x"
    with pytest.raises(RuntimeError, match=r"(?s)could not download y\.txt.*missing.*good"):
        D.download_from_mirrors([(tmp_path / "missing").as_uri(), good.as_uri()], "y.txt", tmp_path / "out")


def test_mnist_download_from_local_mirror(tmp_path, monkeypatch, mnist_test):
    mirror = D.bundled_dir("mnist").as_uri() + "/"
    monkeypatch.setattr(D.MNIST, "mirrors", [(tmp_path / "nowhere").as_uri() + "/", mirror])
    monkeypatch.setattr(D.MNIST, "bundled", None)
    monkeypatch.setattr(D._paths, "shared_datasets_dir", lambda start=None: None)  # no local copy: the network
    root = tmp_path / "root"
    with pytest.raises(FileNotFoundError):
        D.MNIST(root=root, train=False)
    m = D.MNIST(root=root, train=False, download=True)
    assert m.raw_folder == root / "mnist"
    assert sorted(os.listdir(root / "mnist")) == sorted(D.MNIST.resources)
    np.testing.assert_array_equal(m.data, mnist_test.data)


def test_cifar10_download_and_extract(tmp_path, monkeypatch, cifar_test_bin, cifar_test):
    archive = tmp_path / "srv" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w") as tf:                    # extract_archive sniffs the format
        for name, data in (("cifar-10-batches-bin/test_batch.bin", cifar_test_bin),
                           ("cifar-10-batches-bin/batches.meta.txt", b"\n".join(
                               c.encode() for c in D.CIFAR10.default_classes) + b"\n\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(D.CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(D._paths, "shared_datasets_dir", lambda start=None: None)
    monkeypatch.setattr(D.CIFAR10, "archive", dict(filename="cifar-10-binary.tar.gz",
                                                   sha256=_download.file_digest(archive)))
    c = D.CIFAR10(root=tmp_path / "root", train=False, download=True)
    assert c.raw_folder == tmp_path / "root" / "cifar10" / "cifar-10-batches-bin"
    np.testing.assert_array_equal(c.targets, cifar_test.targets)
    monkeypatch.setattr(D.CIFAR10, "archive", dict(filename="cifar-10-binary.tar.gz", sha256="1" * 64))
    with pytest.raises(D.ChecksumError, match="cifar-10-binary.tar.gz"):
        D.CIFAR10(root=tmp_path / "root2", train=False, download=True)


def _tar_with(tmp_path, member, linkname=None):
    p = tmp_path / "evil.tar"
    with tarfile.open(p, "w") as tf:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(member)
        if linkname is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = linkname
            tf.addfile(info)
        else:
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
    return p


@pytest.mark.parametrize("member,link", [("../escape.txt", None), ("a/../../escape.txt", None),
                                         ("/tmp/abs_escape.txt", None), ("link", "/etc/passwd"),
                                         ("link2", "../../outside")])
def test_extract_rejects_escapes(tmp_path, member, link):
    archive = _tar_with(tmp_path, member, link)
    dest = tmp_path / "dest"
    with pytest.raises(D.UnsafeArchiveError, match="evil.tar"):
        D.extract_archive(archive, dest)
    assert not (tmp_path / "escape.txt").exists()
    assert [p for p in dest.rglob("*")] == []                    # nothing written at all


def test_extract_zip_and_reject_zip_escape(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("d/a.txt", "A")
    D.extract_archive(good, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "a.txt").read_text() == "A"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../zipescape.txt", "X")
    with pytest.raises(D.UnsafeArchiveError, match="bad.zip"):
        D.extract_archive(bad, tmp_path / "out2")
    assert not (tmp_path / "zipescape.txt").exists()
