"""Interoperability of deepgrad.save/load: safetensors files and PyTorch checkpoints (read without
PyTorch and without running code), checked against torch 2.13 and the safetensors package; and the
torchinfo-like model summary checked against hand counts."""
import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import models
from deepgrad._files import FileError, UnsafeFileError

safetensors = pytest.importorskip("safetensors")
import safetensors.torch  # noqa: E402

torch.manual_seed(0)


# ---- helpers -----------------------------------------------------------------------------------
def _tbytes(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype != torch.uint8:
        t = t.view(torch.uint8)
    return t.numpy().tobytes()


def _dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def assert_same(theirs, ours, where="obj"):
    """torch object (theirs) and deepgrad object (ours) hold the same values, bit for bit."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, dg.Tensor), where
        assert ours.array.dtype.name == _dtype_name(theirs), (where, ours.array.dtype, theirs.dtype)
        assert tuple(ours.shape) == tuple(theirs.shape), (where, ours.shape, theirs.shape)
        assert np.ascontiguousarray(ours.array).tobytes() == _tbytes(theirs), where
        assert isinstance(ours, dg.nn.Parameter) == isinstance(theirs, torch.nn.Parameter), where
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), (where, list(ours)[:5], list(theirs)[:5])
        assert isinstance(ours, OrderedDict) == isinstance(theirs, OrderedDict), where
        for k in theirs:
            assert_same(theirs[k], ours[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(theirs, ours)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, (where, ours, theirs)


def assert_dg_equal(a, b, ordered=True):
    assert list(a) == list(b) if ordered else sorted(a) == sorted(b)
    for k in a:
        x, y = a[k], b[k]
        assert x.array.dtype == y.array.dtype and tuple(x.shape) == tuple(y.shape), k
        assert np.ascontiguousarray(x.array).tobytes() == np.ascontiguousarray(y.array).tobytes(), k


def _zoo():
    return {
        "lenet5": lambda: models.lenet5(),
        "mnist_cnn": lambda: models.mnist_cnn(),
        "resnet18": lambda: models.resnet18(num_classes=10),
        "resnet20": lambda: models.resnet20(),
        "googlenet": lambda: models.googlenet(num_classes=10),
        "charrnn_lstm": lambda: models.CharRNN(20, embed_dim=8, hidden_size=16, num_layers=2),
        "charrnn_gru": lambda: models.CharRNN(20, embed_dim=8, hidden_size=16, cell="gru"),
        "seq2seq": lambda: models.Seq2Seq(12, 14, embed_dim=8, hidden_size=16),
        "skipgram": lambda: models.SkipGram(50, dim=8),
    }


# ---- round trips through safetensors and torch, every (small) zoo model ----------------------------
@pytest.mark.parametrize("name", sorted(_zoo()))
def test_zoo_state_dict_round_trips(name, tmp_path):
    m = _zoo()[name]()
    for p in m.parameters():   # make every value distinct from a fresh init
        p.array[...] = np.random.default_rng(1).standard_normal(p.shape).astype(p.array.dtype)
    sd = m.state_dict()
    # deepgrad -> safetensors -> torch -> (torch.save) -> deepgrad
    st = tmp_path / "m.safetensors"
    dg.save(sd, st)
    t = safetensors.torch.load_file(str(st))
    assert list(t) == sorted(t) or set(t) == set(sd)
    torch.save(OrderedDict((k, t[k]) for k in sd), tmp_path / "t.pt")
    back = dg.load(tmp_path / "t.pt")
    assert_dg_equal(sd, back)
    # deepgrad -> .pt -> torch
    dg.save(sd, tmp_path / "d.pt", format="torch")
    t2 = torch.load(tmp_path / "d.pt", weights_only=True)
    assert_same(t2, sd)
    # and straight back
    assert_dg_equal(sd, dg.load(tmp_path / "d.pt"))
    assert_dg_equal(sd, dg.load(st), ordered=False)   # safetensors orders by dtype and name
    m2 = _zoo()[name]()
    m2.load_state_dict(back)


# ---- safetensors -------------------------------------------------------------------------------
def test_safetensors_metadata_dtypes_and_order(tmp_path):
    import ml_dtypes
    sd = OrderedDict([("w", dg.randn(3, 4)), ("bf", dg.tensor(np.array([1.5, -2.25, 3e5], ml_dtypes.bfloat16))),
                      ("h", dg.tensor(np.array([0.5, 1e-3], np.float16))), ("i8", dg.tensor(np.array([-3, 4], np.int8))),
                      ("u16", dg.tensor(np.array([65535, 1], np.uint16))), ("b", dg.tensor(np.array([True, False]))),
                      ("c", dg.tensor(np.array([1 + 2j], np.complex64))), ("s", dg.tensor(np.array(3.0, np.float64))),
                      ("e", dg.zeros(0, 5))])
    p = tmp_path / "x.safetensors"
    dg.save(sd, p, metadata={"epoch": "7", "note": "ü"})
    assert dg.io.safetensors_metadata(p) == {"epoch": "7", "note": "ü"}
    with safetensors.safe_open(str(p), framework="pt") as f:
        assert f.metadata() == {"epoch": "7", "note": "ü"}
    t = safetensors.torch.load_file(str(p))
    assert t["bf"].dtype == torch.bfloat16 and t["bf"].tolist() == [1.5, -2.25, float(np.float32(ml_dtypes.bfloat16(3e5)))]
    for k in sd:
        assert np.ascontiguousarray(sd[k].array).tobytes() == _tbytes(t[k]), k
    back = dg.load(p)
    assert_dg_equal(sd, back, ordered=False)
    # a file written by safetensors.torch loads (format= and by content, whatever the name)
    safetensors.torch.save_file({"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2, dtype=torch.bfloat16)},
                                str(tmp_path / "y.bin"), metadata={"k": "v"})
    r = dg.load(tmp_path / "y.bin")
    assert r["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and r["b"].array.dtype.name == "bfloat16"
    assert dg.load(tmp_path / "y.bin", format="safetensors")["a"].shape == (2, 3)


def test_safetensors_refuses_what_it_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="flat dict"):
        dg.save([dg.ones(2)], tmp_path / "a.safetensors")
    with pytest.raises(TypeError, match="'n'.*int"):
        dg.save({"n": 3}, tmp_path / "a.safetensors")
    with pytest.raises(TypeError, match="complex128"):
        dg.save({"c": dg.tensor(np.ones(2, np.complex128))}, tmp_path / "a.safetensors")
    with pytest.raises(TypeError, match="str -> str"):
        dg.save({"a": dg.ones(2)}, tmp_path / "a.safetensors", metadata={"a": 1})
    with pytest.raises(ValueError, match="metadata"):
        dg.save({"a": dg.ones(2)}, tmp_path / "a.npz", metadata={"a": "b"})
    assert not (tmp_path / "a.safetensors").exists()


def test_safetensors_bad_files(tmp_path):
    p = tmp_path / "ok.safetensors"
    dg.save({"a": dg.ones(100), "b": dg.ones(3)}, p)
    blob = p.read_bytes()
    cases = {
        "truncated.safetensors": blob[:-10],
        "short.safetensors": blob[:5],
        "huge_header.safetensors": (10 ** 9).to_bytes(8, "little") + b"{}",
        "header_past_end.safetensors": (1000).to_bytes(8, "little") + b'{"a":1}',
        "not_json.safetensors": (4).to_bytes(8, "little") + b"{{{{",
        "bad_dtype.safetensors": (lambda h: len(h).to_bytes(8, "little") + h + b"\0" * 8)(
            b'{"a":{"dtype":"XX","shape":[2],"data_offsets":[0,8]}}'),
        "lying_shape.safetensors": (lambda h: len(h).to_bytes(8, "little") + h + b"\0" * 8)(
            b'{"a":{"dtype":"F32","shape":[200],"data_offsets":[0,8]}}'),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FileError) as e:
            dg.load(tmp_path / name)
        assert name in str(e.value)


def test_safetensors_missing_package_says_how_to_install(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install deepgrad\[interop\]"):
        dg.save({"a": dg.ones(2)}, tmp_path / "a.safetensors")


# ---- real files written by torch ----------------------------------------------------------------
class _TorchBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.relu = torch.nn.ReLU(inplace=True)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                  torch.nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class _TorchResNet18(torch.nn.Module):
    """torchvision's ResNet-18 layout, built from torch.nn layers (torchvision is not installed)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(64)
        self.relu = torch.nn.ReLU(inplace=True)
        self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
        chans, cin = [64, 128, 256, 512], 64
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", torch.nn.Sequential(_TorchBlock(cin, c, stride), _TorchBlock(c, c, 1)))
            cin = c
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_torch_resnet18_checkpoint_loads_into_the_zoo_model(tmp_path):
    tm = _TorchResNet18()
    with torch.no_grad():
        for mod in tm.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.num_batches_tracked += 7
    tm.eval()
    torch.save(tm.state_dict(), tmp_path / "resnet18.pth")
    sd = dg.load(tmp_path / "resnet18.pth")
    assert_same(tm.state_dict(), sd)
    assert getattr(sd, "_metadata", None) is not None        # the state dict's version table came along
    m = models.resnet18(num_classes=10)
    m.load_state_dict(sd)
    m.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    with dg.no_grad():
        got = m(dg.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_torch_optimizer_state_and_checkpoint_dict(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.8, 0.9))
    sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for o in (opt, sgd):
        net(torch.randn(5, 4)).sum().backward()
        o.step()
    ckpt = {"epoch": 12, "step": 2 ** 40, "loss": 0.125, "best": float("inf"), "name": "run-ü", "flag": True,
            "none": None, "history": [1.0, 0.5], "shape": (3, 4), "model": net.state_dict(),
            "optimizer": opt.state_dict(), "sgd": sgd.state_dict(), "blob": b"\x00\xffab",
            "z": complex(1, -2), "tags": {1: "one", (2, 3): "pair"}, "neg": -5, "big": -(2 ** 70)}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    back = dg.load(tmp_path / "ckpt.pt")
    assert_same(ckpt, back)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.9)
    # and deepgrad writes it back for torch
    dg.save(back, tmp_path / "again.pt", format="torch")
    assert_same(torch.load(tmp_path / "again.pt", weights_only=True), back)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.bool,
                                   torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64,
                                   torch.complex64, torch.complex128, torch.uint16, torch.uint32, torch.uint64,
                                   torch.float8_e4m3fn, torch.float8_e5m2])
def test_every_dtype_torch_writes(dtype, tmp_path):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64) * 50
    t = x.to(torch.complex64 if dtype.is_complex else torch.float64).to(dtype) if dtype not in (
        torch.uint16, torch.uint32, torch.uint64) else x.abs().to(torch.int64).to(dtype)
    d = {"t": t, "strided": t.t(), "row": t[1], "col": t[:, 2], "p": torch.nn.Parameter(t.clone(), requires_grad=False)}
    torch.save(d, tmp_path / "d.pt")
    back = dg.load(tmp_path / "d.pt")
    assert_same(d, back)
    dg.save(back, tmp_path / "e.pt", format="torch")
    assert_same(torch.load(tmp_path / "e.pt", weights_only=True), back)


def test_shared_and_strided_storages(tmp_path):
    base = torch.arange(24, dtype=torch.float32)
    d = {"base": base, "view": base[5:11], "matrix": base.view(4, 6), "t": base.view(4, 6).t(),
         "every3": base[::3], "corner": base.view(4, 6)[1:3, 2:5], "expanded": base[:1].expand(3, 4),
         "bf": torch.randn(4, 6).to(torch.bfloat16).t()}
    d["bf_view"] = d["bf"][1:3]
    torch.save(d, tmp_path / "s.pt")
    back = dg.load(tmp_path / "s.pt")
    assert_same(d, back)
    # contiguous views keep sharing their storage, as in torch
    assert np.shares_memory(back["base"].array, back["view"].array)
    assert np.shares_memory(back["base"].array, back["matrix"].array)
    # the legacy (non-zip) format
    torch.save(d, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert_same(d, dg.load(tmp_path / "legacy.pt"))


def test_parameters_and_requires_grad(tmp_path):
    d = {"p": torch.nn.Parameter(torch.randn(2, 3)), "q": torch.nn.Parameter(torch.randn(2), requires_grad=False),
         "g": torch.randn(2, requires_grad=True)}
    torch.save(d, tmp_path / "p.pt")
    back = dg.load(tmp_path / "p.pt")
    assert isinstance(back["p"], dg.nn.Parameter) and back["p"].requires_grad
    assert isinstance(back["q"], dg.nn.Parameter) and not back["q"].requires_grad
    assert not isinstance(back["g"], dg.nn.Parameter) and back["g"].requires_grad
    dg.save(back, tmp_path / "q.pt", format="torch")
    t = torch.load(tmp_path / "q.pt", weights_only=True)
    assert isinstance(t["p"], torch.nn.Parameter) and t["p"].requires_grad and not t["q"].requires_grad
    assert t["g"].requires_grad and not isinstance(t["g"], torch.nn.Parameter)


def test_save_torch_to_a_file_object_and_errors(tmp_path):
    buf = io.BytesIO()
    dg.save({"a": dg.arange(5)}, buf, format="torch")
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["a"].tolist() == [0, 1, 2, 3, 4]
    buf.seek(0)
    assert dg.load(buf)["a"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError, match="set"):
        dg.save({"a": {1, 2}}, tmp_path / "x.pt", format="torch")
    with pytest.raises(ValueError, match="unknown format"):
        dg.save({"a": 1}, tmp_path / "x.pt", format="onnx")
    assert not (tmp_path / "x.pt").exists()


# ---- malicious and broken files ------------------------------------------------------------------
def _rezip(src, dst, replace):
    """Copy the zip ``src`` to ``dst`` with members' bytes replaced by ``replace[name](bytes)``."""
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zo:
        for info in zi.infolist():
            data = zi.read(info.filename)
            for suffix, fn in replace.items():
                if info.filename.endswith(suffix):
                    data = fn(data)
            zo.writestr(info.filename, data)


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class _EvilSystem:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_reduce_payloads_are_refused_before_running(tmp_path):
    marker = tmp_path / "pwned"
    for i, evil in enumerate([_Evil(str(marker)), _EvilSystem(str(marker))]):
        torch.save({"w": torch.ones(2), "x": evil}, tmp_path / f"evil{i}.pt")
        assert not marker.exists()
        with pytest.raises(UnsafeFileError) as e:
            dg.load(tmp_path / f"evil{i}.pt")
        assert ("open" if i == 0 else "system") in str(e.value)
        assert f"evil{i}.pt" in str(e.value) and "data.pkl" in str(e.value)
        torch.save({"x": evil}, tmp_path / f"legacy{i}.pt", _use_new_zipfile_serialization=False)
        with pytest.raises(UnsafeFileError):
            dg.load(tmp_path / f"legacy{i}.pt")
        assert not marker.exists()
    # a raw pickle (not torch's layout) stays refused outright
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(UnsafeFileError, match="pickle"):
        dg.load(tmp_path / "raw.pkl")
    (tmp_path / "rawevil.pkl").write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(UnsafeFileError):
        dg.load(tmp_path / "rawevil.pkl")
    assert not marker.exists()


def test_unknown_global_is_named(tmp_path):
    torch.save(torch.nn.Linear(2, 3), tmp_path / "module.pt")       # a whole module, not a state dict
    with pytest.raises(UnsafeFileError, match=r"torch\.nn\.modules\.linear\.Linear"):
        dg.load(tmp_path / "module.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "ok.pt")
    _rezip(tmp_path / "ok.pt", tmp_path / "np.pt",
           {"data.pkl": lambda b: b.replace(b"ctorch._utils\n_rebuild_tensor_v2\n", b"cnumpy\nfrombuffer\n")})
    with pytest.raises(UnsafeFileError, match=r"numpy\.frombuffer"):
        dg.load(tmp_path / "np.pt")


def test_truncated_and_lying_files(tmp_path):
    torch.save({"w": torch.arange(6.0)}, tmp_path / "ok.pt")
    blob = (tmp_path / "ok.pt").read_bytes()
    for n in (len(blob) // 2, len(blob) - 30, 40):
        (tmp_path / "cut.pt").write_bytes(blob[:n])
        with pytest.raises(FileError, match="cut.pt"):
            dg.load(tmp_path / "cut.pt")
    # the storage size in the pickle lies (100 elements where the member holds 6)
    _rezip(tmp_path / "ok.pt", tmp_path / "lie.pt", {"data.pkl": lambda b: b.replace(b"K\x06", b"Kd", 1)})
    with pytest.raises(FileError, match=r"data/0") as e:
        dg.load(tmp_path / "lie.pt")
    assert "lie.pt" in str(e.value)
    # the member is shorter than the pickle says
    _rezip(tmp_path / "ok.pt", tmp_path / "short.pt", {"data/0": lambda b: b[:12]})
    with pytest.raises(FileError, match=r"data/0"):
        dg.load(tmp_path / "short.pt")
    # an offset that runs past the storage: offset 4 + 6 elements on a storage of 6
    _rezip(tmp_path / "ok.pt", tmp_path / "off.pt", {"data.pkl": lambda b: b.replace(b"QK\x00", b"QK\x04", 1)})
    with pytest.raises(FileError, match="out of range"):
        dg.load(tmp_path / "off.pt")
    # a stride that runs past it
    torch.save({"w": torch.arange(6.0).view(2, 3).t()}, tmp_path / "st.pt")
    _rezip(tmp_path / "st.pt", tmp_path / "stride.pt", {"data.pkl": lambda b: b.replace(b"K\x01K\x03\x86", b"K\x01K\x09\x86", 1)})
    with pytest.raises(FileError, match="out of range"):
        dg.load(tmp_path / "stride.pt")
    # a missing storage member
    _rezip(tmp_path / "ok.pt", tmp_path / "gone.pt", {"data.pkl": lambda b: b.replace(b"X\x01\x00\x00\x000", b"X\x01\x00\x00\x009", 1)})
    with pytest.raises(FileError, match="data/9"):
        dg.load(tmp_path / "gone.pt")
    # a corrupt pickle
    _rezip(tmp_path / "ok.pt", tmp_path / "junk.pt", {"data.pkl": lambda b: b[:len(b) // 2]})
    with pytest.raises(FileError, match="data.pkl"):
        dg.load(tmp_path / "junk.pt")


def test_build_and_odd_arguments_refused(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "ok.pt")
    od = b"ccollections\nOrderedDict\n)R"
    cases = {
        # a BUILD (setting attributes) with anything but a state dict's _metadata
        "build.pt": b"\x80\x02" + od + b"}X\x03\x00\x00\x00fooK\x01sb.",
        # a BUILD on a list
        "buildlist.pt": b"\x80\x02]}b.",
        # a persistent id that is not a storage record
        "pid.pt": b"\x80\x02X\x03\x00\x00\x00abcQ.",
        # torch.Size with a negative entry, via a tensor rebuild
        "size.pt": (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
                    b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00J\xff\xff\xff\xff\x85K\x01\x85\x89" + od + b"tR."),
        # an OrderedDict called with arguments (that could smuggle in values)
        "odargs.pt": b"\x80\x02ccollections\nOrderedDict\n]\x85R.",
    }
    for name, pkl in cases.items():
        _rezip(tmp_path / "ok.pt", tmp_path / name, {"data.pkl": lambda b, pkl=pkl: pkl})
        with pytest.raises(FileError, match="data.pkl") as e:
            dg.load(tmp_path / name)
        assert name in str(e.value)


# ---- the model summary -----------------------------------------------------------------------------
def test_summary_counts_by_hand():
    nn = dg.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    s = dg.utils.summary(model, input_size=(2, 3, 4, 4), verbose=0)
    conv_p, lin_p = 3 * 8 * 9 + 8, 128 * 10 + 10
    assert s.total_params == conv_p + lin_p == sum(p.numel() for p in torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Linear(128, 10)).parameters())
    assert s.trainable_params == s.total_params and s.non_trainable_params == 0
    rows = {r.name: r for r in s.summary_list}
    assert rows["0"].output_size == [2, 8, 4, 4] and rows["3"].output_size == [2, 10]
    assert rows["0"].macs == conv_p * 2 * 4 * 4          # per weight, per output pixel, per sample
    assert rows["3"].macs == lin_p * 2
    assert rows["1"].macs == 0 and rows["2"].output_size == [2, 128]
    assert s.total_mult_adds == conv_p * 32 + lin_p * 2
    text = str(s)
    assert "├─Conv2d: 1-1" in text and "├─Linear: 1-4" in text and "[2, 8, 4, 4]" in text
    assert f"Total params: {conv_p + lin_p:,}" in text and "Non-trainable params: 0" in text
    assert f"Total mult-adds (M): {(conv_p * 32 + lin_p * 2) / 1e6:.2f}" in text


def test_summary_nested_frozen_embedding_and_transposed():
    nn = dg.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 6)
            self.body = nn.Sequential(nn.Linear(6, 5), nn.Sequential(nn.Linear(5, 4)))
            self.up = nn.ConvTranspose2d(4, 2, 3, stride=2)

        def forward(self, ids):
            h = self.body(self.emb(ids))                     # (B, T, 4)
            return self.up(h.permute(0, 2, 1).unsqueeze(-1))  # (B, 4, T, 1) -> (B, 2, 2T+1, 3)

    net = Net()
    for p in net.emb.parameters():
        p.requires_grad_(False)
    was = net.training
    s = dg.utils.summary(net, input_size=(3, 7), dtypes=[dg.int64], depth=1, verbose=0)
    assert net.training == was
    assert s.total_params == 20 * 6 + (6 * 5 + 5) + (5 * 4 + 4) + (4 * 2 * 9 + 2)
    assert s.non_trainable_params == 120
    rows = {r.name: r for r in s.summary_list}
    assert rows["body.0"].macs == (6 * 5 + 5) * 3 * 7       # a Linear on (B, T, 6): per position
    assert rows["up"].output_size == [3, 2, 15, 3]
    assert rows["up"].macs == (4 * 2 * 9 + 2) * 3 * 7 * 1     # transposed: per input pixel
    text = str(s)
    assert "body.1" not in text and "└─" not in text        # depth=1 hides the nested rows
    assert "├─Sequential: 1-2" in text
    body_line = next(line for line in text.splitlines() if "Sequential: 1-2" in line)
    assert f"{(6 * 5 + 5) + (5 * 4 + 4):,}" in body_line    # a collapsed row shows its subtree's params
    with pytest.raises(ValueError, match="input_size"):
        dg.utils.summary(net, verbose=0)


def test_summary_of_resnet18_matches_torchinfo_totals():
    s = dg.utils.summary(models.resnet18(), input_size=(1, 3, 224, 224), verbose=0, depth=1)
    assert s.total_params == 11_689_512
    # torchinfo reports 1.81 G mult-adds for ResNet-18 (its count adds BatchNorm's 2C per sample, ~10k)
    assert abs(s.total_mult_adds - 1.81e9) < 0.01e9


def test_expansion_budget_and_map_location(tmp_path):
    torch.save({"e": torch.ones(1).expand(10 ** 8)}, tmp_path / "expand.pt")   # a 400 MB view of 4 bytes
    assert (tmp_path / "expand.pt").stat().st_size < 10_000
    with pytest.raises(FileError, match="expand"):
        dg.load(tmp_path / "expand.pt")
    torch.save({"e": torch.arange(3.0)[:1].expand(2, 3), "n": [torch.ones(2)]}, tmp_path / "small.pt")
    back = dg.load(tmp_path / "small.pt", map_location="cpu")
    assert back["e"].tolist() == [[0.0] * 3] * 2 and back["n"][0].tolist() == [1.0, 1.0]


def test_summary_with_input_data_and_columns():
    nn = dg.nn
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.Linear(3, 1))
    model.train()
    s = dg.utils.summary(model, input_data=dg.ones(5, 4), col_names=("output_size", "num_params", "trainable"),
                         verbose=0)
    assert model.training
    assert s.total_params == 4 * 3 + 3 + 3 + 1 and s.total_mult_adds == (15 + 4) * 5
    assert "Trainable" in str(s) and "Mult-Adds" not in str(s).splitlines()[1]
    with pytest.raises(ValueError, match="unknown column"):
        dg.utils.summary(model, input_size=(1, 4), col_names=("bogus",), verbose=0)
