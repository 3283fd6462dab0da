"""The array-module seam: NumPy on "cpu", CuPy on "cuda".

Every op asks ``array_module(x)`` for the module that owns its input arrays and calls only that
module, so the same code runs on either device. Dtypes are NumPy dtype objects; deepgrad exposes
them under PyTorch's names (``deepgrad.float32`` ...).
"""
from __future__ import annotations

import builtins

import numpy as np

try:  # CuPy is optional; without it only the CPU device exists.
    import cupy as _cupy  # type: ignore
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int32 = int = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
bool_ = np.dtype(np.bool_)

try:  # NumPy has no bfloat16; ml_dtypes (a pyproject dependency) provides one.
    import ml_dtypes as _ml_dtypes  # type: ignore
    bfloat16 = np.dtype(_ml_dtypes.bfloat16)
except Exception:  # pragma: no cover - only without ml_dtypes
    _ml_dtypes = None
    bfloat16 = None

_DEFAULT_DTYPE = [float32]
_DEFAULT_DEVICE = [None]     # set_default_device: where factories put tensors (None: the CPU)

_DTYPE_ALIASES = {
    "float16": float16, "half": float16, "float32": float32, "float": float32,
    "float64": float64, "double": float64, "int32": int32, "int": int32,
    "int64": int64, "long": int64, "uint8": uint8, "int8": int8, "int16": int16,
    "bool": bool_,
}
if bfloat16 is not None:
    _DTYPE_ALIASES["bfloat16"] = bfloat16


def get_default_dtype():
    return _DEFAULT_DTYPE[0]


def set_default_dtype(dtype):
    dtype = as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes are allowed, got {dtype}")
    _DEFAULT_DTYPE[0] = dtype


def as_dtype(dtype):
    """Normalise anything dtype-like (a NumPy dtype, a type, a name) to a NumPy dtype."""
    if dtype is None:
        return get_default_dtype()
    if isinstance(dtype, str):
        try:
            d = _DTYPE_ALIASES[dtype]
        except KeyError:
            raise TypeError(f"unknown dtype {dtype!r}") from None
    elif dtype is bool:
        return bool_
    elif dtype is builtins.float:
        return get_default_dtype()
    elif dtype is builtins.int:
        return int64
    else:
        d = np.dtype(dtype)
    if d.char in "eE" and LOWP_HOOK:          # float16/bfloat16 asked for: ops/_lowp.py installs itself
        LOWP_HOOK.pop()()
    return d


LOWP_HOOK = []   # ops/_lowp.py's installer, run (once) when a float16/bfloat16 dtype first appears


def is_floating(dtype) -> bool:
    return dtype.kind == "f" or (bfloat16 is not None and dtype == bfloat16)


class device:
    """A device name, ``device("cpu")`` or ``device("cuda")``/``device("cuda:0")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        spec = str(spec)
        kind, _, idx = spec.partition(":")
        # RuntimeError for a string PyTorch cannot parse either, as torch.device does
        if kind not in ("cpu", "cuda"):
            raise RuntimeError(f"unknown device {spec!r}: deepgrad supports the device types 'cpu' and "
                               f"'cuda[:N]'")
        if idx and not (idx.isascii() and idx.isdigit()):
            raise RuntimeError(f"invalid device string {spec!r}: expected 'cpu' or 'cuda[:N]'")
        self.type = kind
        self.index = builtins.int(idx) if idx else index

    def __eq__(self, other):
        other = device(other) if isinstance(other, str) else other
        return isinstance(other, device) and self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"


CPU = device("cpu")


def cuda_available() -> bool:
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # pragma: no cover
        return False


class CudaUnavailableError(AssertionError, RuntimeError):
    """A CUDA device was asked for where there is none. PyTorch's CPU build raises AssertionError
    here; deriving from RuntimeError as well keeps ``except RuntimeError`` handlers working."""


def array_module(*arrays):
    """The module (numpy or cupy) that owns ``arrays``; numpy when none is a CuPy array."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def device_of(array) -> device:
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return device("cuda", array.device.id)
    return CPU


def cuda_unavailable_message(dev="cuda") -> str:
    """deepgrad's "Torch not compiled with CUDA enabled": what is missing and what to install."""
    if _cupy is None:
        why = ("CuPy is not installed. Install the CuPy wheel that matches your CUDA driver: "
               "`pip install cupy-cuda12x` (CUDA 12) or `pip install cupy-cuda13x` (CUDA 13); "
               "`nvidia-smi` shows the driver's CUDA version")
    else:
        why = (f"CuPy {getattr(_cupy, '__version__', '?')} is installed but sees no CUDA device "
               "(no NVIDIA GPU, or the driver does not match the CuPy wheel: cupy-cuda12x needs a "
               "CUDA 12 driver, cupy-cuda13x a CUDA 13 one)")
    return (f"device {dev} requested but deepgrad was not given a CUDA device (PyTorch says 'Torch not "
            f"compiled with CUDA enabled'): {why}; or use the 'cpu' device")


def module_for(dev) -> object:
    dev = device(dev)
    if dev.type == "cpu":
        return np
    if not cuda_available():
        raise CudaUnavailableError(cuda_unavailable_message(dev))
    return _cupy


def is_real_cupy(xp) -> bool:
    """True only for the real CuPy module (not NumPy, not a test stand-in imitating CuPy): the
    condition for the device-only fast paths (fused kernels, pinned memory, streams)."""
    return xp is not np and getattr(xp, "__name__", "") == "cupy" and hasattr(xp, "ElementwiseKernel")


# ---- out of memory: CuPy's allocator error becomes deepgrad.cuda.OutOfMemoryError ---------------
OOM_HOOK = []     # deepgrad.cuda installs its converter here (backend sits below deepgrad.cuda)
CUDA_THREAD_HOOK = []   # deepgrad.cuda's per-thread set-up (its memory-peak hook), run on each copy


def convert_oom(err):
    """``err`` (any MemoryError) as the exception to raise: deepgrad.cuda.OutOfMemoryError for a
    CuPy device allocation failure, ``err`` itself otherwise."""
    if OOM_HOOK:
        return OOM_HOOK[0](err)
    return err


def to_device(array, dev, non_blocking=False):
    """Move a raw array to ``dev`` (a no-op when it is already there). ``non_blocking=True`` with
    real CuPy makes a host-to-device copy asynchronous on the current stream (truly overlapped
    only from pinned memory, see ``pin``), and a device-to-host copy lands in pinned memory."""
    dev = device(dev)
    if dev.type == "cpu":
        if _cupy is not None and isinstance(array, _cupy.ndarray):
            if non_blocking and is_real_cupy(_cupy):
                out = _empty_pinned(array.shape, array.dtype)
                if out is not None:
                    try:
                        return array.get(stream=_cupy.cuda.get_current_stream(), out=out, blocking=False)
                    except TypeError:     # a CuPy without ``blocking``: a synchronous copy
                        return array.get(out=out)
            return _cupy.asnumpy(array)
        return array
    xp = module_for(dev)
    if CUDA_THREAD_HOOK:
        CUDA_THREAD_HOOK[0]()
    try:
        with xp.cuda.Device(dev.index or 0):
            if non_blocking and is_real_cupy(xp) and isinstance(array, np.ndarray) and array.flags.c_contiguous:
                out = xp.empty(array.shape, array.dtype)
                stream = xp.cuda.get_current_stream()
                out.set(array, stream=stream)
                if is_pinned(array):
                    _keep_until_copied(xp, stream, array)
                return out
            return xp.asarray(array)
    except MemoryError as e:
        raise convert_oom(e) from e


# ---- pinned (page-locked) host memory ----------------------------------------------------------
_inflight = []    # (event, pinned host array): sources of asynchronous copies still in flight


def _keep_until_copied(xp, stream, host):
    """Keep ``host`` (pinned) alive until the copy queued on ``stream`` has run: CuPy's pinned
    pool would otherwise hand its block to the next ``pin`` while the GPU still reads it
    (PyTorch's caching host allocator records an event for the same reason)."""
    ev = xp.cuda.Event(disable_timing=True)
    ev.record(stream)
    _inflight.append((ev, host))
    while _inflight and _inflight[0][0].done:
        _inflight.pop(0)


_pinned = {}      # id(array) -> weakref: the NumPy arrays deepgrad placed in pinned memory


def _empty_pinned(shape, dtype):
    """An empty NumPy array in page-locked memory (CuPy's pinned memory pool), or None."""
    if _cupy is None:
        return None
    try:
        import cupyx  # type: ignore
        out = cupyx.empty_pinned(shape, dtype)
    except Exception:   # pragma: no cover - a stand-in without cupyx, or no pinned memory
        return None
    _register_pinned(out)
    return out


def _register_pinned(a):
    import weakref
    key = id(a)
    _pinned[key] = weakref.ref(a, lambda _r, k=key: _pinned.pop(k, None))


def pin(array):
    """A copy of the NumPy ``array`` in pinned memory (``array`` itself if it already is)."""
    if is_pinned(array):
        return array
    if not cuda_available():
        raise RuntimeError("Cannot access accelerator device when none is available.")
    if is_real_cupy(_cupy):
        out = _empty_pinned(array.shape, array.dtype)
        if out is not None:
            out[...] = array
            return out
    out = np.array(array, copy=True)      # a stand-in without pinned memory: record the copy
    _register_pinned(out)
    return out


def is_pinned(array) -> bool:
    """Whether ``array`` (or the array it views) is host memory deepgrad pinned."""
    a = array
    while isinstance(a, np.ndarray):
        r = _pinned.get(id(a))
        if r is not None and r() is a:
            return True
        a = a.base
    return False


def to_numpy(array):
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return array


def set_cuda_module(module):
    """Make ``module`` deepgrad's array module for the "cuda" device and return the previous one
    (None: no CUDA device). Normally that is CuPy, found at import; tests install the strict
    stand-in (``deepgrad.testing.strict_cuda()``), which behaves like CuPy on a machine without a GPU."""
    global _cupy
    prev, _cupy = _cupy, module
    return prev


def is_stand_in() -> bool:
    """True while the "cuda" module is a stand-in (no real GPU: CUDA kernels and cuDNN cannot run)."""
    return getattr(_cupy, "__stand_in__", False)


def asarray_on(data, like, dtype=None):
    """Host data (a NumPy array, list or number) as an array on ``like``'s device (for masks,
    indices and constants that arrive as host data for an op on a device array)."""
    a = np.asarray(data, dtype=dtype)
    return to_device(a, device_of(like)) if _cupy is not None and isinstance(like, _cupy.ndarray) else a


if _cupy is None:       # DEEPGRAD_STRICT_CUDA=1: any program runs its "cuda" device on the strict stand-in
    import os as _os
    if _os.environ.get("DEEPGRAD_STRICT_CUDA", "") not in ("", "0"):
        from .testing import strict_xp as _cupy  # noqa: E402
