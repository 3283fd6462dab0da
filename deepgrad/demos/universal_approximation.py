"""Universal approximation with ReLUs (deck 001).

The deck's picture: any continuous f on [a, b] is approximated by a linear combination of
translated ReLUs. The construction is explicit: the piecewise-linear interpolant of f at N + 1
knots t_0 < ... < t_N is  f(t_0) + sum_i c_i relu(x - t_i),  one ReLU per knot, c_i the change of
slope there -- a one-hidden-layer network with N units whose sup error falls like 1/N^2 for a
smooth f. Beside it, the same network with N hidden ReLUs *trained* by gradient descent (Adam on the
mean squared error), started from N ReLUs with random knots whose output weights are solved by
least squares (a random-features fit): worse than the construction, but improving with N.
"""
from __future__ import annotations

import numpy as np

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F

from . import _common as C

NAME = "universal-approximation"
DECKS = ("001",)
SUMMARY = "a sum of N ReLUs fitted to a 1-D function: constructed and trained; sup error vs N"

A, B = -3.0, 3.0


def target(x):
    return np.sin(2.0 * x) + 0.3 * x + 0.5 * np.cos(5.0 * x) * np.exp(-x * x)


def relu_interpolant(n):
    """(bias, slopes c_i, knots t_i) so that f(t_0) + sum_i c_i relu(x - t_i) interpolates f at n + 1 knots."""
    knots = np.linspace(A, B, n + 1)
    values = target(knots)
    slopes = np.diff(values) / np.diff(knots)               # slope on each of the n pieces
    c = np.diff(np.r_[0.0, slopes])                          # change of slope at each left knot
    return float(values[0]), c, knots[:-1]


class SumOfReLUs(nn.Module):
    """x -> bias + sum_i c_i relu(w_i x + b_i): one hidden layer of N ReLUs."""

    def __init__(self, n):
        super().__init__()
        self.hidden = nn.Linear(1, n)
        self.out = nn.Linear(n, 1)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x)))

    def set_interpolant(self, n):
        bias, c, knots = relu_interpolant(n)
        with dg.no_grad():
            self.hidden.weight.copy_(dg.ones(n, 1))
            self.hidden.bias.copy_(dg.tensor(-knots, dtype=dg.float32))
            self.out.weight.copy_(dg.tensor(c[None, :], dtype=dg.float32))
            self.out.bias.copy_(dg.tensor([bias], dtype=dg.float32))
        return self

    def random_knots(self, n, rng):
        """Hidden units relu(+-(x - t)) with knots t spread at random over [a, b] (so every unit is
        active somewhere on the interval), output weights zero: the starting point of training."""
        sign = rng.choice([-1.0, 1.0], size=n)
        knots = rng.uniform(A, B, size=n)
        with dg.no_grad():
            self.hidden.weight.copy_(dg.tensor(sign[:, None], dtype=dg.float32))
            self.hidden.bias.copy_(dg.tensor(-sign * knots, dtype=dg.float32))
            self.out.weight.zero_()
            self.out.bias.zero_()
        return self

    def solve_output(self, xs):
        """Least-squares output weights for the current hidden units (a random-features fit)."""
        with dg.no_grad():
            h = F.relu(self.hidden(dg.tensor(xs[:, None].astype(np.float32))))
            design = dg.cat([h, dg.ones(h.shape[0], 1)], dim=1).double()
            y = dg.tensor(target(xs)[:, None])
            # a touch of ridge: nearly coincident random knots make the plain least-squares
            # weights huge and cancelling, which float32 cannot hold
            k = design.shape[1]
            ridge = 1e-3 * dg.eye(k, dtype=dg.float64)
            coef = dg.linalg.lstsq(dg.cat([design, ridge]), dg.cat([y, dg.zeros(k, 1, dtype=dg.float64)]))
            coef = coef.solution.float()
            self.out.weight.copy_(coef[:-1].T)
            self.out.bias.copy_(coef[-1])
        return self


def sup_error(model, xs):
    with dg.no_grad():
        pred = model(dg.tensor(xs[:, None].astype(np.float32))).numpy()[:, 0]
    return float(np.max(np.abs(pred - target(xs)))), pred


def train(model, steps, lr, seed):
    xs = np.linspace(A, B, 400, dtype=np.float32)
    x, y = dg.tensor(xs[:, None]), dg.tensor(target(xs)[:, None].astype(np.float32))
    opt = dg.optim.Adam(model.parameters(), lr=lr)
    sched = dg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    for _ in range(steps):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return float(loss)


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    out = C.out_dir(out, NAME)
    plt = C.plt()
    dg.manual_seed(seed)
    ns = [2, 4, 8, 16, 32] if quick else [2, 4, 8, 16, 32, 64, 128]
    steps = 250 if quick else 3000
    xs = np.linspace(A, B, 2001)
    rng = np.random.default_rng(seed)

    C.print_header(f"f(x) = sin 2x + 0.3x + 0.5 cos 5x exp(-x^2) on [{A}, {B}]: sup |f - f_N| over 2001 points")
    print(f"  {'N ReLUs':>8s} {'constructed':>12s} {'random knots':>14s} {'+ Adam':>12s}")
    built, lsq, trained, fits = [], [], [], {}
    for n in ns:
        m_built = SumOfReLUs(n).set_interpolant(n)
        e_built, p_built = sup_error(m_built, xs)
        m_tr = SumOfReLUs(n).random_knots(n, rng)
        e_rf, _ = sup_error(m_tr.solve_output(np.linspace(A, B, 400)), xs)
        train(m_tr, steps, lr=0.005, seed=seed)
        e_tr, p_tr = sup_error(m_tr, xs)
        built.append(e_built), lsq.append(e_rf), trained.append(e_tr)
        fits[n] = (p_built, p_tr)
        print(f"  {n:8d} {e_built:12.4g} {e_rf:14.4g} {e_tr:12.4g}")
    slope = float(np.polyfit(np.log(ns[2:]), np.log(built[2:]), 1)[0])
    C.print_row("log-log slope of the constructed sup error", slope, -2.0)

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), layout="constrained")
    shown = [n for n in ns if n in (4, 16, ns[-1])]
    for ax, which, title in ((axes[0], 0, "constructed: piecewise-linear interpolant"),
                             (axes[1], 1, f"random knots + least squares + {steps} Adam steps")):
        ax.plot(xs, target(xs), "k-", lw=2.5, alpha=0.4, label="f(x)")
        for n in shown:
            ax.plot(xs, fits[n][which], lw=1.2, label=f"N = {n} ReLUs")
        ax.set_xlabel("x"), ax.set_ylabel("f(x)"), ax.set_title(title), ax.legend(fontsize=8)
    ax = axes[2]
    ax.loglog(ns, built, "o-", label="constructed")
    ax.loglog(ns, lsq, "^-", label="random knots, least squares")
    ax.loglog(ns, trained, "s-", label="... then trained (Adam)")
    ref = built[2] * (np.array(ns, dtype=float) / ns[2]) ** -2.0
    ax.loglog(ns, ref, "k--", lw=0.8, label="slope -2 (1/N^2)")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("N (hidden ReLUs)"), ax.set_ylabel("sup error"), ax.set_title("Sup error vs N"), ax.legend()
    fig.suptitle("Universal approximation: sums of N ReLUs")
    path = C.save_figure(fig, C.figure_path(out, "universal_approximation"))
    return dict(n=ns, sup_error_constructed=built, sup_error_random_knots=lsq, sup_error_trained=trained, constructed_slope=slope,
                figures=[str(path)])
