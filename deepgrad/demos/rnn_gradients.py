"""Vanishing and exploding gradients through time (deck 004): "training the network by unrolling it
in time is called back-prop-through-time; vanishing gradients especially problematic here", and
"gradient clipping (constraining the norm of the gradients) helps avoid getting thrown out by NaNs".

1. A vanilla RNN (``nn.RNNCell``) is unrolled for T steps with its recurrent matrix set to
   ``scale * Q`` (Q orthogonal). The loss reads only the last hidden state; ``h_t.retain_grad()``
   gives ``||dL/dh_t||`` for every t. For a small scale the norm shrinks geometrically going back
   in time (vanishing: early inputs cannot be learned from); for a large scale with ReLU it grows
   geometrically (exploding).
2. The same exploding ReLU RNN is trained on the adding problem (Hochreiter & Schmidhuber 1997:
   output the sum of the two marked numbers of a sequence) with plain SGD and with
   ``nn.utils.clip_grad_norm_``: unclipped, one huge gradient throws the weights out and the loss
   becomes inf/NaN; clipped, the loss stays finite and falls.
"""
from __future__ import annotations

import numpy as np

from . import _b_common as C

NAME = "rnn-gradients"
DECKS = ("004",)
SUMMARY = "vanishing/exploding gradients through time in a vanilla RNN; gradient clipping keeps training finite"


def _cell(hidden, nonlinearity, scale, seed):
    import deepgrad as dg
    from .. import nn
    dg.manual_seed(seed)
    cell = nn.RNNCell(2, hidden, nonlinearity=nonlinearity)
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((hidden, hidden)))
    with dg.no_grad():
        cell.weight_hh.copy_(dg.tensor((scale * q).astype(np.float32)))
        cell.bias_hh.zero_()
        cell.bias_ih.zero_()
    return cell


def adding_batch(n, T, rng):
    """``(x (T, n, 2), y (n, 1))``: channel 0 uniform numbers, channel 1 marks two of them; y their sum."""
    x = np.zeros((T, n, 2), np.float32)
    x[:, :, 0] = rng.random((T, n))
    for i in range(n):
        a, b = rng.choice(T, 2, replace=False)
        x[[a, b], i, 1] = 1
    y = (x[:, :, 0] * x[:, :, 1]).sum(0, keepdims=True).T.astype(np.float32)
    return x, y


def grad_norms_through_time(cell, x):
    """``||dL/dh_t||`` (mean over the batch) for t = 1..T, L = sum of the last hidden state."""
    import deepgrad as dg
    hs, h = [], None
    for t in range(x.shape[0]):
        h = cell(dg.tensor(x[t]), h)
        h.retain_grad()
        hs.append(h)
    h.sum().backward()
    return np.array([float(np.linalg.norm(s.grad.numpy(), axis=1).mean()) for s in hs])


def _train(cell, head, steps, T, clip, lr, seed):
    import deepgrad as dg
    from ..nn import functional as F
    rng = np.random.default_rng(seed)
    params = list(cell.parameters()) + list(head.parameters())
    opt = dg.optim.SGD(params, lr=lr)
    losses, norms = [], []
    for _ in range(steps):
        x, y = adding_batch(32, T, rng)
        h = None
        for t in range(T):
            h = cell(dg.tensor(x[t]), h)
        loss = F.mse_loss(head(h), dg.tensor(y))
        opt.zero_grad()
        loss.backward()
        total = dg.nn.utils.clip_grad_norm_(params, clip if clip else float("inf"))
        norms.append(float(total))
        opt.step()
        losses.append(float(loss.item()))
        if not np.isfinite(losses[-1]):
            break
    return losses, norms


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    import deepgrad as dg
    from .. import nn
    out = C.out_dir(NAME, out)
    T, hidden = (30, 32) if quick else (100, 64)
    steps = 40 if quick else 500
    rng = np.random.default_rng(seed)
    x, _ = adding_batch(16, T, rng)
    C.print_header(f"||dL/dh_t|| through {T} steps of a vanilla RNN (hidden {hidden}), W_hh = scale * orthogonal")
    res, curves = {}, {}
    for nl, scale in (("tanh", 0.5), ("tanh", 1.0), ("relu", 1.0), ("relu", 1.5)):
        g = grad_norms_through_time(_cell(hidden, nl, scale, seed), x)
        key = f"{nl}_{scale:g}"
        curves[key] = g
        res[f"ratio_{key}"] = float(g[0] / g[-1])          # gradient at t=1 relative to t=T
        C.print_row(f"{nl}, scale {scale:g}: ||dL/dh_1|| / ||dL/dh_T||", res[f"ratio_{key}"])
    fig, axes = C.new_figure(2, 1)
    ax = axes[0, 0]
    for key, g in curves.items():
        ax.semilogy(np.arange(1, T + 1), g, label=key.replace("_", ", scale "))
    ax.set(title="Gradients through time", xlabel="time step t", ylabel="||dL/dh_t|| (log scale)")
    ax.legend()

    C.print_header(f"adding problem (T={T}), ReLU RNN with scale 1.5, SGD lr 0.01, {steps} steps")
    for clip in (None, 1.0):
        dg.manual_seed(seed)
        cell = _cell(hidden, "relu", 1.5, seed)
        head = nn.Linear(hidden, 1)
        with np.errstate(over="ignore", invalid="ignore"):      # the unclipped run overflows on purpose
            losses, norms = _train(cell, head, steps, T, clip, 0.01, seed)
        key = "clipped" if clip else "unclipped"
        finite = bool(np.all(np.isfinite(losses)))
        res[f"{key}_finite"] = finite
        res[f"{key}_final_loss"] = losses[-1]
        res[f"{key}_steps_run"] = len(losses)
        res[f"{key}_max_grad_norm"] = float(np.nanmax(np.where(np.isfinite(norms), norms, np.nan))) \
            if np.isfinite(norms).any() else float("inf")
        C.print_row(f"{key}: loss finite throughout", finite)
        C.print_row(f"{key}: loss after {len(losses)} steps", losses[-1])
        C.print_row(f"{key}: largest gradient norm seen", res[f"{key}_max_grad_norm"])
        shown = np.where(np.isfinite(losses), losses, np.nan)
        axes[0, 1].semilogy(np.arange(1, len(losses) + 1), shown, marker=None if finite else "x", ms=9,
                            label=("clip_grad_norm_(1.0)" if clip else "no clipping")
                            + ("" if finite else f" (inf/NaN at step {len(losses)})"))
    axes[0, 1].set(title="Training a ReLU RNN: clipping keeps it finite", xlabel="SGD step", ylabel="MSE loss (log)")
    axes[0, 1].legend()
    res["figures"] = [str(C.save_fig(fig, out, "rnn_gradients.png"))]
    return res
