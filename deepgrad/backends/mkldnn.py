"""``deepgrad.backends.mkldnn``: settable flag; deepgrad calls NumPy's BLAS, not oneDNN."""
enabled = True
deterministic = False


def is_available() -> bool:
    return False
