"""``view`` on the channels-last activations of convolution and pooling (``x.view(-1, 320)`` in the
classic MNIST nets) works as in PyTorch, where those tensors are contiguous; a real view of another
tensor still refuses as PyTorch does."""
import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.nn.functional as F


def _net(lib, F_):
    lib.manual_seed(0)
    conv = lib.nn.Conv2d(1, 10, 5)
    return conv, lambda x: F_.relu(F_.max_pool2d(conv(x), 2))


def test_view_after_conv_and_pool_matches_torch():
    tconv, tf = _net(torch, torch.nn.functional)
    conv, f = _net(dg, F)
    conv.load_state_dict({k: v.detach().numpy() for k, v in tconv.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    tx, dx = torch.tensor(x, requires_grad=True), dg.tensor(x, requires_grad=True)
    ty, dy = tf(tx).view(-1, 1440), f(dx).view(-1, 1440)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    w = np.random.default_rng(1).standard_normal((3, 1440)).astype(np.float32)
    (ty * torch.tensor(w)).sum().backward()
    (dy * dg.tensor(w)).sum().backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    with dg.no_grad():
        assert f(dx).view(3, -1).shape == (3, 1440)


def test_view_of_a_transposed_view_still_refuses():
    for lib in (torch, dg):
        with pytest.raises(RuntimeError, match="view"):
            lib.ones(3, 4).t().view(-1)


def test_in_place_write_after_the_view_is_still_caught_by_autograd():
    conv, f = _net(dg, F)
    x = dg.randn(2, 1, 28, 28)
    y = dg.sigmoid(f(x))            # sigmoid saves its output for backward
    v = y.view(2, -1)
    v.mul_(2)                       # PyTorch: modifies y in place, and backward then refuses
    with pytest.raises(RuntimeError, match="inplace|in-place|version"):
        y.sum().backward()
