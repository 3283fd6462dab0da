"""Helpers shared by the demos: output paths, saving figures, data subsets, printing rows."""
from __future__ import annotations

import functools
import io as _io
from pathlib import Path

import numpy as np

__all__ = ["out_dir", "figure_path", "save_figure", "plt", "print_header", "print_row",
           "mnist_subset", "cifar10_subset", "find_datasets_root", "Timer"]


def out_dir(out, name: str) -> Path:
    """``out`` as a Path (default ``runs/demos/NAME``), created."""
    path = Path(out) if out is not None else Path("runs") / "demos" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_path(out, name: str) -> Path:
    """``out/name`` with a ``.png`` suffix (``out`` created if needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name if name.endswith(".png") else name + ".png"
    return out / name


def plt():
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as pyplot
    return pyplot


def save_figure(fig, path, dpi: int = 80) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (a crash leaves the old file), close it, return the path."""
    from ..io import atomic_write
    path = Path(path)
    buf = _io.BytesIO()
    # a figure with a layout engine (layout="constrained") is laid out already; "tight" would draw
    # it a second time
    tight = None if fig.get_layout_engine() is not None else "tight"
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches=tight)
    plt().close(fig)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    print(f"  figure: {path}")
    return path


def print_header(title: str) -> None:
    print(f"\n== {title} ==")


def _fmt(v):
    if isinstance(v, float) or isinstance(v, np.floating):
        return f"{float(v):.4g}"
    return str(v)


def print_row(label: str, ours, theirs=None) -> None:
    """One line ``label: ours`` (``[reference: theirs]`` beside it when a paper/lecture figure exists)."""
    line = f"  {label:<44s} {_fmt(ours):>12s}"
    if theirs is not None:
        line += f"   [reference: {_fmt(theirs)}]"
    print(line)


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` afterwards (wall clock)."""

    def __enter__(self):
        import time
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import time
        self.seconds = time.perf_counter() - self._t0
        return False


def find_datasets_root():
    """The folder holding the datasets: ``$DEEPGRAD_DATA`` or the project's ``shared/datasets``
    (``shared_datasets_dir``), else None (MNIST then falls back to the bundled copy)."""
    from ..data.datasets._paths import shared_datasets_dir
    return shared_datasets_dir()


@functools.lru_cache(maxsize=4)
def _mnist_arrays(train: bool):
    from ..data.datasets import MNIST
    root = find_datasets_root()
    ds = MNIST(root=root, train=train, verify=False)
    return np.asarray(ds._images), np.asarray(ds._labels)


def mnist_subset(n: int | None = None, train: bool = True, seed: int = 0, flatten: bool = True):
    """``(x, y)``: ``n`` MNIST images (random, reproducible by ``seed``; all when None) as float32 in
    [0, 1] (flattened to 784 unless ``flatten=False``: (n, 1, 28, 28)) and int64 labels. Uses the
    datasets folder when there is one, else the copy bundled with deepgrad."""
    images, labels = _mnist_arrays(bool(train))
    idx = np.arange(len(labels)) if n is None else \
        np.sort(np.random.default_rng(seed).choice(len(labels), size=min(n, len(labels)), replace=False))
    x = images[idx].astype(np.float32) / 255.0
    x = x.reshape(len(idx), -1) if flatten else x.reshape(len(idx), 1, 28, 28)
    return x, labels[idx].astype(np.int64)


@functools.lru_cache(maxsize=4)
def _cifar_arrays(train: bool):
    from ..data.datasets import CIFAR10
    root = find_datasets_root()
    if root is None:
        from ..data.datasets._paths import default_root
        root = default_root()
    try:
        ds = CIFAR10(root=root, train=train, verify=False)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"this demo needs CIFAR-10 ({'data_batch_1..5.bin[.gz]' if train else 'test_batch.bin[.gz]'}), "
            f"not found; {e} Set $DEEPGRAD_DATA to the folder holding cifar10/, or fetch it once with "
            "deepgrad.data.datasets.CIFAR10(download=True).") from None
    return np.asarray(ds._images), np.asarray(ds._labels)


def cifar10_subset(n: int | None = None, train: bool = True, seed: int = 0, classes=None):
    """``(x, y)``: ``n`` CIFAR-10 images as float32 (n, 3, 32, 32) in [0, 1] and int64 labels,
    optionally only of ``classes``. Looks in ``$DEEPGRAD_DATA`` / the shared datasets folder; a
    missing file raises FileNotFoundError naming the file and where it looked."""
    images, labels = _cifar_arrays(bool(train))
    pool = np.arange(len(labels)) if classes is None else np.flatnonzero(np.isin(labels, list(classes)))
    idx = pool if n is None else \
        np.sort(np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False))
    x = images[idx].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return np.ascontiguousarray(x), labels[idx].astype(np.int64)
