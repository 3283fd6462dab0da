"""What ``deepgrad.compile`` returns: a function, or for a Module an ``OptimizedModule`` that
forwards attribute access to the original (``_orig_mod``), as PyTorch's does."""
from __future__ import annotations

import functools

from ..nn.module import Module
from ._runtime import CompiledFunction


class OptimizedModule(Module):
    """A compiled module: calling it runs the original module's ``__call__`` through capture and
    replay; attributes, parameters and modes are the original's (state_dict keys carry the
    ``_orig_mod.`` prefix, as in PyTorch)."""

    def __init__(self, mod, fullgraph=False, dynamic=None, mode=None):
        super().__init__()
        self._orig_mod = mod
        object.__setattr__(self, "_compiled", CompiledFunction(mod, fullgraph=fullgraph, dynamic=dynamic,
                                                              mode=mode))

    def __call__(self, *args, **kwargs):
        return self.__dict__["_compiled"](*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self.__dict__["_compiled"](*args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._orig_mod, name)

    def __repr__(self):
        return f"OptimizedModule({self._orig_mod!r})"

    @property
    def compiled(self):
        return self.__dict__["_compiled"]


def compile_callable(fn, fullgraph=False, dynamic=None, mode=None):
    if isinstance(fn, Module):
        return OptimizedModule(fn, fullgraph=fullgraph, dynamic=dynamic, mode=mode)
    cf = CompiledFunction(fn, fullgraph=fullgraph, dynamic=dynamic, mode=mode)

    @functools.wraps(fn)
    def compiled(*args, **kwargs):
        return cf(*args, **kwargs)
    compiled._compiled = cf
    compiled._torchdynamo_orig_callable = fn
    return compiled
