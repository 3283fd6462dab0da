"""The unsupervised recipes (issue 11) end to end at smoke size: tiny layer sizes, a few hundred
MNIST images, one epoch. Each prints the paper's number beside deepgrad's, writes its PNG figures,
weights and result.json. MNIST comes from the shared datasets folder; skipped without it."""
import json
import os

import numpy as np
import pytest

from deepgrad import cli, load
from deepgrad.data import shared_datasets_dir
from deepgrad.recipes import get_recipe, train_recipe

pytestmark = pytest.mark.usefixtures("one_blas_thread")     # see tests/conftest.py


needs_mnist = pytest.mark.skipif(shared_datasets_dir() is None or not (shared_datasets_dir() / "mnist").is_dir(),
                                 reason="MNIST not in the shared datasets folder")

SMOKE = {
    "mnist-deep-autoencoder": dict(sizes=[784, 32, 16, 4], epochs=1, rbm_epochs=1, fig3_epochs=1, fig3_rbm_epochs=1),
    "mnist-sparse-autoencoder": dict(hidden=16, epochs=1, max_iter=15),
    "mnist-stacked-autoencoder": dict(sizes=[784, 32, 16, 10], epochs=2, pretrain_epochs=1, labels=100),
    "mnist-dbn": dict(sizes=[784, 32, 32, 64], epochs=1, rbm_epochs=1, gibbs_steps=5, n_samples=10),
    "mnist-rbm": dict(hidden=16, epochs=1, gibbs_steps=9, ais_betas=50, ais_chains=10),
}
FIGURES = {"mnist-deep-autoencoder": ["fig2_reconstructions.png", "fig3_codes.png"],
           "mnist-sparse-autoencoder": ["filters.png"], "mnist-stacked-autoencoder": ["filters.png"],
           "mnist-dbn": ["samples.png"], "mnist-rbm": ["filters.png", "samples.png"]}
PAPER = {"mnist-deep-autoencoder": "13.87", "mnist-dbn": "1.25", "mnist-rbm": "-86.00",
         "mnist-sparse-autoencoder": "0.20", "mnist-stacked-autoencoder": "> 0"}


@needs_mnist
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_recipe_smoke(name, tmp_path, capsys):
    out = tmp_path / name
    r = train_recipe(name, out=str(out), verbose=0, subset=200, **SMOKE[name])
    printed = capsys.readouterr().out
    assert PAPER[name] in printed                      # the paper's figure beside deepgrad's
    for f in FIGURES[name]:
        p = out / f
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
    assert all(np.isfinite(v) for v in r["test"].values())
    saved = json.loads((out / "result.json").read_text())
    assert saved["recipe"] == name and saved["test"] == pytest.approx(r["test"])
    assert load(r["checkpoint"])                       # the weights reload


@needs_mnist
def test_cli_runs_an_unsupervised_recipe(tmp_path, capsys):
    out = tmp_path / "rbm"
    assert cli.main(["train", "mnist-rbm", "--subset", "150", "--epochs", "1", "--out", str(out), "-q",
                     "--set", "hidden=8", "--set", "gibbs_steps=9", "--set", "ais_betas=0"]) == 0
    text = capsys.readouterr().out
    assert "pseudo_log_likelihood" in text and os.path.isfile(out / "samples.png")
    with pytest.raises(ValueError, match="cannot --resume"):
        train_recipe("mnist-rbm", resume=str(out / "model.npz"))


def test_recipes_registered():
    for name in SMOKE:
        r = get_recipe(name)
        assert r.reproduces and r.custom_run
