"""deepgrad.cuda on the GPU: memory figures and their peak, generators on the device, the
out-of-memory error, the mixed-device error, checkpoints cuda -> cpu -> cuda, pinned memory and
non-blocking copies, streams and events, and the fused kernels really fused (no fallback)."""
import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.ops import _cuda_kernels as _ck
from gpu_common import DRY, DDEV, TDEV, assert_close, to_np


def test_device_queries():
    assert dg.cuda.is_available() and dg.cuda.device_count() >= 1
    assert isinstance(dg.cuda.get_device_name(), str)
    if not DRY:
        assert dg.cuda.get_device_name() == torch.cuda.get_device_name()
        assert dg.cuda.get_device_capability() == torch.cuda.get_device_capability()
    x = dg.ones(3, device="cuda")
    assert x.is_cuda and x.device == dg.device("cuda:0") and str(x.device) == "cuda:0"


def test_memory_allocated_and_peak_are_honest():
    dg.cuda.synchronize()
    dg.cuda.empty_cache()
    base = dg.cuda.memory_allocated()
    dg.cuda.reset_peak_memory_stats()
    x = dg.empty(64 << 20, dtype=dg.uint8, device="cuda")     # 64 MiB
    assert dg.cuda.memory_allocated() >= base + (64 << 20)
    y = dg.empty(32 << 20, dtype=dg.uint8, device="cuda")
    peak = dg.cuda.max_memory_allocated()
    assert peak >= base + (96 << 20)
    del x, y
    assert dg.cuda.memory_allocated() <= base + (1 << 20)      # freed back to the pool
    if DRY:
        return                 # the peak is counted by a CuPy memory hook, which the stand-in lacks
    assert dg.cuda.max_memory_allocated() == peak              # the peak remembers
    assert dg.cuda.memory_reserved() >= 96 << 20               # the pool keeps the blocks
    dg.cuda.empty_cache()
    if not DRY:
        assert dg.cuda.memory_reserved() < 96 << 20
    dg.cuda.reset_peak_memory_stats()
    assert dg.cuda.max_memory_allocated() <= base + (1 << 20)
    free, total = dg.cuda.mem_get_info()
    assert 0 < free <= total


def test_out_of_memory_error_names_requested_and_free_bytes():
    if DRY:
        pytest.skip("the stand-in has no allocator that runs out (tests/test_cuda_device_api.py fakes one)")
    free, total = dg.cuda.mem_get_info()
    with pytest.raises(dg.cuda.OutOfMemoryError) as e:
        dg.empty(2 * total // 4, dtype=dg.float32, device="cuda")     # 2x the device's memory
    err = e.value
    assert isinstance(err, RuntimeError)
    assert err.requested_bytes is not None and err.requested_bytes >= 2 * total - 4096
    assert err.free_bytes is not None and err.total_bytes == total
    assert "CUDA out of memory" in str(err) and "free" in str(err)
    x = dg.ones(4, device="cuda")                                   # the device still works
    with pytest.raises(dg.cuda.OutOfMemoryError):
        x.expand(total // 8, 4) * 2                                  # inside an op: the same error
    assert float(x.sum().item()) == 4.0


def test_mixed_devices_raise_pytorchs_error():
    a, b = dg.ones(3, device="cuda"), dg.ones(3)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device") as e:
        a + b
    assert "cuda" in str(e.value) and "cpu" in str(e.value)
    with pytest.raises(RuntimeError, match="same device"):
        dg.matmul(dg.ones(2, 2, device="cuda"), dg.ones(2, 2))


def test_device_generator():
    dg.cuda.manual_seed(42)
    s = dg.cuda.get_rng_state()
    a = to_np(dg.randn(1000, device="cuda"))
    dg.cuda.set_rng_state(s)
    np.testing.assert_array_equal(to_np(dg.randn(1000, device="cuda")), a)
    dg.manual_seed(42)                                              # torch.manual_seed seeds CUDA too
    np.testing.assert_array_equal(to_np(dg.randn(1000, device="cuda")), a)
    u = to_np(dg.rand(100000, device="cuda"))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    n = to_np(dg.randn(100000, device="cuda"))
    assert abs(n.std() - 1) < 0.01
    d = to_np(dg.nn.functional.dropout(dg.ones(100000, device="cuda"), 0.25))
    assert abs((d == 0).mean() - 0.25) < 0.01


def test_checkpoint_cuda_cpu_cuda(tmp_path):
    m = dg.models.lenet5().to("cuda")
    path = tmp_path / "lenet.pt"
    dg.save(m.state_dict(), path)
    sd = dg.load(path, map_location="cpu")
    assert all(v.device.type == "cpu" for v in sd.values())
    m2 = dg.models.lenet5()
    m2.load_state_dict(sd)
    m2.to("cuda")
    x = dg.randn(2, 1, 28, 28, device="cuda")
    assert_close(to_np(m2(x)), to_np(m(x)), 1e-6, "reloaded model")
    sd_gpu = dg.load(path, map_location="cuda")
    assert all(v.device.type == "cuda" for v in sd_gpu.values())


def test_pinned_memory_and_non_blocking_copies():
    t = dg.arange(1 << 20, dtype=dg.float32)
    p = t.pin_memory()
    assert p.is_pinned() and not t.is_pinned()
    s = dg.cuda.Stream()
    with dg.cuda.stream(s):
        g = p.to("cuda", non_blocking=True)
        back = (g * 2).to("cpu", non_blocking=True)
    s.synchronize()
    np.testing.assert_array_equal(back.numpy(), t.numpy() * 2)
    loader = dg.data.DataLoader(dg.data.TensorDataset(dg.randn(64, 8), dg.arange(64)), batch_size=16,
                                pin_memory=True, device="cuda", num_workers=2)
    for x, y in loader:
        assert x.is_cuda and y.is_cuda


def test_streams_and_events_time_work():
    start, end = dg.cuda.Event(enable_timing=True), dg.cuda.Event(enable_timing=True)
    a = dg.randn(1024, 1024, device="cuda")
    start.record()
    for _ in range(10):
        a = a @ a * 1e-3
    end.record()
    end.synchronize()
    assert start.elapsed_time(end) > 0
    dg.cuda.synchronize()


def test_fused_kernels_really_fused():
    """After the parity and model tests ran every kernel, none fell back to unfused code."""
    if DRY:
        pytest.skip("cupy.fuse exists only on the real CuPy")
    x = dg.randn(8, 6, 5, 5, device="cuda", requires_grad=True)
    bn = dg.nn.BatchNorm2d(6).to("cuda")
    lstm = dg.nn.LSTM(5, 7).to("cuda")
    loss = bn(x).sum() + lstm(x.reshape(48, 1, 5))[0].sum()
    loss = loss + dg.nn.functional.cross_entropy(x.reshape(48, 25), dg.zeros(48, dtype=dg.int64, device="cuda"))
    opt = dg.optim.Adam(list(bn.parameters()) + list(lstm.parameters()))
    loss.backward()
    opt.step()
    dg.optim.SGD(bn.parameters(), lr=0.1, momentum=0.9, nesterov=True).step()
    assert _ck.FALLBACKS == {}, _ck.FALLBACKS
    assert all(_ck.enabled(k) for k in [dg.backend._cupy])
