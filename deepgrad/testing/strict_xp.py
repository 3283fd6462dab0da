"""A strict stand-in for CuPy: NumPy arithmetic behind CuPy's refusals.

``ndarray`` holds a NumPy array privately and, like ``cupy.ndarray``, refuses to become a NumPy
array behind the caller's back: ``numpy.asarray(x)`` raises CuPy's TypeError, a NumPy function or
ufunc called on it raises a TypeError naming the function, and a NumPy array mixed into its
arithmetic is refused. Python and NumPy scalars are fine, and so are the explicit exits CuPy has
(``get()``, ``asnumpy``, ``item()``, ``tolist()``, ``float()``/``bool()`` of one element).

This module is itself the stand-in namespace: ``strict_xp.zeros``, ``strict_xp.exp`` ... are made on
first use from the NumPy function of the same name (their arguments unwrapped, NumPy arrays among
them refused, array results wrapped), beside hand-written ``cuda``, ``random``, ``linalg``, ``fft``,
``lib.stride_tricks``, memory pools, ``fuse`` and kernels (which only run on a real GPU). It is
stricter than CuPy in one respect: CuPy forwards ``numpy.exp(cupy_array)`` to ``cupy.exp``, this
refuses it, so that every ``numpy`` call on a device array in deepgrad shows up on a machine
without a GPU. ``deepgrad.testing.strict_cuda()`` installs it as deepgrad's CUDA module.
"""
from __future__ import annotations

import contextlib
import functools
import sys
import types
import weakref

import numpy as _np

__stand_in__ = True          # backend.is_stand_in(): fused kernels and cuDNN need the real CuPy

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
             "a NumPy array explicitly.")

# ---- devices and memory ------------------------------------------------------------------------
_DEVICE_COUNT = [1]
_CURRENT = [0]


class _Pool:
    """``get_default_memory_pool()``: bytes of live stand-in arrays (each owning buffer once)."""

    def __init__(self):
        self._live = {}        # id(owning numpy buffer) -> nbytes
        self._peak = 0

    def _track(self, a):
        owner = a
        while isinstance(owner.base, _np.ndarray):
            owner = owner.base
        key = id(owner)
        if key not in self._live and owner.base is None:
            self._live[key] = owner.nbytes
            weakref.finalize(owner, self._live.pop, key, None)
            self._peak = max(self._peak, self.used_bytes())

    def used_bytes(self):
        return sum(self._live.values())

    def total_bytes(self):
        return self.used_bytes()

    def free_bytes(self):
        return 0

    def n_free_blocks(self):
        return 0

    def free_all_blocks(self, stream=None):
        return None

    def set_limit(self, size=None, fraction=None):
        return None

    def get_limit(self):
        return 0


_POOL, _PINNED_POOL = _Pool(), _Pool()


def get_default_memory_pool():
    return _POOL


def get_default_pinned_memory_pool():
    return _PINNED_POOL


class _DeviceTag:
    """``ndarray.device``: the device an array lives on (``.id``)."""

    __slots__ = ("id",)

    def __init__(self, i):
        self.id = i

    def __repr__(self):
        return f"<CUDA Device {self.id} (strict stand-in)>"

    def __eq__(self, other):
        return isinstance(other, _DeviceTag) and other.id == self.id

    def __hash__(self):
        return hash(self.id)


# ---- wrapping and unwrapping -------------------------------------------------------------------
def _wrap(r):
    """NumPy results -> stand-in arrays (NumPy scalars become 0-d arrays, as CuPy returns them)."""
    if isinstance(r, _np.ndarray):
        return ndarray._of(r)
    if isinstance(r, _np.generic):
        return ndarray._of(_np.asarray(r))
    if isinstance(r, tuple):
        return type(r)(*map(_wrap, r)) if hasattr(r, "_fields") else tuple(_wrap(x) for x in r)
    if isinstance(r, list):
        return [_wrap(x) for x in r]
    return r


def _unwrap(x, where, host_ok=False):
    """Stand-in arrays -> their NumPy arrays; a NumPy array is refused unless ``host_ok``."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        if host_ok:
            return x
        raise TypeError(f"Unsupported type {type(x)}: {where} got a NumPy array where a device array "
                        f"is needed (the strict CuPy stand-in refuses host arrays, as CuPy does)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(e, where, host_ok) for e in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, where, host_ok) for k, v in x.items()}
    return x


def _call(fn, name, host_ok=False):
    @functools.wraps(fn)
    def run(*args, **kwargs):
        return _wrap(fn(*_unwrap(args, name, host_ok), **_unwrap(kwargs, name, host_ok)))
    run.__name__ = name
    return run


def _operand(x, op):
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (bool, int, float, complex, _np.generic)):
        return x
    if isinstance(x, (_np.ndarray, list, tuple)):
        raise TypeError(f"Unsupported type {type(x)}: the strict CuPy stand-in refuses a host operand "
                        f"in '{op}' (as CuPy does); move it to the device first")
    return NotImplemented


def _binary(name, inplace=False):
    op = getattr(_np.ndarray, name)

    def method(self, other):
        o = _operand(other, name)
        if o is NotImplemented:
            return NotImplemented
        r = op(self._a, o)
        return self if inplace else _wrap(r)
    method.__name__ = name
    return method


_SCALAR_UFUNCS = {"add", "subtract", "multiply", "true_divide", "divide", "floor_divide", "remainder",
                  "power", "matmul", "less", "less_equal", "greater", "greater_equal", "equal",
                  "not_equal", "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"}

# Methods of cupy.ndarray that exist on numpy.ndarray too; each is NumPy's, wrapped.
_METHODS = ("all any argmax argmin argpartition argsort astype choose clip compress conj conjugate "
            "copy cumprod cumsum dot fill flatten max mean min nonzero partition prod ptp "
            "put ravel repeat reshape round sort squeeze std sum swapaxes take "
            "trace transpose var view").split()


class ndarray:
    """A device array of the stand-in: CuPy's refusals around a private NumPy array."""

    __slots__ = ("_a", "_dev", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = _np.empty(shape, dtype, order=order)
        self._dev = _CURRENT[0]
        _POOL._track(self._a)

    @classmethod
    def _of(cls, a):
        self = object.__new__(cls)
        self._a = a if isinstance(a, _np.ndarray) else _np.asarray(a)
        self._dev = _CURRENT[0]
        _POOL._track(self._a)
        return self

    # -- the refusals ---------------------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was called on a device array: the strict CuPy stand-in "
                        f"refuses NumPy functions on device arrays; use the array's module "
                        f"(backend.array_module(x).{func.__name__})")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # ``np.float32(2) * x`` reaches here through the NumPy scalar's operator: allow that.
        if (method == "__call__" and not kwargs and len(inputs) == 2 and ufunc.__name__ in _SCALAR_UFUNCS
                and any(isinstance(i, _np.generic) for i in inputs)):
            return _wrap(ufunc(*(i._a if isinstance(i, ndarray) else i for i in inputs)))
        raise TypeError(f"numpy.{ufunc.__name__} was called on a device array: the strict CuPy stand-in "
                        f"refuses NumPy ufuncs on device arrays; use the array's module "
                        f"(backend.array_module(x).{ufunc.__name__})")

    # -- explicit exits (CuPy allows them; each is a device-to-host copy) ------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is not None:
            out[...] = self._a
            return out
        return self._a.copy(order=order)

    def set(self, arr, stream=None):
        self._a[...] = arr

    def item(self, *args):
        return self._a.item(*args)

    def tolist(self):
        return self._a.tolist()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __bool__(self):
        return bool(self._a)

    def __index__(self):
        if self._a.ndim != 0 or self._a.dtype.kind not in "iub":
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (_wrap(self._a[i]) for i in range(len(self._a)))

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec) if self._a.ndim == 0 else str(self)

    __hash__ = None

    def __reduce__(self):
        return (_from_host, (self._a.copy(),))

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    # -- attributes ------------------------------------------------------------------------------
    shape = property(lambda s: s._a.shape, lambda s, v: setattr(s._a, "shape", v))
    dtype = property(lambda s: s._a.dtype)
    ndim = property(lambda s: s._a.ndim)
    size = property(lambda s: s._a.size)
    nbytes = property(lambda s: s._a.nbytes)
    itemsize = property(lambda s: s._a.itemsize)
    strides = property(lambda s: s._a.strides)
    flags = property(lambda s: s._a.flags)
    T = property(lambda s: ndarray._of(s._a.T))
    mT = property(lambda s: ndarray._of(_np.swapaxes(s._a, -1, -2)))
    real = property(lambda s: ndarray._of(s._a.real))
    imag = property(lambda s: ndarray._of(s._a.imag))
    device = property(lambda s: _DeviceTag(s._dev))
    data = property(lambda s: types.SimpleNamespace(ptr=s._a.__array_interface__["data"][0], device_id=s._dev))
    flat = property(lambda s: ndarray._of(s._a.reshape(-1)))

    @property
    def base(self):
        return None if self._a.base is None or not isinstance(self._a.base, _np.ndarray) else ndarray._of(self._a.base)

    def __getattr__(self, name):
        raise AttributeError(f"'cupy.ndarray' (strict stand-in) has no attribute {name!r}")

    # -- indexing --------------------------------------------------------------------------------
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, "indexing", host_ok=True)])

    def __setitem__(self, key, value):
        if isinstance(value, list):
            value = _np.asarray(_unwrap(value, "setitem"))
        self._a[_unwrap(key, "indexing", host_ok=True)] = _unwrap(value, "setitem", host_ok=True)

    # -- operators (set below the class) and NumPy's methods ----------------------------------
    def __neg__(self):
        return _wrap(-self._a)

    def __pos__(self):
        return _wrap(+self._a)

    def __abs__(self):
        return _wrap(abs(self._a))

    def __invert__(self):
        return _wrap(~self._a)


def _method(name):
    def method(self, *a, **k):
        where = f"ndarray.{name}"
        return _wrap(getattr(self._a, name)(*_unwrap(a, where), **_unwrap(k, where)))
    method.__name__ = name
    return method


for _n in "add sub mul truediv floordiv mod pow matmul and or xor lshift rshift divmod".split():
    setattr(ndarray, f"__{_n}__", _binary(f"__{_n}__"))
    setattr(ndarray, f"__r{_n}__", _binary(f"__r{_n}__"))
    if _n != "divmod":
        setattr(ndarray, f"__i{_n}__", _binary(f"__i{_n}__", inplace=True))
for _n in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
    setattr(ndarray, _n, _binary(_n))
for _n in _METHODS:
    setattr(ndarray, _n, _method(_n))
del _n
def _from_host(a):
    return ndarray._of(a)


# ---- the namespace: hand-written functions first, NumPy's others made on first use ------------
def asarray(a, dtype=None, order=None, *, blocking=False):
    """Host (NumPy arrays, lists, scalars) to device; a device array stays as it is."""
    if isinstance(a, ndarray) and (dtype is None or _np.dtype(dtype) == a.dtype):
        return a
    return ndarray._of(_np.array(_unwrap(a, "asarray", host_ok=True), dtype=dtype, order=order or "K",
                                 copy=not isinstance(a, ndarray) or None))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    return ndarray._of(_np.array(_unwrap(obj, "array", host_ok=True), dtype=dtype, copy=bool(copy) or None,
                                 order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return _np.asarray(a, order=order)


def _diagonal(a, offset=0, axis1=0, axis2=1):
    """NumPy's diagonal, but a writable view, as CuPy's is (CuPy has no read-only arrays)."""
    nd = a.ndim
    d1, d2 = axis1 % nd, axis2 % nd
    if offset >= 0:
        n, start = max(0, min(a.shape[d1], a.shape[d2] - offset)), {d2: min(offset, a.shape[d2])}
    else:
        n, start = max(0, min(a.shape[d1] + offset, a.shape[d2])), {d1: min(-offset, a.shape[d1])}
    sub = a[tuple(slice(start.get(i, 0), None) for i in range(nd))]
    rest = [i for i in range(nd) if i not in (d1, d2)]
    return _np.lib.stride_tricks.as_strided(sub, tuple(a.shape[i] for i in rest) + (n,),
                                            tuple(a.strides[i] for i in rest) + (a.strides[d1] + a.strides[d2],))


def diagonal(a, offset=0, axis1=0, axis2=1):
    return ndarray._of(_diagonal(_unwrap(a, "diagonal"), offset, axis1, axis2))


ndarray.diagonal = lambda self, offset=0, axis1=0, axis2=1: ndarray._of(_diagonal(self._a, offset, axis1, axis2))


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


def ascontiguousarray(a, dtype=None):
    return ndarray._of(_np.ascontiguousarray(_unwrap(a, "ascontiguousarray"), dtype=dtype))


def fuse(*args, **kwargs):
    """``@cupy.fuse`` / ``@cupy.fuse()``: the stand-in calls the Python function itself."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda f: f


class _Kernel:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: CUDA kernels only run on a real GPU with CuPy; "
                                  "the strict stand-in has none (check backend.is_stand_in() and take "
                                  "the array-module path)")

    def get_function(self, name):
        return self


class ElementwiseKernel(_Kernel):
    pass


class ReductionKernel(_Kernel):
    pass


class RawKernel(_Kernel):
    pass


class RawModule(_Kernel):
    pass


class _Namespace(types.ModuleType):
    """A sub-namespace (linalg, fft, random's functions) whose names wrap ``source``'s."""

    def __init__(self, name, source, host_ok=()):
        super().__init__(f"{__name__}.{name}")
        self._source, self._host_ok = source, set(host_ok)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        obj = getattr(self._source, name)
        if callable(obj) and not isinstance(obj, type):
            obj = _call(obj, f"{self.__name__}.{name}", host_ok=name in self._host_ok)
        setattr(self, name, obj)
        return obj


linalg = _Namespace("linalg", _np.linalg)
fft = _Namespace("fft", _np.fft)
lib = types.SimpleNamespace(stride_tricks=_Namespace("lib.stride_tricks", _np.lib.stride_tricks))


# ---- random: CuPy's cupy.random API on NumPy generators ----------------------------------------
class _RandomBase:
    def __getattr__(self, name):
        fn = getattr(self._g, name)
        if not callable(fn):
            return fn
        return _call(fn, f"random.{type(self).__name__}.{name}")


class Generator(_RandomBase):
    """``cupy.random.Generator``: NumPy's PCG64 here, so its numbers differ from CuPy's XORWOW."""

    def __init__(self, bit_generator=None):
        self._g = _np.random.Generator(bit_generator if bit_generator is not None else _np.random.PCG64())


def default_rng(seed=None):
    return Generator(_np.random.PCG64(seed))


class RandomState(_RandomBase):
    def __init__(self, seed=None, method=None):
        self._g = _np.random.RandomState(seed)

    def seed(self, seed=None):
        self._g.seed(seed)


_STATE = [RandomState(0)]
random = _Namespace("random", _np.random)
random.Generator, random.default_rng, random.RandomState = Generator, default_rng, RandomState
random.get_random_state = lambda: _STATE[0]


def _seed(seed=None):
    _STATE[0] = RandomState(seed)


random.seed = _seed
for _name in ("rand randn random random_sample uniform normal standard_normal randint permutation "
              "choice shuffle integers binomial exponential gamma beta poisson multinomial").split():
    setattr(random, _name, (lambda n: lambda *a, **k: getattr(_STATE[0], n)(*a, **k))(_name))
del _name


# ---- cuda: devices, streams, events, runtime ---------------------------------------------------
class Device:
    """``cupy.cuda.Device(i)``: selects device ``i`` inside a ``with`` block."""

    def __init__(self, device=None):
        self.id = _CURRENT[0] if device is None else int(device)
        self._prev = []

    def __enter__(self):
        self._check()
        self._prev.append(_CURRENT[0])
        _CURRENT[0] = self.id
        return self

    def __exit__(self, *exc):
        _CURRENT[0] = self._prev.pop()

    def _check(self):
        if not 0 <= self.id < _DEVICE_COUNT[0]:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id} (the strict "
                               f"stand-in has {_DEVICE_COUNT[0]} device(s))")

    def use(self):
        self._check()
        _CURRENT[0] = self.id

    def synchronize(self):
        return None

    compute_capability = property(lambda s: "90")
    mem_info = property(lambda s: (2 ** 36 - _POOL.used_bytes(), 2 ** 36))

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)


class Stream:
    null = None

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = ptr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def synchronize(self):
        return None

    def use(self):
        return self

    def record(self, event=None):
        return event or Event()

    def wait_event(self, event):
        return None

    done = property(lambda s: True)


Stream.null = Stream(null=True)


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        import time
        self._t = time.perf_counter()

    def record(self, stream=None):
        import time
        self._t = time.perf_counter()

    def synchronize(self):
        return None

    done = property(lambda s: True)


def _elapsed(start, end):
    return (end._t - start._t) * 1000.0


def _properties(i):
    Device(i)._check()
    return {"name": b"deepgrad strict CuPy stand-in (NumPy)", "major": 9, "minor": 0,
            "totalGlobalMem": 2 ** 36, "multiProcessorCount": 1}


def _set_device(i):
    Device(i).use()


runtime = types.SimpleNamespace(
    getDeviceCount=lambda: _DEVICE_COUNT[0], getDevice=lambda: _CURRENT[0], setDevice=_set_device,
    getDeviceProperties=_properties, deviceSynchronize=lambda: None,
    memGetInfo=lambda: (2 ** 36 - _POOL.used_bytes(), 2 ** 36), runtimeGetVersion=lambda: 13000,
    driverGetVersion=lambda: 13000, is_hip=False)


def _pinned_empty(shape, dtype=float):
    return _np.empty(shape, dtype)


cuda = types.SimpleNamespace(
    Device=Device, Stream=Stream, Event=Event, runtime=runtime, get_elapsed_time=_elapsed,
    get_current_stream=lambda device=None: Stream.null, is_available=lambda: _DEVICE_COUNT[0] > 0,
    MemoryPool=_Pool, PinnedMemoryPool=_Pool, alloc_pinned_memory=lambda n: bytearray(n),
    set_allocator=lambda allocator=None: None, set_pinned_memory_allocator=lambda allocator=None: None)


def set_device_count(n):
    """How many devices the stand-in pretends to have (1 by default); returns the previous count."""
    prev, _DEVICE_COUNT[0] = _DEVICE_COUNT[0], int(n)
    _CURRENT[0] = 0
    return prev


@contextlib.contextmanager
def devices(n):
    prev = set_device_count(n)
    try:
        yield
    finally:
        set_device_count(prev)


class _Ufunc:
    """A NumPy ufunc for device arrays, with its methods (``xp.add.at`` ...)."""

    def __init__(self, uf, name):
        self._uf, self.__name__ = uf, name
        self._call = _call(uf, name)

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __getattr__(self, name):
        attr = getattr(self._uf, name)
        return _call(attr, f"{self.__name__}.{name}") if callable(attr) else attr


_MADE = {}    # made on first use; not in globals(), where ``sum``/``max``/``bool`` would shadow builtins


def __getattr__(name):
    """NumPy's name, for device arrays: types and constants as they are, functions wrapped."""
    if name in _MADE:
        return _MADE[name]
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        obj = getattr(_np, name)
    except AttributeError:
        raise AttributeError(f"the strict CuPy stand-in has no {name!r} (numpy has none either)") from None
    if isinstance(obj, _np.ufunc):
        obj = _Ufunc(obj, name)
    elif callable(obj) and not isinstance(obj, type):
        obj = _call(obj, name)
    _MADE[name] = obj
    return obj
