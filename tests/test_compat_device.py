"""Device boilerplate, mixed precision, legacy types, dtype limits and formatting, against PyTorch 2.13's
CPU build: every row runs the same call in deepgrad and in torch and compares values or error types."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg

HAS_GPU = dg.cuda.is_available()
no_gpu = pytest.mark.skipif(HAS_GPU, reason="compares with PyTorch's behaviour on a machine without a GPU")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def outcome(fn):
    """('ok', value) or ('raise', the exception's type)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", fn()
    except Exception as e:  # noqa: BLE001
        return "raise", type(e)


def builtin(cls):
    """The most specific builtin exception type of (a torch exception) ``cls``."""
    return next(c for c in cls.__mro__ if c.__module__ == "builtins")


def same_outcome(ours, theirs, convert=lambda v: v):
    """Same value, or deepgrad raises an exception of the builtin type torch raises."""
    o, t = outcome(ours), outcome(theirs)
    if o[0] == "raise" or t[0] == "raise":
        assert o[0] == t[0] == "raise" and issubclass(o[1], builtin(t[1])), (o, t)
    else:
        assert convert(o[1]) == convert(t[1]), (o, t)


def torch_dtype(dt):
    return getattr(torch, str(dt)) if str(dt) != "bool" else torch.bool


# ---- torch.cuda / torch.accelerator / torch.backends -------------------------------------------
CUDA_CALLS = [("is_available", ()), ("device_count", ()), ("manual_seed", (1,)), ("manual_seed_all", (1,)),
              ("synchronize", ()), ("current_device", ()), ("get_device_name", ()), ("get_device_name", (0,)),
              ("empty_cache", ()), ("is_initialized", ()), ("get_device_capability", ()),
              ("get_device_properties", (0,)), ("memory_allocated", ()), ("max_memory_allocated", ()),
              ("is_bf16_supported", ()), ("seed", ()), ("initial_seed", ()), ("get_rng_state", ()),
              ("get_rng_state_all", ()), ("set_rng_state_all", ([],))]


@no_gpu
@pytest.mark.parametrize("name,args", CUDA_CALLS)
def test_cuda_queries_like_torch_cpu_build(name, args):
    same_outcome(lambda: getattr(dg.cuda, name)(*args), lambda: getattr(torch.cuda, name)(*args))


@no_gpu
@pytest.mark.parametrize("name", ["is_available", "current_accelerator", "device_count", "current_device_index",
                                  "synchronize"])
def test_accelerator_like_torch_cpu_build(name):
    same_outcome(lambda: getattr(dg.accelerator, name)(), lambda: getattr(torch.accelerator, name)())


def test_cuda_amp_and_legacy_cuda_types():
    assert dg.cuda.amp.GradScaler is not None and dg.cuda.amp.autocast is not None
    from deepgrad.cuda.amp import GradScaler, autocast  # noqa: F401  (importable as in PyTorch)
    if not HAS_GPU:
        same_outcome(lambda: dg.cuda.FloatTensor([1.0]), lambda: torch.cuda.FloatTensor([1.0]))


BACKEND_FLAGS = [("cudnn", "benchmark"), ("cudnn", "deterministic"), ("cudnn", "allow_tf32"), ("cudnn", "enabled"),
                 ("cuda.matmul", "allow_tf32"), ("mkldnn", "enabled")]


@pytest.mark.parametrize("where,flag", BACKEND_FLAGS)
def test_backend_flags_default_like_torch_and_settable(where, flag):
    ours, theirs = dg.backends, torch.backends
    for part in where.split("."):
        ours, theirs = getattr(ours, part), getattr(theirs, part)
    assert getattr(ours, flag) == getattr(theirs, flag)
    old = getattr(ours, flag)
    try:
        setattr(ours, flag, not old)
        assert getattr(ours, flag) is (not old)
    finally:
        setattr(ours, flag, old)


@no_gpu
@pytest.mark.parametrize("call", ["mps.is_available", "mps.is_built", "cudnn.is_available", "cudnn.version",
                                  "mkldnn.is_available" if False else "mps.is_available"])
def test_backend_queries_like_torch_cpu_build(call):
    mod, fn = call.split(".")
    same_outcome(lambda: getattr(getattr(dg.backends, mod), fn)(), lambda: getattr(getattr(torch.backends, mod), fn)())


# ---- Tensor device API ------------------------------------------------------------------------------
def test_tensor_device_properties_like_torch():
    a, b = dg.ones(2), torch.ones(2)
    for prop in ("is_cuda", "is_cpu", "is_xpu", "is_mps", "is_meta"):
        assert getattr(a, prop) == getattr(b, prop), prop


TO_CALLS = [
    lambda m, t: t.to("cpu", non_blocking=True),
    lambda m, t: t.to(m.device("cpu"), non_blocking=True),
    lambda m, t: t.to("cpu", m.float64, non_blocking=True, copy=True),
    lambda m, t: t.to(m.ones(1, dtype=m.int64)),
    lambda m, t: t.to(device="cpu", dtype=m.float16),
    lambda m, t: t.cpu(),
    lambda m, t: t.cuda(),
    lambda m, t: t.cuda(0),
    lambda m, t: t.to("cuda"),
    lambda m, t: t.to("cuda:0", non_blocking=True),
    lambda m, t: m.ones(2, device="cuda"),
]


@no_gpu
@pytest.mark.parametrize("i", range(len(TO_CALLS)))
def test_to_and_cuda_like_torch_cpu_build(i):
    call = TO_CALLS[i]
    ours = outcome(lambda: call(dg, dg.tensor([1.5, -2.0])))
    theirs = outcome(lambda: call(torch, torch.tensor([1.5, -2.0])))
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "raise":
        assert issubclass(ours[1], builtin(theirs[1])), (ours, theirs)
        with pytest.raises(RuntimeError):   # deepgrad's error is also a RuntimeError, for older handlers
            call(dg, dg.tensor([1.5, -2.0]))
    else:
        assert str(ours[1].dtype) == str(theirs[1].dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())


# ---- Tensor.type() and the legacy tensor types -------------------------------------------------------
DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"]


@pytest.mark.parametrize("dt", DTYPES)
def test_type_names_like_torch(dt):
    assert dg.zeros(2, dtype=getattr(dg, dt)).type() == torch.zeros(2, dtype=torch_dtype(dt)).type()


TYPE_CASTS = [lambda m: m.float64, lambda m: m.int64, lambda m: "torch.LongTensor", lambda m: "torch.DoubleTensor",
              lambda m: m.LongTensor, lambda m: m.BoolTensor, lambda m: "float64", lambda m: "torch.float64",
              lambda m: "torch.NoSuchTensor"]


@pytest.mark.parametrize("i", range(len(TYPE_CASTS)))
def test_type_cast_like_torch(i):
    spec = TYPE_CASTS[i]
    x = [[1.7, -2.2], [0.0, 3.5]]
    same_outcome(lambda: dg.tensor(x).type(spec(dg)), lambda: torch.tensor(x).type(spec(torch)),
                 convert=lambda t: (t.type(), np.asarray(t.tolist()).tolist()))


LEGACY = [("FloatTensor", ([1, 2],)), ("FloatTensor", (3,)), ("FloatTensor", (2, 3)), ("FloatTensor", ()),
          ("FloatTensor", ((2, 3),)), ("LongTensor", ([1, 2],)), ("LongTensor", ([1.7, -2.5],)),
          ("LongTensor", (2, 3)), ("DoubleTensor", ([1, 0],)), ("IntTensor", ([1, 0],)),
          ("BoolTensor", ([1, 0],)), ("ByteTensor", ([1, 0],)), ("HalfTensor", ([1.5],)),
          ("CharTensor", ([-3],)), ("ShortTensor", ([7],)), ("BFloat16Tensor", ([2.7],)),
          ("FloatTensor", (2.5,)), ("LongTensor", ([[1, 2], [3, 4]],)),
          ("FloatTensor", (np.arange(3.0),))]


@pytest.mark.parametrize("name,args", LEGACY)
def test_legacy_constructors_like_torch(name, args):
    def conv(t):
        # sizes-only tensors are uninitialised in PyTorch: compare shape and dtype only
        sizes_only = args and all(isinstance(a, int) for a in args)
        vals = None if sizes_only else np.asarray(t.float().tolist() if "BFloat16" in name else t.tolist()).tolist()
        return tuple(t.shape), t.type(), vals
    same_outcome(lambda: getattr(dg, name)(*args), lambda: getattr(torch, name)(*args), convert=conv)


def test_legacy_constructor_from_tensor_and_errors_like_torch():
    same_outcome(lambda: dg.FloatTensor(dg.ones(2)).tolist(), lambda: torch.FloatTensor(torch.ones(2)).tolist())
    same_outcome(lambda: dg.FloatTensor(dg.ones(2, dtype=dg.int64)),
                 lambda: torch.FloatTensor(torch.ones(2, dtype=torch.int64)))
    same_outcome(lambda: dg.FloatTensor([1], dtype=dg.int64), lambda: torch.FloatTensor([1], dtype=torch.int64))
    assert dg.FloatTensor(dg.Size([2, 3])).shape == torch.FloatTensor(torch.Size([2, 3])).shape


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("cls", ["FloatTensor", "LongTensor", "BoolTensor", "BFloat16Tensor"])
def test_isinstance_legacy_like_torch(dt, cls):
    assert isinstance(dg.zeros(1, dtype=getattr(dg, dt)), getattr(dg, cls)) == \
        isinstance(torch.zeros(1, dtype=torch_dtype(dt)), getattr(torch, cls))


# ---- compile / jit ------------------------------------------------------------------------------------
def test_compile_returns_something_that_runs():
    lin = dg.nn.Linear(3, 2)
    x = dg.randn(4, 3)
    cl = dg.compile(lin)                       # an OptimizedModule forwarding to the original, as torch's
    assert cl._orig_mod is lin and cl.weight is lin.weight and dg.compile(lin, disable=True) is lin
    assert dg.compile(lin, mode="max-autotune", fullgraph=True)(x).shape == (4, 2)

    @dg.compile
    def f(a):
        return a * 2 + 1

    @dg.compile(mode="reduce-overhead", dynamic=True)
    def g(a):
        return a - 1
    np.testing.assert_array_equal(f(x).numpy(), x.numpy() * 2 + 1)
    np.testing.assert_array_equal(g(x).numpy(), x.numpy() - 1)


# torch.compile's own errors, as PyTorch 2.13 raises them (calling it here would import its compiler: seconds)
@pytest.mark.parametrize("call,torch_error", [(lambda m: m.compile(m.nn.Linear(2, 2), mode="bogus"), RuntimeError),
                                              (lambda m: m.compile(3), AssertionError),
                                              (lambda m: m.compile(m.nn.Linear(2, 2), mode="default",
                                                                   options={"a": 1}), RuntimeError)])
def test_compile_errors_like_torch(call, torch_error):
    with pytest.raises(torch_error):
        call(dg)


def test_jit_script_trace_and_save():
    lin = dg.nn.Linear(3, 2)
    assert dg.jit.script(lin) is lin
    calls = []

    def fn(a):
        calls.append(1)
        return a + 1
    assert dg.jit.trace(fn, dg.ones(2)) is fn and calls == [1]
    assert dg.jit.trace(lin, (dg.ones(1, 3),)) is lin
    with pytest.raises(Exception):
        dg.jit.trace(lin, dg.ones(1, 5))          # a wrong example fails while tracing, as in PyTorch
    assert dg.jit.is_scripting() is torch.jit.is_scripting()
    assert dg.jit.ignore(fn) is fn and dg.jit.unused(fn) is fn
    with pytest.raises(NotImplementedError, match="state_dict"):
        dg.jit.save(lin, "m.pt")


# ---- autocast -------------------------------------------------------------------------------------------
def test_autocast_disabled_is_a_noop_context_and_decorator():
    lin = dg.nn.Linear(3, 2)
    x = dg.randn(4, 3)
    for ctx in (dg.autocast("cpu", enabled=False), dg.autocast("cpu", dtype=dg.bfloat16, enabled=False),
                dg.amp.autocast(device_type="cuda", enabled=False)):
        with ctx:
            y = lin(x)
        assert y.dtype == dg.float32
        assert ctx(lambda a: lin(a))(x).dtype == dg.float32
    assert not dg.is_autocast_enabled() and not dg.is_autocast_enabled("cpu")


AUTOCAST_WARN = [lambda m: m.autocast("cpu", dtype=m.float64), lambda m: m.autocast("cpu", dtype=m.float32)]
if not HAS_GPU:
    AUTOCAST_WARN += [lambda m: m.autocast("cuda"), lambda m: m.autocast("cuda", dtype=m.bfloat16),
                      lambda m: m.cuda.amp.autocast()]


@pytest.mark.parametrize("i", range(len(AUTOCAST_WARN)))
def test_autocast_disabled_with_a_warning_like_torch(i):
    make = AUTOCAST_WARN[i]
    lin = dg.nn.Linear(3, 2)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        ctx = make(dg)
        with ctx:
            assert lin(dg.ones(1, 3)).dtype == dg.float32
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        with make(torch):
            assert torch.nn.Linear(3, 2)(torch.ones(1, 3)).dtype == torch.float32
    assert sorted(w.category.__name__ for w in ours) == sorted(w.category.__name__ for w in theirs)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", None])
def test_autocast_cpu_low_precision_is_entered(dtype):
    # the policy itself is tested op by op in tests/test_autocast.py
    ctx = dg.autocast("cpu", dtype=None if dtype is None else getattr(dg, dtype))
    assert ctx.fast_dtype == (dg.bfloat16 if dtype is None else getattr(dg, dtype))
    with ctx:
        assert dg.is_autocast_enabled("cpu")
    assert not dg.is_autocast_enabled("cpu")
    assert dg.autocast("cpu")(lambda: dg.is_autocast_enabled("cpu"))()


def test_autocast_bad_device_type_like_torch():
    same_outcome(lambda: dg.autocast("xyz"), lambda: torch.autocast("xyz"))
    same_outcome(lambda: dg.autocast(3), lambda: torch.autocast(3))
    assert dg.get_autocast_dtype("cpu") == dg.bfloat16 and str(torch.get_autocast_dtype("cpu")) == "torch.bfloat16"


# ---- GradScaler -----------------------------------------------------------------------------------------
def _scaler_run(m, device, steps, bad_steps, unscale_first, **kw):
    """A linear regression trained through a GradScaler; on ``bad_steps`` the loss is made inf/nan."""
    w0 = np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((steps, 8, 3)).astype(np.float32)
    Y = rng.standard_normal((steps, 8, 2)).astype(np.float32)
    lin = m.nn.Linear(3, 2)
    with m.no_grad():
        lin.weight.copy_(m.tensor(w0))
        lin.bias.zero_()
    opt = m.optim.SGD(lin.parameters(), lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaler = m.amp.GradScaler(device, **kw)
    trace = []
    for s in range(steps):
        opt.zero_grad()
        loss = ((lin(m.tensor(X[s])) - m.tensor(Y[s])) ** 2).mean()
        if s in bad_steps:
            loss = loss * float(bad_steps[s])
        scaled = scaler.scale(loss)
        scaled.backward()
        if unscale_first:
            scaler.unscale_(opt)
            trace.append(("g", lin.weight.grad.detach().numpy().copy()))
        scaler.step(opt)
        scaler.update()
        trace.append((scaler.get_scale(), scaler._get_growth_tracker(), float(scaled.item()),
                      lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy()))
    return trace, scaler.state_dict(), scaler.is_enabled()


SCALER_CASES = [
    dict(device="cpu", init_scale=2.0 ** 16, growth_interval=3, bad={2: "inf", 5: "nan", 6: "inf"}),
    dict(device="cpu", init_scale=1024.0, growth_factor=1.7, backoff_factor=0.3, growth_interval=2,
         bad={4: "inf"}),
    dict(device="cpu", init_scale=3.0, growth_factor=3.0, backoff_factor=0.25, growth_interval=1, bad={}),
    dict(device="cpu", enabled=False, bad={3: "inf"}),
    dict(device="cuda", bad={}),          # CUDA unavailable: warns and disables, in both
]


@pytest.mark.parametrize("unscale_first", [False, True])
@pytest.mark.parametrize("case", range(len(SCALER_CASES)))
def test_grad_scaler_trajectory_like_torch(case, unscale_first):
    kw = dict(SCALER_CASES[case])
    if kw["device"] == "cuda" and HAS_GPU:
        pytest.skip("compares the no-GPU behaviour")
    bad, device = kw.pop("bad"), kw.pop("device")
    ours = _scaler_run(dg, device, 9, bad, unscale_first, **kw)
    theirs = _scaler_run(torch, device, 9, bad, unscale_first, **kw)
    assert ours[1] == theirs[1] and ours[2] == theirs[2]
    assert len(ours[0]) == len(theirs[0])
    for a, b in zip(ours[0], theirs[0]):
        if a[0] == "g":
            np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-6)
            continue
        assert a[:2] == b[:2], (a[:2], b[:2])
        np.testing.assert_allclose(a[2], b[2], rtol=1e-5)
        np.testing.assert_allclose(a[3], b[3], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a[4], b[4], rtol=1e-5, atol=1e-6)


def test_grad_scaler_state_dict_round_trip_and_queries_like_torch():
    for m in (dg, torch):
        s = m.amp.GradScaler("cpu", init_scale=8.0, growth_interval=5)
        assert s.get_scale() == 8.0 and s.state_dict()["_growth_tracker"] == 0
    ours, theirs = dg.amp.GradScaler("cpu"), torch.amp.GradScaler("cpu")
    sd = {"scale": 32.0, "growth_factor": 3.0, "backoff_factor": 0.25, "growth_interval": 7, "_growth_tracker": 4}
    ours.load_state_dict(sd)
    theirs.load_state_dict(sd)
    assert ours.state_dict() == theirs.state_dict()
    assert (ours.get_growth_factor(), ours.get_backoff_factor(), ours.get_growth_interval()) == \
        (theirs.get_growth_factor(), theirs.get_backoff_factor(), theirs.get_growth_interval())
    off = dg.amp.GradScaler("cpu", enabled=False)
    x = dg.ones(2)
    assert off.scale(x) is x and off.get_scale() == 1.0 and off.state_dict() == {} and not off.is_enabled()
    outs = dg.amp.GradScaler("cpu", init_scale=4.0).scale([dg.ones(1), (dg.ones(1) * 2,)])
    assert outs[0].item() == 16.0 / 4 and outs[1][0].item() == 8.0


SCALER_MISUSE = [
    lambda m, s, o: (s.scale(m.ones(1, requires_grad=True).sum()), s.unscale_(o), s.unscale_(o)),
    lambda m, s, o: (s.scale(m.ones(1, requires_grad=True).sum()), s.unscale_(o), s.step(o), s.unscale_(o)),
    lambda m, s, o: (s.scale(m.ones(1, requires_grad=True).sum()), s.step(o), s.step(o)),
    lambda m, s, o: s.update(),
    lambda m, s, o: (s.scale(m.ones(1)), s.update()),
    lambda m, s, o: s.step(o),
    lambda m, s, o: (s.scale(m.ones(1)), s.step(o, closure=lambda: 0)),
    lambda m, s, o: s.load_state_dict({}),
    lambda m, s, o: (s.scale(m.ones(1)), s.update(m.ones(2))),
    lambda m, s, o: (s.scale(m.ones(1)), s.update(3.0), s.get_scale()),
    lambda m, s, o: m.amp.GradScaler("cpu", growth_factor=0.9),
]


@pytest.mark.parametrize("i", range(len(SCALER_MISUSE)))
def test_grad_scaler_misuse_like_torch(i):
    def run(m):
        p = m.nn.Parameter(m.ones(2))
        p.grad = m.ones(2)
        return SCALER_MISUSE[i](m, m.amp.GradScaler("cpu"), m.optim.SGD([p], lr=0.1))
    same_outcome(lambda: run(dg), lambda: run(torch), convert=lambda r: r[-1] if isinstance(r[-1], float) else None)


# ---- distributed / parallel ---------------------------------------------------------------------------
DIST_CALLS = [("is_initialized", ()), ("get_rank", ()), ("get_world_size", ()), ("barrier", ()),
              ("get_backend", ()), ("is_torchelastic_launched", ()), ("is_nccl_available", ()),
              ("all_reduce", ("T",)), ("broadcast", ("T", 0)), ("destroy_process_group", ())]


@pytest.mark.parametrize("name,args", DIST_CALLS)
def test_distributed_single_process_like_torch(name, args):
    import torch.distributed as tdist

    def call(mod, m):
        return getattr(mod, name)(*[m.ones(1) if a == "T" else a for a in args])
    same_outcome(lambda: call(dg.distributed, dg), lambda: call(tdist, torch))


def test_distributed_availability_and_init_are_honest():
    import importlib.util
    # the MPI backend is there when mpi4py is (tests/test_distributed.py runs it under mpirun)
    assert dg.distributed.is_available() is (importlib.util.find_spec("mpi4py") is not None)
    with pytest.raises(NotImplementedError, match="init_process_group.*'mpi'"):
        dg.distributed.init_process_group("gloo")
    assert dg.distributed.ReduceOp.SUM.name == torch.distributed.ReduceOp.SUM.name


def test_distributed_data_parallel_needs_a_process_group_like_torch():
    same_outcome(lambda: dg.nn.parallel.DistributedDataParallel(dg.nn.Linear(2, 2)),
                 lambda: torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2)))


def test_data_parallel_wraps_and_runs_like_torch():
    ours, theirs = dg.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.detach().numpy()))
        theirs.bias.copy_(torch.tensor(ours.bias.detach().numpy()))
    dp, tp = dg.nn.DataParallel(ours), torch.nn.DataParallel(theirs)
    assert dp.module is ours and dg.nn.parallel.DataParallel is dg.nn.DataParallel
    assert list(dp.state_dict()) == list(tp.state_dict())
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(dp(dg.tensor(x)).detach().numpy(), tp(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    assert repr(dp) == repr(tp)
    out = dp(dg.tensor(x)).sum()
    out.backward()
    assert ours.weight.grad is not None
    fresh = dg.nn.DataParallel(dg.nn.Linear(3, 2))
    fresh.load_state_dict(dp.state_dict())
    np.testing.assert_array_equal(fresh.module.weight.detach().numpy(), ours.weight.detach().numpy())


# ---- dtypes and numbers ---------------------------------------------------------------------------------
def test_bfloat16_create_cast_print_like_torch():
    vals = [2.7, 1e-3, -3.14159, 65504.0, 0.0, 1.0 / 3]
    a, b = dg.tensor(vals, dtype=dg.bfloat16), torch.tensor(vals, dtype=torch.bfloat16)
    assert str(a.dtype) == "bfloat16" and a.is_floating_point() == b.is_floating_point()
    np.testing.assert_array_equal(a.float().numpy(), b.float().numpy())
    np.testing.assert_array_equal(dg.tensor(vals).to(dg.bfloat16).to(dg.float32).numpy(),
                                  torch.tensor(vals).to(torch.bfloat16).to(torch.float32).numpy())
    for vs in ([1.5, 2.7], [2.0, 3.0], 2.7):
        assert repr(dg.tensor(vs, dtype=dg.bfloat16)) == repr(torch.tensor(vs, dtype=torch.bfloat16)).replace(
            "torch.", "deepgrad.")
    assert dg.tensor(2.7, dtype=dg.bfloat16).item() == torch.tensor(2.7, dtype=torch.bfloat16).item()
    assert f"{dg.tensor(2.7, dtype=dg.bfloat16):.4f}" == f"{torch.tensor(2.7, dtype=torch.bfloat16):.4f}"
    assert dg.zeros(2, dtype="bfloat16").dtype == dg.bfloat16


@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "bfloat16", None])
def test_finfo_like_torch(dt):
    ours = dg.finfo() if dt is None else dg.finfo(getattr(dg, dt))
    theirs = torch.finfo() if dt is None else torch.finfo(getattr(torch, dt))
    for f in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(ours, f) == getattr(theirs, f), f
        assert type(getattr(ours, f)) is type(getattr(theirs, f)), f


@pytest.mark.parametrize("dt", ["int8", "uint8", "int16", "int32", "int64"])
def test_iinfo_like_torch(dt):
    ours, theirs = dg.iinfo(getattr(dg, dt)), torch.iinfo(getattr(torch, dt))
    for f in ("bits", "max", "min", "dtype"):
        assert getattr(ours, f) == getattr(theirs, f), f


@pytest.mark.parametrize("call", [lambda m: m.finfo(m.int32), lambda m: m.iinfo(m.float32),
                                  lambda m: m.iinfo(m.bool), lambda m: m.finfo(m.bool)])
def test_finfo_iinfo_errors_like_torch(call):
    same_outcome(lambda: call(dg), lambda: call(torch))


def test_float32_matmul_precision_like_torch():
    old = dg.get_float32_matmul_precision()
    assert old == torch.get_float32_matmul_precision() == "highest"
    try:
        for p in ("high", "medium", "highest"):
            dg.set_float32_matmul_precision(p)
            assert dg.get_float32_matmul_precision() == p
        with pytest.warns(UserWarning):
            dg.set_float32_matmul_precision("bogus")
        assert dg.get_float32_matmul_precision() == "highest"
    finally:
        dg.set_float32_matmul_precision(old)


def test_set_num_threads_really_limits_blas():
    from threadpoolctl import threadpool_info
    old = dg.get_num_threads()
    try:
        dg.set_num_threads(1)
        assert dg.get_num_threads() == 1
        assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")
        dg.set_num_threads(2)
        assert dg.get_num_threads() == min(2, max(lib["num_threads"] for lib in threadpool_info()
                                                  if lib["user_api"] == "blas"))
    finally:
        dg.set_num_threads(old)
    for bad in (0, -1, 1.5):
        same_outcome(lambda: dg.set_num_threads(bad), lambda: torch.set_num_threads(bad))


PRINT_CASES = [
    (dict(precision=2), [1.23456, 2.0]),
    (dict(precision=6), [1.23456789, -2.5]),
    (dict(sci_mode=True, precision=2), [1.23456, 2.0]),
    (dict(sci_mode=False, precision=3), [1.23456e-5, 2.0]),
    (dict(profile="default"), [1.23456e-5, 2.0]),
    (dict(threshold=5, edgeitems=2), list(range(10))),
    (dict(profile="full"), [float(i) for i in range(1200)]),
    (dict(profile="short"), [1.23456, 2.0]),
    (dict(linewidth=20), [float(i) for i in range(10)]),
    (dict(), [[1.5, 2.25], [3.0, -4.125]]),
]


@pytest.mark.parametrize("opts,data", PRINT_CASES)
def test_set_printoptions_like_torch(opts, data):
    try:
        dg.set_printoptions(**opts)
        torch.set_printoptions(**opts)
        assert repr(dg.tensor(data)) == repr(torch.tensor(data))
    finally:
        dg.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")


# ---- formatting 0-d tensors ---------------------------------------------------------------------------------
FORMAT_VALUES = [1.23456789, -0.5, 3, True, 2.7]
FORMATS = [lambda t: f"{t:.4f}", lambda t: f"{t}", lambda t: "{}".format(t), lambda t: "%f" % t,
           lambda t: "%d" % t, lambda t: "%.2f" % t, lambda t: "%s" % t, lambda t: f"{t:d}",
           lambda t: f"{t:.2e}", lambda t: f"{t:>10.3f}", lambda t: "%x" % t, lambda t: int(t), lambda t: float(t),
           lambda t: "%5.1e" % t]


@pytest.mark.parametrize("v", FORMAT_VALUES)
@pytest.mark.parametrize("i", range(len(FORMATS)))
def test_scalar_formatting_like_torch(i, v):
    fmt = FORMATS[i]
    same_outcome(lambda: fmt(dg.tensor(v)), lambda: fmt(torch.tensor(v)))


NONSCALAR = [lambda t: f"{t:.2f}", lambda t: f"{t}", lambda t: "%f" % t, lambda t: "%d" % t, lambda t: int(t),
             lambda t: float(t)]


@pytest.mark.parametrize("data", [[1.5, 2.0], [1.5], [[2.5]]])
@pytest.mark.parametrize("i", range(len(NONSCALAR)))
def test_nonscalar_formatting_like_torch(i, data):
    fmt = NONSCALAR[i]
    same_outcome(lambda: fmt(dg.tensor(data)), lambda: fmt(torch.tensor(data)))


def test_format_of_a_graph_tensor():
    w = dg.tensor(1.5, requires_grad=True)
    assert f"{w * 2:.3f}" == f"{torch.tensor(1.5, requires_grad=True) * 2:.3f}" == "3.000"


# ---- randomness -----------------------------------------------------------------------------------------------
def test_unseeded_processes_differ_and_manual_seed_repeats():
    code = ("import deepgrad as dg; a = dg.randn(4).tolist(); dg.manual_seed(7); b = dg.randn(4).tolist(); "
            "print(repr((a, b)))")
    env = dict(os.environ, PYTHONPATH=ROOT)
    runs = [eval(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                timeout=120, check=True).stdout) for _ in range(2)]
    assert runs[0][0] != runs[1][0]       # fresh OS entropy in each process
    assert runs[0][1] == runs[1][1]       # manual_seed is reproducible across processes


def test_new_generator_is_deterministic():
    assert dg.Generator().get_state() == dg.Generator().get_state()


# ---- save(model) ------------------------------------------------------------------------------------------------
def test_save_whole_module_refused_with_what_to_do(tmp_path):
    model = dg.nn.Sequential(dg.nn.Linear(2, 2))
    opt = dg.optim.SGD(model.parameters(), lr=0.1)
    for obj in (model, opt):
        with pytest.raises(TypeError, match=r"state_dict\(\)"):
            dg.save(obj, tmp_path / "m.pt")
        assert not (tmp_path / "m.pt").exists()
    with pytest.raises(TypeError, match=r"obj\['model'\].*state_dict\(\)"):
        dg.save({"model": model, "epoch": 3}, tmp_path / "m.pt")
    with pytest.raises(TypeError, match=r"obj\[1\].*GradScaler"):
        dg.save([model.state_dict(), dg.amp.GradScaler("cpu")], tmp_path / "m.pt")
    dg.save(model.state_dict(), tmp_path / "m.pt")
    assert set(dg.load(tmp_path / "m.pt")) == {"0.weight", "0.bias"}


REPR_CASES = [
    lambda m: m.tensor([1.0, 2.5]), lambda m: m.tensor(2.7), lambda m: m.tensor([1.0, 2.0, -3.0]),
    lambda m: m.tensor([[1.5, -2.25], [1e-5, 3.0]]), lambda m: m.tensor([1e9, 1.0]),
    lambda m: m.tensor([float("nan"), float("inf"), -1.5]), lambda m: m.tensor([float("nan"), 0.0]),
    lambda m: m.tensor([1, -20, 300]), lambda m: m.tensor([True, False]), lambda m: m.tensor([], dtype=m.int64),
    lambda m: m.zeros(0, 3), lambda m: m.zeros(2, 0, dtype=m.float64), lambda m: m.tensor([1.5], dtype=m.float64),
    lambda m: m.tensor([1, 2], dtype=m.int32), lambda m: m.tensor([1.5, 2], dtype=m.float16),
    lambda m: m.arange(2000.0).reshape(40, 50), lambda m: m.arange(24).reshape(2, 3, 4),
    lambda m: m.arange(5000).reshape(10, 10, 50) * 0.5, lambda m: m.tensor([0.1, 0.25], requires_grad=True),
    lambda m: m.tensor([0.1, 0.25], requires_grad=True) * 2, lambda m: m.tensor(3), lambda m: m.tensor(True),
    lambda m: m.tensor([-0.0, 0.0]), lambda m: m.arange(30.0) * 1.37, lambda m: m.tensor([[1e-8, 1.0]]),
]


@pytest.mark.parametrize("i", range(len(REPR_CASES)))
def test_tensor_repr_like_torch(i):
    ours, theirs = repr(REPR_CASES[i](dg)), repr(REPR_CASES[i](torch))
    theirs = theirs.replace("torch.", "deepgrad.").replace("grad_fn=<MulBackward0>", "grad_fn=<MulBackward>")
    assert ours == theirs


def test_memory_methods_like_torch_cpu_build():
    for lib in (dg, torch):
        t = lib.ones(3, dtype=lib.float64)
        assert (t.nbytes, t.itemsize, t.is_pinned(), t.is_shared()) == (24, 8, False, False)
        assert t.share_memory_().is_shared()
        with pytest.raises(RuntimeError, match="accelerator"):
            t.pin_memory()
