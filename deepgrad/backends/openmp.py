"""``deepgrad.backends.openmp``: whether an OpenMP runtime is loaded (NumPy's BLAS may use one)."""


def is_available() -> bool:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return False
    return any(lib.get("user_api") == "openmp" for lib in threadpool_info())
