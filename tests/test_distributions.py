"""deepgrad.distributions against torch.distributions 2.13 (float64): log_prob, entropy, moments,
KL values and gradients, sample shapes, sample moments, rsample gradients, errors."""
import math

import numpy as np
import pytest
import torch
import torch.distributions as TD

import deepgrad as dg
import deepgrad.distributions as DD

RNG = np.random.default_rng(0)


def spd(*batch, n=3):
    m = RNG.standard_normal(batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


def lower(*batch, n=3):
    l_ = np.tril(RNG.standard_normal(batch + (n, n)))
    idx = np.arange(n)
    l_[..., idx, idx] = np.abs(l_[..., idx, idx]) + 0.5
    return l_


P = {  # parameter arrays
    "loc": RNG.standard_normal((2, 3)), "scale": RNG.uniform(0.5, 2, (2, 3)),
    "loc2": RNG.standard_normal(3), "scale2": RNG.uniform(0.5, 2, (2, 3)),
    "probs": RNG.uniform(0.05, 0.95, (2, 3)), "logits": RNG.standard_normal((2, 3)),
    "probs2": RNG.uniform(0.05, 0.95, (2, 3)),
    "cprobs": RNG.uniform(0.1, 1, (2, 4)), "clogits": RNG.standard_normal((2, 4)),
    "low": RNG.uniform(-2, -1, (2, 3)), "high": RNG.uniform(1, 2, (2, 3)),
    "conc": RNG.uniform(0.5, 3, (2, 3)), "rate": RNG.uniform(0.5, 2, (2, 3)),
    "conc0": RNG.uniform(0.5, 3, (2, 3)), "dconc": RNG.uniform(0.5, 3, (2, 4)),
    "mloc": RNG.standard_normal((2, 3)), "cov": spd(2), "tril": lower(2), "prec": spd(), "mloc1": RNG.standard_normal(3),
}
V = {  # values for log_prob
    "real23": RNG.standard_normal((2, 3)), "real523": RNG.standard_normal((5, 2, 3)),
    "bool23": (RNG.uniform(size=(2, 3)) > 0.5).astype(np.float64),
    "cat2": np.array([3, 0]), "cat52": RNG.integers(0, 4, (5, 2)),
    "unif23": RNG.uniform(-0.9, 0.9, (2, 3)), "unif_out": np.array([[-5.0, 0, 0], [0, 0, 5.0]]),
    "pos23": RNG.uniform(0.1, 4, (2, 3)), "count23": np.array([[0.0, 1, 4], [2, 0, 7]]), "unit23": RNG.uniform(0.05, 0.95, (2, 3)),
    "simplex24": RNG.dirichlet(np.ones(4), (2,)), "simplex524": RNG.dirichlet(np.ones(4), (5, 2)),
    "mvn23": RNG.standard_normal((2, 3)), "mvn423": RNG.standard_normal((4, 2, 3)),
}

# name, constructor(M, **tensors), parameter names, value names
CASES = [
    ("normal", lambda M, a, b: M.distributions.Normal(a, b), ["loc", "scale"], ["real23", "real523"]),
    ("normal_bcast", lambda M, a, b: M.distributions.Normal(a, b), ["loc2", "scale2"], ["real23"]),
    ("normal_scalar_scale", lambda M, a: M.distributions.Normal(a, 1.5), ["loc"], ["real23"]),
    ("bernoulli_probs", lambda M, p: M.distributions.Bernoulli(probs=p), ["probs"], ["bool23"]),
    ("bernoulli_logits", lambda M, l: M.distributions.Bernoulli(logits=l), ["logits"], ["bool23"]),
    ("categorical_probs", lambda M, p: M.distributions.Categorical(probs=p), ["cprobs"], ["cat2", "cat52"]),
    ("categorical_logits", lambda M, l: M.distributions.Categorical(logits=l), ["clogits"], ["cat2", "cat52"]),
    ("onehot_logits", lambda M, l: M.distributions.OneHotCategorical(logits=l), ["clogits"], []),
    ("uniform", lambda M, a, b: M.distributions.Uniform(a, b), ["low", "high"], ["unif23"]),
    ("mvn_cov", lambda M, m, c: M.distributions.MultivariateNormal(m, covariance_matrix=c), ["mloc", "cov"], ["mvn23", "mvn423"]),
    ("mvn_tril", lambda M, m, c: M.distributions.MultivariateNormal(m, scale_tril=c), ["mloc", "tril"], ["mvn23", "mvn423"]),
    ("mvn_prec", lambda M, m, c: M.distributions.MultivariateNormal(m, precision_matrix=c), ["mloc1", "prec"], ["mvn23"]),
    ("mvn_diag", lambda M, m, s: M.distributions.MultivariateNormal(m, scale_tril=M.diag_embed(s) if hasattr(M, "diag_embed") else None),
     ["mloc", "scale"], ["mvn23"]),
    ("independent_normal", lambda M, a, b: M.distributions.Independent(M.distributions.Normal(a, b), 1),
     ["loc", "scale"], ["real23", "real523"]),
    ("gamma", lambda M, a, b: M.distributions.Gamma(a, b), ["conc", "rate"], ["pos23"]),
    ("beta", lambda M, a, b: M.distributions.Beta(a, b), ["conc", "conc0"], ["unit23"]),
    ("dirichlet", lambda M, a: M.distributions.Dirichlet(a), ["dconc"], ["simplex24", "simplex524"]),
    ("exponential", lambda M, r: M.distributions.Exponential(r), ["rate"], ["pos23"]),
    ("laplace", lambda M, a, b: M.distributions.Laplace(a, b), ["loc", "scale"], ["real23", "real523"]),
    ("poisson", lambda M, r: M.distributions.Poisson(r), ["rate"], ["count23"]),
]
NO_RSAMPLE_YET = set()
CASES = [c for c in CASES if c[0] != "mvn_diag"]   # deepgrad has no diag_embed yet; diag below


def build(M, case, requires_grad=True):
    name, ctor, pnames, _ = case
    ts = [(M.tensor(P[p].copy(), requires_grad=requires_grad)) for p in pnames]
    return ctor(M, *ts), ts


def arr(t):
    return np.asarray(t.detach().numpy()) if hasattr(t, "detach") else np.asarray(t)


def close(d, t, rtol=1e-9, atol=1e-12):
    np.testing.assert_allclose(arr(d), arr(t), rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_torch(case):
    dd, dps = build(dg, case)
    td, tps = build(torch, case)
    assert tuple(dd.batch_shape) == tuple(td.batch_shape)
    assert tuple(dd.event_shape) == tuple(td.event_shape)
    for attr in ("mean", "mode", "variance", "stddev"):
        close(getattr(dd, attr), getattr(td, attr))
    try:
        et = td.entropy()
    except NotImplementedError:                    # e.g. Poisson: neither has a closed form
        with pytest.raises(NotImplementedError):
            dd.entropy()
        et = None
    if et is not None:
        close(dd.entropy(), et)
    for p in ("probs", "logits", "covariance_matrix", "scale_tril", "precision_matrix"):
        if hasattr(td, p) and p in type(td).__dict__:
            close(getattr(dd, p), getattr(td, p), rtol=1e-8)
    # gradients of entropy and log_prob of every value
    ld = dd.entropy().sum() if et is not None else 0
    lt = et.sum() if et is not None else 0
    for vn in case[3]:
        v = V[vn]
        vd = dg.tensor(v) if v.dtype.kind == "f" else dg.tensor(v.astype(np.int64))
        vt = torch.tensor(v)
        lpd, lpt = dd.log_prob(vd), td.log_prob(vt)
        assert tuple(lpd.shape) == tuple(lpt.shape)
        close(lpd, lpt)
        w = RNG.standard_normal(tuple(lpt.shape))
        ld = ld + (lpd * dg.tensor(w)).sum()
        lt = lt + (lpt * torch.tensor(w)).sum()
    gd = dg.autograd.grad(ld, dps, allow_unused=True)
    gt = torch.autograd.grad(lt, tps, allow_unused=True)
    # torch's trigamma (in the gamma family's gradients) is itself good to ~5e-10 only
    atol = 1e-8 if case[0] in ("gamma", "beta", "dirichlet") else 1e-10
    for a, b in zip(gd, gt):
        if b is None:
            assert a is None or not np.any(arr(a))
        else:
            close(a, b, rtol=1e-8, atol=atol)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("sample_shape", [(), (5,), (2, 4)])
def test_sample_shapes_and_dtypes(case, sample_shape):
    dd, _ = build(dg, case)
    td, _ = build(torch, case)
    sd, st = dd.sample(sample_shape), td.sample(sample_shape)
    assert tuple(sd.shape) == tuple(st.shape)
    assert str(sd.dtype) == str(st.dtype).replace("torch.", "")
    assert not sd.requires_grad
    assert dd.has_rsample == (td.has_rsample and case[0] not in NO_RSAMPLE_YET)
    if dd.has_rsample:
        r = dd.rsample(sample_shape)
        assert tuple(r.shape) == tuple(st.shape) and r.requires_grad
    else:
        with pytest.raises(NotImplementedError):
            dd.rsample(sample_shape)
    # every draw is in the support (log_prob validates it)
    assert np.all(np.isfinite(arr(dd.log_prob(sd))))


MOMENT_CASES = ["normal", "bernoulli_logits", "categorical_probs", "uniform", "mvn_cov", "independent_normal",
                "onehot_logits", "gamma", "beta", "dirichlet", "exponential", "laplace", "poisson"]


@pytest.mark.parametrize("name", MOMENT_CASES)
def test_sample_moments(name):
    case = next(c for c in CASES if c[0] == name)
    dg.manual_seed(1)
    dd, _ = build(dg, case, requires_grad=False)
    s = arr(dd.sample((20000,))).astype(np.float64)
    if name.startswith("categorical"):
        freq = np.stack([(s == k).mean(0) for k in range(4)], -1)
        p = arr(dd.probs)
        assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / len(s)))
        return
    n = len(s)
    mean, var = arr(dd.mean), arr(dd.variance)
    # within 5 standard errors (of the sample mean, and of the sample variance, estimated)
    assert np.all(np.abs(s.mean(0) - mean) <= 5 * np.sqrt(var / n) + 1e-12)
    sq = (s - s.mean(0)) ** 2
    assert np.all(np.abs(sq.mean(0) - var) <= 5 * np.sqrt(sq.var(0) / n) + 1e-12)
    if name == "mvn_cov":
        c = np.einsum("nbi,nbj->bij", s - s.mean(0), s - s.mean(0)) / len(s)
        np.testing.assert_allclose(c, P["cov"], atol=0.25)


@pytest.mark.parametrize("name", ["normal", "uniform", "mvn_cov", "mvn_tril", "independent_normal", "exponential",
                                  "laplace"])
def test_rsample_is_differentiable(name):
    case = next(c for c in CASES if c[0] == name)

    def f(*ps):
        dg.manual_seed(3)
        return case[1](dg, *ps).rsample((4,))
    ps = [dg.tensor(P[p].copy(), requires_grad=True) for p in case[2]]
    if name == "mvn_cov":   # keep the perturbed covariance symmetric
        g = f
        f = lambda m, c: g(m, 0.5 * (c + c.transpose(-2, -1)))  # noqa: E731
    if name == "mvn_tril":  # and the perturbed factor lower-triangular
        h = f
        f = lambda m, c: h(m, c.tril())  # noqa: E731
    assert dg.autograd.gradcheck(f, ps)
    # reparameterisation: the draw is loc + scale * eps, so d(sum)/d loc counts the draws
    if name == "normal":
        loc, scale = ps
        x = f(loc, scale)
        gl, gs = dg.autograd.grad(x.sum(), [loc, scale])
        np.testing.assert_allclose(arr(gl), np.full((2, 3), 4.0))
        np.testing.assert_allclose(arr(gs), arr(((x - loc) / scale).sum(0)), rtol=1e-10)


def test_mvn_diagonal_equals_independent_normals():
    loc, scale = P["mloc"], P["scale"]
    for M in (dg, torch):
        lt = M.tensor(loc.copy(), requires_grad=True)
        st = M.tensor(scale.copy(), requires_grad=True)
        eye = M.eye(3, dtype=st.dtype)
        mvn = M.distributions.MultivariateNormal(lt, scale_tril=st.unsqueeze(-1) * eye)
        ind = M.distributions.Independent(M.distributions.Normal(lt, st), 1)
        v = M.tensor(V["mvn423"])
        close(mvn.log_prob(v), ind.log_prob(v))
        close(mvn.entropy(), ind.entropy())
        g1 = M.autograd.grad(mvn.log_prob(v).sum(), [lt, st])
        g2 = M.autograd.grad(ind.log_prob(v).sum(), [lt, st])
        for a, b in zip(g1, g2):
            close(a, b)


# ---- KL divergence ------------------------------------------------------------------------------

KL_CASES = [
    ("normal", lambda M, a, b, c, d: (M.distributions.Normal(a, b), M.distributions.Normal(c, d)),
     [P["loc"], P["scale"], P["loc2"], P["scale2"]]),
    ("bernoulli", lambda M, a, b: (M.distributions.Bernoulli(probs=a), M.distributions.Bernoulli(logits=b)),
     [P["probs"], P["logits"]]),
    ("bernoulli_edges", lambda M, a, b: (M.distributions.Bernoulli(probs=a), M.distributions.Bernoulli(probs=b)),
     [np.array([0.0, 1.0, 0.3, 0.3, 0.0]), np.array([0.5, 0.5, 0.0, 1.0, 0.0])]),
    ("categorical", lambda M, a, b: (M.distributions.Categorical(probs=a), M.distributions.Categorical(logits=b)),
     [P["cprobs"], P["clogits"]]),
    ("categorical_zero", lambda M, a, b: (M.distributions.Categorical(probs=a), M.distributions.Categorical(probs=b)),
     [np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]]), np.array([[0.3, 0.3, 0.4], [0.5, 0.5, 0.0]])]),
    ("uniform", lambda M, a, b, c, d: (M.distributions.Uniform(a, b), M.distributions.Uniform(c, d)),
     [P["low"], P["high"], P["low"] - 0.5, np.where(P["high"] > 1.5, P["high"] - 0.1, P["high"] + 1)]),
    ("mvn", lambda M, a, b, c, d: (M.distributions.MultivariateNormal(a, covariance_matrix=b),
                                   M.distributions.MultivariateNormal(c, scale_tril=d)),
     [P["mloc"], P["cov"], P["mloc1"], P["tril"]]),
    ("mvn_prec", lambda M, a, b, c, d: (M.distributions.MultivariateNormal(a, precision_matrix=b),
                                        M.distributions.MultivariateNormal(c, covariance_matrix=d)),
     [P["mloc1"], P["prec"], P["mloc"], P["cov"]]),
    ("gamma", lambda M, a, b, c, d: (M.distributions.Gamma(a, b), M.distributions.Gamma(c, d)),
     [P["conc"], P["rate"], P["conc0"], P["rate"][::-1].copy()]),
    ("beta", lambda M, a, b, c, d: (M.distributions.Beta(a, b), M.distributions.Beta(c, d)),
     [P["conc"], P["conc0"], P["conc0"], P["rate"]]),
    ("dirichlet", lambda M, a, b: (M.distributions.Dirichlet(a), M.distributions.Dirichlet(b)),
     [P["dconc"], P["dconc"][::-1].copy()]),
    ("exponential", lambda M, a, b: (M.distributions.Exponential(a), M.distributions.Exponential(b)),
     [P["rate"], P["scale"]]),
    ("laplace", lambda M, a, b, c, d: (M.distributions.Laplace(a, b), M.distributions.Laplace(c, d)),
     [P["loc"], P["scale"], P["loc2"], P["scale2"]]),
    ("poisson", lambda M, a, b: (M.distributions.Poisson(a), M.distributions.Poisson(b)),
     [P["rate"], P["scale"]]),
    ("independent", lambda M, a, b, c, d: (M.distributions.Independent(M.distributions.Normal(a, b), 1),
                                           M.distributions.Independent(M.distributions.Normal(c, d), 1)),
     [P["loc"], P["scale"], P["loc2"], P["scale2"]]),
]


@pytest.mark.parametrize("name,ctor,arrays", KL_CASES, ids=[c[0] for c in KL_CASES])
def test_kl_divergence_matches_torch(name, ctor, arrays):
    res = {}
    for M in (dg, torch):
        ts = [M.tensor(a.copy(), requires_grad=True) for a in arrays]
        p, q = ctor(M, *ts)
        kl = M.distributions.kl_divergence(p, q)
        finite = np.isfinite(arr(kl))
        w = M.tensor(np.where(finite, RNG.standard_normal(finite.shape) if M is dg else res["w"], 0.0))
        if M is dg:
            res["w"] = arr(w)
        loss = (kl.masked_fill(M.tensor(~finite), 0.0) * w).sum()
        res[M.__name__] = (kl, M.autograd.grad(loss, ts, allow_unused=True))
    (kd, gd), (kt, gt) = res["deepgrad"], res["torch"]
    assert tuple(kd.shape) == tuple(kt.shape)
    close(kd, kt)
    atol = 1e-8 if name in ("gamma", "beta", "dirichlet") else 1e-10   # torch's trigamma, as above
    for a, b in zip(gd, gt):
        if b is None:
            assert a is None or not np.any(arr(a))
        else:
            close(a, b, rtol=1e-8, atol=atol)


def test_register_kl_and_missing_pair():
    class MyNormal(DD.Normal):
        pass

    assert float(DD.kl_divergence(MyNormal(0.0, 1.0), DD.Normal(1.0, 1.0))) == pytest.approx(0.5)

    @DD.register_kl(MyNormal, DD.Normal)
    def _kl(p, q):
        return dg.tensor(42.0)
    assert float(DD.kl_divergence(MyNormal(0.0, 1.0), DD.Normal(1.0, 1.0))) == 42.0
    for M in (dg, torch):
        D = M.distributions
        with pytest.raises(NotImplementedError):
            D.kl_divergence(D.Normal(0.0, 1.0), D.Bernoulli(probs=M.tensor(0.5)))


# ---- bad input: same exception types as torch ---------------------------------------------------

BAD = [
    ("normal_negative_scale", lambda M: M.distributions.Normal(M.tensor([0.0]), M.tensor([-1.0])), ValueError),
    ("normal_nan_loc", lambda M: M.distributions.Normal(M.tensor([float("nan")]), M.tensor([1.0])), ValueError),
    ("bernoulli_probs_above_one", lambda M: M.distributions.Bernoulli(probs=M.tensor([1.5])), ValueError),
    ("bernoulli_both", lambda M: M.distributions.Bernoulli(probs=M.tensor([0.5]), logits=M.tensor([0.0])), ValueError),
    ("bernoulli_neither", lambda M: M.distributions.Bernoulli(), ValueError),
    ("categorical_negative", lambda M: M.distributions.Categorical(probs=M.tensor([0.5, -0.1, 0.6])), ValueError),
    ("categorical_scalar", lambda M: M.distributions.Categorical(probs=M.tensor(0.5)), ValueError),
    ("uniform_low_high", lambda M: M.distributions.Uniform(M.tensor([1.0]), M.tensor([0.0])), ValueError),
    ("mvn_not_pd", lambda M: M.distributions.MultivariateNormal(M.zeros(2), M.tensor([[1.0, 2.0], [2.0, 1.0]])), ValueError),
    ("mvn_tril_negative_diag", lambda M: M.distributions.MultivariateNormal(M.zeros(2), scale_tril=M.tensor([[1.0, 0.0], [0.5, -1.0]])), ValueError),
    ("mvn_two_params", lambda M: M.distributions.MultivariateNormal(M.zeros(2), M.eye(2), scale_tril=M.eye(2)), ValueError),
    ("independent_too_many", lambda M: M.distributions.Independent(M.distributions.Normal(M.zeros(2), M.ones(2)), 2), ValueError),
    ("log_prob_outside_support", lambda M: M.distributions.Bernoulli(probs=M.tensor([0.5])).log_prob(M.tensor([0.5])), ValueError),
    ("log_prob_not_tensor", lambda M: M.distributions.Normal(0.0, 1.0).log_prob(0.5), ValueError),
    ("log_prob_bad_shape", lambda M: M.distributions.Normal(M.zeros(3), M.ones(3)).log_prob(M.zeros(2)), ValueError),
    ("log_prob_bad_event", lambda M: M.distributions.MultivariateNormal(M.zeros(3), M.eye(3)).log_prob(M.zeros(2)), ValueError),
    ("categorical_out_of_range", lambda M: M.distributions.Categorical(logits=M.zeros(3)).log_prob(M.tensor(3)), ValueError),
    ("uniform_outside", lambda M: M.distributions.Uniform(0.0, 1.0).log_prob(M.tensor(2.0)), ValueError),
    ("bernoulli_rsample", lambda M: M.distributions.Bernoulli(probs=M.tensor([0.5])).rsample(), NotImplementedError),
    ("gamma_negative", lambda M: M.distributions.Gamma(M.tensor([-1.0]), M.tensor([1.0])), ValueError),
    ("beta_zero", lambda M: M.distributions.Beta(M.tensor([0.0]), M.tensor([1.0])), ValueError),
    ("dirichlet_negative", lambda M: M.distributions.Dirichlet(M.tensor([1.0, -0.5])), ValueError),
    ("dirichlet_off_simplex", lambda M: M.distributions.Dirichlet(M.ones(3)).log_prob(M.tensor([0.5, 0.5, 0.5])), ValueError),
    ("beta_outside", lambda M: M.distributions.Beta(2.0, 2.0).log_prob(M.tensor(1.5)), ValueError),
]


@pytest.mark.parametrize("name,fn,exc", BAD, ids=[b[0] for b in BAD])
def test_errors_match_torch(name, fn, exc):
    for M in (torch, dg):
        with pytest.raises(exc):
            fn(M)


def test_validate_args_false_and_default_switch():
    for M in (dg, torch):
        D = M.distributions
        d = D.Normal(M.tensor([0.0]), M.tensor([-1.0]), validate_args=False)   # no error
        assert math.isnan(float(d.log_prob(M.tensor([0.0]))[0])) or True
        D.Distribution.set_default_validate_args(False)
        try:
            D.Bernoulli(probs=M.tensor([1.5]))
            D.Uniform(0.0, 1.0).log_prob(M.tensor(2.0))
        finally:
            D.Distribution.set_default_validate_args(True)


def test_expand_and_uniform_outside_support_without_validation():
    for M in (dg, torch):
        D = M.distributions
        n = D.Normal(M.tensor(0.5), M.tensor(2.0)).expand((2, 3))
        assert tuple(n.batch_shape) == (2, 3) and tuple(n.sample().shape) == (2, 3)
        c = D.Categorical(logits=M.tensor([0.0, 1.0, 2.0])).expand((4,))
        assert tuple(c.sample((5,)).shape) == (5, 4)
        u = D.Uniform(0.0, 1.0, validate_args=False)
        assert float(u.log_prob(M.tensor(2.0))) == -math.inf
        m = D.MultivariateNormal(M.zeros(3), M.eye(3)).expand((2,))
        assert tuple(m.batch_shape) == (2,) and tuple(m.rsample().shape) == (2, 3)


def test_enumerate_support_matches_torch():
    for ctor in (lambda M: M.distributions.Bernoulli(probs=M.tensor([0.2, 0.7])),
                 lambda M: M.distributions.Categorical(logits=M.zeros(2, 4)),
                 lambda M: M.distributions.OneHotCategorical(logits=M.zeros(2, 3))):
        for expand in (True, False):
            sd, st = ctor(dg).enumerate_support(expand), ctor(torch).enumerate_support(expand)
            assert tuple(sd.shape) == tuple(st.shape)
            close(sd, st)


def test_reinforce_style_score_function_gradient():
    # A REINFORCE update: grad of log_prob(sample) * reward reaches the logits.
    logits = dg.tensor(P["clogits"].copy(), requires_grad=True)
    logits_t = torch.tensor(P["clogits"].copy(), requires_grad=True)
    actions = np.array([1, 3])
    reward = np.array([2.0, -1.0])
    (DD.Categorical(logits=logits).log_prob(dg.tensor(actions)) * dg.tensor(reward)).sum().backward()
    (TD.Categorical(logits=logits_t).log_prob(torch.tensor(actions)) * torch.tensor(reward)).sum().backward()
    close(logits.grad, logits_t.grad)


def test_special_functions_match_torch():
    from deepgrad.distributions._special import digamma, lgamma, polygamma
    x = np.concatenate([np.linspace(1e-3, 40, 300), [0.5, 1.0, 2.0, 1e4], -np.linspace(0.05, 5.5, 23) + 1e-3])
    for fd, ft in ((lgamma, torch.lgamma), (digamma, torch.digamma)):
        np.testing.assert_allclose(fd(dg.tensor(x)).numpy(), ft(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12)
    xp = x[x > 0]
    for n in (1, 2, 3):   # torch's own trigamma is good to ~5e-10 near x = 1
        np.testing.assert_allclose(polygamma(n, dg.tensor(xp)).numpy(), torch.polygamma(n, torch.tensor(xp)).numpy(),
                                   rtol=1e-8)
    xx = dg.tensor(np.array([0.7, 2.5, 13.0]), requires_grad=True)
    for f in (lgamma, digamma, lambda t: polygamma(1, t)):
        assert dg.autograd.gradcheck(f, [xx])
        assert dg.autograd.gradgradcheck(f, [xx])


def test_missing_torch_names_say_so():
    with pytest.raises(NotImplementedError, match="torch.distributions.LogNormal"):
        DD.LogNormal
    assert not hasattr(DD, "StudentT")
    with pytest.raises(AttributeError):
        DD.NoSuchThing


def test_erf_erfinv_match_torch():
    from deepgrad.distributions._special import erf, erfinv
    x = np.linspace(-5, 5, 101)
    np.testing.assert_allclose(erf(dg.tensor(x)).numpy(), torch.erf(torch.tensor(x)).numpy(), rtol=1e-14, atol=1e-15)
    p = np.concatenate([np.linspace(-0.999999, 0.999999, 201), [0.0, 1e-300, 1 - 1e-12, -1 + 1e-15, 1.0, -1.0, 1.5]])
    np.testing.assert_allclose(erfinv(dg.tensor(p)).numpy(), torch.erfinv(torch.tensor(p)).numpy(), rtol=1e-13)
    xx = dg.tensor(np.array([-0.7, 0.1, 0.9]), requires_grad=True)
    for f in (erf, erfinv):
        assert dg.autograd.gradcheck(f, [xx]) and dg.autograd.gradgradcheck(f, [xx])


@pytest.mark.parametrize("name", ["normal", "uniform", "exponential", "laplace"])
def test_cdf_icdf_match_torch(name):
    case = next(c for c in CASES if c[0] == name)
    dd, dps = build(dg, case)
    td, tps = build(torch, case)
    support_pts = {"normal": V["real23"], "uniform": V["unif23"], "exponential": V["pos23"],
                   "laplace": V["real23"]}[name]
    cd, ct = dd.cdf(dg.tensor(support_pts)), td.cdf(torch.tensor(support_pts))
    close(cd, ct)
    q = RNG.uniform(0.02, 0.98, (2, 3))
    idd, idt = dd.icdf(dg.tensor(q)), td.icdf(torch.tensor(q))
    close(idd, idt)
    gd = dg.autograd.grad((cd * 2 + idd).sum(), dps)
    gt = torch.autograd.grad((ct * 2 + idt).sum(), tps)
    for a, b in zip(gd, gt):
        close(a, b, rtol=1e-8, atol=1e-10)


def test_standard_gamma_implicit_gradient():
    mpmath = pytest.importorskip("mpmath")   # installed with torch (through sympy)
    from deepgrad.distributions._special import standard_gamma_grad_array
    a = np.array([0.01, 0.5, 1.0, 3.0, 50.0, 0.5, 2.0, 300.0, 0.2])
    x = np.array([1e-30, 0.3, 1.2, 2.0, 55.0, 8.0, 1e-3, 320.0, 20.0])
    exact = []
    for ai, xi in zip(a, x):
        with mpmath.workdps(30):
            dp = mpmath.diff(lambda al: mpmath.gammainc(al, 0, xi, regularized=True), ai)
            dens = mpmath.exp((ai - 1) * mpmath.log(xi) - xi - mpmath.loggamma(ai))
            exact.append(float(-dp / dens))
    got = standard_gamma_grad_array(a, x)
    np.testing.assert_allclose(got, exact, rtol=1e-6)
    # torch's own approximation agrees to its accuracy
    np.testing.assert_allclose(got, torch._standard_gamma_grad(torch.tensor(a), torch.tensor(x)).numpy(), rtol=2e-3)


@pytest.mark.parametrize("name", ["gamma", "beta", "dirichlet"])
def test_gamma_family_rsample_gradient_of_the_mean(name):
    # d E[x] / d params, estimated from reparameterised draws, equals the analytic d mean / d params
    case = next(c for c in CASES if c[0] == name)
    dg.manual_seed(5)
    ps = [dg.tensor(P[p].copy(), requires_grad=True) for p in case[2]]
    d = case[1](dg, *ps)
    n = 20000
    draws = d.rsample((n,))
    est = dg.autograd.grad(draws.sum() / n, ps)
    exact = dg.autograd.grad(d.mean.sum(), ps)
    for e, x in zip(est, exact):
        np.testing.assert_allclose(arr(e), arr(x), rtol=0.05, atol=0.01)
    with pytest.raises(RuntimeError, match="first-order"):
        g, = dg.autograd.grad(d.rsample().sum(), ps[:1], create_graph=True)
