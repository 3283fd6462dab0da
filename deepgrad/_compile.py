"""``deepgrad.compile``: PyTorch's ``torch.compile`` entry point.

deepgrad has no compiler yet, so ``compile`` checks its arguments as PyTorch does and returns the
module or function itself: the program runs exactly as it would uncompiled (which is what
``torch.compile`` promises to be equivalent to). It is usable as ``compile(model)``,
``@compile`` and ``@compile(mode=...)``. (The name ``deepgrad.compile`` is this function, so the
future capture-and-replay package will live under a different module name.)
"""
from __future__ import annotations

_MODES = ("default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,  # noqa: A001
            disable=False):
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if mode is not None and mode not in _MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: {', '.join(_MODES)}")
    if model is None:
        def decorator(fn):
            return compile(fn, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                           options=options, disable=disable)
        return decorator
    if not callable(model):
        raise AssertionError(f"A callable function is expected, but {type(model)} is provided.")
    return model
