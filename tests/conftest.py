import numpy as np
import pytest

import deepgrad as dg

try:  # PyTorch is the oracle; one thread keeps it fast and deterministic on a busy 2-core box
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture(autouse=True)
def _seed():
    dg.manual_seed(0)
    np.random.seed(0)
    yield
