"""Small helpers shared by the demos of decks 000-004's second half (regularization, batch norm,
augmentation, visualization, transfer, depth, word vectors, RNN gradients).

Data are read straight from the canonical files, and only as many records as a demo asks for (a
gzip stream is read from its start), so a quick run touches a few hundred kilobytes; a missing file
raises :class:`deepgrad.data.datasets.DatasetFileError` (also a ``FileNotFoundError``) naming the
file and every folder searched.
"""
from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["out_dir", "save_fig", "new_figure", "print_row", "print_header", "mnist_arrays", "cifar_arrays",
           "CIFAR_CLASSES", "train_steps", "accuracy", "batches", "quick_env", "Timer"]

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def quick_env() -> bool:
    """True when ``$DEEPGRAD_QUICK`` asks for quick mode (the notebooks' CI runs)."""
    return os.environ.get("DEEPGRAD_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def out_dir(name, out=None) -> Path:
    """``out`` (created) or ``runs/demos/<name>``."""
    p = Path(out) if out is not None else Path("runs") / "demos" / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def new_figure(ncols=1, nrows=1, size=(5.0, 3.6)):
    """A matplotlib figure drawn with the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_fig(fig, out, filename) -> Path:
    """Write ``fig`` as ``out/filename`` (PNG) and return the path."""
    path = Path(out) / filename
    fig.savefig(path, dpi=90)
    return path


def print_header(title):
    print(f"\n== {title} ==")


def print_row(label, ours, paper=None, fmt="{:.4g}"):
    """One line: what was measured, deepgrad's number and the paper's beside it."""
    if isinstance(ours, (bool, np.bool_)):
        o = "yes" if ours else "no"
    elif isinstance(ours, (int, np.integer)):
        o = f"{int(ours):,}"
    elif isinstance(ours, (float, np.floating)):
        o = fmt.format(ours)
    else:
        o = str(ours)
    p = "" if paper is None else f"   [reference: {paper}]"
    print(f"  {label:<44s} {o:>12s}{p}")


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0


# ----------------------------------------------------------------------------------------- data
def _data_dirs(folder):
    from ..data.datasets import _paths, shared_datasets_dir
    dirs = []
    env = os.environ.get("DEEPGRAD_DATA")
    if env:
        dirs.append(Path(env).expanduser() / folder)
    shared = shared_datasets_dir()
    if shared is not None:
        dirs.append(Path(shared) / folder)
    dirs.append(_paths.default_root() / folder)
    if folder == "mnist":
        dirs.append(_paths.bundled_dir("mnist"))
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _find(folder, name):
    dirs = _data_dirs(folder)
    for d in dirs:
        for cand in (d / name, d / (name[:-3] if name.endswith(".gz") else name + ".gz")):
            if cand.is_file():
                return cand
    from ..data.datasets._formats import MissingDatasetFileError
    raise MissingDatasetFileError(name, f"not found; looked in {', '.join(str(d) for d in dirs)} "
                                        f"(set DEEPGRAD_DATA to the folder holding {folder}/)")


def _read_head(path, nbytes):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read(nbytes)
    if len(data) < nbytes:
        from ..data.datasets import DatasetFileError
        raise DatasetFileError(path, f"holds {len(data)} bytes, fewer than the {nbytes} asked for")
    return data


def mnist_arrays(n_train=2000, n_test=1000, size=28, flatten=False):
    """``(x_train, y_train, x_test, y_test)`` float32 standardised MNIST digits, the first
    ``n_train`` of the training file and ``n_test`` of the test file; ``size=14`` averages 2x2
    blocks (a 4x cheaper input for quick runs)."""
    out = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = _read_head(_find("mnist", f"{prefix}-images-idx3-ubyte.gz"), 16 + n * 784)
        labs = _read_head(_find("mnist", f"{prefix}-labels-idx1-ubyte.gz"), 8 + n)
        x = np.frombuffer(imgs, np.uint8, offset=16).reshape(n, 1, 28, 28).astype(np.float32) / 255
        if size == 14:
            x = x.reshape(n, 1, 14, 2, 14, 2).mean((3, 5))
        elif size != 28:
            raise ValueError(f"mnist_arrays: size must be 28 or 14, got {size}")
        x = (x - MNIST_MEAN) / MNIST_STD
        if flatten:
            x = x.reshape(n, -1)
        out += [np.ascontiguousarray(x), np.frombuffer(labs, np.uint8, offset=8).astype(np.int64)]
    return tuple(out)


def cifar_arrays(n, train=True, classes=None, size=32, offset=0):
    """``(x, y)``: up to ``n`` CIFAR-10 images as float32 (N, 3, size, size) in [0, 1] (``size``
    16 averages 2x2 blocks) and their labels, read from the start of ``data_batch_1`` (train) or
    ``test_batch``. With ``classes`` only those labels are kept (relabelled 0..len-1), reading
    further into the file as needed; ``offset`` skips that many matching images first."""
    name = "data_batch_1.bin.gz" if train else "test_batch.bin.gz"
    path = _find("cifar10", name)
    rec = 3073
    want = n + offset
    frac = 1.0 if classes is None else len(classes) / 10
    count = min(10000, int(want / frac * 1.15) + 64)
    while True:
        raw = np.frombuffer(_read_head(path, count * rec), np.uint8).reshape(count, rec)
        y = raw[:, 0].astype(np.int64)
        keep = np.arange(count) if classes is None else np.flatnonzero(np.isin(y, classes))
        if len(keep) >= want or count == 10000:
            break
        count = min(10000, count * 2)
    keep = keep[offset:want]
    x = raw[keep, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    y = y[keep]
    if classes is not None:
        remap = {c: i for i, c in enumerate(classes)}
        y = np.array([remap[int(v)] for v in y], dtype=np.int64)
    if size == 16:
        x = x.reshape(len(x), 3, 16, 2, 16, 2).mean((3, 5))
    elif size != 32:
        raise ValueError(f"cifar_arrays: size must be 32 or 16, got {size}")
    return np.ascontiguousarray(x), y


# ------------------------------------------------------------------------------------- training
def batches(n, batch_size, rng):
    """Endless shuffled index batches over ``range(n)``."""
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i:i + batch_size]


def train_steps(model, optimizer, x, y, steps, batch_size=64, seed=0, augment=None, clip=None,
                every=None, callback=None, scheduler=None):
    """``steps`` SGD updates of ``model`` on ``(x, y)`` (numpy arrays) with cross-entropy; returns
    the list of training losses. ``augment(xb, rng)`` transforms each batch; ``callback(step)``
    runs every ``every`` steps and may return True to stop; ``scheduler.step()`` (a learning-rate
    schedule counted in updates) runs after every update."""
    import deepgrad as dg
    from ..nn import functional as F
    rng = np.random.default_rng(seed)
    it = batches(len(x), min(batch_size, len(x)), rng)
    losses = []
    model.train()
    for step in range(1, steps + 1):
        idx = next(it)
        xb = x[idx]
        if augment is not None:
            xb = augment(xb, rng)
        loss = F.cross_entropy(model(dg.tensor(xb)), dg.tensor(y[idx]))
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            dg.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss.item()))
        if every and step % every == 0 and callback is not None:
            stop = callback(step)
            model.train()
            if stop:
                break
    return losses


def accuracy(model, x, y, batch_size=500):
    """Fraction of ``x`` that ``model`` (in eval mode) labels as ``y``."""
    import deepgrad as dg
    model.eval()
    right = 0
    with dg.no_grad():
        for i in range(0, len(x), batch_size):
            right += int((model(dg.tensor(x[i:i + batch_size])).argmax(1).numpy() == y[i:i + batch_size]).sum())
    return right / max(1, len(x))
