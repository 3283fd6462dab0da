"""Character-LSTM training step, deepgrad vs the identical PyTorch model.

Vocabulary 65, embedding 64, LSTM hidden 256 (one layer), sequence 64, batch 32, cross-entropy
over all steps, SGD. Both models start from the same weights and see the same batches; the two
steps are timed alternately in one process (benchmarks/_timing.py), then deepgrad's step is
profiled.

    python benchmarks/bench_rnn.py [--repeat 7] [--number 3] [--threads N] [--profile 12] [--clock wall|cpu]

Both libraries run on the same number of threads (default 1: the BLAS pools are pinned through
the environment before NumPy loads, torch with set_num_threads), so the ratio compares the
implementations rather than how each one schedules threads on a shared machine. ``--clock cpu``
times with the process's CPU clock instead of the wall clock: at one thread on a machine shared
with other jobs it is far steadier (time spent waiting for a core is not counted); at more than
one thread it adds up the threads' time and says nothing about the wall time.
"""
from __future__ import annotations

import argparse
import functools
import cProfile
import os
import pstats
import sys


def _threads_from_argv(default=1):
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return default


_N_THREADS = _threads_from_argv()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(_N_THREADS)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import deepgrad as dg  # noqa: E402
import deepgrad.nn as dnn  # noqa: E402
import deepgrad.nn.functional as DF  # noqa: E402
from _timing import clock_arg, load_average, setup_threads, time_pair  # noqa: E402

V, E, H, T, B = 65, 64, 256, 64, 32


class DGCharLSTM(dnn.Module):
    def __init__(self):
        super().__init__()
        self.embed = dnn.Embedding(V, E)
        self.lstm = dnn.LSTM(E, H)
        self.head = dnn.Linear(H, V)

    def forward(self, x):
        out, _ = self.lstm(self.embed(x))
        return self.head(out.reshape(T * B, H))


class TorchCharLSTM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H)
        self.head = torch.nn.Linear(H, V)

    def forward(self, x):
        out, _ = self.lstm(self.embed(x))
        return self.head(out.reshape(T * B, H))


def build(lr=0.5):
    tm = TorchCharLSTM()
    dm = DGCharLSTM()
    for n, p in tm.named_parameters():
        dm.get_parameter(n).array[...] = p.detach().numpy()
    rng = np.random.default_rng(0)
    data = rng.integers(0, V, size=(8, T + 1, B))
    batches = [(d[:-1], d[1:].reshape(-1)) for d in data]
    dopt = dg.optim.SGD(dm.parameters(), lr=lr)
    topt = torch.optim.SGD(tm.parameters(), lr=lr)
    dbat = [(dg.tensor(x), dg.tensor(y)) for x, y in batches]
    tbat = [(torch.tensor(x), torch.tensor(y)) for x, y in batches]
    it = [0, 0]

    def step_dg():
        x, y = dbat[it[0] % len(dbat)]
        it[0] += 1
        dopt.zero_grad()
        loss = DF.cross_entropy(dm(x), y)
        loss.backward()
        dopt.step()
        return loss.item()

    def step_torch():
        x, y = tbat[it[1] % len(tbat)]
        it[1] += 1
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tm(x), y)
        loss.backward()
        topt.step()
        return loss.item()

    return step_dg, step_torch



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", type=int, default=12, help="profile entries to show (0: no profile)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    n = setup_threads(args.threads)
    step_dg, step_torch = build()
    # same weights, same batches: the losses agree step by step
    for _ in range(3):
        ld, lt = float(step_dg()), float(step_torch())
        assert abs(ld - lt) < 1e-3 * max(1.0, abs(lt)), (ld, lt)
    print(f"char-LSTM training step: vocab {V}, embed {E}, hidden {H}, seq {T}, batch {B}; {n} threads")
    print(f"losses agree after 3 SGD steps: deepgrad {ld:.5f} torch {lt:.5f}")
    pair = functools.partial(time_pair, clock=clock_arg(args.clock))
    td, tt = pair(step_dg, step_torch, number=args.number, repeat=args.repeat, warmup=2)
    print(f"deepgrad {td * 1e3:8.2f} ms/step   torch {tt * 1e3:8.2f} ms/step   ratio {td / tt:.2f}   "
          f"({args.clock} clock, load average {load_average()})")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            step_dg()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
