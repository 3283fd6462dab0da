"""float16 / bfloat16 at float32 speed (ops/_lowp.py, optim/_lowp.py): the conversions are exact,
every op's output and gradients have PyTorch's dtype and agree with PyTorch's own float16/bfloat16
computation (which also computes in float32 on CPU and rounds), and training steps of an MLP and
LeNet-5 follow PyTorch's."""
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad.ops import _f16c, _lowp

DTYPES = [("float16", torch.float16), ("bfloat16", torch.bfloat16)]
# a few units in the last place of the low dtype (float16: 2**-10, bfloat16: 2**-7), relative
TOL = {"float16": 4e-3, "bfloat16": 3e-2}


@pytest.fixture(params=["f16c", "numpy"])
def conversion_path(request):
    """Run a test with the F16C kernel (ops/_f16c.py; skipped where it cannot be built) and with
    the NumPy conversions."""
    if request.param == "f16c" and not _f16c.available():
        pytest.skip(f"F16C kernel unavailable: {_f16c.why_unavailable()}")
    prev = _f16c.set_enabled(request.param == "f16c")
    yield request.param
    _f16c.set_enabled(prev)


def test_f16c_kernel_builds_where_it_can():
    """On an x86-64 Linux machine with F16C and a C compiler the fast path must be in use (a build
    regression would silently fall back to the NumPy conversions)."""
    import platform
    import shutil
    import sys
    import os
    feats = getattr(getattr(np, "_core", None), "_multiarray_umath", None)
    feats = getattr(feats, "__cpu_features__", {})
    if not (sys.platform.startswith("linux") and platform.machine() == "x86_64" and feats.get("F16C")
            and shutil.which(os.environ.get("CC", "cc")) and os.environ.get("DEEPGRAD_F16C", "1") != "0"):
        pytest.skip("no x86-64 Linux with F16C and a C compiler")
    assert _f16c.available(), _f16c.why_unavailable()


def test_float16_conversions_are_exact(conversion_path):
    allh = np.arange(65536, dtype=np.uint16).view(np.float16)
    ref = allh.astype(np.float32)
    got = _lowp.up(allh)
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))     # NaN payloads too
    for n in range(0, 20):                                # every tail length of the 8-wide kernel
        part = allh[31740:31740 + n]                      # (around inf and the NaNs)
        assert np.array_equal(_lowp.up(part).view(np.uint32), part.astype(np.float32).view(np.uint32))
    rng = np.random.default_rng(0)
    mid = ((ref[:-1].astype(np.float64) + ref[1:]) / 2)
    mid = mid[np.isfinite(mid)].astype(np.float32)
    xs = np.concatenate([
        rng.integers(0, 2 ** 32, 300_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        mid, np.nextafter(mid, np.float32(np.inf)), np.nextafter(mid, np.float32(-np.inf)),
        (rng.standard_normal(50_000) * np.exp(rng.uniform(-25, 13, 50_000))).astype(np.float32),
        np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 65504, 65519.99, 65520, 6e-8, 2.9e-8, 3.0e-8],
                 np.float32)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = xs.astype(np.float16)
    got = _lowp.down(xs, np.dtype(np.float16))
    same = (got.view(np.uint16) == want.view(np.uint16)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), xs[~same][:5]
    # shuffled (so most 64K blocks hold no overflow/NaN and take the fast path), and the kept float32
    # values (an optimiser's shadow) and round_f16 equal the float16 result upcast, signed zeros too
    perm = rng.permutation(len(xs))
    xs, want = xs[perm], want[perm]
    normal = np.abs(xs) < 2 ** 15
    for sel in (normal, ~np.isnan(xs), np.ones_like(normal)):
        y = xs[sel].copy()
        got = _lowp._f32_to_f16(y, keep=True)
        w = want[sel]
        assert ((got.view(np.uint16) == w.view(np.uint16)) | (np.isnan(got) & np.isnan(w))).all()
        wf = w.astype(np.float32)
        for v in (y, _lowp.round_f16(xs[sel])):
            assert ((v.view(np.uint32) == wf.view(np.uint32)) | (np.isnan(v) & np.isnan(wf))).all()
    # every tail length, a NaN in the first and in a later group of 8, signalling-NaN payloads
    snan = np.array([0x7F800001, 0xFF800400, 0x7FA00000, 0x7F802000], np.uint32).view(np.float32)
    for n in range(0, 20):
        for case in (xs[:n], np.concatenate([xs[:n], snan[:n % 4]]), np.concatenate([snan[:n % 3], xs[:n]])):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = case.astype(np.float16)
            y = case.copy()
            got = _lowp._f32_to_f16(y, keep=True)
            assert np.array_equal(got.view(np.uint16), w.view(np.uint16)), case
            assert np.array_equal(y.view(np.uint32), w.astype(np.float32).view(np.uint32)), case
            assert np.array_equal(_lowp.down(case, np.dtype(np.float16)).view(np.uint16), w.view(np.uint16))
    # a read-only input, a float16 ``out`` to fill
    ro = xs[normal][:1001].copy()
    ro.flags.writeable = False
    out = np.empty(ro.shape, np.float16)
    assert _lowp._f32_to_f16(ro, out=out) is out
    assert np.array_equal(out.view(np.uint16), ro.astype(np.float16).view(np.uint16))
    # a channels-last layout survives the round trip (conv activations keep it)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32).transpose(0, 3, 1, 2)
    h = _lowp.down(x, np.dtype(np.float16))
    assert h.strides == tuple(s // 2 for s in x.strides) and np.array_equal(h, x.astype(np.float16))
    assert _lowp.up(h).strides == x.strides


def test_bfloat16_conversions_are_exact(conversion_path):
    """float32 -> bfloat16 (down, down_keep's kept float32 values, a gradient's shadow) gives
    ml_dtypes' bits: every bfloat16, the midpoints between neighbours and just beside them, random
    bit patterns (subnormals, overflow to inf), every tail length of the 16-wide kernel, and arrays
    with NaNs (ml_dtypes' own NaN, its warning on a signalling one)."""
    from deepgrad import backend
    bf = np.dtype(backend.bfloat16)
    allb = np.arange(65536, dtype=np.uint32) << 16
    ref = allb.view(np.float32)
    rng = np.random.default_rng(1)
    finite = ref[np.isfinite(ref)]
    lo, hi = np.sort(finite)[:-1], np.sort(finite)[1:]
    mid = ((lo.astype(np.float64) + hi) / 2).astype(np.float32)
    xs = np.concatenate([ref[~np.isnan(ref)], mid, np.nextafter(mid, np.float32(np.inf)),
                         np.nextafter(mid, np.float32(-np.inf)),
                         rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
                         np.array([3.4028235e38, -3.4028235e38, 1e-45, -1e-45, 0.0, -0.0], np.float32)])
    xs = xs[rng.permutation(len(xs))]
    fin = xs[~np.isnan(xs)]
    for case in [fin] + [fin[:n] for n in range(40)] + [xs[:1000]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = case.astype(bf)
        got = _lowp.down(case, bf)
        assert np.array_equal(got.view(np.uint16), want.view(np.uint16))
        y = case.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = _lowp.down_keep(y, bf)
        assert np.array_equal(got.view(np.uint16), want.view(np.uint16))
        assert np.array_equal(y.view(np.uint32), want.astype(np.float32).view(np.uint32))
    t = _lowp._grad_with_shadow(fin[:5000].copy(), bf)
    assert np.array_equal(t.array.view(np.uint16), fin[:5000].astype(bf).view(np.uint16))
    sh = _lowp.shadow_of(t)
    assert sh is None or np.array_equal(sh.view(np.uint32), t.array.astype(np.float32).view(np.uint32))
    # a signalling NaN warns as ml_dtypes' cast does (the kernel leaves NaNs to it)
    snan = np.concatenate([fin[:20], np.array([0x7F800001], np.uint32).view(np.float32)])
    with pytest.warns(RuntimeWarning):
        _lowp.down(snan, bf)


def _pair(shape, lo=-2.0, hi=2.0, seed=0):
    a = np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)
    return a


OPS = [  # name, deepgrad fn, torch fn, input shapes (float), extra args
    ("add", lambda a, b: a + b, lambda a, b: a + b, [(4, 5), (5,)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [(4, 5), (4, 5)]),
    ("div", lambda a, b: a / (b.abs() + 1), lambda a, b: a / (b.abs() + 1), [(4, 5), (4, 5)]),
    ("relu", F.relu, torch.relu, [(6, 7)]),
    ("sigmoid", dg.sigmoid, torch.sigmoid, [(6, 7)]),
    ("tanh", dg.tanh, torch.tanh, [(6, 7)]),
    ("exp", dg.exp, torch.exp, [(6, 7)]),
    ("gelu", F.gelu, torch.nn.functional.gelu, [(6, 7)]),
    ("sum", lambda a: a.sum(1), lambda a: a.sum(1), [(6, 300)]),
    ("mean", lambda a: a.mean(), lambda a: a.mean(), [(6, 300)]),
    ("softmax", lambda a: F.softmax(a, 1), lambda a: torch.softmax(a, 1), [(6, 10)]),
    ("log_softmax", lambda a: F.log_softmax(a, 1), lambda a: torch.log_softmax(a, 1), [(6, 10)]),
    ("linear", F.linear, torch.nn.functional.linear, [(8, 64), (16, 64), (16,)]),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 8, 64), (64, 5)]),
    ("bmm", dg.bmm, torch.bmm, [(3, 8, 64), (3, 64, 5)]),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b: torch.nn.functional.conv2d(x, w, b, padding=1),
     [(2, 3, 8, 8), (4, 3, 3, 3), (4,)]),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda x: torch.nn.functional.max_pool2d(x, 2), [(2, 3, 8, 8)]),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2), lambda x: torch.nn.functional.avg_pool2d(x, 2), [(2, 3, 8, 8)]),
    ("layer_norm", lambda x: F.layer_norm(x, (16,)), lambda x: torch.nn.functional.layer_norm(x, (16,)), [(4, 16)]),
    ("mse_loss", F.mse_loss, torch.nn.functional.mse_loss, [(4, 16), (4, 16)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, dg.tensor([1, 0, 3, 2])),
     lambda x: torch.nn.functional.cross_entropy(x, torch.tensor([1, 0, 3, 2])), [(4, 5)]),
    ("batch_norm", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
     lambda x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b, training=True), [(6, 3, 4, 4), (3,), (3,)]),
    ("group_norm", lambda x: F.group_norm(x, 3), lambda x: torch.nn.functional.group_norm(x, 3), [(2, 6, 5)]),
    ("embedding", lambda w: F.embedding(dg.tensor([[1, 3], [0, 3]]), w),
     lambda w: torch.nn.functional.embedding(torch.tensor([[1, 3], [0, 3]]), w), [(5, 4)]),
    ("conv_transpose2d", lambda x, w: F.conv_transpose2d(x, w, stride=2),
     lambda x, w: torch.nn.functional.conv_transpose2d(x, w, stride=2), [(2, 3, 5, 5), (3, 2, 3, 3)]),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, 1),
     lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 1), [(2, 3, 5, 5)]),
    ("cat_then_pow", lambda a, b: dg.cat([a, b]) ** 2, lambda a, b: torch.cat([a, b]) ** 2, [(2, 3), (2, 3)]),
    ("where_max", lambda a, b: dg.where(a > b, a, b).amax(1), lambda a, b: torch.where(a > b, a, b).amax(1),
     [(4, 6), (4, 6)]),
]


@pytest.mark.parametrize("dname,tdt", DTYPES)
@pytest.mark.parametrize("name,fd,ft,shapes", OPS, ids=[o[0] for o in OPS])
def test_op_matches_torch_in_low_precision(name, fd, ft, shapes, dname, tdt):
    arrays = [_pair(s, seed=i) for i, s in enumerate(shapes)]
    dt = getattr(dg, dname)
    xs = [dg.tensor(a).to(dt).requires_grad_() for a in arrays]
    ts = [torch.tensor(a).to(tdt).requires_grad_() for a in arrays]
    out, ref = fd(*xs), ft(*ts)
    assert str(out.dtype) == str(ref.dtype).replace("torch.", "")
    tol = TOL[dname] * (4 if name in ("conv2d", "linear", "matmul", "bmm", "sum", "conv_transpose2d", "batch_norm",
                                      "group_norm") else 1)
    ref32 = ref.detach().float().numpy()
    np.testing.assert_allclose(out.detach().float().numpy(), ref32, rtol=tol, atol=tol * np.abs(ref32).max())
    g = np.random.default_rng(9).standard_normal(ref.shape).astype(np.float32)
    out.backward(dg.tensor(g).to(dt))
    ref.backward(torch.tensor(g).to(tdt))
    for x, t in zip(xs, ts):
        assert x.grad.dtype == dt
        gr = t.grad.float().numpy()
        np.testing.assert_allclose(x.grad.float().numpy(), gr, rtol=tol, atol=tol * max(np.abs(gr).max(), 1e-3))


def test_float32_unaffected_and_mixed_promotes():
    a = dg.randn(3, 4)
    assert (a.half() + a).dtype == dg.float32
    assert (a.bfloat16() * a).dtype == dg.float32
    assert (a.half() * a.half()).dtype == dg.float16
    x = dg.randn(3, 4, dtype=dg.bfloat16, requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    assert y.dtype == dg.bfloat16 and x.grad.dtype == dg.bfloat16


def _mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))


def _lenet(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(6, 16, 5),
                         nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


@pytest.mark.parametrize("dname,tdt", DTYPES)
@pytest.mark.parametrize("net,shape,opt", [(_mlp, (32, 1, 8, 8), "sgd"), (_lenet, (16, 1, 28, 28), "sgd"),
                                           (_mlp, (32, 1, 8, 8), "adam")])
def test_training_steps_follow_torch(net, shape, opt, dname, tdt):
    if opt == "adam" and dname == "float16":
        pytest.skip("PyTorch's float16 Adam rounds exp_avg_sq after each op, so it underflows to 0 for "
                    "gradients below ~1e-2 and its steps grow far beyond lr; deepgrad's update rounds once")
    dg.manual_seed(0)
    md, mt = net(dg), net(torch)
    mt.load_state_dict({k: torch.tensor(v.numpy()) for k, v in md.state_dict().items()})
    dt = getattr(dg, dname)
    md.to(dt)
    mt.to(tdt)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 10, shape[0])
    if opt == "sgd":
        od = dg.optim.SGD(md.parameters(), lr=0.05, momentum=0.9)
        ot = torch.optim.SGD(mt.parameters(), lr=0.05, momentum=0.9)
    else:
        od = dg.optim.Adam(md.parameters(), lr=1e-3)
        ot = torch.optim.Adam(mt.parameters(), lr=1e-3)
    xd, xt = dg.tensor(x).to(dt), torch.tensor(x).to(tdt)
    # Adam's update is eight ops that PyTorch rounds one by one and deepgrad rounds once: the
    # trajectories part by a few rounding steps more than SGD's (two ops)
    tol = TOL[dname] * (2 if opt == "sgd" else 6)
    for _ in range(3):
        od.zero_grad()
        ot.zero_grad()
        ld = F.cross_entropy(md(xd), dg.tensor(y))
        lt = torch.nn.functional.cross_entropy(mt(xt), torch.tensor(y))
        ld.backward()
        lt.backward()
        od.step()
        ot.step()
        assert ld.dtype == dt
        np.testing.assert_allclose(float(ld), float(lt), rtol=tol)
    for (k, pd), pt in zip(md.state_dict().items(), mt.state_dict().values()):
        assert pd.dtype == dt, k
        ref = pt.float().numpy()
        np.testing.assert_allclose(pd.float().numpy(), ref, rtol=0, atol=tol * np.abs(ref).max(),
                                   err_msg=k)
    st = od.state[next(iter(md.parameters()))]
    for k, v in st.items():
        if k != "step":
            assert v.dtype == dt, k


@pytest.mark.parametrize("dname,tdt", DTYPES)
def test_relu_on_the_bits_matches_torch_for_every_value(dname, tdt):
    # every 16-bit pattern (NaNs, -0, subnormals, infinities): relu and its gradient bit for bit
    bits = np.arange(65536, dtype=np.uint16)
    xt = torch.from_numpy(bits.view(np.int16).copy()).view(tdt).requires_grad_(True)
    from deepgrad import backend
    xd = dg.tensor(bits.view(np.float16 if dname == "float16" else backend.bfloat16).copy(), requires_grad=True)
    assert np.array_equal(xd.detach().array.view(np.uint16), bits) and xd.dtype == getattr(dg, dname)
    yd, yt = F.relu(xd), torch.relu(xt)
    want = yt.detach().view(torch.int16).numpy().view(np.uint16)
    nan = np.isnan(yt.detach().float().numpy())
    got = yd.detach().array.view(np.uint16)
    assert np.array_equal(got[~nan], want[~nan]) and np.isnan(yd.detach().float().numpy()[nan]).all()
    g = np.random.default_rng(0).standard_normal(65536).astype(np.float32)
    yd.backward(dg.tensor(g).to(getattr(dg, dname)))
    yt.backward(torch.from_numpy(g).to(tdt))
    assert np.array_equal(xd.grad.array.view(np.uint16), xt.grad.view(torch.int16).numpy().view(np.uint16))


def test_accumulated_float16_gradients_are_not_read_from_a_stale_shadow():
    # linear's weight gradient carries a float32 shadow for the optimiser; a second backward adds
    # into .grad in place (and a weight used twice adds in the engine): the step must see the sum.
    # The later inputs are zero in the columns of the elements a shadow's spot check samples
    # (flat 0, 8, 16, 23 of the 4x6 weight), so only the version counter can tell.
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((4, 6)).astype(np.float32)
    x1 = rng.standard_normal((3, 6)).astype(np.float32)
    x2 = rng.standard_normal((3, 6)).astype(np.float32)
    x2[:, [0, 2, 4, 5]] = 0
    for twice in (False, True):
        wd = dg.tensor(w0).to(dg.float16).requires_grad_(True)
        wt = torch.tensor(w0).to(torch.float16).requires_grad_(True)
        od, ot = dg.optim.SGD([wd], lr=0.5), torch.optim.SGD([wt], lr=0.5)
        h = [(dg.tensor(x).to(dg.float16), torch.tensor(x).to(torch.float16)) for x in (x1, x2)]
        if twice:                                  # the same weight twice in one graph
            (F.linear(h[0][0], wd) + F.linear(h[1][0], wd)).sum().backward()
            (torch.nn.functional.linear(h[0][1], wt) + torch.nn.functional.linear(h[1][1], wt)).sum().backward()
        else:                                      # accumulated over two backward passes
            for xd, xt in h:
                F.linear(xd, wd).sum().backward()
                torch.nn.functional.linear(xt, wt).sum().backward()
        np.testing.assert_allclose(wd.grad.float().numpy(), wt.grad.float().numpy(), rtol=4e-3, atol=1e-2)
        od.step()
        ot.step()
        np.testing.assert_allclose(wd.detach().float().numpy(), wt.detach().float().numpy(), rtol=4e-3, atol=1e-2)


@pytest.mark.parametrize("dname", ["float16", "bfloat16"])
def test_compiled_conversions_leave_training_bit_identical(dname):
    """Five SGD-momentum steps of a small MLP (parameters, momentum buffers, gradients, loss) give
    the same bits with the F16C/AVX2 conversions as with the NumPy ones (ops/_f16c.py is a fast path
    only), and a retained graph is refused after a step as in float32 (the optimiser updates the
    float32 shadow in place, as a float32 parameter's array)."""
    if not _f16c.available():
        pytest.skip(f"F16C kernel unavailable: {_f16c.why_unavailable()}")
    dt = getattr(dg, dname)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 40)).astype(np.float32)
    y = rng.integers(0, 5, 16)
    runs = []
    for fast in (True, False):
        prev = _f16c.set_enabled(fast)
        try:
            dg.manual_seed(1)
            m = dg.nn.Sequential(dg.nn.Linear(40, 33), dg.nn.ReLU(), dg.nn.Linear(33, 5)).to(dt)
            opt = dg.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
            losses = []
            for _ in range(5):
                opt.zero_grad()
                loss = F.cross_entropy(m(dg.tensor(x).to(dt)), dg.tensor(y))
                loss.backward(retain_graph=True)
                losses.append(loss.detach().array.view(np.uint16).copy())
                opt.step()
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                loss.backward()
            state = [opt.state[p]["momentum_buffer"].array.view(np.uint16).copy() for p in m.parameters()]
            runs.append(([p.detach().array.view(np.uint16).copy() for p in m.parameters()],
                         [p.grad.array.view(np.uint16).copy() for p in m.parameters()], state, losses))
        finally:
            _f16c.set_enabled(prev)
    for a, b in zip(*runs):
        assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_without_a_compiler_the_numpy_conversions_run(monkeypatch, tmp_path):
    """A failing compiler (or none) leaves the kernel off with a reason, and float16/bfloat16 keep
    working through the NumPy conversions."""
    saved = dict(_f16c._state)
    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    try:
        _f16c._state.update(lib=None, tried=False, enabled=True, error=None)
        assert not _f16c.available() and _f16c.why_unavailable()
        x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
        assert np.array_equal(_lowp.down(x, np.dtype(np.float16)), x.astype(np.float16))
        y = dg.tensor(x).to(dg.float16)
        assert np.array_equal((y * 2).float().numpy(), (x.astype(np.float16) * 2).astype(np.float32))
    finally:
        _f16c._state.clear()
        _f16c._state.update(saved)
