"""The lecture demos 1-7 in quick mode: each must show what its lecture says (issue 13)."""
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

import deepgrad.demos as demos
from deepgrad import cli


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """The demos do many small matmuls: on a busy 2-core box OpenBLAS's threads spin against each
    other (10-30x slower); one thread keeps these tests to a few seconds each."""
    import deepgrad as dg
    before = dg.get_num_threads()
    dg.set_num_threads(1)
    yield
    dg.set_num_threads(before)


def _pngs(out):
    files = sorted(Path(out).glob("*.png"))
    assert files, f"no PNG written into {out}"
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
    return files


def test_discovery_finds_every_module():
    table = demos.available()
    for name in ("perceptron", "xor", "universal-approximation", "random-features", "gradient-descent",
                 "optimizers", "initialization"):
        assert name in table
    for name, mod in table.items():
        assert mod.NAME == name
        assert isinstance(mod.DECKS, tuple) and mod.DECKS
        assert isinstance(mod.SUMMARY, str) and mod.SUMMARY and "\n" not in mod.SUMMARY


def test_unknown_name_lists_available():
    with pytest.raises(KeyError) as e:
        demos.run("no-such-demo", quick=True)
    assert "perceptron" in str(e.value) and "no-such-demo" in str(e.value)


def test_cli_list_and_unknown(capsys):
    assert cli.main(["demo", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in demos.available():
        assert name in listed
    assert cli.main(["demo", "no-such-demo"]) == 1
    err = capsys.readouterr().err
    assert "unknown demo 'no-such-demo'" in err and "perceptron" in err


def test_cli_runs_a_demo(tmp_path, capsys):
    assert cli.main(["demo", "perceptron", "--quick", "--out", str(tmp_path)]) == 0
    assert "converged" in capsys.readouterr().out
    _pngs(tmp_path)


def test_perceptron(tmp_path):
    r = demos.run("perceptron", quick=True, out=tmp_path)
    assert r["logic_ok"]
    assert r["separable_converged"] and r["separable_accuracy"] == 1.0
    assert r["separable_updates"] <= r["novikoff_bound"]
    assert not r["xor_converged"] and r["xor_last_epoch_mistakes"] > 0 and r["xor_accuracy"] <= 0.75
    _pngs(tmp_path)


def test_random_features(tmp_path):
    r = demos.run("random-features", quick=True, out=tmp_path)
    # the deck's exact experiment: 2N=2000 points, D=2000 random features -> training accuracy 1.0
    assert r["deck_accuracy"] == 1.0
    ds, acc = r["sweep_d"], r["sweep_gauss"]
    n = r["sweep_n"]
    assert acc[0] < 0.9                                        # D << N: random labels not fitted
    assert all(a == 1.0 for d, a in zip(ds, acc) if d >= 1.5 * n)  # D well above N: separable
    assert acc == sorted(acc)                                  # grows with D
    assert r["sweep_cover"][0] < 0.01 and r["sweep_cover"][-1] > 0.99
    _pngs(tmp_path)


def test_xor(tmp_path):
    r = demos.run("xor", quick=True, out=tmp_path)
    assert r["linear_accuracy"] <= 0.8          # no line separates XOR
    assert r["linear_loss"] > 0.6               # logistic regression stays near chance (log 2)
    assert r["mlp_accuracy"] == 1.0 and r["mlp_loss"] < 0.05
    _pngs(tmp_path)


def test_universal_approximation(tmp_path):
    r = demos.run("universal-approximation", quick=True, out=tmp_path)
    built = r["sup_error_constructed"]
    assert all(b2 < b1 for b1, b2 in zip(built[1:], built[2:]))   # more ReLUs, smaller sup error
    assert built[-1] < 0.1 and r["constructed_slope"] < -1.3      # ~1/N^2 for a smooth target
    assert r["sup_error_trained"][-1] < 0.5 * r["sup_error_trained"][0]
    _pngs(tmp_path)


def test_gradient_descent(tmp_path):
    r = demos.run("gradient-descent", quick=True, out=tmp_path)
    batch, mini, sgd = r["labels"]
    one = r["loss_after_one_epoch"]
    assert one[sgd] < one[mini] < one[batch]             # per example seen, small batches win
    same = r["loss_after_same_updates"]
    assert same[batch] < same[sgd]                       # per update, the full gradient is better
    assert r["batch_monotone"]                           # full-batch GD with a small step never goes up
    assert all(v < 2.3 for v in r["final_loss"].values())
    _pngs(tmp_path)


def test_optimizers(tmp_path):
    r = demos.run("optimizers", quick=True, out=tmp_path)
    for sname, res in r["surfaces"].items():
        for oname, v in res.items():
            assert v["final_loss"] < v["start_loss"], (sname, oname)
    ros = r["surfaces"]["Rosenbrock"]
    # in the banana valley plain SGD crawls; momentum and Adam get further along it
    assert ros["momentum"]["final_loss"] < ros["SGD"]["final_loss"]
    assert ros["Adam"]["final_loss"] < ros["SGD"]["final_loss"]
    beale = r["surfaces"]["Beale"]
    assert beale["momentum"]["distance"] < beale["SGD"]["distance"]
    for oname, v in r["mnist"].items():
        assert v["final_loss"] < 0.75 * v["first_loss"], oname
    assert len(_pngs(tmp_path)) == 2


def test_initialization(tmp_path):
    r = demos.run("initialization", quick=True, out=tmp_path)
    # tanh: Xavier (with PyTorch's tanh gain) keeps the activation variance within a factor of 2
    # across the 20 layers; the naive init collapses it by orders of magnitude
    assert r["tanh/xavier-gain"]["act_spread"] < 2.0
    assert r["tanh/naive"]["act_spread"] > 1e4
    assert r["tanh/naive"]["act_var"][-1] < 1e-4 * r["tanh/naive"]["act_var"][0]
    # plain Xavier decays only slowly (tanh' < 1), far from the naive collapse
    assert r["tanh/naive"]["act_spread"] > 100 * r["tanh/xavier"]["act_spread"]
    # vanishing gradients: with the naive init the gradient reaching layer 1 is tiny
    assert r["tanh/naive"]["grad_ratio_first_last"] < 1e-4
    # ReLU: Kaiming keeps the scale (finite width: within ~2-3x); Xavier halves it per layer
    assert r["relu/kaiming"]["act_spread"] < 3.0
    assert 1e-3 < r["relu/kaiming"]["grad_ratio_first_last"] < 1e3
    assert r["relu/xavier"]["act_var"][-1] < 1e-3 * r["relu/xavier"]["act_var"][0]
    assert r["relu/naive"]["act_spread"] > r["relu/xavier"]["act_spread"]
    assert len(_pngs(tmp_path)) == 2


def test_missing_dataset_names_file_and_folder(tmp_path, monkeypatch):
    from deepgrad.demos import _common
    monkeypatch.setattr(_common, "find_datasets_root", lambda: tmp_path)
    _common._cifar_arrays.cache_clear()
    try:
        with pytest.raises(FileNotFoundError) as e:
            _common.cifar10_subset(10)
    finally:
        _common._cifar_arrays.cache_clear()
    msg = str(e.value)
    assert "CIFAR-10" in msg and "data_batch_1" in msg and str(tmp_path) in msg
