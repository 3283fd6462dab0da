"""deepgrad.compile: a captured-and-replayed training step against eager deepgrad, PyTorch eager
and torch.compile (when it runs on this machine), same process, alternating rounds.

    python benchmarks/bench_compile.py [--only mlp,char_lstm,resnet20] [--threads 1] [--clock cpu] [--ab]

Cases: the MLP 784-512-512-10 (batch 128, SGD momentum; mlp_b16: batch 16, where per-op overhead
matters more), the char-LSTM of bench_rnn.py (V=65,
E=64, H=256, T=64, B=32, SGD), ResNet-20 (batch 32, 3x32x32, SGD momentum); optional: lenet5,
autoencoder. The step is ``opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward();
opt.step()``, compiled with ``deepgrad.compile`` as a function. Also printed: the capture time
(the first two calls record: without, then with, existing .grad tensors) and the number of nodes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import clock_arg, copy_weights, load_average, setup_threads, threads_from_argv  # noqa: E402

threads_from_argv(sys.argv[1:] if any(a.startswith("--threads") for a in sys.argv) else ["--threads", "1"])

import numpy as np  # noqa: E402
import torch  # noqa: E402

import deepgrad as dg  # noqa: E402


def _mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def _autoencoder(lib):
    nn = lib.nn
    sizes = [784, 1000, 500, 250, 30, 250, 500, 1000, 784]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i != 3:
            layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def _charlstm(lib, V=65, E=64, H=256, T=64, B=32):
    nn = lib.nn

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H)
            self.head = nn.Linear(H, V)

        def forward(self, x):
            out, _ = self.lstm(self.embed(x))
            return self.head(out.reshape(T * B, H))
    return CharLSTM()


def _data(case):
    rng = np.random.default_rng(0)
    if case in ("mlp", "mlp_b16"):
        b = 16 if case == "mlp_b16" else 128
        return rng.random((b, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, b)
    if case == "autoencoder":
        x = rng.random((128, 784), dtype=np.float32)
        return x, x
    if case == "char_lstm":
        d = rng.integers(0, 65, size=(65, 32))
        return d[:-1], d[1:].reshape(-1)
    if case == "lenet5":
        return rng.standard_normal((128, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 128)
    return rng.standard_normal((32, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, 32)


def _models(case):
    if case in ("mlp", "mlp_b16"):
        return _mlp(dg), _mlp(dg), _mlp(torch), _mlp(torch), 0.01, 0.9
    if case == "autoencoder":
        return _autoencoder(dg), _autoencoder(dg), _autoencoder(torch), _autoencoder(torch), 0.1, 0.9
    if case == "char_lstm":
        return _charlstm(dg), _charlstm(dg), _charlstm(torch), _charlstm(torch), 0.5, 0.0
    sys.path.insert(0, os.path.dirname(__file__))
    import bench_cnn
    from deepgrad import models
    if case == "lenet5":
        return (models.lenet5(), models.lenet5(), bench_cnn.TorchLeNet5(), bench_cnn.TorchLeNet5(), 0.01, 0.9)
    return (models.resnet20(), models.resnet20(), bench_cnn.TorchResNet20(), bench_cnn.TorchResNet20(),
            0.01, 0.9)


def _step(lib, model, x, y, lr, momentum, mse):
    opt = lib.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    F = lib.nn.functional
    lossf = F.mse_loss if mse else F.cross_entropy

    def step(x, y):
        opt.zero_grad()
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _compiled_without_round2(case, d1, xd, yd, lr, mom, mse):
    """The same step compiled with the second round's rewrites off (flat SGD, mask casts, padding
    zero fills, fast np.tile/as_strided, dtype constants): the A/B of ``--ab``."""
    from deepgrad.compiler import _program, config
    d4 = _models(case)[0]
    d4.load_state_dict(d1.state_dict())
    s = dg.compile(_step(dg, d4, xd, yd, lr, mom, mse))
    old = dict(_program.PASSES), config.flat_optimizer
    try:
        for k in _program.PASSES:
            _program.PASSES[k] = False
        config.flat_optimizer = False
        s(xd, yd)
        s(xd, yd)
    finally:
        _program.PASSES.update(old[0])
        config.flat_optimizer = old[1]
    return s


def build(case, memplan=False, tcompile=True, ab=False):
    xb, yb = _data(case)
    d1, d2, t1, t2, lr, mom = _models(case)
    for t in (t1, t2):
        copy_weights(d1, t)
    d2.load_state_dict(d1.state_dict())
    mse = case == "autoencoder"
    xd, yd = dg.tensor(xb), dg.tensor(yb)
    xt, yt = torch.tensor(xb), torch.tensor(yb)
    s_eager = _step(dg, d1, xd, yd, lr, mom, mse)
    s_comp = dg.compile(_step(dg, d2, xd, yd, lr, mom, mse))
    s_plan = None
    if memplan:    # the same step compiled with the memory plan on (its own copy of the model)
        from deepgrad.compiler import config
        d3 = _models(case)[0]
        d3.load_state_dict(d1.state_dict())
        s_plan = dg.compile(_step(dg, d3, xd, yd, lr, mom, mse))
        old, config.memory_plan = config.memory_plan, True
        try:
            s_plan(xd, yd)
            s_plan(xd, yd)
        finally:
            config.memory_plan = old
        pp = s_plan._compiled.last_program
        st = [pp.stats] + ([pp.bwd.stats] if getattr(pp, "bwd", None) is not None else [])
        print(f"  memory plan: {sum(x.get('pooled', 0) for x in st)} temporaries per step in "
              f"{sum(x.get('pool_buffers', 0) for x in st)} buffers "
              f"({sum(x.get('pool_bytes', 0) for x in st) / 2**20:.2f} MiB held); "
              f"{sum(x.get('pooled_bytes', 0) for x in st) / 2**20:.2f} MiB of fresh allocations "
              f"per step avoided")
    s_torch = _step(torch, t1, xt, yt, lr, mom, mse)
    s_tcomp = None
    try:
        if not tcompile:
            raise RuntimeError("skipped (--no-torch-compile)")
        s_tcomp = torch.compile(_step(torch, t2, xt, yt, lr, mom, mse))
        s_tcomp(xt, yt)
    except Exception as e:  # noqa: BLE001 - no C compiler, unsupported platform ...
        print(f"  torch.compile unavailable here: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
        s_tcomp = None
    # capture time: the first two calls record (no .grad yet, then with .grad)
    t0 = time.perf_counter()
    s_comp(xd, yd)
    t1_ = time.perf_counter()
    s_comp(xd, yd)
    t2_ = time.perf_counter()
    cf = s_comp._compiled
    prog = cf.last_program
    info = (t1_ - t0, t2_ - t1_, len(prog.nodes) if prog else None, cf.recordings, dict(cf.eager_reasons))
    fns = {"deepgrad eager": lambda: s_eager(xd, yd), "deepgrad compiled": lambda: s_comp(xd, yd),
           "torch eager": lambda: s_torch(xt, yt)}
    if s_plan is not None:
        fns["compiled + mem plan"] = lambda: s_plan(xd, yd)
    if ab:
        s_off = _compiled_without_round2(case, d1, xd, yd, lr, mom, mse)
        fns["compiled, round 1"] = lambda: s_off(xd, yd)
    if s_tcomp is not None:
        fns["torch.compile"] = lambda: s_tcomp(xt, yt)
    # the same result: compiled vs eager deepgrad after the same steps
    return fns, info


def time_all(fns, number, repeat, warmup=2, clock=time.perf_counter):
    for f in fns.values():
        for _ in range(warmup):
            f()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = clock()
            for _ in range(number):
                f()
            times[k].append((clock() - t0) / number)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="mlp,mlp_b16,char_lstm,resnet20")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--number", type=int, default=3)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-torch-compile", action="store_true")
    p.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                   help="cpu: the process CPU time (user + system, page faults included)")
    p.add_argument("--memplan", action="store_true",
                   help="also time the step compiled with compiler.config.memory_plan = True")
    p.add_argument("--ab", action="store_true",
                   help="also time the step compiled without the second round's rewrites")
    args = p.parse_args(argv)
    n = setup_threads(args.threads)
    print(f"deepgrad.compile, training steps, float32, {n} thread(s); load average {load_average()}")
    for case in args.only.split(","):
        fns, (cap1, cap2, nodes, recs, reasons) = build(case, args.memplan, not args.no_torch_compile, args.ab)
        print(f"\n{case}: capture {cap1 * 1e3:.0f} ms + {cap2 * 1e3:.0f} ms (two signatures), "
              f"{nodes} nodes replayed, {recs} recordings" + (f", eager: {reasons}" if reasons else ""))
        med = time_all(fns, args.number, args.repeat, clock=clock_arg(args.clock))
        base = med["torch eager"]
        for k, v in med.items():
            print(f"  {k:<20}{v * 1e3:>10.2f} ms  {v / base:>6.2f}x torch eager")
        if "compiled, round 1" in med:
            print(f"  compiled now / round 1: {med['deepgrad compiled'] / med['compiled, round 1']:.3f}")
        if "compiled + mem plan" in med:
            print(f"  compiled with / without the memory plan: "
                  f"{med['compiled + mem plan'] / med['deepgrad compiled']:.3f}")
        print(f"  [load average {load_average()}]")


if __name__ == "__main__":
    main()
