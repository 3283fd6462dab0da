"""Tensor factories with PyTorch's names and defaults."""
from __future__ import annotations

import numpy as np

from . import backend
from .random import rng
from .tensor import Tensor

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "eye", "arange",
           "linspace", "logspace", "rand", "randn", "randint", "randperm", "normal", "bernoulli",
           "multinomial", "zeros_like", "ones_like", "empty_like", "rand_like", "randn_like",
           "full_like", "randint_like"]


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        return tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"expected a shape of ints, got {size!r}") from None


def _device(device):
    """``device``, else the default device (``set_default_device``); None means the CPU."""
    return device if device is not None else backend._DEFAULT_DEVICE[0]


def _direct(fn, device, *args, **kwargs):
    """``xp.fn(*args, **kwargs)`` made directly on ``device`` (no host array and copy)."""
    device = _device(device)
    if device is None or backend.device(device).type == "cpu":
        return getattr(np, fn)(*args, **kwargs)
    dev = backend.device(device)
    xp = backend.module_for(dev)
    try:
        with xp.cuda.Device(dev.index or 0):
            return getattr(xp, fn)(*args, **kwargs)
    except MemoryError as e:                 # the device allocator: deepgrad.cuda.OutOfMemoryError
        err = backend.convert_oom(e)
        if err is e:
            raise
        raise err from e


def _finish(array, dtype, device, requires_grad):
    device = _device(device)
    if device is not None and backend.device(device).type != "cpu":
        array = backend.to_device(array, device)
    t = Tensor._make(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (a number, nested lists, an array or a Tensor)."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if (isinstance(data, np.ndarray) and (dtype is None or backend.as_dtype(dtype) == data.dtype) and device is None
            and backend._DEFAULT_DEVICE[0] is None):
        return Tensor._make(data)
    return Tensor(data, dtype=dtype, device=device)


def from_numpy(array):
    """A tensor sharing memory with the NumPy ``array`` (as in PyTorch)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    if array.dtype.char in "eE" and backend.LOWP_HOOK:   # a float16/bfloat16 array (see ops/_lowp.py)
        backend.LOWP_HOOK.pop()()
    return Tensor._make(array)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _finish(_direct("zeros", device, _shape(size), dtype=backend.as_dtype(dtype)), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _finish(_direct("ones", device, _shape(size), dtype=backend.as_dtype(dtype)), dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _finish(_direct("empty", device, _shape(size), dtype=backend.as_dtype(dtype)), dtype, device, requires_grad)


def _fill_dtype(fill_value, dtype):
    if dtype is not None:
        return backend.as_dtype(dtype)
    if isinstance(fill_value, bool):
        return backend.bool_
    if isinstance(fill_value, int):
        return backend.int64
    return backend.get_default_dtype()


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    size = (size,) if isinstance(size, int) else tuple(size)
    return _finish(_direct("full", device, size, fill_value, dtype=_fill_dtype(fill_value, dtype)), dtype, device,
                   requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _finish(_direct("eye", device, n, m, dtype=backend.as_dtype(dtype)), dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = backend.int64 if is_int else backend.get_default_dtype()
    return _finish(np.arange(start, end, step, dtype=np.float64 if backend.as_dtype(dtype).kind == "f" else None)
                   .astype(backend.as_dtype(dtype)), dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _finish(np.linspace(start, end, steps).astype(backend.as_dtype(dtype)), dtype, device, requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    return _finish(np.logspace(start, end, steps, base=base).astype(backend.as_dtype(dtype)), dtype, device, requires_grad)


def _device_generator(device, generator):
    """The GPU generator that draws for ``device`` (None for the CPU: NumPy's generator draws).
    As in PyTorch, a tensor made on the GPU draws from the GPU's own generator."""
    device = _device(device)
    if device is None or generator is not None:
        return None
    dev = backend.device(device)
    if dev.type != "cuda":
        return None
    backend.module_for(dev)          # the "no CUDA device" error, before anything is drawn
    from .cuda import _rng
    return _rng.for_device(dev) if _rng.draws_on_device() else None


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    dt = backend.as_dtype(dtype)
    g = _device_generator(device, generator)
    if g is not None:
        return _finish(g.random(_shape(size), dt), dtype, device, requires_grad)
    return _finish(rng(generator).random(_shape(size), dtype=dt if dt in (np.float32, np.float64) else np.float64).astype(dt, copy=False),
                   dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    dt = backend.as_dtype(dtype)
    g = _device_generator(device, generator)
    if g is not None:
        return _finish(g.standard_normal(_shape(size), dt), dtype, device, requires_grad)
    return _finish(rng(generator).standard_normal(_shape(size), dtype=dt if dt in (np.float32, np.float64) else np.float64).astype(dt, copy=False),
                   dtype, device, requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or
    ``randint(low, high, size)`` (int64 unless ``dtype`` says otherwise)."""
    if size is None and isinstance(high, (tuple, list)):      # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: the size argument is required (randint(high, size) or "
                        "randint(low, high, size))")
    low, high = int(low), int(high)
    if low >= high:
        raise RuntimeError(f"randint: random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = backend.as_dtype(dtype) if dtype is not None else backend.int64
    g = _device_generator(device, generator)
    if g is not None:
        return _finish(g.integers(low, high, _shape(tuple(size) if isinstance(size, (tuple, list)) else (size,)), dt),
                       dtype, device, requires_grad)
    return _finish(rng(generator).integers(low, high, size=_shape(tuple(size) if isinstance(size, (tuple, list)) else (size,))).astype(dt),
                   dtype, device, requires_grad)


def randperm(n, generator=None, dtype=None, device=None):
    dt = backend.as_dtype(dtype) if dtype is not None else backend.int64
    g = _device_generator(device, generator)
    if g is not None:
        return _finish(g.permutation(n, dt), dtype, device, False)
    return _finish(rng(generator).permutation(n).astype(dt), dtype, device, False)


def normal(mean, std, size, generator=None, dtype=None, device=None):
    g = _device_generator(device, generator)
    if g is not None:
        return _finish(g.normal(mean, std, tuple(size), backend.as_dtype(dtype)), dtype, device, False)
    return _finish(rng(generator).normal(mean, std, size=tuple(size)).astype(backend.as_dtype(dtype)), dtype, device, False)


def bernoulli(input, p=None, generator=None):
    u = backend.to_device(rng(generator).random(input.shape), input.device)
    return Tensor._make((u < (input.array if p is None else p)).astype(input.dtype))


def multinomial(input, num_samples, replacement=False, generator=None):
    """Draw category indices from rows of (unnormalised) probabilities."""
    p = backend.to_numpy(input.array).astype(np.float64)
    single = p.ndim == 1
    p2 = p[None] if single else p
    g = rng(generator)
    out = np.stack([g.choice(p2.shape[1], size=num_samples, replace=replacement, p=row / row.sum()) for row in p2])
    return Tensor._make(backend.to_device((out[0] if single else out).astype(np.int64), input.device))


def _like(fn):
    def like(input, dtype=None, device=None, requires_grad=False, **kw):
        return fn(*input.shape, dtype=dtype if dtype is not None else input.dtype,
                  device=device if device is not None else input.device, requires_grad=requires_grad, **kw)
    like.__name__ = fn.__name__ + "_like"
    like.__doc__ = f"``{fn.__name__}`` with the shape (and by default dtype and device) of ``input``."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(tuple(input.shape), fill_value, dtype=dtype if dtype is not None else input.dtype,
                device=device if device is not None else input.device, requires_grad=requires_grad)


def randint_like(input, low, high=None, dtype=None, device=None):
    return randint(low, high, size=tuple(input.shape), dtype=dtype if dtype is not None else input.dtype,
                   device=device if device is not None else input.device)
