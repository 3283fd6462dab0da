"""``deepgrad.cuda``: PyTorch's ``torch.cuda`` queries, answered honestly.

A CUDA device exists for deepgrad only when CuPy is installed and sees a GPU (``backend.py``'s
seam); then these functions ask CuPy. Without one they behave as PyTorch's CPU build does:
``is_available()`` is False, ``device_count()`` is 0, seeding is silently ignored, and anything
that needs a device (``synchronize``, ``current_device``, ``get_device_name`` ...) raises the
AssertionError PyTorch raises (a :class:`~deepgrad.backend.CudaUnavailableError`, which is also
a RuntimeError).

With a GPU: memory figures come from CuPy's default memory pool (``used_bytes`` is
``memory_allocated``, ``total_bytes`` is ``memory_reserved``); the peak is tracked exactly by a
CuPy memory hook that counts every pool allocation and free (see ``_MemoryTracker``). Each GPU
has its own random generator on the device (``_rng.py``), seeded by ``manual_seed`` here and by
``deepgrad.manual_seed``. A failed device allocation raises :class:`OutOfMemoryError` (a
RuntimeError, as ``torch.cuda.OutOfMemoryError``) with the requested and free bytes.
"""
from __future__ import annotations

from .. import backend
from .._legacy import CUDA_LEGACY_TYPES
from . import amp

globals().update(CUDA_LEGACY_TYPES)   # deepgrad.cuda.FloatTensor ...: raise TypeError when called


def is_available() -> bool:
    return backend.cuda_available()


def is_initialized() -> bool:
    return backend.cuda_available()


def _cupy():
    if not backend.cuda_available():
        raise backend.CudaUnavailableError(
            "Torch not compiled with CUDA enabled: deepgrad found no CUDA device (it needs CuPy and an "
            "NVIDIA GPU); use the 'cpu' device")
    return backend._cupy


def device_count() -> int:
    if not backend.cuda_available():
        return 0
    return int(backend._cupy.cuda.runtime.getDeviceCount())


def current_device() -> int:
    return int(_cupy().cuda.runtime.getDevice())


def set_device(device) -> None:
    idx = backend.device(device).index if isinstance(device, (str, backend.device)) else device
    if idx is None or idx < 0:   # PyTorch ignores a negative index
        return
    _cupy().cuda.runtime.setDevice(int(idx))


def get_device_name(device=None) -> str:
    props = get_device_properties(device)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def get_device_properties(device=None) -> dict:
    cp = _cupy()
    idx = _index(device, cp)
    return cp.cuda.runtime.getDeviceProperties(idx)


def get_device_capability(device=None) -> tuple:
    props = get_device_properties(device)
    return int(props["major"]), int(props["minor"])


def is_bf16_supported(including_emulation: bool = True) -> bool:
    if not backend.cuda_available():
        return False
    return get_device_capability()[0] >= 8


def _index(device, cp):
    if device is None:
        return int(cp.cuda.runtime.getDevice())
    if isinstance(device, (str, backend.device)):
        return backend.device(device).index or 0
    return int(device)


def synchronize(device=None) -> None:
    cp = _cupy()
    with cp.cuda.Device(_index(device, cp)):
        cp.cuda.runtime.deviceSynchronize()


def empty_cache() -> None:
    # PyTorch's CPU build returns quietly; with CuPy, free its memory pools' unused blocks.
    if backend.cuda_available():
        backend._cupy.get_default_memory_pool().free_all_blocks()
        pinned = getattr(backend._cupy, "get_default_pinned_memory_pool", None)
        if pinned is not None:
            pinned().free_all_blocks()


# ---- memory -------------------------------------------------------------------------------------
class OutOfMemoryError(RuntimeError, MemoryError):
    """The GPU could not satisfy an allocation (``torch.cuda.OutOfMemoryError`` is a RuntimeError;
    this one is also a MemoryError, as CuPy's own error is). ``requested_bytes``, ``free_bytes``
    (free on the device), ``total_bytes`` (the device's capacity) and ``reserved_bytes`` (held by
    deepgrad's CuPy memory pool) are attributes; any of them is None when unknown."""

    def __init__(self, message, requested_bytes=None, free_bytes=None, total_bytes=None, reserved_bytes=None):
        super().__init__(message)
        self.requested_bytes = requested_bytes
        self.free_bytes = free_bytes
        self.total_bytes = total_bytes
        self.reserved_bytes = reserved_bytes


def _fmt_bytes(n):
    if n is None:
        return "unknown"
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= k:
            return f"{n / k:.2f} {unit}"
    return f"{n} bytes"


def _cupy_oom_type():
    cp = backend._cupy
    mem = getattr(getattr(cp, "cuda", None), "memory", None)
    return getattr(mem, "OutOfMemoryError", None)


def _oom_from(err):
    """deepgrad's OutOfMemoryError for CuPy's ``err`` (anything else is returned unchanged)."""
    import re
    if isinstance(err, OutOfMemoryError):
        return err
    cls = _cupy_oom_type()
    if cls is None or not isinstance(err, cls):
        return err
    text = str(err)
    m = re.search(r"allocating ([\d,]+) bytes", text)
    requested = int(m.group(1).replace(",", "")) if m else getattr(err, "size", None)
    free = total = reserved = None
    idx = 0
    try:
        idx = int(backend._cupy.cuda.runtime.getDevice())
        free, total = (int(v) for v in backend._cupy.cuda.runtime.memGetInfo())
    except Exception:  # noqa: BLE001 - the message still names what is known
        pass
    try:
        pool = backend._cupy.get_default_memory_pool()
        reserved = int(pool.total_bytes())
        pool_free = int(pool.free_bytes())
    except Exception:  # noqa: BLE001
        pool_free = None
    msg = (f"CUDA out of memory. Tried to allocate {_fmt_bytes(requested)} "
           f"({requested if requested is not None else '?'} bytes) on GPU {idx}: "
           f"{_fmt_bytes(free)} free of {_fmt_bytes(total)} total capacity; deepgrad's CuPy memory pool "
           f"holds {_fmt_bytes(reserved)}, of which {_fmt_bytes(pool_free)} is cached but unused. "
           f"Use a smaller batch, free tensors you no longer need, or call deepgrad.cuda.empty_cache() "
           f"(CuPy said: {text})")
    return OutOfMemoryError(msg, requested, free, total, reserved)


backend.OOM_HOOK[:] = [_oom_from]


class _MemoryTracker:
    """Counts the bytes in use in CuPy's memory pool per device, and their peak.

    A ``cupy.cuda.MemoryHook`` sees every pool allocation (``malloc_postprocess``, rounded size)
    and every free (``free_postprocess``); the running sum is what ``used_bytes()`` reports, kept
    in O(1) per event instead of the pool's walk over every chunk in use, so the peak is exact
    for the allocations made in threads where the hook is active. CuPy's hooks are per thread:
    the hook is entered in each thread in which deepgrad first moves data to the GPU (the main
    thread, the DataLoader's fetching threads). It starts from the pool's ``used_bytes()`` at
    that moment, so memory allocated before it is counted too."""

    def __init__(self):
        import threading
        self.local = threading.local()
        self.used = {}
        self.peak = {}
        self.hook = None

    def ensure(self):
        """Enter the hook in this thread (once); a no-op without real CuPy."""
        if getattr(self.local, "on", False):
            return
        self.local.on = True
        cp = backend._cupy
        if not backend.is_real_cupy(cp):
            return
        if self.hook is None:
            tracker = self

            class _Hook(cp.cuda.MemoryHook):
                name = "deepgrad_memory_tracker"

                def malloc_postprocess(self, **kw):
                    device_id = kw.get("device_id", 0)
                    u = tracker.used.get(device_id, 0) + kw.get("mem_size", 0)
                    tracker.used[device_id] = u
                    if u > tracker.peak.get(device_id, 0):
                        tracker.peak[device_id] = u

                def free_postprocess(self, **kw):
                    device_id = kw.get("device_id", 0)
                    tracker.used[device_id] = tracker.used.get(device_id, 0) - kw.get("mem_size", 0)

            self.hook = _Hook()
            idx = int(cp.cuda.runtime.getDevice())
            base = int(cp.get_default_memory_pool().used_bytes())
            self.used[idx] = base
            self.peak[idx] = max(self.peak.get(idx, 0), base)
        try:
            self.hook.__enter__()
        except Exception:  # noqa: BLE001 - already active here (CuPy versions with global hooks)
            pass


_tracker = _MemoryTracker()
backend.CUDA_THREAD_HOOK[:] = [_tracker.ensure]


def _pool_index(device):
    cp = _cupy()
    return _index(device, cp), cp


def memory_allocated(device=None) -> int:
    """Bytes in use in CuPy's default memory pool on ``device`` (its ``used_bytes()``)."""
    if not backend.cuda_available():
        return 0
    idx, cp = _pool_index(device)
    with cp.cuda.Device(idx):
        return int(cp.get_default_memory_pool().used_bytes())


def max_memory_allocated(device=None) -> int:
    """The peak of ``memory_allocated`` since the start or ``reset_peak_memory_stats`` (exact for
    allocations the memory hook saw; never below the current value)."""
    if not backend.cuda_available():
        return 0
    idx, cp = _pool_index(device)
    _tracker.ensure()
    now = memory_allocated(idx)
    return max(int(_tracker.peak.get(idx, 0)), now)


def reset_peak_memory_stats(device=None) -> None:
    idx, cp = _pool_index(device)
    _tracker.ensure()
    now = memory_allocated(idx)
    _tracker.used[idx] = now
    _tracker.peak[idx] = now


def reset_max_memory_allocated(device=None) -> None:
    reset_peak_memory_stats(device)


def memory_reserved(device=None) -> int:
    """Bytes CuPy's default memory pool holds from the driver on ``device`` (``total_bytes()``)."""
    if not backend.cuda_available():
        return 0
    idx, cp = _pool_index(device)
    with cp.cuda.Device(idx):
        return int(cp.get_default_memory_pool().total_bytes())


def max_memory_reserved(device=None) -> int:
    return memory_reserved(device)


def mem_get_info(device=None) -> tuple:
    """(free, total) bytes of the device, as ``cudaMemGetInfo`` reports them."""
    idx, cp = _pool_index(device)
    with cp.cuda.Device(idx):
        free, total = cp.cuda.runtime.memGetInfo()
    return int(free), int(total)


def memory_stats(device=None) -> dict:
    """A few of PyTorch's ``memory_stats`` keys, from the figures above."""
    if not backend.cuda_available():
        return {}
    return {"allocated_bytes.all.current": memory_allocated(device),
            "allocated_bytes.all.peak": max_memory_allocated(device),
            "reserved_bytes.all.current": memory_reserved(device)}


# ---- seeding: one generator per GPU, on the device (_rng.py). Without a GPU PyTorch's CPU build
# ignores manual_seed/manual_seed_all/seed/seed_all, and so does deepgrad.
def manual_seed(seed) -> None:
    seed = int(seed)
    if backend.cuda_available():
        from . import _rng
        _rng.generator().manual_seed(seed)


def manual_seed_all(seed) -> None:
    seed = int(seed)
    if backend.cuda_available():
        from . import _rng
        for i in range(device_count()):
            _rng.generator(i).manual_seed(seed)


def seed() -> None:
    if backend.cuda_available():
        from . import _rng
        _rng.generator().seed()


def seed_all() -> None:
    if backend.cuda_available():
        from . import _rng
        s = _rng.generator().seed()
        for i in range(device_count()):
            _rng.generator(i).manual_seed(s)


def initial_seed() -> int:
    _cupy()
    from . import _rng
    return _rng.generator().initial_seed()


default_generators = ()   # filled on first use per device: deepgrad.cuda._rng.generator(i)


class device:
    """``with deepgrad.cuda.device(i):`` selects a GPU; a no-op index holder without one."""

    def __init__(self, device):
        self.idx = backend.device(device).index if isinstance(device, (str, backend.device)) else device
        self._prev = None

    def __enter__(self):
        if self.idx is not None and self.idx >= 0 and backend.cuda_available():
            self._prev = current_device()
            set_device(self.idx)
        return self

    def __exit__(self, *exc):
        if self._prev is not None:
            set_device(self._prev)
        return False


# ---- generator state: a 16-byte uint8 tensor (seed, offset) per GPU, as PyTorch's
def get_rng_state(device="cuda"):
    _cupy()
    from . import _rng
    return _rng.generator(_device_index(device)).get_state()


def set_rng_state(new_state, device="cuda") -> None:
    if not backend.cuda_available():   # PyTorch queues the call for a CUDA that never comes
        return
    from . import _rng
    _rng.generator(_device_index(device)).set_state(new_state)


def _device_index(device):
    if isinstance(device, int):
        return device
    d = backend.device(device)
    if d.type != "cuda":
        raise RuntimeError(f"expected a cuda device, got {d}")
    return d.index if d.index is not None else current_device()


def get_rng_state_all() -> list:
    return [get_rng_state(i) for i in range(device_count())]


def set_rng_state_all(new_states) -> None:
    for i, state in enumerate(new_states):
        set_rng_state(state, i)


# ---- streams and events (CuPy's, under PyTorch's names) -----------------------------------------
def _stream_mod():
    return _cupy().cuda


class Stream:
    """``torch.cuda.Stream``: a CUDA stream (CuPy's). ``with deepgrad.cuda.stream(s):`` makes it
    current, so kernels and non-blocking copies are queued on it."""

    def __init__(self, device=None, priority=0, _cupy_stream=None):
        cp = _cupy()
        if _cupy_stream is not None:
            self._s = _cupy_stream
        else:
            with cp.cuda.Device(_index(device, cp)):
                self._s = cp.cuda.Stream(non_blocking=True, priority=priority) if priority else \
                    cp.cuda.Stream(non_blocking=True)

    @property
    def cuda_stream(self):
        return int(self._s.ptr)

    def synchronize(self):
        self._s.synchronize()

    def query(self):
        return bool(self._s.done)

    def wait_stream(self, stream):
        ev = stream._s.record()
        self._s.wait_event(ev)

    def wait_event(self, event):
        self._s.wait_event(event._e)

    def record_event(self, event=None):
        event = event if event is not None else Event()
        event.record(self)
        return event

    def __enter__(self):
        self._s.__enter__()
        return self

    def __exit__(self, *exc):
        self._s.__exit__(*exc)
        return False

    def __eq__(self, other):
        return isinstance(other, Stream) and self.cuda_stream == other.cuda_stream

    def __hash__(self):
        return hash(self.cuda_stream)

    def __repr__(self):
        return f"<deepgrad.cuda.Stream cuda_stream={self.cuda_stream:#x}>"


def current_stream(device=None) -> Stream:
    cp = _cupy()
    with cp.cuda.Device(_index(device, cp)):
        return Stream(_cupy_stream=cp.cuda.get_current_stream())


def default_stream(device=None) -> Stream:
    cp = _cupy()
    return Stream(_cupy_stream=cp.cuda.Stream.null)


class stream:
    """``with deepgrad.cuda.stream(s):`` (None: no change), as torch.cuda.stream."""

    def __init__(self, stream):
        self.s = stream

    def __enter__(self):
        if self.s is not None:
            self.s.__enter__()
        return self.s

    def __exit__(self, *exc):
        if self.s is not None:
            self.s.__exit__(*exc)
        return False


class Event:
    """``torch.cuda.Event``: record on a stream, wait, and time (``elapsed_time`` in ms)."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        cp = _cupy()
        self._e = cp.cuda.Event(block=blocking, disable_timing=not enable_timing,
                                interprocess=interprocess)

    def record(self, stream=None):
        self._e.record(None if stream is None else stream._s)

    def wait(self, stream=None):
        s = stream if stream is not None else current_stream()
        s.wait_event(self)

    def query(self):
        return bool(self._e.done)

    def synchronize(self):
        self._e.synchronize()

    def elapsed_time(self, end_event):
        return float(_cupy().cuda.get_elapsed_time(self._e, end_event._e))
