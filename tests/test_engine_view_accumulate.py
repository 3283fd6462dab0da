"""The engine's in-place gradient accumulation into a whole view of an array nobody else holds
(convolution's NCHW-shaped view of its channels-last gradient), and its refusals."""
from __future__ import annotations

import numpy as np

import deepgrad as dg

KEPT = {}


class _ViewGrad(dg.autograd.Function):
    """Identity whose backward returns the gradient as a transposed view of a fresh array
    (``keep=True``: of an array this module keeps, which accumulation must never touch)."""

    @staticmethod
    def forward(ctx, x, keep):
        ctx.keep = keep
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        base = np.ascontiguousarray(g.numpy().transpose(0, 2, 1))
        if ctx.keep:
            KEPT.setdefault("arrays", []).append(base)
        return dg.from_numpy(base).transpose(1, 2), None


def _run(keep_first, keep_second):
    KEPT.clear()
    rng = np.random.default_rng(0)
    x = dg.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    u, v = dg.tensor(rng.standard_normal((2, 3, 4))), dg.tensor(rng.standard_normal((2, 3, 4)))
    h = x * 1.0                      # a non-leaf: both branches' gradients meet in the engine's buffer
    y = (_ViewGrad.apply(h, keep_first) * u).sum() + (_ViewGrad.apply(h, keep_second) * v).sum()
    (gx,) = dg.autograd.grad(y, [x])
    return gx.numpy(), u.numpy() + v.numpy()


def test_view_gradients_accumulate_correctly():
    for keep in [(False, False), (True, False), (False, True), (True, True)]:
        got, want = _run(*keep)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_kept_base_is_not_written():
    """A view whose base someone else holds is added out of place: the kept arrays still hold
    each branch's own gradient."""
    _run(True, True)
    a, b = KEPT["arrays"]
    rng = np.random.default_rng(0)
    rng.standard_normal((2, 3, 4))
    u, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    got = sorted([a, b], key=lambda t: float(t.sum()))
    want = sorted([u.transpose(0, 2, 1), v.transpose(0, 2, 1)], key=lambda t: float(t.sum()))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_sole_full_view_rules():
    from deepgrad.autograd.function import _sole_full_view
    base = np.zeros((2, 3, 4))
    # (results taken into names first: pytest's assertion rewriting keeps call arguments alive)
    fresh = _sole_full_view(np.zeros((2, 4, 3)).transpose(0, 2, 1))
    held = _sole_full_view(base.transpose(0, 2, 1))                    # base held by a name here
    part = _sole_full_view(np.zeros((2, 3, 8))[:, :, :4])              # part of its base
    overlap = _sole_full_view(np.lib.stride_tricks.as_strided(np.zeros(12), (2, 6), (0, 8), writeable=True))
    assert (fresh, held, part, overlap) == (True, False, False, False)
