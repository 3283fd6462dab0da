"""Where dataset files live.

Resolution for a dataset's root: the ``root`` argument, else ``$DEEPGRAD_DATA``, else the user
cache (``$XDG_CACHE_HOME/deepgrad`` or ``~/.cache/deepgrad``). MNIST additionally falls back to
the copy bundled with the package. ``shared_datasets_dir()`` finds the project's shared data
folder (``../shared/datasets`` beside the repository) for tests and CI.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_root", "resolve_root", "shared_datasets_dir", "bundled_dir"]

ENV_VAR = "DEEPGRAD_DATA"


def default_root() -> Path:
    """``$DEEPGRAD_DATA`` if set, else the user cache directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "deepgrad"


def resolve_root(root=None) -> Path:
    return Path(root).expanduser() if root is not None else default_root()


def bundled_dir(name: str) -> Path:
    """The folder of a dataset shipped inside the package (only MNIST is)."""
    return Path(__file__).resolve().parent / "_bundled" / name


def shared_datasets_dir(start=None):
    """The shared datasets folder for tests/CI, or None.

    ``$DEEPGRAD_DATA`` if it is set and exists; else the first ``shared/datasets`` found beside
    (a parent of) ``start`` (default: this package's location and the working directory), i.e.
    ``<repo>/../shared/datasets``.
    """
    env = os.environ.get(ENV_VAR)
    if env and Path(env).expanduser().is_dir():
        return Path(env).expanduser()
    starts = [Path(start)] if start is not None else [Path(__file__).resolve(), Path.cwd()]
    for s in starts:
        for parent in [s, *s.parents]:
            cand = parent / "shared" / "datasets"
            if cand.is_dir():
                return cand
            cand = parent.parent / "shared" / "datasets" if parent.parent != parent else None
            if cand is not None and cand.is_dir():
                return cand
    return None
