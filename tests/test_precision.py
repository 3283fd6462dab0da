"""Emulated number formats (deepgrad.amp.formats / deepgrad.precision), low_precision, Maxout and
the precision-table recipe (issue 15)."""
import math

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.precision as P
from deepgrad import nn
from deepgrad.nn import functional as F


def gen(seed=0):
    return dg.random.Generator().manual_seed(seed)


# ---- rounding -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,values", [
    (P.FixedPoint(4, 3, "stochastic"), [0.3, -0.3, 1.0 / 3, -2.71, 0.0625, 5.5]),
    (P.FixedPoint(2, 14, "stochastic"), [1e-5, -3e-5, 0.123456, -1.99]),
    (P.Float16("stochastic"), [1 + 1e-4, -3.14159e-3, 1000.3, 2.5e-6]),
])
def test_stochastic_rounding_is_unbiased(fmt, values):
    n = 40000
    for v in values:
        x = np.full(n, v, np.float64)
        r = fmt.quantize(x, gen(1))
        lo, hi = r.min(), r.max()
        assert hi - lo <= 2 * abs(v) * 2 ** -9 + 2 ** -3 and len(np.unique(r)) <= 2   # two neighbours at most
        se = r.std() / math.sqrt(n)
        assert abs(r.mean() - v) <= 4 * se + 1e-15, (v, r.mean(), se)
        assert lo <= v <= hi


def test_stochastic_rounding_uses_the_generator():
    f = P.FixedPoint(3, 2, "stochastic")
    x = np.linspace(-3, 3, 1001).astype(np.float32)
    a, b, c = f.quantize(x, gen(5)), f.quantize(x, gen(5)), f.quantize(x, gen(6))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    dg.manual_seed(3)
    d = f.quantize(x)
    dg.manual_seed(3)
    np.testing.assert_array_equal(d, f.quantize(x))
    assert a.dtype == np.float32 and np.all(a * 4 == np.round(a * 4))      # on the 2**-2 grid


def test_round_stochastic_helper_exact_for_large_values():
    x = np.array([2.0 ** 30 + 0.5] * 4000)
    r = P.round_stochastic(x, gen(0))
    assert set(np.unique(r)) <= {2.0 ** 30, 2.0 ** 30 + 1}
    assert abs(r.mean() - x[0]) < 4 * r.std() / math.sqrt(len(r))


def test_nearest_is_deterministic_and_biased_as_expected():
    f = P.FixedPoint(4, 2)                        # step 0.25
    x = np.array([0.3, 0.125, 0.375, -0.3, 0.6, -0.125, 1.0], np.float32)
    want = np.array([0.25, 0.0, 0.5, -0.25, 0.5, -0.0, 1.0], np.float32)    # halves to even
    for _ in range(3):
        np.testing.assert_array_equal(f.quantize(x, gen(np.random.randint(100))), want)
    # the bias of round-to-nearest on a constant: every draw gives the same value
    r = f.quantize(np.full(1000, 0.3, np.float32))
    assert r.mean() == pytest.approx(0.25) and r.mean() - 0.3 == pytest.approx(-0.05)
    assert P.round_nearest(np.array([2.5, 3.5, -0.5])).tolist() == [2.0, 4.0, -0.0]
    np.testing.assert_array_equal(P.Float16().quantize(np.array([1 + 2 ** -12], np.float32)), [1.0])


@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_fixed_point_saturates_at_its_range(rounding):
    f = P.FixedPoint(2, 14, rounding)
    assert (f.min, f.max, f.step, f.bits) == (-2.0, 2.0 - 2 ** -14, 2 ** -14, 16)
    x = np.array([5.0, -5.0, 2.0, -2.0, 1e30, -np.inf, np.inf, 1.99999], np.float32)
    r = f.quantize(x, gen())
    assert r[0] == r[2] == r[4] == r[6] == f.max
    assert r[1] == r[3] == r[5] == f.min == -2.0
    assert f.max - 2 ** -14 <= r[7] <= f.max
    g = P.FixedPoint(1, 0)                         # one bit: {-1, 0}
    np.testing.assert_array_equal(g.quantize(np.array([-3.0, -0.4, 0.7, 9.0])), [-1, 0, 0, 0])
    h = P.FixedPoint(0, 3)                         # no integer bit, not even the sign's: [-0.5, 0.5)
    assert (h.min, h.max) == (-0.5, 0.375)


def test_formats_on_tensors_and_dtypes():
    f = P.FixedPoint(3, 4)
    t = dg.tensor([0.03, 1.51, -9.0])
    out = f(t)
    assert isinstance(out, dg.Tensor) and out.dtype == dg.float32 and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), [0.0, 1.5, -4.0])
    assert f(np.array([0.03], np.float64)).dtype == np.float64
    assert f([0.26]).tolist() == [0.25]
    h = f(np.array([0.03, 1.51], np.float16))
    assert h.dtype == np.float16 and h.tolist() == [0.0, 1.5]


def test_bad_formats_raise_clear_errors():
    with pytest.raises(ValueError, match="FixedPoint.*at least one bit"):
        P.FixedPoint(0, 0)
    with pytest.raises(ValueError, match="FixedPoint.*>= 0.*integer_bits=-1"):
        P.FixedPoint(-1, 8)
    with pytest.raises(ValueError, match="FixedPoint.*fraction_bits=-2"):
        P.FixedPoint(4, -2)
    with pytest.raises(ValueError, match="DynamicFixedPoint.*at least one bit"):
        P.DynamicFixedPoint(0)
    with pytest.raises(ValueError, match="DynamicFixedPoint.*bits=-3"):
        P.DynamicFixedPoint(-3)
    with pytest.raises(ValueError, match="rounding must be one of"):
        P.FixedPoint(2, 2, rounding="up")
    with pytest.raises(ValueError, match="rounding"):
        P.Float16("truncate")
    with pytest.raises(TypeError, match="integer_bits must be an int"):
        P.FixedPoint(2.5, 3)
    with pytest.raises(ValueError, match="max_overflow_rate"):
        P.DynamicFixedPoint(8, max_overflow_rate=1.5)
    with pytest.raises(TypeError, match="floating-point"):
        P.FixedPoint(2, 2).quantize(np.arange(3))
    with pytest.raises(TypeError, match="NumberFormat"):
        P.quantize(dg.ones(2), fmt="fixed")


# ---- dynamic fixed point ---------------------------------------------------------------------------

def test_dynamic_fixed_point_grows_on_overflow():
    d = P.DynamicFixedPoint(8, integer_bits=2, max_overflow_rate=0.1, update_every=1)   # range [-2, 2)
    assert (d.fraction_bits, d.integer_bits) == (6, 2)
    x = np.array([3.0, -2.5, 0.5, 0.25, 0.1, -0.1, 0.3, 0.2, 0.7, 1.0], np.float32)   # 20% overflow
    r = d.quantize(x)
    assert r[0] == 2 - 2 ** -6 and r[1] == -2.0           # saturated with the old exponent
    assert d.integer_bits == 3 and d.history == [3]
    r = d.quantize(x)                                      # now [-4, 4): nothing overflows; 2x does (20%)
    assert r[0] == 3.0 and r[1] == -2.5 and d.integer_bits == 3


def test_dynamic_fixed_point_shrinks_when_twice_the_values_fit():
    d = P.DynamicFixedPoint(8, integer_bits=4, max_overflow_rate=0.0, update_every=1)    # range [-8, 8)
    x = np.array([1.5, -0.75, 0.1], np.float32)           # 2x < 8: the top bit is wasted
    d.quantize(x)
    assert d.integer_bits == 3
    d.quantize(x)
    assert d.integer_bits == 2                             # range [-2, 2): 2x = 3 > 2 overflows now
    d.quantize(x)
    assert d.integer_bits == 2 and d.history == [3, 2, 2]
    np.testing.assert_array_equal(d.quantize(x), np.round(x * 64) / 64)


def test_dynamic_fixed_point_counts_over_several_calls_and_fits_the_first_tensor():
    d = P.DynamicFixedPoint(6, max_overflow_rate=0.25, update_every=0)                  # update() by hand
    d.quantize(np.array([0.9, -0.2], np.float32))
    assert d.integer_bits == 1                             # 2**(il-1) in (0.9, 1.8]
    d.quantize(np.array([5.0, 0.1], np.float32))          # 1 overflow of 4 values seen: rate 0.25, not > 0.25
    assert (d.seen, d.overflows, d.overflows_2x) == (4, 1, 2) and d.integer_bits == 1
    assert d.update() == 1
    d.quantize(np.array([5.0, 6.0, 0.1, 0.1], np.float32))
    assert d.update() == 2 and d.seen == 0
    g = d.group()
    assert g.integer_bits is None and g.bits == 6 and g is not d
    assert d.quantize(np.zeros(3, np.float32)).tolist() == [0, 0, 0]
    e = P.DynamicFixedPoint(4)
    assert e.quantize(np.zeros(2, np.float32)).tolist() == [0, 0] and e.integer_bits is None
    z = P.DynamicFixedPoint(8, integer_bits=0)          # a group of zeros shrinks to the limit, no further
    for _ in range(150):
        r = z.quantize(np.zeros(3, np.float32))
    assert z.fraction_bits == z.EXPONENT_LIMIT and r.tolist() == [0, 0, 0]
    r = z.quantize(np.array([3e-30, 1.0], np.float32))     # grid 2**-100, max 2**-93 - 2**-100: no inf, no NaN
    np.testing.assert_array_equal(r, np.array([4 * 2.0 ** -100, 127 * 2.0 ** -100], np.float32))


# ---- the differentiable rounding ---------------------------------------------------------------------

def test_quantize_function_rounds_values_and_the_incoming_gradient():
    fwd, bwd = P.FixedPoint(3, 2), P.FixedPoint(2, 6)                      # [-4, 3.75] and [-2, 2)
    x = dg.tensor([0.3, -1.1, 7.0, 0.05, -4.2], requires_grad=True)
    y = P.quantize(x, fwd, bwd)
    np.testing.assert_array_equal(y.detach().numpy(), fwd.quantize(x.detach().numpy()))
    g = np.array([0.0051, -3.0, 5.0, 0.02, 1.0], np.float32)
    y.backward(dg.tensor(g))
    want = bwd.quantize(g)
    want[[2, 4]] = 0                  # saturated forward values: the clipping's derivative is zero
    np.testing.assert_array_equal(x.grad.numpy(), want)
    assert x.grad.numpy()[1] == -2.0 and x.grad.numpy()[0] == 0.0              # the gradient saturates too
    # second order: the same rounding and mask, as a graph
    x3 = dg.tensor([1.0, 3.0], requires_grad=True)
    (gx,) = dg.autograd.grad(P.quantize(x3 * x3, P.FixedPoint(3, 2)).sum(), x3, create_graph=True)
    np.testing.assert_array_equal(gx.detach().numpy(), [2.0, 0.0])             # 9 saturated at 3.75


def test_quantize_function_stochastic_gradient_follows_the_generator():
    bwd = P.FixedPoint(2, 3, "stochastic")
    x = dg.randn(200, requires_grad=True)
    g = np.random.default_rng(0).standard_normal(200).astype(np.float32) * 0.3
    P.quantize(x, None, bwd, generator=gen(9)).backward(dg.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), bwd.quantize(g, gen(9)))
    # without formats it is the identity both ways; as a graph it is differentiable again
    x2 = dg.tensor([1.0, 2.0], requires_grad=True)
    y = P.quantize(x2 * x2, None, P.FixedPoint(4, 1))
    (gx,) = dg.autograd.grad(y.sum(), x2, create_graph=True)
    np.testing.assert_array_equal(gx.detach().numpy(), [2.0, 4.0])
    (h,) = dg.autograd.grad(gx.sum(), x2)
    np.testing.assert_array_equal(h.numpy(), [2.0, 2.0])


# ---- Maxout ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,in_f,out_f,k,bias", [((5, 7), 7, 3, 4, True), ((2, 3, 6), 6, 5, 2, False),
                                                     ((4,), 4, 2, 3, True), ((3, 5), 5, 4, 1, True)])
def test_maxout_matches_numpy_and_torch(shape, in_f, out_f, k, bias):
    dg.manual_seed(0)
    m = nn.Maxout(in_f, out_f, k, bias=bias)
    assert m.weight.shape == (out_f * k, in_f) and (m.bias.shape == (out_f * k,) if bias else m.bias is None)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    w = m.weight.detach().numpy()
    b = m.bias.detach().numpy() if bias else 0
    want = (x @ w.T + b).reshape(shape[:-1] + (out_f, k)).max(-1)
    xt = dg.tensor(x, requires_grad=True)
    y = m(xt)
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    # torch has no Maxout: its usual spelling is a Linear then amax over the pieces
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    ty = torch.nn.functional.linear(tx, tw, tb).reshape(shape[:-1] + (out_f, k)).amax(-1)
    gy = np.random.default_rng(2).standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.tensor(gy))
    y.backward(dg.tensor(gy))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.weight.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-5)
    if bias:
        np.testing.assert_allclose(m.bias.grad.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert "pieces=" in repr(m)


def test_maxout_gradcheck_and_errors():
    dg.manual_seed(0)
    m = nn.Maxout(4, 3, 2).to(dg.float64)
    x = dg.randn(5, 4, dtype=dg.float64, requires_grad=True)
    assert dg.autograd.gradcheck(lambda x, w, b: F.linear(x, w, b).reshape(5, 3, 2).amax(-1),
                                 (x, m.weight, m.bias))
    assert dg.autograd.gradcheck(lambda x: m(x), (x,))
    with pytest.raises(ValueError, match="Maxout.*pieces >= 1"):
        nn.Maxout(4, 3, 0)
    with pytest.raises(RuntimeError, match="Maxout.*last dimension 4.*\\(2, 5\\)"):
        m(dg.randn(2, 5, dtype=dg.float64))
    assert not hasattr(torch.nn, "Maxout")       # deepgrad's own layer (documented as such)


# ---- low_precision -----------------------------------------------------------------------------------

def _on_grid(a, step):
    return np.all(a / step == np.round(a / step))


def test_low_precision_rounds_outputs_gradients_and_updates():
    dg.manual_seed(0)
    model = nn.Sequential(nn.Maxout(6, 5, 2), nn.ReLU(), nn.Linear(5, 3))
    opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    prop, upd = P.FixedPoint(4, 6), P.FixedPoint(2, 10)
    x, y = dg.randn(8, 6), dg.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    seen = {}
    model[2].register_forward_hook(lambda m, a, out: seen.update(input=a[0]))
    with P.low_precision(model, propagation=prop, update=upd, optimizer=opt) as lp:
        for p in model.parameters():
            assert _on_grid(p.detach().numpy(), 2 ** -10)          # rounded on entry
        out = model(x)
        assert _on_grid(out.detach().numpy(), 2 ** -6) and _on_grid(seen["input"].detach().numpy(), 2 ** -6)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        for p in model.parameters():
            assert _on_grid(p.grad.numpy(), 2 ** -6)               # parameter gradients in propagation format
        before = [p.detach().numpy().copy() for p in model.parameters()]
        opt.step()
        after = [p.detach().numpy() for p in model.parameters()]
        assert all(_on_grid(a, 2 ** -10) for a in after) and any((a != b).any() for a, b in zip(after, before))
        assert set(lp.formats) >= {"0.output", "0.output.grad", "2.output", "0.weight", "0.weight.grad"}
    assert "step" not in vars(opt) and not model[0]._forward_hooks and not model._forward_pre_hooks
    out = model(x)
    assert not _on_grid(out.detach().numpy(), 2 ** -6)             # hooks removed on exit


def test_low_precision_gradient_at_a_layer_output_is_rounded():
    dg.manual_seed(1)
    lin = nn.Linear(4, 3)
    grads = {}
    with P.low_precision(lin, propagation=P.FixedPoint(2, 3), parameter_gradients=False):
        out = lin(dg.randn(2, 4))
        out.register_hook(lambda g: grads.update(out=g.numpy().copy()))
        g = np.array([[0.01, 0.3, -0.2], [5.0, 0.07, 0.0]], np.float32)
        out.backward(dg.tensor(g))
    # the hook on the rounded output sees g itself; the layer below receives its rounding
    np.testing.assert_array_equal(grads["out"], g)
    np.testing.assert_array_equal(lin.bias.grad.numpy(), P.FixedPoint(2, 3).quantize(g).sum(0))


def test_low_precision_without_optimizer_rounds_before_forward_and_dynamic_groups():
    dg.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    opt = dg.optim.SGD(model.parameters(), lr=0.05)
    lp = P.low_precision(model, propagation=P.DynamicFixedPoint(10, update_every=1),
                         update=P.DynamicFixedPoint(12)).attach()
    x = dg.randn(3, 1, 4, 4)
    for _ in range(3):
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ex = lp.exponents()
    assert {"0.output", "0.output.grad", "3.output", "0.weight", "3.bias.grad"} <= set(ex)
    assert all(isinstance(v, int) for v in ex.values())
    model(x)                                                      # pre-forward rounding
    w = model[0].weight.detach().numpy()
    assert _on_grid(w, 2.0 ** -(12 - lp.formats["0.weight"].integer_bits))
    lp.remove()
    with pytest.raises(TypeError, match="nn.Module"):
        P.low_precision(object(), propagation=P.Float16())
    with pytest.raises(TypeError, match="propagation must be a NumberFormat"):
        P.low_precision(model, propagation=16)


def test_low_precision_float16_rows_match_a_float16_cast():
    dg.manual_seed(3)
    lin = nn.Linear(5, 4)
    x = dg.randn(6, 5)
    with P.low_precision(lin, propagation=P.Float16(), update=P.Float16()):
        y = lin(x).detach().numpy()
        w = lin.weight.detach().numpy()
    assert np.array_equal(w, w.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(y, y.astype(np.float16).astype(np.float32))
    assert dg.amp.low_precision is P.low_precision and dg.amp.FixedPoint is P.FixedPoint


# ---- the recipe ---------------------------------------------------------------------------------------

def test_precision_table_quick_shows_the_rounding_contrast(tmp_path, capsys):
    from deepgrad.recipes import get_recipe, train_recipe
    assert get_recipe("precision-table").name == "precision-table"
    r = train_recipe("precision-table", out=str(tmp_path), quick=True, verbose=True)
    text = capsys.readouterr().out
    assert "1.05" in text and "1.28" in text and "emulated" in text
    t = r["test"]
    assert {"pi-mnist_single_error", "pi-mnist_half_error", "pi-mnist_fixed_error", "pi-mnist_dynamic_error"} <= set(t)
    assert t["pi-mnist_single_error"] < 80                            # it learns at all
    assert abs(t["pi-mnist_half_error"] - t["pi-mnist_single_error"]) < 5
    assert {"mnist_single_error", "mnist_dynamic_error"} <= set(t) and "cifar10_single_error" not in t
    # Gupta et al.: <2,14> with round-to-nearest stalls; stochastic rounding follows float32
    assert t["gupta_stochastic_error"] < t["gupta_nearest_error"] - 2
    assert abs(t["gupta_stochastic_error"] - t["gupta_float32_error"]) < 2
    assert (tmp_path / "gupta_rounding.png").is_file() and (tmp_path / "precision_table.png").is_file()
    assert (tmp_path / "result.json").is_file()
    with pytest.raises(ValueError, match="unknown parts"):
        train_recipe("precision-table", out=str(tmp_path), quick=True, parts="svhn", verbose=False)


def test_precision_table_cifar_part_on_synthetic_images(tmp_path, monkeypatch):
    # the CIFAR-10 code path without reading the files (the cache the recipe fills on first use)
    from deepgrad.recipes import precision, train_recipe
    rng = np.random.default_rng(0)
    fake = (rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 60),
            rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 40))
    monkeypatch.setitem(precision._CACHE, ("cifar10", None, True), fake)
    r = train_recipe("precision-table", quick=True, parts="cifar10", rows="single,fixed", out=str(tmp_path),
                     verbose=False, plots=False)
    assert set(r["test"]) == {"cifar10_single_error", "cifar10_fixed_error"}
    assert r["table"]["cifar10"]["fixed"]["propagation"].startswith("FixedPoint(integer_bits=5")


def test_cli_train_quick_flag(monkeypatch):
    from deepgrad import cli
    seen = {}
    monkeypatch.setattr("deepgrad.recipes.train_recipe", lambda name, **kw: seen.update(kw, name=name) or
                        {"recipe": name, "test": {}, "epochs": 1, "wall_s": 0.0, "checkpoint": None, "plots": [],
                         "out": "x"})
    assert cli.main(["train", "precision-table", "--quick"]) == 0
    assert seen["name"] == "precision-table" and seen["quick"] is True
