"""deepgrad on the strict CuPy stand-in: every op, layer and optimiser on the "cuda" device.

``deepgrad.testing.strict_cuda()`` makes "cuda" a device whose arrays refuse NumPy as CuPy does (and
refuse NumPy functions, which CuPy would forward), so a ``numpy`` call on a device array anywhere in
deepgrad fails here, on a machine without a GPU. The op grid is the table-driven op tests of the
other files, re-run through ``opcheck.check_on_device`` (cpu against "cuda": values, first and second
gradients); the CPU results themselves are checked against PyTorch by those files.
"""
import inspect

import numpy as np
import pytest

import deepgrad as dg
import opcheck
from deepgrad.testing import strict_cuda

import test_attention, test_conv, test_elementwise, test_index, test_linalg, test_ops_extra  # noqa: E401
import test_pool, test_reduce, test_rnn, test_shape  # noqa: E401

OP_MODULES = [test_elementwise, test_reduce, test_shape, test_index, test_linalg, test_conv, test_pool,
              test_attention, test_rnn, test_ops_extra]


@pytest.fixture(autouse=True)
def cuda():
    with strict_cuda() as xp:
        opcheck.DEVICE[0] = "cuda"
        try:
            yield xp
        finally:
            opcheck.DEVICE[0] = None


#: grid cases that close over tensors made on the CPU outside the case (PyTorch raises the same
#: "same device" error for them on CUDA); each has a device version below.
NOT_IN_GRID = {"test_pool.test_max_unpool"}


def _grid():
    """The test functions of OP_MODULES that check ops through opcheck.check_op."""
    found = {}
    for mod in OP_MODULES:
        for name, fn in vars(mod).items():
            if f"{mod.__name__}.{name}" in NOT_IN_GRID:
                continue
            if name.startswith("test_") and callable(fn) and "check_op(" in inspect.getsource(fn):
                found[f"test_grid_{mod.__name__[5:]}__{name[5:]}"] = fn
    return found


globals().update(_grid())
