"""deepgrad._parallel: the chunks of the convolutions and the rows of Linear's GEMMs shared by
deepgrad's own threads (OpenBLAS pinned to one thread meanwhile). On random shapes the threaded
result equals the one-thread result, including the shapes where the split must not be taken
(one chunk, small or non-2-d products, mixed dtypes, integers); the BLAS thread count is
restored; errors propagate."""
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import deepgrad as dg
from deepgrad import _parallel
from deepgrad.ops import conv as C

SETTINGS = settings(max_examples=20, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture
def two_threads():
    before = dg.get_num_threads()
    dg.set_num_threads(2)
    try:
        yield
    finally:
        dg.set_num_threads(before)


def _serial(run):
    """``run()`` with deepgrad's threading off (the flag restored either way)."""
    _parallel._FAST = False
    try:
        return run()
    finally:
        _parallel._FAST = True


def test_thread_count_restored_and_pinned_inside(two_threads):
    if _parallel._openblas() is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: nothing is pinned")
    seen = []

    def fn(item, slot):
        seen.append((item, slot, _parallel._openblas()[0]()))

    used = _parallel.run_chunks(fn, range(6))
    assert used == 2
    assert sorted(i for i, _, _ in seen) == list(range(6))
    assert {n for _, _, n in seen} == {1}                 # OpenBLAS at one thread inside
    assert {s for _, s, _ in seen} <= {0, 1}
    assert dg.get_num_threads() == 2 and _parallel.threads() == 2
    with _parallel.single_blas_thread():
        with _parallel.single_blas_thread():
            assert _parallel._openblas()[0]() == 1 and _parallel.threads() == 2
        assert _parallel._openblas()[0]() == 1
    assert _parallel._openblas()[0]() == 2


def test_run_chunks_one_thread_and_nested(two_threads):
    out = []
    assert _parallel.run_chunks(lambda i, s: out.append(i), [7]) == 1       # one chunk: the caller
    assert out == [7]
    inner = []

    def outer(i, slot):     # a kernel calling a kernel: the inner loop stays in its thread
        inner.append(_parallel.run_chunks(lambda j, s: None, range(4)) if slot else 1)

    _parallel.run_chunks(outer, range(8))
    assert set(inner) == {1}
    dg.set_num_threads(1)
    assert _parallel.run_chunks(lambda i, s: None, range(8)) == 1


def test_run_chunks_error_propagates(two_threads):
    def fn(i, slot):
        if i == 3:
            raise ValueError("chunk 3")
    with pytest.raises(ValueError, match="chunk 3"):
        _parallel.run_chunks(fn, range(8))
    assert dg.get_num_threads() == 2


def test_run_chunks_from_two_user_threads(two_threads):
    res, errs = {}, []

    def user(k):
        try:
            acc = np.zeros(16)

            def fn(i, slot):
                acc[i] = i * k
            _parallel.run_chunks(fn, range(16))
            res[k] = acc
        except Exception as e:      # noqa: BLE001
            errs.append(e)
    ts = [threading.Thread(target=user, args=(k,)) for k in (1, 2, 3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs
    for k in (1, 2, 3):
        np.testing.assert_array_equal(res[k], np.arange(16) * k)
    assert dg.get_num_threads() == 2


@SETTINGS
@given(m=st.integers(1, 300), k=st.integers(1, 200), n=st.integers(1, 150),
       dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int64]),
       ta=st.booleans(), tb=st.booleans())
@example(m=128, k=400, n=120, dtype=np.float32, ta=False, tb=True)      # LeNet-5 fc1: split
@example(m=120, k=128, n=400, dtype=np.float32, ta=True, tb=False)      # its weight gradient
@example(m=3, k=5000, n=300, dtype=np.float64, ta=False, tb=False)      # few rows: not split
def test_matmul_equals_plain(two_threads, m, k, n, dtype, ta, tb):
    rng = np.random.default_rng(m * 7 + k)
    a = (rng.standard_normal((k, m)).T if ta else rng.standard_normal((m, k))).astype(dtype)
    b = (rng.standard_normal((n, k)).T if tb else rng.standard_normal((k, n))).astype(dtype)
    got = _parallel.matmul(a, b)
    want = a @ b
    assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
    tol = 1e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(k))


def test_matmul_refuses_what_it_cannot_split(two_threads):
    rng = np.random.default_rng(0)
    a3 = rng.standard_normal((4, 300, 100)).astype(np.float32)
    b = rng.standard_normal((100, 90)).astype(np.float32)
    np.testing.assert_array_equal(_parallel.matmul(a3, b), a3 @ b)          # batched: plain
    a = rng.standard_normal((300, 100))
    np.testing.assert_array_equal(_parallel.matmul(a, b), a @ b)            # mixed dtypes: plain
    assert _parallel.matmul(a, b).dtype == np.float64
    with pytest.raises(ValueError):
        _parallel.matmul(a, b.T)                                            # NumPy's own error


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    cin, cout = groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4))
    k = draw(st.integers(1, 4))
    stride = draw(st.sampled_from([1, 1, 2]))
    pad = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, k - 2 * pad), 9))
    n = draw(st.integers(1, 7))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    nhwc = draw(st.booleans())
    return (n, cin, h, h), (cout, cin // groups, k, k), stride, pad, groups, dtype, nhwc


@SETTINGS
@given(case=conv_cases())
@example(case=((5, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1, np.float32, True))     # LeNet-5 conv2
@example(case=((5, 1, 12, 12), (6, 1, 5, 5), 1, 2, 1, np.float32, False))     # channels-first columns
@example(case=((4, 8, 9, 9), (8, 8, 3, 3), 1, 1, 1, np.float32, True))        # flipped-kernel xgrad
@example(case=((4, 8, 9, 9), (8, 8, 1, 1), 1, 0, 1, np.float64, True))        # 1x1 pointwise
@example(case=((3, 6, 14, 14), (16, 6, 5, 5), 2, 0, 1, np.float32, True))     # strided col2im
@example(case=((1, 4, 9, 9), (4, 2, 3, 3), 1, 1, 2, np.float64, True))        # one image: one chunk
def test_conv_threaded_equals_one_thread(two_threads, monkeypatch, case):
    """Chunks of one image each (a tiny ``_CHUNK_BYTES``), so every batch of 2+ images runs on
    two threads; the same chunking with threading off, and PyTorch, agree."""
    monkeypatch.setattr(C, "_CHUNK_BYTES", 1)
    xs, ws, stride, pad, groups, dtype, nhwc = case
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x = rng.standard_normal(xs).astype(dtype)
    if nhwc:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    w = (rng.standard_normal(ws) * 0.5).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)

    def run():
        tx, tw, tb = dg.from_numpy(x).requires_grad_(True), dg.tensor(w, requires_grad=True), \
            dg.tensor(b, requires_grad=True)
        y = dg.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)
        gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        y.backward(dg.tensor(gy))
        return [y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()]
    par, ser = run(), _serial(run)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for p, s in zip(par, ser):
        assert p.dtype == s.dtype and p.shape == s.shape
        np.testing.assert_allclose(p, s, rtol=tol, atol=tol)
    ttx = torch.tensor(x, requires_grad=True)
    ttw, ttb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    ty = TF.conv2d(ttx, ttw, ttb, stride, pad, 1, groups)
    ty.backward(torch.tensor(np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(dtype)))
    tol = 1e-10 if dtype == np.float64 else 2e-4 * np.sqrt(np.prod(ws[1:]))
    for p, t in zip(par, [ty.detach().numpy(), ttx.grad.numpy(), ttw.grad.numpy(), ttb.grad.numpy()]):
        np.testing.assert_allclose(p, t, rtol=tol, atol=tol)
    assert dg.get_num_threads() == 2


def test_set_and_get_num_threads_inside_a_pinned_block(two_threads):
    if _parallel._openblas() is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS: nothing is pinned")
    with _parallel.single_blas_thread():
        assert dg.get_num_threads() == 2              # the count in force, not the pinned 1
        dg.set_num_threads(3)
        assert _parallel._openblas()[0]() == 1 and dg.get_num_threads() == 3
    assert _parallel._openblas()[0]() == 3 and dg.get_num_threads() == 3


@SETTINGS
@given(n=st.integers(1, 7), c=st.integers(1, 4), h=st.integers(2, 9), k=st.integers(1, 3),
       stride=st.sampled_from([None, 1, 2]), nhwc=st.booleans(), ties=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
@example(n=6, c=6, h=8, k=2, stride=None, nhwc=True, ties=True, dtype=np.float32)    # LeNet-5: tiles
@example(n=1, c=3, h=5, k=3, stride=1, nhwc=False, ties=False, dtype=np.float64)     # one image
def test_max_pool_threaded_equals_one_thread(two_threads, monkeypatch, n, c, h, k, stride, nhwc, ties, dtype):
    """Every max pool split over images (``_PAR_MIN`` = 1): values, indices and gradients equal
    the one-thread pass and PyTorch's, bit for bit."""
    from deepgrad.ops import pool as P
    monkeypatch.setattr(P, "_PAR_MIN", 1)
    if k > h:
        k = h
    a = np.random.default_rng(n * 100 + h).standard_normal((n, c, h, h))
    if ties:
        a = np.maximum(np.round(a * 2), 0)
    x = a.astype(dtype)
    if nhwc:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    def run():
        t = dg.from_numpy(x).requires_grad_(True)
        y, idx = dg.nn.functional.max_pool2d(t, k, stride, return_indices=True)
        g = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
        y.backward(dg.tensor(g))
        return y.detach().numpy(), idx.numpy(), t.grad.numpy(), g
    par, ser = run(), _serial(run)
    for p_, s_ in zip(par, ser):
        np.testing.assert_array_equal(p_, s_)
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = TF.max_pool2d(tx, k, stride, return_indices=True)
    ty.backward(torch.tensor(par[3]))
    np.testing.assert_array_equal(par[0], ty.detach().numpy())
    np.testing.assert_array_equal(par[1], tidx.numpy())
    np.testing.assert_allclose(par[2], tx.grad.numpy(), rtol=1e-12, atol=1e-6)
