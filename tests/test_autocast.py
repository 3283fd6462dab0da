"""CPU autocast (deepgrad/amp/_policy.py) against PyTorch 2.13's own CPU autocast, op by op: the
output dtype, the values (within bfloat16/float16 tolerances: both compute in float32 and round)
and the gradients' dtypes and values, for every op of PyTorch's CPU lists that deepgrad has and a
sample of ops in no list; then nesting, enabled=False regions, the cast cache, training under
autocast and the errors."""
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg

DT = [("bfloat16", torch.bfloat16), ("float16", torch.float16)]
TOL = {"bfloat16": 2e-2, "float16": 3e-3}


def _spd(lib, t):
    return t @ t.transpose(-1, -2) + 4 * lib.eye(t.shape[-1])


# name, list, inputs, fn(lib, F, *inputs)
# inputs: (shape, code) with code f: float32 leaf, l: low-precision leaf (the autocast dtype),
# i<N>: int64 in [0, N), p: float32 in (0, 1), s: float32 signs (+-1), u: float32 in (0.5, 1.5)
OPS = [
    # ---- CPU ops that autocast to the low dtype
    ("linear", "lower", [((4, 8), "f"), ((5, 8), "f"), ((5,), "f")], lambda L, F, x, w, b: F.linear(x, w, b)),
    ("linear_low_in", "lower", [((4, 8), "l"), ((5, 8), "f")], lambda L, F, x, w: F.linear(x, w)),
    ("nn.Linear", "lower", [((4, 8), "f")], lambda L, F, x: _module(L, "lin")(x)),
    ("matmul", "lower", [((3, 4, 8), "f"), ((8, 5), "f")], lambda L, F, a, b: L.matmul(a, b)),
    ("__matmul__", "lower", [((4, 8), "f"), ((8, 5), "f")], lambda L, F, a, b: a @ b),
    ("Tensor.matmul", "lower", [((4, 8), "f"), ((8, 5), "f")], lambda L, F, a, b: a.matmul(b)),
    ("mm", "lower", [((4, 8), "f"), ((8, 5), "f")], lambda L, F, a, b: L.mm(a, b)),
    ("bmm", "lower", [((2, 4, 8), "f"), ((2, 8, 5), "f")], lambda L, F, a, b: L.bmm(a, b)),
    ("addmm", "lower", [((4, 5), "f"), ((4, 8), "f"), ((8, 5), "f")], lambda L, F, c, a, b: L.addmm(c, a, b)),
    ("baddbmm", "lower", [((2, 4, 5), "f"), ((2, 4, 8), "f"), ((2, 8, 5), "f")],
     lambda L, F, c, a, b: L.baddbmm(c, a, b)),
    ("addbmm", "lower", [((4, 5), "f"), ((2, 4, 8), "f"), ((2, 8, 5), "f")], lambda L, F, c, a, b: L.addbmm(c, a, b)),
    ("conv1d", "lower", [((2, 3, 9), "f"), ((4, 3, 3), "f"), ((4,), "f")], lambda L, F, x, w, b: F.conv1d(x, w, b)),
    ("conv2d", "lower", [((2, 3, 7, 7), "f"), ((4, 3, 3, 3), "f"), ((4,), "f")],
     lambda L, F, x, w, b: F.conv2d(x, w, b, padding=1)),
    ("nn.Conv2d", "lower", [((2, 3, 7, 7), "f")], lambda L, F, x: _module(L, "conv")(x)),
    ("conv_transpose1d", "lower", [((2, 3, 6), "f"), ((3, 2, 3), "f")], lambda L, F, x, w: F.conv_transpose1d(x, w)),
    ("conv_transpose2d", "lower", [((2, 3, 5, 5), "f"), ((3, 2, 3, 3), "f")],
     lambda L, F, x, w: F.conv_transpose2d(x, w, stride=2)),
    ("prelu", "lower", [((4, 3, 5), "f"), ((3,), "u")], lambda L, F, x, w: F.prelu(x, w)),
    ("scaled_dot_product_attention", "lower", [((2, 4, 8), "f"), ((2, 6, 8), "f"), ((2, 6, 8), "f")],
     lambda L, F, q, k, v: F.scaled_dot_product_attention(q, k, v)),
    ("linalg.vecdot", "lower", [((4, 8), "f"), ((4, 8), "f")], lambda L, F, a, b: L.linalg.vecdot(a, b)),
    ("einsum", "lower", [((4, 8), "f"), ((8, 5), "f")], lambda L, F, a, b: L.einsum("ij,jk->ik", a, b)),
    ("tensordot (calls mm)", "lower", [((4, 8), "f"), ((8, 5), "f")], lambda L, F, a, b: L.tensordot(a, b, 1)),
    # ---- CPU ops that autocast to float32 (fed low-precision inputs)
    ("mse_loss", "fp32", [((4, 8), "l"), ((4, 8), "l")], lambda L, F, a, b: F.mse_loss(a, b)),
    ("l1_loss", "fp32", [((4, 8), "l"), ((4, 8), "l")], lambda L, F, a, b: F.l1_loss(a, b)),
    ("smooth_l1_loss", "fp32", [((4, 8), "l"), ((4, 8), "l")], lambda L, F, a, b: F.smooth_l1_loss(a, b)),
    ("huber_loss", "fp32", [((4, 8), "l"), ((4, 8), "l")], lambda L, F, a, b: F.huber_loss(a, b)),
    ("cross_entropy", "fp32", [((4, 8), "l"), ((4,), "i8")], lambda L, F, x, t: F.cross_entropy(x, t)),
    ("nn.CrossEntropyLoss", "fp32", [((4, 8), "l"), ((4,), "i8")], lambda L, F, x, t: L.nn.CrossEntropyLoss()(x, t)),
    ("nll_loss", "fp32", [((4, 8), "l"), ((4,), "i8")], lambda L, F, x, t: F.nll_loss(x, t)),
    ("binary_cross_entropy", "fp32", [((4, 8), "p"), ((4, 8), "p")],
     lambda L, F, p, t: F.binary_cross_entropy(p.to(L.bfloat16), t)),
    ("binary_cross_entropy_with_logits", "fp32", [((4, 8), "l"), ((4, 8), "p")],
     lambda L, F, x, t: F.binary_cross_entropy_with_logits(x, t)),
    ("kl_div", "fp32", [((4, 8), "l"), ((4, 8), "p")], lambda L, F, x, t: F.kl_div(x, t, reduction="batchmean")),
    ("soft_margin_loss", "fp32", [((4, 8), "l"), ((4, 8), "s")], lambda L, F, x, t: F.soft_margin_loss(x, t)),
    ("margin_ranking_loss", "fp32", [((8,), "l"), ((8,), "l"), ((8,), "s")],
     lambda L, F, a, b, t: F.margin_ranking_loss(a, b, t)),
    ("hinge_embedding_loss", "fp32", [((4, 8), "l"), ((4, 8), "s")], lambda L, F, x, t: F.hinge_embedding_loss(x, t)),
    ("cosine_embedding_loss", "fp32", [((4, 8), "l"), ((4, 8), "l"), ((4,), "s")],
     lambda L, F, a, b, t: F.cosine_embedding_loss(a, b, t)),
    ("triplet_margin_loss", "fp32", [((4, 8), "l"), ((4, 8), "l"), ((4, 8), "l")],
     lambda L, F, a, p, n: F.triplet_margin_loss(a, p, n)),
    ("multi_margin_loss", "fp32", [((4, 8), "l"), ((4,), "i8")], lambda L, F, x, t: F.multi_margin_loss(x, t)),
    ("prod", "fp32", [((3, 4), "l")], lambda L, F, x: L.prod(x, 1)),
    ("cdist", "fp32", [((4, 8), "l"), ((5, 8), "l")], lambda L, F, a, b: L.cdist(a, b)),
    ("trace", "fp32", [((5, 5), "l")], lambda L, F, a: L.trace(a)),
    ("inverse", "fp32", [((4, 4), "f")], lambda L, F, a: L.inverse(_spd(L, a).to(L.bfloat16))),
    ("linalg.inv", "fp32", [((4, 4), "f")], lambda L, F, a: L.linalg.inv(_spd(L, a).to(L.bfloat16))),
    ("linalg.solve", "fp32", [((4, 4), "f"), ((4, 2), "l")],
     lambda L, F, a, b: L.linalg.solve(_spd(L, a).to(L.bfloat16), b)),
    ("linalg.cholesky", "fp32", [((4, 4), "f")], lambda L, F, a: L.linalg.cholesky(_spd(L, a).to(L.bfloat16))),
    ("linalg.eigh", "fp32", [((4, 4), "f")], lambda L, F, a: L.linalg.eigh(_spd(L, a).to(L.bfloat16))[0]),
    ("linalg.eigvalsh", "fp32", [((4, 4), "f")], lambda L, F, a: L.linalg.eigvalsh(_spd(L, a).to(L.bfloat16))),
    ("linalg.svdvals", "fp32", [((4, 3), "l")], lambda L, F, a: L.linalg.svdvals(a)),
    ("linalg.qr", "fp32", [((4, 3), "l")], lambda L, F, a: L.linalg.qr(a)[1].abs()),
    ("max_unpool2d", "fp32", [((1, 2, 4, 4), "l")],
     lambda L, F, x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2)),
    ("grid_sample", "fp32", [((1, 2, 5, 5), "l"), ((1, 3, 3, 2), "l")],
     lambda L, F, x, g: F.grid_sample(x, g.tanh(), align_corners=False)),
    ("pad reflect (2d)", "fp32", [((1, 2, 4, 4), "l")], lambda L, F, x: F.pad(x, (1, 1, 1, 1), mode="reflect")),
    ("pad replicate", "fp32", [((1, 2, 4), "l")], lambda L, F, x: F.pad(x, (2, 1), mode="replicate")),
    ("quantile", "fp32", [((9,), "l")], lambda L, F, x: L.quantile(x, 0.3)),
    # ---- CPU ops that promote to the widest input dtype
    ("cat", "promote", [((2, 3), "f"), ((2, 3), "l")], lambda L, F, a, b: L.cat([a, b])),
    ("cat (all low)", "promote", [((2, 3), "l"), ((2, 3), "l")], lambda L, F, a, b: L.cat([a, b])),
    ("stack", "promote", [((2, 3), "l"), ((2, 3), "f")], lambda L, F, a, b: L.stack([a, b])),
    ("index_copy", "promote", [((4, 3), "f"), ((2, 3), "l")],
     lambda L, F, a, b: a.index_copy(0, L.tensor([3, 1]), b)),
    # ---- a sample of ops in no list: they run in their inputs' dtype
    ("softmax (low in)", "none", [((4, 8), "l")], lambda L, F, x: F.softmax(x, 1)),
    ("softmax (f32 in)", "none", [((4, 8), "f")], lambda L, F, x: F.softmax(x, 1)),
    ("log_softmax", "none", [((4, 8), "l")], lambda L, F, x: F.log_softmax(x, 1)),
    ("relu", "none", [((4, 8), "l")], lambda L, F, x: F.relu(x)),
    ("gelu", "none", [((4, 8), "l")], lambda L, F, x: F.gelu(x)),
    ("exp", "none", [((4, 8), "l")], lambda L, F, x: x.exp()),
    ("sum", "none", [((4, 8), "l")], lambda L, F, x: x.sum()),
    ("layer_norm", "none", [((4, 8), "l")], lambda L, F, x: F.layer_norm(x, (8,))),
    ("max_pool2d", "none", [((1, 2, 4, 4), "l")], lambda L, F, x: F.max_pool2d(x, 2)),
    ("avg_pool2d", "none", [((1, 2, 4, 4), "l")], lambda L, F, x: F.avg_pool2d(x, 2)),
    ("mv", "none", [((4, 8), "f"), ((8,), "f")], lambda L, F, a, v: L.mv(a, v)),
    ("dot", "none", [((8,), "f"), ((8,), "f")], lambda L, F, a, b: L.dot(a, b)),
    ("outer", "none", [((4,), "f"), ((5,), "f")], lambda L, F, a, b: L.outer(a, b)),
    ("pad constant", "none", [((1, 2, 4), "l")], lambda L, F, x: F.pad(x, (2, 1))),
    ("add f32 + low", "none", [((4, 8), "f"), ((4, 8), "l")], lambda L, F, a, b: a + b),
    ("linear in float64", "none", [((4, 8), "d"), ((5, 8), "d")], lambda L, F, x, w: F.linear(x, w)),
]

_MODULES = {}


def _module(lib, kind):
    """One Linear / Conv2d per library with the same weights (built once per test)."""
    key = (lib.__name__, kind)
    if key not in _MODULES:
        rng = np.random.default_rng(5)
        m = lib.nn.Linear(8, 5) if kind == "lin" else lib.nn.Conv2d(3, 4, 3, padding=1)
        with (torch.no_grad() if lib is torch else dg.no_grad()):
            for p in m.parameters():
                a = rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(np.float32)
                if lib is torch:
                    p.copy_(torch.tensor(a))
                else:
                    p.array[...] = a
        _MODULES[key] = m
    return _MODULES[key]


def _make(spec, low_np, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i, (shape, code) in enumerate(spec):
        if code.startswith("i"):
            out.append(("int", rng.integers(0, int(code[1:]), shape)))
            continue
        if code == "p":
            a = rng.uniform(0.05, 0.95, shape)
        elif code == "s":
            a = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        elif code == "u":
            a = rng.uniform(0.5, 1.5, shape)
        else:
            a = rng.uniform(-1, 1, shape)
        out.append((code, a))
    return out


def _tensors(lib, made, dname):
    ts = []
    for code, a in made:
        if code == "int":
            ts.append(lib.tensor(a))
            continue
        t = lib.tensor(a.astype(np.float64 if code == "d" else np.float32))
        if code == "l":
            t = t.to(getattr(lib, dname))
        if code in "fld":
            t.requires_grad_()
        ts.append(t)
    return ts


def _dtype_name(t):
    return str(t.dtype).replace("torch.", "")


@pytest.mark.parametrize("dname,tdt", DT)
@pytest.mark.parametrize("name,kind,spec,fn", OPS, ids=[o[0] for o in OPS])
def test_op_under_cpu_autocast_matches_torch(name, kind, spec, fn, dname, tdt):
    _MODULES.clear()
    made = _make(spec, None, seed=len(name))
    xd, xt = _tensors(dg, made, dname), _tensors(torch, made, dname)
    with dg.autocast("cpu", dtype=getattr(dg, dname)):
        out = fn(dg, dg.nn.functional, *xd)
    with torch.autocast("cpu", dtype=tdt):
        ref = fn(torch, torch.nn.functional, *xt)
    assert _dtype_name(out) == _dtype_name(ref), f"{name}: deepgrad {out.dtype}, torch {ref.dtype}"
    want = {"lower": dname, "fp32": "float32"}.get(kind)
    if want is not None:
        assert _dtype_name(ref) == want      # the table itself is PyTorch's
    tol = TOL[dname] * (4 if kind == "lower" or name in ("prod", "quantile") else 2)
    r = ref.detach().double().numpy()
    scale = max(np.abs(r).max(), 1e-3)
    np.testing.assert_allclose(out.detach().double().numpy(), r, rtol=0, atol=tol * scale, err_msg=name)
    # backward: gradients arrive in each input's own dtype, with torch's values
    if not ref.requires_grad:
        assert not out.requires_grad
        return
    cot = np.random.default_rng(3).standard_normal(tuple(ref.shape))
    (out.double() * dg.tensor(cot)).sum().backward()
    (ref.double() * torch.tensor(cot)).sum().backward()
    params = []
    if name.startswith("nn."):
        params = list(zip(_module(dg, "lin" if "Linear" in name else "conv").parameters(),
                          _module(torch, "lin" if "Linear" in name else "conv").parameters()))
    for a, b in list(zip(xd, xt)) + params:
        if b.grad is None:
            assert a.grad is None or not a.requires_grad or not np.any(a.grad.float().numpy())
            continue
        assert _dtype_name(a.grad) == _dtype_name(b.grad), name
        g = b.grad.double().numpy()
        np.testing.assert_allclose(a.grad.double().numpy(), g, rtol=0, atol=tol * 2 * max(np.abs(g).max(), 1e-3),
                                   err_msg=f"{name} gradient")


def test_nesting_disabled_regions_and_state():
    lin = dg.nn.Linear(8, 4)
    x = dg.randn(2, 8)
    assert not dg.is_autocast_enabled("cpu")
    with dg.autocast("cpu"):
        assert dg.get_autocast_dtype("cpu") == dg.bfloat16 and lin(x).dtype == dg.bfloat16
        with dg.autocast("cpu", enabled=False):
            assert not dg.is_autocast_enabled("cpu") and lin(x).dtype == dg.float32
            with dg.autocast("cpu", dtype=dg.float16):
                assert dg.nn.Linear(8, 4)(x).dtype == dg.float16 and dg.get_autocast_dtype("cpu") == dg.float16
                with pytest.raises(RuntimeError):   # lin's bfloat16 cast is cached, as in PyTorch
                    lin(x)
            assert lin(x).dtype == dg.float32
        assert lin(x).dtype == dg.bfloat16 and dg.get_autocast_dtype("cpu") == dg.bfloat16
    assert not dg.is_autocast_enabled("cpu") and lin(x).dtype == dg.float32
    for spelling in (lambda: dg.amp.autocast("cpu"), lambda: dg.cpu.amp.autocast()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            with spelling():
                assert lin(x).dtype == dg.bfloat16

    @dg.autocast("cpu", dtype=dg.float16)
    def f(a):
        return lin(a)
    assert f(x).dtype == dg.float16 and not dg.is_autocast_enabled("cpu")
    with pytest.raises(ZeroDivisionError):   # an exception inside leaves the state restored
        with dg.autocast("cpu"):
            1 / 0
    assert not dg.is_autocast_enabled("cpu") and lin(x).dtype == dg.float32


def test_weight_cast_cache_like_torch():
    from deepgrad.amp import _policy
    lin = dg.nn.Linear(8, 4)
    x = dg.randn(2, 8)
    with dg.autocast("cpu"):
        lin(x)
        lin(x)
        assert len(_policy._cache) == 2          # weight and bias, cast once for the region
        with dg.autocast("cpu", enabled=False):
            pass
        assert len(_policy._cache) == 2          # only the outermost exit clears it
    assert not _policy._cache
    with dg.autocast("cpu", cache_enabled=False):
        lin(x)
        assert not _policy._cache
    xt = dg.randn(2, 8)                          # a non-leaf / no-grad tensor is never cached
    with dg.autocast("cpu"):
        (xt * 2) @ dg.randn(8, 3)
        assert not _policy._cache


def test_training_step_under_autocast_follows_torch():
    """An MLP trained three SGD steps under bfloat16 autocast: the losses and the float32
    parameters follow PyTorch's."""
    def net(lib):
        nn = lib.nn
        return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))
    md, mt = net(dg), net(torch)
    mt.load_state_dict({k: torch.tensor(v.numpy()) for k, v in md.state_dict().items()})
    od = dg.optim.SGD(md.parameters(), lr=0.1, momentum=0.9)
    ot = torch.optim.SGD(mt.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 16)).astype(np.float32)
    y = rng.integers(0, 10, 32)
    for _ in range(3):
        od.zero_grad()
        ot.zero_grad()
        with dg.autocast("cpu", dtype=dg.bfloat16):
            out = md(dg.tensor(x))
            ld = dg.nn.functional.cross_entropy(out, dg.tensor(y))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lt = torch.nn.functional.cross_entropy(mt(torch.tensor(x)), torch.tensor(y))
        assert out.dtype == dg.bfloat16 and ld.dtype == dg.float32
        ld.backward()
        lt.backward()
        od.step()
        ot.step()
        np.testing.assert_allclose(float(ld), float(lt), rtol=2e-2)
    for (k, pd), pt in zip(md.state_dict().items(), mt.state_dict().values()):
        assert pd.dtype == dg.float32 and md.get_parameter(k).grad.dtype == dg.float32
        np.testing.assert_allclose(pd.numpy(), pt.numpy(), atol=3e-2 * np.abs(pt.numpy()).max(), err_msg=k)


@pytest.mark.parametrize("make", [lambda m: m.autocast("cpu", dtype=m.float64),
                                  lambda m: m.autocast("cpu", dtype=m.int32)])
def test_unsupported_cpu_dtype_warns_and_disables_like_torch(make):
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        with make(dg):
            assert not dg.is_autocast_enabled("cpu")
            assert dg.nn.Linear(3, 2)(dg.ones(1, 3)).dtype == dg.float32
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        with make(torch):
            assert torch.nn.Linear(3, 2)(torch.ones(1, 3)).dtype == torch.float32
    assert [w.category for w in ours] == [w.category for w in theirs] == [UserWarning]


def test_custom_fwd_casts_inputs_and_turns_autocast_off():
    class Double(dg.autograd.Function):
        @staticmethod
        @dg.amp.custom_fwd(device_type="cpu", cast_inputs=dg.float32)
        def forward(ctx, a, w):
            ctx.save_for_backward(a, w)
            assert not dg.is_autocast_enabled("cpu")
            return a @ w

        @staticmethod
        @dg.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, w = ctx.saved_tensors
            return g @ w.T, a.T @ g
    a = dg.randn(2, 3, dtype=dg.bfloat16, requires_grad=True)
    w = dg.randn(3, 4, requires_grad=True)
    with dg.autocast("cpu"):
        out = Double.apply(a, w)
    assert out.dtype == dg.float32
    out.sum().backward()
    assert a.grad.dtype == dg.bfloat16 and w.grad.dtype == dg.float32
