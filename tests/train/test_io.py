"""deepgrad.save / deepgrad.load: round trips, refusal of files that could run code, atomic writes."""
import io
import math
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import io as dgio
from deepgrad.io import UnsafeFileError


def _same(a, b):
    if isinstance(a, dg.Tensor):
        assert isinstance(b, dg.Tensor)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a.array, b.array, equal_nan=a.dtype.kind == "f")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b)
    else:
        assert type(a) is type(b) and a == b


def test_round_trip_nested(tmp_path):
    obj = {
        "w": dg.randn(3, 4), "scalar": dg.tensor(2.5), "empty": dg.zeros(0, 3), "half": dg.ones(2).half(),
        "long": dg.arange(5), "bool": dg.tensor([True, False]),
        "np": np.arange(6, dtype=np.int16).reshape(2, 3), "np_t": np.arange(6.0).reshape(2, 3).T,
        "np0": np.array(7, dtype=np.uint8), "npscalar": np.float32(1.5), "npint": np.int64(-3),
        "state": {0: {"step": 10, "exp_avg": dg.ones(2)}, 1: {}},
        "groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None, "name": "é✓"}],
        "floats": [math.inf, -math.inf, float("nan"), 0.1, 1e-300], "big": 2 ** 80, "neg": -(2 ** 70),
        "tuple_key": {(1, "a"): "x", None: 1, 2.5: 2, True: 3},
        "__dunder": 1, "od": OrderedDict([("b", 1), ("a", dg.ones(1))]), "nothing": None,
    }
    path = tmp_path / "obj.npz"
    dg.save(obj, path)
    _same(obj, dg.load(path))


def test_round_trip_module_and_optimizer(tmp_path):
    model = dg.nn.Sequential(dg.nn.Linear(4, 3), dg.nn.BatchNorm1d(3), dg.nn.Linear(3, 2))
    opt = dg.optim.Adam(model.parameters(), lr=0.01)
    model(dg.randn(5, 4)).sum().backward()
    opt.step()
    dg.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "m.npz")
    back = dg.load(tmp_path / "m.npz")
    model2 = dg.nn.Sequential(dg.nn.Linear(4, 3), dg.nn.BatchNorm1d(3), dg.nn.Linear(3, 2))
    model2.load_state_dict(back["model"])
    for (k, a), (k2, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert k == k2 and np.array_equal(a.array, b.array)
    opt2 = dg.optim.Adam(model2.parameters(), lr=0.5)
    opt2.load_state_dict(back["opt"])
    assert opt2.param_groups[0]["lr"] == 0.01
    _same(opt.state_dict()["param_groups"], opt2.state_dict()["param_groups"])


def test_file_objects_and_requires_grad():
    buf = io.BytesIO()
    p = dg.ones(2, requires_grad=True)
    dg.save([p, "x"], buf)
    buf.seek(0)
    out = dg.load(buf)
    assert out[1] == "x" and out[0].requires_grad and out[0].is_leaf


def test_unsupported_values_are_named():
    with pytest.raises(TypeError, match=r"obj\['f'\]"):
        dg.save({"f": lambda: 1}, io.BytesIO())
    with pytest.raises(TypeError, match="object array"):
        dg.save({"a": np.array([1, "x"], dtype=object)}, io.BytesIO())


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_refuses_pickle_without_running_it(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state": _Evil(str(marker))}, f, protocol=protocol)
    with pytest.raises(UnsafeFileError, match="evil.pt.*pickle"):
        dg.load(path)
    assert not marker.exists()


def test_refuses_npz_with_object_array(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    struct = np.frombuffer(b'{"format":"deepgrad.save","version":1,"obj":{"__ndarray__":"a0"}}', np.uint8)
    np.savez(path, a0=np.array([_Evil(str(marker))], dtype=object), __deepgrad__=struct)
    with pytest.raises(UnsafeFileError, match="object array"):
        dg.load(path)
    assert not marker.exists()


def test_refuses_torch_style_zip_of_pickles(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_Evil(str(marker))))
    with pytest.raises(UnsafeFileError, match="pickle"):
        dg.load(path)
    assert not marker.exists()


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        dg.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="junk.bin"):
        dg.load(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.ones(2))
    with pytest.raises(ValueError, match="plain.npz.*not one written by deepgrad"):
        dg.load(plain)
    good = tmp_path / "good.npz"
    dg.save({"w": dg.ones(1000)}, good)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ValueError, match="cut.npz"):
        dg.load(cut)
    forged = tmp_path / "forged.npz"
    np.savez(forged, __deepgrad__=np.frombuffer(b'{"format":"deepgrad.save","obj":{"__evil__":1}}', np.uint8))
    with pytest.raises(ValueError, match="unknown tag"):
        dg.load(forged)


def test_atomic_write_keeps_old_file_on_crash(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    dg.save({"version": 1, "w": dg.ones(3)}, path)
    before = path.read_bytes()
    real = np.lib.format.write_array
    calls = []

    def crashing(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:                   # crash after the first array is half written
            fp.write(b"partial")
            raise OSError("disk on fire")
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", crashing)
    with pytest.raises(OSError, match="disk on fire"):
        dg.save({"version": 2, "w": dg.zeros(3), "v": dg.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert dg.load(path)["version"] == 1
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]     # the temporary file was removed


def test_atomic_write_replaces(tmp_path):
    path = tmp_path / "sub" / "x.txt"
    dgio.atomic_write(path, lambda f: f.write(b"one"))
    assert path.stat().st_mode & 0o777 == 0o666 & ~dgio._UMASK     # not mkstemp's private 0600
    os.chmod(path, 0o640)
    dgio.atomic_write(path, lambda f: f.write(b"two"))
    assert path.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o640                      # an existing file keeps its mode
    assert os.listdir(tmp_path / "sub") == ["x.txt"]
