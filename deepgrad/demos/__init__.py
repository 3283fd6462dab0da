"""The lectures' experiments, one command each: ``deepgrad demo NAME [--quick] [--out DIR] [--seed N]``.

Every module of this package whose name does not start with ``_`` is a demo. It defines

* ``NAME``    the command-line name (``"perceptron"``, ``"universal-approximation"``)
* ``DECKS``   the lecture decks it illustrates, e.g. ``("001", "003")``
* ``SUMMARY`` one line for ``deepgrad demo --list``
* ``run(quick=False, out=None, seed=0) -> dict`` which prints its numbers (the paper's or the
  lecture's figure beside deepgrad's where there is one), writes its PNG figures into ``out``
  (default ``runs/demos/NAME``) and returns the key numbers as a dict.

Demos are found by walking the package (no list to edit): adding a file adds a demo.
``available()`` maps names to modules; ``run(name, ...)`` runs one.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

__all__ = ["available", "run", "default_out"]


def available() -> dict:
    """``{NAME: module}`` for every demo module of this package, sorted by name."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        try:
            mod = importlib.import_module(f"{__name__}.{info.name}")
        except ImportError as e:
            raise ImportError(f"deepgrad.demos: the demo module {info.name!r} failed to import: {e} "
                              "(demos import optional packages inside run())") from e
        name = getattr(mod, "NAME", None)
        if not isinstance(name, str) or not callable(getattr(mod, "run", None)):
            continue   # a helper module that is not a demo
        if name in found:
            raise RuntimeError(f"deepgrad.demos: two demo modules are named {name!r}: "
                               f"{found[name].__name__} and {mod.__name__}")
        found[name] = mod
    return dict(sorted(found.items()))


def default_out(name: str) -> Path:
    """Where a demo writes its figures when no folder is given: ``runs/demos/NAME``."""
    return Path("runs") / "demos" / name


def run(name: str, quick: bool = False, out=None, seed: int = 0) -> dict:
    """Run the demo called ``name``; returns its dict of key numbers. An unknown name raises
    ``KeyError`` listing the available demos."""
    demos = available()
    mod = demos.get(name)
    if mod is None:
        alt = name.replace("_", "-")
        mod = demos.get(alt)
    if mod is None:
        raise KeyError(f"unknown demo {name!r}; available demos: {', '.join(demos) or '(none)'} "
                       "(see `deepgrad demo --list`)")
    out = Path(out) if out is not None else default_out(mod.NAME)
    return mod.run(quick=quick, out=out, seed=seed)


def show(name: str, quick: bool = False, out=None, seed: int = 0) -> dict:
    """Run demo ``name`` as :func:`run` does, then list the figures it wrote — and, inside Jupyter
    or IPython, display them under the cell. This is what the lecture notebooks call."""
    out = Path(out) if out is not None else default_out(name)
    result = run(name, quick=quick, out=out, seed=seed)
    figures = [Path(f) for f in result.get("figures", [])] or sorted(out.glob("*.png"))
    try:                                  # only when an IPython shell is running this code
        from IPython import get_ipython
        from IPython.display import Image, display
        shell = get_ipython()
    except ImportError:
        shell = None
    for f in figures:
        print("figure:", f)
        if shell is not None:
            display(Image(filename=str(f)))
    return result
