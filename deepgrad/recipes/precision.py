"""``precision-table``: training with limited-precision number formats (issue 15; lecture deck 004).

Two experiments, each printed beside the published figures, with PNG figures in the run folder:

* **Courbariaux, Bengio & David 2014** ("Training deep neural networks with low precision
  multiplications", Table 3): the same network trained with single floats (32/32 bits for
  propagations/parameter updates), half floats (16/16), fixed point (20/20) and dynamic fixed point
  (10/12) reaches nearly the same test error. Rows on permutation-invariant MNIST (a maxout MLP, as
  the paper), MNIST (a small ReLU CNN: the paper's conv maxout network is larger than this budget)
  and CIFAR-10 (a small conv-BN network, short run). The formats are applied with
  :class:`deepgrad.amp.low_precision`: each layer's output and its gradient and the parameters'
  gradients in the propagation format, the stored parameters in the update format (rounded after
  each SGD step computed in float32). Half precision is emulated by rounding float32 values to
  float16 at those same places (NumPy has no float16 matrix product; the arithmetic between
  roundings is float32, as in the fixed-point rows).
* **Gupta, Agrawal, Gopalakrishnan & Narayanan 2015** ("Deep learning with limited numerical
  precision", Fig. 2): an MLP trained in 16-bit fixed point with 14 fraction bits. With
  round-to-nearest, the small parameter updates round away and training stalls; with stochastic
  rounding it follows float32. Both curves (and float32) go in ``gupta_rounding.png``.

``quick=True`` (``deepgrad train precision-table --quick``) runs the MNIST parts on a few thousand
images with small networks in seconds (what the tests use; ``--set parts=cifar10`` adds CIFAR-10's
tiny version); ``parts`` picks the experiments (``--set parts=pi-mnist,gupta``), ``rows`` the
formats (``--set rows=single,dynamic``).

PI-MNIST follows the paper's network and training setup (Goodfellow et al.'s maxout MLP, which
Courbariaux et al. reuse): two maxout layers of 240 units x 5 pieces and a softmax, dropout 0.2 on
the inputs and 0.5 on the hidden layers, max-norm 1.9365 on each weight row, SGD with batch 100,
learning rate 0.1 and momentum 0.7 (pylearn2's final momentum). The schedule is reduced: 40 epochs
(``--epochs``) with the learning rate decayed exponentially to 2% of its start (``pi_lr_end``),
where the papers train for hundreds of epochs with early stopping on a validation set. MNIST and
CIFAR-10 use small networks and short runs; their errors are those of short runs, and the table
says how long each row trained.
"""
from __future__ import annotations

import contextlib
import os
import time

import numpy as np

from . import Recipe, register

__all__ = ["PrecisionTable", "PAPER", "row_formats"]

#: Courbariaux et al. 2014, Table 3: test error (%) per format (propagations/updates bits)
PAPER = {"pi-mnist": {"single": 1.05, "half": 1.10, "fixed": 1.39, "dynamic": 1.28},
         "mnist": {"single": 0.51, "half": 0.51, "fixed": 0.57, "dynamic": 0.59},
         "cifar10": {"single": 14.05, "half": 14.14, "fixed": 15.98, "dynamic": 14.82}}
ROWS = (("single", "single float 32/32"), ("half", "half float 16/16"), ("fixed", "fixed point 20/20"),
        ("dynamic", "dynamic fixed point 10/12"))
DATASET_TITLES = {"pi-mnist": "permutation-invariant MNIST (maxout MLP)", "mnist": "MNIST (small CNN)",
                  "cifar10": "CIFAR-10 (small conv-BN net, reduced budget)"}


def row_formats(row, hp):
    """``(propagation, update)`` formats of a table row (None: float32)."""
    from ..amp import DynamicFixedPoint, FixedPoint, Float16
    if row == "single":
        return None, None
    if row == "half":
        return Float16(), Float16()
    if row == "fixed":        # 20 bits each: the radix point set for activations/gradients vs weights
        return (FixedPoint(hp["fixed_prop_integer_bits"], 20 - hp["fixed_prop_integer_bits"]),
                FixedPoint(hp["fixed_update_integer_bits"], 20 - hp["fixed_update_integer_bits"]))
    if row == "dynamic":
        # one update of each group's exponent per tensor it rounds: with an update every 100 steps
        # (10,000 images, the paper's interval as we read it) the logits' group, fitted to the first
        # batch's small logits, saturated while the straight-through gradient kept pushing them, and
        # PI-MNIST diverged (measured: 91.2% test error after 10,000 images vs 10.5% with this rule)
        every = hp["dynamic_update_every"]
        return (DynamicFixedPoint(10, max_overflow_rate=hp["max_overflow_rate"], update_every=every),
                DynamicFixedPoint(12, max_overflow_rate=hp["max_overflow_rate"], update_every=every))
    raise ValueError(f"precision-table: unknown row {row!r}")


# ---- models -----------------------------------------------------------------------------------------

def _maxout_mlp(hp):
    from .. import nn
    u, k, p = hp["pi_units"], hp["pi_pieces"], hp["pi_dropout"]
    layers = [nn.Dropout(p / 2.5)] if p else []          # Goodfellow et al.: 0.2 on inputs, 0.5 hidden
    layers += [nn.Maxout(784, u, k)] + ([nn.Dropout(p)] if p else [])
    layers += [nn.Maxout(u, u, k)] + ([nn.Dropout(p)] if p else [])
    return nn.Sequential(*layers, nn.Linear(u, 10))


def _mnist_cnn(hp):
    from .. import nn
    c = hp["cnn_channels"]
    return nn.Sequential(nn.Conv2d(1, c, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(c, 2 * c, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(2 * c * 16, 10))


def _cifar_net(hp):
    from .cnn import QuickNet
    return QuickNet.build(hp["cifar_width"])


def _gupta_mlp(hp):
    from .. import nn
    h = hp["gupta_hidden"]
    return nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 10))


# ---- data -------------------------------------------------------------------------------------------

_CACHE = {}     # (dataset, root) -> arrays: each file is read (and its checksum verified) once per process


def _mnist(hp, root, flat):
    from .unsupervised import mnist_unit
    key = ("mnist", root)
    if key not in _CACHE:
        _CACHE[key] = mnist_unit({}, root)
    xtr, ytr, xte, yte = _CACHE[key]
    n, m = hp.get("subset"), hp.get("test_subset")
    xtr, ytr = (xtr[:n], ytr[:n]) if n else (xtr, ytr)
    xte, yte = (xte[:m], yte[:m]) if m else (xte, yte)
    if not flat:
        xtr, xte = xtr.reshape(-1, 1, 28, 28), xte.reshape(-1, 1, 28, 28)
    return xtr, ytr, xte, yte


def _cifar(hp, root):
    """CIFAR-10 normalised per channel, (N, 3, 32, 32) float32; a subset of at most 10,000 training
    images reads only the first training batch file."""
    from ..data import CIFAR10
    from .cnn import ToFloatNormalize
    n, m = hp.get("cifar_subset"), hp.get("test_subset")
    few = bool(n) and n <= 10000
    key = ("cifar10", root, few)
    if key not in _CACHE:
        class FirstBatch(CIFAR10):
            train_list = CIFAR10.train_list[:1]
        train = (FirstBatch if few else CIFAR10)(root=root, train=True)
        test = CIFAR10(root=root, train=False)
        _CACHE[key] = (np.asarray(train.data), np.asarray(train.targets, np.int64),
                       np.asarray(test.data), np.asarray(test.targets, np.int64))
    xtr, ytr, xte, yte = _CACHE[key]
    xtr, ytr = (xtr[:n], ytr[:n]) if n else (xtr, ytr)
    xte, yte = (xte[:m], yte[:m]) if m else (xte, yte)
    norm = ToFloatNormalize()
    chw = lambda x: norm(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # noqa: E731
    return chw(xtr), ytr, chw(xte), yte


# ---- training ---------------------------------------------------------------------------------------

def _error(model, X, Y, bs=1000):
    from ..autograd.grad_mode import no_grad
    from ..tensor import Tensor
    model.eval()
    wrong = 0
    with no_grad():
        for s in range(0, len(X), bs):
            wrong += int((model(Tensor._make(X[s:s + bs])).array.argmax(1) != Y[s:s + bs]).sum())
    model.train()
    return 100.0 * wrong / max(len(X), 1)


def _max_norm(model, limit):
    """Goodfellow et al.'s max-norm constraint (pylearn2's ``max_col_norm``): each output unit's (or
    maxout piece's) incoming weight vector is scaled back to norm ``limit`` when it grew past it."""
    from ..nn import Linear, Maxout
    changed = False
    for m in model.modules():
        if isinstance(m, (Linear, Maxout)):
            w = m.weight.array
            norms = np.sqrt(np.einsum("ij,ij->i", w, w, dtype=np.float64))
            over = norms > limit
            if over.any():
                w[over] *= (limit / norms[over])[:, None].astype(w.dtype)
                m.weight._version[0] += 1
                changed = True
    return changed


def train_with_formats(model, data, propagation, update, epochs, lr, batch_size, momentum=0.9, lr_decay=1.0,
                       seed=0, evals_per_epoch=1, verbose=False, tag="", max_norm=None):
    """SGD (float32 arithmetic) on ``model`` with ``low_precision(propagation, update)`` around the
    whole run (evaluation included: the hardware computes every propagation in the format), the
    learning rate times ``lr_decay`` after each epoch, and each weight row held to norm ``max_norm``
    after each step (None: no constraint; rescaled weights are rounded to the update format again). Returns ``{"error", "curve": [(epoch, test
    error %), ...], "wall_s", "exponents"}``."""
    from .. import optim, random
    from ..amp import low_precision
    from ..nn import functional as F
    from ..tensor import Tensor
    xtr, ytr, xte, yte = data
    gen = random.Generator().manual_seed(seed)
    rounding_gen = random.Generator().manual_seed(seed + 7)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    n = len(xtr)
    steps = -(-n // batch_size)
    marks = set(np.linspace(0, steps, evals_per_epoch + 1).astype(int)[1:].tolist())
    ctx = (low_precision(model, propagation, update, optimizer=opt, generator=rounding_gen)
           if propagation is not None or update is not None else contextlib.nullcontext())
    curve = []
    t0 = time.perf_counter()
    with ctx as lp:
        curve.append((0.0, _error(model, xte, yte)))
        for epoch in range(epochs):
            order = gen.np.permutation(n)
            for i in range(steps):
                idx = order[i * batch_size:(i + 1) * batch_size]
                loss = F.cross_entropy(model(Tensor._make(xtr[idx])), Tensor._make(ytr[idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                if max_norm and _max_norm(model, max_norm) and lp is not None:
                    lp.round_parameters()                  # the stored weights stay in the update format
                if i + 1 in marks:
                    curve.append((epoch + (i + 1) / steps, _error(model, xte, yte)))
            for g in opt.param_groups:
                g["lr"] *= lr_decay
            if verbose:
                print(f"  [{tag}] epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, test error "
                      f"{curve[-1][1]:.2f}% ({time.perf_counter() - t0:.0f} s)", flush=True)
        exps = lp.exponents() if lp is not None else {}
    return {"error": curve[-1][1], "curve": curve, "wall_s": time.perf_counter() - t0, "exponents": exps}


@register
class PrecisionTable(Recipe):
    name = "precision-table"
    summary = ("Courbariaux et al. 2014's table (single/half/fixed 20/dynamic fixed 10/12 bits) on PI-MNIST, "
               "MNIST, CIFAR-10; Gupta et al. 2015's nearest vs stochastic rounding in 16-bit fixed point")
    reproduces = ("Courbariaux et al. 2014 Table 3, test error %: PI MNIST 1.05/1.10/1.39/1.28, MNIST 0.51/0.51/"
                  "0.57/0.59, CIFAR-10 14.05/14.14/15.98/14.82 (single/half/fixed 20/dynamic 10/12; hundreds of "
                  "epochs, dropout); Gupta et al. 2015: <2,14> fixed point stalls with round-to-nearest and "
                  "matches float32 with stochastic rounding")
    custom_run = True
    metrics = ()
    classes = [str(d) for d in range(10)]
    # measured on the shared 2-core machine (one BLAS thread), test error %, single/half/fixed 20/dynamic 10/12:
    # PI-MNIST with these defaults (40 epochs, dropout, max-norm; one BLAS thread, load 3-7): single 1.33,
    # half 1.25 (paper 1.05/1.10), 1192/1395 s of training; at 24 epochs (load 8-14) 1.36 and 1.38; the paper's few-hundred-epoch schedule would take ~4 CPU hours a row. Before
    # (3 epochs, no dropout, lr 0.05, momentum 0.9): 2.07/2.00/1.98/2.12 (151/547/119/111 s; half was slow
    # because NumPy's float16 casts are, now round_f16). MNIST small CNN, 1 epoch: 2.03/1.87/1.70/1.74
    # (146/226/81/113 s); CIFAR-10, 10,000 images x 2 epochs, no augmentation: 47.27/48.06/51.65/49.19
    # (153/270/95/71 s); Gupta <2,14>, 8 epochs of a 784-256-256-10 MLP: float32 7.94, nearest 9.22,
    # stochastic 7.72 (nearest plateaus near 50% for the second half of epoch 1 while stochastic follows
    # float32 throughout). Gupta (3 epochs of PI-MNIST then) took ~19 minutes with PI-MNIST, MNIST + CIFAR-10 20.
    defaults = dict(quick=False, parts=None, rows="single,half,fixed,dynamic",
                    epochs=40, batch_size=100, lr=0.05, momentum=0.9, lr_decay=0.8, optimizer="sgd",
                    test_subset=None, pi_units=240, pi_pieces=5, pi_dropout=0.5, pi_lr=0.1, pi_momentum=0.7,
                    pi_lr_end=0.02, pi_max_norm=1.9365,
                    mnist_epochs=1, cnn_channels=16, mnist_subset=None,
                    cifar_epochs=2, cifar_width=16, cifar_subset=10000, cifar_lr=0.02,
                    gupta_epochs=8, gupta_hidden=256, gupta_lr=0.01, gupta_momentum=0.0, gupta_integer_bits=2,
                    gupta_fraction_bits=14, gupta_subset=None,
                    fixed_prop_integer_bits=5, fixed_update_integer_bits=2, max_overflow_rate=1e-4,
                    dynamic_update_every=1, threads=1)
    #: what --quick changes (a few seconds per part; the tests run it)
    QUICK = dict(subset=2000, test_subset=500, epochs=1, pi_units=48, pi_pieces=2, pi_dropout=0.0, mnist_epochs=1,
                 cnn_channels=4, mnist_subset=300, cifar_epochs=1, cifar_width=4, cifar_subset=200,
                 gupta_epochs=5, gupta_hidden=64, gupta_subset=None)

    def build_data(self, hp, root=None):
        from . import Splits
        from ..data import TensorDataset
        xtr, ytr, xte, yte = _mnist(hp, root, flat=True)
        return Splits(TensorDataset(xtr, ytr), None, TensorDataset(xte, yte))

    def build_model(self, hp):
        return _maxout_mlp(hp)

    def run(self, hp, out, data=None, verbose=True, device=None, plots=True):
        # BLAS threads for the run (restored after): on a shared 2-core machine one thread avoids
        # OpenBLAS's spin-waiting, measured 20x faster for these small products under load
        from .._config import get_num_threads, set_num_threads
        before = get_num_threads()
        if hp.get("threads"):
            set_num_threads(int(hp["threads"]))
        try:
            return self._run(hp, out, data, verbose, plots)
        finally:
            set_num_threads(before)

    def _run(self, hp, out, data, verbose, plots):
        if hp["quick"]:
            hp.update({k: v for k, v in self.QUICK.items() if k in hp})
        if hp["parts"] is None:   # --quick leaves CIFAR-10 out: reading its files alone takes ~10 s
            hp["parts"] = "pi-mnist,mnist,gupta" if hp["quick"] else "pi-mnist,mnist,cifar10,gupta"
        parts = [p.strip() for p in str(hp["parts"]).split(",") if p.strip()]
        rows = [r.strip() for r in str(hp["rows"]).split(",") if r.strip()]
        if str(hp["optimizer"]).lower() != "sgd":
            raise ValueError(f"precision-table trains with SGD (the papers' optimiser; momentum={hp['momentum']}), "
                             f"not {hp['optimizer']!r}")
        known = ("pi-mnist", "mnist", "cifar10", "gupta")
        bad = [p for p in parts if p not in known] + [r for r in rows if r not in dict(ROWS)]
        if bad:
            raise ValueError(f"precision-table: unknown parts/rows {bad}; parts are {known}, rows {tuple(dict(ROWS))}")
        say = print if verbose else (lambda *a, **k: None)
        say("half precision is emulated: float32 arithmetic, values rounded to float16 where the fixed-point "
            "formats round (layer outputs, their gradients, parameter gradients, stored parameters)")
        test, table, files, history = {}, {}, [], []
        for part in [p for p in parts if p != "gupta"]:
            table[part] = self._table_part(part, rows, hp, data, say, test, history)
        if plots and table:
            files.append(self._plot_table(table, out))
        gupta = None
        if "gupta" in parts:
            gupta = self._gupta(hp, data, say, test, history)
            if plots:
                files.append(self._plot_gupta(gupta, hp, out))
        result = {"test": test, "paper": PAPER, "table": {p: {r: {k: v for k, v in d.items() if k != "curve"}
                                                               for r, d in t.items()} for p, t in table.items()},
                  "history": history, "plots": files, "epochs": hp["epochs"]}
        if gupta is not None:
            result["gupta"] = {k: {"error": v["error"], "curve": v["curve"]} for k, v in gupta.items()}
        return result

    def _table_part(self, part, rows, hp, root, say, test, history):
        from .. import random
        momentum, decay, max_norm = hp["momentum"], hp["lr_decay"], None
        if part == "pi-mnist":
            data, build, epochs, lr = _mnist(hp, root, flat=True), _maxout_mlp, hp["epochs"], hp["pi_lr"]
            momentum, max_norm = hp["pi_momentum"], hp["pi_max_norm"]
            if hp["pi_lr_end"]:              # exponential decay to pi_lr_end * pi_lr over the run
                decay = float(hp["pi_lr_end"]) ** (1.0 / max(epochs, 1))
        elif part == "mnist":
            xtr, ytr, xte, yte = _mnist(hp, root, flat=False)
            m = hp["mnist_subset"]
            data = (xtr[:m], ytr[:m], xte, yte) if m else (xtr, ytr, xte, yte)
            build, epochs, lr = _mnist_cnn, hp["mnist_epochs"], hp["lr"]
        else:
            data, build, epochs, lr = _cifar(hp, root), _cifar_net, hp["cifar_epochs"], hp["cifar_lr"]
        say(f"== {DATASET_TITLES[part]}: {len(data[0])} training, {len(data[2])} test images, {epochs} epochs")
        res = {}
        for row in rows:
            prop, upd = row_formats(row, hp)
            random.manual_seed(hp["seed"])            # the same initial weights for every row
            model = build(hp)
            r = train_with_formats(model, data, prop, upd, epochs, lr, hp["batch_size"], momentum,
                                   decay, hp["seed"], verbose=say is print, tag=f"{part} {row}", max_norm=max_norm)
            r.update(propagation=repr(prop), update=repr(upd), epochs=epochs)
            res[row] = r
            test[f"{part}_{row}_error"] = r["error"]
            history.append({"part": part, "row": row, "error": r["error"], "wall_s": round(r["wall_s"], 1)})
        rows_out = [(dict(ROWS)[r], PAPER[part][r], res[r]["error"], res[r]["wall_s"]) for r in rows]
        say(f"Courbariaux et al. 2014, {DATASET_TITLES[part]}: test error %")
        w = max(len(x[0]) for x in rows_out)
        say(f"  {'format (propagations/updates bits)':<{w}}  {'paper':>7}  {'deepgrad':>8}  {'train s':>7}")
        for what, paper, ours, wall in rows_out:
            say(f"  {what:<{w}}  {paper:>7.2f}  {ours:>8.2f}  {wall:>7.0f}")
        return res

    def _gupta(self, hp, root, say, test, history):
        from .. import random
        from ..amp import FixedPoint
        xtr, ytr, xte, yte = _mnist(hp, root, flat=True)
        m = hp["gupta_subset"]
        data = (xtr[:m], ytr[:m], xte, yte) if m else (xtr, ytr, xte, yte)
        il, fl = hp["gupta_integer_bits"], hp["gupta_fraction_bits"]
        say(f"== Gupta et al. 2015: {il + fl}-bit fixed point <{il},{fl}> (propagations and updates), "
            f"{hp['gupta_hidden']}-unit ReLU MLP, SGD lr {hp['gupta_lr']}, {len(data[0])} training images")
        runs = {}
        for key, fmt in (("float32", None), ("nearest", FixedPoint(il, fl, "nearest")),
                         ("stochastic", FixedPoint(il, fl, "stochastic"))):
            random.manual_seed(hp["seed"])
            model = _gupta_mlp(hp)
            runs[key] = train_with_formats(model, data, fmt, fmt, hp["gupta_epochs"], hp["gupta_lr"],
                                           hp["batch_size"], hp["gupta_momentum"], 1.0, hp["seed"],
                                           evals_per_epoch=1 if hp["quick"] else 10, verbose=say is print,
                                           tag=f"gupta {key}")
            test[f"gupta_{key}_error"] = runs[key]["error"]
            history.append({"part": "gupta", "row": key, "error": runs[key]["error"],
                            "wall_s": round(runs[key]["wall_s"], 1)})
        say(f"Gupta et al. 2015, <{il},{fl}> fixed point: final test error % (paper: round-to-nearest stalls, "
            f"stochastic rounding matches float32)")
        for key in runs:
            say(f"  {key:<28}  {runs[key]['error']:>8.2f}")
        return runs

    def _plot_table(self, table, out):
        from .unsupervised import save_figure
        parts = list(table)

        def draw(fig):
            for i, part in enumerate(parts):
                ax = fig.add_subplot(1, len(parts), i + 1)
                rows = list(table[part])
                x = np.arange(len(rows))
                ax.bar(x - 0.2, [PAPER[part][r] for r in rows], 0.4, label="paper")
                ax.bar(x + 0.2, [table[part][r]["error"] for r in rows], 0.4, label="deepgrad (reduced schedule)")
                ax.set_xticks(x)
                ax.set_xticklabels(rows, fontsize=8)
                ax.set_title(DATASET_TITLES[part], fontsize=8)
                ax.set_ylabel("test error %")
                ax.legend(fontsize=7)
        return save_figure(os.path.join(out, "precision_table.png"), draw, figsize=(4 * len(parts), 3.5))

    def _plot_gupta(self, runs, hp, out):
        from .unsupervised import save_figure
        il, fl = hp["gupta_integer_bits"], hp["gupta_fraction_bits"]
        labels = {"float32": "float32", "nearest": f"<{il},{fl}> round-to-nearest",
                  "stochastic": f"<{il},{fl}> stochastic rounding"}

        def draw(fig):
            ax = fig.add_subplot(111)
            style = {"float32": dict(color="black", linestyle="--", zorder=3), "nearest": dict(color="tab:red"),
                     "stochastic": dict(color="tab:green", linewidth=3, alpha=0.7)}
            for key, r in runs.items():
                e, v = zip(*r["curve"])
                ax.plot(e, v, marker=".", label=labels[key], **style[key])
            ax.set_xlabel("epoch")
            ax.set_ylabel("test error %")
            ax.set_title(f"Gupta et al. 2015: {il + fl}-bit fixed point, {fl} fraction bits", fontsize=9)
            ax.legend()
        return save_figure(os.path.join(out, "gupta_rounding.png"), draw, figsize=(6, 4))
