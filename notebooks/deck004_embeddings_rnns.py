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
# # Deck 004 — Memisevic, "Deep learning: architectures, algorithms, applications"
#
# Modules composed and differentiated automatically, vanishing gradients, word embeddings,
# recurrent networks trained through time, and gradient clipping.

# %%
import os
from pathlib import Path

import numpy as np

import deepgrad as dg
import deepgrad.demos as demos

QUICK = os.environ.get("DEEPGRAD_QUICK", "").strip().lower() not in ("", "0", "false", "no")
OUT = Path(os.environ.get("DEEPGRAD_DEMO_OUT", "runs/notebooks")) / "deck004"
dg.manual_seed(0)


def show(name):
    """Run demo ``name`` (quick mode when DEEPGRAD_QUICK is set); its figures are listed and, in
    Jupyter, displayed below the cell."""
    return demos.show(name, quick=QUICK, out=OUT / name)

# %% [markdown]
# ## Modules with fprop and bprop, checked numerically
#
# The deck composes modules that each know their forward and backward pass. deepgrad's autograd
# does the composition; `gradcheck` compares its gradients with finite differences in float64.

# %%
from deepgrad import nn
from deepgrad.autograd import gradcheck

dg.manual_seed(0)
layer = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
x = dg.randn(5, 4, dtype=dg.float64, requires_grad=True)
print("gradcheck of Linear-Tanh-Linear:", gradcheck(lambda t: layer(t), (x,)))

# %% [markdown]
# ## Vanishing gradients in deep networks (`initialization`)
#
# With a naive initialisation the activations and gradients of a 20-layer network shrink (or grow)
# layer after layer; Xavier/Glorot and Kaiming/He scalings keep them level.

# %%
r = show("initialization")

# %% [markdown]
# ## Word embeddings: king - man + woman (`word-vectors`)
#
# Skip-gram word vectors place related words near each other; on the recipe's synthetic corpus
# `king - man + woman` lands on `queen`. The same demo asks an encoder-decoder LSTM sums.
# `query_word_vectors(checkpoint)` and `answer_sums(checkpoint, ["8584+920"])` work on any trained
# checkpoint (`deepgrad train word2vec`, `deepgrad train seq2seq-addition`).

# %%
r = show("word-vectors")

# %% [markdown]
# ## Back-propagation through time and gradient clipping (`rnn-gradients`)
#
# A vanilla RNN unrolled over T steps multiplies T Jacobians: their norm decides whether the
# gradient reaching early steps vanishes or explodes. Clipping the gradient norm keeps training
# finite where plain SGD is thrown out by an exploding gradient.

# %%
r = show("rnn-gradients")
