# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Deck 003 — Erdem, "Introduction to deep learning": from XOR to residual networks
#
# A history lecture: threshold units and the perceptron, XOR and the need for hidden layers, the
# mini-batch SGD loop, then the working ideas of deep networks (dropout, batch norm, ResNets) and
# what their features look like.

# %%
import os
from pathlib import Path

import numpy as np

import deepgrad as dg
import deepgrad.demos as demos

QUICK = os.environ.get("DEEPGRAD_QUICK", "").strip().lower() not in ("", "0", "false", "no")
OUT = Path(os.environ.get("DEEPGRAD_DEMO_OUT", "runs/notebooks")) / "deck003"
dg.manual_seed(0)


def show(name):
    """Run demo ``name`` (quick mode when DEEPGRAD_QUICK is set); its figures are listed and, in
    Jupyter, displayed below the cell."""
    return demos.show(name, quick=QUICK, out=OUT / name)

# %% [markdown]
# ## XOR needs a hidden layer (`xor`)
#
# No line separates XOR's classes; one hidden layer of a few units does it. (The perceptron demo,
# run in the deck-001 notebook, shows the single unit failing.)

# %%
r = show("xor")

# %% [markdown]
# ## The mini-batch SGD loop, written out
#
# The deck's loop: sample a mini-batch, forward, loss, backward, update. Here with deepgrad on
# 14x14 MNIST digits and a one-hidden-layer network.

# %%
from deepgrad import nn
from deepgrad.demos import _b_common as C

xtr, ytr, xte, yte = C.mnist_arrays(1000 if QUICK else 20000, 1000, size=14, flatten=True)
dg.manual_seed(0)
net = nn.Sequential(nn.Linear(196, 64), nn.ReLU(), nn.Linear(64, 10))
opt = dg.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
rng = np.random.default_rng(0)
for step in range(100 if QUICK else 2000):
    idx = rng.integers(0, len(xtr), 32)                       # a mini-batch
    loss = nn.functional.cross_entropy(net(dg.tensor(xtr[idx])), dg.tensor(ytr[idx]))
    opt.zero_grad()
    loss.backward()                                            # back-propagation
    opt.step()                                                 # w <- w - lr * (momentum-averaged) grad
print(f"test accuracy after the loop: {C.accuracy(net, xte, yte):.1%}")

# %% [markdown]
# ## What the network looks at (`visualize`)
#
# Zeiler & Fergus's figures: first-layer filters, images that maximise a class or a channel,
# saliency maps, and deconvolution through max-unpooling "switches", for a LeNet-5 on MNIST.

# %%
r = show("visualize")

# %% [markdown]
# ## Deeper plain networks train worse; residual ones do not (`depth`)
#
# He et al.'s figure 1: a 56-layer plain network has *higher training error* on CIFAR-10 than a
# 20-layer one. Identity shortcuts remove the problem. Quick mode uses fully connected blocks so
# that the four curves take seconds; full mode trains the CIFAR ResNets of the paper.

# %%
r = show("depth")
