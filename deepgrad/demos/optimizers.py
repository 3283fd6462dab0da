"""The optimisers of deck 001 racing: SGD, momentum, Nesterov, Adagrad, RMSprop, Adam, AMSGrad, NAdam.

Each is deepgrad's ``deepgrad.optim`` class with PyTorch's update rule and defaults (the deck prints
PyTorch's pseudo-code). They are raced on two classic test surfaces -- Rosenbrock's banana valley,
(1 - x)^2 + 100 (y - x^2)^2 with its minimum at (1, 1), and Beale's function, minimum at (3, 0.5) --
with their trajectories drawn over the contours, and on a small MNIST MLP, where the training-loss
curves are compared. Learning rates are per optimiser (each family has its own scale); they are
printed with the results.
"""
from __future__ import annotations

import numpy as np

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F

from . import _common as C

NAME = "optimizers"
DECKS = ("001",)
SUMMARY = "SGD, momentum, Nesterov, Adagrad, RMSprop, Adam, AMSGrad, NAdam on Rosenbrock, Beale and an MNIST MLP"

O = dg.optim
# name -> factory(params, lr)
OPTIMIZERS = {
    "SGD": lambda ps, lr: O.SGD(ps, lr=lr),
    "momentum": lambda ps, lr: O.SGD(ps, lr=lr, momentum=0.9),
    "Nesterov": lambda ps, lr: O.SGD(ps, lr=lr, momentum=0.9, nesterov=True),
    "Adagrad": lambda ps, lr: O.Adagrad(ps, lr=lr),
    "RMSprop": lambda ps, lr: O.RMSprop(ps, lr=lr),
    "Adam": lambda ps, lr: O.Adam(ps, lr=lr),
    "AMSGrad": lambda ps, lr: O.Adam(ps, lr=lr, amsgrad=True),
    "NAdam": lambda ps, lr: O.NAdam(ps, lr=lr),
}


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2 + (2.625 - x + x * y ** 3) ** 2


SURFACES = {
    # name: (function, start, minimum, plot box, learning rate per optimiser)
    "Rosenbrock": (rosenbrock, (-1.5, 2.0), (1.0, 1.0), (-2.0, 2.0, -1.0, 3.0),
                   dict(SGD=1e-3, momentum=5e-4, Nesterov=5e-4, Adagrad=1.0, RMSprop=3e-3, Adam=0.1,
                        AMSGrad=0.1, NAdam=0.02)),
    "Beale": (beale, (1.0, 1.5), (3.0, 0.5), (-0.5, 4.0, -1.0, 2.0),
              dict(SGD=1e-2, momentum=2e-3, Nesterov=2e-3, Adagrad=0.5, RMSprop=1e-2, Adam=0.05,
                   AMSGrad=0.05, NAdam=0.05)),
}

MNIST_LR = dict(SGD=0.1, momentum=0.05, Nesterov=0.05, Adagrad=0.05, RMSprop=1e-3, Adam=1e-3, AMSGrad=1e-3,
                NAdam=2e-3)


def descend(fn, start, name, lr, steps):
    """Minimise fn(x, y) from ``start``; returns the (steps + 1, 2) path and the losses."""
    p = dg.tensor(start, dtype=dg.float64, requires_grad=True)
    opt = OPTIMIZERS[name]([p], lr)
    path, losses = [p.detach().numpy().copy()], []
    for _ in range(steps):
        loss = fn(p[0], p[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        path.append(p.detach().numpy().copy())
    losses.append(float(fn(p[0], p[1])))
    return np.array(path), np.array(losses)


def mnist_race(name, lr, x, y, epochs, batch, seed):
    dg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = OPTIMIZERS[name](model.parameters(), lr)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            idx = order[s:s + batch]
            loss = F.cross_entropy(model(dg.tensor(x[idx])), dg.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
    with dg.no_grad():
        final = float(F.cross_entropy(model(dg.tensor(x)), dg.tensor(y)))
    return np.array(losses), final


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    out = C.out_dir(out, NAME)
    plt = C.plt()
    steps = 200 if quick else 2000
    result = dict(surfaces={}, mnist={}, figures=[])

    fig, axes = plt.subplots(2, 2, figsize=(13, 10), layout="constrained")
    colors = plt.cm.tab10(np.arange(len(OPTIMIZERS)))
    for row, (sname, (fn, start, best, box, lrs)) in enumerate(SURFACES.items()):
        C.print_header(f"{sname}: {steps} steps from {start} (minimum at {best})")
        print(f"  {'optimizer':<10s} {'lr':>8s} {'final loss':>12s} {'distance to min':>16s}")
        res = {}
        ax, axl = axes[row, 0], axes[row, 1]
        gx, gy = np.meshgrid(np.linspace(box[0], box[1], 160), np.linspace(box[2], box[3], 160))
        gz = fn(gx, gy)
        ax.contour(gx, gy, np.log10(gz + 1e-3), levels=18, cmap="Greys", linewidths=0.6)
        for (oname, lr), col in zip(lrs.items(), colors):
            path, losses = descend(fn, start, oname, lr, steps)
            dist = float(np.hypot(*(path[-1] - np.array(best))))
            res[oname] = dict(lr=lr, final_loss=float(losses[-1]), distance=dist, start_loss=float(losses[0]))
            print(f"  {oname:<10s} {lr:8.0e} {losses[-1]:12.4g} {dist:16.4g}")
            ax.plot(path[:, 0], path[:, 1], "-", color=col, lw=1.3, label=oname)
            ax.plot(path[-1, 0], path[-1, 1], "o", color=col, ms=4)
            axl.semilogy(np.maximum(losses, 1e-12), color=col, label=oname)
        ax.plot(*start, "ks", ms=7, label="start")
        ax.plot(*best, "r*", ms=14, label="minimum")
        ax.set_xlim(box[0], box[1]), ax.set_ylim(box[2], box[3])
        ax.set_xlabel("x"), ax.set_ylabel("y"), ax.set_title(f"{sname}: trajectories ({steps} steps)")
        ax.legend(fontsize=7, ncol=2, loc="best")
        axl.set_xlabel("step"), axl.set_ylabel("f(x, y) (log scale)"), axl.set_title(f"{sname}: loss")
        axl.legend(fontsize=7, ncol=2)
        result["surfaces"][sname] = res
    fig.suptitle("Optimisers on test surfaces")
    result["figures"].append(str(C.save_figure(fig, C.figure_path(out, "optimizers_surfaces"))))

    n = 1000 if quick else 10000
    epochs = 2 if quick else 5
    x, y = C.mnist_subset(n, train=not quick, seed=seed)
    C.print_header(f"MNIST 784-128-10 MLP, {n} images, {epochs} epochs of batch 64 "
                   f"({'quick: images from the test file' if quick else 'training file'})")
    fig, ax = plt.subplots(figsize=(8, 5))
    print(f"  {'optimizer':<10s} {'lr':>8s} {'final training loss':>20s}")
    for (oname, lr), col in zip(MNIST_LR.items(), colors):
        losses, final = mnist_race(oname, lr, x, y, epochs, 64, seed)
        result["mnist"][oname] = dict(lr=lr, final_loss=final, first_loss=float(losses[0]))
        print(f"  {oname:<10s} {lr:8.0e} {final:20.4f}")
        k = max(1, len(losses) // 30)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(len(smooth)) + k - 1, smooth, color=col, label=f"{oname} (lr {lr:g})")
    ax.set_xlabel("update (batch of 64)"), ax.set_ylabel(f"training loss (running mean of {k})")
    ax.set_title(f"Optimisers on an MNIST MLP ({n} images)")
    ax.legend(fontsize=8)
    result["figures"].append(str(C.save_figure(fig, C.figure_path(out, "optimizers_mnist"))))
    return result
