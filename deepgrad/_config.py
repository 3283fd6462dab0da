"""Process-wide settings with PyTorch's names: BLAS threads, print options, matmul precision.

``set_num_threads`` really limits the BLAS library NumPy calls (through threadpoolctl), so a
program that asks for one thread gets one thread in every matrix product and convolution.
``set_printoptions`` changes how ``Tensor.__repr__`` prints. ``set_float32_matmul_precision`` is
recorded and returned; NumPy's float32 matmul is always full precision ("highest"), which every
setting allows.
"""
from __future__ import annotations

import math
import os
import warnings

# ---- threads --------------------------------------------------------------------------------
_controller = None
_num_threads = [None]   # the value last set with set_num_threads, else None (ask the library)


def _blas():
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            return None
        _controller = ThreadpoolController()
    return _controller


def set_num_threads(int):  # noqa: A002  (PyTorch's argument name)
    """Use ``int`` threads in the BLAS/OpenMP libraries NumPy calls (PyTorch: intra-op threads)."""
    n = int
    if isinstance(n, bool) or not isinstance(n, type(1)):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    ctl = _blas()
    if ctl is not None:
        ctl.limit(limits=n)
    _num_threads[0] = n
    from . import _parallel    # a kernel pinning OpenBLAS to one thread now restores n, not its old count
    _parallel._count_set(n)


def get_num_threads() -> int:
    """The number of threads the BLAS library uses (what ``set_num_threads`` set, else its default)."""
    from . import _parallel
    pinned = _parallel.pinned_count()      # inside a kernel that pins OpenBLAS to one thread
    if pinned is not None:
        return pinned
    ctl = _blas()
    if ctl is not None:
        counts = [lib.num_threads for lib in ctl.lib_controllers if lib.user_api == "blas"]
        if counts:
            return max(counts)
    if _num_threads[0] is not None:
        return _num_threads[0]
    return os.cpu_count() or 1


def get_num_interop_threads() -> int:
    return get_num_threads()


def set_num_interop_threads(int):  # noqa: A002
    if isinstance(int, bool) or not isinstance(int, type(1)) or int <= 0:
        raise RuntimeError("Expected positive number of threads")


# ---- float32 matmul precision ------------------------------------------------------------------
_matmul_precision = ["highest"]


def set_float32_matmul_precision(precision: str) -> None:
    if precision not in ("highest", "high", "medium"):
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "set_float32_matmul_precision call has no effect.", UserWarning, stacklevel=2)
        return
    _matmul_precision[0] = precision


def get_float32_matmul_precision() -> str:
    return _matmul_precision[0]


# ---- print options -----------------------------------------------------------------------------
_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}
PRINT_OPTIONS = dict(_PROFILES["default"], sci_mode=None)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None):
    """PyTorch's ``set_printoptions``: a profile ("default", "short", "full") first, then the
    individual options; ``sci_mode`` True/False forces scientific/fixed notation, None chooses."""
    if profile is not None:
        if profile not in _PROFILES:  # PyTorch ignores an unknown profile silently
            pass
        else:
            PRINT_OPTIONS.update(_PROFILES[profile])
    for name, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                        ("linewidth", linewidth)):
        if value is not None:
            PRINT_OPTIONS[name] = value
    PRINT_OPTIONS["sci_mode"] = sci_mode


def get_printoptions() -> dict:
    return dict(PRINT_OPTIONS)
