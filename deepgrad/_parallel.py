"""Coarse-grained CPU threading for deepgrad's chunked kernels (issue 14).

Why: NumPy's OpenBLAS splits every GEMM above ~0.26 M multiply-adds over its threads, and its
threads meet several times inside one call, each meeting a spin-wait. When the process does not
have a core per thread to itself (a machine shared with other jobs, or two thread pools in one
process, as PyTorch's OpenMP pool beside OpenBLAS's in a benchmark), one descheduled thread
stalls the other for a scheduler time slice at every meeting. Measured on a 2-core AMD EPYC
(OpenBLAS 0.3.31 Haswell, load average 6-7 from other jobs), minimum of 30 runs: LeNet-5 conv2's
(1728 x 150) @ (150 x 16) im2col GEMM 169 us at one thread, 9.6 ms at two; ResNet-20's
(4096 x 144) @ (144 x 32) 0.47 ms and 21.6 ms; a column sum ``ones @ (36864, 64)`` 0.17 ms and
15.4 ms. A LeNet-5 training step took 24 ms of CPU at one thread and 130-330 ms at two.

So the convolutions split their work themselves, over the images of a batch (the 1 MB im2col
chunks they already loop over): ``run_chunks`` hands the chunks to ``threads`` Python threads that
pull the next chunk from a shared counter, with OpenBLAS pinned to one thread meanwhile (NumPy
releases the GIL in its copies, ufunc loops and BLAS calls, so the threads run in parallel). The
threads meet once per call, and wait by blocking, not by spinning; a thread that is not scheduled
simply takes no chunks, and the caller's thread does them all. The im2col copies and col2im adds
run in parallel too, which OpenBLAS's threading never covered. ``single_blas_thread()`` pins
OpenBLAS to one thread around a call whose split does not pay (matrix-vector products, narrow
GEMMs).

The thread count is BLAS's (``deepgrad.set_num_threads`` / ``OPENBLAS_NUM_THREADS``): one thread
means the plain loop, in the caller's thread, exactly as before. Pinning calls OpenBLAS's own
``openblas_set_num_threads`` through ctypes (~0.5 us; threadpoolctl's ``limit`` re-scans the
loaded libraries, ~14 us); where NumPy's BLAS is not OpenBLAS nothing is pinned.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
from contextlib import contextmanager

import numpy as np

_FAST = True          # off: every kernel runs its chunks in the caller's thread (tests compare)

_state = {"lib": False, "pool": None, "workers": 0, "depth": 0, "saved": None}
_lock = threading.Lock()
_local = threading.local()


def _openblas():
    """(get, set) of NumPy's OpenBLAS thread count as ctypes functions, or None."""
    if _state["lib"] is not False:
        return _state["lib"]
    found = None
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            if info.get("internal_api") != "openblas":
                continue
            lib = ctypes.CDLL(info["filepath"])
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", ""):
                    try:
                        get = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                        put = getattr(lib, f"{prefix}_set_num_threads{suffix}")
                    except AttributeError:
                        continue
                    get.restype, get.argtypes = ctypes.c_int, ()
                    put.restype, put.argtypes = None, (ctypes.c_int,)
                    found = (get, put)
                    break
                if found:
                    break
            if found:
                break
    except Exception:  # noqa: BLE001 - no threadpoolctl, no OpenBLAS: nothing to pin
        found = None
    _state["lib"] = found
    return found


def threads():
    """The thread count deepgrad's kernels use: BLAS's, as set before any pinning."""
    lib = _openblas()
    if lib is None:
        return 1
    with _lock:
        if _state["depth"]:
            return _state["saved"]
        return max(1, int(lib[0]()))


def pinned_count():
    """While some thread is inside ``single_blas_thread``: the thread count it will restore
    (what ``get_num_threads`` should report), else None."""
    with _lock:
        return _state["saved"] if _state["depth"] else None


def _count_set(n):
    """``set_num_threads(n)`` called while a block pins OpenBLAS: the block restores ``n`` on
    exit, and OpenBLAS stays at one thread until then. Returns whether a block was active."""
    lib = _openblas()
    with _lock:
        if not _state["depth"] or lib is None:
            return False
        _state["saved"] = max(1, int(n))
        lib[1](1)
        return True


@contextmanager
def single_blas_thread():
    """OpenBLAS at one thread inside the block (nested and concurrent blocks share one count;
    the last to leave restores the thread count found by the first to enter)."""
    lib = _openblas()
    if lib is None:
        yield
        return
    with _lock:
        if _state["depth"] == 0:
            _state["saved"] = max(1, int(lib[0]()))
            if _state["saved"] > 1:
                lib[1](1)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0 and _state["saved"] > 1:
                lib[1](_state["saved"])


def _pool(n):
    """A thread pool of at least ``n`` workers (made on first use, grown when asked for more)."""
    from concurrent.futures import ThreadPoolExecutor
    with _lock:
        if _state["pool"] is None or _state["workers"] < n:
            old = _state["pool"]
            _state["pool"] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="deepgrad-chunks",
                                                initializer=_mark_worker)
            _state["workers"] = n
            if old is not None:
                old.shutdown(wait=False)
        return _state["pool"]


def _mark_worker():
    _local.worker = True


def _after_fork():          # a forked child has the pool object but not its threads
    _state["pool"], _state["workers"], _state["depth"] = None, 0, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _capturing():
    """Whether ``torch.compile``'s recorder (deepgrad/compiler/_record.py) is capturing in this
    thread: it notes only the capturing thread's array calls, so the kernels run in it."""
    rec = sys.modules.get("deepgrad.compiler._record")
    return rec is not None and rec.active() is not None


def workers_for(nitems):
    """How many threads ``run_chunks`` would use for ``nitems`` chunks (1: the plain loop)."""
    if not _FAST or nitems < 2 or getattr(_local, "worker", False) or _capturing():
        return 1
    return min(threads(), nitems)


def run_chunks(fn, items, nthreads=None):
    """Call ``fn(item, slot)`` for every item, on ``nthreads`` threads (default
    ``workers_for(len(items))``) that pull items from a shared counter; ``slot`` in
    ``range(nthreads)`` names the thread, for per-thread scratch buffers. Items must write
    disjoint outputs. Exceptions propagate (the first one raised). Returns the thread count."""
    items = list(items)
    t = workers_for(len(items)) if nthreads is None else max(1, min(nthreads, len(items)))
    if t <= 1:
        for it in items:
            fn(it, 0)
        return 1
    nxt = iter(range(len(items)))
    take = threading.Lock()

    def work(slot):
        while True:
            with take:
                i = next(nxt, None)
            if i is None:
                return
            fn(items[i], slot)

    with single_blas_thread():
        pool = _pool(t - 1)
        futures = [pool.submit(work, s) for s in range(1, t)]
        try:
            work(0)
        finally:
            for f in futures:       # a worker that never started has nothing left to do
                f.cancel()
            for f in futures:
                if not f.cancelled():
                    f.exception()   # waits
        for f in futures:
            if not f.cancelled() and f.exception() is not None:
                raise f.exception()
    return t


def _pinned_matmul(a, b, out=None):
    with single_blas_thread():
        return np.matmul(a, b, out=out)


def gemm(a, b, out=None):
    """``np.matmul(a, b, out=out)`` with OpenBLAS at one thread, as every product inside
    deepgrad's kernels runs when deepgrad uses more than one thread (OpenBLAS's threaded and
    one-thread kernels round differently, so a product must not depend on which pool of threads
    calls it). Inside ``run_chunks`` OpenBLAS is pinned already; under ``torch.compile``'s
    capture the product is recorded as one call of ``_pinned_matmul`` so that its replays pin too."""
    lib = _state["lib"] if _state["lib"] is not False else _openblas()
    if _state["depth"] or lib is None or lib[0]() <= 1:     # pinned already, or one thread
        return np.matmul(a, b, out=out)
    if _capturing():
        rec = sys.modules["deepgrad.compiler._record"]
        return rec._call(_pinned_matmul, (a, b), {"out": out} if out is not None else {},
                         "np.matmul (one BLAS thread)")
    return _pinned_matmul(a, b, out)


_SPLIT_MIN = 1 << 21    # multiply-adds below which a product runs whole on one thread (~40 us)


def matmul(a, b):
    """``a @ b`` for 2-d NumPy arrays, its rows shared by deepgrad's threads when the product
    is large (``run_chunks``; each block one single-threaded GEMM written into its rows of the
    result), on one BLAS thread when it is small; anything else is plain ``a @ b``. The result
    is C-contiguous, as ``a @ b``'s."""
    if (not _FAST or not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray) or a.ndim != 2
            or b.ndim != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype
            or a.dtype.kind != "f" or getattr(_local, "worker", False)):
        return a @ b
    t = threads()
    if t <= 1:
        return a @ b
    m, k = a.shape
    n = b.shape[1]
    if m * n * k < _SPLIT_MIN or m < 2 * t:
        return gemm(a, b)
    out = np.empty((m, n), dtype=a.dtype)
    step = -(-m // t)
    blocks = [(i, min(m, i + step)) for i in range(0, m, step)]

    def block(rng, slot):
        gemm(a[rng[0]:rng[1]], b, out=out[rng[0]:rng[1]])

    run_chunks(block, blocks, t if workers_for(len(blocks)) > 1 else 1)
    return out
