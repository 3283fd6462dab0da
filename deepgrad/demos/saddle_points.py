"""Saddle points (deck 000; Dauphin et al. 2014, "Identifying and attacking the saddle point problem
in high-dimensional non-convex optimization").

Two experiments on the loss Hessian, both built on deepgrad's second-order autograd:

1. **Index vs error.** Dauphin et al. (their Fig. 1) train a small MLP on MNIST down-sampled to
   10x10, find many critical points of its training loss and plot each one's training error
   against its *index* alpha, the fraction of negative Hessian eigenvalues: critical points of high
   error are saddles with many descent directions, the low-error ones are (nearly) minima. Here:
   a 100-h-10 tanh MLP (a few hundred parameters; a small L2 penalty makes the loss coercive and
   lifts the exactly flat directions, so every eigenvalue's sign means something). Starting points
   are snapshots of gradient descent from several initialisations at different stages (plus
   near-zero initialisations, next to the saddle at the origin); from each, the gradient norm is
   driven down by minimising ``||grad L||^2`` -- a Levenberg-Marquardt iteration on the equations
   ``grad L = 0`` in a Krylov space built from Hessian-vector products (like Newton's method,
   which the paper used, it is attracted to saddles as much as to minima). At every point reached
   the full Hessian is formed column by column from Hessian-vector products and eigendecomposed
   with ``deepgrad.linalg.eigh``; training error and index are printed and plotted, with their
   rank (Spearman) and Pearson correlations.

   Speed: all points are handled at once by stacking their parameter vectors as the rows of one
   (P, n) tensor (the MLP is evaluated for every row by batched matrix products), so one double
   backward returns P Hessian-vector products, one per point, and the n columns of the P Hessians
   come out of n*P/chunk backward passes.

2. **Hessian spectra.** A small CNN trained briefly on MNIST and on CIFAR-10: the top eigenvalues
   of its loss Hessian by Lanczos and its spectral density by stochastic Lanczos quadrature
   (``deepgrad.utils.hessian``; Ghorbani et al. 2019, Sagun et al. 2017), never forming the
   matrix: a bulk of eigenvalues near zero and a few large outliers.
"""
from __future__ import annotations

import numpy as np

from . import _b_common as C

NAME = "saddle-points"
DECKS = ("000",)
SUMMARY = "index (fraction of negative Hessian eigenvalues) vs training error of an MLP's critical points; CNN Hessian spectra"

N_CLASSES = 10


# ------------------------------------------------------------------------------ data
def mnist_10x10(n):
    """``(x, y)``: the first ``n`` MNIST training digits, the central 20x20 averaged over 2x2
    blocks to 10x10 (Dauphin et al.'s down-sampled MNIST), standardised, flattened, float64."""
    x, y, _, _ = C.mnist_arrays(n, 1, size=28)
    x = x[:, :, 4:24, 4:24].reshape(n, 10, 2, 10, 2).mean((2, 4)).reshape(n, 100)
    return np.ascontiguousarray(x, dtype=np.float64), y


# ------------------------------------------------------------ the MLP, P copies at once
class StackedMLP:
    """A ``d -> hidden (tanh) -> 10`` MLP whose parameters are one flat vector of ``n`` entries
    (W1, b1, W2, b2 in that order); ``losses(T)`` evaluates it for every row of a (P, n) tensor
    ``T`` at once. ``weight_decay`` adds ``wd/2 ||theta||^2`` to the mean cross-entropy."""

    def __init__(self, x, y, hidden, weight_decay=0.0):
        import deepgrad as dg
        self.x, self.y = x, y
        self.X, self.Y = dg.tensor(x), dg.tensor(y)
        self.d, self.h, self.wd = x.shape[1], int(hidden), float(weight_decay)
        self.shapes = [(self.h, self.d), (self.h,), (N_CLASSES, self.h), (N_CLASSES,)]
        self.n = int(sum(np.prod(s) for s in self.shapes))

    def init(self, count, scale, rng):
        """``count`` random parameter vectors: weights N(0, scale^2 / fan_in), biases zero."""
        th = np.zeros((count, self.n))
        i = 0
        for s in self.shapes:
            m = int(np.prod(s))
            if len(s) == 2:
                th[:, i:i + m] = rng.standard_normal((count, m)) * scale / np.sqrt(s[1])
            i += m
        return th

    def unpack(self, T):
        k, i, out = T.shape[0], 0, []
        for s in self.shapes:
            m = int(np.prod(s))
            out.append(T[:, i:i + m].reshape((k,) + s))
            i += m
        return out

    def losses(self, T):
        """``(loss (P,) Tensor, training error (P,) array)`` for the P parameter rows of ``T``."""
        import deepgrad.nn.functional as F
        import deepgrad as dg
        k, N = T.shape[0], self.x.shape[0]
        W1, b1, W2, b2 = self.unpack(T)
        # one GEMM for the first layer of all P networks: (N, d) @ (d, P*h)
        a = (self.X @ W1.reshape(k * self.h, self.d).T).reshape(N, k, self.h).permute(1, 0, 2) + b1[:, None, :]
        z = dg.tanh(a) @ W2.transpose(1, 2) + b2[:, None, :]                      # (P, N, 10)
        ce = F.cross_entropy(z.reshape(k * N, N_CLASSES), self.Y.repeat(k), reduction="none").reshape(k, N).mean(1)
        loss = ce + (0.5 * self.wd) * (T * T).sum(1) if self.wd else ce
        err = (z.detach().numpy().argmax(-1) != self.y[None]).mean(1)
        return loss, err

    def loss_fn(self):
        """The loss of one parameter vector as a function ``theta (n,) -> scalar`` (for
        ``deepgrad.autograd.functional``)."""
        return lambda theta: self.losses(theta.reshape(1, -1))[0].sum()

    def gradients(self, th):
        """``(loss, error, gradient)`` as arrays for every row of ``th`` (P, n)."""
        import deepgrad as dg
        T = dg.tensor(th).requires_grad_(True)
        loss, err = self.losses(T)
        g, = dg.autograd.grad(loss.sum(), [T])
        return loss.detach().numpy(), err, g.numpy()

    def hvp_operator(self, th):
        """``V -> rows H(theta_p) v_p`` for the P points ``th``: the gradients once with
        ``create_graph=True``, then one backward through them per product."""
        import deepgrad as dg
        T = dg.tensor(th).requires_grad_(True)
        loss, _ = self.losses(T)
        G, = dg.autograd.grad(loss.sum(), [T], create_graph=True)

        def apply(V):
            hv, = dg.autograd.grad((G * dg.tensor(V)).sum(), [T], retain_graph=True)
            return hv.numpy()
        return apply

    def hessians(self, th, chunk=256):
        """The full Hessians (P, n, n) at the P points ``th``: column j of point p is
        ``H(theta_p) e_j``; the P*n products run ``chunk`` at a time as stacked rows."""
        P, n = th.shape
        out = np.empty((P * n, n))
        rows, cols = np.repeat(np.arange(P), n), np.tile(np.arange(n), P)
        for s in range(0, P * n, chunk):
            r, c = rows[s:s + chunk], cols[s:s + chunk]
            E = np.zeros((len(r), n))
            E[np.arange(len(r)), c] = 1.0
            out[s:s + chunk] = self.hvp_operator(th[r])(E)
        out = out.reshape(P, n, n)
        return 0.5 * (out + out.transpose(0, 2, 1))


def gradient_descent_snapshots(model, th, lr, stops):
    """Full-batch gradient descent on every row of ``th``; a copy at each step count in ``stops``."""
    snaps, step = [], 0
    th = th.copy()
    for stop in stops:
        while step < stop:
            th -= lr * model.gradients(th)[2]
            step += 1
        snaps.append(th.copy())
    return snaps


def minimise_gradient_norm(model, th, iters, krylov=20, tol=1e-12):
    """Drive ``||grad L||`` down from every row of ``th`` at once: Levenberg-Marquardt on the
    equations ``grad L(theta) = 0`` (Jacobian = the Hessian H), i.e. minimising ``||grad L||^2``.

    Each iteration runs ``krylov`` Lanczos steps on H from g (Hessian-vector products only, full
    reorthogonalisation): ``H Q_m = Q_{m+1} T`` with ``q_1 = g/|g|``. The step ``d = Q_m y``
    minimises ``|g + H d|^2 + mu |y|^2``, i.e. ``(T^T T + mu I) y = -|g| T^T e_1``; it is kept if
    ``|grad L|`` falls (then mu shrinks 10x) and otherwise retried with 4x mu (no new products).
    Without damping the step is MINRES's Newton step: minima, saddles and maxima attract alike.
    Returns ``(theta, loss, error, gradient norm, log of the gradient norms)``."""
    th = th.copy()
    P, n = th.shape
    m = min(int(krylov), n)
    loss, err, g = model.gradients(th)
    gn = np.linalg.norm(g, axis=1)
    mu = np.full(P, 1e-2)
    history = [gn.copy()]
    for _ in range(int(iters)):
        act = np.flatnonzero(gn > tol)
        if len(act) == 0:
            break
        hv = model.hvp_operator(th[act])
        A = len(act)
        Q = np.zeros((A, m + 1, n))
        T = np.zeros((A, m + 1, m))
        Q[:, 0] = g[act] / gn[act, None]
        for j in range(m):
            w = hv(Q[:, j])
            T[:, j, j] = np.einsum("pn,pn->p", w, Q[:, j])
            for _ in range(2):          # full reorthogonalisation against q_1..q_j
                w -= np.einsum("pk,pkn->pn", np.einsum("pkn,pn->pk", Q[:, :j + 1], w), Q[:, :j + 1])
            b = np.linalg.norm(w, axis=1)
            T[:, j + 1, j] = b
            if j + 1 < m:
                T[:, j, j + 1] = b
            Q[:, j + 1] = np.where(b[:, None] > 1e-13, w / np.maximum(b, 1e-300)[:, None], 0.0)
        TtT = np.einsum("pim,pik->pmk", T, T)
        rhs = -gn[act, None] * T[:, 0, :]
        todo = np.arange(A)
        for _ in range(10):
            if len(todo) == 0:
                break
            sys_ = TtT[todo] + mu[act[todo], None, None] * np.eye(m)
            y = np.linalg.solve(sys_, rhs[todo][..., None])[..., 0]
            d = np.einsum("pm,pmn->pn", y, Q[todo, :m])
            l2, e2, g2 = model.gradients(th[act[todo]] + d)
            gn2 = np.linalg.norm(g2, axis=1)
            ok = gn2 < gn[act[todo]]
            k = act[todo[ok]]
            th[k] += d[ok]
            g[k], gn[k], loss[k], err[k] = g2[ok], gn2[ok], l2[ok], e2[ok]
            mu[k] = np.maximum(mu[k] / 10, 1e-12)
            mu[act[todo[~ok]]] *= 4
            todo = todo[~ok]
        history.append(gn.copy())
    return th, loss, err, gn, np.array(history)


def _ranks(a):
    order = np.argsort(a, kind="stable")
    r = np.empty(len(a))
    r[order] = np.arange(len(a))
    for v in np.unique(a):                      # ties share their mean rank
        sel = a == v
        r[sel] = r[sel].mean()
    return r


def correlations(a, b):
    """``(Spearman, Pearson)`` correlation of two 1-D arrays."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    pear = float(np.corrcoef(a, b)[0, 1])
    spear = float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])
    return spear, pear


def index_of(eigenvalues, rel=1e-6):
    """The index alpha: the fraction of eigenvalues below ``-rel * max|lambda|`` (per row)."""
    lam = np.atleast_2d(eigenvalues)
    return (lam < -rel * np.abs(lam).max(1, keepdims=True)).mean(1)


def index_vs_error(quick, seed):
    import deepgrad as dg
    if quick:
        n_img, hidden, inits, stops, iters, krylov, lr = 100, 3, 2, [0, 10, 40, 150], 10, 30, 0.5
    else:
        n_img, hidden, inits, stops, iters, krylov, lr = 500, 5, 5, [0, 5, 20, 60, 200, 600, 2000], 25, 30, 0.5
    wd = 1e-2
    x, y = mnist_10x10(n_img)
    model = StackedMLP(x, y, hidden, weight_decay=wd)
    rng = np.random.default_rng(seed)
    C.print_header(f"Index vs error: {x.shape[1]}-{hidden}-10 tanh MLP on {n_img} MNIST digits at 10x10, "
                   f"{model.n} parameters, L2 {wd:g}")
    with C.Timer() as t_gd:
        snaps = gradient_descent_snapshots(model, model.init(inits, 1.0, rng), lr, stops)
        starts = np.concatenate([model.init(max(1, inits // 2), 0.05, rng)] + snaps)
    P = len(starts)
    g0 = np.linalg.norm(model.gradients(starts)[2], axis=1)
    with C.Timer() as t_cp:
        th, loss, err, gn, hist = minimise_gradient_norm(model, starts, iters, krylov)
    with C.Timer() as t_h:
        H = model.hessians(th)
    with C.Timer() as t_e:
        lam = dg.linalg.eigh(dg.tensor(H))[0].numpy()            # ascending, per point
    alpha = index_of(lam)
    spear, pear = correlations(alpha, err)
    spear_loss, _ = correlations(alpha, loss)
    C.print_row("starting points (GD snapshots + near-zero inits)", P)
    C.print_row(f"GD snapshots at steps {stops}", f"{t_gd.s:.1f} s")
    C.print_row(f"|grad L| minimisation: {iters} Krylov-LM steps x {krylov} HVPs", f"{t_cp.s:.1f} s")
    C.print_row("median |grad L|: start -> end", f"{np.median(g0):.2g} -> {np.median(gn):.2g}")
    C.print_row("points with |grad L| < 1e-6 (exact critical points)", int((gn < 1e-6).sum()))
    C.print_row(f"{P} full Hessians ({model.n}x{model.n}) from HVPs", f"{t_h.s:.1f} s")
    C.print_row("eigendecompositions (deepgrad.linalg.eigh)", f"{t_e.s:.2f} s")
    print(f"  {'point':>5s} {'train err':>9s} {'loss':>7s} {'|grad L|':>9s} {'index':>7s} {'lambda_min':>10s} {'lambda_max':>10s}")
    for p in np.argsort(err):
        print(f"  {p:5d} {100 * err[p]:8.1f}% {loss[p]:7.3f} {gn[p]:9.2e} {alpha[p]:7.3f} {lam[p, 0]:10.3g} {lam[p, -1]:10.3g}")
    C.print_row("index range", f"{alpha.min():.3f} .. {alpha.max():.3f}")
    C.print_row("training error range", f"{100 * err.min():.1f}% .. {100 * err.max():.1f}%")
    C.print_row("Spearman correlation (index, training error)", spear, "positive: error grows with index")
    C.print_row("Pearson correlation (index, training error)", pear)
    C.print_row("Spearman correlation (index, training loss)", spear_loss)
    # the batched Hessian against deepgrad.autograd.functional on one point, one column
    p0 = int(np.argmax(err))
    j = int(rng.integers(model.n))
    e = np.zeros(model.n)
    e[j] = 1.0
    _, col = dg.autograd.functional.hvp(model.loss_fn(), dg.tensor(th[p0]), dg.tensor(e))
    hvp_diff = float(np.abs(col.numpy() - H[p0][:, j]).max())
    C.print_row("max |stacked Hessian column - functional.hvp|", f"{hvp_diff:.1e}")
    return dict(model=model, theta=th, loss=loss, error=err, grad_norm=gn, grad_norm_start=g0, index=alpha,
                eigenvalues=lam, hessians=H, spearman=spear, pearson=pear, spearman_loss=spear_loss,
                hvp_check=hvp_diff, history=hist, seconds=t_gd.s + t_cp.s + t_h.s + t_e.s)


# ----------------------------------------------------------------------- CNN spectra
def _cnn(in_ch, size, quick, seed):
    import deepgrad as dg
    from .. import nn
    dg.manual_seed(seed)
    c1, c2 = (4, 8) if quick else (8, 16)
    k = 3 if quick else 5
    s = (size - k + 1) // 2
    s = (s - k + 1) // 2
    return nn.Sequential(nn.Conv2d(in_ch, c1, k), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(c1, c2, k), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(c2 * s * s, N_CLASSES))


def hessian_spectrum(dataset, quick, seed):
    """Train a small CNN briefly, then the top eigenvalues (Lanczos) and the spectral density
    (stochastic Lanczos quadrature) of its loss Hessian on a fixed batch."""
    import deepgrad as dg
    import deepgrad.nn.functional as F
    from ..utils import hessian as hs
    if dataset == "MNIST":
        size = 14 if quick else 28
        n_train = 1000 if quick else 10000
        x, y, _, _ = C.mnist_arrays(n_train, 1, size=size)
    else:
        size = 16 if quick else 32
        n_train = 1000 if quick else 10000
        x, y = C.cifar_arrays(n_train, train=True, size=size)
        x = (x - x.mean((0, 2, 3), keepdims=True)) / x.std((0, 2, 3), keepdims=True)
    steps, k, n_iter, n_v, n_hess = (60, 4, 24, 1, 128) if quick else (600, 10, 64, 2, 400)
    model = _cnn(x.shape[1], size, quick, seed)
    n_params = sum(p.numel() for p in model.parameters())
    opt = dg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with C.Timer() as t_train:
        losses = C.train_steps(model, opt, x, y, steps, batch_size=64, seed=seed)
    acc = C.accuracy(model, x[:2000], y[:2000])
    model.eval()
    xb, yb = dg.tensor(x[:n_hess]), dg.tensor(y[:n_hess])
    params = list(model.parameters())
    with C.Timer() as t_top:
        op = hs.HessianOperator(lambda: F.cross_entropy(model(xb), yb), params)
        top = hs.eigenvalues(op, k=k, which="LA", max_iter=max(3 * k, 40), tol=1e-4, seed=seed)
        n_top = op.n_products
    with C.Timer() as t_slq:
        nodes, weights = hs.density(op, n_iter=n_iter, n_v=n_v, seed=seed)
    allv, allw = np.concatenate(nodes), np.concatenate(weights) / n_v
    a = np.abs(allv)
    order = np.argsort(a)
    cum = np.cumsum(allw[order])
    bulk_median = float(a[order][np.searchsorted(cum, 0.5)])     # weighted median of |lambda|
    ratio = float(top[0] / max(bulk_median, 1e-12))
    mass_near_zero = float(allw[a < 0.01 * top[0]].sum())
    C.print_header(f"Hessian spectrum: CNN ({n_params} parameters) on {dataset} ({size}x{size}), "
                   f"{steps} SGD steps, Hessian of the loss on {n_hess} images")
    C.print_row("final training loss (running) / accuracy", f"{np.mean(losses[-20:]):.3f} / {100 * acc:.1f}%")
    C.print_row(f"top {k} eigenvalues (Lanczos, {n_top} HVPs)", np.array2string(top, precision=3, max_line_width=200))
    C.print_row("SLQ: weighted median |lambda| (the bulk)", f"{bulk_median:.3g}")
    C.print_row("top eigenvalue / bulk median |lambda|", f"{ratio:.3g}", "a few outliers >> bulk (Ghorbani et al. 2019)")
    C.print_row("SLQ spectral mass with |lambda| < 1% of the top", f"{100 * mass_near_zero:.1f}%")
    C.print_row("SLQ min / max Ritz value", f"{allv.min():.3g} / {allv.max():.3g}")
    C.print_row("time: train / top-k / SLQ", f"{t_train.s:.1f} / {t_top.s:.1f} / {t_slq.s:.1f} s")
    return dict(dataset=dataset, n_params=n_params, top=top, nodes=nodes, weights=weights, bulk_median=bulk_median,
                ratio=ratio, mass_near_zero=mass_near_zero, accuracy=acc, hvps_top=n_top)


# ----------------------------------------------------------------------------- figures
def _plot_index(r, out):
    fig, axes = C.new_figure(2, 1, size=(6.0, 4.6))
    ax = axes[0, 0]
    sc = ax.scatter(r["index"], 100 * r["error"], c=np.log10(np.maximum(r["grad_norm"], 1e-17)), cmap="viridis",
                    vmin=-4, vmax=0, s=36, edgecolors="k", linewidths=0.4)
    cb = ax.figure.colorbar(sc, ax=ax, extend="min")
    cb.set_label("log10 |grad L| at the point (dark: closer to critical)")
    ax.set(title=f"Critical points of a tanh MLP (10x10 MNIST)\nSpearman {r['spearman']:.2f}, "
                 f"Pearson {r['pearson']:.2f}",
           xlabel="index alpha (fraction of negative Hessian eigenvalues)", ylabel="training error (%)")
    ax.grid(alpha=0.3)
    ax = axes[0, 1]
    err, lam = r["error"], r["eigenvalues"]
    order = np.argsort(err)
    picks = [order[0], order[len(order) // 2], order[-1]]
    top = max(np.abs(lam).max(), 1e-12)
    bins = np.concatenate([-np.logspace(np.log10(top), -4, 25), np.logspace(-4, np.log10(top), 25)])
    for p, c in zip(picks, ("C2", "C1", "C3")):
        ax.hist(lam[p], bins=bins, histtype="step", lw=1.6, color=c,
                label=f"error {100 * err[p]:.1f}%, index {r['index'][p]:.3f}")
    ax.set_xscale("symlog", linthresh=1e-4, linscale=0.5)
    ax.set_yscale("log")
    ax.set(title="Hessian eigenvalues at three critical points", xlabel="eigenvalue (symlog scale)",
           ylabel="count")
    ax.legend(fontsize=8)
    return str(C.save_fig(fig, out, "saddle_points_index.png"))


def _plot_spectra(spectra, out):
    fig, axes = C.new_figure(len(spectra), 1, size=(6.0, 4.2))
    for ax, s in zip(axes[0], spectra):
        allv = np.concatenate(s["nodes"])
        allw = np.concatenate(s["weights"]) / len(s["nodes"])
        hi = max(allv.max(), s["top"].max()) * 1.3
        lin = 0.01 * float(s["top"][0])                # the bulk: |lambda| below 1% of the top one
        neg = max(-allv.min(), lin) * 1.3
        bins = np.concatenate([-np.logspace(np.log10(neg), np.log10(lin), 16), np.logspace(np.log10(lin), np.log10(hi), 31)])
        v = np.clip(allv, -neg, hi)
        bulk = np.abs(v) < lin
        ax.hist(v[~bulk], bins=bins, weights=allw[~bulk], color="C0", alpha=0.8,
                label="spectral mass (stochastic Lanczos quadrature)")
        ax.bar(0.0, allw[bulk].sum(), width=2 * lin, color="C7", alpha=0.8,
               label=f"the bulk: |eigenvalue| < {lin:.1g} ({100 * allw[bulk].sum():.0f}%)")
        ax.plot(s["top"], np.full(len(s["top"]), 0.5), "v", color="C3", ms=7, label=f"top {len(s['top'])} eigenvalues (Lanczos)")
        ax.set_xscale("symlog", linthresh=lin, linscale=0.6)
        decades = [10.0 ** k for k in range(-6, 7)]
        ticks = sorted([-lin, 0.0, lin] + [t for t in decades if 1.5 * lin < t <= hi]
                       + [-t for t in decades if 1.5 * lin < t <= neg])
        ax.set_xticks(ticks, [f"{t:.2g}" for t in ticks])
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 1.5)
        ax.set(title=f"{s['dataset']} CNN ({s['n_params']} params): loss Hessian spectrum\n"
                     f"top {s['top'][0]:.3g}, bulk median |eigenvalue| {s['bulk_median']:.2g}",
               xlabel=f"eigenvalue (symlog scale; linear within +-{lin:.1g})", ylabel="fraction of eigenvalues")
        ax.legend(fontsize=8, loc="upper left")
    return str(C.save_fig(fig, out, "saddle_points_spectra.png"))


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    # both datasets are looked up first: a missing file is named before minutes of work
    C.mnist_arrays(1, 1)
    C.cifar_arrays(1)
    out = C.out_dir(NAME, out)
    with C.Timer() as total:
        r = index_vs_error(quick, seed)
        spectra = [hessian_spectrum(ds, quick, seed) for ds in ("MNIST", "CIFAR-10")]
        figures = [_plot_index(r, out), _plot_spectra(spectra, out)]
    C.print_row("total time", f"{total.s:.1f} s")
    p0 = int(np.argmax(r["error"]))
    return dict(
        n_params_mlp=r["model"].n, n_points=len(r["error"]), spearman=r["spearman"], pearson=r["pearson"],
        spearman_loss=r["spearman_loss"], index=r["index"].tolist(), error=r["error"].tolist(),
        loss=r["loss"].tolist(), grad_norm=r["grad_norm"].tolist(),
        grad_norm_start=r["grad_norm_start"].tolist(), hvp_check=r["hvp_check"],
        example_hessian=r["hessians"][p0], example_eigenvalues=r["eigenvalues"][p0],
        example_theta=r["theta"][p0],
        spectra={s["dataset"]: dict(top=s["top"].tolist(), bulk_median=s["bulk_median"], ratio=s["ratio"],
                                    mass_near_zero=s["mass_near_zero"], n_params=s["n_params"],
                                    accuracy=s["accuracy"]) for s in spectra},
        seconds=total.s, figures=figures)
