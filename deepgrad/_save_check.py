"""``deepgrad.save``'s first check: refuse whole modules and optimisers with what to do instead.

PyTorch's ``torch.save(model)`` pickles the object; deepgrad never pickles (so that loading a
file cannot run code), so anything with a ``state_dict()`` method -- a Module, an Optimizer, an LR
scheduler, a GradScaler -- is refused wherever it sits in the saved structure, naming where it is
and saying to save its ``state_dict()``.
"""
from __future__ import annotations


def refuse_whole_objects(obj, where="obj"):
    from .tensor import Tensor
    if isinstance(obj, Tensor) or obj is None or isinstance(obj, (str, bytes, int, float)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            refuse_whole_objects(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            refuse_whole_objects(v, f"{where}[{i}]")
        return
    if callable(getattr(obj, "state_dict", None)):
        name = type(obj).__name__
        raise TypeError(
            f"deepgrad.save: {where} is a whole {name} object, which PyTorch would pickle; deepgrad never pickles "
            "(so that loading a file cannot run code). Save its state_dict() instead"
            + (" in its place" if where != "obj" else "") +
            ", e.g. deepgrad.save(model.state_dict(), path), and later rebuild the object and call "
            ".load_state_dict(deepgrad.load(path))")
