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
# # Deck 000 — Krähenbühl, "Deep learning": layered models, random features, batch norm
#
# This notebook follows the first lecture with deepgrad. Every cell runs as plain Python; set
# `DEEPGRAD_QUICK=1` for the small versions that finish in seconds (the CI runs it that way).
# Each demo can also be run on its own: `deepgrad demo NAME [--quick] [--out DIR]`.

# %%
import os
from pathlib import Path

import numpy as np

import deepgrad as dg
import deepgrad.demos as demos

QUICK = os.environ.get("DEEPGRAD_QUICK", "").strip().lower() not in ("", "0", "false", "no")
OUT = Path(os.environ.get("DEEPGRAD_DEMO_OUT", "runs/notebooks")) / "deck000"
dg.manual_seed(0)


def show(name):
    """Run demo ``name`` (quick mode when DEEPGRAD_QUICK is set); its figures are listed and, in
    Jupyter, displayed below the cell."""
    return demos.show(name, quick=QUICK, out=OUT / name)

# %% [markdown]
# ## A layered model, written out
#
# The lecture's model is `y = A3 ρ(A2 ρ(A1 x + b1) + b2) + b3` with ρ the ReLU. Below it is written
# with plain deepgrad tensors (no `nn.Module`), trained by back-propagation on a toy problem: points
# inside a circle against points outside. `loss.backward()` fills `.grad` of every parameter.

# %%
rng = np.random.default_rng(0)
x = dg.tensor(rng.uniform(-1, 1, (256, 2)).astype(np.float32))
y = ((x ** 2).sum(1) < 0.5).float()
sizes = [2, 16, 16, 1]
params = []
for a, b in zip(sizes[:-1], sizes[1:]):
    params += [(dg.randn(b, a) * (2 / a) ** 0.5).requires_grad_(), dg.zeros(b, requires_grad=True)]
A1, b1, A2, b2, A3, b3 = params


def model(x):
    return (A3 @ dg.relu(A2 @ dg.relu(A1 @ x.T + b1[:, None]) + b2[:, None]) + b3[:, None]).squeeze(0)


steps = 100 if QUICK else 1000
for step in range(steps):
    loss = dg.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    for p in params:
        p.grad = None
    loss.backward()
    with dg.no_grad():
        for p in params:
            p -= 0.5 * p.grad
acc = float(((model(x) > 0).float() == y).float().mean())
print(f"after {steps} gradient steps: loss {loss.item():.3f}, training accuracy {acc:.1%}")

# %% [markdown]
# ## Random features make random labels linearly separable (`random-features`)
#
# The deck's experiment: N=1000 random points with random labels, lifted by D=2000 random ReLU
# features, are fitted exactly by a linear SVM. Sweeping D shows the jump near D ≈ N that Cover's
# theorem predicts for points in general position.

# %%
r = show("random-features")

# %% [markdown]
# ## Batch normalisation (`batch-norm`)
#
# Ioffe & Szegedy report reaching the original Inception's accuracy with 14 times fewer steps. The
# demo counts steps to a target accuracy on MNIST for a sigmoid MLP with and without `BatchNorm1d`.

# %%
r = show("batch-norm")
print("steps to target without / with batch norm:", r.get("steps_plain"), "/", r.get("steps_bn"))

# %% [markdown]
# ## Saddle points (`saddle-points`)
#
# The deck's last paper, Dauphin et al. 2014, argues that in high dimensions the critical points
# that trouble training are saddles, not bad local minima: a critical point of high training
# error has many directions of negative curvature (a large *index*, the fraction of negative
# Hessian eigenvalues), and only the low-error ones are minima. The demo checks this on a small
# tanh MLP on 10x10 MNIST: it drives `||grad L||` towards zero from many starting points (a
# Levenberg-Marquardt iteration built from Hessian-vector products, which is drawn to saddles as
# much as to minima), forms each point's full Hessian and counts its negative eigenvalues. It then
# shows a small CNN's loss Hessian on MNIST and CIFAR-10: a bulk of eigenvalues near zero and a
# few large outliers (Lanczos and stochastic Lanczos quadrature, without forming the matrix).

# %%
r = show("saddle-points")
if r:
    print(f"{r['n_points']} critical points; Spearman correlation of index and training error: "
          f"{r['spearman']:.2f}")
    for name, s in r["spectra"].items():
        print(f"{name} CNN: top Hessian eigenvalues {np.round(s['top'][:3], 2)}, "
              f"bulk median |eigenvalue| {s['bulk_median']:.2g}")

# %% [markdown]
# The same tools work on any model: `deepgrad.autograd.functional.hessian` and `hvp` for small
# ones, `deepgrad.utils.hessian.eigenvalues`, `trace` and `density` for large ones. Below, the top
# eigenvalue of a tiny network's loss Hessian by Lanczos, checked against the dense matrix.

# %%
from deepgrad.autograd.functional import hessian
from deepgrad.utils import hessian as hs

net = dg.nn.Sequential(dg.nn.Linear(4, 6), dg.nn.Tanh(), dg.nn.Linear(6, 3)).double()
xs = dg.randn(32, 4, dtype=dg.float64)
ys = dg.randint(0, 3, (32,))
params = list(net.parameters())
top = hs.eigenvalues(lambda: dg.nn.functional.cross_entropy(net(xs), ys), params, k=1)
shapes = [p.shape for p in params]


def loss_of(flat):
    ws, i = [], 0
    for shp in shapes:
        k = int(np.prod(shp))
        ws.append(flat[i:i + k].reshape(shp))
        i += k
    h = dg.tanh(xs @ ws[0].T + ws[1])
    return dg.nn.functional.cross_entropy(h @ ws[2].T + ws[3], ys)


flat = dg.cat([p.detach().reshape(-1) for p in params])
H = hessian(loss_of, flat).numpy()
print(f"Lanczos top eigenvalue {top[0]:.6f}; dense eigh {np.abs(np.linalg.eigvalsh(H)).max():.6f}")
