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
# # Deck 001 — Krzakala, "A crash course in deep learning"
#
# The longest deck: from the perceptron to transfer learning. Each section below names the demo
# that illustrates it (`deepgrad demo NAME`), shows a few lines of deepgrad for the idea, and runs
# the demo (small versions when `DEEPGRAD_QUICK=1`). Dropout, weight decay and early stopping run
# in the deck-002 notebook, batch norm in deck 000's, feature visualisation in deck 003's and
# initialisation in deck 004's, so that no demo runs twice.

# %%
import os
from pathlib import Path

import numpy as np

import deepgrad as dg
import deepgrad.demos as demos

QUICK = os.environ.get("DEEPGRAD_QUICK", "").strip().lower() not in ("", "0", "false", "no")
OUT = Path(os.environ.get("DEEPGRAD_DEMO_OUT", "runs/notebooks")) / "deck001"
dg.manual_seed(0)


def show(name):
    """Run demo ``name`` (quick mode when DEEPGRAD_QUICK is set); its figures are listed and, in
    Jupyter, displayed below the cell."""
    return demos.show(name, quick=QUICK, out=OUT / name)

# %% [markdown]
# ## The perceptron (`perceptron`)
#
# Rosenblatt's rule adds a misclassified point to the weights. On linearly separable data it stops
# after finitely many mistakes (Novikoff's bound); on XOR it never does.

# %%
r = show("perceptron")

# %% [markdown]
# ## Universal approximation with ReLUs (`universal-approximation`)
#
# A sum of N shifted ReLUs is a piecewise-linear function with N kinks: enough of them fit any
# continuous function on an interval, and the worst-case error falls as N grows.

# %%
r = show("universal-approximation")

# %% [markdown]
# ## Batch, mini-batch and stochastic gradient descent (`gradient-descent`)

# %%
r = show("gradient-descent")

# %% [markdown]
# ## The optimisers, with the deck's formulas (`optimizers`)
#
# The deck prints PyTorch's update rules. Here is Adam's, written out by hand for one step, beside
# `dg.optim.Adam`: the two parameters must agree.

# %%
w0 = dg.tensor([1.0, -2.0, 0.5])
grad = dg.tensor([0.3, -0.1, 2.0])
lr, (b1, b2), eps = 1e-2, (0.9, 0.999), 1e-8
m = (1 - b1) * grad
v = (1 - b2) * grad ** 2
by_hand = w0 - lr * (m / (1 - b1)) / ((v / (1 - b2)).sqrt() + eps)
w = w0.clone().requires_grad_()
opt = dg.optim.Adam([w], lr=lr, betas=(b1, b2), eps=eps)
w.grad = grad.clone()
opt.step()
print("by hand:", by_hand.tolist())
print("optim.Adam:", w.detach().tolist())
assert np.allclose(by_hand.numpy(), w.detach().numpy(), atol=1e-6)

# %%
r = show("optimizers")

# %% [markdown]
# ## Data augmentation (`augmentation`)
#
# Flips, crops and colour jitter change the pixels but not the label. The transforms are
# deepgrad's own (`deepgrad.data.transforms`); a small CNN is trained on a few CIFAR-10 images
# with and without them.

# %%
from deepgrad.data.transforms import BatchRandomHorizontalFlip

batch = np.arange(2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3)
flipped = np.asarray(BatchRandomHorizontalFlip(p=1.0)(batch))
print("an image row before and after a horizontal flip:", batch[0, 0, 0], flipped[0, 0, 0])

# %%
r = show("augmentation")

# %% [markdown]
# ## Transfer learning (`transfer`)
#
# "If small dataset: fix all weights, retrain only the classifier; if medium sized, fine-tune." A
# CNN trained on CIFAR-10's first five classes is reused for the other five with few labels:
# frozen with a new head, fine-tuned, and against training from scratch.

# %%
r = show("transfer")
for mode in ("frozen", "finetune", "scratch"):
    if f"{mode}_acc" in r:
        print(f"{mode:>9s}: {r[f'{mode}_acc']:.1%}")
