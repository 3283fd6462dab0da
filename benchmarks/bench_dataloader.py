"""Loader measurements (not a test): ``python benchmarks/bench_dataloader.py``.

1. batch-gathering throughput: the one-fancy-index fast path vs one __getitem__ per sample;
2. batched augmentation (pad+crop, flip, normalize) per CIFAR batch vs per-sample transforms;
3. prefetching: an epoch of "training" where each step is GIL-releasing NumPy work (like deepgrad's
   ops), with prefetch=0 (load, then train) vs prefetch=2 and num_workers=2 (load while training).
"""
import os
import sys
import time

import numpy as np

import deepgrad as dg
from deepgrad.data import DataLoader, Dataset, Subset, transforms as T
from deepgrad.data.datasets import CIFAR10, MNIST, shared_datasets_dir


class PerSample(Dataset):
    def __init__(self, d):
        self.d = d

    def __len__(self):
        return len(self.d)

    def __getitem__(self, i):
        return self.d[i]


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def epoch(loader, step=None):
    n = 0
    for x, y in loader:
        if step is not None:
            step(x)
        n += x.shape[0]
    return n


def main():
    root = shared_datasets_dir()
    dg.manual_seed(0)
    print(f"cpus: {os.cpu_count()}, numpy {np.__version__}, python {sys.version.split()[0]}")
    sys.path.insert(0, os.path.dirname(__file__))
    from _timing import machine_header
    print(machine_header())
    norm = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    m = MNIST(train=True, transform=norm)
    n = len(m)
    t_fast = timed(lambda: epoch(DataLoader(m, batch_size=128, shuffle=True, prefetch=0)))
    sub = Subset(PerSample(m), range(10000))
    t_slow = timed(lambda: epoch(DataLoader(sub, batch_size=128, shuffle=True, prefetch=0)), 1) * n / 10000
    print(f"MNIST train epoch, ToTensor+Normalize, batch 128: fast path {t_fast:.3f} s "
          f"({n / t_fast:,.0f} samples/s); per-sample {t_slow:.2f} s ({n / t_slow:,.0f} samples/s); "
          f"x{t_slow / t_fast:.0f}")

    if root is None:
        return
    c = CIFAR10(root=root, train=True)
    cn = 10000
    csub = Subset(c, range(cn))
    aug = T.Compose([T.BatchToTensor(), T.BatchRandomCrop(32, padding=4), T.BatchRandomHorizontalFlip(),
                     T.BatchNormalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    t_batch = timed(lambda: epoch(DataLoader(csub, batch_size=128, shuffle=True, prefetch=0, batch_transform=aug)))
    per = Subset(CIFAR10(root=root, train=True, transform=T.Compose([
        T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
        T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])), range(cn))
    t_per = timed(lambda: epoch(DataLoader(per, batch_size=128, shuffle=True, prefetch=0)), 1)
    print(f"CIFAR-10 crop+flip+normalize, {cn} samples: batched {t_batch:.3f} s ({cn / t_batch:,.0f}/s); "
          f"per-sample {t_per:.2f} s ({cn / t_per:,.0f}/s); x{t_per / t_batch:.0f}")

    # prefetch: each "train step" is GIL-free work of about the per-sample loading time per batch:
    # time.sleep (an accelerator doing the step) or NumPy matmuls (deepgrad's CPU ops release the GIL)
    per_batch_load = t_per / (cn / 128)
    w = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    h0 = np.random.default_rng(1).standard_normal((128, 512)).astype(np.float32)

    def mm(reps):
        h = h0
        for _ in range(reps):
            h = np.maximum(h @ w, 0) * 0.05
        return h

    t_one = timed(lambda: mm(20), 5) / 20
    reps = max(1, int(per_batch_load / t_one))
    steps = {"sleep": lambda x: time.sleep(per_batch_load), "numpy": lambda x: mm(reps)}
    print(f"per-sample loading {per_batch_load * 1e3:.1f} ms/batch; numpy step {timed(lambda: mm(reps), 3) * 1e3:.1f} ms")
    for name, step in steps.items():
        res = {}
        for pf, nw in ((0, 0), (2, 0), (2, 2)):
            res[(pf, nw)] = timed(lambda: epoch(DataLoader(per, batch_size=128, shuffle=True, prefetch=pf,
                                                           num_workers=nw), step), 1)
        print(f"  {name} step, epoch of {cn}: prefetch=0 {res[(0, 0)]:.2f} s, prefetch=2 {res[(2, 0)]:.2f} s "
              f"(x{res[(0, 0)] / res[(2, 0)]:.2f}), prefetch=2 + 2 workers {res[(2, 2)]:.2f} s "
              f"(x{res[(0, 0)] / res[(2, 2)]:.2f}); ideal x2")


if __name__ == "__main__":
    main()
