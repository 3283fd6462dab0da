"""``deepgrad.jit``: PyTorch's TorchScript entry points, where they are cheap to honour.

``script`` and ``trace`` return the module or function itself (``trace`` first runs it once on the
example inputs, as tracing does, so a wrong example fails here as in PyTorch). The decorators
(``ignore``, ``unused``, ``export``) leave functions as they are. Saving a TorchScript archive
has no deepgrad equivalent: ``save``/``load`` raise NotImplementedError naming what to use.
"""
from __future__ import annotations

from typing import Final  # noqa: F401  (torch.jit.Final)

from .autograd import no_grad


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    return obj


def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None, check_tolerance=1e-5,
          strict=True, _force_outplace=False, _module_class=None, _compilation_unit=None,
          example_kwarg_inputs=None, _store_inputs=True):
    if not callable(func):
        raise TypeError(f"deepgrad.jit.trace: expected a Module or function, got {type(func).__name__}")
    from .tensor import Tensor
    if example_inputs is not None or example_kwarg_inputs is not None:
        args = (example_inputs,) if isinstance(example_inputs, Tensor) else tuple(example_inputs or ())
        with no_grad():
            func(*args, **(example_kwarg_inputs or {}))
    return func


def trace_module(mod, inputs, **kwargs):
    for name, example in inputs.items():
        trace(getattr(mod, name), example)
    return mod


def ignore(drop=False, **kwargs):
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def save(m, f, _extra_files=None):
    raise NotImplementedError("deepgrad.jit.save (torch.jit.save): deepgrad has no TorchScript archive format; "
                              "save the weights with deepgrad.save(model.state_dict(), path) and rebuild the "
                              "model in Python before model.load_state_dict(deepgrad.load(path))")


def load(f, map_location=None, _extra_files=None):
    raise NotImplementedError("deepgrad.jit.load (torch.jit.load): deepgrad cannot read TorchScript archives; "
                              "construct the model in Python and load a state dict saved with deepgrad.save")
