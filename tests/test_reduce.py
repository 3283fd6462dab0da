"""Reductions, softmax, prod/cumsum, norm, sort/topk against PyTorch: values, gradients, float64
gradcheck and double backward."""
import math

import numpy as np
import pytest
import torch

import deepgrad as dg
from opcheck import check_op, rand

F64_F32 = [np.float64, np.float32]


def _case(name, f, tf, shape, **kw):
    return pytest.param(f, tf, shape, kw, id=name)


# (id, deepgrad fn, torch fn, input shape, check_op options / input options)
CASES = [
    # sum
    _case("sum_all", lambda x: x.sum(), lambda x: x.sum(), (3, 4)),
    _case("sum_dim1", lambda x: x.sum(1), lambda x: x.sum(1), (3, 4)),
    _case("sum_neg_keep", lambda x: dg.sum(x, -1, keepdim=True), lambda x: torch.sum(x, -1, keepdim=True), (2, 3, 4)),
    _case("sum_tuple", lambda x: x.sum((0, 2)), lambda x: x.sum((0, 2)), (2, 3, 4)),
    _case("sum_tuple_neg_keep", lambda x: x.sum((-1, 0), keepdim=True), lambda x: x.sum((-1, 0), keepdim=True), (2, 3, 4)),
    _case("sum_empty_tuple", lambda x: x.sum(()), lambda x: x.sum(()), (2, 3)),
    _case("sum_size0_dim", lambda x: x.sum(0), lambda x: x.sum(0), (0, 3)),
    _case("sum_size0_all", lambda x: x.sum(), lambda x: x.sum(), (2, 0)),
    _case("sum_scalar", lambda x: x.sum(), lambda x: x.sum(), ()),
    _case("sum_scalar_dim0", lambda x: x.sum(0), lambda x: x.sum(0), ()),
    _case("sum_size1", lambda x: x.sum(1), lambda x: x.sum(1), (3, 1, 2)),
    _case("sum_noncontig", lambda x: x.mT.sum(0), lambda x: x.mT.sum(0), (3, 4)),
    _case("sum_dtype", lambda x: x.sum(1, dtype=dg.float64), lambda x: x.sum(1, dtype=torch.float64), (3, 4)),
    # mean
    _case("mean_all", lambda x: x.mean(), lambda x: x.mean(), (3, 4)),
    _case("mean_dim", lambda x: x.mean(-2), lambda x: x.mean(-2), (2, 3, 4)),
    _case("mean_tuple_keep", lambda x: x.mean((0, 1), keepdim=True), lambda x: x.mean((0, 1), keepdim=True), (2, 3, 4)),
    _case("mean_size0", lambda x: x.mean(1), lambda x: x.mean(1), (0, 3)),
    _case("mean_empty_reduce", lambda x: x.mean(0), lambda x: x.mean(0), (0, 3), gradcheck=False),
    _case("mean_scalar", lambda x: x.mean(), lambda x: x.mean(), ()),
    _case("mean_noncontig", lambda x: x.mT.mean(1), lambda x: x.mT.mean(1), (3, 4)),
    # var / std
    _case("var_all", lambda x: x.var(), lambda x: x.var(), (3, 4)),
    _case("var_dim", lambda x: x.var(1), lambda x: x.var(1), (3, 4)),
    _case("var_biased_keep", lambda x: x.var(0, unbiased=False, keepdim=True), lambda x: x.var(0, unbiased=False, keepdim=True), (3, 4)),
    _case("var_correction2", lambda x: dg.var(x, (0, 2), correction=2), lambda x: torch.var(x, (0, 2), correction=2), (2, 3, 4)),
    _case("var_legacy_bool", lambda x: x.var(False), lambda x: x.var(False), (3, 4)),
    _case("var_noncontig", lambda x: x.mT.var(-1), lambda x: x.mT.var(-1), (3, 4)),
    _case("std_all", lambda x: x.std(), lambda x: x.std(), (3, 4)),
    _case("std_dim_keep", lambda x: x.std(-1, keepdim=True), lambda x: x.std(-1, keepdim=True), (2, 3, 4)),
    _case("std_correction0", lambda x: dg.std(x, 1, correction=0), lambda x: torch.std(x, 1, correction=0), (3, 4)),
    _case("std_zero_rows", lambda x: (x * 0 + 1).std(1) + x.sum(1), lambda x: (x * 0 + 1).std(1) + x.sum(1), (3, 4)),
    # max / min / amax / amin
    _case("max_all", lambda x: x.max(), lambda x: x.max(), (3, 4)),
    _case("min_all", lambda x: x.min(), lambda x: x.min(), (3, 4)),
    _case("max_dim", lambda x: tuple(x.max(1)), lambda x: tuple(x.max(1)), (3, 4)),
    _case("min_dim_keep", lambda x: tuple(x.min(-1, keepdim=True)), lambda x: tuple(x.min(-1, keepdim=True)), (2, 3, 4)),
    _case("max_dim0_3d", lambda x: tuple(dg.max(x, 0)), lambda x: tuple(torch.max(x, 0)), (2, 3, 4)),
    _case("max_scalar_dim", lambda x: tuple(x.max(0)), lambda x: tuple(x.max(0)), ()),
    _case("max_size0_other_dim", lambda x: tuple(x.max(1)), lambda x: tuple(x.max(1)), (0, 3)),
    _case("max_noncontig", lambda x: tuple(x.mT.max(0)), lambda x: tuple(x.mT.max(0)), (3, 4)),
    _case("amax_tuple", lambda x: x.amax((0, 2)), lambda x: x.amax((0, 2)), (2, 3, 4)),
    _case("amin_keep", lambda x: dg.amin(x, -1, keepdim=True), lambda x: torch.amin(x, -1, keepdim=True), (3, 4)),
    _case("amax_all", lambda x: x.amax(), lambda x: x.amax(), (3, 4)),
    # logsumexp / softmax / log_softmax
    _case("logsumexp_dim", lambda x: x.logsumexp(1), lambda x: x.logsumexp(1), (3, 4)),
    _case("logsumexp_tuple_keep", lambda x: dg.logsumexp(x, (0, 2), keepdim=True), lambda x: torch.logsumexp(x, (0, 2), keepdim=True), (2, 3, 4)),
    _case("logsumexp_neg", lambda x: x.logsumexp(-1), lambda x: x.logsumexp(-1), (2, 3, 4)),
    _case("logsumexp_large", lambda x: (x * 1000).logsumexp(1), lambda x: (x * 1000).logsumexp(1), (3, 4)),
    _case("logsumexp_size0", lambda x: x.logsumexp(0), lambda x: x.logsumexp(0), (0, 3), gradcheck=False),
    _case("softmax_last", lambda x: x.softmax(-1), lambda x: x.softmax(-1), (3, 4)),
    _case("softmax_dim0", lambda x: dg.softmax(x, 0), lambda x: torch.softmax(x, 0), (3, 4)),
    _case("softmax_mid", lambda x: x.softmax(1), lambda x: x.softmax(1), (2, 3, 4)),
    _case("softmax_large", lambda x: (x * 500).softmax(-1), lambda x: (x * 500).softmax(-1), (3, 4)),
    _case("softmax_size0", lambda x: x.softmax(1), lambda x: x.softmax(1), (0, 3)),
    _case("softmax_size1", lambda x: x.softmax(1), lambda x: x.softmax(1), (3, 1)),
    _case("softmax_noncontig", lambda x: x.mT.softmax(-1), lambda x: x.mT.softmax(-1), (3, 4)),
    _case("log_softmax_last", lambda x: x.log_softmax(-1), lambda x: x.log_softmax(-1), (3, 4)),
    _case("log_softmax_dim0", lambda x: dg.log_softmax(x, 0), lambda x: torch.log_softmax(x, 0), (2, 3, 4)),
    _case("log_softmax_large", lambda x: (x * 500).log_softmax(1), lambda x: (x * 500).log_softmax(1), (3, 4)),
    # prod / cumsum
    _case("prod_all", lambda x: x.prod(), lambda x: x.prod(), (2, 3)),
    _case("prod_dim", lambda x: x.prod(1), lambda x: x.prod(1), (3, 4)),
    _case("prod_dim_keep", lambda x: x.prod(-1, keepdim=True), lambda x: x.prod(-1, keepdim=True), (2, 3, 2)),
    _case("prod_scalar", lambda x: x.prod(), lambda x: x.prod(), ()),
    _case("prod_size0", lambda x: x.prod(0), lambda x: x.prod(0), (0, 3)),
    _case("cumsum_0", lambda x: x.cumsum(0), lambda x: x.cumsum(0), (3, 4)),
    _case("cumsum_neg", lambda x: dg.cumsum(x, -1), lambda x: torch.cumsum(x, -1), (2, 3, 4)),
    _case("cumsum_scalar", lambda x: x.cumsum(0), lambda x: x.cumsum(0), ()),
    _case("cumsum_noncontig", lambda x: x.mT.cumsum(1), lambda x: x.mT.cumsum(1), (3, 4)),
    # norm
    _case("norm_fro", lambda x: x.norm(), lambda x: x.norm(), (3, 4)),
    _case("norm_2_dim", lambda x: x.norm(2, 1), lambda x: x.norm(2, 1), (3, 4)),
    _case("norm_fro_tuple_keep", lambda x: dg.norm(x, "fro", (0, 2), keepdim=True), lambda x: torch.norm(x, "fro", (0, 2), keepdim=True), (2, 3, 4)),
    _case("norm_1", lambda x: x.norm(1, -1), lambda x: x.norm(1, -1), (3, 4)),
    _case("norm_inf", lambda x: x.norm(math.inf, 1), lambda x: x.norm(math.inf, 1), (3, 4)),
    _case("norm_neginf", lambda x: x.norm(-math.inf), lambda x: x.norm(-math.inf), (3, 4)),
    _case("norm_3", lambda x: x.norm(3, 0), lambda x: x.norm(3, 0), (3, 4)),
    _case("norm_1_5", lambda x: x.norm(1.5), lambda x: x.norm(1.5), (3, 4)),
    _case("norm_0_5", lambda x: x.norm(0.5, 1), lambda x: x.norm(0.5, 1), (3, 4)),
    _case("norm_0", lambda x: x.norm(0, 1), lambda x: x.norm(0, 1), (3, 4)),
    _case("norm_noncontig", lambda x: x.mT.norm(dim=0), lambda x: x.mT.norm(dim=0), (3, 4)),
    # sort / topk (values are differentiable)
    _case("sort_last", lambda x: tuple(x.sort()), lambda x: tuple(x.sort()), (3, 4)),
    _case("sort_desc_dim0", lambda x: tuple(dg.sort(x, 0, descending=True)), lambda x: tuple(torch.sort(x, 0, descending=True)), (3, 4)),
    _case("sort_3d", lambda x: tuple(x.sort(1)), lambda x: tuple(x.sort(1)), (2, 3, 4)),
    _case("sort_scalar", lambda x: tuple(x.sort()), lambda x: tuple(x.sort()), ()),
    _case("sort_size0", lambda x: tuple(x.sort(0)), lambda x: tuple(x.sort(0)), (0, 3)),
    _case("topk_largest", lambda x: tuple(x.topk(2)), lambda x: tuple(x.topk(2)), (3, 4)),
    _case("topk_smallest_dim0", lambda x: tuple(dg.topk(x, 2, 0, largest=False)), lambda x: tuple(torch.topk(x, 2, 0, largest=False)), (3, 4)),
    _case("topk_all", lambda x: tuple(x.topk(4, -1)), lambda x: tuple(x.topk(4, -1)), (2, 3, 4)),
    _case("topk_noncontig", lambda x: tuple(x.mT.topk(1, 0)), lambda x: tuple(x.mT.topk(1, 0)), (3, 4)),
]


@pytest.mark.parametrize("f, tf, shape, kw", CASES)
@pytest.mark.parametrize("dtype", F64_F32)
def test_reduce(f, tf, shape, kw, dtype):
    kw = dict(kw)
    low = kw.pop("low", -2.0)
    check_op(f, tf, [rand(*shape, seed=3, low=low, dtype=dtype)], **kw)


# ---- ties, zeros, special values --------------------------------------------------------------

TIES = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5], [-1.0, -4.0, 2.0, -4.0]])


@pytest.mark.parametrize("name", ["max", "min", "amax0", "amin1", "amax_tuple", "norm_inf"])
def test_ties_split_evenly(name):
    f = {"max": lambda m, x: m.max(x), "min": lambda m, x: m.min(x),
         "amax0": lambda m, x: m.amax(x, 0), "amin1": lambda m, x: m.amin(x, 1),
         "amax_tuple": lambda m, x: m.amax(x, (0, 1)), "norm_inf": lambda m, x: m.norm(x, math.inf, 1)}[name]
    check_op(lambda x: f(dg, x), lambda x: f(torch, x), [TIES], gradcheck=False)


def test_max_dim_ties_pick_one():
    check_op(lambda x: tuple(x.max(1)), lambda x: tuple(x.max(1)), [TIES], gradcheck=False)
    check_op(lambda x: tuple(x.min(0)), lambda x: tuple(x.min(0)), [TIES], gradcheck=False)


@pytest.mark.parametrize("dim", [None, 0, 1])
@pytest.mark.parametrize("zeros", [[(0, 1)], [(0, 1), (2, 3)], [(0, 1), (0, 2)]], ids=["one", "two_rows", "two_same_row"])
def test_prod_with_zeros(dim, zeros):
    x = rand(3, 4, seed=5)
    for ij in zeros:
        x[ij] = 0.0
    f = (lambda m: lambda t: m.prod(t)) if dim is None else (lambda m: lambda t: m.prod(t, dim))
    check_op(f(dg), f(torch), [x], double=False)


def test_norm_of_zero_vector_has_zero_grad():
    x = np.zeros((2, 3))
    x[1] = [1.0, -2.0, 0.5]
    for p in [2, "fro", 1.5, 3]:
        check_op(lambda t: dg.norm(t, p, 1), lambda t: torch.norm(t, p, 1), [x], double=False, gradcheck=False)


def test_norm_p_below_1_with_zero_entries():
    x = np.array([[0.0, 1.0, -2.0], [0.5, 0.0, 0.25]])
    check_op(lambda t: dg.norm(t, 0.5, 1), lambda t: torch.norm(t, 0.5, 1), [x], double=False, gradcheck=False)


def test_softmax_extreme_values():
    x = np.array([[1e4, -1e4, 0.0], [-np.inf, 0.0, 1.0], [88.0, 89.0, 90.0]], dtype=np.float32)
    check_op(lambda t: dg.softmax(t, 1), lambda t: torch.softmax(t, 1), [x], double=False)
    check_op(lambda t: dg.log_softmax(t, 1), lambda t: torch.log_softmax(t, 1), [x[[0, 2]]], double=False)
    check_op(lambda t: dg.logsumexp(t, 1), lambda t: torch.logsumexp(t, 1), [x], double=False)


def test_logsumexp_all_neg_inf_row():
    x = np.array([[-np.inf, -np.inf], [0.0, 1.0]])
    check_op(lambda t: dg.logsumexp(t, 1), lambda t: torch.logsumexp(t, 1), [x], grad=False)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
def test_std_var_degenerate_dof():
    x = rand(1, 3, seed=1)
    for f in [lambda m, t: m.var(t, 0), lambda m, t: m.std(t, 0), lambda m, t: m.var(t, 1, correction=3)]:
        ours, theirs = f(dg, dg.tensor(x)), f(torch, torch.tensor(x))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), equal_nan=True)


# ---- integer and bool inputs -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_inputs(dtype):
    x = np.random.default_rng(0).integers(0, 3, (3, 4)).astype(dtype)
    for f in [lambda m, t: m.sum(t), lambda m, t: m.sum(t, 1), lambda m, t: m.prod(t, 0),
              lambda m, t: m.cumsum(t, 1), lambda m, t: m.amax(t, 1), lambda m, t: m.argmax(t),
              lambda m, t: m.argmin(t, 0, keepdim=True), lambda m, t: m.all(t, 1), lambda m, t: m.any(t),
              lambda m, t: m.max(t), lambda m, t: m.argmax(t, keepdim=True)]:
        if dtype == np.bool_ and f.__code__.co_names[-1:] in (("argmax",), ("argmin",)):
            continue  # torch refuses bool here; deepgrad allows it
        ours, theirs = f(dg, dg.tensor(x)), f(torch, torch.tensor(x))
        assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", "").replace("bool", "bool_")) or \
            (dtype == np.uint8 and theirs.dtype == torch.uint8), (ours.dtype, theirs.dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for f in [lambda m, t: m.max(t, 1), lambda m, t: m.sort(t.to(m.int64) * 7 % 5, 1)]:
        ov, oi = f(dg, dg.tensor(x))
        tv, ti = f(torch, torch.tensor(x))
        np.testing.assert_array_equal(ov.numpy(), tv.numpy())


def test_float_ops_promote_integer_input():
    x = np.arange(6).reshape(2, 3)
    for f in [lambda m, t: m.logsumexp(t, 1), lambda m, t: m.mean(t, 1, dtype=m.float64),
              lambda m, t: m.softmax(t, 1, dtype=m.float64), lambda m, t: m.log_softmax(t, 0, dtype=m.float32)]:
        ours, theirs = f(dg, dg.tensor(x)), f(torch, torch.tensor(x))
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


# ---- argmax/argmin, all/any, sort indices -----------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (5,), ()])
def test_arg_and_logic(shape):
    x = rand(*shape, seed=2)
    for f in [lambda m, t: m.argmax(t), lambda m, t: m.argmin(t), lambda m, t: m.argmax(t, -1),
              lambda m, t: m.argmin(t, 0, keepdim=True), lambda m, t: m.all(t > 0), lambda m, t: m.any(t > 1, -1),
              lambda m, t: m.all(t > -1.5, 0, keepdim=True), lambda m, t: m.argsort(t),
              lambda m, t: m.argsort(t, 0, descending=True)]:
        ours, theirs = f(dg, dg.tensor(x)), f(torch, torch.tensor(x))
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_sort_stable_with_ties():
    x = np.array([[2.0, 1.0, 2.0, 1.0, 3.0, 2.0]])
    for desc in [False, True]:
        ov, oi = dg.sort(dg.tensor(x), 1, descending=desc, stable=True)
        tv, ti = torch.sort(torch.tensor(x), stable=True, dim=1, descending=desc)
        np.testing.assert_array_equal(ov.numpy(), tv.numpy())
        np.testing.assert_array_equal(oi.numpy(), ti.numpy())


def test_nan_propagates():
    x = np.array([[1.0, np.nan, 3.0], [0.0, 1.0, 2.0]])
    for f in [lambda m, t: m.amax(t, 1), lambda m, t: m.max(t, 1)[0], lambda m, t: m.max(t, 1)[1],
              lambda m, t: m.sum(t, 1), lambda m, t: m.sort(t, 1)[0], lambda m, t: m.argmax(t, 1)]:
        np.testing.assert_array_equal(f(dg, dg.tensor(x)).numpy(), f(torch, torch.tensor(x)).numpy())


def test_return_types_and_max_of_two_tensors():
    x = dg.tensor([[1.0, 5.0], [3.0, 2.0]])
    r = x.max(1)
    assert r.values.tolist() == [5.0, 3.0] and r.indices.tolist() == [1, 0]
    v, i = dg.min(x, 0)
    assert v.tolist() == [1.0, 2.0] and i.tolist() == [0, 1]
    s = dg.sort(x, 1)
    assert s.indices.tolist() == [[0, 1], [1, 0]]
    tk = dg.topk(x, 1)
    assert tk.values.tolist() == [[5.0], [3.0]]
    a, b = rand(3, 1, seed=1), rand(4, seed=2)
    check_op(lambda p, q: dg.max(p, q), lambda p, q: torch.max(p, q), [a, b])
    check_op(lambda p, q: dg.min(p, q), lambda p, q: torch.min(p, q), [a, b])


def test_grad_flows_through_sort_and_topk_values_only():
    x = dg.tensor(rand(3, 4, seed=4), requires_grad=True)
    v, i = x.topk(2, 1)
    assert v.requires_grad and not i.requires_grad and i.dtype == np.int64
    (v * v).sum().backward()
    tx = torch.tensor(rand(3, 4, seed=4), requires_grad=True)
    tv, _ = tx.topk(2, 1)
    (tv * tv).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


# ---- errors -----------------------------------------------------------------------------------

def test_errors_name_the_op():
    x = dg.randn(2, 3)
    with pytest.raises(IndexError, match=r"sum: dimension out of range.*\[-2, 1\].*got 2"):
        x.sum(2)
    with pytest.raises(IndexError, match="softmax: dimension out of range"):
        x.softmax(-3)
    with pytest.raises(RuntimeError, match="mean: dim"):
        x.mean((0, -2))
    with pytest.raises(TypeError, match="mean.*int64"):
        dg.tensor([1, 2]).mean()
    with pytest.raises(TypeError, match="norm.*int64"):
        dg.tensor([1, 2]).norm()
    with pytest.raises(TypeError, match="var.*floating"):
        dg.tensor([1, 2]).var()
    with pytest.raises(IndexError, match=r"max: .*size 0.*\(0, 3\)"):
        dg.zeros(0, 3).max(0)
    with pytest.raises(IndexError, match=r"amax: .*size 0"):
        dg.zeros(0, 3).amax()
    with pytest.raises(RuntimeError, match=r"topk: k \(5\) is out of range.*size 3"):
        x.topk(5)
    with pytest.raises(TypeError, match="cumsum: dim must be an int"):
        x.cumsum(None)
    with pytest.raises(TypeError, match="sum: dim"):
        x.sum(1.5)
    with pytest.raises(TypeError, match="sum: expected a Tensor"):
        dg.sum([1, 2])


def test_double_backward_softmax_hessian_vector():
    """Hessian-vector product through log_softmax (the cross-entropy Hessian) matches torch."""
    x0, v0 = rand(2, 5, seed=1), rand(2, 5, seed=2)
    x = dg.tensor(x0, requires_grad=True)
    (g,) = dg.autograd.grad((dg.log_softmax(x, 1) * dg.tensor(np.eye(5)[[0, 0]])).sum(), [x], create_graph=True)
    (h,) = dg.autograd.grad((g * dg.tensor(v0)).sum(), [x])
    tx = torch.tensor(x0, requires_grad=True)
    (tg,) = torch.autograd.grad((torch.log_softmax(tx, 1) * torch.tensor(np.eye(5)[[0, 0]])).sum(), [tx], create_graph=True)
    (th,) = torch.autograd.grad((tg * torch.tensor(v0)).sum(), [tx])
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-6, atol=1e-10)
