"""Flatten parameters into one vector and back."""
from __future__ import annotations

from ... import backend
from ...tensor import Tensor


def parameters_to_vector(parameters):
    """All ``parameters`` flattened and concatenated into one 1-D Tensor (differentiable)."""
    from ... import ops
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    if not parameters:
        raise RuntimeError("parameters_to_vector: expected a non-empty iterable of Tensors")
    dev = parameters[0].device
    for p in parameters:
        if p.device != dev:
            raise TypeError(f"parameters_to_vector: found parameters on different devices ({dev} and {p.device})")
    return ops.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (each takes its own shape)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, but got: {type(vec).__name__}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.numel() != total:
        raise RuntimeError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not hold the "
                           f"{total} values of the parameters")
    pointer = 0
    a = vec.array
    for p in parameters:
        n = p.numel()
        p.array = a[pointer:pointer + n].reshape(p.array.shape).astype(p.array.dtype, copy=True)
        p._version[0] += 1
        pointer += n
    _ = backend
