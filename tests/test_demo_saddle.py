"""The saddle-points demo (issues 12 and 13): in quick mode it must show Dauphin et al.'s relation
(critical points of higher index have higher training error), eigendecompose the true Hessian, and
show a CNN loss Hessian's bulk-and-outliers spectrum."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import deepgrad as dg
import deepgrad.demos as demos
from deepgrad.autograd.functional import hessian
from deepgrad.demos import saddle_points as S


@pytest.fixture(autouse=True)
def _one_thread():
    old = dg.get_num_threads()
    dg.set_num_threads(1)
    yield
    dg.set_num_threads(old)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("saddle")
    old = dg.get_num_threads()
    dg.set_num_threads(1)
    try:
        return demos.run("saddle-points", quick=True, out=out), out
    finally:
        dg.set_num_threads(old)


def _tiny(n_img=24, hidden=2):
    x, y = S.mnist_10x10(n_img)
    return S.StackedMLP(x, y, hidden, weight_decay=1e-2)


def test_discovered():
    mod = demos.available()["saddle-points"]
    assert mod is S and mod.DECKS == ("000",)


def test_index_grows_with_error(quick):
    r, _ = quick
    assert r["n_points"] >= 6
    assert r["spearman"] > 0.3 and r["pearson"] > 0.0
    idx, err = np.array(r["index"]), np.array(r["error"])
    assert idx.max() > 0.03 and idx.max() > 3 * idx.min()        # saddles of several indices were reached
    # the highest-error points are saddles (negative curvature), the lowest-error one the flattest
    assert idx[np.argmax(err)] > idx[np.argmin(err)]
    # minimising |grad L|^2 brought the points (much) closer to criticality
    assert np.median(r["grad_norm"]) < 0.2 * np.median(r["grad_norm_start"])
    assert r["hvp_check"] < 1e-10


def test_eigenvalues_are_those_of_the_hessian(quick):
    r, _ = quick
    H = r["example_hessian"]
    assert H.shape == (r["n_params_mlp"], r["n_params_mlp"])
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    ref = np.linalg.eigh(H)[0]
    np.testing.assert_allclose(r["example_eigenvalues"], ref, atol=1e-10 * np.abs(ref).max())
    assert S.index_of(ref)[0] == pytest.approx(r["index"][int(np.argmax(r["error"]))])


def test_stacked_hessian_equals_functional_and_torch():
    torch = pytest.importorskip("torch")
    model = _tiny()
    theta = model.init(1, 1.0, np.random.default_rng(3))[0] + 0.01
    H = model.hessians(theta[None], chunk=100)[0]
    Hf = hessian(model.loss_fn(), dg.tensor(theta)).numpy()
    np.testing.assert_allclose(H, Hf, atol=1e-12)

    X, Y = torch.tensor(model.x), torch.tensor(model.y)

    def f(t):
        h, d = model.h, model.d
        W1, b1 = t[:h * d].reshape(h, d), t[h * d:h * d + h]
        W2, b2 = t[h * d + h:h * d + h + 10 * h].reshape(10, h), t[h * d + h + 10 * h:]
        z = torch.tanh(X @ W1.T + b1) @ W2.T + b2
        return torch.nn.functional.cross_entropy(z, Y) + 0.5 * model.wd * (t * t).sum()

    Ht = torch.autograd.functional.hessian(f, torch.tensor(theta)).numpy()
    np.testing.assert_allclose(H, Ht, atol=1e-10)


def test_gradient_norm_minimisation_finds_a_saddle():
    """From next to the origin the Krylov Levenberg-Marquardt iteration converges to the saddle
    there (gradient ~ 0, negative eigenvalues), as Newton's method would; gradient descent on the
    loss would have left it."""
    model = _tiny()
    start = model.init(3, 0.05, np.random.default_rng(0))
    th, loss, err, gn, hist = S.minimise_gradient_norm(model, start, iters=12, krylov=30)
    assert np.all(np.diff(hist, axis=0) <= 0)                      # |grad L| never rises
    p = int(np.argmin(gn))
    assert gn[p] < 1e-8 < hist[0][p]
    lam = np.linalg.eigvalsh(model.hessians(th[p:p + 1])[0])
    assert lam[0] < -1e-3 and lam[-1] > 1e-3                       # a saddle, not a minimum
    assert 0 < S.index_of(lam)[0] < 0.5


def test_correlations():
    a = np.array([1.0, 2.0, 3.0, 4.0, 4.0])
    b = np.array([2.0, 1.0, 5.0, 7.0, 6.0])
    sp, pe = S.correlations(a, b)
    assert pe == pytest.approx(np.corrcoef(a, b)[0, 1])
    ra, rb = np.array([0, 1, 2, 3.5, 3.5]), np.array([1, 0, 2, 4, 3])
    assert sp == pytest.approx(np.corrcoef(ra, rb)[0, 1])


def test_cnn_spectrum_has_outliers_over_a_bulk(quick):
    r, out = quick
    for name in ("MNIST", "CIFAR-10"):
        s = r["spectra"][name]
        top = np.array(s["top"])
        assert np.all(np.diff(top) <= 1e-9) and top[0] > 0
        assert s["ratio"] > 20 and top[0] > 20 * s["bulk_median"]
        assert s["mass_near_zero"] > 0.4
    files = {f.name for f in Path(out).glob("*.png")}
    assert files >= {"saddle_points_index.png", "saddle_points_spectra.png"}
    for f in Path(out).glob("*.png"):
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_cifar_is_named_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGRAD_DATA", str(tmp_path))
    monkeypatch.setattr("deepgrad.data.datasets.shared_datasets_dir", lambda *a, **k: None)
    monkeypatch.setattr("deepgrad.data.datasets._paths.default_root", lambda: tmp_path / "nowhere")
    monkeypatch.setattr(S, "index_vs_error", lambda *a: pytest.fail("started before checking the data"))
    with pytest.raises(FileNotFoundError) as e:
        demos.run("saddle-points", quick=True, out=tmp_path / "out")
    assert "data_batch_1.bin.gz" in str(e.value) and str(tmp_path) in str(e.value)
