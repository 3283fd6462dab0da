"""Parsers and datasets on the real files, and on corrupted / truncated / wrong copies."""
import gzip
import hashlib
import shutil
import struct

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.data import DataLoader, transforms as T
from deepgrad.data import datasets as D

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _hist_stats(a):
    """Exact mean and std of a uint8 array from its histogram (no float copy of the data)."""
    h = np.bincount(np.ascontiguousarray(a).reshape(-1), minlength=256).astype(np.float64)
    v = np.arange(256.0)
    mean = (h * v).sum() / h.sum()
    return mean, np.sqrt((h * (v - mean) ** 2).sum() / h.sum())


def _sha256sums(folder):
    out = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        out[name] = digest
    return out


# ---------------------------------------------------------------------------------------------
# MNIST (bundled copy and shared copy)
# ---------------------------------------------------------------------------------------------
def test_bundled_mnist_files_match_published_checksums(shared_dir):
    sums = _sha256sums(shared_dir / "mnist")
    bundled = D.bundled_dir("mnist")
    assert sorted(p.name for p in bundled.glob("*.gz")) == sorted(sums)
    for name, digest in sums.items():
        assert D.file_digest(bundled / name) == digest
    # and the class-level table agrees with SHA256SUMS
    for name, spec in D.MNIST.resources.items():
        assert spec["sha256"] == sums[name]


def test_mnist_train_from_bundle(monkeypatch, tmp_path):
    monkeypatch.delenv("DEEPGRAD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))      # empty cache -> bundled fallback
    m = D.MNIST(train=True)
    assert m.raw_folder == D.bundled_dir("mnist")
    assert len(m) == 60000 and m.data.shape == (60000, 28, 28) and m.data.dtype == np.uint8
    assert m.targets.dtype == np.int64
    assert np.bincount(m.targets, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert m.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    mean, std = _hist_stats(m.data)
    assert abs(mean - 33.3184) < 1e-4 and abs(std - 78.5675) < 1e-4
    img, label = m[0]
    assert img.shape == (28, 28) and label == 5 and isinstance(label, int)
    img[:] = 0                                                 # samples are copies
    assert m.data[0].max() == 255


def test_mnist_test_split_and_shared_copy(shared_dir, mnist_test):
    assert np.bincount(mnist_test.targets, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert mnist_test.targets[:5].tolist() == [7, 2, 1, 0, 4]
    assert abs(_hist_stats(mnist_test.data)[0] - 33.7912) < 1e-4
    shared = D.MNIST(root=shared_dir, train=False)
    assert shared.raw_folder == shared_dir / "mnist"
    np.testing.assert_array_equal(shared.data, mnist_test.data)


def test_data_dir_resolution(monkeypatch, tmp_path, shared_dir):
    monkeypatch.setenv("DEEPGRAD_DATA", str(shared_dir))
    assert D.default_root() == shared_dir
    assert D.MNIST(train=False).raw_folder == shared_dir / "mnist"
    monkeypatch.delenv("DEEPGRAD_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert D.default_root() == tmp_path / "cache" / "deepgrad"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert D.default_root() == tmp_path / ".cache" / "deepgrad"
    with pytest.raises(FileNotFoundError, match=r"(?s)CIFAR10.*download=True"):
        D.CIFAR10(root=tmp_path / "empty")


def test_shared_datasets_dir_helper(monkeypatch, tmp_path):
    # The helper must work wherever the clone sits, so the layouts are built here, not assumed.
    monkeypatch.delenv("DEEPGRAD_DATA", raising=False)
    repo = tmp_path / "repo" / "pkg"
    repo.mkdir(parents=True)
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    assert D.shared_datasets_dir(start=repo) == tmp_path / "shared" / "datasets"   # <repo>/../shared
    other = tmp_path / "elsewhere" / "data"
    other.mkdir(parents=True)
    monkeypatch.setenv("DEEPGRAD_DATA", str(other))
    assert D.shared_datasets_dir(start=repo) == other                           # the variable wins
    monkeypatch.setenv("DEEPGRAD_DATA", str(tmp_path / "missing"))
    assert D.shared_datasets_dir(start=repo) == tmp_path / "shared" / "datasets"  # unless it is absent


def test_mnist_torchvision_layout_and_uncompressed(tmp_path, mnist_test):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(gzip.decompress((D.bundled_dir("mnist") / (name + ".gz")).read_bytes()))
    m = D.MNIST(root=tmp_path, train=False)
    assert m.raw_folder == raw
    np.testing.assert_array_equal(m.data, mnist_test.data)


# ---------------------------------------------------------------------------------------------
# IDX parser: synthetic and damaged files
# ---------------------------------------------------------------------------------------------
def _idx(arr, code):
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return header + arr.tobytes()


@pytest.mark.parametrize("code,dtype", [(0x08, "u1"), (0x09, "i1"), (0x0B, ">i2"), (0x0C, ">i4"),
                                        (0x0D, ">f4"), (0x0E, ">f8")])
def test_parse_idx_dtypes(code, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "u1":
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = D.parse_idx(_idx(a, code))
    assert out.shape == (2, 3, 4) and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


def _copy_mnist_test(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(D.bundled_dir("mnist") / name, d / name)
    return d


def test_truncated_gzip_names_the_file(tmp_path):
    d = _copy_mnist_test(tmp_path)
    p = d / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:100000])
    with pytest.raises(D.DatasetFileError, match=r"t10k-images-idx3-ubyte\.gz.*(truncated|corrupted)"):
        D.MNIST(root=tmp_path, train=False)


def test_corrupted_gzip_names_the_file(tmp_path):
    d = _copy_mnist_test(tmp_path)
    p = d / "t10k-labels-idx1-ubyte.gz"
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0xFF
    p.write_bytes(bytes(b))
    with pytest.raises((D.DatasetFileError, D.ChecksumError), match=r"t10k-labels-idx1-ubyte\.gz"):
        D.MNIST(root=tmp_path, train=False)


def test_checksum_mismatch_with_valid_structure(tmp_path):
    d = _copy_mnist_test(tmp_path)
    p = d / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(p.read_bytes()))
    raw[5000] ^= 0x01                         # one pixel changed, gzip stream valid
    p.write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    with pytest.raises(D.ChecksumError, match=r"t10k-images-idx3-ubyte\.gz.*SHA-256"):
        D.MNIST(root=tmp_path, train=False)
    m = D.MNIST(root=tmp_path, train=False, verify=False)   # structure alone is fine
    assert m.data.shape == (10000, 28, 28)


def test_wrong_magic_and_swapped_files(tmp_path):
    d = _copy_mnist_test(tmp_path)
    img, lbl = d / "t10k-images-idx3-ubyte.gz", d / "t10k-labels-idx1-ubyte.gz"
    a, b = img.read_bytes(), lbl.read_bytes()
    img.write_bytes(b)
    lbl.write_bytes(a)
    with pytest.raises(D.DatasetFileError, match=r"t10k-images-idx3-ubyte\.gz'?: wrong IDX magic number 2049"):
        D.MNIST(root=tmp_path, train=False)


def test_truncated_raw_idx_and_trailing_bytes(tmp_path):
    a = np.arange(60, dtype=np.uint8).reshape(5, 3, 4)
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(_idx(a, 0x08)[:-7])
    with pytest.raises(D.DatasetFileError, match=r"x-idx3-ubyte'?: truncated IDX data"):
        D.read_idx(p)
    p.write_bytes(_idx(a, 0x08) + b"\0\0")
    with pytest.raises(D.DatasetFileError, match="trailing bytes"):
        D.read_idx(p)
    p.write_bytes(b"\x00\x00\x08")
    with pytest.raises(D.DatasetFileError, match="too short"):
        D.read_idx(p)
    p.write_bytes(b"\x01\x02\x08\x01" + b"\0" * 8)
    with pytest.raises(D.DatasetFileError, match="not an IDX file"):
        D.read_idx(p)
    p.write_bytes(_idx(a, 0x08))
    with pytest.raises(D.DatasetFileError, match=r"dimension 0 is 5, expected 6"):
        D.read_idx(p, expected_shape=(6, 3, 4))


def test_fashion_mnist_md5_and_structure(tmp_path):
    d = tmp_path / "fashionmnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 10000).astype(np.uint8)
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(imgs, 0x08)))
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels, 0x08)[:4] + _idx(labels, 0x08)[4:]))
    # the labels file needs magic 2049 = 0x00000801 (1 dim)
    with pytest.raises(D.ChecksumError, match=r"t10k-images-idx3-ubyte\.gz'?: MD5"):
        D.FashionMNIST(root=tmp_path, train=False)
    f = D.FashionMNIST(root=tmp_path, train=False, verify=False)
    assert f.classes[9] == "Ankle boot" and len(f) == 10000
    np.testing.assert_array_equal(f.data, imgs)
    np.testing.assert_array_equal(f.targets, labels)
    assert f[3][1] == int(labels[3])


# ---------------------------------------------------------------------------------------------
# CIFAR-10 on the real files
# ---------------------------------------------------------------------------------------------
def test_cifar10_train(cifar_train):
    c = cifar_train
    assert c.data.shape == (50000, 32, 32, 3) and c.data.dtype == np.uint8
    assert np.bincount(c.targets).tolist() == [5000] * 10
    assert np.bincount(c.targets[:10000]).tolist() == [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
    assert c.targets[:10] == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]                 # a list, as torchvision
    assert c.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert c.data[0, 0, :3, 0].tolist() == [59, 43, 50]          # R plane starts 59, 43, 50
    assert c.data[0, 31, -3:, 2].tolist() == [140, 84, 72]       # B plane ends 140, 84, 72
    stats = [_hist_stats(c.data[..., k]) for k in range(3)]
    np.testing.assert_allclose([m / 255 for m, _ in stats], [0.491400, 0.482158, 0.446531], atol=1e-6)
    np.testing.assert_allclose([s / 255 for _, s in stats], [0.247032, 0.243485, 0.261588], atol=1e-6)
    img, label = c[0]
    assert img.shape == (32, 32, 3) and label == 6


def test_cifar10_test(cifar_test):
    c = cifar_test
    assert len(c) == 10000 and np.bincount(c.targets).tolist() == [1000] * 10
    assert c.targets[:10] == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert c.data[0, 0, :3, 0].tolist() == [158, 159, 165]
    stats = [_hist_stats(c.data[..., k]) for k in range(3)]
    np.testing.assert_allclose([m / 255 for m, _ in stats], [0.494214, 0.485131, 0.450409], atol=1e-6)
    np.testing.assert_allclose([s / 255 for _, s in stats], [0.246653, 0.242892, 0.261592], atol=1e-6)


def _cifar_dir(tmp_path, payload, name="test_batch.bin"):
    d = tmp_path / "cifar10"
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(payload)
    return d / name


def test_cifar10_uncompressed_bin_equals_gz(tmp_path, cifar_test_bin, cifar_test):
    _cifar_dir(tmp_path, cifar_test_bin)
    c = D.CIFAR10(root=tmp_path, train=False)
    np.testing.assert_array_equal(c.data, cifar_test.data)
    assert hashlib.sha256(cifar_test_bin).hexdigest() == D.CIFAR10.raw_sha256["test_batch.bin"]


def test_cifar10_truncated_and_corrupted(tmp_path, cifar_test_bin):
    p = _cifar_dir(tmp_path, cifar_test_bin[:-100])
    with pytest.raises(D.DatasetFileError, match=r"test_batch\.bin'?: .*not a whole number of 3073-byte"):
        D.CIFAR10(root=tmp_path, train=False)
    p.write_bytes(cifar_test_bin[:3073 * 9000])
    with pytest.raises(D.DatasetFileError, match=r"test_batch\.bin'?: holds 9000 CIFAR records, expected 10000"):
        D.CIFAR10(root=tmp_path, train=False)
    b = bytearray(cifar_test_bin)
    b[3073 * 5 + 100] ^= 0x10
    p.write_bytes(bytes(b))
    with pytest.raises(D.ChecksumError, match=r"test_batch\.bin'?: SHA-256"):
        D.CIFAR10(root=tmp_path, train=False)
    b = bytearray(cifar_test_bin)
    b[3073 * 7] = 12                                       # label byte out of range
    p.write_bytes(bytes(b))
    with pytest.raises(D.DatasetFileError, match=r"test_batch\.bin'?: record 7 has label 12"):
        D.CIFAR10(root=tmp_path, train=False, verify=False)
    gz = tmp_path / "cifar10" / "test_batch.bin.gz"
    p.unlink()
    gz.write_bytes(gzip.compress(cifar_test_bin[:100000], compresslevel=1)[:5000])
    with pytest.raises(D.DatasetFileError, match=r"test_batch\.bin\.gz'?: (corrupt|truncated) gzip"):
        D.CIFAR10(root=tmp_path, train=False)


def test_cifar100_binary_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(D.CIFAR100, "test_records", 500)
    rng = np.random.default_rng(1)
    n = 500
    coarse = rng.integers(0, 20, n).astype(np.uint8)
    fine = rng.integers(0, 100, n).astype(np.uint8)
    pix = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    recs = np.concatenate([coarse[:, None], fine[:, None], pix.reshape(n, -1)], axis=1)
    d = tmp_path / "cifar-100-binary"
    d.mkdir()
    (d / "test.bin").write_bytes(recs.tobytes())
    c = D.CIFAR100(root=tmp_path, train=False)
    assert len(c.classes) == 100 and len(c.coarse_classes) == 20 and c.classes[0] == "apple"
    np.testing.assert_array_equal(c.targets, fine)
    np.testing.assert_array_equal(c.coarse_targets, coarse)
    np.testing.assert_array_equal(c.data, pix.transpose(0, 2, 3, 1))
    cc = D.CIFAR100(root=tmp_path, train=False, target_type="coarse")
    assert cc[5][1] == int(coarse[5])
    recs[9, 1] = 100
    (d / "test.bin").write_bytes(recs.tobytes())
    with pytest.raises(D.DatasetFileError, match=r"test\.bin'?: record 9 has label 100"):
        D.CIFAR100(root=tmp_path, train=False)


def test_cifar_loader_fast_path_matches_per_sample(cifar_test):
    tf = T.Compose([T.ToTensor(), T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    c = D.CIFAR10(root=cifar_test.root, train=False, transform=tf)
    idx = np.array([3, 0, 9999, 17])
    x, y = c._get_batch(idx)
    ref = np.stack([c[i][0].array for i in idx])
    assert x.shape == (4, 3, 32, 32) and x.dtype == dg.float32
    np.testing.assert_array_equal(x.array, ref)
    xb, yb = next(iter(DataLoader(c, batch_size=64)))
    assert xb.shape == (64, 3, 32, 32) and yb.dtype == dg.int64


# ---------------------------------------------------------------------------------------------
# Tiny Shakespeare
# ---------------------------------------------------------------------------------------------
def test_tiny_shakespeare(shared_dir):
    tr = D.TinyShakespeare(root=shared_dir, train=True, seq_len=64)
    va = D.TinyShakespeare(root=shared_dir, train=False, seq_len=64)
    assert len(tr.text) == 1115394 and tr.text.startswith("First Citizen:")
    assert tr.vocab_size == 65 and tr.chars == sorted(set(tr.text)) and tr.chars == va.chars
    assert len(tr.data) + len(va.data) == 1115394 and len(tr.data) == int(1115394 * 0.9)
    s = "To be, or not to be"
    ids = tr.encode(s)
    assert ids.dtype == np.int64 and tr.decode(ids) == s and tr.decode(dg.tensor(ids)) == s
    x, y = tr[3]
    assert x.shape == (64,) and tr.decode(x) == tr.text[192:256]
    np.testing.assert_array_equal(x[1:], y[:-1])
    assert tr.decode(y) == tr.text[193:257]
    assert len(tr) == (len(tr.data) - 65) // 64 + 1
    xb, yb = tr._get_batch(np.array([3, 0, len(tr) - 1]))
    np.testing.assert_array_equal(xb[0], x)
    np.testing.assert_array_equal(yb[2], tr[len(tr) - 1][1])
    w = D.TinyShakespeare(root=shared_dir, train=False, seq_len=8, stride=1)
    assert len(w) == len(va.data) - 8
    with pytest.raises(KeyError, match="not in the vocabulary"):
        tr.encode("~")


def test_tiny_shakespeare_checksum(tmp_path, shared_dir):
    d = tmp_path / "tinyshakespeare"
    d.mkdir()
    text = (shared_dir / "tinyshakespeare" / "input.txt").read_text()
    (d / "input.txt").write_text(text[:-10])
    with pytest.raises(D.ChecksumError, match=r"input\.txt'?: SHA-256"):
        D.TinyShakespeare(root=tmp_path)
    ts = D.TinyShakespeare(root=tmp_path, verify=False, seq_len=16)
    assert ts.vocab_size == 65


def test_download_true_uses_the_local_mirror_before_the_network(monkeypatch, shared_dir, tmp_path):
    # torchvision programs say CIFAR10(root='./data', download=True); offline, the local datasets
    # folder stands in for the mirror (and its files are checked by the same SHA-256 sums).
    monkeypatch.setenv("DEEPGRAD_DATA", str(shared_dir))

    def no_network(*a, **k):
        raise AssertionError("tried the network")
    monkeypatch.setattr(D._download, "download_url", no_network)
    monkeypatch.setattr(D._download, "download_from_mirrors", no_network)
    ds = D.CIFAR10(root=tmp_path / "data", train=False, download=True)
    assert len(ds) == 10000 and ds.raw_folder == shared_dir / "cifar10"
    ds = D.MNIST(root=tmp_path / "data", train=False, download=True)
    assert len(ds) == 10000 and ds.raw_folder == shared_dir / "mnist"
    with pytest.raises(FileNotFoundError, match="CIFAR10"):
        D.CIFAR10(root=tmp_path / "data", train=False)        # without download=True: root only
