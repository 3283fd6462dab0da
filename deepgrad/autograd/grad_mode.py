"""Grad mode: whether ops record the graph. ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

The flag is a one-element list so that the hot path (``Function.apply``) reads it with a single
index, without a function call.
"""
from __future__ import annotations

import functools

_enabled = [True]


def is_grad_enabled() -> bool:
    return _enabled[0]


class _GradModeContext:
    """Context manager and decorator that sets grad mode and restores the previous one on exit."""

    mode: bool

    def __enter__(self):
        self._prev = _enabled[0]
        _enabled[0] = self.mode
        return self

    def __exit__(self, *exc):
        _enabled[0] = self._prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _enabled[0]
            _enabled[0] = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _enabled[0] = prev
        return wrapper


class no_grad(_GradModeContext):
    """Ops run inside record no graph: ``with dg.no_grad(): ...`` or ``@dg.no_grad()``."""
    mode = False


class enable_grad(_GradModeContext):
    """Re-enables recording inside a ``no_grad`` block."""
    mode = True


class set_grad_enabled(_GradModeContext):
    """Sets grad mode to ``mode``. Takes effect at construction, like PyTorch, so that the plain
    call ``set_grad_enabled(False)`` switches the mode too; as a context manager it restores the
    previous mode on exit."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = _enabled[0]
        _enabled[0] = self.mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        _enabled[0] = self._prev  # used as a decorator: construction must not leak the mode
        return super().__call__(fn)


class inference_mode(no_grad):
    """Alias of ``no_grad`` (deepgrad has no separate inference tensors)."""
