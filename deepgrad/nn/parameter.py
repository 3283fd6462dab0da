"""``Parameter``: a Tensor that a ``Module`` registers as one of its learnable parameters."""
from __future__ import annotations

from ..tensor import Tensor, _to_array


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that ``Module.__setattr__`` registers.

    ``Parameter(t)`` shares ``t``'s memory (as in PyTorch), ``Parameter()`` is empty.
    """
    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            import numpy as np
            array = np.empty((0,), dtype="float32")
        elif isinstance(data, Tensor):
            array = data.array
        else:
            array = _to_array(data, None, None)
        self.array = array
        self.requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._out_nr = 0
        self._version = data._version if isinstance(data, Tensor) else [0]
        self._hooks = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (self.array, self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        p = Parameter(Tensor._make(self.array.copy()), self.requires_grad)
        if self.grad is not None:
            p.grad = Tensor._make(self.grad.array.copy())
        memo[id(self)] = p
        return p


def _rebuild_parameter(array, requires_grad):
    return Parameter(Tensor._make(array), requires_grad)

