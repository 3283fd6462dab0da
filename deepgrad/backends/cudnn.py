"""``deepgrad.backends.cudnn``: settable flags; cuDNN is used only through CuPy on a GPU."""
from .. import backend as _backend

enabled = True
benchmark = False
benchmark_limit = 10
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    if not _backend.cuda_available():
        return False
    try:
        import cupy.cudnn  # type: ignore  # noqa: F401
        return True
    except Exception:  # pragma: no cover - depends on the machine
        return False


def version():
    if not is_available():
        return None
    import cupy.cuda.cudnn as _c  # type: ignore
    return int(_c.getVersion())


def is_acceptable(tensor) -> bool:
    return is_available() and tensor.is_cuda
