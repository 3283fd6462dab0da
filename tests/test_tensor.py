"""Tensor basics and factories, against PyTorch's conventions."""
import numpy as np
import pytest
import torch

import deepgrad as dg


def test_dtype_inference_like_torch():
    assert dg.tensor(1.5).dtype == dg.float32
    assert dg.tensor([1, 2]).dtype == dg.int64
    assert dg.tensor([True, False]).dtype == dg.bool
    assert dg.tensor(np.zeros(2, np.float64)).dtype == dg.float64
    assert dg.tensor([1, 2], dtype=dg.float16).dtype == dg.float16
    assert dg.tensor([1.0], dtype="int32").dtype == dg.int32
    assert dg.zeros(2).dtype == dg.float32 and dg.arange(3).dtype == dg.int64
    assert dg.arange(0, 1, 0.25).dtype == dg.float32


def test_tensor_copies_and_from_numpy_shares():
    a = np.ones(3, np.float32)
    t, s = dg.tensor(a), dg.from_numpy(a)
    a[0] = 5
    assert t[0].item() == 1.0 and s[0].item() == 5.0


def test_properties_and_conversions():
    x = dg.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.shape == (2, 2) and x.ndim == 2 and x.dim() == 2 and x.numel() == 4
    assert x.size(1) == 2 and x.size() == (2, 2)
    assert str(x.device) == "cpu" and x.is_leaf and not x.requires_grad
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x.double().dtype == dg.float64 and x.long().dtype == dg.int64 and x.float().dtype == dg.float32
    assert x.to(dg.float64).dtype == dg.float64 and x.to("cpu") is x
    assert dg.tensor(3.5).item() == 3.5
    with pytest.raises(RuntimeError, match="item"):
        x.item()
    y = x.detach().requires_grad_()
    assert y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="numpy"):
        y.numpy()


def test_factories_match_torch():
    for ours, theirs in [
        (dg.zeros(2, 3), torch.zeros(2, 3)), (dg.ones((2, 3)), torch.ones((2, 3))),
        (dg.full((2,), 7.0), torch.full((2,), 7.0)), (dg.eye(3, 2), torch.eye(3, 2)),
        (dg.arange(5), torch.arange(5)), (dg.arange(1, 10, 3), torch.arange(1, 10, 3)),
        (dg.arange(0.0, 1.0, 0.1), torch.arange(0.0, 1.0, 0.1)),
        (dg.linspace(-1, 1, 7), torch.linspace(-1, 1, 7)),
        (dg.zeros_like(dg.ones(2, dtype=dg.int64)), torch.zeros_like(torch.ones(2, dtype=torch.int64))),
        (dg.full_like(dg.ones(2), 3), torch.full_like(torch.ones(2), 3)),
    ]:
        assert ours.shape == tuple(theirs.shape)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)


def test_random_factories_are_reproducible_and_distributed():
    dg.manual_seed(123)
    a = dg.randn(1000, 100)
    dg.manual_seed(123)
    b = dg.randn(1000, 100)
    assert np.array_equal(a.numpy(), b.numpy())
    assert abs(a.numpy().mean()) < 0.01 and abs(a.numpy().std() - 1) < 0.01
    u = dg.rand(100000)
    assert 0 <= u.numpy().min() and u.numpy().max() < 1 and abs(u.numpy().mean() - 0.5) < 0.01
    r = dg.randint(3, 7, (1000,))
    assert set(np.unique(r.numpy())) == {3, 4, 5, 6}
    assert sorted(dg.randperm(10).tolist()) == list(range(10))
    g1, g2 = dg.Generator().manual_seed(5), dg.Generator().manual_seed(5)
    assert np.array_equal(dg.rand(4, generator=g1).numpy(), dg.rand(4, generator=g2).numpy())


def test_generator_state_round_trip():
    g = dg.Generator().manual_seed(7)
    dg.rand(3, generator=g)
    state = g.get_state()
    x = dg.rand(5, generator=g)
    g.set_state(state)
    assert np.array_equal(dg.rand(5, generator=g).numpy(), x.numpy())


def test_repr_is_readable():
    assert repr(dg.tensor([1.0, 2.5])) == repr(torch.tensor([1.0, 2.5])) == "tensor([1.0000, 2.5000])"
    assert "requires_grad=True" in repr(dg.tensor([1.0], requires_grad=True))
    assert "dtype=deepgrad.float64" in repr(dg.tensor([1.0], dtype=dg.float64))
    assert "grad_fn=<MulBackward>" in repr(dg.tensor([1.0], requires_grad=True) * 2)
    assert repr(dg.zeros(2).shape) == "deepgrad.Size([2])"


def test_zero_fill_copy_inplace():
    x = dg.ones(3)
    v = x._version[0]
    x.zero_()
    assert x.tolist() == [0, 0, 0] and x._version[0] == v + 1
    x.fill_(2.0)
    x.copy_(dg.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [1.0, 2.0, 3.0]


def test_bool_of_multi_element_tensor_is_ambiguous():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(dg.ones(2))
