"""Regularisation (decks 001-003): dropout, weight decay, early stopping, and a network memorising
random labels.

* Dropout: Srivastava et al. (2014, table 2) train a 784-1024-1024-1024 ReLU MLP on MNIST: 1.60%
  test error without dropout, 1.25% with it (p = 0.2 on the inputs, 0.5 on the hidden units). The
  full run trains that network on all 60,000 digits for a reduced schedule: 20 epochs instead of
  their thousands, the learning rate annealed to zero along a cosine (a dropout net's weights keep
  moving at a constant rate, and an unannealed 10-epoch run left it behind the plain net); the quick run shrinks it to 196-128-128-128 on 14x14 digits and 1,000 examples,
  where dropout's cost (slower fitting of the training set) shows before its benefit does.
* Weight decay (L2, ``weight_decay`` of SGD): the same net with and without; the weights' norm
  shrinks, as the deck's update ``w <- (1 - eta*lambda) w - eta*grad`` says it must.
* Early stopping: validation loss measured as training runs; the step where a patience rule stops
  (and the best step it restores) are marked on the curve.
* Random labels (Zhang et al. 2017, "Understanding deep learning requires rethinking
  generalization"): the same kind of network drives its training error on *shuffled* labels
  towards zero while its test accuracy stays at chance (10%): capacity alone does not explain
  generalisation.
"""
from __future__ import annotations

import numpy as np

from . import _b_common as C

NAME = "regularization"
DECKS = ("001", "002", "003")
SUMMARY = "dropout on the 784-1024-1024-1024 MLP (Srivastava et al.: 1.25% vs 1.60%), weight decay, " \
          "early stopping, fitting random labels (Zhang et al. 2017)"


def _mlp(d_in, width, depth, dropout, seed):
    import deepgrad as dg
    from .. import nn
    dg.manual_seed(seed)
    layers = [nn.Dropout(0.2)] if dropout else []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()] + ([nn.Dropout(0.5)] if dropout else [])
        d = width
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers)


def _weight_norm(model):
    return float(np.sqrt(sum(float((p.detach().numpy() ** 2).sum()) for n, p in model.named_parameters()
                             if n.endswith("weight"))))


def _val_loss(model, x, y):
    import deepgrad as dg
    from ..nn import functional as F
    model.eval()
    with dg.no_grad():
        return float(F.cross_entropy(model(dg.tensor(x)), dg.tensor(y)).item())


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    import deepgrad as dg
    out = C.out_dir(NAME, out)
    if quick:
        size, n_train, n_test, width, depth, steps, lr = 14, 1000, 1000, 128, 3, 120, 0.05
    else:
        size, n_train, n_test, width, depth, steps, lr = 28, 60000, 10000, 1024, 3, 12000, 0.05

    def schedule(opt):      # full mode: cosine annealing over the run, counted in updates
        return None if quick else dg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    xtr, ytr, xte, yte = C.mnist_arrays(n_train, n_test, size=size, flatten=True)
    d_in = xtr.shape[1]
    res = {}

    # -- dropout -------------------------------------------------------------------------------
    C.print_header(f"dropout: {d_in}-{width}-{width}-{width} ReLU MLP, {n_train} digits, {steps} SGD steps"
                   + ("" if quick else " of 100, lr 0.05 cosine-annealed to 0"))
    curves, trained = {}, {}
    for drop in (False, True):
        model = trained[drop] = _mlp(d_in, width, depth, drop, seed)
        opt = dg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        curves[drop] = C.train_steps(model, opt, xtr, ytr, steps, batch_size=100, seed=seed,
                                     scheduler=schedule(opt))
        tr_err = 1 - C.accuracy(model, xtr[:2000], ytr[:2000])
        te_err = 1 - C.accuracy(model, xte, yte)
        key = "dropout" if drop else "standard"
        res[f"{key}_train_error"], res[f"{key}_test_error"] = tr_err, te_err
        C.print_row(f"{key}: train error", f"{100 * tr_err:.2f}%")
        C.print_row(f"{key}: test error", f"{100 * te_err:.2f}%", "1.25%" if drop else "1.60%")
    fig, ax = C.new_figure()
    ax = ax[0, 0]
    for drop, ls in curves.items():
        ax.plot(np.convolve(ls, np.ones(10) / 10, "valid"),
                label="dropout (0.2 in, 0.5 hidden)" if drop else "no dropout")
    ax.set(title="MLP on MNIST with and without dropout", xlabel="SGD step", ylabel="training loss (10-step mean)")
    ax.legend()
    figs = [C.save_fig(fig, out, "regularization_dropout.png")]

    # -- weight decay --------------------------------------------------------------------------
    C.print_header("weight decay (L2): SGD weight_decay=0 vs 5e-3")
    norms = {}
    for wd in (0.0, 5e-3):
        if wd == 0.0:         # the same seed, data order and optimiser as the dropout part's plain net
            model = trained[False]
        else:
            model = _mlp(d_in, width, depth, False, seed)
            opt = dg.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
            C.train_steps(model, opt, xtr, ytr, steps, batch_size=100, seed=seed, scheduler=schedule(opt))
        norms[wd] = _weight_norm(model)
        acc = C.accuracy(model, xte, yte)
        C.print_row(f"weight_decay={wd:g}: ||W||", norms[wd])
        C.print_row(f"weight_decay={wd:g}: test error", f"{100 * (1 - acc):.2f}%")
        res[f"wd{wd:g}_norm"], res[f"wd{wd:g}_test_error"] = norms[wd], 1 - acc
    res["weight_norm_plain"], res["weight_norm_decay"] = norms[0.0], norms[5e-3]

    # -- early stopping ------------------------------------------------------------------------
    n_small = min(300 if quick else 2000, len(xtr))
    es_steps, every, patience = (240, 10, 5) if quick else (4000, 50, 10)
    C.print_header(f"early stopping: {n_small} training digits, validation loss every {every} steps, "
                   f"patience {patience}")
    model = _mlp(d_in, width, depth, False, seed)
    opt = dg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    xval, yval = xte[: n_test // 2], yte[: n_test // 2]
    hist = {"step": [], "val": [], "train": []}
    state = {"best": np.inf, "best_step": 0, "bad": 0, "stop": None}

    def check(step):
        v = _val_loss(model, xval, yval)
        hist["step"].append(step)
        hist["val"].append(v)
        hist["train"].append(_val_loss(model, xtr[:n_small], ytr[:n_small]))
        if v < state["best"]:
            state.update(best=v, best_step=step, bad=0)
        else:
            state["bad"] += 1
            if state["bad"] >= patience and state["stop"] is None:
                state["stop"] = step          # where the rule stops; we train on to show what follows
        return False

    C.train_steps(model, opt, xtr[:n_small], ytr[:n_small], es_steps, batch_size=50, seed=seed,
                  every=every, callback=check)
    stop = state["stop"] if state["stop"] is not None else es_steps
    res.update(early_stop_step=stop, best_step=state["best_step"], best_val_loss=state["best"],
               final_val_loss=hist["val"][-1], final_train_loss=hist["train"][-1])
    C.print_row("best validation loss (step)", f"{state['best']:.3f} ({state['best_step']})")
    C.print_row("patience rule stops at step", stop)
    C.print_row("validation loss at the end", hist["val"][-1])
    fig, ax = C.new_figure()
    ax = ax[0, 0]
    ax.plot(hist["step"], hist["train"], label="training loss")
    ax.plot(hist["step"], hist["val"], label="validation loss")
    ax.axvline(state["best_step"], color="g", ls=":", label=f"best (step {state['best_step']})")
    ax.axvline(stop, color="r", ls="--", label=f"early stop (step {stop})")
    ax.set(title="Early stopping", xlabel="SGD step", ylabel="cross-entropy")
    ax.legend()
    figs.append(C.save_fig(fig, out, "regularization_early_stopping.png"))

    # -- random labels -------------------------------------------------------------------------
    n_rand, r_steps, r_width = (256, 300, 2 * width) if quick else (2000, 4000, 512)
    n_rand = min(n_rand, len(xtr))
    C.print_header(f"random labels (Zhang et al. 2017): {n_rand} digits with shuffled labels")
    rng = np.random.default_rng(seed)
    yr = rng.integers(0, 10, n_rand)
    curves = {}
    for name, labels in (("true labels", ytr[:n_rand]), ("random labels", yr)):
        model = _mlp(d_in, r_width, 2, False, seed)
        opt = dg.optim.Adam(model.parameters(), lr=2e-3)
        accs = []
        C.train_steps(model, opt, xtr[:n_rand], labels, r_steps, batch_size=min(128, n_rand), seed=seed,
                      every=max(1, r_steps // 20), callback=lambda s: accs.append(
                          C.accuracy(model, xtr[:n_rand], labels)) and False)
        curves[name] = accs
        tr, te = C.accuracy(model, xtr[:n_rand], labels), C.accuracy(model, xte, yte)
        key = "random" if name.startswith("random") else "true"
        res[f"{key}_labels_train_acc"], res[f"{key}_labels_test_acc"] = tr, te
        C.print_row(f"{name}: train accuracy", f"{100 * tr:.1f}%", "100%")
        C.print_row(f"{name}: test accuracy", f"{100 * te:.1f}%", "chance (10%)" if key == "random" else None)
    fig, ax = C.new_figure()
    ax = ax[0, 0]
    every = max(1, r_steps // 20)
    for name, accs in curves.items():
        ax.plot(np.arange(1, len(accs) + 1) * every, accs, label=name)
    ax.axhline(0.1, color="gray", ls=":", label="chance")
    ax.set(title="Fitting random labels (Zhang et al. 2017)", xlabel="Adam step", ylabel="training accuracy")
    ax.legend()
    figs.append(C.save_fig(fig, out, "regularization_random_labels.png"))
    res["figures"] = [str(p) for p in figs]
    return res
