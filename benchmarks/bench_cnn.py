"""Full CNN training steps (forward, cross-entropy, backward, SGD momentum step), deepgrad vs the
identical PyTorch model, in one process, timed in alternating rounds (benchmarks/_timing.py).

    python benchmarks/bench_cnn.py [--only lenet5,mnist_cnn,resnet20] [--threads N]
                                   [--number N] [--repeat R] [--profile auto|always|never] [--top K]
                                   [--fast-paths on|compare] [--clock wall|cpu]

Cases: LeNet-5 (batch 128, 1x28x28), the lecture notes' MNIST CNN (conv-BN-conv-BN-pool-dropout-
FC-BN-FC, batch 64, 1x28x28) and the CIFAR ResNet-20 (batch 32, 3x32x32). The PyTorch twins have
the same parameter and buffer names, so deepgrad's state_dict is copied across; both models then
train on the same batch (dropout masks differ, which does not change the work). The median step
times and their ratio (deepgrad / PyTorch; below 1 is faster than PyTorch) are printed. When a
ratio is above 1 (``--profile auto``), the deepgrad step is run under cProfile and the top entries
by own time are printed, so the slow op is named.

``--threads`` (default: all cores) is applied to both libraries; NumPy's OpenBLAS reads it at
import, so this script sets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` before importing NumPy.
On a machine shared with other jobs, compare ratios rather than absolute times.
"""
from __future__ import annotations

import argparse
import os
import sys


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="lenet5,mnist_cnn,resnet20", help="comma list of: lenet5, mnist_cnn, resnet20")
    p.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: all cores)")
    p.add_argument("--number", type=int, default=3, help="steps per timing round")
    p.add_argument("--repeat", type=int, default=7, help="alternating rounds (the median is reported)")
    p.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                   help="cProfile the deepgrad step when its ratio is above 1 (auto), always or never")
    p.add_argument("--top", type=int, default=12, help="profile entries to print")
    p.add_argument("--fast-paths", choices=("on", "compare"), default="on",
                   help="compare: also time deepgrad with its conv/pool fast paths off (same process, "
                        "alternating rounds), to see what they contribute on this CPU")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: time with the process CPU clock (steadier at 1 thread on a loaded machine)")
    return p.parse_args(argv)


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import threads_from_argv  # noqa: E402

if __name__ == "__main__":
    threads_from_argv()  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from torch import nn as tnn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deepgrad as dg  # noqa: E402
from deepgrad import models  # noqa: E402
from _timing import clock_arg, copy_weights, make_step, report, setup_threads, time_pair  # noqa: E402


# ---- PyTorch twins (same state_dict names as deepgrad.models) ------------------------------------
class TorchLeNet5(tnn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(inplace=True), tnn.MaxPool2d(2, 2),
            tnn.Conv2d(6, 16, 5), tnn.ReLU(inplace=True), tnn.MaxPool2d(2, 2))
        self.classifier = tnn.Sequential(
            tnn.Linear(400, 120), tnn.ReLU(inplace=True), tnn.Linear(120, 84), tnn.ReLU(inplace=True),
            tnn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class TorchMnistCNN(tnn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 32, 3, 1)
        self.conv1_bn = tnn.BatchNorm2d(32)
        self.conv2 = tnn.Conv2d(32, 64, 3, 1)
        self.conv2_bn = tnn.BatchNorm2d(64)
        self.dropout1 = tnn.Dropout(0.25)
        self.fc1 = tnn.Linear(9216, 128)
        self.fc1_bn = tnn.BatchNorm1d(128)
        self.fc2 = tnn.Linear(128, num_classes)

    def forward(self, x):
        x = TF.relu(self.conv1_bn(self.conv1(x)))
        x = TF.relu(self.conv2_bn(self.conv2(x)))
        x = self.dropout1(TF.max_pool2d(x, 2))
        x = TF.relu(self.fc1_bn(self.fc1(x.flatten(1))))
        return TF.log_softmax(self.fc2(x), dim=1)


class TorchCifarBlock(tnn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.stride, self.extra = stride, planes - cin

    def forward(self, x):
        out = TF.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x[:, :, ::self.stride, ::self.stride] if self.stride != 1 else x
        if self.extra:      # option A: zero-padded extra channels
            sc = TF.pad(sc, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return TF.relu(out + sc)


class TorchResNet20(tnn.Module):
    def __init__(self, num_classes=10, n=3):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(16)
        cin, stages = 16, []
        for s, planes in enumerate((16, 32, 64)):
            blocks = []
            for i in range(n):
                blocks.append(TorchCifarBlock(cin, planes, 2 if s > 0 and i == 0 else 1))
                cin = planes
            stages.append(tnn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(64, num_classes)

    def forward(self, x):
        x = TF.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


# ---- cases --------------------------------------------------------------------------------------
def pair(name, dg_model, torch_model, shape, lr=0.01, seed=0):
    rng = np.random.default_rng(seed)
    xb = rng.standard_normal(shape, dtype=np.float32)
    yb = rng.integers(0, 10, shape[0])
    copy_weights(dg_model, torch_model)
    check_same_output(name, dg_model, torch_model, shape)
    dg_model.train()
    torch_model.train()
    s_dg = make_step(dg_model, dg.tensor(xb), dg.tensor(yb), dg.nn.CrossEntropyLoss(),
                     dg.optim.SGD(dg_model.parameters(), lr=lr, momentum=0.9))
    s_t = make_step(torch_model, torch.tensor(xb), torch.tensor(yb), tnn.CrossEntropyLoss(),
                    torch.optim.SGD(torch_model.parameters(), lr=lr, momentum=0.9))
    return name, s_dg, s_t


def case_lenet5():
    return pair("LeNet-5, batch 128, 1x28x28", models.lenet5(), TorchLeNet5(), (128, 1, 28, 28))


def case_mnist_cnn():
    return pair("notes' MNIST CNN, batch 64", models.mnist_cnn(), TorchMnistCNN(), (64, 1, 28, 28))


def case_resnet20():
    return pair("ResNet-20, batch 32, 3x32x32", models.resnet20(), TorchResNet20(), (32, 3, 32, 32))


CASES = {"lenet5": case_lenet5, "mnist_cnn": case_mnist_cnn, "resnet20": case_resnet20}


def check_same_output(s_name, dg_model, torch_model, shape):
    """Sanity check: identical weights give the same eval-mode logits (guards the twins)."""
    x = np.random.default_rng(1).standard_normal((4,) + shape[1:], dtype=np.float32)
    dg_model.eval()
    torch_model.eval()
    with dg.no_grad():
        a = dg_model(dg.tensor(x)).numpy()
    with torch.no_grad():
        b = torch_model(torch.tensor(x)).numpy()
    dg_model.train()
    torch_model.train()
    err = float(np.abs(a - b).max())
    if err > 1e-3 * max(1.0, float(np.abs(b).max())):
        raise AssertionError(f"{s_name}: deepgrad and PyTorch twins disagree (max abs diff {err:.3g})")


def profile_step(step, steps=3, top=12):
    """Print the ``top`` cProfile entries (by own time) of ``steps`` deepgrad training steps."""
    import cProfile
    import io
    import pstats
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(top)
    text = s.getvalue()
    start = text.find("   ncalls")
    print(text[start:] if start >= 0 else text)


def fast_paths(on):
    """Switch deepgrad's convolution and pooling fast paths (ops/conv.py, ops/pool.py ``_FAST``)."""
    from deepgrad.ops import conv, pool
    conv._FAST = pool._FAST = bool(on)


def compare_fast(name, s_dg, s_t, number, repeat, clock=None):
    """Alternating rounds of deepgrad with fast paths on, off, and PyTorch; prints the medians."""
    import statistics
    import time
    clock = clock or time.perf_counter
    runs = {"on": [], "off": [], "torch": []}
    calls = {"on": s_dg, "off": s_dg, "torch": s_t}
    for r in range(repeat + 1):
        for key in (("on", "off", "torch") if r % 2 else ("torch", "off", "on")):
            fast_paths(key != "off")
            t0 = clock()
            for _ in range(number):
                calls[key]()
            if r:                                   # round 0 warms up
                runs[key].append((clock() - t0) / number)
    fast_paths(True)
    on, off, t = (statistics.median(runs[k]) for k in ("on", "off", "torch"))
    print(f"{name:<34}fast paths on {on * 1e3:8.1f} ms  off {off * 1e3:8.1f} ms  torch {t * 1e3:8.1f} ms"
          f"   on/torch {on / t:5.2f}  off/torch {off / t:5.2f}  on/off {on / off:5.2f}", flush=True)


def main(argv=None):
    args = _parse(argv)
    n = setup_threads(args.threads)          # prints machine_header()
    rows, to_profile = [], []
    for key in args.only.split(","):
        key = key.strip()
        name, s_dg, s_t = CASES[key]()
        if args.fast_paths == "compare":
            compare_fast(name, s_dg, s_t, args.number, args.repeat, clock_arg(args.clock))
            continue
        d, t = time_pair(s_dg, s_t, number=args.number, repeat=args.repeat, warmup=1, clock=clock_arg(args.clock))
        rows.append((name, d, t))
        print(f"{name:<34}deepgrad {d * 1e3:9.1f} ms   torch {t * 1e3:9.1f} ms   ratio {d / t:6.2f}", flush=True)
        if args.profile == "always" or (args.profile == "auto" and d > t):
            to_profile.append((name, s_dg))
    if rows:
        report(rows, f"CNN training step (SGD momentum, cross-entropy), float32, {n} threads, {args.clock} "
                     f"clock (median per step)")
    for name, step in to_profile:
        print(f"\ncProfile of 3 deepgrad steps: {name} (top {args.top} by own time)")
        profile_step(step, top=args.top)


if __name__ == "__main__":
    main()
