"""A time-boxed ResNet-20 training run on CIFAR-10 on the GPU (deepgrad on CuPy).

    python benchmarks/gpu/train_cifar_gpu.py --data .gpu_data/cifar10 --seconds 120 [--out DIR]

The device machine cannot reach the network and at most 64 MiB travel with the repository, so
the run uses what ``benchmarks/gpu/prepare_data.sh`` puts in ``.gpu_data/cifar10``: training
batches ``data_batch_*.bin.gz`` (CIFAR-10's binary format, 10,000 images each; one batch by
default) and ``test_subset.npz`` (the first N test images). The recipe's settings otherwise (He
et al. 2016: SGD momentum 0.9, weight decay 1e-4, batch 128, random crop with 4-pixel padding +
horizontal flip), with lr 0.1 for the time-boxed epochs. Batches go through pinned memory and
non-blocking copies. Reports per epoch: wall time, images/s, train loss, test accuracy on the
subset, and the time a full 50,000-image epoch would take at that rate. This is not the paper's
164-epoch run (91.25%): it measures speed and shows learning within the time box.
Writes ``cifar_gpu.json`` into ``--out`` (default $OUT, else .).
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "gpu"))

import numpy as np  # noqa: E402

import deepgrad as dg  # noqa: E402
from gpu_common import DRY  # noqa: E402

MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.2470, 0.2435, 0.2616], np.float32).reshape(1, 3, 1, 1)


def read_batches(paths):
    xs, ys = [], []
    for p in paths:
        raw = np.frombuffer(gzip.open(p).read(), np.uint8).reshape(-1, 3073)
        ys.append(raw[:, 0].astype(np.int64))
        xs.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    return np.concatenate(xs), np.concatenate(ys)


def normalise(x_uint8):
    return (x_uint8.astype(np.float32) / 255.0 - MEAN) / STD


def augment(x, rng):
    """Random 32x32 crop of the 4-pixel zero-padded image, and a horizontal flip half the time."""
    n = len(x)
    padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    i, j = rng.integers(0, 9, n), rng.integers(0, 9, n)
    rows = i[:, None] + np.arange(32)
    cols = j[:, None] + np.arange(32)
    out = padded[np.arange(n)[:, None, None, None], np.arange(3)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip][..., ::-1]
    return out


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with dg.no_grad():
        for s in range(0, len(x), batch):
            xb = dg.tensor(x[s:s + batch]).pin_memory().to("cuda", non_blocking=True)
            pred = model(xb).argmax(1).cpu().numpy()
            correct += int((pred == y[s:s + batch]).sum())
    model.train()
    return correct / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(ROOT, ".gpu_data", "cifar10"))
    p.add_argument("--seconds", type=float, default=120.0, help="time box for training (s)")
    p.add_argument("--max-epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    paths = sorted(glob.glob(os.path.join(args.data, "data_batch_*.bin.gz")))
    if not paths:
        raise SystemExit(f"no CIFAR-10 batches in {args.data}: run benchmarks/gpu/prepare_data.sh first")
    xtr, ytr = read_batches(paths)
    test = np.load(os.path.join(args.data, "test_subset.npz"))
    xte, yte = normalise(test["x"]), test["y"].astype(np.int64)
    if DRY:
        xtr, ytr, xte, yte = xtr[:256], ytr[:256], xte[:200], yte[:200]
    dg.manual_seed(0)
    model = dg.models.resnet20().to("cuda")
    opt = dg.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    result = {"train_images": int(len(xtr)), "test_images": int(len(xte)), "batch_size": args.batch_size,
              "lr": args.lr, "time_box_s": args.seconds, "epochs": []}
    t_start = time.perf_counter()
    B = args.batch_size
    for epoch in range(args.max_epochs):
        t0 = time.perf_counter()
        order = rng.permutation(len(xtr))
        losses = []
        for s in range(0, len(order) - B + 1, B):
            idx = order[s:s + B]
            xb = dg.tensor(normalise(augment(xtr[idx], rng))).pin_memory().to("cuda", non_blocking=True)
            yb = dg.tensor(ytr[idx]).to("cuda", non_blocking=True)
            opt.zero_grad()
            loss = dg.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss)
        train_loss = float(dg.stack(losses).mean().item())      # one sync per epoch
        if not DRY:
            dg.cuda.synchronize()
        dt = time.perf_counter() - t0
        n_seen = (len(order) // B) * B
        acc = evaluate(model, xte, yte)
        row = {"epoch": epoch + 1, "wall_s": dt, "images_per_s": n_seen / dt, "train_loss": train_loss,
               "test_accuracy_subset": acc, "full_epoch_s_estimate": 50000 / (n_seen / dt)}
        result["epochs"].append(row)
        print(json.dumps(row), flush=True)
        with open(os.path.join(args.out, "cifar_gpu.json"), "w") as f:
            json.dump(result, f, indent=1)
        if time.perf_counter() - t_start + dt > args.seconds:
            break
    if not DRY:
        result["max_memory_allocated"] = dg.cuda.max_memory_allocated()
    from deepgrad.ops import _cuda_kernels as _ck
    result["fused_kernel_fallbacks"] = dict(_ck.FALLBACKS)
    with open(os.path.join(args.out, "cifar_gpu.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    if DRY:
        from deepgrad.ops import _cuda_kernels as _ck
        from deepgrad.testing import strict_cuda
        with strict_cuda():
            _ck.FORCE[0] = True
            sys.exit(main())
    sys.exit(main())
