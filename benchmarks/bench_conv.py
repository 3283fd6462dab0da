"""conv2d and max_pool2d, forward + backward, deepgrad vs PyTorch (same process, alternating rounds).

    python benchmarks/bench_conv.py [--number N] [--repeat R] [--threads T]

Each case runs the op on float32 inputs that require grad and back-propagates a fixed upstream
gradient (a C-contiguous NCHW array, as a loss would hand it over). The ratio column is
deepgrad's median time over PyTorch's: below 1 is faster than PyTorch.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

import deepgrad as dg  # noqa: E402
from deepgrad.ops import conv as C, pool as P  # noqa: E402
from _timing import setup_threads  # noqa: E402


def time_ratio(fn_dg, fn_torch, number, repeat, warmup=2):
    """Alternating rounds; returns (median deepgrad s, median torch s, median per-round ratio)."""
    for _ in range(warmup):
        fn_dg()
        fn_torch()
    td, tt, rr = [], [], []
    for r in range(repeat):
        order = (fn_dg, fn_torch) if r % 2 == 0 else (fn_torch, fn_dg)
        times = {}
        for fn in order:
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times[fn] = (time.perf_counter() - t0) / number
        td.append(times[fn_dg])
        tt.append(times[fn_torch])
        rr.append(times[fn_dg] / times[fn_torch])
    return statistics.median(td), statistics.median(tt), statistics.median(rr)


def report(rows, title):
    print(f"\n{title}")
    print(f"{'case':<38}{'deepgrad':>11}{'torch':>11}{'ratio':>8}")
    for name, d, t, r in rows:
        print(f"{name:<38}{d * 1e3:>9.2f}ms{t * 1e3:>9.2f}ms{r:>8.2f}")

CONV_CASES = [
    ("LeNet conv1 (128,1,28,28)->6@5x5", (128, 1, 28, 28), 6, 5, 0),
    ("(64,32,26,26)->64@3x3", (64, 32, 26, 26), 64, 3, 0),
    ("ResNet-20 (32,16,32,32)->16@3x3 p1", (32, 16, 32, 32), 16, 3, 1),
]
POOL_CASES = [
    ("max_pool2d 2x2 (128,6,24,24)", (128, 6, 24, 24)),
    ("max_pool2d 2x2 (64,64,24,24)", (64, 64, 24, 24)),
]


def conv_pair(shape, out_ch, k, pad, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((out_ch, shape[1], k, k)) * 0.1).astype(np.float32)
    b = rng.standard_normal(out_ch).astype(np.float32)
    Ho = shape[2] + 2 * pad - k + 1
    g = rng.standard_normal((shape[0], out_ch, Ho, shape[3] + 2 * pad - k + 1)).astype(np.float32)
    dx, dw, db = (dg.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    dgg, tg = dg.tensor(g), torch.tensor(g)

    def run_dg():
        dx.grad = dw.grad = db.grad = None
        C.conv2d(dx, dw, db, padding=pad).backward(dgg)

    def run_torch():
        tx.grad = tw.grad = tb.grad = None
        TF.conv2d(tx, tw, tb, padding=pad).backward(tg)

    run_dg(), run_torch()
    for a, t in ((dx, tx), (dw, tw), (db, tb)):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-3)
    return run_dg, run_torch


def pool_pair(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2)).astype(np.float32)
    dx, tx = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    dgg, tg = dg.tensor(g), torch.tensor(g)

    def run_dg():
        dx.grad = None
        P.max_pool2d(dx, 2).backward(dgg)

    def run_torch():
        tx.grad = None
        TF.max_pool2d(tx, 2).backward(tg)

    run_dg(), run_torch()
    np.testing.assert_array_equal(dx.grad.numpy(), tx.grad.numpy())
    return run_dg, run_torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=3, help="calls per timing round")
    ap.add_argument("--repeat", type=int, default=9, help="alternating rounds (the median is reported)")
    ap.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: all)")
    args = ap.parse_args(argv)
    n = setup_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for name, shape, o, k, pad in CONV_CASES:
        fd, ft = conv_pair(shape, o, k, pad, rng)
        rows.append((name, *time_ratio(fd, ft, args.number, args.repeat)))
    for name, shape in POOL_CASES:
        fd, ft = pool_pair(shape, rng)
        rows.append((name, *time_ratio(fd, ft, args.number * 3, args.repeat)))
    report(rows, f"conv2d / max_pool2d forward+backward, float32, {n} threads (ratio = deepgrad / torch)")
    return rows


if __name__ == "__main__":
    main()
