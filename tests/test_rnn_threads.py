"""The LSTM layer's time loops split between threads by batch rows (ops/recurrent.py ``_run_rows``).

With more than one BLAS thread the forward and backward loops run on row ranges in parallel
Python threads (single-threaded BLAS inside). The sequences of a batch are independent, so the
split result must equal the one-thread result: outputs, final states and every gradient, for
ragged (packed) batches, reverse direction, bidirectional stacks and uneven splits.
"""
import numpy as np
import pytest

import deepgrad as dg
from deepgrad.ops import recurrent as R
from deepgrad.ops.recurrent import rnn_layer


def _numpy_blas_threads():
    """NumPy's OpenBLAS thread count as the library reports it (the one the split pins), or []."""
    from deepgrad import _parallel
    lib = _parallel._openblas()
    return [] if lib is None else [int(lib[0]())]


def _run(dtype, reverse, ragged, given, seed=0, T=6, B=19, I=5, H=7):
    rng = np.random.default_rng(seed)
    shapes = [(T, B, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]
    ins = [dg.tensor(rng.standard_normal(s).astype(dtype)).requires_grad_(True) for s in shapes]
    ws = [dg.tensor(rng.standard_normal(s).astype(dtype)) for s in [(T, B, H), (B, H), (B, H)]]
    bs = None
    if ragged:
        bs = np.sort(rng.integers(1, B + 1, size=T))[::-1].copy()
        bs[0] = B
    outs = rnn_layer("LSTM", *ins, batch_sizes=bs, reverse=reverse)
    parts = [(o * w).sum() for o, w in zip(outs, ws)]
    loss = sum(parts[1:], parts[0]) if given == "all" else parts[1] + parts[2]
    loss.backward()
    return [o.detach().numpy() for o in outs] + [t.grad.numpy() for t in ins]


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse,ragged,given", [(False, False, "all"), (True, False, "last"),
                                                  (False, True, "all"), (True, True, "all")])
def test_split_rows_equal_one_thread(workers, dtype, reverse, ragged, given, monkeypatch):
    calls = []
    want = _run(dtype, reverse, ragged, given)
    monkeypatch.setattr(R, "_row_workers", lambda xp, B: calls.append(B) or workers)
    got = _run(dtype, reverse, ragged, given)
    assert calls, "the split path was not taken"
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(want, got):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(b, a, **tol)


def test_module_split_rows_equal_one_thread(monkeypatch):
    dg.manual_seed(0)
    m = dg.nn.LSTM(4, 6, num_layers=2, bidirectional=True)
    x = dg.randn(5, 17, 4)

    def grads():
        m.zero_grad()
        out, (h, c) = m(x)
        (out.sum() + (h * h).sum() + c.sum()).backward()
        return [out.detach().numpy()] + [p.grad.numpy().copy() for p in m.parameters()]
    want = grads()
    monkeypatch.setattr(R, "_row_workers", lambda xp, B: 2)
    got = grads()
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_split_restores_blas_threads_and_raises_worker_errors(monkeypatch):
    before = _numpy_blas_threads()
    monkeypatch.setattr(R, "_row_workers", lambda xp, B: 2)
    real = R._lstm_forward_rows

    class WorkerFailed(Exception):
        pass

    def failing(xp, A, *args):
        rows = args[6]
        if rows[0] > 0:
            raise WorkerFailed("worker failed")
        return real(xp, A, *args)
    monkeypatch.setattr(R, "_lstm_forward_rows", failing)
    with pytest.raises(WorkerFailed, match="worker failed"):
        rnn_layer("LSTM", dg.randn(3, 16, 2), None, None, dg.randn(8, 2), dg.randn(8, 2))
    assert _numpy_blas_threads() == before


def test_row_workers_small_batches_stay_in_one_thread():
    assert R._row_workers(np, 1) == 1
    assert R._row_workers(np, 2 * R._MIN_ROWS - 1) == 1
    assert 1 <= R._row_workers(np, 64) <= max(1, dg.get_num_threads())



def test_concurrent_splits_from_user_threads(monkeypatch):
    """Split loops started at once from several user threads: every row range runs exactly once,
    BLAS is single-threaded inside each, and the counts come back once the last one is done."""
    import threading
    import time
    before = _numpy_blas_threads()
    monkeypatch.setattr(R, "_row_workers", lambda xp, B: 3)
    seen, inside = [], []
    lock = threading.Lock()

    def fn(rows):
        time.sleep(0.01)
        with lock:
            seen.append(rows)
            inside.append(_numpy_blas_threads())

    threads = [threading.Thread(target=R._run_rows, args=(np, 30, True, fn)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted([(0, 10), (10, 20), (20, 30)] * 4)
    assert all(n == 1 for counts in inside for n in counts), (inside, before)
    assert _numpy_blas_threads() == before
