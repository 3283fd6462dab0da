"""``theano.config``: the few settings the symbolic layer reads."""
from __future__ import annotations


class _Config:
    """``floatX``: the dtype of ``T.scalar()``/``T.matrix()`` without a prefix and of Python
    floats in a graph ('float64' as in Theano's default; set 'float32' for speed)."""

    def __init__(self):
        self._floatX = "float64"

    @property
    def floatX(self):   # noqa: N802  (Theano's spelling)
        return self._floatX

    @floatX.setter
    def floatX(self, value):   # noqa: N802
        if value not in ("float64", "float32", "float16"):
            raise ValueError(f"config.floatX must be 'float64', 'float32' or 'float16', got {value!r}")
        self._floatX = value

    def __repr__(self):
        return f"theano config: floatX={self._floatX!r}"


config = _Config()
