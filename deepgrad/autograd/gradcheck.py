"""Finite-difference checks of analytic gradients (float64 central differences)."""
from __future__ import annotations

import numpy as np

from .. import backend
from .api import grad as _grad


def _inputs_needing_grad(inputs):
    return [i for i, t in enumerate(inputs) if getattr(t, "requires_grad", False)]


def _flat_outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _numerical_jacobian_vjp(fn, inputs, idx, ws, eps):
    """d<w, fn(inputs)>/d inputs[idx], one central difference per element."""
    x = inputs[idx].array
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = grad.reshape(-1)
    xv = x.reshape(-1) if x.flags.c_contiguous else None
    for k in range(x.size):
        pos = np.unravel_index(k, x.shape) if x.ndim else ()
        orig = x[pos]
        x[pos] = orig + eps
        fp = _dot(fn(*inputs), ws)
        x[pos] = orig - eps
        fm = _dot(fn(*inputs), ws)
        x[pos] = orig
        flat[k] = (fp - fm) / (2 * eps)
    del xv
    return grad


def _dot(out, ws):
    return sum(float((o.array.astype(np.float64) * w).sum()) for o, w in zip(_flat_outputs(out), ws)
               if o.array.dtype.kind == "f")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Compare ``fn``'s analytic input gradients with central differences.

    ``inputs`` are float64 Tensors; those with ``requires_grad`` are checked. The output(s) are
    contracted with fixed random weights so one backward checks a full vector-Jacobian product.
    Returns True, or raises (or returns False) naming the input and the largest mismatch.
    """
    from ..autograd.grad_mode import no_grad
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    check = _inputs_needing_grad(inputs)
    for i in check:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 for finite differences")
    outs = _flat_outputs(fn(*inputs))
    rng = np.random.default_rng(seed)
    ws = [backend.asarray_on(rng.standard_normal(o.shape), o.array) for o in outs]   # on the outputs' device
    from ..tensor import Tensor
    diff_outs = [(o, w) for o, w in zip(outs, ws) if o.requires_grad]
    if not diff_outs:
        raise RuntimeError("gradcheck: no output requires grad")
    analytic = _grad([o for o, _ in diff_outs], [inputs[i] for i in check],
                     grad_outputs=[Tensor._make(w.astype(o.array.dtype)) for o, w in diff_outs],
                     allow_unused=True)
    with no_grad():
        for j, i in enumerate(check):
            num = _numerical_jacobian_vjp(fn, inputs, i, ws, eps)
            ana = np.zeros_like(num) if analytic[j] is None else backend.to_numpy(analytic[j].array).astype(np.float64)
            if ana.shape != num.shape:
                raise RuntimeError(f"gradcheck: gradient of input {i} has shape {ana.shape}, expected {num.shape}")
            if not np.allclose(ana, num, rtol=rtol, atol=atol):
                err = np.abs(ana - num).max()
                msg = (f"gradcheck failed for input {i} (shape {num.shape}): max abs difference {err:.3g}\n"
                       f"analytic:\n{ana}\nnumerical:\n{num}")
                if raise_exception:
                    raise AssertionError(msg)
                return False
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=1):
    """Check second derivatives: gradcheck of the map inputs -> <w, d fn / d inputs>."""
    from ..tensor import Tensor
    inputs = list(inputs)
    check = _inputs_needing_grad(inputs)
    outs = _flat_outputs(fn(*inputs))
    rng = np.random.default_rng(seed)
    ws = [Tensor._make(backend.asarray_on(rng.standard_normal(o.shape), o.array)) for o in outs]

    def first_grads(*xs):
        from .grad_mode import enable_grad
        with enable_grad():  # gradcheck evaluates this under no_grad for its central differences
            out = _flat_outputs(fn(*xs))
            gs = _grad(out, [xs[i] for i in check], grad_outputs=ws, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None and g.requires_grad)

    return gradcheck(first_grads, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, seed=seed)
