"""The tensor functions and methods real PyTorch programs reach for (issue 9, section 1), each
compared with PyTorch 2.13 on the same inputs: values, dtypes, shapes, gradients (float64
gradcheck and second gradients through tests/opcheck.py for the differentiable ones), and the
exception class for the same misuse.

Most cases are written once as ``f(M, *inputs)`` with ``M`` either ``deepgrad`` or ``torch``,
since the two spell these calls the same way.
"""
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg
from opcheck import F32, assert_close, case_seed, check_op, rand


def _both(f):
    return (lambda *xs: f(dg, *xs)), (lambda *xs: f(torch, *xs))


def _i(values):
    """An int64 index as a tensor of module M."""
    return lambda M: M.tensor(values, dtype=M.int64)


# ---------------------------------------------------------------------------------------------
# Differentiable ops: (id, f(M, *inputs), input arrays)
# ---------------------------------------------------------------------------------------------

def _pos(*shape, seed=0):
    return rand(*shape, seed=seed, low=0.5, high=3.0)


def _distinct(*shape, seed=0):
    """Values with no ties (order statistics have a unique gradient)."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.37 - n * 0.1).reshape(shape).astype(np.float64)


def _zeros_in(*shape, seed=0):
    a = rand(*shape, seed=seed)
    a.reshape(-1)[:: 3] = 0.0
    return a


DIFF = [
    ("erf", lambda M, x: M.erf(x), [rand(3, 4, low=-3, high=3)]),
    ("erf_method", lambda M, x: x.erf(), [rand(5, low=-1, high=1)]),
    ("erfc", lambda M, x: M.erfc(x), [rand(3, 4, low=-3, high=3)]),
    ("erfinv", lambda M, x: M.erfinv(x), [rand(3, 4, low=-0.9, high=0.9)]),
    ("log2", lambda M, x: M.log2(x), [_pos(3, 4)]),
    ("log10", lambda M, x: x.log10(), [_pos(3, 4)]),
    ("frac", lambda M, x: M.frac(x), [rand(3, 4, low=-5, high=5) + 0.05]),
    ("atan2", lambda M, a, b: M.atan2(a, b), [rand(3, 4), rand(3, 4, seed=1)]),
    ("atan2_broadcast", lambda M, a, b: a.atan2(b), [rand(3, 1), rand(4, seed=1)]),
    ("arctan2", lambda M, a, b: M.arctan2(a, b), [rand(2, 3), rand(2, 3, seed=2)]),
    ("lerp_scalar_lo", lambda M, a, b: M.lerp(a, b, 0.3), [rand(3, 4), rand(3, 4, seed=1)]),
    ("lerp_scalar_hi", lambda M, a, b: a.lerp(b, 0.8), [rand(3, 4), rand(4, seed=1)]),
    ("lerp_tensor", lambda M, a, b, w: M.lerp(a, b, w), [rand(3, 4), rand(3, 4, seed=1), rand(4, seed=2, low=-1, high=1.5)]),
    ("addcmul", lambda M, a, b, c: M.addcmul(a, b, c, value=0.5), [rand(3, 4), rand(3, 1, seed=1), rand(4, seed=2)]),
    ("addcmul_method", lambda M, a, b, c: a.addcmul(b, c), [rand(2, 3), rand(2, 3, seed=1), rand(2, 3, seed=2)]),
    ("addcdiv", lambda M, a, b, c: M.addcdiv(a, b, c, value=-2), [rand(3, 4), rand(3, 4, seed=1), _pos(4, seed=2)]),
    ("nan_to_num", lambda M, x: M.nan_to_num(x, nan=1.0), [rand(3, 4)]),
    ("cumprod0", lambda M, x: M.cumprod(x, 0), [rand(4, 3, low=0.5, high=1.5)]),
    ("cumprod1", lambda M, x: x.cumprod(dim=-1), [rand(2, 5, low=-1.5, high=1.5)]),
    ("cumprod_zeros", lambda M, x: M.cumprod(x, 1), [_zeros_in(3, 5)]),
    ("cumprod_zeros_dim0", lambda M, x: M.cumprod(x, 0), [_zeros_in(4, 2, 3, seed=3)]),
    ("cummax", lambda M, x: M.cummax(x, 1), [_distinct(3, 6)]),
    ("cummin", lambda M, x: x.cummin(0), [_distinct(5, 3, seed=1)]),
    ("median_all", lambda M, x: M.median(x), [_distinct(3, 5)]),
    ("median_dim", lambda M, x: M.median(x, 1), [_distinct(3, 4)]),
    ("median_dim_keep", lambda M, x: x.median(dim=0, keepdim=True), [_distinct(5, 3)]),
    ("nanmedian_dim", lambda M, x: M.nanmedian(x, -1), [_distinct(3, 5, seed=4)]),
    ("kthvalue", lambda M, x: M.kthvalue(x, 2, 1), [_distinct(3, 5)]),
    ("kthvalue_keep", lambda M, x: x.kthvalue(3, dim=0, keepdim=True), [_distinct(4, 2)]),
    ("quantile_all", lambda M, x: M.quantile(x, 0.3), [_distinct(3, 5)]),
    ("quantile_dim", lambda M, x: M.quantile(x, 0.75, dim=1, keepdim=True), [_distinct(3, 5)]),
    ("quantile_q_tensor", lambda M, x: M.quantile(x, M.tensor([0.1, 0.5, 0.9], dtype=x.dtype), dim=0),
     [_distinct(6, 3)]),
    ("quantile_q_keepdim_all", lambda M, x: x.quantile(M.tensor([0.2, 0.6], dtype=x.dtype), keepdim=True),
     [_distinct(2, 3)]),
    *[(f"quantile_{mode}", (lambda mode: lambda M, x: M.quantile(x, M.tensor([0.0, 0.33, 0.5, 1.0], dtype=x.dtype),
                                                                 dim=-1, interpolation=mode))(mode),
       [_distinct(2, 7)]) for mode in ("linear", "lower", "higher", "midpoint", "nearest")],
    ("nanquantile", lambda M, x: M.nanquantile(x, 0.4, dim=1), [_distinct(3, 4)]),
    ("diff", lambda M, x: M.diff(x), [rand(3, 5)]),
    ("diff_n2_dim0", lambda M, x: x.diff(n=2, dim=0), [rand(5, 3)]),
    ("diff_prepend_append", lambda M, x, p, a: M.diff(x, dim=1, prepend=p, append=a),
     [rand(2, 4), rand(2, 1, seed=1), rand(2, 3, seed=2)]),
    ("diff_n_too_large", lambda M, x: M.diff(x, n=6), [rand(4)]),
    ("masked_select", lambda M, x: M.masked_select(x, x > 0.3), [rand(3, 4)]),
    ("masked_select_broadcast", lambda M, x: x.masked_select(M.tensor([True, False, True, True])), [rand(3, 4)]),
    ("repeat_interleave_int", lambda M, x: M.repeat_interleave(x, 2), [rand(2, 3)]),
    ("repeat_interleave_dim", lambda M, x: x.repeat_interleave(3, dim=1), [rand(2, 3)]),
    ("repeat_interleave_tensor", lambda M, x: M.repeat_interleave(x, M.tensor([1, 0, 3]), dim=0), [rand(3, 2)]),
    ("meshgrid_ij", lambda M, a, b: M.meshgrid(a, b, indexing="ij"), [rand(3), rand(4, seed=1)]),
    ("meshgrid_xy", lambda M, a, b, c: M.meshgrid(a, b, c, indexing="xy"), [rand(3), rand(4, seed=1), rand(2, seed=2)]),
    ("narrow", lambda M, x: M.narrow(x, 1, 1, 2), [rand(3, 4)]),
    ("narrow_method", lambda M, x: x.narrow(0, -2, 2), [rand(3, 4)]),
    ("index_fill", lambda M, x: M.index_fill(x, 1, _i([0, 2])(M), -1.5), [rand(3, 4)]),
    ("index_fill_value_tensor", lambda M, x, v: x.index_fill(0, _i([1, 1, 2])(M), v), [rand(3, 4), np.array(0.7)]),
    ("index_copy", lambda M, x, s: M.index_copy(x, 0, _i([2, 0])(M), s), [rand(3, 4), rand(2, 4, seed=1)]),
    ("index_copy_dim1", lambda M, x, s: x.index_copy(1, _i([3, 1, 0])(M), s), [rand(2, 4), rand(2, 3, seed=1)]),
    ("index_add_alpha", lambda M, x, s: M.index_add(x, 0, _i([2, 0, 2])(M), s, alpha=-0.5), [rand(3, 4), rand(3, 4, seed=1)]),
    ("masked_scatter", lambda M, x, s: M.masked_scatter(x, x > 0, s), [rand(3, 4), rand(15, seed=1)]),
    ("masked_scatter_broadcast", lambda M, x, s: x.masked_scatter(M.tensor([[True], [False], [True]]), s),
     [rand(3, 2), rand(2, 3, seed=1)]),
    ("scatter", lambda M, x, s: M.scatter(x, 1, _i([[0, 2], [1, 3]])(M), s), [rand(2, 4), rand(2, 2, seed=1)]),
    ("where_scalar_other", lambda M, x: M.where(x > 0, x, 0.0), [rand(3, 4)]),
    ("where_scalar_input", lambda M, x: M.where(x > 0, 2, x), [rand(3, 4)]),
    ("where_broadcast", lambda M, a, b: M.where(a > 0, a, b), [rand(3, 1), rand(4, seed=1)]),
]


@pytest.mark.parametrize("name,f,inputs", DIFF, ids=[c[0] for c in DIFF])
def test_differentiable_float64(name, f, inputs):
    check_op(*_both(f), inputs)


@pytest.mark.parametrize("name,f,inputs", DIFF, ids=[c[0] for c in DIFF])
def test_differentiable_float32(name, f, inputs):
    check_op(*_both(f), [a.astype(np.float32) for a in inputs], **F32)


# ---------------------------------------------------------------------------------------------
# In-place ops: applied to a non-leaf copy, tracked by autograd like add_
# ---------------------------------------------------------------------------------------------

INPLACE = [
    ("scatter_", lambda M, x, s: x.scatter_(1, _i([[0, 2], [3, 1]])(M), s), [rand(2, 4), rand(2, 2, seed=1)]),
    ("scatter_value", lambda M, x: x.scatter_(0, _i([[1, 0, 1]])(M), 2.5), [rand(2, 3)]),
    ("scatter_add_", lambda M, x, s: x.scatter_add_(0, _i([[1, 1, 0], [1, 0, 0]])(M), s), [rand(2, 3), rand(2, 3, seed=1)]),
    ("index_add_", lambda M, x, s: x.index_add_(1, _i([0, 0, 2])(M), s, alpha=2), [rand(2, 3), rand(2, 3, seed=1)]),
    ("index_fill_", lambda M, x: x.index_fill_(0, _i([1])(M), 3.0), [rand(2, 3)]),
    ("index_fill_tensor", lambda M, x, v: x.index_fill_(1, _i([0, 2])(M), v), [rand(2, 3), np.array(-0.25)]),
    ("index_copy_", lambda M, x, s: x.index_copy_(0, _i([1])(M), s), [rand(2, 3), rand(1, 3, seed=1)]),
    ("masked_scatter_", lambda M, x, s: x.masked_scatter_(x < 0, s), [rand(3, 3), rand(9, seed=1)]),
    ("lerp_", lambda M, x, e: x.lerp_(e, 0.25), [rand(2, 3), rand(2, 3, seed=1)]),
    ("addcmul_", lambda M, x, a, b: x.addcmul_(a, b, value=2), [rand(2, 3), rand(2, 3, seed=1), rand(3, seed=2)]),
    ("addcdiv_", lambda M, x, a, b: x.addcdiv_(a, b, value=0.5), [rand(2, 3), rand(2, 3, seed=1), _pos(3, seed=2)]),
]


def _inplace_fn(f):
    def run(M, x, *rest):
        y = x * 1.0                     # a non-leaf: in-place on it is allowed and tracked
        out = f(M, y, *rest)
        assert out is y, "in-place ops return self"
        return y * y                    # something that depends on y's new value non-linearly
    return run


@pytest.mark.parametrize("name,f,inputs", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_tracked(name, f, inputs):
    check_op(*_both(_inplace_fn(f)), inputs)


@pytest.mark.parametrize("name,f,inputs", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_without_grad(name, f, inputs):
    ours = [dg.tensor(a) for a in inputs]
    theirs = [torch.tensor(a) for a in inputs]
    r_ours, r_theirs = f(dg, *ours), f(torch, *theirs)
    assert r_ours is ours[0] and ours[0]._version_value > 0
    assert_close(ours[0], theirs[0], what=f"{name} in place")
    assert r_theirs is theirs[0]


@pytest.mark.parametrize("name,f,inputs", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_on_leaf_requiring_grad_raises(name, f, inputs):
    for M in (torch, dg):
        xs = [M.tensor(a) for a in inputs]
        xs[0].requires_grad_(True)
        with pytest.raises(RuntimeError):
            f(M, *xs)


def test_inplace_after_save_for_backward_raises():
    for M in (torch, dg):
        x = M.tensor(rand(2, 3), requires_grad=True)
        y = x.exp()                     # exp saves its output
        y.index_fill_(1, M.tensor([0]), 0.0)
        with pytest.raises(RuntimeError):
            y.sum().backward()


def test_inplace_source_requires_grad_into_plain_tensor():
    ws = []
    for M in (dg, torch):
        x = M.zeros(3, 2, dtype=M.float64)
        src = M.tensor(rand(2, 2), requires_grad=True)
        x.index_add_(0, M.tensor([2, 0]), src)
        assert x.requires_grad
        (x * M.tensor(rand(3, 2, seed=5))).sum().backward()
        ws.append(src.grad)
    assert_close(*ws, what="source gradient")


# ---------------------------------------------------------------------------------------------
# Values, dtypes and shapes of the ops without gradients (and of dtype rules of the others)
# ---------------------------------------------------------------------------------------------

def _np_dtype(t):
    return np.dtype(str(t.dtype).replace("torch.", "")) if isinstance(t, torch.Tensor) else np.dtype(t.dtype)


def assert_same(ours, theirs, what="result"):
    """Nested tuples of tensors: same structure, shapes, dtypes and values (NaN equal to NaN)."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), f"{what}: structure"
        for k, (o, t) in enumerate(zip(ours, theirs)):
            assert_same(o, t, f"{what}[{k}]")
        return
    if not isinstance(theirs, torch.Tensor):
        assert ours == theirs, f"{what}: {ours!r} != {theirs!r}"
        return
    assert isinstance(ours, dg.Tensor), f"{what}: expected a Tensor, got {type(ours).__name__}"
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {tuple(ours.shape)} != {tuple(theirs.shape)}"
    assert _np_dtype(ours) == _np_dtype(theirs), f"{what}: dtype {ours.dtype} != {theirs.dtype}"
    a, b = ours.detach().numpy(), theirs.detach().numpy()
    if a.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=1e-6 if a.dtype == np.float64 else 1e-5, atol=1e-7,
                                   equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


def _t(values, dtype=None):
    return lambda M: M.tensor(values, dtype=None if dtype is None else getattr(M, dtype))


NAN, INF = float("nan"), float("inf")
X1 = [3.0, 1.0, 2.0, 2.0, 5.0, -1.5, 0.0, 2.0]
XI = [3, 1, 2, 2, 5, 0, 1, 7]
X2 = [[1, 2, 1], [0, 2, 2], [1, 2, 1], [0, 0, 0]]
SEQ = [1.0, 3.0, 3.0, 5.0, 8.0]

VALUES = [
    # unique / unique_consecutive
    ("unique", lambda M: M.unique(M.tensor(XI))),
    ("unique_all", lambda M: M.unique(M.tensor(X2), return_inverse=True, return_counts=True)),
    ("unique_unsorted_arg", lambda M: M.tensor(XI).unique(sorted=False, return_inverse=True)),
    ("unique_float_counts", lambda M: M.unique(M.tensor(X1), return_counts=True)),
    ("unique_dim0", lambda M: M.unique(M.tensor(X2), dim=0, return_inverse=True, return_counts=True)),
    ("unique_dim1", lambda M: M.unique(M.tensor(X2), dim=1, return_inverse=True)),
    ("unique_nan", lambda M: M.unique(M.tensor([1.0, NAN, 2.0, NAN, 1.0]), return_inverse=True, return_counts=True)),
    ("unique_bool", lambda M: M.unique(M.tensor([True, False, True]))),
    ("unique_consecutive", lambda M: M.unique_consecutive(M.tensor([1, 1, 2, 2, 3, 1, 1, 2]))),
    ("unique_consecutive_all", lambda M: M.tensor([[1, 1, 2], [2, 1, 1]]).unique_consecutive(
        return_inverse=True, return_counts=True)),
    ("unique_consecutive_dim", lambda M: M.unique_consecutive(M.tensor([[1, 1, 2, 2], [3, 3, 4, 3]]), dim=1,
                                                               return_inverse=True, return_counts=True)),
    # bincount / histc
    ("bincount", lambda M: M.bincount(M.tensor(XI))),
    ("bincount_minlength", lambda M: M.tensor(XI).bincount(minlength=12)),
    ("bincount_weights_f32", lambda M: M.bincount(M.tensor(XI), weights=M.tensor(X1))),
    ("bincount_weights_f64", lambda M: M.bincount(M.tensor(XI), weights=M.tensor(X1, dtype=M.float64))),
    ("bincount_weights_int", lambda M: M.bincount(M.tensor(XI), weights=M.tensor(XI))),
    ("bincount_empty", lambda M: M.bincount(M.tensor([], dtype=M.int64))),
    ("histc", lambda M: M.histc(M.tensor(X1), bins=4)),
    ("histc_range", lambda M: M.tensor(X1, dtype=M.float64).histc(bins=5, min=0, max=3)),
    ("histc_constant", lambda M: M.histc(M.tensor([2.0, 2.0]), bins=3)),
    # searchsorted / bucketize
    ("searchsorted", lambda M: M.searchsorted(M.tensor(SEQ), M.tensor([0.0, 3.0, 4.0, 9.0]))),
    ("searchsorted_right", lambda M: M.searchsorted(M.tensor(SEQ), M.tensor([[3.0, 5.0]]), right=True)),
    ("searchsorted_side", lambda M: M.searchsorted(M.tensor(SEQ), M.tensor([3.0, 5.0]), side="right")),
    ("searchsorted_int32", lambda M: M.searchsorted(M.tensor(SEQ), M.tensor([3.0]), out_int32=True)),
    ("searchsorted_scalar", lambda M: M.searchsorted(M.tensor(SEQ), 3.0)),
    ("searchsorted_nd", lambda M: M.searchsorted(M.tensor([[1, 3, 5], [2, 4, 6]]), M.tensor([[3, 6], [1, 4]]))),
    ("searchsorted_sorter", lambda M: M.searchsorted(M.tensor([5, 1, 3]), M.tensor([2, 4]), sorter=M.tensor([1, 2, 0]))),
    ("bucketize", lambda M: M.bucketize(M.tensor([[0.5, 3.0], [5.0, 9.0]]), M.tensor(SEQ))),
    ("bucketize_right", lambda M: M.bucketize(M.tensor([0.5, 3.0, 5.0]), M.tensor(SEQ), right=True, out_int32=True)),
    ("bucketize_scalar", lambda M: M.bucketize(3, M.tensor([1, 3, 5]))),
    # counting and positions
    ("count_nonzero", lambda M: M.count_nonzero(M.tensor(X2))),
    ("count_nonzero_dim", lambda M: M.tensor(X2).count_nonzero(dim=0)),
    ("count_nonzero_dims", lambda M: M.count_nonzero(M.tensor([X2, X2]), dim=(0, 2))),
    ("argwhere", lambda M: M.argwhere(M.tensor(X2))),
    ("argwhere_method", lambda M: M.tensor(X1).argwhere()),
    ("nonzero_tuple", lambda M: M.tensor(X2).nonzero(as_tuple=True)),
    ("nonzero_fn_tuple", lambda M: M.nonzero(M.tensor(X2), as_tuple=True)),
    ("where_single", lambda M: M.where(M.tensor(X2))),
    # where with Python scalars (PyTorch's promotion)
    ("where_int_int", lambda M: M.where(M.tensor(X1) > 1, 1, 0)),
    ("where_float_int", lambda M: M.where(M.tensor(X1) > 1, 1.0, 0)),
    ("where_bool_bool", lambda M: M.where(M.tensor(X1) > 1, True, False)),
    ("where_f64_int", lambda M: M.where(M.tensor(X1) > 1, M.tensor(X1, dtype=M.float64), 0)),
    ("where_long_float", lambda M: M.where(M.tensor(X1) > 1, M.tensor(XI), 0.5)),
    ("where_long_int", lambda M: M.where(M.tensor(X1) > 1, M.tensor(XI, dtype=M.int32), 7)),
    ("where_method", lambda M: M.tensor(X1).where(M.tensor(X1) > 1, 0.0)),
    # order statistics on ints, NaN rules
    ("median_int", lambda M: M.median(M.tensor(XI))),
    ("median_int_dim", lambda M: M.median(M.tensor(X2), dim=1)),
    ("median_nan", lambda M: M.median(M.tensor([1.0, NAN, 2.0]))),
    ("median_nan_dim", lambda M: M.median(M.tensor([[1.0, NAN, 2.0, NAN], [3.0, 1.0, 2.0, 0.0]]), 1)),
    ("nanmedian", lambda M: M.nanmedian(M.tensor([1.0, NAN, 2.0, 5.0]))),
    ("nanmedian_dim", lambda M: M.nanmedian(M.tensor([[1.0, NAN, 2.0, 4.0], [NAN, 1.0, NAN, 7.0]]), 1)),
    ("median_0d", lambda M: M.median(M.tensor(2.5), 0)),
    ("kthvalue_int", lambda M: M.kthvalue(M.tensor(XI), 3)),
    ("kthvalue_0d", lambda M: M.kthvalue(M.tensor(2.5), 1)),
    ("cummax_int", lambda M: M.cummax(M.tensor(XI), 0)),
    ("cummin_nan", lambda M: M.cummin(M.tensor([3.0, 1.0, NAN, 0.0, NAN, -1.0]), 0)),
    ("cummax_ties", lambda M: M.cummax(M.tensor([1.0, 3.0, 2.0, 3.0, 1.0]), 0)),
    ("cummax_0d", lambda M: M.cummax(M.tensor(1.5), 0)),
    ("quantile_nan", lambda M: M.quantile(M.tensor([[1.0, NAN, 3.0], [1.0, 2.0, 3.0]]), 0.5, dim=1)),
    ("nanquantile_nan", lambda M: M.nanquantile(M.tensor([[1.0, NAN, 3.0], [NAN, NAN, NAN]]), 0.25, dim=1)),
    ("nanquantile_all", lambda M: M.nanquantile(M.tensor([1.0, NAN, 3.0, 4.0]), M.tensor([0.0, 0.5, 1.0]))),
    ("quantile_f64", lambda M: M.quantile(M.tensor(X1, dtype=M.float64), 0.5)),
    ("quantile_0d", lambda M: M.quantile(M.tensor(2.0), 0.5, dim=0, keepdim=True)),
    # dtype rules
    ("cumprod_int", lambda M: M.cumprod(M.tensor(XI), 0)),
    ("cumprod_bool", lambda M: M.cumprod(M.tensor([True, True, False]), 0)),
    ("cumprod_dtype", lambda M: M.tensor(XI).cumprod(0, dtype=M.float64)),
    ("cumprod_0d", lambda M: M.cumprod(M.tensor(3.0), 0)),
    ("diff_bool", lambda M: M.diff(M.tensor([True, False, False, True]))),
    ("diff_int", lambda M: M.diff(M.tensor(XI), n=2)),
    ("nan_to_num", lambda M: M.nan_to_num(M.tensor([NAN, INF, -INF, 1.0]))),
    ("nan_to_num_f64", lambda M: M.tensor([NAN, INF, -INF, 1.0], dtype=M.float64).nan_to_num(2.0, posinf=9.0)),
    ("nan_to_num_int", lambda M: M.nan_to_num(M.tensor(XI))),
    ("nan_to_num_", lambda M: M.tensor([NAN, 1.0]).nan_to_num_(neginf=0.0)),
    ("log2_int", lambda M: M.log2(M.tensor([1, 2, 8]))),
    ("log10_int", lambda M: M.log10(M.tensor([1, 10, 1000]))),
    ("erf_int", lambda M: M.erf(M.tensor([0, 1, 2]))),
    ("erfinv_ends", lambda M: M.erfinv(M.tensor([-1.0, 1.0, 1.5, -2.0, NAN, 0.0]))),
    ("atan2_int", lambda M: M.atan2(M.tensor([1, -1, 0]), M.tensor([0, -1, 1]))),
    ("atan2_mixed", lambda M: M.atan2(M.tensor([1.0, 2.0]), M.tensor([2.0, 3.0], dtype=M.float64))),
    ("frac_signs", lambda M: M.frac(M.tensor([-2.5, 2.5, 3.0, -0.25]))),
    ("addcmul_int", lambda M: M.addcmul(M.tensor(XI), M.tensor(XI), M.tensor(XI), value=2)),
    ("addcmul_promote", lambda M: M.addcmul(M.tensor(XI), M.tensor(X1), M.tensor(XI))),
    ("addcdiv_promote", lambda M: M.addcdiv(M.tensor(X1, dtype=M.float64), M.tensor(X1), M.tensor(XI) + 1)),
    ("lerp_0d_weight", lambda M: M.lerp(M.tensor(X1), M.tensor(XI).float(), M.tensor(0.5, dtype=M.float64))),
    ("lerp_ends", lambda M: M.lerp(M.tensor([1.0, 2.0]), M.tensor([3.0, 5.0]), M.tensor([0.0, 1.0]))),
    ("repeat_interleave_counts", lambda M: M.repeat_interleave(M.tensor([2, 0, 3]))),
    ("repeat_interleave_one_repeat", lambda M: M.repeat_interleave(M.tensor(XI), M.tensor([2]))),
    ("repeat_interleave_0d", lambda M: M.tensor(2.0).repeat_interleave(3)),
    ("repeat_interleave_output_size", lambda M: M.tensor(XI).repeat_interleave(2, output_size=16)),
    ("meshgrid_0d_1d", lambda M: M.meshgrid(M.tensor(1.0), M.tensor([1.0, 2.0]), indexing="ij")),
    ("meshgrid_list", lambda M: M.meshgrid([M.tensor([1, 2]), M.tensor([3, 4, 5])], indexing="xy")),
    ("masked_select_bcast_input", lambda M: M.masked_select(M.tensor([1.0, 2.0]), M.tensor([[True, False], [True, True]]))),
    ("masked_scatter_int", lambda M: M.tensor(XI).masked_scatter(M.tensor(XI) > 2, M.tensor(list(range(8))))),
    ("index_fill_int", lambda M: M.index_fill(M.tensor(X2), 0, M.tensor([0, 3]), 9)),
    ("index_fill_0d", lambda M: M.tensor(1.0).index_fill(0, M.tensor([0]), 4.0)),
    ("index_copy_neg_dim", lambda M: M.zeros(2, 3).index_copy(-1, M.tensor([2]), M.ones(2, 1))),
    ("scatter_reduce_add", lambda M: M.ones(2, 3).scatter_(0, M.tensor([[1, 1, 0]]), M.full((1, 3), 2.0), reduce="add")),
    ("scatter_multiply", lambda M: M.ones(2, 3).scatter_(1, M.tensor([[0, 0], [2, 1]]), 2.5, reduce="multiply")),
    ("scatter_multiply_src", lambda M: M.ones(2, 3).scatter_(1, M.tensor([[0, 0], [2, 1]]), M.full((2, 2), 3.0),
                                                             reduce="multiply")),
    # new_* factories inherit dtype (and device)
    ("new_zeros", lambda M: M.tensor(XI).new_zeros(2, 3)),
    ("new_zeros_tuple", lambda M: M.tensor(X1, dtype=M.float64).new_zeros((2, 3))),
    ("new_ones_dtype", lambda M: M.tensor(XI).new_ones([2], dtype=M.float64)),
    ("new_full", lambda M: M.tensor(XI).new_full((2,), 3.7)),
    ("new_full_float", lambda M: M.tensor(X1).new_full([2, 2], 2)),
    ("new_tensor", lambda M: M.tensor(XI).new_tensor([1.5, 2.5])),
    ("new_tensor_dtype", lambda M: M.tensor(XI).new_tensor([[1, 2]], dtype=M.float32)),
    ("new_empty_shape", lambda M: M.tensor(X1, dtype=M.float64).new_empty(3, 0)),
    ("narrow_tensor_start", lambda M: M.tensor(X1).narrow(0, M.tensor(2), 3)),
]


@pytest.mark.parametrize("name,f", VALUES, ids=[c[0] for c in VALUES])
def test_values_dtypes_shapes(name, f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = f(torch)
        ours = f(dg)
    assert_same(ours, theirs, name)


def test_new_factories_requires_grad_and_device():
    x = dg.tensor([1.0, 2.0])
    for y in (x.new_zeros(2, requires_grad=True), x.new_ones((1,), requires_grad=True),
              x.new_full((2,), 1.0, requires_grad=True), x.new_tensor([3.0], requires_grad=True),
              x.new_empty(2, requires_grad=True)):
        assert y.requires_grad and y.is_leaf and y.device == x.device
    src = dg.tensor([1.0, 2.0], requires_grad=True)
    y = x.new_tensor(src)
    assert not y.requires_grad and not np.shares_memory(y.array, src.array)


def test_randint_forms():
    for args, kw in [((10, (3,)), {}), ((3, 10, (2, 4)), {}), ((5,), dict(size=(2,))),
                     ((2, 6), dict(size=[3])), ((7, (4,)), dict(dtype=dg.int32)), ((0, 3, (5,)), dict(dtype=dg.float32))]:
        tkw = dict(kw)
        if "dtype" in tkw:
            tkw["dtype"] = getattr(torch, str(tkw["dtype"]))
        ours, theirs = dg.randint(*args, **kw), torch.randint(*args, **tkw)
        assert tuple(ours.shape) == tuple(theirs.shape) and _np_dtype(ours) == _np_dtype(theirs), args
        lo, hi = (0, args[0]) if len(args) == 1 or isinstance(args[1], tuple) else args[:2]
        a = ours.numpy()
        assert a.min() >= lo and a.max() < hi
    g1, g2 = dg.Generator().manual_seed(3), dg.Generator().manual_seed(3)
    assert np.array_equal(dg.randint(100, (20,), generator=g1).numpy(), dg.randint(100, (20,), generator=g2).numpy())
    assert len(np.unique(dg.randint(1000, (200,)).numpy())) > 100
    with pytest.raises(TypeError):
        dg.randint(10)


def test_meshgrid_without_indexing_warns_like_torch():
    with pytest.warns(UserWarning):
        torch.meshgrid(torch.tensor([1.0]), torch.tensor([2.0]))
    with pytest.warns(UserWarning):
        a, b = dg.meshgrid(dg.tensor([1.0, 2.0]), dg.tensor([3.0, 4.0, 5.0]))
    assert tuple(a.shape) == (2, 3)


def test_unique_has_no_gradient():
    x = dg.tensor([1.0, 2.0, 1.0], requires_grad=True)
    assert not dg.unique(x).requires_grad


def test_cumprod_gradient_with_several_zeros_and_double_backward():
    a = np.array([[2.0, 0.0, 3.0, 0.0, 1.5], [0.0, 0.0, 1.0, 2.0, -1.0], [1.0, 2.0, 3.0, 4.0, 0.0]])
    check_op(*_both(lambda M, x: M.cumprod(x, 1)), [a])
    check_op(*_both(lambda M, x: M.cumprod(x, 0)), [a.T.copy()])


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_cumprod_first_order_gradient_with_zeros(dim):
    # plain backward (no create_graph) takes deepgrad's O(n) path for rows with zeros
    rng = np.random.default_rng(case_seed("cumprod", dim))
    a = rng.integers(-2, 3, size=(3, 6, 4)) * rng.uniform(0.5, 1.5, (3, 6, 4))
    w = rng.standard_normal(a.shape)
    grads = []
    for M in (dg, torch):
        x = M.tensor(a, requires_grad=True)
        (M.cumprod(x, dim) * M.tensor(w)).sum().backward()
        grads.append(x.grad)
    assert_close(*grads, what="cumprod grad with zeros")


# ---------------------------------------------------------------------------------------------
# erf / erfc / erfinv accuracy in float64 (no SciPy): 1e-12 relative to PyTorch
# ---------------------------------------------------------------------------------------------

def test_erf_erfc_float64_accuracy():
    x = np.concatenate([np.linspace(-30, 30, 6001), np.linspace(-2, 2, 4001), [0.0, -0.0, 1e-300, -1e-20, 1.5,
                                                                              -1.5, INF, -INF, NAN]])
    for name in ("erf", "erfc"):
        ours = getattr(dg, name)(dg.tensor(x)).numpy()
        theirs = getattr(torch, name)(torch.tensor(x)).numpy()
        ok = (np.abs(theirs) > 1e-300) | np.isnan(theirs)
        np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-12, atol=0, equal_nan=True, err_msg=name)
        np.testing.assert_array_less(np.abs(ours[~ok]), 1e-290)
    x32 = rand(1000, low=-4, high=4, dtype=np.float32)
    assert_close(dg.erf(dg.tensor(x32)), torch.erf(torch.tensor(x32)), np.float32, "erf float32", rtol=1e-6, atol=1e-7)


def test_erfinv_float64_accuracy():
    y = np.concatenate([np.linspace(-1, 1, 20001), 1 - np.logspace(-16, -1, 200), -1 + np.logspace(-16, -1, 200),
                        np.logspace(-300, -1, 50), [0.0, -0.0, 1.0, -1.0, 1.0000001, -3.0, NAN]])
    ours = dg.erfinv(dg.tensor(y)).numpy()
    theirs = torch.erfinv(torch.tensor(y)).numpy()
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    fin = np.isfinite(theirs)
    np.testing.assert_allclose(ours[fin], theirs[fin], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.sign(ours[~fin & ~np.isnan(ours)]), np.sign(theirs[~fin & ~np.isnan(theirs)]))
    # erfinv really inverts erf (where erf is well conditioned)
    x = rand(500, low=-2, high=2)
    np.testing.assert_allclose(dg.erfinv(dg.erf(dg.tensor(x))).numpy(), x, rtol=1e-9)


def test_nan_to_num_gradient_is_zero_at_replaced_entries():
    a = np.array([1.0, NAN, INF, -INF, -2.0])
    grads = []
    for M in (dg, torch):
        x = M.tensor(a, requires_grad=True)
        (M.nan_to_num(x, nan=0.5, posinf=10.0, neginf=-10.0) * 3.0).sum().backward()
        grads.append(x.grad)
    assert_close(*grads, what="nan_to_num grad")


# ---------------------------------------------------------------------------------------------
# Misuse: the same exception class as PyTorch
# ---------------------------------------------------------------------------------------------

ERRORS = [
    ("where_nonbool_cond", lambda M: M.where(M.tensor([1.0, 0.0]), M.tensor([1.0, 2.0]), 0.0)),
    ("where_shapes", lambda M: M.where(M.tensor([True, False]), M.ones(3), 0.0)),
    ("lerp_dtype", lambda M: M.lerp(M.ones(2), M.ones(2, dtype=M.float64), 0.5)),
    ("lerp_weight_dtype", lambda M: M.lerp(M.ones(2), M.ones(2), M.ones(2, dtype=M.float64))),
    ("lerp_int", lambda M: M.lerp(M.tensor([1, 2]), M.tensor([1, 2]), 0.5)),
    ("lerp_shapes", lambda M: M.lerp(M.ones(2), M.ones(3), 0.5)),
    ("addcdiv_int", lambda M: M.addcdiv(M.tensor([1, 2]), M.tensor([1, 2]), M.tensor([1, 2]))),
    ("addcmul_shapes", lambda M: M.addcmul(M.ones(2), M.ones(3), M.ones(2))),
    ("frac_int", lambda M: M.frac(M.tensor([1, 2]))),
    ("cumprod_dim", lambda M: M.cumprod(M.ones(2, 3), 2)),
    ("cummax_dim", lambda M: M.cummax(M.ones(2, 3), -3)),
    ("diff_0d", lambda M: M.diff(M.tensor(1.0))),
    ("diff_negative_n", lambda M: M.diff(M.ones(3), n=-1)),
    ("diff_prepend_ndim", lambda M: M.diff(M.ones(2, 3), prepend=M.ones(3))),
    ("median_dim", lambda M: M.median(M.ones(2, 3), 2)),
    ("kthvalue_k_large", lambda M: M.kthvalue(M.ones(3), 4)),
    ("kthvalue_k_zero", lambda M: M.kthvalue(M.ones(3), 0)),
    ("quantile_q_range", lambda M: M.quantile(M.ones(3), 1.5)),
    ("quantile_int", lambda M: M.quantile(M.tensor([1, 2]), 0.5)),
    ("quantile_q_dtype", lambda M: M.quantile(M.ones(3), M.tensor([0.5], dtype=M.float64))),
    ("quantile_q_2d", lambda M: M.quantile(M.ones(3), M.tensor([[0.5]]))),
    ("quantile_mode", lambda M: M.quantile(M.ones(3), 0.5, interpolation="foo")),
    ("quantile_empty", lambda M: M.quantile(M.ones(0), 0.5)),
    ("unique_dim", lambda M: M.unique(M.ones(2, 3), dim=2)),
    ("bincount_negative", lambda M: M.bincount(M.tensor([1, -2, 2]))),
    ("bincount_2d", lambda M: M.bincount(M.tensor([[1, 2]]))),
    ("bincount_float", lambda M: M.bincount(M.tensor([1.0, 2.0]))),
    ("bincount_weights_len", lambda M: M.bincount(M.tensor([1, 2]), weights=M.ones(3))),
    ("bincount_minlength", lambda M: M.bincount(M.tensor([1, 2]), minlength=-1)),
    ("histc_int", lambda M: M.histc(M.tensor([1, 2, 2]))),
    ("histc_min_max", lambda M: M.histc(M.ones(3), bins=4, min=3, max=0)),
    ("searchsorted_side_right", lambda M: M.searchsorted(M.tensor([1, 3]), M.tensor([3]), right=True, side="left")),
    ("searchsorted_shapes", lambda M: M.searchsorted(M.tensor([[1, 3, 5]]), M.tensor([3, 4]))),
    ("bucketize_2d", lambda M: M.bucketize(M.tensor([3]), M.tensor([[1, 3, 5]]))),
    ("count_nonzero_dim", lambda M: M.count_nonzero(M.ones(2), dim=1)),
    ("repeat_interleave_len", lambda M: M.repeat_interleave(M.ones(5), M.tensor([1, 2]))),
    ("repeat_interleave_negative", lambda M: M.repeat_interleave(M.ones(5), -1)),
    ("repeat_interleave_dim", lambda M: M.ones(2, 3).repeat_interleave(2, dim=2)),
    ("meshgrid_2d", lambda M: M.meshgrid(M.ones(2, 1), M.ones(3), indexing="ij")),
    ("meshgrid_indexing", lambda M: M.meshgrid(M.ones(2), indexing="ji")),
    ("narrow_out_of_range", lambda M: M.ones(3, 4).narrow(1, 2, 3)),
    ("narrow_dim", lambda M: M.ones(3, 4).narrow(2, 0, 1)),
    ("masked_select_nonbool", lambda M: M.masked_select(M.ones(3), M.tensor([1, 0, 1]))),
    ("masked_select_shapes", lambda M: M.masked_select(M.ones(5), M.tensor([True, False]))),
    ("masked_scatter_nonbool", lambda M: M.ones(3).masked_scatter_(M.tensor([1, 0, 1]), M.ones(3))),
    ("masked_scatter_dtype", lambda M: M.ones(3).masked_scatter_(M.tensor([True, False, True]),
                                                                 M.ones(3, dtype=M.float64))),
    ("masked_scatter_short_source", lambda M: M.ones(3).masked_scatter_(M.tensor([True, False, True]), M.ones(1))),
    ("masked_scatter_inplace_broadcast", lambda M: M.ones(2, 1).masked_scatter_(M.tensor([True, False]), M.ones(5))),
    ("index_fill_out_of_range", lambda M: M.ones(5).index_fill_(0, M.tensor([9]), 1.0)),
    ("index_fill_float_index", lambda M: M.ones(5).index_fill_(0, M.tensor([1.0]), 1.0)),
    ("index_fill_value_1d", lambda M: M.ones(5).index_fill(0, M.tensor([1]), M.tensor([1.0, 2.0]))),
    ("index_fill_dim", lambda M: M.ones(5).index_fill(1, M.tensor([1]), 1.0)),
    ("index_copy_count", lambda M: M.ones(5).index_copy_(0, M.tensor([1]), M.ones(2))),
    ("index_copy_out_of_range", lambda M: M.ones(5).index_copy_(0, M.tensor([7]), M.ones(1))),
    ("index_copy_dtype", lambda M: M.ones(5).index_copy_(0, M.tensor([1]), M.ones(1, dtype=M.float64))),
    ("index_copy_index_2d", lambda M: M.ones(5).index_copy(0, M.tensor([[1]]), M.ones(1))),
    ("index_copy_slice_shape", lambda M: M.ones(2, 3).index_copy(0, M.tensor([1]), M.ones(1, 2))),
    ("index_add_dtype", lambda M: M.ones(5).index_add_(0, M.tensor([1]), M.ones(1, dtype=M.float64))),
    ("index_add_out_of_range", lambda M: M.ones(5).index_add_(0, M.tensor([7]), M.ones(1))),
    ("scatter_dtype", lambda M: M.ones(5).scatter_(0, M.tensor([1]), M.ones(1, dtype=M.float64))),
    ("scatter_out_of_range", lambda M: M.ones(5).scatter_(0, M.tensor([7]), 2.5)),
    ("scatter_add_dtype", lambda M: M.ones(5).scatter_add_(0, M.tensor([1]), M.ones(1, dtype=M.float64))),
    ("scatter_add_out_of_range", lambda M: M.ones(5).scatter_add_(0, M.tensor([-1]), M.ones(1))),
    ("scatter_reduce_name", lambda M: M.ones(5).scatter_(0, M.tensor([1]), 2.0, reduce="max")),
    ("gather_out_of_range", lambda M: M.ones(5).gather(0, M.tensor([5]))),
    ("randint_empty_range", lambda M: M.randint(5, 5, (2,))),
]


@pytest.mark.parametrize("name,f", ERRORS, ids=[c[0] for c in ERRORS])
def test_misuse_raises_like_torch(name, f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f(torch)
        except Exception as e:     # noqa: BLE001  (the oracle decides the class)
            expected = type(e)
        else:
            pytest.fail(f"torch accepted {name}; the case is wrong")
        with pytest.raises(expected):
            f(dg)
