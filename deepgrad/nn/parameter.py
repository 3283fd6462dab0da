"""``Parameter``: a Tensor that a ``Module`` registers as one of its learnable parameters."""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from .. import backend
from ..tensor import Tensor, _to_array


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that ``Module.__setattr__`` registers.

    ``Parameter(t)`` shares ``t``'s memory (as in PyTorch), ``Parameter()`` is empty.
    """
    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
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



# ---- storage for the layers' parameters and buffers ------------------------------------------
def _on_device(a, device):
    """``a`` (a new CPU array) as a Tensor on ``device`` (None: the default device)."""
    if device is None:
        device = backend._DEFAULT_DEVICE[0]
    if device is not None and backend.device(device).type != "cpu":
        a = backend.to_device(a, device)
    return Tensor._make(a)


def _empty(shape, dtype, device):
    """Uninitialised storage of ``shape`` for a parameter (the layer's ``reset_parameters`` fills it)."""
    dtype = backend.as_dtype(dtype)
    _charge(shape, dtype)
    return _on_device(np.empty(shape, dtype=dtype), device)


def _full(shape, value, dtype, device):
    dtype = backend.as_dtype(dtype)
    _charge(shape, dtype)
    return _on_device(np.full(shape, value, dtype=dtype), device)


# ---- a budget for building a model from untrusted hyper-parameters -------------------------------
class ParameterBudgetExceeded(MemoryError):
    """Raised inside :func:`parameter_budget` when a layer would allocate past the budget."""

    def __init__(self, shape, nbytes, budget):
        self.shape, self.nbytes, self.budget = tuple(shape), nbytes, budget
        super().__init__(f"a parameter of shape {self.shape} ({nbytes:,} bytes) would take the model past "
                         f"its budget of {budget:,} bytes")


_budget = threading.local()


def _charge(shape, dtype):
    state = getattr(_budget, "state", None)
    if state is None:
        return
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    n = 1
    for s in shape:
        n *= max(int(s), 0)
    nbytes = n * np.dtype(dtype).itemsize
    state[0] += nbytes
    if state[0] > state[1]:
        raise ParameterBudgetExceeded(shape, nbytes, state[1])


@contextlib.contextmanager
def parameter_budget(max_bytes):
    """Within this block, layers refuse (with :class:`ParameterBudgetExceeded`) to allocate
    parameters past ``max_bytes`` in all, *before* allocating. Used to rebuild a model from a
    checkpoint's hyper-parameters without trusting them: the budget is what the file holds."""
    previous = getattr(_budget, "state", None)
    _budget.state = [0, int(max_bytes)]
    try:
        yield
    finally:
        _budget.state = previous


def _set_parameters(module, **tensors):
    """Registers each tensor on ``module`` as a Parameter of that name, in order; a ``None`` is
    registered as ``None`` (as PyTorch does for a layer built without its bias, say)."""
    for name, t in tensors.items():
        if t is None:
            module.register_parameter(name, None)
        else:
            setattr(module, name, Parameter(t))
