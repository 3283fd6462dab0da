"""Hyper-parameter search: scikit-learn's GridSearchCV over learning rate x width on MNIST (deck 002:
"hyper-parameters are typically hand-tuned ... complicated search space").

A one-hidden-layer MLP (``deepgrad.sklearn.NeuralNetClassifier``, Adam) is cross-validated on a
subset of MNIST's training images for every pair of learning rate and hidden width; the heatmap
shows the mean CV accuracy of each pair. The best pair is refitted on the whole subset
(GridSearchCV's ``refit``) and scored on MNIST's test images. What it shows: the learning rate
matters more than the width -- too small and a few epochs are not enough, too large and Adam
overshoots, across a range that a width change does not make up for -- while a wider net mostly
helps where the step is too small; one finds the good cell by searching both together.

Needs scikit-learn (``pip install deepgrad[sklearn]``).
"""
from __future__ import annotations

import numpy as np

from . import _common as C

NAME = "grid-search"
DECKS = ("002",)
SUMMARY = "GridSearchCV over learning rate x width of an MNIST MLP (deepgrad.sklearn): CV accuracy heatmap"


def settings(quick):
    if quick:
        return dict(n_train=600, n_test=1000, lrs=[1e-3, 1e-2, 1e-1], widths=[16, 64], epochs=2, cv=2)
    return dict(n_train=3000, n_test=10000, lrs=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                widths=[16, 64, 256, 1024], epochs=5, cv=3)


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    try:
        from sklearn.model_selection import GridSearchCV
    except ImportError as e:
        raise ImportError(f"the grid-search demo needs scikit-learn ({e}); install it with "
                          "`pip install deepgrad[sklearn]`") from e
    from ..sklearn import NeuralNetClassifier

    out = C.out_dir(out, NAME)
    s = settings(quick)
    if quick:   # both parts from the (smaller, faster to read) test file, disjoint
        xa, ya = C.mnist_subset(s["n_train"] + s["n_test"], train=False, seed=seed)
        part = np.random.default_rng(seed).permutation(len(ya))
        (x, y), (xt, yt) = [(xa[i], ya[i]) for i in (part[:s["n_train"]], part[s["n_train"]:])]
    else:
        x, y = C.mnist_subset(s["n_train"], train=True, seed=seed)
        xt, yt = C.mnist_subset(s["n_test"], train=False, seed=seed)
    source = "test-file" if quick else "training"
    net = NeuralNetClassifier(optimizer="adam", max_epochs=s["epochs"], batch_size=64, random_state=seed)
    grid = {"lr": s["lrs"], "module__hidden_sizes": [(w,) for w in s["widths"]]}
    C.print_header(f"GridSearchCV: {len(s['lrs'])} learning rates x {len(s['widths'])} widths, "
                   f"{s['cv']}-fold CV on {s['n_train']} MNIST {source} images, {s['epochs']} epochs of Adam")
    with C.Timer() as t:
        search = GridSearchCV(net, grid, cv=s["cv"], scoring="accuracy", refit=True).fit(x, y)
    res = search.cv_results_
    acc = np.zeros((len(s["widths"]), len(s["lrs"])))
    for params, mean in zip(res["params"], res["mean_test_score"]):
        acc[s["widths"].index(params["module__hidden_sizes"][0]), s["lrs"].index(params["lr"])] = mean
    corner = "width \\ lr"
    print(f"  {corner:>12s}" + "".join(f"{lr:>9.0e}" for lr in s["lrs"]))
    for w, row in zip(s["widths"], acc):
        print(f"  {w:>12d}" + "".join(f"{a:9.3f}" for a in row))
    best = search.best_params_
    test_acc = float(search.score(xt, yt))
    C.print_row("best learning rate", best["lr"])
    C.print_row("best width", best["module__hidden_sizes"][0])
    C.print_row("best mean CV accuracy", float(search.best_score_))
    C.print_row(f"test accuracy, best refitted ({s['n_test']} others)", test_acc)
    C.print_row("fits", len(res["params"]) * s["cv"] + 1)
    C.print_row("search time (s)", t.seconds)

    plt = C.plt()
    fig, ax = plt.subplots(figsize=(1.1 * len(s["lrs"]) + 2.5, 0.75 * len(s["widths"]) + 2))
    lo, hi = float(acc.min()), float(acc.max())
    im = ax.imshow(acc, cmap="viridis", vmin=lo, vmax=max(hi, lo + 1e-6), aspect="auto")
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            ax.text(j, i, f"{acc[i, j]:.3f}", ha="center", va="center", fontsize=8,
                    color="black" if acc[i, j] > (lo + hi) / 2 else "white")
    bi, bj = s["widths"].index(best["module__hidden_sizes"][0]), s["lrs"].index(best["lr"])
    ax.add_patch(plt.Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set_xticks(range(len(s["lrs"])), [f"{lr:g}" for lr in s["lrs"]])
    ax.set_yticks(range(len(s["widths"])), [str(w) for w in s["widths"]])
    ax.set_xlabel("learning rate (Adam)"), ax.set_ylabel("hidden width")
    ax.set_title(f"MNIST MLP: mean {s['cv']}-fold CV accuracy\n({s['n_train']} images, {s['epochs']} epochs; "
                 f"best boxed, test acc {test_acc:.3f})", fontsize=9)
    fig.colorbar(im, ax=ax, label="CV accuracy")
    fig_path = C.save_figure(fig, C.figure_path(out, "grid_search"))
    return dict(cv_accuracy=acc.tolist(), lrs=s["lrs"], widths=s["widths"], best_lr=best["lr"],
                best_width=best["module__hidden_sizes"][0], best_cv_accuracy=float(search.best_score_),
                test_accuracy=test_acc, seconds=t.seconds, figures=[str(fig_path)])
