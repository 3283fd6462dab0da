"""Convolution's create_graph=True route (``ConvGrad``: the first-order backward as one Function
whose backward is the second derivative on raw arrays) against PyTorch 2.13 in float64, and
against the ``Corr``-family route it replaces (``conv._FUSED_GRAD = False``).

Each case takes the gradients of ``sum(u * tanh(conv(x, w, b)))`` with ``create_graph=True``,
then the gradient of ``<grads, v>`` over a *subset* of them (so that the cotangents of dx, dw
and db reach ``ConvGrad.backward`` alone and in every combination), with and without x
requiring a gradient; then a third derivative (``ConvGrad.graph_backward``).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad.ops import conv as conv_mod

torch.set_num_threads(1)
TOL = 1e-6

GRID = [  # (input, weight, options)
    ((2, 4, 7, 6), (6, 2, 3, 2), dict(stride=2, padding=1, dilation=(1, 2), groups=2)),
    ((2, 3, 6, 6), (4, 3, 3, 3), dict(stride=1, padding=1)),          # the flipped-kernel dx
    ((2, 3, 6, 5), (4, 3, 2, 2), dict(padding="same")),
    ((1, 1, 9, 9), (3, 1, 4, 4), dict(stride=(2, 1))),                # channels-first columns
    ((2, 4, 5, 5), (6, 4, 1, 1), dict()),                             # 1x1: pointwise GEMM
    ((6, 5, 5), (6, 1, 3, 3), dict(groups=6, padding=2, dilation=2)),  # unbatched, depthwise
    ((2, 4, 9), (4, 2, 3), dict(stride=2, padding=2, dilation=2, groups=2)),
    ((4, 7), (2, 4, 3), dict(padding=1)),                             # unbatched 1-d
]
SUBSETS = [(0, 1, 2), (0,), (1,), (2,), (0, 1), (1, 2)]   # which of (dx, dw, db) enter <grads, v>


def _close(a, b, tol=TOL):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy()
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    err = float(np.abs(a - b).max()) if a.size else 0.0
    assert err <= tol * scale, f"max abs difference {err:.3g} (scale {scale:.3g})"


@pytest.fixture(params=[True, False], ids=["ConvGrad", "Corr"])
def route(request, monkeypatch):
    monkeypatch.setattr(conv_mod, "_FUSED_GRAD", request.param)
    return request.param


def _hvp(M, FF, arrs, kw, subset, x_grad, third=False):
    nd = len(arrs[1].shape) - 2
    conv = FF.conv1d if nd == 1 else FF.conv2d
    ts = [M.tensor(a, requires_grad=(i > 0 or x_grad)) for i, a in enumerate(arrs[:3])]
    u, vs = M.tensor(arrs[3]), [M.tensor(a) for a in arrs[4:]]
    y = (u * M.tanh(conv(*ts, **kw))).sum()
    wrt = [t for t in ts if t.requires_grad]
    gs = M.autograd.grad(y, wrt, create_graph=True)
    full = dict(zip([i for i, t in enumerate(ts) if t.requires_grad], gs))
    dot = sum((full[i] * vs[i]).sum() for i in subset if i in full)
    hs = M.autograd.grad(dot, wrt, create_graph=third, allow_unused=True, materialize_grads=True)
    if not third:
        return list(gs) + list(hs)
    # third order: the gradient of <H v, H v> (every input's term runs through ConvGrad's graph)
    return list(M.autograd.grad(sum((h * h).sum() for h in hs), wrt, allow_unused=True,
                                materialize_grads=True))


@pytest.mark.parametrize("xs,ws,kw", GRID)
@pytest.mark.parametrize("subset,x_grad", [(s, g) for s in SUBSETS for g in (True, False)
                                            if g or s != (0,)],     # no dx without x's gradient
                         ids=lambda v: ("d" + "".join("xwb"[i] for i in v)) if isinstance(v, tuple)
                         else ("x" if v else "no_x"))
def test_conv_hvp_subsets(route, xs, ws, kw, subset, x_grad):
    rng = np.random.default_rng(len(xs) * 7 + sum(subset))
    nd = len(ws) - 2
    out = TF.conv1d if nd == 1 else TF.conv2d
    y = out(torch.tensor(rng.standard_normal(xs)), torch.tensor(rng.standard_normal(ws)), **kw)
    shapes = [xs, ws, (ws[0],), tuple(y.shape), xs, ws, (ws[0],)]
    arrs = [rng.standard_normal(s) for s in shapes]
    got = _hvp(dg, F, arrs, kw, subset, x_grad)
    want = _hvp(torch, TF, arrs, kw, subset, x_grad)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        _close(a, b)


@pytest.mark.parametrize("xs,ws,kw", GRID[:2] + GRID[4:5] + GRID[-1:])
def test_conv_third_order(route, xs, ws, kw):
    rng = np.random.default_rng(3)
    nd = len(ws) - 2
    out = TF.conv1d if nd == 1 else TF.conv2d
    y = out(torch.tensor(rng.standard_normal(xs)), torch.tensor(rng.standard_normal(ws)), **kw)
    shapes = [xs, ws, (ws[0],), tuple(y.shape), xs, ws, (ws[0],)]
    arrs = [rng.standard_normal(s) for s in shapes]
    for a, b in zip(_hvp(dg, F, arrs, kw, (0, 1, 2), True, third=True),
                    _hvp(torch, TF, arrs, kw, (0, 1, 2), True, third=True)):
        _close(a, b)


def test_conv_grad_node_and_gradgradcheck():
    """The fused route builds one ConvGrad node per convolution; gradgradcheck passes."""
    rng = np.random.default_rng(5)
    x = dg.tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    w = dg.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = dg.tensor(rng.standard_normal(3), requires_grad=True)
    gx, gw, gb = dg.autograd.grad(F.conv2d(x, w, b, padding=1).tanh().sum(), [x, w, b], create_graph=True)
    assert type(gw.grad_fn).__name__ == "ConvGrad"
    assert dg.autograd.gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1).tanh(), [x, w, b])
