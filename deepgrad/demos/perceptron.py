"""Rosenblatt's perceptron rule (decks 001, 003).

On linearly separable points the rule  w <- w + y x  (for each misclassified x, labels y = +-1)
stops after a finite number of mistakes (Novikoff's bound (R / margin)^2); on XOR no line
separates the classes and it cycles for ever. McCulloch-Pitts threshold units compute AND, OR
and NOT with hand-set weights.
"""
from __future__ import annotations

import numpy as np

import deepgrad as dg

from . import _common as C

NAME = "perceptron"
DECKS = ("001", "003")
SUMMARY = "Rosenblatt's rule converges on separable data and cycles on XOR; McCulloch-Pitts AND/OR/NOT"


def threshold_unit(w, b, x):
    """A McCulloch-Pitts unit: 1 if w.x + b >= 0 else 0."""
    return (dg.tensor(x, dtype=dg.float32) @ dg.tensor(w, dtype=dg.float32) + b >= 0).long()


def train_perceptron(x, y, max_epochs):
    """Rosenblatt's rule on points ``x`` (n, 2), labels ``y`` in {-1, +1}; the bias is a weight on a
    constant 1. Returns (w, mistakes per epoch, converged, total updates, best training accuracy
    of any weight vector visited, tracked for small problems only)."""
    xa = dg.cat([dg.tensor(x, dtype=dg.float32), dg.ones(len(x), 1)], dim=1)
    yt = dg.tensor(y, dtype=dg.float32)
    w = dg.zeros(3)
    history, updates, best = [], 0, 0.0
    for _ in range(max_epochs):
        mistakes = 0
        for i in range(len(xa)):
            if float(yt[i] * (xa[i] @ w)) <= 0:   # wrong side (or on the line): move towards it
                w = w + yt[i] * xa[i]
                mistakes += 1
                if len(xa) <= 16:   # small problems: track the best line visited
                    best = max(best, float(((xa @ w) * yt > 0).float().mean()))
        updates += mistakes
        history.append(mistakes)
        if mistakes == 0:
            return w.numpy(), history, True, updates, best
    return w.numpy(), history, False, updates, best


def separable_data(n, seed, margin=0.3):
    rng = np.random.default_rng(seed)
    w_true = np.array([1.0, -0.7])
    w_true /= np.linalg.norm(w_true)
    b_true = 0.2
    x, y = [], []
    while len(x) < n:
        p = rng.uniform(-2, 2, size=2)
        s = p @ w_true + b_true
        if abs(s) >= margin:
            x.append(p)
            y.append(1.0 if s > 0 else -1.0)
    return np.array(x), np.array(y), margin


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    out = C.out_dir(out, NAME)
    plt = C.plt()
    n = 40 if quick else 200
    max_epochs = 50 if quick else 200

    C.print_header("McCulloch-Pitts threshold units")
    inputs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    units = {"AND": ([1, 1], -1.5), "OR": ([1, 1], -0.5)}
    truth = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1]}
    logic_ok = True
    for name, (w, b) in units.items():
        got = threshold_unit(w, b, inputs).tolist()
        logic_ok &= got == truth[name]
        print(f"  {name}: w={w}, b={b}: {got}")
    got_not = threshold_unit([-1], 0.5, np.array([[0], [1]], dtype=np.float32)).tolist()
    logic_ok &= got_not == [1, 0]
    print(f"  NOT: w=[-1], b=0.5: {got_not}")

    C.print_header("Perceptron rule on linearly separable data")
    x, y, margin = separable_data(n, seed)
    w_sep, hist_sep, conv_sep, upd_sep, _ = train_perceptron(x, y, max_epochs)
    radius = float(np.max(np.linalg.norm(np.c_[x, np.ones(len(x))], axis=1)))
    # Novikoff: updates <= (R / gamma)^2 with gamma the margin of a unit-norm separator (here on the
    # augmented vector (w_true, b) whose norm is sqrt(1 + b^2))
    gamma = margin / np.sqrt(1 + 0.2 ** 2)
    bound = (radius / gamma) ** 2
    acc_sep = float(np.mean(np.sign(np.c_[x, np.ones(len(x))] @ w_sep) == y))
    C.print_row("converged", conv_sep)
    C.print_row("epochs until no mistake", len(hist_sep))
    C.print_row("total updates (Novikoff bound beside)", upd_sep, round(bound, 1))
    C.print_row("training accuracy", acc_sep, 1.0)

    C.print_header("Perceptron rule on XOR")
    xx = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    yx = np.array([-1.0, 1.0, 1.0, -1.0])
    w_xor, hist_xor, conv_xor, upd_xor, acc_xor = train_perceptron(xx, yx, max_epochs)
    C.print_row("converged", conv_xor, False)
    C.print_row(f"mistakes in the last epoch (of {max_epochs})", hist_xor[-1])
    C.print_row("best training accuracy of any w it visited", acc_xor, "<= 0.75 for any line")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    ax = axes[0]
    for lab, mk, col in ((1.0, "o", "tab:blue"), (-1.0, "x", "tab:red")):
        m = y == lab
        ax.scatter(x[m, 0], x[m, 1], marker=mk, c=col, label=f"y = {int(lab):+d}")
    xs = np.linspace(-2, 2, 50)
    if abs(w_sep[1]) > 1e-12:
        ax.plot(xs, -(w_sep[0] * xs + w_sep[2]) / w_sep[1], "k-", label="perceptron boundary")
    ax.set_xlim(-2, 2), ax.set_ylim(-2, 2)
    ax.set_xlabel("x1"), ax.set_ylabel("x2"), ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Separable data: converged after {upd_sep} updates")
    ax = axes[1]
    ax.plot(range(1, len(hist_sep) + 1), hist_sep, "o-", label="separable")
    ax.plot(range(1, len(hist_xor) + 1), hist_xor, ".-", label="XOR")
    ax.set_xlabel("epoch"), ax.set_ylabel("mistakes in the epoch"), ax.legend()
    ax.set_title("Mistakes per epoch")
    ax = axes[2]
    for lab, mk, col in ((1.0, "o", "tab:blue"), (-1.0, "x", "tab:red")):
        m = yx == lab
        ax.scatter(xx[m, 0], xx[m, 1], marker=mk, c=col, s=120, label=f"y = {int(lab):+d}")
    xs = np.linspace(-0.5, 1.5, 20)
    if abs(w_xor[1]) > 1e-12:
        ax.plot(xs, -(w_xor[0] * xs + w_xor[2]) / w_xor[1], "k--", label="last boundary")
    ax.set_xlim(-0.5, 1.5), ax.set_ylim(-0.5, 1.5)
    ax.set_xlabel("x1"), ax.set_ylabel("x2"), ax.legend(fontsize=8)
    ax.set_title(f"XOR: no line works (best acc {acc_xor:.2f})")
    fig.suptitle("Rosenblatt's perceptron rule")
    path = C.save_figure(fig, C.figure_path(out, "perceptron"))

    return dict(logic_ok=bool(logic_ok), separable_converged=bool(conv_sep), separable_updates=int(upd_sep),
                novikoff_bound=float(bound), separable_accuracy=acc_sep, xor_converged=bool(conv_xor),
                xor_last_epoch_mistakes=int(hist_xor[-1]), xor_accuracy=acc_xor, figures=[str(path)])
