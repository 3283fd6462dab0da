"""`deepgrad train RECIPE --device cuda`: the device reaches the model, the batches and the
optimiser state (checked on the strict CuPy stand-in with the fused-kernel paths on, as they run
on a GPU); without a GPU the command fails at once with deepgrad's "no CUDA" message; the
multi-phase recipes that compute with NumPy directly refuse the device clearly."""
import json
import os

import pytest

from deepgrad import backend, cli
from deepgrad.ops import _cuda_kernels as _ck
from deepgrad.testing import strict_cuda

DATA = os.environ.get("DEEPGRAD_DATA") or os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "shared", "datasets")
needs_mnist = pytest.mark.skipif(not os.path.isdir(os.path.join(DATA, "mnist")), reason="MNIST not found")


@needs_mnist
def test_train_mlp_on_the_device(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DEEPGRAD_DATA", DATA)
    out = tmp_path / "run"
    with strict_cuda():
        _ck.FORCE[0] = True
        try:
            rc = cli.main(["train", "mnist-mlp", "--subset", "128", "--epochs", "1", "--batch-size", "64",
                           "--out", str(out), "--verbose", "0", "--device", "cuda"])
        finally:
            _ck.FORCE[0] = False
    assert rc == 0
    result = json.loads((out / "result.json").read_text())
    assert 0.0 <= result["test"]["accuracy"] <= 1.0
    assert "mnist-mlp: test loss" in capsys.readouterr().out


def test_train_without_a_gpu_names_what_to_install(capsys, monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    assert cli.main(["train", "mnist-mlp", "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert "Torch not compiled with CUDA enabled" in err and "cupy-cuda12x" in err


def test_multi_phase_recipe_refuses_the_device(capsys):
    with strict_cuda():
        assert cli.main(["train", "mnist-rbm", "--device", "cuda"]) == 1
    assert "trains on the CPU only" in capsys.readouterr().err
