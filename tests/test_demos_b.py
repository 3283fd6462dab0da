"""The lecture demos 8-15 in quick mode (issue 13): each must show what its lecture says, write its
figures, and the per-deck notebooks must execute top to bottom in quick mode."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import deepgrad as dg
import deepgrad.demos as demos
from deepgrad.demos import _b_common

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("deck*.py"))


@pytest.fixture(autouse=True)
def _one_thread():
    """One BLAS thread: on a busy 2-core machine OpenBLAS's spinning threads cost 10-50x."""
    old = dg.get_num_threads()
    dg.set_num_threads(1)
    yield
    dg.set_num_threads(old)


def _pngs(out, names=None):
    files = sorted(Path(out).glob("*.png"))
    assert files, f"no PNG written into {out}"
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
    if names:
        assert {f.name for f in files} >= set(names)
    return files


def test_b_demos_are_discovered():
    table = demos.available()
    for name in ("regularization", "batch-norm", "augmentation", "visualize", "transfer", "depth", "word-vectors",
                 "rnn-gradients"):
        assert name in table
        assert table[name].DECKS and all(isinstance(d, str) and len(d) == 3 for d in table[name].DECKS)


def test_regularization(tmp_path, capsys):
    r = demos.run("regularization", quick=True, out=tmp_path)
    printed = capsys.readouterr().out
    assert "1.25%" in printed and "1.60%" in printed               # Srivastava et al.'s numbers beside ours
    # dropout fits the training set more slowly (its noise is the regulariser)
    assert r["dropout_train_error"] > r["standard_train_error"]
    assert r["standard_test_error"] < 0.5 and r["dropout_test_error"] < 0.5
    # weight decay shrinks the weights, as (1 - lr*lambda) w says
    assert r["weight_norm_decay"] < 0.95 * r["weight_norm_plain"]
    # early stopping: validation loss turned up after its best point while training loss kept falling
    assert r["best_step"] < r["early_stop_step"]
    assert r["final_val_loss"] > r["best_val_loss"]
    assert r["final_train_loss"] < r["best_val_loss"]
    # Zhang et al.: random labels memorised, test accuracy at chance
    assert r["random_labels_train_acc"] >= 0.9
    assert r["random_labels_test_acc"] < 0.2
    assert r["true_labels_test_acc"] > 0.5
    _pngs(tmp_path, ["regularization_dropout.png", "regularization_early_stopping.png",
                     "regularization_random_labels.png"])


def test_batch_norm(tmp_path, capsys):
    r = demos.run("batch-norm", quick=True, out=tmp_path)
    assert "14x" in capsys.readouterr().out
    assert r["steps_bn"] is not None
    assert r["steps_plain"] is None or r["steps_bn"] < r["steps_plain"]
    assert r["final_acc_bn"] > r["final_acc_plain"]
    assert r["speedup"] > 1
    _pngs(tmp_path, ["batch_norm.png"])


def test_augmentation(tmp_path):
    r = demos.run("augmentation", quick=True, out=tmp_path)
    assert r["augmented_changed"] > 0.01                     # the augmented copies differ from the images
    # augmentation makes the training set harder to memorise: lower training accuracy, smaller gap
    assert r["train_acc_aug"] < r["train_acc_plain"]
    assert (r["train_acc_aug"] - r["test_acc_aug"]) < (r["train_acc_plain"] - r["test_acc_plain"])
    assert r["test_acc_aug"] > 0.2 and r["test_acc_plain"] > 0.2            # both learn (chance 10%)
    _pngs(tmp_path, ["augmentation_grid.png", "augmentation_loss.png"])


def test_augmentation_pieces():
    from deepgrad.demos.augmentation import make_augment
    dg.manual_seed(0)
    x = np.random.default_rng(0).random((4, 3, 16, 16)).astype(np.float32)
    a = make_augment(16)(x)
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1 and not np.allclose(a, x)


def test_visualize(tmp_path):
    r = demos.run("visualize", quick=True, out=tmp_path)
    assert r["test_acc"] > 0.7
    assert r["filter_shape"] == (6, 5, 5)
    assert r["cifar_train_acc"] > 0.15                       # the CIFAR CNN has started to learn (chance 10%)
    assert r["am_logit_gain"] > 1.0                          # gradient ascent raised the class logits
    assert r["am_classified_as_target"] >= 7                 # ... and the images read as their classes
    assert r["am_channel_gain"] > 0
    assert r["saliency_nonzero"] > 0.5
    assert r["deconv_shape"] == (1, 1, 28, 28) and 0 < r["deconv_nonzero"] < 1   # localised projections
    _pngs(tmp_path, ["visualize_filters.png", "visualize_class_maximisation.png",
                     "visualize_channel_maximisation.png", "visualize_saliency.png", "visualize_deconvolution.png",
                     "visualize_cifar_filters.png"])


def test_deconvolution_uses_the_switches():
    """Max-unpooling puts each value back where the forward pooling found its maximum: a projection
    of one activation lands inside that activation's receptive field only."""
    from deepgrad.demos.visualize import deconvolve
    from deepgrad.models import LeNet5
    dg.manual_seed(0)
    model = LeNet5().eval()
    img = np.zeros((1, 1, 28, 28), np.float32)
    img[0, 0, 4:12, 4:12] = 1.0                               # a blob in the top-left corner
    r, v = deconvolve(model, img, 0)
    assert r.shape == (1, 1, 28, 28)
    if v > 0:
        nz = np.argwhere(np.abs(r[0, 0]) > 0)
        # receptive field of one conv2 unit: 14 input pixels (5 + 2*4 + 1), within the image
        assert (nz.max(0) - nz.min(0)).max() <= 14


def test_transfer(tmp_path):
    r = demos.run("transfer", quick=True, out=tmp_path)
    assert r["pretrain_test_acc"] > 0.35                     # 5 classes: chance 20%
    assert r["frozen_trainable"] < r["finetune_trainable"] == r["scratch_trainable"]
    assert max(r["frozen_acc"], r["finetune_acc"]) > r["scratch_acc"]   # pretrained features help
    for k in ("frozen_acc", "finetune_acc", "scratch_acc"):
        assert r[k] > 0.25
    _pngs(tmp_path, ["transfer.png"])


def test_depth(tmp_path):
    r = demos.run("depth", quick=True, out=tmp_path)
    # He et al.'s degradation: the deeper plain net trains worse; the residual one does not
    assert r["plain_degrades"]
    assert r["plain22_train_error"] > r["plain4_train_error"] + 0.1
    assert r["resnet22_train_error"] < r["plain22_train_error"] - 0.2
    assert r["resnet22_train_error"] < r["resnet4_train_error"] + 0.1
    _pngs(tmp_path, ["depth.png"])


def test_word_vectors(tmp_path, capsys):
    r = demos.run("word-vectors", quick=True, out=tmp_path)
    printed = capsys.readouterr().out
    assert "king - man + woman" in printed and "12+34 =" in printed
    assert r["analogy_top"] == "queen"                       # on the planted synthetic corpus
    assert {"crown", "throne", "reign", "royal"} & set(r["king_neighbours"])
    for s, a, truth in r["sums"]:
        assert a == "" or a.isdigit()
        assert truth == str(eval(s))                         # noqa: S307 (digits and '+')
    assert 0 <= r["seq2seq_test"]["exact_match"] <= 1
    _pngs(tmp_path, ["word_vectors_pca.png"])


def test_answer_sums_rejects_bad_input(tmp_path):
    from deepgrad.demos.word_vectors import answer_sums
    from deepgrad.recipes._runner import train_recipe
    r = train_recipe("seq2seq-addition", out=str(tmp_path), verbose=0, plots=False, epochs=1, steps_per_epoch=1,
                     batch_size=8, hidden=8, embed=4, max_digits=2, n_val=10, n_test=10)
    with pytest.raises(ValueError, match="at most 2 digits"):
        answer_sums(r["checkpoint"], ["123+4"])
    with pytest.raises(ValueError, match="'a\\+b'"):
        answer_sums(r["checkpoint"], ["1-2"])
    from deepgrad.demos.word_vectors import main
    assert main(["--seq2seq", r["checkpoint"], "12+34", "5+7"]) == 0      # typed-in sums, from the command line
    assert main(["--seq2seq", r["checkpoint"], "1234+5"]) == 1
    assert main(["--word2vec", r["checkpoint"]]) == 1                     # not a word2vec checkpoint


def test_rnn_gradients(tmp_path):
    r = demos.run("rnn-gradients", quick=True, out=tmp_path)
    assert r["ratio_tanh_0.5"] < 1e-3                        # vanishing through time
    assert r["ratio_relu_1.5"] > 1e2                         # exploding through time
    assert not r["unclipped_finite"]                         # unclipped training blows up
    assert r["clipped_finite"] and np.isfinite(r["clipped_final_loss"])
    _pngs(tmp_path, ["rnn_gradients.png"])


def test_missing_dataset_names_file_and_places(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGRAD_DATA", str(tmp_path))
    monkeypatch.setattr("deepgrad.data.datasets.shared_datasets_dir", lambda *a, **k: None)
    monkeypatch.setattr("deepgrad.data.datasets._paths.default_root", lambda: tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as e:
        _b_common.cifar_arrays(10)
    msg = str(e.value)
    assert "data_batch_1.bin.gz" in msg and str(tmp_path) in msg


def test_notebooks_run_in_quick_mode(tmp_path):
    """Every notebook's code cells run top to bottom with DEEPGRAD_QUICK=1 (two at a time, each in its own
    process and folder) and writes figures."""
    env = {**os.environ, "DEEPGRAD_QUICK": "1", "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    assert NOTEBOOKS
    pending, running, failures = list(NOTEBOOKS), [], []
    while pending or running:
        while pending and len(running) < 2:
            nb = pending.pop(0)
            cwd = tmp_path / nb.stem
            cwd.mkdir()
            log = open(cwd / "log.txt", "w+")
            script = cwd / "cells.py"          # the .ipynb's code cells, in order, as the kernel runs them
            script.write_text("\n\n".join("".join(c["source"]) for c in
                                           json.loads(nb.with_suffix(".ipynb").read_text())["cells"]
                                           if c["cell_type"] == "code") + "\n")
            proc = subprocess.Popen([sys.executable, str(script)], cwd=cwd, env={**env, "DEEPGRAD_DEMO_OUT": str(cwd)},
                                    stdout=log, stderr=subprocess.STDOUT, text=True)
            running.append((nb, cwd, log, proc))
        nb, cwd, log, proc = running.pop(0)
        try:
            rc = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "timeout"
        log.seek(0)
        text = log.read()
        log.close()
        if rc != 0:
            failures.append(f"{nb.name} (exit {rc}):\n{text[-3000:]}")
        elif not list(cwd.rglob("*.png")):
            failures.append(f"{nb.name}: wrote no figure")
    assert not failures, "\n\n".join(failures)


def test_notebooks_exist_for_every_deck():
    decks = {p.name[4:7] for p in NOTEBOOKS}
    assert decks == {"000", "001", "002", "003", "004"}
    for p in NOTEBOOKS:
        text = p.read_text()
        assert text.count("# %% [markdown]") >= 2 and "# %%\n" in text


def test_ipynb_files_match_their_scripts():
    """Each notebooks/deckNNN_*.ipynb is a valid nbformat-4 notebook generated from its py:percent
    script by tools/notebooks.py, with the same cells (so the .py under review is what Jupyter runs)."""
    nbformat = pytest.importorskip("nbformat")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import notebooks as tool
    finally:
        sys.path.remove(str(ROOT / "tools"))
    for py in NOTEBOOKS:
        ipynb = py.with_suffix(".ipynb")
        assert ipynb.exists(), f"{ipynb.name} missing: run python tools/notebooks.py"
        nb = nbformat.read(str(ipynb), as_version=4)
        nbformat.validate(nb)
        assert ipynb.read_text() == tool.render(py), f"{ipynb.name} is stale: run python tools/notebooks.py"
        text = py.read_text()
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert len(code) == text.count("# %%\n") and all(src.strip() in text for src in code)
        assert sum(c.cell_type == "markdown" for c in nb.cells) == text.count("# %% [markdown]")


def test_notebook_converter_rejects_malformed_script(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import notebooks as tool
    finally:
        sys.path.remove(str(ROOT / "tools"))
    cells = tool.cells_from_script("# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\n# %%\n")
    assert [c["cell_type"] for c in cells] == ["markdown", "code"]
    assert cells[0]["source"] == ["# Title\n", "\n", "text"] and cells[1]["source"] == ["x = 1"]
    with pytest.raises(ValueError, match="markdown cell line"):
        tool.cells_from_script("# %% [markdown]\nnot a comment\n")
    with pytest.raises(ValueError, match="before the first"):
        tool.cells_from_script("x = 1\n# %%\n")
