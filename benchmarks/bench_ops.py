"""Per-op overhead: forward + backward of small (64x64) ops, deepgrad vs PyTorch eager.

    python benchmarks/bench_ops.py [--size 64]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _timing import report, setup_threads, threads_from_argv, time_pair  # noqa: E402

threads_from_argv()  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402

import deepgrad as dg  # noqa: E402


def cases(n):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    idx = np.arange(0, n, 2)
    ops = {
        "add": lambda x, y: x + y,
        "mul": lambda x, y: x * y,
        "matmul": lambda x, y: x @ y,
        "relu": lambda x, y: x.relu(),
        "sum": lambda x, y: x.sum(),
        "getitem[1:-1, ::2]": lambda x, y: x[1:-1, ::2],
        "getitem[int array]": None,
        "exp+tanh": lambda x, y: x.exp().tanh(),
    }
    for name, f in ops.items():
        if f is None:
            fd = lambda x, y: x[dg.tensor(idx)]
            ft = lambda x, y: x[torch.tensor(idx)]
        else:
            fd = ft = f
        yield name, fd, ft, a, b


def step_fn(lib, f, a, b):
    if lib is dg:
        x, y = dg.tensor(a, requires_grad=True), dg.tensor(b, requires_grad=True)
        ones = None

        def run():
            x.grad = y.grad = None
            out = f(x, y)
            out.backward(ones if out.ndim == 0 else dg.ones(*out.shape))
        return run
    x, y = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)

    def run():
        x.grad = y.grad = None
        out = f(x, y)
        out.backward(None if out.ndim == 0 else torch.ones(out.shape))
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--number", type=int, default=200)
    p.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: all)")
    args = p.parse_args(argv)
    setup_threads(args.threads)
    rows = []
    for name, fd, ft, a, b in cases(args.size):
        d, t = time_pair(step_fn(dg, fd, a, b), step_fn(torch, ft, a, b), number=args.number)
        rows.append((name, d, t))
    report(rows, f"forward+backward, {args.size}x{args.size} float32 (median per call)")
    ratios = [d / t for _, d, t in rows]
    print(f"geometric mean ratio: {float(np.exp(np.mean(np.log(ratios)))):.2f}")


if __name__ == "__main__":
    main()
