"""Batch, mini-batch and stochastic gradient descent on MNIST (decks 001, 003).

One network (784-64-10 MLP, softmax cross-entropy), plain SGD steps (lr 0.1; 0.01 for single
examples, whose gradients are too noisy for more), three ways to estimate the gradient: the whole training set per update (batch GD), B = 32 examples (mini-batch), one example
(SGD). The training loss over the whole (sub)set is recorded as it goes -- per update, per epoch
(examples seen) and per second of compute (the evaluations are not timed). The deck's points show:
per *update* the full batch is the most accurate and smoothest; per *epoch* and per *second* the
cheap noisy updates win by far; mini-batches keep most of the speed with much less noise, and
vectorise well, which is why they are what everyone uses.
"""
from __future__ import annotations

import time

import numpy as np

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F

from . import _common as C

NAME = "gradient-descent"
DECKS = ("001", "003")
SUMMARY = "batch vs mini-batch vs stochastic GD on MNIST: loss vs updates, epochs and wall time"


def make_model(seed):
    dg.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def full_loss(model, x, y):
    with dg.no_grad():
        return float(F.cross_entropy(model(x), y))


def train(x, y, batch_size, epochs, lr, seed, evals_per_epoch):
    """Plain SGD with ``batch_size``; returns dict of arrays: updates, epochs, seconds, loss."""
    model = make_model(seed)
    opt = dg.optim.SGD(model.parameters(), lr=lr)
    n = len(y)
    xt, yt = dg.tensor(x), dg.tensor(y)
    per_epoch = -(-n // batch_size)
    every = max(1, per_epoch // evals_per_epoch)
    rng = np.random.default_rng(seed)
    rec = dict(updates=[0], epochs=[0.0], seconds=[0.0], loss=[full_loss(model, xt, yt)])
    updates, spent = 0, 0.0
    for epoch in range(epochs):
        order = rng.permutation(n) if batch_size < n else np.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            t0 = time.perf_counter()
            xb, yb = (xt, yt) if batch_size >= n else (dg.tensor(x[idx]), dg.tensor(y[idx]))
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            spent += time.perf_counter() - t0
            updates += 1
            if updates % every == 0 or start + batch_size >= n:
                rec["updates"].append(updates)
                rec["epochs"].append(updates / per_epoch)
                rec["seconds"].append(spent)
                rec["loss"].append(full_loss(model, xt, yt))
    return {k: np.asarray(v) for k, v in rec.items()}


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    out = C.out_dir(out, NAME)
    plt = C.plt()
    n = 500 if quick else 10000
    # quick mode draws its images from the 10k-image test file (faster to read); the full run from
    # the training file
    x, y = C.mnist_subset(n, train=not quick, seed=seed)
    # (label, batch size, epochs, learning rate): one-example gradients are so noisy that SGD
    # needs a 10x smaller step to settle
    plans = [("batch GD (B = all)", n, 25 if quick else 100, 0.1),
             ("mini-batch GD (B = 32)", 32, 2 if quick else 10, 0.1),
             ("SGD (B = 1)", 1, 1 if quick else 2, 0.01)]
    C.print_header(f"MNIST, {n} training images, 784-64-10 MLP, plain SGD")
    runs = {}
    for label, bs, epochs, lr in plans:
        runs[label] = r = train(x, y, bs, epochs, lr, seed, evals_per_epoch=20 if bs < n else 1)
        print(f"  {label:<24s} lr {lr:<5g} {int(r['updates'][-1]):6d} updates in {r['epochs'][-1]:5.1f} epochs, "
              f"{r['seconds'][-1]:6.2f} s: training loss {r['loss'][0]:.3f} -> {r['loss'][-1]:.3f}")

    def at_epoch(r, e):
        return float(np.interp(e, r["epochs"], r["loss"]))

    def at_update(r, u):
        return float(np.interp(u, r["updates"], r["loss"]))

    labels = [p[0] for p in plans]
    batch, mini, sgd = (runs[k] for k in labels)
    one_epoch = {k: at_epoch(runs[k], 1.0) for k in labels}
    u = int(batch["updates"][-1])
    same_updates = {k: at_update(runs[k], min(u, runs[k]["updates"][-1])) for k in labels}
    C.print_header("After one epoch (every example seen once)")
    for k in labels:
        C.print_row(k, one_epoch[k])
    C.print_header(f"After {u} updates")
    for k in labels:
        C.print_row(k, same_updates[k])

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), layout="constrained")
    for k in labels:
        r = runs[k]
        axes[0].plot(np.maximum(r["updates"], 1), r["loss"], label=k)
        axes[1].plot(r["epochs"][1:], r["loss"][1:], label=k)
        axes[2].plot(r["seconds"], r["loss"], label=k)
    axes[0].set_xscale("log")
    axes[1].set_xscale("log")
    for ax, xl, t in ((axes[0], "updates (log scale)", "Loss vs parameter updates"),
                      (axes[1], "epochs = examples seen / N (log scale)", "Loss vs epochs"),
                      (axes[2], "training wall time (s)", "Loss vs wall time")):
        ax.set_xlabel(xl), ax.set_ylabel("training loss (whole set)"), ax.set_title(t), ax.legend(fontsize=8)
    fig.suptitle(f"Batch, mini-batch and stochastic gradient descent (MNIST, {n} images)")
    path = C.save_figure(fig, C.figure_path(out, "gradient_descent"))

    return dict(n=n, loss_after_one_epoch=one_epoch, loss_after_same_updates=same_updates,
                batch_monotone=bool(np.all(np.diff(batch["loss"]) <= 1e-6)),
                final_loss={k: float(runs[k]["loss"][-1]) for k in labels},
                seconds={k: float(runs[k]["seconds"][-1]) for k in labels}, labels=labels, figures=[str(path)])
