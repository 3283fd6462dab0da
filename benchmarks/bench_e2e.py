"""End to end: the README's main job and a training step's memory, deepgrad vs PyTorch.

    python benchmarks/bench_e2e.py [--epochs 3] [--subset N] [--threads N] [--only epoch,rss]
                                   [--clock wall|cpu] [--profile N]

1. ``epoch``: one training epoch of ``deepgrad train mnist-lenet5`` as that command runs it (the
   recipe's data, its DataLoader, model, Adam, one-cycle schedule and ``Trainer`` with its
   accuracy metric), against the same training written in PyTorch the usual way
   (``torch.utils.data.DataLoader`` over a ``TensorDataset`` of the same standardised arrays,
   batch 128, shuffled, the same model, Adam and ``OneCycleLR`` stepped per batch, running
   loss and accuracy; both one-cycle schedules span 1000 epochs, so any number of measured
   epochs stays inside them at the same cost per step). Epochs alternate between the frameworks in one process; the median
   seconds per epoch and the ratio are printed. Evaluation is left out of both. ``--clock cpu``
   times with the process CPU clock (fair at one thread on a machine shared with other jobs);
   ``--profile N`` then prints the N costliest functions (own time) of one more deepgrad epoch
   under cProfile.
2. ``rss``: the peak resident memory (``VmHWM``, or ``ru_maxrss`` where /proc is missing) of a process
   that builds ResNet-20 and runs training steps (batch 32, SGD momentum) in one framework only,
   each framework in its own fresh subprocess, measured before and after the steps; the increase
   is what the steps themselves needed at their peak.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import threads_from_argv  # noqa: E402

threads_from_argv()  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---------------------------------------------------------------------------------------------
# 1. an epoch of mnist-lenet5
# ---------------------------------------------------------------------------------------------
def deepgrad_epoch_runner(subset):
    """A callable running one epoch of the mnist-lenet5 recipe through ``Trainer.fit``."""
    import deepgrad as dg
    from deepgrad.recipes import get_recipe
    from deepgrad.train import Trainer
    recipe = get_recipe("mnist-lenet5")
    # one long schedule (as the PyTorch side's): any number of measured epochs stays inside it
    hp = recipe.hparams(subset=subset, epochs=1000)
    dg.manual_seed(hp["seed"])
    splits = recipe.build_data(hp)
    train_loader, _, _ = recipe.build_loaders(hp, splits)
    model = recipe.build_model(hp)
    optimizer = recipe.build_optimizer(hp, model)
    sched = recipe.build_scheduler(hp, optimizer, len(train_loader))
    scheduler, interval = sched if isinstance(sched, tuple) else (sched, "epoch")
    trainer = Trainer(model, recipe.build_loss(hp), optimizer, metrics=recipe.metrics,
                      scheduler=scheduler, scheduler_interval=interval, verbose=0)
    x = splits.train.tensors[0].numpy() if hasattr(splits.train.tensors[0], "numpy") else splits.train.tensors[0]
    y = splits.train.tensors[1].numpy() if hasattr(splits.train.tensors[1], "numpy") else splits.train.tensors[1]

    def run():
        trainer.fit(train_loader, epochs=trainer.epoch + 1, verbose=0)
    return run, np.asarray(x), np.asarray(y), hp


def torch_epoch_runner(x, y, hp):
    """The same epoch written in PyTorch with its DataLoader."""
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, TensorDataset
    torch.manual_seed(hp["seed"])
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(inplace=True), nn.Linear(120, 84), nn.ReLU(inplace=True),
        nn.Linear(84, 10))
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                        batch_size=hp["batch_size"], shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=hp["lr"])
    # a fresh schedule per measured epoch would change nothing in cost; one long one is simpler
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp["lr"], epochs=1000,
                                                steps_per_epoch=len(loader), pct_start=0.25)
    loss_fn = nn.CrossEntropyLoss()

    def run():
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
            total += len(yb)
        return loss_sum / total, correct / total
    return run


def bench_epoch(args):
    import torch
    from _timing import clock_arg, setup_threads
    n = setup_threads(args.threads)
    clock = clock_arg(args.clock)
    run_dg, x, y, hp = deepgrad_epoch_runner(args.subset)
    run_t = torch_epoch_runner(x, y, hp)
    print(f"\nmnist-lenet5 training epoch ({len(x)} samples, batch {hp['batch_size']}, Adam + one-cycle), "
          f"{n} threads, data loading included, {args.clock} clock")
    td, tt = [], []
    for i in range(args.epochs):
        t0 = clock()
        run_dg()
        t1 = clock()
        run_t()
        t2 = clock()
        td.append(t1 - t0)
        tt.append(t2 - t1)
        print(f"  epoch {i + 1}: deepgrad {td[-1]:.2f} s   torch {tt[-1]:.2f} s", flush=True)
    d, t = statistics.median(td), statistics.median(tt)
    from _timing import load_average
    print(f"median per epoch: deepgrad {d:.2f} s   torch {t:.2f} s   ratio {d / t:.2f}   "
          f"[load average {load_average()}]")
    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        run_dg()
        prof.disable()
        print(f"\ndeepgrad epoch under cProfile (own time, top {args.profile}):")
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
    del torch


# ---------------------------------------------------------------------------------------------
# 2. peak RSS of ResNet-20 training steps, one framework per process
# ---------------------------------------------------------------------------------------------
def _peak_rss_kib():
    """The peak resident set of this process's address space in KiB: ``VmHWM`` of
    /proc/self/status (reset by exec; ``ru_maxrss`` is not on Linux: a child started from a big
    parent inherits the parent's high-water mark), else ``getrusage``'s ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_child(framework, steps, batch):
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    yb = rng.integers(0, 10, batch)
    if framework == "deepgrad":
        import deepgrad as dg
        from deepgrad.models import resnet20
        model = resnet20(num_classes=10)
        x, y = dg.tensor(xb), dg.tensor(yb)
        opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        loss_fn = dg.nn.CrossEntropyLoss()
    else:
        import torch
        sys.path.insert(0, HERE)
        model = _torch_resnet20()
        x, y = torch.tensor(xb), torch.tensor(yb)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        loss_fn = torch.nn.CrossEntropyLoss()
    before = _peak_rss_kib()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    after = _peak_rss_kib()
    print(json.dumps({"before_kib": before, "after_kib": after}))


def _torch_resnet20():
    """ResNet-20 (He et al. 2016, CIFAR variant, option A shortcuts) in PyTorch, the same layers
    as deepgrad.models.resnet20."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.pad = cout - cin
            self.stride = stride

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            sc = x
            if self.stride != 1 or self.pad:
                sc = x[:, :, ::self.stride, ::self.stride]
                sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            return F.relu(out + sc)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            layers, cin = [], 16
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                for i in range(3):
                    layers.append(Block(cin, cout, stride if i == 0 else 1))
                    cin = cout
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.layers(F.relu(self.bn(self.conv(x))))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
    return Net()


def bench_rss(args):
    from _timing import machine_header
    print(machine_header())
    print(f"\nResNet-20 training step, batch {args.rss_batch}, {args.rss_steps} steps, "
          f"one fresh process per framework: peak RSS (VmHWM)")
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    res = {}
    for fw in ("deepgrad", "torch"):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", fw,
                              "--rss-steps", str(args.rss_steps), "--rss-batch", str(args.rss_batch)],
                             env=env, capture_output=True, text=True, check=True)
        res[fw] = json.loads(out.stdout.strip().splitlines()[-1])
        r = res[fw]
        print(f"  {fw:<9} peak {r['after_kib'] / 1024:8.1f} MiB   before the steps "
              f"{r['before_kib'] / 1024:8.1f} MiB   steps' increase {(r['after_kib'] - r['before_kib']) / 1024:7.1f} MiB")
    d, t = res["deepgrad"], res["torch"]
    print(f"ratio deepgrad / torch: peak {d['after_kib'] / t['after_kib']:.2f}, "
          f"increase {(d['after_kib'] - d['before_kib']) / max(1, t['after_kib'] - t['before_kib']):.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="epoch,rss")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--epochs", type=int, default=3, help="measured epochs per framework")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="after the timing, cProfile one deepgrad epoch and print its N costliest functions")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: perf_counter; cpu: process CPU time (for 1 thread on a loaded machine)")
    p.add_argument("--subset", type=int, default=None, help="first N training samples (quick runs)")
    p.add_argument("--rss-steps", type=int, default=3)
    p.add_argument("--rss-batch", type=int, default=32)
    p.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_child:
        _rss_child(args.rss_child, args.rss_steps, args.rss_batch)
        return
    only = args.only.split(",")
    if "epoch" in only:
        bench_epoch(args)
    if "rss" in only:
        bench_rss(args)


if __name__ == "__main__":
    main()
