"""Training steps in float32, float16 and bfloat16 (parameters, activations and gradients all in
that dtype), deepgrad and PyTorch, and the same steps under bfloat16 CPU autocast.

    python benchmarks/bench_precision.py [--only mlp,lenet5] [--threads 1] [--number 3] [--repeat 7]

Cases: the MLP 784-512-512-10 (ReLU, batch 128) and LeNet-5 (batch 128, 1x28x28), cross-entropy,
SGD with momentum 0.9. For each case the six (or eight) step functions are timed in alternating
rounds in one process (benchmarks/_timing.py's discipline, extended to several callables) and the
medians are printed with two ratios: each dtype against the same library's float32 step (the
issue's target: at most 1.5x for deepgrad), and deepgrad against PyTorch in that dtype.

NumPy has no float16/bfloat16 BLAS and no vectorised float16 arithmetic; deepgrad computes in
float32 and rounds each op's result (deepgrad/ops/_lowp.py), so its low-precision step costs the
float32 step plus the conversions (one instruction per 8 elements where the compiled kernel of
deepgrad/ops/_f16c.py is available; ``DEEPGRAD_F16C=0`` measures the NumPy conversions instead).
PyTorch's CPU kernels convert too (oneDNN uses native bf16/fp16 instructions only on CPUs that have
them: AVX512-BF16, AMX, AVX512-FP16).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import machine_header, threads_from_argv  # noqa: E402

if __name__ == "__main__":
    threads_from_argv(sys.argv[1:] if "--threads" in " ".join(sys.argv) else ["--threads", "1"])

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import deepgrad as dg  # noqa: E402
from bench_cnn import TorchLeNet5  # noqa: E402
from deepgrad import models  # noqa: E402


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def make_pair(case, dname, autocast=False, batch=128, seed=0):
    """(deepgrad step, torch step) for ``case`` with everything in ``dname`` (or float32 under
    bfloat16 autocast)."""
    dg.manual_seed(seed)
    if case == "mlp":
        md, mt = mlp(dg), mlp(torch)
    else:
        md, mt = models.lenet5(), TorchLeNet5()
    mt.load_state_dict({k: torch.tensor(np.array(v.numpy())) for k, v in md.state_dict().items()})
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    xd, yd, xt, yt = dg.tensor(x), dg.tensor(y), torch.tensor(x), torch.tensor(y)
    if not autocast:
        md.to(getattr(dg, dname))
        mt.to(getattr(torch, dname))
        xd, xt = xd.to(getattr(dg, dname)), xt.to(getattr(torch, dname))
    od = dg.optim.SGD(md.parameters(), lr=0.01, momentum=0.9)
    ot = torch.optim.SGD(mt.parameters(), lr=0.01, momentum=0.9)
    ld, lt = dg.nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def step_dg():
        od.zero_grad()
        if autocast:
            with dg.autocast("cpu", dtype=dg.bfloat16):
                loss = ld(md(xd), yd)
        else:
            loss = ld(md(xd), yd)
        loss.backward()
        od.step()

    def step_t():
        ot.zero_grad()
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = lt(mt(xt), yt)
        else:
            loss = lt(mt(xt), yt)
        loss.backward()
        ot.step()
    return step_dg, step_t


def time_many(fns, number, repeat, warmup=1, clock=time.perf_counter):
    """Median seconds per call of each callable, in alternating rounds."""
    for _ in range(warmup):
        for f in fns:
            f()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t0 = clock()
            for _ in range(number):
                f()
            times[i].append((clock() - t0) / number)
    return [statistics.median(t) for t in times]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="mlp,lenet5")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--number", type=int, default=3)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-autocast", action="store_true", help="skip the bfloat16-autocast rows")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time, or this process's CPU time (steadier on a machine shared with other jobs; "
                        "meaningful with --threads 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(machine_header())
    from deepgrad.ops import _f16c
    print("float16/bfloat16 conversions: " + ("compiled F16C/AVX2 kernel (ops/_f16c.py)" if _f16c.available()
          else f"NumPy ({_f16c.why_unavailable()})"))
    variants = [("float32", False), ("float16", False), ("bfloat16", False)]
    if not args.no_autocast:
        variants.append(("autocast bf16", True))
    for case in args.only.split(","):
        fns, names = [], []
        for dname, ac in variants:
            sd, st = make_pair(case, "float32" if ac else dname, autocast=ac)
            fns += [sd, st]
            names.append(dname)
        med = time_many(fns, args.number, args.repeat,
                        clock=time.process_time if args.clock == "cpu" else time.perf_counter)
        title = {"mlp": "MLP 784-512-512-10, batch 128", "lenet5": "LeNet-5, batch 128"}[case]
        print(f"\n{title}, SGD momentum, {args.threads} thread(s), {args.clock} time "
              f"[load average {os.getloadavg()[0]:.2f}]")
        print(f"{'dtype':<15}{'deepgrad':>11}{'torch':>11}{'dg/dg f32':>11}{'torch/f32':>11}{'dg/torch':>10}")
        d32, t32 = med[0], med[1]
        for i, name in enumerate(names):
            d, t = med[2 * i], med[2 * i + 1]
            print(f"{name:<15}{d * 1e3:>9.2f}ms{t * 1e3:>9.2f}ms{d / d32:>11.2f}{t / t32:>11.2f}{d / t:>10.2f}")


if __name__ == "__main__":
    main()
