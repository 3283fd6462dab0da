"""Full training steps (forward, backward, optimiser step), deepgrad vs the identical PyTorch model.

    python benchmarks/bench_train.py [--only mlp,autoencoder] [--threads N]

Cases (from the issues): the MLP 784-512-512-10 (ReLU, batch 128, SGD momentum 0.9,
cross-entropy) and the deep autoencoder 784-1000-500-250-30-250-500-1000-784 (sigmoids, batch 128,
MSE). Both frameworks start from the same weights and see the same batch; they are timed in
alternating rounds in one process and the median step times and their ratio are printed.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _timing import copy_weights, make_step, report, setup_threads, threads_from_argv, time_pair  # noqa: E402

threads_from_argv()  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402

import deepgrad as dg  # noqa: E402


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def autoencoder(lib):
    nn = lib.nn
    sizes = [784, 1000, 500, 250, 30, 250, 500, 1000, 784]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i != 3:  # the 30-unit code layer is linear, as in Hinton & Salakhutdinov (2006)
            layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def case_mlp(batch=128):
    rng = np.random.default_rng(0)
    xb = rng.random((batch, 1, 28, 28), dtype=np.float32)
    yb = rng.integers(0, 10, batch)
    m_dg, m_t = mlp(dg), mlp(torch)
    copy_weights(m_dg, m_t)
    s_dg = make_step(m_dg, dg.tensor(xb), dg.tensor(yb), dg.nn.CrossEntropyLoss(),
                     dg.optim.SGD(m_dg.parameters(), lr=0.01, momentum=0.9))
    s_t = make_step(m_t, torch.tensor(xb), torch.tensor(yb), torch.nn.CrossEntropyLoss(),
                    torch.optim.SGD(m_t.parameters(), lr=0.01, momentum=0.9))
    return "MLP 784-512-512-10, batch 128", s_dg, s_t


def case_autoencoder(batch=128):
    rng = np.random.default_rng(0)
    xb = rng.random((batch, 784), dtype=np.float32)
    m_dg, m_t = autoencoder(dg), autoencoder(torch)
    copy_weights(m_dg, m_t)
    s_dg = make_step(m_dg, dg.tensor(xb), dg.tensor(xb), dg.nn.MSELoss(),
                     dg.optim.SGD(m_dg.parameters(), lr=0.1, momentum=0.9))
    s_t = make_step(m_t, torch.tensor(xb), torch.tensor(xb), torch.nn.MSELoss(),
                    torch.optim.SGD(m_t.parameters(), lr=0.1, momentum=0.9))
    return "autoencoder 784-1000-...-30-...-784, b128", s_dg, s_t


CASES = {"mlp": case_mlp, "autoencoder": case_autoencoder}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(CASES))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--number", type=int, default=5)
    p.add_argument("--repeat", type=int, default=11)
    args = p.parse_args(argv)
    n = setup_threads(args.threads)
    rows = []
    for key in args.only.split(","):
        name, s_dg, s_t = CASES[key]()
        d, t = time_pair(s_dg, s_t, number=args.number, repeat=args.repeat, warmup=2)
        rows.append((name, d, t))
    report(rows, f"training step, float32, {n} threads (median per step)")


if __name__ == "__main__":
    main()
