"""Training curves as PNG files, drawn with matplotlib's Agg canvas.

matplotlib is imported here only, when a plot is made, and pyplot is never touched: the figures
are drawn on ``FigureCanvasAgg`` directly, so a user's interactive backend is left alone and no
display is needed.
"""
from __future__ import annotations

import os

__all__ = ["plot_history"]


def _series(history):
    """Group the logged keys into plots: ``loss`` with ``val_loss``, ``accuracy`` with
    ``val_accuracy``, ... (``lr`` gets its own plot)."""
    groups = {}
    for key in history.history:
        base = key[4:] if key.startswith("val_") else key
        groups.setdefault(base, []).append(key)
    return groups


def plot_history(history, dirpath, names=None):
    """Write ``<name>.png`` in ``dirpath`` for each logged quantity (``loss.png``,
    ``accuracy.png``, ``lr.png`` ...), train and validation curves together. Returns the paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..io import atomic_write

    os.makedirs(dirpath, exist_ok=True)
    epochs = [e + 1 for e in history.epoch]
    paths = []
    for base, keys in _series(history).items():
        if names is not None and base not in names:
            continue
        fig = Figure(figsize=(5, 3.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        plotted = False
        for key in sorted(keys, key=lambda k: k.startswith("val_")):
            pts = [(e, v) for e, v in zip(epochs, history.history[key]) if isinstance(v, (int, float))]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", markersize=3,
                    label="validation" if key.startswith("val_") else "train")
            plotted = True
        if not plotted:
            continue
        ax.set_xlabel("epoch")
        ax.set_ylabel(base)
        if base == "lr":
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.set_title(base)
        fig.tight_layout()
        path = os.path.join(dirpath, f"{base}.png")
        atomic_write(path, lambda f: fig.savefig(f, format="png"))
        paths.append(path)
    return paths
