import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _torch_single_thread():
    """The oracle's tiny ops are far slower multi-threaded on a shared, loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
