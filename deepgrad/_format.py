"""How a Tensor prints: PyTorch's layout, driven by ``deepgrad.set_printoptions``.

One width for every element of a tensor; floats print in one of three modes chosen from the
nonzero finite values: whole numbers as ``3.``, fixed ``precision`` digits, or scientific when
the values span more than three decades, exceed 1e8 or fall below 1e-4 (``sci_mode`` forces
either). Tensors with more than ``threshold`` elements show ``edgeitems`` at each end of every
dimension with ``...`` between; 1-D rows wrap at ``linewidth``.
"""
from __future__ import annotations

import math

import numpy as np

from ._config import PRINT_OPTIONS


class _ElementFormat:
    """Formats single elements of one tensor, all to the same width."""

    def __init__(self, values: np.ndarray, floating: bool):
        po = PRINT_OPTIONS
        self.floating, self.precision = floating, po["precision"]
        self.whole, self.sci, self.width = True, False, 1
        flat = values.reshape(-1)
        if not floating:
            self.width = max([1] + [len(str(v)) for v in flat.tolist()])
            return
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            return
        mags = np.abs(finite)
        lo, hi = float(mags.min()), float(mags.max())
        self.whole = bool(np.all(finite == np.ceil(finite)))
        auto_sci = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        self.sci = auto_sci if po["sci_mode"] is None else bool(po["sci_mode"])
        p = self.precision
        if self.sci:
            self.width = max(len(f"{v:.{p}e}") for v in finite.tolist())
        elif self.whole:
            self.width = max(len(f"{v:.0f}") + 1 for v in finite.tolist())
        else:
            self.width = max(len(f"{v:.{p}f}") for v in finite.tolist())

    def __call__(self, v) -> str:
        if self.floating:
            if self.sci:
                s = f"{v:{self.width}.{self.precision}e}"
            elif self.whole:
                s = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
            else:
                s = f"{v:.{self.precision}f}"
        else:
            s = f"{v}"
        return " " * (self.width - len(s)) + s


def _edges(a: np.ndarray, edge: int) -> np.ndarray:
    """The values that will be shown when summarising: ``edge`` items at each end of every dim."""
    if a.ndim == 0:
        return a
    if a.shape[0] > 2 * edge:
        a = np.concatenate([a[:edge], a[a.shape[0] - edge:]]) if edge else a[:0]
    if a.ndim == 1:
        return a
    return np.stack([_edges(x, edge) for x in a]) if len(a) else a


def _vector(a, indent, summarize, fmt):
    po = PRINT_OPTIONS
    edge = po["edgeitems"]
    per_line = max(1, math.floor((po["linewidth"] - indent) / (fmt.width + 2)))
    if summarize and not edge:
        items = ["..."]
    elif summarize and a.shape[0] > 2 * edge:
        items = [fmt(v) for v in a[:edge].tolist()] + [" ..."] + [fmt(v) for v in a[a.shape[0] - edge:].tolist()]
    else:
        items = [fmt(v) for v in a.tolist()]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(a, indent, summarize, fmt):
    if a.ndim == 0:
        return fmt(a.item())
    if a.ndim == 1:
        return _vector(a, indent, summarize, fmt)
    edge = PRINT_OPTIONS["edgeitems"]
    if summarize and a.shape[0] > 2 * edge:
        parts = ([_nested(a[i], indent + 1, summarize, fmt) for i in range(edge)] + ["..."]
                 + [_nested(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0] - edge, a.shape[0])])
    else:
        parts = [_nested(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def format_values(a: np.ndarray, floating: bool, indent: int) -> str:
    """The bracketed body of a tensor's repr (``a`` is a NumPy array in a printable dtype)."""
    if a.size == 0:
        return "[]"
    threshold = PRINT_OPTIONS["threshold"]
    summarize = a.size > threshold
    shown = _edges(a, PRINT_OPTIONS["edgeitems"]) if summarize else a
    fmt = _ElementFormat(shown, floating)
    return _nested(a, indent, summarize, fmt)


def add_suffixes(body: str, suffixes, indent: int) -> str:
    """``body`` + ", suffix" for each suffix, moving one to a new line when it would pass linewidth."""
    out = [body]
    line_len = len(body) - body.rfind("\n") + 1
    width = PRINT_OPTIONS["linewidth"]
    for s in suffixes:
        if line_len + len(s) + 2 > width:
            out.append(",\n" + " " * indent + s)
            line_len = indent + len(s)
        else:
            out.append(", " + s)
            line_len += len(s) + 2
    out.append(")")
    return "".join(out)
