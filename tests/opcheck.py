"""The harness that makes an op cheap to test completely.

``check_op(dg_fn, torch_fn, inputs)`` runs the op in deepgrad and in PyTorch on the same arrays
and checks: forward values, first gradients (a random vector-Jacobian product), float64 central
differences (``deepgrad.autograd.gradcheck``) and, unless ``double=False``, second gradients
against ``torch.autograd.grad(..., create_graph=True)``.
"""
from __future__ import annotations

import numpy as np
import torch

import deepgrad as dg

TOL = {np.float64: dict(rtol=1e-6, atol=1e-8), np.float32: dict(rtol=1e-4, atol=1e-5)}


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def to_dg(a, requires_grad):
    t = dg.tensor(a)
    if requires_grad and t.dtype.kind == "f":
        t.requires_grad_(True)
    return t


def to_torch(a, requires_grad):
    t = torch.tensor(a)
    if requires_grad and t.dtype.is_floating_point:
        t.requires_grad_(True)
    return t


def assert_close(ours, theirs, dtype=np.float64, what="value", rtol=None, atol=None):
    ours = ours.detach().numpy() if isinstance(ours, dg.Tensor) else np.asarray(ours)
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    tol = dict(TOL.get(np.dtype(dtype).type, TOL[np.float32]))
    if rtol is not None:
        tol["rtol"] = rtol
    if atol is not None:
        tol["atol"] = atol
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, err_msg=what, equal_nan=True, **tol)


def check_op(dg_fn, torch_fn, inputs, grad=True, gradcheck=True, double=True, rtol=None,
             atol=None, seed=0):
    """``inputs``: NumPy arrays (float ones get gradients). Returns deepgrad's outputs."""
    if DEVICE[0] is not None:    # tests/test_strict_device.py: the same case, cpu against the device
        return check_on_device(dg_fn, inputs, grad, double, seed)
    rng = np.random.default_rng(seed)
    inputs = [np.asarray(a) for a in inputs]
    dtype = next((a.dtype for a in inputs if a.dtype.kind == "f"), np.float64)
    xs = [to_dg(a, grad) for a in inputs]
    ts = [to_torch(a, grad) for a in inputs]
    outs, touts = _tuple(dg_fn(*xs)), _tuple(torch_fn(*ts))
    assert len(outs) == len(touts), "number of outputs differs from torch"
    for i, (o, t) in enumerate(zip(outs, touts)):
        assert_close(o, t, dtype, f"forward output {i}", rtol, atol)
    if not grad:
        return outs
    diff = [(o, t) for o, t in zip(outs, touts) if t.requires_grad]
    if not diff:
        return outs
    ws = [rng.standard_normal(tuple(t.shape)).astype(t.detach().numpy().dtype) for _, t in diff]
    gi = [i for i, x in enumerate(xs) if x.requires_grad]
    if not gi:
        return outs
    create = double
    g_ours = dg.autograd.grad([o for o, _ in diff], [xs[i] for i in gi],
                              grad_outputs=[dg.tensor(w) for w in ws], create_graph=create, allow_unused=True)
    g_torch = torch.autograd.grad([t for _, t in diff], [ts[i] for i in gi],
                                  grad_outputs=[torch.tensor(w) for w in ws], create_graph=create, allow_unused=True)
    for k, (go, gt) in enumerate(zip(g_ours, g_torch)):
        if gt is None:
            assert go is None or np.all(go.detach().numpy() == 0), f"grad of input {gi[k]} should be None/zero"
            continue
        assert go is not None, f"grad of input {gi[k]} missing"
        assert_close(go, gt, dtype, f"grad of input {gi[k]}", rtol, atol)
    if double:
        pairs = [(go, gt) for go, gt in zip(g_ours, g_torch) if gt is not None and gt.requires_grad]
        if pairs:
            vs = [rng.standard_normal(tuple(gt.shape)).astype(gt.detach().numpy().dtype) for _, gt in pairs]
            # A first gradient that does not depend on the inputs (it needs no graph) has a zero
            # second derivative; torch still marks it requires_grad, so compare against zeros.
            live = [(go, v) for (go, _), v in zip(pairs, vs) if go.requires_grad]
            if live:
                gg_ours = dg.autograd.grad([go for go, _ in live], [xs[i] for i in gi],
                                           grad_outputs=[dg.tensor(v) for _, v in live], allow_unused=True)
            else:
                gg_ours = [None] * len(gi)
            gg_torch = torch.autograd.grad([gt for _, gt in pairs], [ts[i] for i in gi],
                                           grad_outputs=[torch.tensor(v) for v in vs], allow_unused=True)
            for k, (a, b) in enumerate(zip(gg_ours, gg_torch)):
                if b is None:
                    assert a is None or np.allclose(a.numpy(), 0), f"second grad of input {gi[k]} should be zero"
                    continue
                if a is None:
                    np.testing.assert_allclose(b.detach().numpy(force=True), 0, atol=1e-6, err_msg=f"second grad of input {gi[k]}")
                    continue
                assert_close(a, b, dtype, f"second grad of input {gi[k]}", rtol, atol)
    if gradcheck and dtype == np.float64:
        xs64 = [to_dg(a, grad) for a in inputs]
        dg.autograd.gradcheck(dg_fn, xs64)
    return outs


def convert_index(index, mod):
    """An index built of NumPy arrays, as the same index for ``mod`` (deepgrad or torch)."""
    if isinstance(index, tuple):
        return tuple(convert_index(e, mod) for e in index)
    if isinstance(index, np.ndarray):
        return mod.tensor(index)
    return index


#: check_op options for float32-only cases (no float64 gradcheck, no double backward)
F32 = dict(double=False, gradcheck=False)


def case_seed(*case):
    """A stable seed per parameterised test case."""
    import zlib
    return zlib.crc32(repr(case).encode()) % 1000


def rand(*shape, seed=0, low=-2.0, high=2.0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def noncontig(a):
    """A non-contiguous array with the values of ``a`` (a transposed copy, transposed back)."""
    return np.asarray(a).T.copy().T if np.asarray(a).ndim >= 2 else np.asarray(a)[::1]


#: Set to a device name ("cuda") by tests/test_strict_device.py: check_op then runs each case on
#: "cpu" and on that device (values, first and second gradients; no torch, no gradcheck).
DEVICE = [None]


def _host(x):
    if isinstance(x, dg.Tensor):
        return x.detach().cpu().numpy()
    return x


def check_on_device(dg_fn, inputs, grad=True, double=True, seed=0, rtol=1e-6, atol=1e-7):
    """Run ``dg_fn`` on "cpu" and on ``DEVICE[0]`` on the same inputs; the device run's outputs
    must live on the device and match the CPU run's values and gradients (to 1e-6)."""
    inputs = [np.asarray(a) for a in inputs]
    runs = []
    for dev in ("cpu", DEVICE[0]):
        dg.set_default_device(dev)     # tensors the case builds itself (indices, masks) go there too
        try:
            runs.append(_one_run(dg_fn, inputs, grad, double, seed, dev))
        finally:
            dg.set_default_device(None)
    (cpu, _), (dev, outs) = runs
    assert cpu.keys() == dev.keys()
    for k in cpu:
        for i, (a, b) in enumerate(zip(cpu[k], dev[k])):
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                assert b is not None and a is not None, f"{k} {i}: None on one device only"
                assert a.dtype == b.dtype and a.shape == b.shape, f"{k} {i}: {b.dtype}{b.shape} != cpu {a.dtype}{a.shape}"
                np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{k} {i}")
            else:
                assert a == b or (a != a and b != b), f"{k} {i}: {b!r} != cpu {a!r}"
    return outs


def _one_run(dg_fn, inputs, grad, double, seed, dev):
    rng = np.random.default_rng(seed)
    dg.manual_seed(seed)               # random ops (dropout ...) draw the same numbers on both devices
    xs = [dg.tensor(a, device=dev) for a in inputs]
    if grad:
        xs = [x.requires_grad_(True) if x.dtype.kind == "f" else x for x in xs]
    outs = _tuple(dg_fn(*xs))
    for i, o in enumerate(outs):
        if isinstance(o, dg.Tensor):
            assert o.device == dg.device(dev), f"output {i} is on {o.device}, expected {dev}"
    got = {"out": [_host(o) for o in outs]}
    gi = [i for i, x in enumerate(xs) if x.requires_grad]
    diff = [o for o in outs if isinstance(o, dg.Tensor) and o.requires_grad]
    if grad and gi and diff:
        ws = [dg.tensor(rng.standard_normal(tuple(o.shape)).astype(o.dtype), device=dev) for o in diff]
        g = dg.autograd.grad(diff, [xs[i] for i in gi], grad_outputs=ws, create_graph=double, allow_unused=True)
        got["grad"] = [_host(x) for x in g]
        live = [x for x in g if x is not None and x.requires_grad]
        if double and live:
            vs = [dg.tensor(rng.standard_normal(tuple(x.shape)).astype(x.dtype), device=dev) for x in live]
            gg = dg.autograd.grad(live, [xs[i] for i in gi], grad_outputs=vs, allow_unused=True)
            got["grad2"] = [_host(x) for x in gg]
    return got, outs
