"""matmul (every PyTorch case), mm/bmm/mv/dot/outer/addmm and einsum against PyTorch: values,
gradients, float64 gradcheck and double backward."""
import numpy as np
import pytest
import torch

import deepgrad as dg
from opcheck import check_op, rand

F64_F32 = [np.float64, np.float32]

MATMUL_SHAPES = [
    ((4,), (4,)),                 # 1-D . 1-D -> scalar
    ((3, 4), (4,)),               # matrix . vector
    ((4,), (4, 5)),               # vector . matrix
    ((3, 4), (4, 5)),             # matrix . matrix
    ((2, 3, 4), (4, 5)),          # batched . matrix
    ((3, 4), (2, 4, 5)),          # matrix . batched
    ((2, 3, 4), (2, 4, 5)),       # batched . batched
    ((2, 1, 3, 4), (5, 4, 2)),    # broadcasting batch dims
    ((1, 3, 4), (2, 4, 2)),       # size-1 batch broadcast
    ((2, 3, 4), (4,)),            # batched . vector
    ((4,), (2, 4, 3)),            # vector . batched
    ((2, 2, 3, 4), (4,)),         # 4-D . vector
    ((1, 4), (4, 1)),             # size-1 rows/cols
    ((0, 4), (4, 3)),             # empty rows
    ((3, 0), (0, 2)),             # empty contraction
    ((2, 0, 4), (4, 3)),          # empty in a batch
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", F64_F32)
def test_matmul(shapes, dtype):
    a, b = rand(*shapes[0], seed=1, dtype=dtype), rand(*shapes[1], seed=2, dtype=dtype)
    check_op(dg.matmul, torch.matmul, [a, b])
    check_op(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], gradcheck=False, double=False)


@pytest.mark.parametrize("dtype", F64_F32)
def test_matmul_noncontiguous(dtype):
    a, b = rand(4, 3, seed=1, dtype=dtype), rand(2, 5, 4, seed=2, dtype=dtype)
    check_op(lambda x, y: x.mT @ y.mT, lambda x, y: x.mT @ y.mT, [a, b])
    check_op(lambda x, y: x.transpose(0, 1) @ y[0].mT, lambda x, y: x.transpose(0, 1) @ y[0].mT, [a, b])


def test_matmul_one_side_no_grad():
    a, b = rand(2, 3, 4, seed=1), rand(4, 5, seed=2)
    x, y = dg.tensor(a, requires_grad=True), dg.tensor(b)
    (x @ y).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    (tx @ torch.tensor(b)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    assert y.grad is None


def test_matmul_integer():
    a = np.arange(6).reshape(2, 3)
    b = np.arange(12).reshape(3, 4)
    out = dg.tensor(a) @ dg.tensor(b)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), (torch.tensor(a) @ torch.tensor(b)).numpy())


@pytest.mark.parametrize("dtype", F64_F32)
def test_mm_bmm_mv_dot_outer(dtype):
    r = lambda *s, seed=0: rand(*s, seed=seed, dtype=dtype)  # noqa: E731
    check_op(dg.mm, torch.mm, [r(3, 4, seed=1), r(4, 2, seed=2)])
    check_op(dg.bmm, torch.bmm, [r(2, 3, 4, seed=1), r(2, 4, 2, seed=2)])
    check_op(dg.mv, torch.mv, [r(3, 4, seed=1), r(4, seed=2)])
    check_op(dg.dot, torch.dot, [r(5, seed=1), r(5, seed=2)])
    check_op(dg.outer, torch.outer, [r(3, seed=1), r(4, seed=2)])
    check_op(lambda x, y: x.mm(y.t()), lambda x, y: x.mm(y.t()), [r(3, 4, seed=1), r(2, 4, seed=2)])
    check_op(lambda x, y: x.bmm(y), lambda x, y: x.bmm(y), [r(1, 3, 4, seed=1), r(1, 4, 1, seed=2)])


@pytest.mark.parametrize("beta, alpha", [(1, 1), (0.5, 2.0), (0, 1.5)])
@pytest.mark.parametrize("bias_shape", [(3, 2), (2,), (1, 2), (3, 1)], ids=str)
def test_addmm(bias_shape, beta, alpha):
    check_op(lambda i, a, b: dg.addmm(i, a, b, beta=beta, alpha=alpha),
             lambda i, a, b: torch.addmm(i, a, b, beta=beta, alpha=alpha),
             [rand(*bias_shape, seed=0), rand(3, 4, seed=1), rand(4, 2, seed=2)])


def test_inner():
    check_op(dg.inner, torch.inner, [rand(4, seed=1), rand(4, seed=2)])
    check_op(dg.inner, torch.inner, [rand(2, 4, seed=1), rand(3, 4, seed=2)])


# ---- einsum ------------------------------------------------------------------------------------

EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),                    # implicit output
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(3, 4)]),
    ("ij->j", [(3, 4)]),                            # summed-out index
    ("ij->", [(3, 4)]),
    ("ii->i", [(3, 3)]),                            # diagonal
    ("ii", [(3, 3)]),                               # trace (implicit)
    ("iij->ij", [(3, 3, 2)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,kj->ik", [(3, 4), (2, 4)]),
    ("ijk,ikl,lm->jm", [(2, 3, 4), (2, 4, 3), (3, 2)]),  # three operands
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),    # ellipsis with batch broadcasting
    ("...ij->...ji", [(2, 3, 4)]),
    ("...i,...i", [(2, 3), (3,)]),                  # implicit output with ellipsis
    ("i...->...", [(3, 2, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),  # attention scores
    ("ij,jk->ik", [(3, 1), (4, 2)]),                 # size-1 broadcast of a contracted index
    ("ab,ab->a", [(3, 1), (1, 4)]),                  # size-1 broadcast on both sides
    ("ij,j->i", [(0, 3), (3,)]),                     # size-0 dim
    ("i, j -> ij", [(2,), (3,)]),                    # spaces
    ("Ab,bC->AC", [(2, 3), (3, 2)]),                 # upper-case subscripts
]


@pytest.mark.parametrize("eq, shapes", EINSUM, ids=[e for e, _ in EINSUM])
@pytest.mark.parametrize("dtype", F64_F32)
def test_einsum(eq, shapes, dtype):
    arrays = [rand(*s, seed=i + 1, dtype=dtype) for i, s in enumerate(shapes)]
    check_op(lambda *xs: dg.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs), arrays)


def test_einsum_list_operands_and_noncontiguous():
    a, b = rand(4, 3, seed=1), rand(2, 4, seed=2)
    check_op(lambda x, y: dg.einsum("ij,jk->ik", [x.mT, y.mT]), lambda x, y: torch.einsum("ij,jk->ik", [x.mT, y.mT]), [a, b])


def test_einsum_large_uses_blas_path():
    a, b = rand(64, 48, seed=1), rand(48, 40, seed=2)
    check_op(lambda x, y: dg.einsum("ij,jk->ik", x, y), lambda x, y: torch.einsum("ij,jk->ik", x, y),
             [a, b], gradcheck=False)


# ---- errors -----------------------------------------------------------------------------------

def test_errors_name_op_and_shapes():
    a, b = dg.randn(2, 3), dg.randn(4, 5)
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied \(3 != 4\)"):
        dg.matmul(a, b)
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        a @ b
    with pytest.raises(RuntimeError, match=r"matmul: the batch dimensions \(2,\) and \(3,\)"):
        dg.randn(2, 3, 4) @ dg.randn(3, 4, 5)
    with pytest.raises(RuntimeError, match=r"matmul: both arguments need to be at least 1-D"):
        dg.tensor(1.0) @ dg.randn(3)
    with pytest.raises(RuntimeError, match=r"matmul: .*same dtype.*float32 and float64"):
        dg.randn(2, 3) @ dg.randn(3, 2, dtype=dg.float64)
    with pytest.raises(RuntimeError, match=r"mm: expected 2-D tensors, got shapes \(2, 3, 4\) and \(4, 5\)"):
        dg.mm(dg.randn(2, 3, 4), b)
    with pytest.raises(RuntimeError, match=r"bmm: batch sizes differ"):
        dg.bmm(dg.randn(2, 3, 4), dg.randn(3, 4, 5))
    with pytest.raises(RuntimeError, match=r"bmm: shapes \(2, 3, 4\) and \(2, 5, 5\) cannot be multiplied"):
        dg.bmm(dg.randn(2, 3, 4), dg.randn(2, 5, 5))
    with pytest.raises(RuntimeError, match=r"dot: inconsistent"):
        dg.dot(dg.randn(3), dg.randn(4))
    with pytest.raises(RuntimeError, match=r"outer: expected 1-D"):
        dg.outer(a, dg.randn(3))
    with pytest.raises(RuntimeError, match=r"einsum\(\): subscript j has size 4"):
        dg.einsum("ij,jk->ik", a, b)
    with pytest.raises(RuntimeError, match=r"einsum\(\): the equation 'ij,jk' has 2 operand"):
        dg.einsum("ij,jk", a)
    with pytest.raises(RuntimeError, match=r"einsum\(\): the subscripts 'ijk' name 3"):
        dg.einsum("ijk", a)
    with pytest.raises(RuntimeError, match=r"einsum\(\): output subscript z"):
        dg.einsum("ij->iz", a)
    with pytest.raises(RuntimeError, match=r"einsum\(\): invalid subscript '1'"):
        dg.einsum("i1", a)
    with pytest.raises(RuntimeError, match=r"einsum\(\): operands must have the same dtype"):
        dg.einsum("ij,jk", a, dg.randn(3, 2, dtype=dg.float64))
    with pytest.raises(TypeError, match=r"matmul: expected Tensors"):
        dg.matmul(a, np.ones((3, 2)))
