"""The deepgrad command line and the recipes behind it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import cli
from deepgrad.recipes import get_recipe, list_recipes, train_recipe

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "deepgrad", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_import_is_light_and_python_m_works():
    code = ("import sys, deepgrad; heavy = [m for m in ('tqdm', 'matplotlib', 'torch', 'PIL') if m in sys.modules]; "
            "assert not heavy, heavy")
    env = {**os.environ, "PYTHONPATH": REPO}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == 0
    r = run_cli("--help")
    assert r.returncode == 0 and "train" in r.stdout and "predict" in r.stdout


@pytest.mark.parametrize("command", [[], ["recipes"], ["train"], ["evaluate"], ["predict"], ["sample"]])
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: deepgrad" in out
    if command == ["train"]:
        for opt in ("--epochs", "--batch-size", "--lr", "--optimizer", "--seed", "--data", "--out", "--resume"):
            assert opt in out


def test_recipes_listing(capsys):
    assert cli.main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist-mlp", "mnist-softmax", "xor-mlp"):
        assert name in out
    assert "reproduces" in out
    assert {r.name for r in list_recipes()} >= {"mnist-mlp", "mnist-softmax", "xor-mlp"}


def test_unknown_recipe_lists_known_ones(capsys):
    assert cli.main(["train", "no-such-recipe"]) == 1
    err = capsys.readouterr().err
    assert "unknown recipe 'no-such-recipe'" in err and "mnist-mlp" in err and "xor-mlp" in err
    with pytest.raises(KeyError, match="hidden_size"):
        get_recipe("mnist-mlp").hparams(hidden_size=3)


def test_bad_checkpoint_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint")
    assert cli.main(["evaluate", str(bad)]) == 1
    assert "bad.npz" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "none.npz"), "x.png"]) == 1
    assert "none.npz" in capsys.readouterr().err


def test_train_xor_end_to_end_subprocess(tmp_path):
    out = tmp_path / "xor"
    r = run_cli("train", "xor-mlp", "--epochs", "6", "--out", str(out), "--seed", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "test accuracy 100.00%" in r.stdout
    assert str(out / "checkpoint.npz") in r.stdout and "loss.png" in r.stdout
    for f in ("checkpoint.npz", "history.csv", "history.json", "result.json", "loss.png", "accuracy.png"):
        assert (out / f).exists(), f
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 6 and result["hparams"]["seed"] == 1
    r = run_cli("evaluate", str(out / "checkpoint.npz"), cwd=tmp_path)
    assert r.returncode == 0 and "accuracy 100.00%" in r.stdout, r.stderr
    np.save(tmp_path / "points.npy", np.array([[0, 1], [1, 1]], np.float32))
    r = run_cli("predict", str(out / "checkpoint.npz"), str(tmp_path / "points.npy"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert "class 1 (probability" in lines[0] and "class 0 (probability" in lines[1]


def test_recipe_resume_matches_uninterrupted(tmp_path):
    full = train_recipe("xor-mlp", out=str(tmp_path / "full"), epochs=4, verbose=0, plots=False)
    train_recipe("xor-mlp", out=str(tmp_path / "part"), epochs=2, verbose=0, plots=False)
    ck = str(tmp_path / "part" / "checkpoint.npz")
    resumed = train_recipe("xor-mlp", resume=ck, epochs=4, verbose=0, plots=False)
    assert resumed["out"] == str(tmp_path / "part") and resumed["epochs"] == 4
    a = dg.load(full["checkpoint"])["model"]
    b = dg.load(resumed["checkpoint"])["model"]
    for k in a:
        assert (a[k].array == b[k].array).all()
    assert resumed["history"] == full["history"]


def test_mnist_mlp_recipe_on_a_subset(tmp_path, capsys):
    out = tmp_path / "mnist"
    assert cli.main(["train", "mnist-mlp", "--subset", "300", "--epochs", "1", "--batch-size", "50",
                     "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "mnist-mlp: test loss" in text and "after 1 epochs" in text and "checkpoint:" in text
    result = json.loads((out / "result.json").read_text())
    assert result["test"]["accuracy"] > 0.3                    # 300 images, 6 steps: well above chance
    # predict a test digit saved as a PNG (dark digit on white: the preprocessing inverts it)
    digits = dg.data.MNIST(train=False)
    img = 255 - np.asarray(digits.data[0])
    import matplotlib.image
    matplotlib.image.imsave(tmp_path / "digit.png", img, cmap="gray", vmin=0, vmax=255)
    assert cli.main(["predict", str(out / "checkpoint.npz"), str(tmp_path / "digit.png"), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(tmp_path / "digit.png") + ": class ") and line.count("probability") == 2
