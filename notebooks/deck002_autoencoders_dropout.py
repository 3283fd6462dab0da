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
# # Deck 002 — Chiachia, "A few things about deep learning": autoencoders and dropout
#
# The deck builds features without labels (autoencoders, sparse autoencoders, greedy layer-wise
# pre-training) and ends with the dropout recipe. Both are below in deepgrad.

# %%
import os
from pathlib import Path

import numpy as np

import deepgrad as dg
import deepgrad.demos as demos

QUICK = os.environ.get("DEEPGRAD_QUICK", "").strip().lower() not in ("", "0", "false", "no")
OUT = Path(os.environ.get("DEEPGRAD_DEMO_OUT", "runs/notebooks")) / "deck002"
dg.manual_seed(0)


def show(name):
    """Run demo ``name`` (quick mode when DEEPGRAD_QUICK is set); its figures are listed and, in
    Jupyter, displayed below the cell."""
    return demos.show(name, quick=QUICK, out=OUT / name)

# %% [markdown]
# ## A small autoencoder on MNIST, with a sparsity penalty
#
# An encoder squeezes a 14x14 digit into 32 sigmoid units, a decoder rebuilds it. The sparse
# version adds the KL divergence between a target activation ρ and each unit's mean activation
# ρ̂, so that most units stay quiet for most inputs.

# %%
from deepgrad import nn
from deepgrad.demos import _b_common as C

xtr, _, xte, _ = C.mnist_arrays(1000 if QUICK else 20000, 500, size=14, flatten=True)
xtr01 = (xtr * C.MNIST_STD + C.MNIST_MEAN).astype(np.float32)       # back to [0, 1] for a sigmoid output
xte01 = (xte * C.MNIST_STD + C.MNIST_MEAN).astype(np.float32)


def train_autoencoder(sparsity_weight, rho=0.05, steps=150 if QUICK else 3000):
    dg.manual_seed(0)
    enc, dec = nn.Sequential(nn.Linear(196, 32), nn.Sigmoid()), nn.Sequential(nn.Linear(32, 196), nn.Sigmoid())
    opt = dg.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-2)
    rng = np.random.default_rng(0)
    for step in range(steps):
        xb = dg.tensor(xtr01[rng.integers(0, len(xtr01), 64)])
        h = enc(xb)
        loss = nn.functional.mse_loss(dec(h), xb)
        if sparsity_weight:
            rho_hat = h.mean(0).clamp(1e-6, 1 - 1e-6)
            kl = (rho * (rho / rho_hat).log() + (1 - rho) * ((1 - rho) / (1 - rho_hat)).log()).sum()
            loss = loss + sparsity_weight * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
    with dg.no_grad():
        h = enc(dg.tensor(xte01))
        err = float(nn.functional.mse_loss(dec(h), dg.tensor(xte01)))
    return err, float(h.mean()), dec


for w in (0.0, 1e-2):
    err, mean_act, dec = train_autoencoder(w)
    print(f"sparsity weight {w:g}: test reconstruction MSE {err:.4f}, mean hidden activation {mean_act:.3f}")

# %%
fig, axes = C.new_figure(8, 1, size=(1.2, 1.4))
with dg.no_grad():
    basis = dec(dg.eye(32)).numpy().reshape(32, 14, 14)
for k, ax in enumerate(axes[0]):
    ax.imshow(basis[k], cmap="gray")
    ax.set_title(f"unit {k}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("What single hidden units decode to (sparse autoencoder)")
OUT.mkdir(parents=True, exist_ok=True)
print("figure:", C.save_fig(fig, OUT, "autoencoder_units.png"))

# %% [markdown]
# ## The dropout recipe, and the other regularisers (`regularization`)
#
# Srivastava et al. train a 784-1024-1024-1024 ReLU network on MNIST with dropout (0.2 on inputs,
# 0.5 on hidden units): 1.25% test error against 1.60% without. The demo trains that network (a
# shrunken one in quick mode) with and without dropout, then shows weight decay, early stopping, and
# a network memorising random labels (Zhang et al. 2017).

# %%
r = show("regularization")

# %% [markdown]
# ## Hyper-parameters are hand-tuned: search them instead (`grid-search`)
#
# The deck warns that hyper-parameters live in a complicated search space. `deepgrad.sklearn` turns
# a network into a scikit-learn estimator, so `GridSearchCV` cross-validates every pair of learning
# rate and hidden width; the heatmap shows the diagonal band of good pairs. (Needs scikit-learn.)

# %%
try:
    import sklearn  # noqa: F401
    r = show("grid-search")
except ImportError:
    print("(the grid-search demo needs scikit-learn: pip install deepgrad[sklearn])")
