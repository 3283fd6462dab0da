"""The public entry points of autograd: ``grad``, ``backward`` and anomaly mode."""
from __future__ import annotations

from . import function as _fn
from .function import run_backward


def _as_list(x):
    if x is None:
        return None
    return [x] if not isinstance(x, (list, tuple)) else list(x)


def _default_grads(outputs, grad_outputs):
    from ..tensor import Tensor
    from .. import backend
    grads = _as_list(grad_outputs) or [None] * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"grad: got {len(grads)} grad_outputs for {len(outputs)} outputs")
    out = []
    for o, g in zip(outputs, grads):
        if g is None:
            if o.array.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs (got an output of shape {tuple(o.shape)})")
            g = Tensor._make(backend.array_module(o.array).ones_like(o.array))
        elif tuple(g.shape) != tuple(o.shape):
            raise RuntimeError(f"grad: grad_output of shape {tuple(g.shape)} does not match output of shape {tuple(o.shape)}")
        elif g.dtype != o.dtype:            # PyTorch casts grad_output to the output's dtype
            g = g.to(o.dtype)
        out.append(g)
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated in ``.grad``)."""
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    for i, o in enumerate(outputs):
        if not o.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad and does not have a grad_fn")
    grads = _default_grads(outputs, grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, grads, retain_graph=retain_graph, create_graph=create_graph,
                          inputs=inputs, allow_unused=allow_unused or materialize_grads,
                          accumulate=False)
    if materialize_grads:
        from ..tensor import Tensor
        from .. import backend
        result = [Tensor._make(backend.array_module(t.array).zeros_like(t.array)) if g is None else g
                  for g, t in zip(result, inputs)]
    return tuple(result)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves (or of ``inputs``)."""
    tensors = _as_list(tensors)
    grads = _default_grads(tensors, grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    run_backward(tensors, grads, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=_as_list(inputs), accumulate=True, allow_unused=True)


class detect_anomaly:
    """Within this context every op's forward and backward outputs are checked for NaN and Inf;
    the first one found raises an error that names the op and the phase."""

    def __init__(self, check_nan=True):
        self.check = bool(check_nan)

    def __enter__(self):
        self.prev = _fn._anomaly[0]
        _fn._anomaly[0] = self.check
        return self

    def __exit__(self, *exc):
        _fn._anomaly[0] = self.prev
        return False


def set_detect_anomaly(mode: bool):
    _fn._anomaly[0] = bool(mode)


def is_anomaly_enabled() -> bool:
    return _fn._anomaly[0]
