"""``deepgrad.compile``: PyTorch's ``torch.compile`` entry point.

``compile`` checks its arguments as PyTorch does and returns a compiled wrapper (deepgrad/compiler/):
the first call of each input signature runs eagerly while recording its array-level work, later
calls replay the recorded program (guards and graph breaks fall back to eager, so the result is
always what the uncompiled program computes). For a Module the wrapper is an ``OptimizedModule``
forwarding attribute access to ``_orig_mod``. Usable as ``compile(model)``, ``@compile`` and
``@compile(mode=...)``; ``disable=True`` returns the callable itself.
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
    if disable:
        return model
    from .compiler import compile_callable
    return compile_callable(model, fullgraph=fullgraph, dynamic=dynamic, mode=mode)
