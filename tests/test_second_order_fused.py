"""Property tests of the fused double-backward routes (create_graph=True) against composed
references written with ordinary deepgrad ops, on random shapes: the batch-statistics norms'
``NormGrad`` (second order in closed form, third order by its own reference route) and
eval-mode batch norm's directly composed gradient."""
import numpy as np
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.nn.functional as F
from test_second_order import second_order

SETTINGS = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _close(a, b, tol=1e-9):
    a, b = a.detach().numpy(), b.detach().numpy()
    assert a.shape == b.shape
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    assert float(np.abs(a - b).max() if a.size else 0.0) <= tol * scale


def _orders(f, arrays, seed, order=3):
    """Value, then gradients of <f, u> in every input and u, of <grads, v>, of <grads2, z>."""
    rng = np.random.default_rng(seed)
    ts = [dg.tensor(a, requires_grad=True) for a in arrays]
    y = f(*ts)
    u = dg.tensor(rng.standard_normal(tuple(y.shape)), requires_grad=True)
    out = [y]
    wrt = ts + [u]
    s = (y * u).sum()
    for k in range(order):
        if not s.requires_grad:        # constant: every further derivative is zero
            out += [dg.zeros_like(t) for t in wrt]
            continue
        gs = dg.autograd.grad(s, wrt, create_graph=k < order - 1, allow_unused=True, materialize_grads=True)
        out += gs
        s = sum((g * dg.tensor(rng.standard_normal(tuple(g.shape)))).sum() for g in gs)
    return out


RM, RV = np.linspace(-0.5, 0.5, 4), np.linspace(0.5, 2.0, 4)   # eval-mode running statistics


def _norm_ref(kind, G, eps):
    def f(x, *p):
        wshape = (1, x.shape[1]) + (1,) * (x.ndim - 2) if kind != "layer" else x.shape[x.ndim - 2:]
        if kind == "batch_eval":
            c = x.shape[1]
            xh = (x - dg.tensor(RM[:c]).reshape(wshape)) * (dg.tensor(RV[:c]).reshape(wshape) + eps).rsqrt()
            return xh * p[0].reshape(wshape) + p[1].reshape(wshape) if p else xh
        if kind == "batch":
            axes = (0,) + tuple(range(2, x.ndim))
            xv = x
        elif kind == "layer":
            axes = tuple(range(x.ndim - 2, x.ndim))
            xv = x
        else:
            xv = x.reshape(x.shape[0], G, -1)
            axes = (2,)
        xc = xv - xv.mean(axes, keepdim=True)
        xh = (xc * ((xc * xc).mean(axes, keepdim=True) + eps).rsqrt()).reshape(x.shape)
        if p:
            xh = xh * p[0].reshape(wshape) + p[1].reshape(wshape)
        return xh
    return f


def _norm_fast(kind, G, eps):
    def f(x, *p):
        w, b = (p[0], p[1]) if p else (None, None)
        if kind == "batch_eval":
            c = x.shape[1]
            return F.batch_norm(x, dg.tensor(RM[:c]), dg.tensor(RV[:c]), w, b, training=False, eps=eps)
        if kind == "batch":
            return F.batch_norm(x, None, None, w, b, training=True, eps=eps)
        if kind == "layer":
            return F.layer_norm(x, tuple(x.shape[x.ndim - 2:]), w, b, eps=eps)
        return F.group_norm(x, G, w, b, eps=eps)
    return f


@SETTINGS
@given(kind=st.sampled_from(["batch", "batch_eval", "layer", "group"]),
       dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       n=st.integers(2, 4), c=st.sampled_from([1, 2, 4]), affine=st.booleans(),
       eps=st.sampled_from([1e-5, 0.3]), seed=st.integers(0, 2 ** 16))
def test_norm_fused_double_backward_matches_composed(kind, dims, n, c, affine, eps, seed):
    G = 2 if c % 2 == 0 else 1
    shape = (n, c, *dims)
    rng = np.random.default_rng(seed)
    wshape = (c,) if kind != "layer" else shape[len(shape) - 2:]
    arrays = [rng.standard_normal(shape)]
    if affine:
        arrays += [rng.standard_normal(wshape), rng.standard_normal(wshape)]
    fast = _orders(_norm_fast(kind, G, eps), arrays, seed)
    ref = _orders(_norm_ref(kind, G, eps), arrays, seed)
    for a, b in zip(fast, ref):
        _close(a, b)


def test_norm_fused_route_is_used_and_partial_cotangents():
    """The NormGrad node is what create_graph=True records for training batch norm, and a
    second derivative through only the bias's or the weight's gradient is right (zeros where
    the composed reference has no path)."""
    from deepgrad.ops.normalization import NormGrad
    rng = np.random.default_rng(3)
    x = dg.tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    w = dg.tensor(rng.standard_normal(3), requires_grad=True)
    b = dg.tensor(rng.standard_normal(3), requires_grad=True)
    gx, gw, gb = dg.autograd.grad(F.batch_norm(x, None, None, w, b, training=True).pow(3).sum(),
                                  [x, w, b], create_graph=True)
    assert isinstance(gx.grad_fn, NormGrad)
    ref = _norm_ref("batch", 1, 1e-5)
    rx, rw, rb = dg.autograd.grad(ref(x, w, b).pow(3).sum(), [x, w, b], create_graph=True)
    for pick in (lambda a, c, d: d.sum(), lambda a, c, d: (c * c).sum(), lambda a, c, d: a.sum() + c.sum()):
        hf = dg.autograd.grad(pick(gx, gw, gb), [x, w, b], allow_unused=True, materialize_grads=True,
                              retain_graph=True)
        hr = dg.autograd.grad(pick(rx, rw, rb), [x, w, b], allow_unused=True, materialize_grads=True,
                              retain_graph=True)
        for a, c in zip(hf, hr):
            _close(a, c)


def test_norm_second_order_with_a_constant_input_matches_torch():
    """x without a gradient of its own (NormGrad then returns only the affine gradients)."""
    x = np.random.default_rng(1).standard_normal((4, 3, 2))
    for kind in ("batch", "group", "layer"):
        def make(M, FF, kind=kind):
            def f(w, b):
                xx = M.tensor(x)
                if kind == "batch":
                    y = FF.batch_norm(xx, None, None, w, b, training=True)
                elif kind == "group":
                    y = FF.group_norm(xx, 3, w, b)
                else:
                    return (FF.layer_norm(xx, (2,), w[:2], b[:2]) ** 3).sum()
                return (y * y * w.reshape(1, 3, 1)).sum()
            return f
        second_order(make(dg, F), make(torch, TF), [(3,), (3,)])
