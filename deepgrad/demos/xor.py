"""XOR: no linear model can do it, one hidden layer can (deck 003, Minsky & Papert 1969).

Four clouds of points around the corners of the unit square, labelled by XOR of the corner's
coordinates. A logistic-regression model (one linear layer) can at best get three corners right;
a network with one hidden layer of a few tanh units separates all four. Both are trained with
deepgrad (full-batch Adam on the binary cross-entropy); their decision regions are plotted.
"""
from __future__ import annotations

import numpy as np

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F

from . import _common as C

NAME = "xor"
DECKS = ("003",)
SUMMARY = "a linear model fails on XOR, one hidden layer succeeds; decision regions plotted"


def xor_data(n_per_corner, seed, noise=0.15):
    rng = np.random.default_rng(seed)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    labels = np.array([0, 1, 1, 0], dtype=np.float32)
    x = np.concatenate([c + noise * rng.standard_normal((n_per_corner, 2)) for c in corners]).astype(np.float32)
    y = np.repeat(labels, n_per_corner)
    return x, y


def train(model, x, y, steps, lr):
    opt = dg.optim.Adam(model.parameters(), lr=lr)
    xt, yt = dg.tensor(x), dg.tensor(y)
    losses = []
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(model(xt).squeeze(1), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    with dg.no_grad():
        acc = float(((model(xt).squeeze(1) > 0).float() == yt).float().mean())
    return losses, acc


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    out = C.out_dir(out, NAME)
    plt = C.plt()
    dg.manual_seed(seed)
    x, y = xor_data(25 if quick else 100, seed)
    steps = 300 if quick else 1000
    hidden = 8

    linear = nn.Linear(2, 1)
    mlp = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    C.print_header(f"XOR with {len(x)} noisy points, {steps} full-batch Adam steps")
    lin_losses, lin_acc = train(linear, x, y, steps, lr=0.05)
    mlp_losses, mlp_acc = train(mlp, x, y, steps, lr=0.05)
    C.print_row("linear model: training accuracy (any line: <= 0.75)", lin_acc)
    C.print_row("linear model: final loss (log 2 = 0.693 is chance)", lin_losses[-1], float(np.log(2)))
    C.print_row(f"one hidden layer ({hidden} tanh): training accuracy", mlp_acc, 1.0)
    C.print_row("one hidden layer: final loss", mlp_losses[-1])

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    g = np.linspace(-0.6, 1.6, 150, dtype=np.float32)
    gx, gy = np.meshgrid(g, g)
    grid = dg.tensor(np.c_[gx.ravel(), gy.ravel()])
    for ax, model, title in ((axes[0], linear, f"linear model: accuracy {lin_acc:.2f}"),
                             (axes[1], mlp, f"one hidden layer: accuracy {mlp_acc:.2f}")):
        with dg.no_grad():
            prob = dg.sigmoid(model(grid)).numpy().reshape(gx.shape)
        cs = ax.contourf(gx, gy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1.5)
        for lab, mk, col in ((1.0, "o", "tab:red"), (0.0, "x", "tab:blue")):
            m = y == lab
            ax.scatter(x[m, 0], x[m, 1], marker=mk, c=col, s=15, label=f"XOR = {int(lab)}")
        ax.set_xlabel("x1"), ax.set_ylabel("x2"), ax.set_title(title), ax.legend(loc="upper center", fontsize=8)
    fig.colorbar(cs, ax=axes[1], label="P(XOR = 1)")
    ax = axes[2]
    ax.plot(lin_losses, label="linear model")
    ax.plot(mlp_losses, label="one hidden layer")
    ax.axhline(np.log(2), color="grey", ls="--", lw=0.8, label="chance (log 2)")
    ax.set_xlabel("Adam step"), ax.set_ylabel("binary cross-entropy"), ax.set_title("Training loss"), ax.legend()
    fig.suptitle("XOR: a line cannot separate it, a hidden layer can")
    path = C.save_figure(fig, C.figure_path(out, "xor"))
    return dict(linear_accuracy=lin_acc, linear_loss=lin_losses[-1], mlp_accuracy=mlp_acc, mlp_loss=mlp_losses[-1],
                figures=[str(path)])
