"""``deepgrad.backends.mkl``: whether NumPy's BLAS is Intel MKL."""


def is_available() -> bool:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return False
    return any(lib.get("internal_api") == "mkl" for lib in threadpool_info())
