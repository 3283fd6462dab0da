"""Initialisation: activations and gradients layer by layer in 20-layer nets (decks 001, 004;
Glorot & Bengio 2010, He et al. 2015).

A 20-hidden-layer MLP (tanh, then ReLU) is fed a batch of MNIST digits, and the spread of the
activations and of the back-propagated gradients dLoss/dActivation is measured at every layer
for each initialisation:

* naive -- Glorot & Bengio's "standard" U[-1/sqrt(n_in), 1/sqrt(n_in)] (variance 1/(3 n_in); also
  what ``nn.Linear`` uses by default): each layer shrinks the signal ~3x (tanh) or ~6x (ReLU), so it
  collapses with depth and the gradients vanish;
* Xavier/Glorot -- variance 2/(n_in + n_out) (``xavier_uniform_``), for tanh also with PyTorch's
  ``calculate_gain('tanh') = 5/3`` that the deck prints: that keeps the tanh activations' spread
  steady (gain 1 still decays slowly, ~1/layer, as tanh' < 1 away from 0), while for ReLU it halves
  the variance at every layer;
* Kaiming/He -- variance 2/n_in (``kaiming_normal_(nonlinearity='relu')``), which keeps ReLU
  activations steady (for tanh its gain sqrt(2) is close to 5/3 and works too).

The figures are Glorot & Bengio's: per-layer histograms of the activations (their Fig. 6) and the
per-layer spread of the back-propagated gradients (their Fig. 7), here over 20 layers.
"""
from __future__ import annotations

import math

import numpy as np

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F

from . import _common as C

NAME = "initialization"
DECKS = ("001", "004")
SUMMARY = "20-layer tanh/ReLU nets: activation and gradient statistics per layer, naive vs Xavier vs Kaiming"

DEPTH = 20


def init_layer(layer, scheme, nonlinearity):
    w = layer.weight
    if scheme == "naive":
        bound = 1.0 / math.sqrt(w.shape[1])
        nn.init.uniform_(w, -bound, bound)
    elif scheme == "xavier":
        nn.init.xavier_uniform_(w)
    elif scheme == "xavier-gain":
        nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain(nonlinearity))
    elif scheme == "kaiming":
        nn.init.kaiming_normal_(w, nonlinearity="relu")
    else:
        raise ValueError(f"unknown initialisation {scheme!r}")
    nn.init.zeros_(layer.bias)


def probe(x, y, width, nonlinearity, scheme, seed):
    """Build the 20-layer net, run one batch, return per-layer activation and gradient arrays."""
    dg.manual_seed(seed)
    act = dg.tanh if nonlinearity == "tanh" else F.relu
    dims = [x.shape[1]] + [width] * DEPTH
    layers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
    head = nn.Linear(width, 10)
    for layer in layers + [head]:
        init_layer(layer, scheme, nonlinearity)
    h = dg.tensor(x)
    acts = []
    for layer in layers:
        h = act(layer(h))
        acts.append(h)
    loss = F.cross_entropy(head(h), dg.tensor(y))
    grads = dg.autograd.grad(loss, acts)
    return [a.detach().numpy() for a in acts], [g.numpy() for g in grads], float(loss)


SCHEMES = {
    "tanh": [("naive", "naive U[+-1/sqrt(n)]"), ("xavier", "Xavier (gain 1)"),
             ("xavier-gain", "Xavier x calculate_gain('tanh')"), ("kaiming", "Kaiming (2/n_in)")],
    "relu": [("naive", "naive U[+-1/sqrt(n)]"), ("xavier", "Xavier (gain 1)"), ("kaiming", "Kaiming (2/n_in)")],
}


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    out = C.out_dir(out, NAME)
    plt = C.plt()
    width = 128 if quick else 512
    batch = 256 if quick else 1000
    x, y = C.mnist_subset(batch, train=not quick, seed=seed)
    x = (x - x.mean()) / x.std()          # inputs standardised: variance 1
    layers_axis = np.arange(1, DEPTH + 1)
    result = {}
    stats = {}
    for nl, schemes in SCHEMES.items():
        C.print_header(f"{nl}: {DEPTH} hidden layers of {width}, batch of {batch} MNIST digits")
        print(f"  {'initialisation':<34s} {'Var(h_1)':>10s} {'Var(h_20)':>10s} {'max/min Var':>12s} "
              f"{'Var(g_1)/Var(g_20)':>19s}")
        for scheme, label in schemes:
            acts, grads, loss = probe(x, y, width, nl, scheme, seed)
            av = np.array([a.var() for a in acts])
            gv = np.array([g.var() for g in grads])
            spread = float(av.max() / max(av.min(), 1e-300))
            ratio = float(gv[0] / max(gv[-1], 1e-300))
            print(f"  {label:<34s} {av[0]:10.3g} {av[-1]:10.3g} {spread:12.3g} {ratio:19.3g}")
            stats[(nl, scheme)] = (acts, av, gv)
            result[f"{nl}/{scheme}"] = dict(act_var=av.tolist(), grad_var=gv.tolist(), act_spread=spread,
                                            grad_ratio_first_last=ratio, loss=loss)
    C.print_row("Glorot & Bengio: tanh activation spread, Xavier", result["tanh/xavier-gain"]["act_spread"],
                "steady across layers")

    figures = []
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), layout="constrained")
    for col, nl in enumerate(("tanh", "relu")):
        for scheme, label in SCHEMES[nl]:
            _, av, gv = stats[(nl, scheme)]
            axes[0, col].semilogy(layers_axis, np.maximum(av, 1e-300), "o-", ms=3, label=label)
            axes[1, col].semilogy(layers_axis, np.maximum(gv, 1e-300), "o-", ms=3, label=label)
        axes[0, col].set_title(f"{nl}: variance of the activations")
        axes[1, col].set_title(f"{nl}: variance of the back-propagated gradient dL/dh")
        for row in range(2):
            axes[row, col].set_xlabel("layer")
            axes[row, col].set_ylabel("variance (log scale)")
            axes[row, col].set_xticks(range(1, DEPTH + 1, 2))
            axes[row, col].legend(fontsize=8)
    fig.suptitle(f"Signal propagation through {DEPTH} layers at initialisation")
    figures.append(str(C.save_figure(fig, C.figure_path(out, "initialization_variance"))))

    shown = [1, 5, 10, 15, 20]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), layout="constrained")
    for ax, (nl, scheme, label) in zip(axes, (("tanh", "naive", "tanh, naive (standard) init"),
                                               ("tanh", "xavier-gain", "tanh, Xavier x gain 5/3"),
                                               ("relu", "kaiming", "ReLU, Kaiming"))):
        acts = stats[(nl, scheme)][0]
        rng = (-1, 1) if nl == "tanh" else (0, float(np.percentile(acts[0], 99)) * 1.5 + 1e-6)
        bins = np.linspace(*rng, 61)
        for layer in shown:
            a = acts[layer - 1].ravel()
            if nl == "relu":
                a = a[a > 0]
            hist, edges = np.histogram(a, bins=bins, density=True)
            ax.plot(0.5 * (edges[1:] + edges[:-1]), hist, label=f"layer {layer}")
        ax.set_xlabel("activation value" + (" (positive part)" if nl == "relu" else ""))
        ax.set_ylabel("density")
        ax.set_title(label)
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle("Activation histograms per layer (Glorot & Bengio 2010, Fig. 6)")
    figures.append(str(C.save_figure(fig, C.figure_path(out, "initialization_histograms"))))
    result["figures"] = figures
    return result
