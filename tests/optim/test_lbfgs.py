"""``optim.LBFGS`` against PyTorch 2.13: every function evaluation of the trajectory (fixed step
and strong-Wolfe line search), the iterates, the bookkeeping state, state_dict resumption and the
argument errors.

L-BFGS amplifies rounding: PyTorch's ``add_(alpha=)`` rounds once (fused multiply-add) where
NumPy rounds twice, and its ``dot`` sums in another order, so on ill-conditioned problems the two
drift apart late in a run exactly as PyTorch drifts from itself when the start point moves by one
ulp. Each Rosenbrock comparison therefore allows, per evaluation, 1e-8 relative plus ten times the
gap between PyTorch and PyTorch started one ulp away; on well-conditioned runs that band is ~0
and the comparison is to 1e-8.
"""
import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.nn.functional as F
import deepgrad.optim as optim

X0 = [-1.5, 2.0]


def _rosen(x):
    """Rosenbrock's value and gradient, computed by the same NumPy code for both libraries so
    that only the optimisers differ."""
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
    return f, g


def _run_rosen(lib, kwargs, x0=X0, steps=5):
    if lib == "torch":
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([x], **kwargs)

        def get():
            return x.detach().numpy().copy()

        def put(f, g):
            x.grad = torch.from_numpy(g)
            return torch.tensor(f, dtype=torch.float64)
    else:
        x = dg.tensor(np.array(x0, dtype=np.float64), requires_grad=True)
        opt = optim.LBFGS([x], **kwargs)

        def get():
            return x.array.copy()

        def put(f, g):
            x.grad = dg.tensor(g)
            return dg.tensor(f, dtype=dg.float64)
    losses, returned = [], []

    def closure():
        f, g = _rosen(get())
        losses.append(f)
        return put(f, g)

    for _ in range(steps):
        returned.append(float(opt.step(closure)))
    st = opt.state[x]
    return np.array(losses), np.array(returned), get(), (st["func_evals"], st["n_iter"])


ROSEN = {
    "fixed-default": dict(),
    "fixed-lr0.5": dict(lr=0.5),
    "fixed-hist2": dict(lr=0.3, history_size=2, max_iter=6),
    "fixed-maxeval": dict(lr=0.5, max_iter=10, max_eval=4),
    "wolfe-default": dict(line_search_fn="strong_wolfe"),
    "wolfe-hist3": dict(line_search_fn="strong_wolfe", history_size=3, max_iter=7),
    "wolfe-hist5": dict(line_search_fn="strong_wolfe", history_size=5, max_iter=10),
    "wolfe-lr0.1": dict(line_search_fn="strong_wolfe", lr=0.1, max_iter=4, max_eval=6),
    "wolfe-tol": dict(line_search_fn="strong_wolfe", tolerance_grad=1e-3, tolerance_change=1e-4),
}


@pytest.mark.parametrize("name", list(ROSEN))
def test_rosenbrock_trajectory_matches_torch(name):
    kw = ROSEN[name]
    ours, ours_ret, ours_x, ours_counts = _run_rosen("dg", kw)
    theirs, theirs_ret, theirs_x, theirs_counts = _run_rosen("torch", kw)
    shifted = _run_rosen("torch", kw, x0=[np.nextafter(X0[0], 0.0), X0[1]])[0]
    assert len(ours) == len(theirs) == len(shifted)        # same evaluations, same stopping
    assert ours_counts == theirs_counts
    band = 1e-8 * np.abs(theirs) + 10 * np.abs(shifted - theirs) + 1e-300
    bad = np.nonzero(np.abs(ours - theirs) > band)[0]
    assert bad.size == 0, f"evaluation {bad[:3]}: {ours[bad[:3]]} vs {theirs[bad[:3]]}"
    assert set(ours_ret) <= set(ours)                     # step returns its first evaluation
    spread = np.abs(_run_rosen("torch", kw, x0=[np.nextafter(X0[0], 0.0), X0[1]])[2] - theirs_x)
    assert np.all(np.abs(ours_x - theirs_x) <= 1e-8 + 10 * spread)


def test_well_conditioned_rosenbrock_runs_match_to_1e8():
    """No rounding band: runs whose PyTorch trajectory is stable match to 1e-8 outright."""
    for kw in (ROSEN["wolfe-default"], ROSEN["fixed-hist2"], ROSEN["wolfe-hist5"]):
        ours = _run_rosen("dg", kw)
        theirs = _run_rosen("torch", kw)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-8, atol=1e-14)
        np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-8, atol=1e-12)


# ---- logistic regression through each library's own autograd --------------------------------------
def _logreg_data(n=64, k=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))
    w_true = rng.standard_normal(k)
    y = (X @ w_true + 0.5 * rng.standard_normal(n) > 0).astype(np.float64)
    w0 = 0.1 * rng.standard_normal(k)
    return X, y, w0


def _run_logreg(lib, kwargs, dtype=np.float64, steps=4, resume_after=None):
    X, y, w0 = _logreg_data()
    X, y, w0 = X.astype(dtype), y.astype(dtype), w0.astype(dtype)
    if lib == "torch":
        m, fn, O = torch, torch.nn.functional, torch.optim
        w = torch.tensor(w0, requires_grad=True)
        b = torch.zeros(1, dtype=w.dtype, requires_grad=True)
        Xt, yt = torch.tensor(X), torch.tensor(y)
    else:
        m, fn, O = dg, F, optim
        w = dg.tensor(w0, requires_grad=True)
        b = dg.zeros(1, dtype=w.dtype, requires_grad=True)
        Xt, yt = dg.tensor(X), dg.tensor(y)
    opt = O.LBFGS([w, b], **kwargs)
    losses = []

    def closure():
        opt.zero_grad()
        loss = fn.binary_cross_entropy_with_logits(Xt @ w + b, yt) + 0.01 * (w * w).sum()
        loss.backward()
        losses.append(loss.item())
        return loss

    for i in range(steps):
        if resume_after is not None and i == resume_after:   # a fresh optimiser, loaded state
            sd = opt.state_dict()
            opt = O.LBFGS([w, b], **kwargs)
            opt.load_state_dict(sd)
        opt.step(closure)
    params = [(p.detach().numpy() if lib == "torch" else p.array).copy() for p in (w, b)]
    return np.array(losses), params, opt


LOGREG = {
    "fixed": dict(max_iter=5),
    "fixed-lr0.5-hist2": dict(lr=0.5, max_iter=6, history_size=2),
    "wolfe": dict(line_search_fn="strong_wolfe", max_iter=5),
    "wolfe-hist2": dict(line_search_fn="strong_wolfe", max_iter=6, history_size=2),
}


@pytest.mark.parametrize("name", list(LOGREG))
def test_logistic_regression_matches_torch(name):
    ours, ours_p, opt = _run_logreg("dg", LOGREG[name])
    theirs, theirs_p, topt = _run_logreg("torch", LOGREG[name])
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)
    for a, b in zip(ours_p, theirs_p):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    st, tst = opt.state_dict()["state"][0], topt.state_dict()["state"][0]
    assert sorted(st) == sorted(tst)
    assert (st["func_evals"], st["n_iter"]) == (tst["func_evals"], tst["n_iter"])
    assert len(st["old_dirs"]) == len(tst["old_dirs"])
    np.testing.assert_allclose(st["d"].array, tst["d"].numpy(), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", ["fixed", "wolfe-hist2"])
def test_state_dict_resume_matches_uninterrupted_torch(name):
    ours, ours_p, _ = _run_logreg("dg", LOGREG[name], resume_after=2)
    theirs, theirs_p, _ = _run_logreg("torch", LOGREG[name])
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)
    for a, b in zip(ours_p, theirs_p):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["fixed", "wolfe"])
def test_float32_logistic_regression_close_to_torch(name):
    ours, ours_p, _ = _run_logreg("dg", LOGREG[name], dtype=np.float32)
    theirs, theirs_p, _ = _run_logreg("torch", LOGREG[name], dtype=np.float32)
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours_p[0].dtype == np.float32


def test_returns_first_loss_and_stops_at_optimum():
    x = dg.tensor(np.array([1.0, 1.0]), requires_grad=True)    # Rosenbrock's minimum
    opt = optim.LBFGS([x], line_search_fn="strong_wolfe")
    calls = []

    def closure():
        calls.append(1)
        f, g = _rosen(x.array)
        x.grad = dg.tensor(g)
        return dg.tensor(f, dtype=dg.float64)

    assert float(opt.step(closure)) == 0.0
    assert len(calls) == 1                                     # gradient 0: nothing to do


def test_closure_runs_with_grad_enabled_under_no_grad():
    w = dg.tensor(np.array([0.5, -0.3]), requires_grad=True)
    opt = optim.LBFGS([w], max_iter=3)

    def closure():
        opt.zero_grad()
        loss = ((w - 1.0) ** 2).sum()
        loss.backward()
        return loss

    with dg.no_grad():
        opt.step(closure)
    assert np.all(np.abs(w.array - 1.0) < 0.5)


def test_errors_match_torch():
    def both(fn):
        kinds = []
        for lib, t in (("torch", torch.zeros(2, requires_grad=True)),
                       ("dg", dg.zeros(2, requires_grad=True))):
            with pytest.raises(Exception) as info:
                fn(torch.optim if lib == "torch" else optim, t)
            kinds.append(type(info.value))
        assert kinds[0] is kinds[1], kinds
    both(lambda O, t: O.LBFGS([t], lr=-1.0))
    both(lambda O, t: O.LBFGS([{"params": [t]}, {"params": [t * 1]}]))
    t2 = dg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": [t2]}, {"params": [dg.zeros(1, requires_grad=True)]}])

    def step_bad_search(O, t):
        opt = O.LBFGS([t], line_search_fn="bogus")

        def closure():
            opt.zero_grad()
            loss = ((t - 1) ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
    both(step_bad_search)
    with pytest.raises(TypeError):
        optim.LBFGS([t2]).step()


def test_defaults_and_repr():
    t = torch.zeros(2, requires_grad=True)
    ours = optim.LBFGS([dg.zeros(2, requires_grad=True)], max_iter=8).defaults
    theirs = torch.optim.LBFGS([t], max_iter=8).defaults
    assert ours == theirs
    assert "LBFGS" in repr(optim.LBFGS([dg.zeros(2, requires_grad=True)]))


def test_module_with_an_unused_parameter_matches_torch():
    """A parameter the loss never touches has no gradient: it counts as zeros, as in PyTorch."""
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((32, 4)), rng.standard_normal((32, 2))
    W0, b0, U0 = rng.standard_normal((2, 4)), rng.standard_normal(2), rng.standard_normal(3)

    def run(lib):
        if lib == "torch":
            m, fn = torch, torch.nn.functional
            lin = torch.nn.Linear(4, 2).double()
            unused = torch.nn.Parameter(torch.tensor(U0))
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(W0))
                lin.bias.copy_(torch.tensor(b0))
            O = torch.optim
        else:
            m, fn = dg, F
            lin = dg.nn.Linear(4, 2).double()
            unused = dg.nn.Parameter(dg.tensor(U0))
            with dg.no_grad():
                lin.weight.copy_(dg.tensor(W0))
                lin.bias.copy_(dg.tensor(b0))
            O = optim
        Xt, yt = m.tensor(X), m.tensor(y)
        opt = O.LBFGS([*lin.parameters(), unused], line_search_fn="strong_wolfe", max_iter=8)
        losses = []

        def closure():
            opt.zero_grad()
            loss = fn.mse_loss(m.tanh(lin(Xt)), yt)
            loss.backward()
            losses.append(loss.item())
            return loss

        for _ in range(2):
            opt.step(closure)
        return np.array(losses), (lin.weight.detach().numpy() if lib == "torch"
                                  else lin.weight.array.copy()), unused

    ours, w_ours, u_ours = run("dg")
    theirs, w_theirs, _ = run("torch")
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(w_ours, w_theirs, rtol=1e-7, atol=1e-10)
    np.testing.assert_array_equal(u_ours.array, U0)
