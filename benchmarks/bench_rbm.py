"""RBM CD-1 update (784 visible x 500 hidden, batch 100), deepgrad vs the same update in PyTorch.

    python benchmarks/bench_rbm.py [--threads N] [--number 20] [--repeat 11]

One update, as ``deepgrad.models.RBM.step`` does it (Hinton's practical guide): hidden
probabilities of the data, sampled hidden states, visible probabilities, hidden probabilities of
the reconstruction, ``ΔW = momentum·ΔW + lr·((h0ᵀv0 - h1ᵀv1)/n - weight_decay·W)`` and the same for
the biases, then the batch's reconstruction error read back as a Python float. The PyTorch twin
is written with torch tensor ops and in-place updates. Both are timed in alternating rounds in
one process (issue 11's goal: ratio <= 1.0).
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
from deepgrad.models import RBM  # noqa: E402


def torch_cd1(W, b, c, vel, v0, lr=0.1, momentum=0.9, weight_decay=2e-4):
    def step():
        with torch.no_grad():
            h0 = torch.sigmoid(torch.addmm(c, v0, W.t()))
            hs = (torch.rand_like(h0) < h0).to(v0.dtype)
            v1 = torch.sigmoid(torch.addmm(b, hs, W))
            h1 = torch.sigmoid(torch.addmm(c, v1, W.t()))
            n = v0.shape[0]
            dW = (h0.t() @ v0 - h1.t() @ v1) / n
            dW -= weight_decay * W
            for vl, g, p in zip(vel, (dW, (v0 - v1).mean(0), (h0 - h1).mean(0)), (W, b, c)):
                vl.mul_(momentum).add_(g, alpha=lr)
                p.add_(vl)
            return float(((v0 - v1) ** 2).sum(1).mean())
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--number", type=int, default=20)
    p.add_argument("--repeat", type=int, default=11)
    p.add_argument("--visible", type=int, default=784)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--batch", type=int, default=100)
    args = p.parse_args(argv)
    n = setup_threads(args.threads)          # prints machine_header()
    rng = np.random.default_rng(0)
    v0 = (rng.random((args.batch, args.visible)) < 0.2).astype(np.float32)
    rbm = RBM(args.visible, args.hidden, generator=dg.Generator().manual_seed(0))
    gen = dg.Generator().manual_seed(1)
    v_dg = dg.tensor(v0)

    def dg_step():
        return rbm.step(v_dg, lr=0.1, momentum=0.9, weight_decay=2e-4, generator=gen)

    W = torch.tensor(rbm.weight.detach().numpy().copy())
    b, c = torch.zeros(args.visible), torch.zeros(args.hidden)
    vel = [torch.zeros_like(W), torch.zeros_like(b), torch.zeros_like(c)]
    t_step = torch_cd1(W, b, c, vel, torch.tensor(v0))
    d, t = time_pair(dg_step, t_step, number=args.number, repeat=args.repeat, warmup=3)
    report([(f"RBM CD-1 {args.visible}x{args.hidden}, batch {args.batch}", d, t)],
           f"RBM update, float32, {n} threads (median per update)")


if __name__ == "__main__":
    main()
