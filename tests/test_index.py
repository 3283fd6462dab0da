"""Indexing ops against PyTorch (and NumPy where PyTorch has no equivalent, e.g. negative steps)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import deepgrad as dg
from opcheck import check_op, rand, convert_index as conv

DTYPES = [np.float64, np.float32]


def check_index(shape, index, dtype=np.float64, square=True):
    a = rand(*shape, dtype=dtype)
    di, ti = conv(index, dg), conv(index, torch)
    check_op(lambda x: x[di], lambda x: x[ti], [a])
    if square:
        check_op(lambda x: x[di] ** 2, lambda x: x[ti] ** 2, [a])


I = np.array
BASIC = [
    ((5,), 2), ((5,), -1), ((4, 3), 0), ((4, 3), (1, 2)), ((4, 3), (-1, -3)),
    ((5,), slice(1, 4)), ((6, 2), slice(None, None, 2)), ((6, 2), slice(-4, None, 3)),
    ((4, 3), (slice(1, 3), 1)), ((4, 3), (None, 1)), ((4, 3), (Ellipsis, 1)), ((2, 3, 4), (Ellipsis, None, 0)),
    ((2, 3, 4), (0, Ellipsis)), ((2, 3, 4), (slice(None), None, slice(1, 2), Ellipsis)), ((4, 3), ()),
    ((0, 3), slice(None)), ((4, 0), (slice(1, 3),)), ((3,), slice(5, 10)), ((1, 3), (0, slice(None))),
    ((), None), ((), Ellipsis), ((), ()),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,index", BASIC)
def test_getitem_basic(shape, index, dtype):
    check_index(shape, index, dtype)


def test_basic_index_is_view():
    x = dg.randn(4, 3)
    for idx in (1, slice(1, 3), (1, 2), (None, Ellipsis), (slice(None), 0)):
        y = x[idx]
        assert type(y.array) is np.ndarray
        assert y._version is x._version and np.shares_memory(y.array, x.array)
    xr = dg.randn(4, 3, requires_grad=True) * 1.0
    assert xr[1]._version is xr._version
    assert xr[1].grad_fn is not None


ADV = [
    ((5,), I([0, 2, 2, 4])),                       # repeated indices accumulate
    ((5,), I([-1, 0, -1])),
    ((4, 3), I([[0, 1], [3, 3]])),
    ((4, 3), (I([0, 2]), I([1, 1]))),
    ((4, 3), (slice(None), I([2, 0, 2]))),
    ((4, 3, 2), (I([0, 1]), slice(None), I([1, 0]))),       # separated: advanced dims first
    ((4, 3, 2), (slice(None), I([0, 2]), I([1, 1]))),       # adjacent: in place
    ((2, 3, 4), (0, slice(None), I([1, 2]))),               # int + array: PyTorch order
    ((2, 3, 4), (I([1, 0]), slice(None), 0)),
    ((2, 3, 4), (slice(None), 0, I([1, 2, 1]))),
    ((2, 3, 4), (None, I([0, 1]), None, I([1, 2]))),
    ((2, 3, 4), (Ellipsis, I([0, 0, 3]))),
    ((2, 3, 4), (I([1]), Ellipsis, None)),
    ((4, 3), I([True, False, True, True])),
    ((4, 3), I([[True, False, True]] * 4)),
    ((4, 3), (slice(1, None), I([True, False, True]))),
    ((2, 3, 4), (I([True, False]), slice(None), I([1, 3]))),
    ((4, 3), I(np.zeros(0, dtype=np.int64))),
    ((4, 3), I([False] * 4)),
    ((0, 3), I(np.zeros(0, dtype=np.int64))),
    ((4, 3), I(2)),                                        # 0-d integer tensor: like an int
    ((2, 3, 4), (I(0), slice(None), I([1, 2]))),           # ... also in PyTorch's ordering rule
    ((2, 3, 4), (I([True, False]), 0, I([1, 2]))),
    ((2, 3, 4), (slice(None), I([[0, 1], [2, 2]]), 0)),
    ((2, 3, 4), ([0, 1], [[1], [2]])),
    ((2, 3, 4), (True,)), ((2, 3, 4), (None, False, 0)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,index", ADV)
def test_getitem_advanced(shape, index, dtype):
    check_index(shape, index, dtype)


def test_getitem_lists_and_ndarrays():
    a = rand(4, 3)
    check_op(lambda x: x[[0, 0, 3]], lambda x: x[[0, 0, 3]], [a])
    check_op(lambda x: x[[0, 2], [1, 1]], lambda x: x[[0, 2], [1, 1]], [a])
    check_op(lambda x: x[np.array([1, 1, 0])], lambda x: x[torch.tensor([1, 1, 0])], [a])
    m = np.array([True, False, True, False])
    check_op(lambda x: x[m], lambda x: x[torch.tensor(m)], [a])
    check_op(lambda x: x[dg.tensor(m, dtype=dg.uint8)], lambda x: x[torch.tensor(m)], [a])
    check_op(lambda x: x[np.int64(2), 1:], lambda x: x[2, 1:], [a])


def test_getitem_negative_step_matches_numpy():
    a = rand(5, 4)
    x = dg.tensor(a, requires_grad=True)
    y = x[::-2, 1::-1]
    np.testing.assert_array_equal(y.detach().numpy(), a[::-2, 1::-1])
    dg.autograd.gradcheck(lambda t: t[::-2, 1::-1] ** 2, [x])


def test_getitem_repeated_indices_accumulate():
    x = dg.zeros(3, requires_grad=True)
    y = x[dg.tensor([0, 0, 0, 2])]
    y.backward(dg.ones(4))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_getitem_errors():
    x = dg.randn(3, 4)
    with pytest.raises(IndexError, match=r"getitem.*out of bounds.*shape \(3, 4\)"):
        x[5]
    with pytest.raises(IndexError, match=r"getitem.*\(3, 4\)"):
        x[1, 2, 3]
    with pytest.raises(IndexError, match=r"getitem.*float32.*shape \(3, 4\)"):
        x[dg.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match=r"getitem.*out of bounds"):
        x[dg.tensor([0, 7])]
    with pytest.raises(IndexError, match=r"getitem.*boolean"):
        x[dg.tensor([True, False])]
    with pytest.raises(IndexError, match="unsupported index type"):
        x["a"]
    with pytest.raises(IndexError, match=r"getitem"):
        dg.tensor(1.0)[0]


# ---------------------------------------------------------------------------------------------
# setitem (forward here; autograd behaviour in test_inplace.py)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("index,value", [
    (1, 5.0), ((slice(None), 0), I([1.0, 2.0, 3.0, 4.0])), (I([0, 2]), 7.0), (I([True, False, True, False]), I([1.0, 2.0, 3.0])),
    ((Ellipsis, 1), I(0.5)), ((0, I([1, 2])), I([8.0, 9.0])), ((I([1, 3]), slice(None)), I([[1.0], [2.0]])),
])
def test_setitem_values(index, value):
    a = rand(4, 3)
    x, t = dg.tensor(a), torch.tensor(a)
    v_dg = dg.tensor(value) if isinstance(value, np.ndarray) else value
    v_t = torch.tensor(value) if isinstance(value, np.ndarray) else value
    v0 = x._version[0]
    x[conv(index, dg)] = v_dg
    t[conv(index, torch)] = v_t
    np.testing.assert_allclose(x.numpy(), t.numpy())
    assert x._version[0] == v0 + 1


def test_setitem_casts_and_errors():
    x = dg.zeros(3, dtype=dg.int64)
    x[0] = 2.7
    assert x.dtype == np.int64 and x.tolist() == [2, 0, 0]
    y = dg.zeros(2, 3)
    y[:, 1] = dg.tensor([1, 2], dtype=dg.int64)
    assert y.tolist() == [[0, 1, 0], [0, 2, 0]]
    y[0] = [4.0, 5.0, 6.0]
    assert y.tolist()[0] == [4, 5, 6]
    with pytest.raises(RuntimeError, match=r"setitem.*\(2,\).*\(2, 3\)"):
        y[0] = dg.ones(2)
    with pytest.raises(IndexError, match=r"setitem.*out of bounds.*\(2, 3\)"):
        y[5] = 1.0


def test_setitem_view_writes_through():
    x = dg.zeros(3, 4)
    row = x[1]
    row[2] = 5.0
    assert x.tolist()[1][2] == 5.0
    assert x._version[0] == 1


# ---------------------------------------------------------------------------------------------
# gather / scatter / scatter_add / index_select / index_add / take / take_along_dim / one_hot
# ---------------------------------------------------------------------------------------------

def _fn(name, *args, **kw):
    def f(*xs):
        mod = torch if isinstance(xs[0], torch.Tensor) else dg
        return getattr(mod, name)(*xs[:1], *args, *xs[1:], **kw)
    return f


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim,index", [
    ((3, 4), 0, I([[0, 1, 2, 0], [2, 2, 1, 0]])),
    ((3, 4), 1, I([[0, 0], [3, 1], [2, 2]])),
    ((3, 4), -1, I([[1], [1]])),                      # index smaller than input in the other dim
    ((2, 3, 2), 1, I([[[0, 1], [2, 2]]])),
    ((5,), 0, I([4, 4, 0])),
    ((3, 4), 0, np.zeros((0, 4), dtype=np.int64)),
])
def test_gather(shape, dim, index, dtype):
    a = rand(*shape, dtype=dtype)
    f = lambda x, i: (torch if isinstance(x, torch.Tensor) else dg).gather(x, dim, i)
    check_op(f, f, [a, index])
    check_op(lambda x, i: f(x, i) ** 2, lambda x, i: f(x, i) ** 2, [a, index])


def test_gather_noncontiguous():
    f = lambda x, i: (torch if isinstance(x, torch.Tensor) else dg).gather(x.t(), 0, i)
    check_op(f, f, [rand(4, 3), I([[0, 1, 2, 0], [2, 2, 1, 0]])])


def test_gather_errors():
    x = dg.randn(3, 4)
    with pytest.raises(IndexError, match=r"gather.*index 3.*size 3.*\(3, 4\)"):
        dg.gather(x, 0, dg.tensor([[3]]))
    with pytest.raises(RuntimeError, match="gather.*dtype"):
        dg.gather(x, 0, dg.tensor([[1.0]]))
    with pytest.raises(RuntimeError, match="gather.*same number of dimensions"):
        dg.gather(x, 0, dg.tensor([1]))
    with pytest.raises(RuntimeError, match=r"gather.*index.size\(1\)"):
        dg.gather(x, 0, dg.tensor([[0] * 5]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,index,src_shape", [
    (0, I([[0, 1, 2], [2, 0, 1]]), (2, 3)),
    (1, I([[3], [0], [1]]), (3, 1)),
    (-1, I([[0, 2], [1, 3], [2, 0]]), (3, 2)),
])
def test_scatter(dim, index, src_shape, dtype):
    a, s = rand(3, 4, dtype=dtype), rand(*src_shape, dtype=dtype, seed=1)
    f = lambda x, i, src: (torch if isinstance(x, torch.Tensor) else dg).scatter(x, dim, i, src)
    check_op(f, f, [a, index, s])
    check_op(lambda x, i, src: f(x, i, src) ** 2, lambda x, i, src: f(x, i, src) ** 2, [a, index, s])
    g = lambda x, i: x.scatter(dim, i, value=2.5)
    check_op(g, g, [a, index])
    h = lambda x, i: (torch if isinstance(x, torch.Tensor) else dg).scatter(x, dim, i, 2.5)
    check_op(h, h, [a, index])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,index,src_shape", [
    (0, I([[0, 0, 2, 1], [0, 2, 2, 2]]), (2, 4)),   # repeats add up
    (1, I([[3, 3], [0, 0], [1, 3]]), (3, 2)),
    (0, np.zeros((0, 4), dtype=np.int64), (0, 4)),
])
def test_scatter_add(dim, index, src_shape, dtype):
    a, s = rand(3, 4, dtype=dtype), rand(*src_shape, dtype=dtype, seed=1)
    f = lambda x, i, src: (torch if isinstance(x, torch.Tensor) else dg).scatter_add(x, dim, i, src)
    check_op(f, f, [a, index, s])
    check_op(lambda x, i, src: f(x, i, src) ** 2, lambda x, i, src: f(x, i, src) ** 2, [a, index, s])


def test_scatter_src_larger_than_index():
    # Only src's leading corner is used (torch's own backward rejects this case, so gradcheck only).
    f = lambda x, i, src: (torch if isinstance(x, torch.Tensor) else dg).scatter(x, 1, i, src)
    a, idx, s = rand(3, 4), I([[3], [0], [1]]), rand(3, 2, seed=1)
    check_op(f, f, [a, idx, s], grad=False)
    x, src = dg.tensor(a, requires_grad=True), dg.tensor(s, requires_grad=True)
    dg.autograd.gradcheck(lambda x, src: dg.scatter(x, 1, dg.tensor(idx), src) ** 2, [x, src])
    g = dg.autograd.grad([dg.scatter(x, 1, dg.tensor(idx), src)], [src], grad_outputs=[dg.ones(3, 4)])[0]
    np.testing.assert_array_equal(g.numpy(), [[1, 0], [1, 0], [1, 0]])


def test_scatter_int_and_errors():
    x = dg.zeros(2, 3, dtype=dg.int64)
    out = dg.scatter_add(x, 1, dg.tensor([[0, 0], [2, 1]]), dg.tensor([[5, 6], [7, 8]]))
    assert out.tolist() == [[11, 0, 0], [0, 8, 7]]
    with pytest.raises(IndexError, match="scatter"):
        dg.scatter(dg.zeros(2, 3), 0, dg.tensor([[2]]), dg.ones(1, 1))
    with pytest.raises(RuntimeError, match="scatter_add.*src"):
        dg.scatter_add(dg.zeros(2, 3), 0, dg.tensor([[1, 1]]), dg.ones(1, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim,index", [((4, 3), 0, I([0, 3, 3, 1])), ((4, 3), 1, I([2])), ((4, 3), -1, I([1, 1, 0, 2])),
                                             ((2, 3, 2), 1, I(1)), ((4, 3), 0, np.zeros(0, dtype=np.int64)),
                                             ((5,), 0, I([4, 0]))])
def test_index_select(shape, dim, index, dtype):
    a = rand(*shape, dtype=dtype)
    f = lambda x, i: (torch if isinstance(x, torch.Tensor) else dg).index_select(x, dim, i)
    check_op(f, f, [a, index])
    check_op(lambda x, i: f(x, i) ** 2, lambda x, i: f(x, i) ** 2, [a, index])
    with pytest.raises(IndexError, match="index_select.*out of bounds"):
        dg.index_select(dg.tensor(a), dim, dg.tensor([shape[dim]]))


@pytest.mark.parametrize("dim,index", [(0, I([0, 2, 0])), (1, I([1, 1]))])
def test_index_add(dim, index):
    a = rand(3, 4)
    src = rand(*(3, 4)[:dim], len(index), *(3, 4)[dim + 1:], seed=2)
    f = lambda x, i, s: (torch if isinstance(x, torch.Tensor) else dg).index_add(x, dim, i, s, alpha=2.0)
    check_op(f, f, [a, index, src])
    check_op(lambda x, i, s: f(x, i, s) ** 2, lambda x, i, s: f(x, i, s) ** 2, [a, index, src])


def test_take():
    a = rand(3, 4)
    idx = I([[0, 11], [-1, 5]])
    f = lambda x, i: (torch if isinstance(x, torch.Tensor) else dg).take(x, i)
    check_op(f, f, [a, idx])
    check_op(lambda x, i: f(x.t(), i), lambda x, i: f(x.t(), i), [a, idx])
    with pytest.raises(IndexError, match="take"):
        dg.take(dg.tensor(a), dg.tensor([12]))


@pytest.mark.parametrize("dim,ishape", [(None, (5,)), (0, (2, 4)), (1, (3, 2)), (1, (1, 2)), (-1, (3, 1))])
def test_take_along_dim(dim, ishape):
    a = rand(3, 4)
    size = 12 if dim is None else a.shape[dim]
    idx = np.random.default_rng(1).integers(0, size, ishape)
    f = lambda x, i: (torch if isinstance(x, torch.Tensor) else dg).take_along_dim(x, i, dim)
    check_op(f, f, [a, idx])
    check_op(lambda x, i: f(x, i) ** 2, lambda x, i: f(x, i) ** 2, [a, idx])


@pytest.mark.parametrize("shape,nc", [((5,), -1), ((2, 3), 6), ((0,), 3), ((), 4)])
def test_one_hot(shape, nc):
    idx = np.random.default_rng(0).integers(0, 4, shape)
    ours = dg.one_hot(dg.tensor(idx), nc)
    theirs = F.one_hot(torch.tensor(idx), nc)
    assert ours.dtype == np.int64 and not ours.requires_grad
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_one_hot_errors():
    with pytest.raises(RuntimeError, match="one_hot.*integer"):
        dg.one_hot(dg.tensor([1.0]))
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        dg.one_hot(dg.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="non-negative"):
        dg.one_hot(dg.tensor([-1]), 3)
    with pytest.raises(RuntimeError, match="empty"):
        dg.one_hot(dg.tensor(np.zeros(0, dtype=np.int64)))
