"""Capture-and-replay compiler behind ``deepgrad.compile``.

``capture(fn, args, kwargs) -> (result, Program, reason)`` runs a function once eagerly while
recording its array-level work; ``Program.fn(arrays)`` replays it (a generated straight-line
Python function over raw NumPy arrays); ``Program.print()`` / ``Program.to_dot()`` show it.
``CompiledFunction`` adds the cache of programs per input signature, guards and fallbacks;
``OptimizedModule`` is what ``deepgrad.compile(module)`` returns. See docs/architecture.md.
"""
from ._program import GuardFailed, Program, StateChanged  # noqa: F401
from ._record import GraphBreak, Rec  # noqa: F401
from ._runtime import CompiledFunction, capture, discover  # noqa: F401
from . import _runtime as config  # noqa: F401  (config.cache_size_limit)
from ._module import OptimizedModule, compile_callable  # noqa: F401

__all__ = ["capture", "Program", "CompiledFunction", "OptimizedModule", "GraphBreak", "compile_callable"]
