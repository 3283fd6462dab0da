"""Helpers for the nn tests: copy weights from a torch module by name, run both, compare."""
from __future__ import annotations

import numpy as np
import torch

import deepgrad as dg

RTOL, ATOL = 1e-4, 1e-5


def close(ours, theirs, what="value", rtol=RTOL, atol=ATOL):
    a = ours.detach().numpy() if isinstance(ours, dg.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def sync(ours, theirs):
    """Load ``theirs``' state dict (as NumPy arrays, by name) into ``ours``."""
    result = ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    return ours


def compare(ours, theirs, *inputs, do_sync=True, grad=True, rtol=RTOL, atol=ATOL, seed=0):
    """Forward both modules on the same NumPy ``inputs``; backprop the same random cotangent;
    compare outputs, input gradients and parameter gradients (by name)."""
    if do_sync:
        sync(ours, theirs)
    if DEVICE[0] is not None:       # tests/test_strict_device.py: ours on the CPU against ours on the device
        y = compare_on_device(ours, *inputs, grad=grad, seed=seed)
        ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in inputs]
        ty = theirs(*ts)                # torch still runs: its module's state is compared afterwards
        if grad:
            ty.backward(torch.tensor(np.random.default_rng(seed).standard_normal(tuple(ty.shape))
                                     .astype(ty.detach().numpy().dtype)))
        return y, ty
    xs = [dg.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in inputs]
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in inputs]
    y, ty = ours(*xs), theirs(*ts)
    close(y, ty, "forward", rtol, atol)
    if not grad:
        return y, ty
    w = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(ty.detach().numpy().dtype)
    y.backward(dg.tensor(w))
    ty.backward(torch.tensor(w))
    for i, (x, t) in enumerate(zip(xs, ts)):
        if t.grad is not None:
            close(x.grad, t.grad, f"grad of input {i}", rtol, atol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        tp = tparams[name]
        if tp.grad is None:
            assert p.grad is None or np.all(p.grad.numpy() == 0), f"grad of {name} should be None"
        else:
            assert p.grad is not None, f"grad of {name} missing"
            close(p.grad, tp.grad, f"grad of {name}", rtol, atol)
    return y, ty


def randn(*shape, seed=0, dtype=np.float32, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


#: Set to "cuda" by tests/test_strict_device.py: compare() then runs ``ours`` on the CPU and a copy
#: moved to that device (outputs, input, parameter and buffer values and gradients must match).
DEVICE = [None]


def _host(t):
    return None if t is None else t.detach().cpu().numpy()


def compare_on_device(module, *inputs, grad=True, seed=0, rtol=1e-6, atol=1e-6):
    import copy
    dev_module = copy.deepcopy(module).to(DEVICE[0])
    runs = []
    for m, dev in ((module, "cpu"), (dev_module, DEVICE[0])):
        dg.manual_seed(seed)            # dropout draws the same masks on both devices
        xs = [dg.tensor(a, device=dev, requires_grad=grad and a.dtype.kind == "f") for a in inputs]
        y = m(*xs)
        assert y.device == dg.device(dev), f"output on {y.device}, expected {dev}"
        got = {"forward": _host(y)}
        if grad:
            w = np.random.default_rng(seed).standard_normal(tuple(y.shape)).astype(y.dtype)
            y.backward(dg.tensor(w, device=dev))
            got.update({f"grad of input {i}": _host(x.grad) for i, x in enumerate(xs)})
            got.update({f"grad of {n}": _host(p.grad) for n, p in m.named_parameters()})
        got.update({f"buffer {n}": _host(b) for n, b in m.named_buffers()})
        got.update({f"parameter {n}": _host(p) for n, p in m.named_parameters()})
        for name, p in m.named_parameters():
            assert p.device == dg.device(dev) and (p.grad is None or p.grad.device == p.device), name
        runs.append(got)
    cpu, on_dev = runs
    assert cpu.keys() == on_dev.keys()
    for k, a in cpu.items():
        b = on_dev[k]
        assert (a is None) == (b is None), f"{k}: None on one device only"
        if a is not None:
            assert a.dtype == b.dtype and a.shape == b.shape, f"{k}: {b.dtype}{b.shape} != cpu {a.dtype}{a.shape}"
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=k)
    return y
