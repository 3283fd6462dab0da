"""conv2d / max_pool2d and full CNN training steps, forward + backward, deepgrad vs PyTorch
(same process, alternating rounds, same thread count for both).

    python benchmarks/bench_conv.py [--number N] [--repeat R] [--threads T] [--only ops,models]

Op cases run the op on float32 inputs that require grad and back-propagate a fixed upstream
gradient (a C-contiguous NCHW array, as a loss would hand it over). Model cases time a whole
training step (zero_grad, forward, cross-entropy, backward, SGD momentum step) of LeNet-5
(batch 128, 1x28x28) and the CIFAR ResNet-20 (batch 32, 3x32x32, BatchNorm, option-A shortcuts)
against identical PyTorch twins. The ratio column is the median per-round ratio deepgrad/PyTorch:
below 1 is faster than PyTorch. ``--threads`` must be applied before NumPy loads OpenBLAS, so
this script sets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` from it before importing NumPy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def _parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=3, help="calls per timing round")
    ap.add_argument("--repeat", type=int, default=9, help="alternating rounds (the median is reported)")
    ap.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: all)")
    ap.add_argument("--only", default="ops,models", help="comma list of: ops, models")
    return ap.parse_args(argv)


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import threads_from_argv  # noqa: E402

if __name__ == "__main__":
    threads_from_argv()  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

import deepgrad as dg  # noqa: E402
from deepgrad.models.lenet import lenet5  # noqa: E402
from deepgrad.models.resnet import resnet20  # noqa: E402
from deepgrad.ops import conv as C, pool as P  # noqa: E402
from _timing import copy_weights, make_step, setup_threads  # noqa: E402


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
    print(f"\n{title}   (loadavg {open('/proc/loadavg').read().split()[0]})")
    print(f"{'case':<40}{'deepgrad':>11}{'torch':>11}{'ratio':>8}")
    for name, d, t, r in rows:
        print(f"{name:<40}{d * 1e3:>9.2f}ms{t * 1e3:>9.2f}ms{r:>8.2f}")


# ---------------------------------------------------------------------------------------------
# op cases
# ---------------------------------------------------------------------------------------------

CONV_CASES = [
    ("LeNet conv1 (128,1,28,28)->6@5x5", (128, 1, 28, 28), 6, 5, 0),
    ("(64,32,26,26)->64@3x3", (64, 32, 26, 26), 64, 3, 0),
    ("ResNet-20 (32,16,32,32)->16@3x3 p1", (32, 16, 32, 32), 16, 3, 1),
    ("LeNet conv2 (128,6,14,14)->16@5x5", (128, 6, 14, 14), 16, 5, 0),
    ("1x1 (32,64,16,16)->256", (32, 64, 16, 16), 256, 1, 0),
]
POOL_CASES = [
    ("max_pool2d 2x2 (128,6,24,24)", (128, 6, 24, 24), False),
    ("max_pool2d 2x2 (64,64,24,24)", (64, 64, 24, 24), False),
    # as inside a CNN: a channels-last input (a conv output) and an NCHW gradient (a flatten)
    ("max_pool2d 2x2 (128,6,28,28) ch-last", (128, 6, 28, 28), True),
    ("max_pool2d 2x2 (64,64,24,24) ch-last", (64, 64, 24, 24), True),
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


def pool_pair(shape, rng, channels_last=False):
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2)).astype(np.float32)
    if channels_last:
        xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        dx = dg.Tensor._make(xl).requires_grad_(True)
        tx = torch.tensor(x).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    else:
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


# ---------------------------------------------------------------------------------------------
# full-model training steps (PyTorch twins of deepgrad.models.lenet5 / resnet20)
# ---------------------------------------------------------------------------------------------

class TorchLeNet5(torch.nn.Module):
    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(inplace=True), nn.Linear(120, 84),
                                        nn.ReLU(inplace=True), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class TorchCifarBlock(torch.nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.extra = stride, planes - cin

    def forward(self, x):
        out = self.bn2(self.conv2(TF.relu(self.bn1(self.conv1(x)))))
        sc = x[:, :, ::self.stride, ::self.stride] if self.stride != 1 else x
        if self.extra:
            sc = TF.pad(sc, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return TF.relu(out + sc)


class TorchResNet20(torch.nn.Module):
    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin, layers = 16, []
        for stage, planes in enumerate((16, 32, 64)):
            blocks = []
            for i in range(3):
                blocks.append(TorchCifarBlock(cin, planes, 2 if stage > 0 and i == 0 else 1))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = TF.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


MODEL_CASES = [
    ("LeNet-5 train step, batch 128", lenet5, TorchLeNet5, (128, 1, 28, 28)),
    ("ResNet-20 train step, batch 32", resnet20, TorchResNet20, (32, 3, 32, 32)),
]


def model_pair(dg_ctor, torch_ctor, shape, rng):
    m_dg, m_t = dg_ctor(), torch_ctor()
    copy_weights(m_dg, m_t)
    xb = rng.standard_normal(shape).astype(np.float32)
    yb = rng.integers(0, 10, shape[0])
    s_dg = make_step(m_dg, dg.tensor(xb), dg.tensor(yb), dg.nn.CrossEntropyLoss(),
                     dg.optim.SGD(m_dg.parameters(), lr=0.01, momentum=0.9))
    s_t = make_step(m_t, torch.tensor(xb), torch.tensor(yb), torch.nn.CrossEntropyLoss(),
                    torch.optim.SGD(m_t.parameters(), lr=0.01, momentum=0.9))
    return s_dg, s_t, m_dg


def main(argv=None):
    args = _parse(argv)
    n = setup_threads(args.threads)          # prints machine_header()
    only = set(args.only.split(","))
    rng = np.random.default_rng(0)
    if "ops" in only:
        rows = []
        for name, shape, o, k, pad in CONV_CASES:
            fd, ft = conv_pair(shape, o, k, pad, rng)
            rows.append((name, *time_ratio(fd, ft, args.number, args.repeat)))
        for name, shape, channels_last in POOL_CASES:
            fd, ft = pool_pair(shape, rng, channels_last)
            rows.append((name, *time_ratio(fd, ft, args.number * 3, args.repeat)))
        report(rows, f"conv2d / max_pool2d forward+backward, float32, {n} threads (ratio = deepgrad / torch)")
    if "models" in only:
        rows = []
        for name, dg_ctor, torch_ctor, shape in MODEL_CASES:
            fd, ft, _ = model_pair(dg_ctor, torch_ctor, shape, rng)
            rows.append((name, *time_ratio(fd, ft, args.number, args.repeat)))
        report(rows, f"training step (SGD momentum, cross-entropy), float32, {n} threads")
    return rows


if __name__ == "__main__":
    main()
