"""deepgrad.cuda's API with a device, pinned memory, non-blocking copies and the GPU errors,
checked on the strict CuPy stand-in (deepgrad.testing.strict_cuda) on a machine without a GPU:
per-GPU generators (seeding, state round trips, deepgrad.manual_seed reaching them), memory
figures from the pool, OutOfMemoryError raised at the copy and op seams from an allocator that
fails, and the "no CUDA" error naming the CuPy wheel. The same calls run on the H200 in
tests/gpu/test_device_api.py."""
import types

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import backend
from deepgrad.testing import strict_cuda, strict_xp


@pytest.fixture
def cuda():
    from deepgrad.cuda import _rng
    with strict_cuda() as xp:
        _rng.STAND_IN_DRAWS_ON_DEVICE[0] = True      # the GPU generators draw (as on real CuPy)
        try:
            yield xp
        finally:
            _rng.STAND_IN_DRAWS_ON_DEVICE[0] = False


# ---- without CuPy: deepgrad's "Torch not compiled with CUDA enabled" ---------------------------
@pytest.mark.parametrize("make", [lambda: dg.ones(2, device="cuda"), lambda: dg.ones(2).to("cuda"),
                                  lambda: dg.ones(2).cuda(), lambda: dg.randn(3, device="cuda"),
                                  lambda: dg.nn.Linear(2, 2).to("cuda")])
def test_cuda_without_cupy_names_what_to_install(make, monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    with pytest.raises(AssertionError) as e:          # PyTorch's CPU build: AssertionError
        make()
    assert isinstance(e.value, RuntimeError)          # and deepgrad's older RuntimeError
    msg = str(e.value)
    assert "Torch not compiled with CUDA enabled" in msg
    assert "pip install cupy-cuda12x" in msg and "pip install cupy-cuda13x" in msg
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        torch.ones(2, device="cuda")                  # the same type and phrase as PyTorch


def test_cuda_with_cupy_but_no_gpu_says_so(monkeypatch):
    fake = types.SimpleNamespace(__version__="14.2.0", ndarray=type("nd", (), {}),
                                 cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 0)))
    monkeypatch.setattr(backend, "_cupy", fake)
    with pytest.raises(AssertionError, match="sees no CUDA device"):
        dg.zeros(1, device="cuda")


def test_no_gpu_queries_keep_pytorch_cpu_build_behaviour(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    assert dg.cuda.memory_allocated() == 0 == torch.cuda.memory_allocated()
    assert dg.cuda.max_memory_allocated() == 0
    dg.cuda.manual_seed(3)
    dg.cuda.manual_seed_all(3)
    dg.manual_seed(3)                                  # seeds no GPU, raises nothing
    with pytest.raises(RuntimeError):
        dg.cuda.get_rng_state()
    with pytest.raises(RuntimeError):
        dg.ones(2).pin_memory()
    with pytest.raises(RuntimeError):
        torch.ones(2).pin_memory()


# ---- generators on the device -------------------------------------------------------------------
def test_device_generator_state_round_trip(cuda):
    dg.cuda.manual_seed(123)
    state = dg.cuda.get_rng_state()
    assert state.dtype == dg.uint8 and tuple(state.shape) == (16,)   # as torch.cuda.get_rng_state()
    a = dg.randn(5, device="cuda").cpu().numpy()
    b = dg.rand(4, device="cuda").cpu().numpy()
    dg.cuda.set_rng_state(state)
    np.testing.assert_array_equal(dg.randn(5, device="cuda").cpu().numpy(), a)
    np.testing.assert_array_equal(dg.rand(4, device="cuda").cpu().numpy(), b)
    assert not np.array_equal(dg.randn(5, device="cuda").cpu().numpy(), a)   # the offset moved on
    assert dg.cuda.initial_seed() == 123


def test_manual_seed_seeds_the_device_generator_and_not_the_cpu_stream(cuda):
    dg.manual_seed(7)
    a = dg.randn(6, device="cuda").cpu().numpy()
    cpu_a = dg.randn(6).numpy()
    dg.manual_seed(7)
    b = dg.randn(6, device="cuda").cpu().numpy()
    cpu_b = dg.randn(6).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cpu_a, cpu_b)        # device draws do not advance the CPU stream
    dg.manual_seed(8)
    assert not np.array_equal(dg.randn(6, device="cuda").cpu().numpy(), a)
    assert dg.cuda.initial_seed() == 8


def test_device_draws_have_their_distributions(cuda):
    dg.manual_seed(0)
    u = dg.rand(20000, device="cuda").cpu().numpy()
    n = dg.randn(20000, device="cuda").cpu().numpy()
    i = dg.randint(3, 9, (20000,), device="cuda").cpu().numpy()
    p = dg.randperm(50, device="cuda").cpu().numpy()
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05
    assert i.dtype == np.int64 and i.min() == 3 and i.max() == 8
    assert sorted(p.tolist()) == list(range(50))
    assert dg.rand(3, device="cuda", dtype=dg.float64).dtype == dg.float64


def test_dropout_on_the_device_uses_the_device_generator(cuda):
    x = dg.ones(1000, device="cuda")
    dg.cuda.manual_seed(5)
    a = dg.nn.functional.dropout(x, 0.3).cpu().numpy()
    dg.cuda.manual_seed(5)
    b = dg.nn.functional.dropout(x, 0.3).cpu().numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[a != 0], 1 / 0.7, rtol=1e-6)
    assert 0.2 < (a == 0).mean() < 0.4


def test_set_rng_state_refuses_a_bad_state(cuda):
    with pytest.raises(RuntimeError, match="16 bytes"):
        dg.cuda.set_rng_state(dg.zeros(3, dtype=dg.uint8))


def test_rng_state_all_and_several_devices(cuda):
    with strict_cuda(device_count=2):
        dg.cuda.manual_seed_all(11)
        states = dg.cuda.get_rng_state_all()
        assert len(states) == 2
        a = dg.randn(3, device="cuda:1").cpu().numpy()
        dg.cuda.set_rng_state_all(states)
        np.testing.assert_array_equal(dg.randn(3, device="cuda:1").cpu().numpy(), a)


# ---- memory ----------------------------------------------------------------------------------------
def test_memory_figures_follow_the_pool(cuda):
    before = dg.cuda.memory_allocated()
    x = dg.zeros(1 << 16, device="cuda")                 # 256 KiB
    assert dg.cuda.memory_allocated() >= before + (1 << 18)
    assert dg.cuda.max_memory_allocated() >= dg.cuda.memory_allocated()
    assert dg.cuda.memory_reserved() >= dg.cuda.memory_allocated()
    free, total = dg.cuda.mem_get_info()
    assert 0 < free <= total
    del x
    dg.cuda.reset_peak_memory_stats()
    assert dg.cuda.max_memory_allocated() == dg.cuda.memory_allocated()
    dg.cuda.empty_cache()
    assert set(dg.cuda.memory_stats()) >= {"allocated_bytes.all.current", "allocated_bytes.all.peak"}


# ---- out of memory -----------------------------------------------------------------------------------
class _FakeOOM(MemoryError):
    """CuPy's error type and text (cupy.cuda.memory.OutOfMemoryError)."""

    def __init__(self, size, total):
        super().__init__(f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes).")


@pytest.fixture
def failing_allocator(cuda, monkeypatch):
    monkeypatch.setattr(strict_xp.cuda, "memory", types.SimpleNamespace(OutOfMemoryError=_FakeOOM), raising=False)

    def refuse(*a, **k):
        raise _FakeOOM(3 * 2 ** 30, 1024)
    return refuse


def test_out_of_memory_on_copy_names_requested_and_free_bytes(failing_allocator, monkeypatch):
    monkeypatch.setattr(strict_xp, "asarray", failing_allocator)
    with pytest.raises(dg.cuda.OutOfMemoryError) as e:
        dg.ones(4).to("cuda")
    err = e.value
    assert isinstance(err, RuntimeError)                 # as torch.cuda.OutOfMemoryError
    assert issubclass(torch.cuda.OutOfMemoryError, RuntimeError)
    assert err.requested_bytes == 3 * 2 ** 30
    assert err.free_bytes is not None and err.total_bytes == 2 ** 36
    msg = str(err)
    assert "CUDA out of memory" in msg and "3.00 GiB" in msg and "free" in msg and "empty_cache" in msg


def test_out_of_memory_inside_an_op_and_in_backward(failing_allocator, monkeypatch):
    x = dg.ones(3, device="cuda", requires_grad=True)
    monkeypatch.setattr(strict_xp, "exp", failing_allocator)
    with pytest.raises(dg.cuda.OutOfMemoryError, match="Tried to allocate 3.00 GiB"):
        dg.exp(x)
    monkeypatch.undo()
    monkeypatch.setattr(strict_xp.cuda, "memory", types.SimpleNamespace(OutOfMemoryError=_FakeOOM), raising=False)
    y = dg.exp(x).sum()
    monkeypatch.setattr(strict_xp.ndarray, "__mul__", failing_allocator)   # exp's backward: g * exp(x)
    with pytest.raises(dg.cuda.OutOfMemoryError):
        y.backward()


def test_a_host_memory_error_is_left_alone(cuda):
    err = MemoryError("host")
    assert backend.convert_oom(err) is err


# ---- pinned memory and non-blocking copies --------------------------------------------------------
def test_pin_memory_and_non_blocking_copy(cuda):
    t = dg.arange(6.0).reshape(2, 3)
    assert not t.is_pinned()
    p = t.pin_memory()
    assert p.is_pinned() and p.device.type == "cpu" and p is not t
    assert p.pin_memory() is p
    assert p[0].is_pinned()                             # a view of pinned memory is pinned
    np.testing.assert_array_equal(p.numpy(), t.numpy())
    g = p.to("cuda", non_blocking=True)
    assert g.device.type == "cuda"
    np.testing.assert_array_equal(g.cpu().numpy(), t.numpy())
    assert p.cuda(non_blocking=True).device.type == "cuda"
    with pytest.raises(RuntimeError, match="only dense CPU tensors can be pinned"):
        g.pin_memory()
    back = g.to("cpu", non_blocking=True)
    np.testing.assert_array_equal(back.numpy(), t.numpy())


def test_dataloader_pins_batches_and_moves_them(cuda):
    ds = dg.data.TensorDataset(dg.randn(10, 3), dg.arange(10))
    for x, y in dg.data.DataLoader(ds, batch_size=4, pin_memory=True):
        assert x.is_pinned() and y.is_pinned()
    for x, y in dg.data.DataLoader(ds, batch_size=4, pin_memory=True, device="cuda", num_workers=2):
        assert x.device.type == "cuda" and y.device.type == "cuda"


def test_dataloader_pin_memory_without_gpu_warns_like_pytorch(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    ds = dg.data.TensorDataset(dg.randn(4, 2))
    loader = dg.data.DataLoader(ds, batch_size=2, pin_memory=True)
    with pytest.warns(UserWarning, match="no accelerator is found"):
        batches = list(loader)
    assert not batches[0][0].is_pinned()
    tds = torch.utils.data.TensorDataset(torch.randn(4, 2))
    with pytest.warns(UserWarning, match="no accelerator is found"):
        list(torch.utils.data.DataLoader(tds, batch_size=2, pin_memory=True))


# ---- streams, events, device context --------------------------------------------------------------
def test_streams_events_and_device_context(cuda):
    s = dg.cuda.Stream()
    with dg.cuda.stream(s):
        x = dg.ones(3, device="cuda") * 2
    s.synchronize()
    assert s.query()
    start, end = dg.cuda.Event(enable_timing=True), dg.cuda.Event(enable_timing=True)
    start.record()
    y = x + 1
    end.record()
    end.synchronize()
    assert start.elapsed_time(end) >= 0
    assert isinstance(dg.cuda.current_stream(), dg.cuda.Stream)
    dg.cuda.current_stream().wait_stream(s)
    with dg.cuda.device(0):
        assert dg.cuda.current_device() == 0
    dg.cuda.synchronize()
    np.testing.assert_array_equal(y.cpu().numpy(), [3.0, 3.0, 3.0])


def test_checkpoint_cuda_to_cpu_to_cuda(cuda, tmp_path):
    model = dg.nn.Sequential(dg.nn.Linear(3, 4), dg.nn.BatchNorm1d(4)).to("cuda")
    path = tmp_path / "m.pt"
    dg.save(model.state_dict(), path)
    sd = dg.load(path, map_location="cpu")
    assert all(v.device.type == "cpu" for v in sd.values())
    cpu_model = dg.nn.Sequential(dg.nn.Linear(3, 4), dg.nn.BatchNorm1d(4))
    cpu_model.load_state_dict(sd)
    back = cpu_model.to("cuda")
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        assert b.device.type == "cuda"
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
