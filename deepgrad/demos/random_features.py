"""Random features become linearly separable (deck 000, "shallow or linear classifiers not enough").

The deck's experiment, exactly: 2N = 2000 points (N = 1000 per class) whose D = 2000 features are
drawn at random, ``f = np.random.normal(size=(2*N, D))``, labels ``arange(2N) < N`` (arbitrary,
since the features carry no information) -- a linear SVM fits them perfectly, training accuracy
1.0, ten times out of ten. Cover's theorem (1965) says why: P points in general position in D
dimensions (plus a bias) can be split in *every* way by a hyperplane while P <= D + 1, and a random
labelling stays separable with probability 1/2 at P = 2(D + 1). With P = 2N points the transition
sits at D ~ N, which the sweep shows. The same happens with random ReLU features
relu(W x + b) of low-dimensional random inputs (the random-features / extreme-learning-machine view
of a wide hidden layer), with a later transition since those features are correlated.

The SVM is deepgrad's: a weight vector and bias trained with Adam on the mean hinge loss
max(0, 1 - y (w.f + b)) plus a small L2 penalty (the primal SVM), stopped as soon as every point
is on its side. "Separable" is thus what the solver found within its step budget: near the
transition it under-reports slightly.
"""
from __future__ import annotations

import math

import numpy as np

import deepgrad as dg

from . import _common as C

NAME = "random-features"
DECKS = ("000",)
SUMMARY = "N=1000 random points, D=2000 random features: a linear SVM fits random labels (Cover's theorem)"


def fit_linear_svm(f, y, steps=500, lr=0.2, l2=1e-4):
    """Primal linear SVM on features ``f`` (P, D) and labels ``y`` in {-1, +1}; returns
    (training accuracy, steps used, final hinge loss)."""
    x = dg.tensor(np.ascontiguousarray(f, dtype=np.float32))
    yt = dg.tensor(np.asarray(y, dtype=np.float32))
    w = dg.zeros(x.shape[1], requires_grad=True)
    b = dg.zeros(1, requires_grad=True)
    opt = dg.optim.Adam([w, b], lr=lr)
    acc, loss_v = 0.0, float("nan")
    for step in range(steps + 1):
        margin = yt * (x @ w + b)
        acc = float((margin > 0).float().mean())
        hinge = dg.clamp(1 - margin, min=0).mean()
        loss_v = float(hinge)
        if acc == 1.0 or step == steps:
            return acc, step, loss_v
        loss = hinge + 0.5 * l2 * (w * w).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return acc, steps, loss_v


def deck_features(n, d, rng):
    """The deck's ``np.random.normal(size=(2*N, D))`` and ``arange(2N) < N`` labels (as +-1)."""
    f = rng.standard_normal((2 * n, d)).astype(np.float32)
    y = np.where(np.arange(2 * n) < n, 1.0, -1.0).astype(np.float32)
    return f, y


def relu_features(n, d, rng, input_dim=50):
    """2N random points in ``input_dim`` dimensions with random +-1 labels, mapped through ``d``
    random ReLU units relu(W x + b) (standardised per feature)."""
    x = dg.tensor(rng.standard_normal((2 * n, input_dim)).astype(np.float32))
    w = dg.tensor((rng.standard_normal((input_dim, d)) / math.sqrt(input_dim)).astype(np.float32))
    b = dg.tensor(rng.standard_normal(d).astype(np.float32))
    f = dg.relu(x @ w + b)
    f = (f - f.mean(0)) / (f.std(0) + 1e-6)
    y = rng.permutation(np.where(np.arange(2 * n) < n, 1.0, -1.0)).astype(np.float32)
    return f.numpy(), y


def cover_probability(p, d):
    """Cover's count: the probability that a random labelling of ``p`` points in general position
    is separable by an affine hyperplane in ``d`` dimensions (d + 1 free parameters)."""
    k = d + 1
    if p <= k:
        return 1.0
    # 2 * sum_{i<k} C(p-1, i) / 2^p  computed in logs
    logs = [math.lgamma(p) - math.lgamma(i + 1) - math.lgamma(p - i) for i in range(k)]
    top = max(logs)
    s = sum(math.exp(v - top) for v in logs)
    return min(1.0, math.exp(math.log(2) + top + math.log(s) - p * math.log(2)))


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    out = C.out_dir(out, NAME)
    plt = C.plt()
    rng = np.random.default_rng(seed)
    dg.manual_seed(seed)

    n, d = 1000, 2000
    repeats = 1 if quick else 10
    C.print_header(f"The deck's experiment: 2N = {2 * n} random points, D = {d} random features, linear SVM")
    scores = []
    for it in range(repeats):
        f, y = deck_features(n, d, rng)
        acc, steps, _ = fit_linear_svm(f, y, steps=500)
        scores.append(acc)
        print(f"  run {it}: training accuracy {acc:.4f} after {steps} Adam steps   [deck: 1.0]")
    C.print_row("mean training accuracy (deck prints 1.0 x 10)", float(np.mean(scores)), 1.0)

    relu_acc = None
    if not quick:
        f, y = relu_features(n, d, rng)
        relu_acc, steps, _ = fit_linear_svm(f, y, steps=2000)
        C.print_row(f"random ReLU features, D={d}: train accuracy ({steps} steps)", relu_acc, 1.0)

    # sweep D around N (fixed number of points): the transition near D ~ N
    n_sweep = 100 if quick else 1000
    fracs = [0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0] if not quick else [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
    reps = 1 if quick else 2
    steps_sweep = 250 if quick else 1000
    relu_dim = 10 if quick else 50
    ds = [max(2, int(round(r * n_sweep))) for r in fracs]
    C.print_header(f"Sweep: 2N = {2 * n_sweep} points, D from {ds[0]} to {ds[-1]} ({reps} draw(s) each)")
    print(f"  {'D':>6s} {'D/N':>5s} {'gauss acc':>10s} {'relu acc':>10s} {'gauss sep':>10s} {'Cover P(sep)':>13s}")
    gauss_acc, relu_accs, gauss_sep, cover = [], [], [], []
    for dd in ds:
        g = [fit_linear_svm(*deck_features(n_sweep, dd, rng), steps=steps_sweep)[0] for _ in range(reps)]
        ra = np.mean([fit_linear_svm(*relu_features(n_sweep, dd, rng, input_dim=relu_dim), steps=steps_sweep)[0]
                      for _ in range(reps)])
        cp = cover_probability(2 * n_sweep, dd)
        gauss_acc.append(float(np.mean(g))), relu_accs.append(float(ra)), cover.append(cp)
        gauss_sep.append(float(np.mean([a == 1.0 for a in g])))
        print(f"  {dd:6d} {dd / n_sweep:5.2f} {np.mean(g):10.4f} {ra:10.4f} {gauss_sep[-1]:10.2f} {cp:13.3f}")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ratio = np.array(ds) / n_sweep
    ax = axes[0]
    ax.plot(ratio, gauss_acc, "o-", label="Gaussian random features (deck)")
    ax.plot(ratio, relu_accs, "s-", label=f"random ReLU features of {relu_dim}-d inputs")
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(f"D / N   (2N = {2 * n_sweep} points, D features)")
    ax.set_ylabel("training accuracy of the linear SVM")
    ax.set_title("Training accuracy on random labels")
    ax.legend(loc="lower right", fontsize=8)
    ax = axes[1]
    fine = np.linspace(ds[0], ds[-1], 200).round().astype(int)
    ax.plot(fine / n_sweep, [cover_probability(2 * n_sweep, int(v)) for v in fine], "k--",
            label="Cover's theorem")
    ax.plot(ratio, gauss_sep, "o-", label=f"SVM found a separator ({reps} draw(s))")
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("D / N")
    ax.set_ylabel("probability the random labelling is separable")
    ax.set_title("Transition near D = N (P = 2N points)")
    ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("Random features become linearly separable (deck 000)")
    path = C.save_figure(fig, C.figure_path(out, "random_features"))
    return dict(deck_accuracies=scores, deck_accuracy=float(np.mean(scores)), relu_accuracy=relu_acc,
                sweep_d=ds, sweep_n=n_sweep, sweep_gauss=gauss_acc, sweep_relu=relu_accs, sweep_separated=gauss_sep, sweep_cover=cover,
                figures=[str(path)])
