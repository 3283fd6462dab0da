"""Property tests: every fast path of issue 14 (batch norm's channel views, the engine's
copy-free gradient ownership, the optimisers' in-place updates, sigmoid through tanh, the LSTM's
batched products) against the plain/reference path on random shapes, including inputs where the
fast path must not be taken (other layouts, dtypes, sizes)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import deepgrad as dg
import deepgrad.nn.functional as F
import deepgrad.ops.normalization as NZ

SETTINGS = dict(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _layout(a, kind):
    """``a`` (N, C, *S) as the same values in another memory layout."""
    if kind == "nchw" or a.ndim == 2:
        return np.ascontiguousarray(a) if kind != "strided" else a[..., ::1]
    if kind == "cl":       # channels-last behind the NCHW view (what convolution produces)
        perm = (0,) + tuple(range(2, a.ndim)) + (1,)
        inv = np.argsort(perm)
        return np.ascontiguousarray(a.transpose(perm)).transpose(inv)
    # a strided view: neither layout, the fast path must not be taken
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def _bn_run(fast, x, g, training, weight, bias, dtype):
    NZ._fast_bn[0] = fast
    try:
        C = x.shape[1]
        xt = dg.Tensor._make(x).requires_grad_()      # keeps the memory layout under test
        rng = np.random.default_rng(1)
        w = dg.tensor(rng.standard_normal(C).astype(dtype), requires_grad=True) if weight else None
        b = dg.tensor(rng.standard_normal(C).astype(dtype), requires_grad=True) if bias else None
        rm = dg.tensor(rng.standard_normal(C).astype(dtype))
        rv = dg.tensor(rng.random(C).astype(dtype) + 0.5)
        y = F.batch_norm(xt, rm, rv, w, b, training=training, momentum=0.3)
        y.backward(dg.Tensor._make(g))
        out = [y.detach().numpy(), xt.grad.numpy(), rm.numpy(), rv.numpy()]
        out += [p.grad.numpy() for p in (w, b) if p is not None]
        return out
    finally:
        NZ._fast_bn[0] = True


@settings(**SETTINGS)
@given(n=st.integers(1, 5), c=st.integers(1, 20), spatial=st.lists(st.integers(1, 7), max_size=2),
       kind=st.sampled_from(["nchw", "cl", "strided"]), gkind=st.sampled_from(["nchw", "cl", "strided"]),
       training=st.booleans(), weight=st.booleans(), bias=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), offset=st.sampled_from([0.0, 3.0]),
       seed=st.integers(0, 2**31 - 1))
def test_batch_norm_fast_path_equals_general_path(n, c, spatial, kind, gkind, training, weight, bias,
                                                  dtype, offset, seed):
    shape = (n, c) + tuple(spatial)
    if training and n * int(np.prod(spatial)) <= 1:
        n, shape = 2, (2, c) + tuple(spatial)
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    x, gx = _layout(a, kind), _layout(g, gkind)
    ref = _bn_run(False, x, gx, training, weight, bias, dtype)
    got = _bn_run(True, x, gx, training, weight, bias, dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for r, o in zip(ref, got):
        assert r.shape == o.shape and r.dtype == o.dtype
        np.testing.assert_allclose(o, r, rtol=tol, atol=tol)


def test_batch_norm_fast_path_taken_only_where_it_applies():
    cv = NZ._ChannelView.of
    x = np.zeros((4, 3, 5, 5), np.float32)
    assert cv(x).kind == "nc"
    assert cv(np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)).kind == "rows"
    assert cv(np.zeros((8, 3), np.float32)).kind == "rows"
    assert cv(x[:, :, ::2]) is None                       # strided: general path
    assert cv(x.astype(np.float16)) is None               # half: general path
    assert cv(np.zeros((0, 3, 2), np.float32)) is None    # empty


def test_batch_norm_fast_path_half_and_inplace_error():
    # float16 falls back silently and agrees with float32 within half precision
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3, 6)).astype(np.float16)
    y16 = F.batch_norm(dg.tensor(a), None, None, training=True)
    y32 = F.batch_norm(dg.tensor(a.astype(np.float32)), None, None, training=True)
    np.testing.assert_allclose(y16.numpy().astype(np.float32), y32.numpy(), atol=5e-3)
    # eval mode keeps the input for the weight gradient: an in-place change is refused
    x = dg.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    h = x * 1
    w = dg.ones(3, requires_grad=True)
    y = F.batch_norm(h, dg.zeros(3), dg.ones(3), w, None, training=False)
    h.add_(1)
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()


def test_batch_norm_retain_graph_twice_same_gradient():
    rng = np.random.default_rng(3)
    x = dg.tensor(rng.standard_normal((6, 4, 3)).astype(np.float32), requires_grad=True)
    w = dg.ones(4, requires_grad=True)
    y = F.batch_norm(x, None, None, w, None, training=True)
    loss = (y * y * dg.tensor(rng.standard_normal((6, 4, 3)).astype(np.float32))).sum()
    loss.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    x.grad = None
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), g1)


@settings(**SETTINGS)
@given(v=st.integers(1, 12), n=st.integers(1, 40), d=st.integers(1, 5), pad=st.booleans(),
       scale=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_embedding_backward_grouped_sum_equals_add_at(v, n, d, pad, scale, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v, size=(n,))
    w = dg.tensor(rng.standard_normal((v, d)).astype(np.float32), requires_grad=True)
    g = rng.standard_normal((n, d)).astype(np.float32)
    padding_idx = int(rng.integers(0, v)) if pad else None
    y = F.embedding(dg.tensor(idx), w, padding_idx=padding_idx, scale_grad_by_freq=scale)
    y.backward(dg.tensor(g))
    flat = idx
    g2 = g
    if padding_idx is not None:
        keep = flat != padding_idx
        flat, g2 = flat[keep], g2[keep]
    if scale:
        g2 = g2 / np.bincount(flat, minlength=v)[flat][:, None].astype(np.float32)
    ref = np.zeros((v, d), np.float32)
    np.add.at(ref, flat, g2)
    np.testing.assert_allclose(w.grad.numpy(), ref, rtol=1e-5, atol=1e-6)


@settings(**SETTINGS)
@given(shape=st.lists(st.integers(1, 6), min_size=0, max_size=3), op=st.sampled_from(["sigmoid", "tanh"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
def test_sigmoid_tanh_first_order_backward_equals_formula(shape, op, dtype, seed):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * 4).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    x = dg.Tensor._make(np.array(a)).requires_grad_()
    y = getattr(dg, op)(x)
    y.backward(dg.Tensor._make(np.array(g)))
    yv = y.detach().numpy()
    ref = g * (yv * (1 - yv)) if op == "sigmoid" else g * (1 - yv * yv)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(x.grad.numpy(), ref, rtol=tol, atol=tol)
    assert x.grad.dtype == x.dtype
    # the graph route (create_graph=True) still gives the same first derivative
    x2 = dg.Tensor._make(np.array(a)).requires_grad_()
    (gx,) = dg.autograd.grad(getattr(dg, op)(x2), x2, dg.Tensor._make(np.array(g)), create_graph=True)
    np.testing.assert_allclose(gx.detach().numpy(), ref, rtol=tol, atol=tol)


# ---- the engine: copy-free ownership and in-place accumulation ---------------------------------

def _grads_of(build, inplace):
    import deepgrad.autograd.function as AF
    saved = AF._add_into
    if not inplace:
        AF._add_into = lambda old, g, create_graph: False
    try:
        leaves, loss = build()
        loss.backward()
        return [p.grad.numpy().copy() for p in leaves]
    finally:
        AF._add_into = saved


@settings(**SETTINGS)
@given(n=st.integers(1, 6), d=st.integers(1, 5), uses=st.lists(st.sampled_from(["relu", "sigmoid", "tanh", "mul", "id", "sum"]),
       min_size=1, max_size=5), seed=st.integers(0, 2**31 - 1))
def test_engine_inplace_accumulation_equals_out_of_place(n, d, uses, seed):
    rng = np.random.default_rng(seed)
    xa = rng.standard_normal((n, d)).astype(np.float32)
    wa = rng.standard_normal((d, d)).astype(np.float32)

    def build():
        x = dg.tensor(xa, requires_grad=True)
        w = dg.tensor(wa, requires_grad=True)
        h = x @ w
        terms = []
        for u in uses:                      # h (and x) feed several consumers: gradients meet
            t = {"relu": h.relu, "sigmoid": h.sigmoid, "tanh": h.tanh, "mul": lambda: h * x,
                 "id": lambda: h + 0, "sum": lambda: h.sum(0, keepdim=True).expand(n, d)}[u]()
            terms.append(t)
        loss = terms[0]
        for t in terms[1:]:
            loss = loss + t
        return [x, w], (loss * loss).sum()
    for a, b in zip(_grads_of(build, True), _grads_of(build, False)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_engine_never_changes_a_gradient_someone_holds():
    x = dg.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    u = x * 3
    v = u + 0
    v.retain_grad()
    stored = []
    v.register_hook(lambda g: stored.append(g))
    c = dg.tensor(np.full((2, 3), 2.0, np.float32))
    loss = (v * c).sum() + u.sin().sum() + (u * u).sum()
    loss.backward()
    np.testing.assert_array_equal(stored[0].numpy(), c.numpy())
    np.testing.assert_array_equal(v.grad.numpy(), c.numpy())
    ua = 3 * np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(x.grad.numpy(), 3 * (2 + np.cos(ua) + 2 * ua), rtol=1e-6)
    # two leaves fed the very same gradient never share memory
    a = dg.ones(3, requires_grad=True)
    b = dg.ones(3, requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.numpy()[...] = 5
    np.testing.assert_array_equal(b.grad.numpy(), np.ones(3, np.float32))
    # a user's gradient argument is never adopted as .grad
    z = dg.ones(3, requires_grad=True)
    gz = dg.ones(3)
    z.backward(gz)
    z.grad.numpy()[...] = 7
    np.testing.assert_array_equal(gz.numpy(), np.ones(3, np.float32))
