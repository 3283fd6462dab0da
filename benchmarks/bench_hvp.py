"""Hessian-vector product of a CNN's loss vs one training step, deepgrad vs PyTorch, in one
process, timed in alternating rounds (benchmarks/_timing.py).

    python benchmarks/bench_hvp.py [--only resnet20,lenet5] [--threads N] [--number N] [--repeat R]
                                   [--clock wall|cpu]

For each model: the median time of a training step's forward + backward, and of one exact
Hessian-vector product of the same loss in the parameters (forward, ``grad`` with
``create_graph=True``, then the gradient of ``<grad, v>``), in both libraries. The theory allows
an HVP about 2-4x a forward+backward (for a convolution exactly 3x: reverse-over-reverse runs
nine correlation-sized kernels per layer against the step's three); the ratios hvp/step and
deepgrad/torch are printed. ``--clock cpu`` times with the process's CPU clock instead of the wall
clock: at one thread on a machine shared with other jobs it is far steadier (it does not count
the time other processes hold the core).
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import threads_from_argv  # noqa: E402

if __name__ == "__main__":
    threads_from_argv()

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import deepgrad as dg  # noqa: E402
from deepgrad import models  # noqa: E402
from _timing import clock_arg, copy_weights, load_average, setup_threads, time_pair  # noqa: E402
from bench_cnn import TorchLeNet5, TorchResNet20  # noqa: E402

CASES = {"resnet20": (models.resnet20, TorchResNet20, (32, 3, 32, 32)),
         "lenet5": (models.lenet5, TorchLeNet5, (128, 1, 28, 28))}


def _fns(M, model, x, y, vs):
    ps = [p for p in model.parameters()]
    loss_fn = M.nn.functional.cross_entropy

    def step():
        loss = loss_fn(model(x), y)
        M.autograd.grad(loss, ps)

    def hvp():
        loss = loss_fn(model(x), y)
        gs = M.autograd.grad(loss, ps, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(gs, vs))
        M.autograd.grad(dot, ps)
    return step, hvp



def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="resnet20")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--number", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = p.parse_args(argv)
    n = setup_threads(args.threads)
    pair = functools.partial(time_pair, clock=clock_arg(args.clock))
    print(f"HVP vs training step, float32, {n} threads, {args.clock} clock [load average {load_average()}]")
    print(f"{'case':<10}{'step dg':>10}{'step torch':>12}{'hvp dg':>10}{'hvp torch':>11}"
          f"{'hvp/step dg':>13}{'hvp dg/torch':>14}")
    for key in args.only.split(","):
        mk_dg, mk_t, shape = CASES[key]
        dm, tm = mk_dg(), mk_t()
        copy_weights(dm, tm)
        dm.train()
        tm.train()
        rng = np.random.default_rng(0)
        x = rng.standard_normal(shape, dtype=np.float32)
        y = rng.integers(0, 10, shape[0])
        vs = [rng.standard_normal(tuple(q.shape)).astype(np.float32) for q in tm.parameters()]
        sd, hd = _fns(dg, dm, dg.tensor(x), dg.tensor(y), [dg.tensor(v) for v in vs])
        st, ht = _fns(torch, tm, torch.tensor(x), torch.tensor(y), [torch.tensor(v) for v in vs])
        t_sd, t_st = pair(sd, st, number=args.number, repeat=args.repeat, warmup=1)
        t_hd, t_ht = pair(hd, ht, number=args.number, repeat=args.repeat, warmup=1)
        print(f"{key:<10}{t_sd * 1e3:>8.1f}ms{t_st * 1e3:>10.1f}ms{t_hd * 1e3:>8.1f}ms{t_ht * 1e3:>9.1f}ms"
              f"{t_hd / t_sd:>13.2f}{t_hd / t_ht:>14.2f}")


if __name__ == "__main__":
    main()
