"""deepgrad.sklearn: the estimator contract (sklearn's own checks), model selection on top of it, a
fit compared step for step with a PyTorch loop, and the grid-search demo (issue 16).

scikit-learn is pinned in the test extra. Checks of sklearn.utils.estimator_checks that are
expected to fail, and why (also in docs/architecture.md, "scikit-learn estimators"):

* check_methods_subset_invariance, check_methods_sample_order_invariance: float32 matrix products
  round differently for different batch sizes (BLAS chooses other kernels, e.g. gemv for one row),
  so a prediction made on a subset can differ from the one made on the whole set in the last bit
  (~1e-7 relative, the check's tolerance). They pass on some BLAS builds and data; marked xfail
  (not strict) so that neither outcome fails the suite.
Skipped by sklearn itself here: check_array_api_input (needs SCIPY_ARRAY_API), the pandas checks
(pandas is not a test dependency).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import deepgrad as dg  # noqa: E402
from deepgrad import nn  # noqa: E402
from deepgrad.sklearn import MLP, NeuralNetClassifier, NeuralNetRegressor  # noqa: E402

BLAS_LAST_BIT = ("float32 BLAS results depend on the batch size in the last bit (~1e-7 relative), "
                 "the check's tolerance")
EXPECTED_FAILURES = {"check_methods_subset_invariance": BLAS_LAST_BIT,
                     "check_methods_sample_order_invariance": BLAS_LAST_BIT}


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    before = dg.get_num_threads()
    dg.set_num_threads(1)
    yield
    dg.set_num_threads(before)


@parametrize_with_checks([NeuralNetClassifier(random_state=0, module__hidden_sizes=(32,)),
                          NeuralNetRegressor(random_state=0, module__hidden_sizes=(32,))],
                         expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def blobs(n=240, seed=0, classes=("a", "b", "c")):
    g = np.random.default_rng(seed)
    y = g.integers(0, len(classes), n)
    centers = g.normal(0, 3, (len(classes), 5))
    x = centers[y] + g.normal(0, 1, (n, 5))
    return x, np.asarray(classes)[y]


def test_params_clone_and_routing():
    net = NeuralNetClassifier(lr=0.05, module__hidden_sizes=(8, 8), optimizer="sgd", optimizer__momentum=0.9)
    p = net.get_params()
    assert p["lr"] == 0.05 and p["module__hidden_sizes"] == (8, 8) and p["optimizer__momentum"] == 0.9
    c = clone(net)
    assert c.get_params() == p and c is not net
    assert net.set_params(module__hidden_sizes=(4,), max_epochs=3) is net
    assert net.module__hidden_sizes == (4,) and net.max_epochs == 3
    x, y = blobs()
    net.fit(x, y)
    layers = [m for m in net.module_.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in layers] == [(5, 4), (4, 3)]
    assert net.optimizer_.param_groups[0]["momentum"] == 0.9 and net.n_iter_ == 3 == len(net.history_)
    with pytest.raises(TypeError, match="hidden_size"):       # an unknown name is named at fit
        NeuralNetClassifier(hidden_size=3).fit(x, y)
    with pytest.raises(ValueError, match="module class"):
        NeuralNetClassifier(module=MLP(5, 3), module__hidden_sizes=(3,)).fit(x, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        NeuralNetClassifier().fit(x, np.zeros(len(x)))


def test_seed_makes_fit_deterministic_and_leaves_global_rng():
    x, y = blobs()
    state = dg.get_rng_state()
    a = NeuralNetClassifier(random_state=3, max_epochs=3, module__dropout=0.2).fit(x, y).predict_proba(x)
    b = NeuralNetClassifier(random_state=3, max_epochs=3, module__dropout=0.2).fit(x, y).predict_proba(x)
    c = NeuralNetClassifier(random_state=4, max_epochs=3, module__dropout=0.2).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    after = dg.rand(3)                   # the global generator was restored: same draw as before
    dg.set_rng_state(state)
    np.testing.assert_array_equal(after.numpy(), dg.rand(3).numpy())


def test_lists_strings_pipeline_and_model_selection():
    x, y = blobs()
    clf = NeuralNetClassifier(random_state=0, max_epochs=15, module__hidden_sizes=(16,))
    clf.fit(x.tolist(), y.tolist())
    assert list(clf.classes_) == ["a", "b", "c"] and clf.n_features_in_ == 5
    assert clf.score(x, y) > 0.9
    proba = clf.predict_proba(x)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(clf.predict(x), clf.classes_[proba.argmax(1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(x)), proba, rtol=1e-12)
    pipe = make_pipeline(StandardScaler(), NeuralNetClassifier(random_state=0, max_epochs=5))
    scores = cross_val_score(pipe, x * 100 + 7, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    search = GridSearchCV(NeuralNetClassifier(random_state=0, max_epochs=4),
                          {"lr": [1e-4, 1e-2], "module__hidden_sizes": [(4,), (32,)]}, cv=2).fit(x, y)
    assert search.best_params_["lr"] == 1e-2          # 1e-4 learns nothing in 4 epochs
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.module__hidden_sizes in [(4,), (32,)]


def test_regressor_multioutput_warm_start_and_module_choices():
    g = np.random.default_rng(1)
    x = g.normal(size=(200, 3)).astype(np.float32)
    w = g.normal(size=(3, 2))
    y2 = x @ w
    reg = NeuralNetRegressor(random_state=0, max_epochs=30, lr=0.01, module__hidden_sizes=(32,)).fit(x, y2)
    assert reg.predict(x).shape == (200, 2) and reg.score(x, y2) > 0.9
    y1 = y2[:, 0]
    lin = NeuralNetRegressor(module=nn.Linear, module__in_features=3, module__out_features=1,
                             criterion="l1", optimizer=dg.optim.SGD, lr=0.05, random_state=0,
                             max_epochs=5, warm_start=True)
    lin.fit(x, y1)
    first = lin.history_[-1]["loss"]
    lin.fit(x, y1)                                    # warm start: continues the same network
    assert lin.n_iter_ == 10 and lin.history_[-1]["loss"] < first
    assert isinstance(lin.criterion_, nn.L1Loss) and lin.predict(x).shape == (200,)
    inst = nn.Linear(3, 1)
    r = NeuralNetRegressor(module=inst, max_epochs=1, random_state=0).fit(x, y1)
    assert r.module_ is not inst and r.module is inst  # the instance given is copied, never trained
    np.testing.assert_array_equal(inst.weight.detach().numpy(), clone(r).module.weight.detach().numpy())


def test_fit_matches_a_torch_training_loop():
    """SGD with momentum, no shuffling, a ragged last batch: the trained weights are torch's."""
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(2)
    x = g.normal(size=(50, 4)).astype(np.float32)
    y = g.integers(0, 3, 50)
    dg.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    tmod = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    tmod.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in module.state_dict().items()})
    clf = NeuralNetClassifier(module=module, optimizer="sgd", optimizer__momentum=0.9, lr=0.1,
                              max_epochs=3, batch_size=16, shuffle=False).fit(x, y)
    opt = torch.optim.SGD(tmod.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        for s in range(0, 50, 16):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tmod(torch.from_numpy(x[s:s + 16])),
                                                     torch.from_numpy(y[s:s + 16]))
            loss.backward()
            opt.step()
    for k, v in clf.module_.state_dict().items():
        np.testing.assert_allclose(v.numpy(), tmod.state_dict()[k].numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    with torch.no_grad():
        ref = torch.softmax(tmod(torch.from_numpy(x)).double(), 1).numpy()
    np.testing.assert_allclose(clf.predict_proba(x), ref, rtol=1e-5, atol=1e-6)


def test_grid_search_demo_quick(tmp_path):
    from deepgrad import demos
    r = demos.run("grid-search", quick=True, out=tmp_path)
    acc = np.asarray(r["cv_accuracy"])
    assert acc.shape == (len(r["widths"]), len(r["lrs"]))
    assert r["best_cv_accuracy"] == pytest.approx(acc.max())
    assert r["best_lr"] == 1e-2 and acc.max() > 0.6     # the middle learning rate wins
    assert acc[:, r["lrs"].index(1e-2)].min() > acc[:, r["lrs"].index(1e-3)].max() - 0.05
    assert r["test_accuracy"] > 0.6
    png = tmp_path / "grid_search.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_sklearn_names_the_extra():
    code = ("import sys; sys.modules['sklearn'] = None; import deepgrad, deepgrad.demos\n"
            "try:\n    import deepgrad.sklearn\nexcept ImportError as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "pip install deepgrad[sklearn]" in res.stdout, res.stderr
