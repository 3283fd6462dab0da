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
