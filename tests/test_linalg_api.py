"""deepgrad.linalg and the diagonal/product ops against PyTorch 2.13: values, shapes, dtypes,
gradients (float64 gradcheck, vector-Jacobian products and double backward against torch) and the
error type for the same misuse.

Every case is one function ``f(m, *xs)`` written once against the shared API and run with
``m = deepgrad`` and ``m = torch``. Decompositions whose factors are only defined up to signs
(eigh, svd) are tested through gauge-invariant quantities (``V * V``, ``U @ Vh``), as PyTorch's own
tests do; inputs of symmetric routines are symmetrised inside ``f`` so the gradient with respect
to the raw matrix is well defined.
"""
import math

import numpy as np
import pytest
import torch

import deepgrad as dg
from opcheck import assert_close, check_op


def rnd(seed, *shape, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def well(seed, *shape, dtype=np.float64):
    """A well-conditioned square matrix (batch): random plus a multiple of the identity."""
    n = shape[-1]
    return (rnd(seed, *shape) + 2.0 * np.sqrt(n) * np.eye(n)).astype(dtype)


def case(fn, inputs, double=False, **kw):
    """``check_op`` of ``fn(module, *xs)`` with deepgrad and with torch."""
    return check_op(lambda *xs: fn(dg, *xs), lambda *xs: fn(torch, *xs), inputs, double=double, **kw)


# symmetric positive-definite / symmetric inputs built inside the tested function
def spd(x):
    return x @ x.mT


def sym(x):
    return x + x.mT


# ---------------------------------------------------------------------------------------------
# The table: (id, f(m, *xs), inputs, double backward against torch: True, False where torch has
# none (cdist), None for values only)
# ---------------------------------------------------------------------------------------------

CASES = [
    ("inv", lambda m, a: m.linalg.inv(a), [well(1, 3, 3)], True),
    ("inv_batch", lambda m, a: m.linalg.inv(a), [well(2, 2, 3, 3)], True),
    ("det", lambda m, a: m.linalg.det(a), [well(3, 3, 3)], True),
    ("det_batch_negative", lambda m, a: m.linalg.det(a), [rnd(4, 2, 4, 4)], True),
    ("slogdet", lambda m, a: m.linalg.slogdet(a).logabsdet, [rnd(5, 2, 3, 3)], True),
    ("slogdet_sign", lambda m, a: m.linalg.slogdet(a).sign, [rnd(5, 2, 3, 3)], True),
    ("solve_matrix", lambda m, a, b: m.linalg.solve(a, b), [well(6, 3, 3), rnd(7, 3, 2)], True),
    ("solve_vector", lambda m, a, b: m.linalg.solve(a, b), [well(8, 3, 3), rnd(9, 3)], True),
    ("solve_batch_vector", lambda m, a, b: m.linalg.solve(a, b), [well(10, 2, 3, 3), rnd(11, 2, 3)], True),
    ("solve_broadcast", lambda m, a, b: m.linalg.solve(a, b), [well(12, 3, 3), rnd(13, 2, 3, 4)], True),
    ("solve_broadcast_a", lambda m, a, b: m.linalg.solve(a, b), [well(14, 2, 1, 3, 3), rnd(15, 4, 3, 2)], True),
    ("solve_right", lambda m, a, b: m.linalg.solve(a, b, left=False), [well(16, 3, 3), rnd(17, 2, 3)], True),
    ("solve_triangular_upper", lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True),
     [well(18, 3, 3), rnd(19, 3, 2)], True),
    ("solve_triangular_unit_right", lambda m, a, b: m.linalg.solve_triangular(
        a, b, upper=False, left=False, unitriangular=True), [well(20, 3, 3), rnd(21, 2, 3)], True),
    ("cholesky", lambda m, x: m.linalg.cholesky(spd(x)), [rnd(22, 3, 5)], True),
    ("cholesky_upper_batch", lambda m, x: m.linalg.cholesky(spd(x), upper=True), [rnd(23, 2, 3, 6)], True),
    ("eigh_values", lambda m, x: m.linalg.eigh(sym(x)).eigenvalues, [rnd(24, 4, 4)], True),
    ("eigh_vectors", lambda m, x: (lambda r: (r.eigenvalues, r.eigenvectors ** 2))(m.linalg.eigh(sym(x))),
     [rnd(25, 4, 4)], True),
    ("eigh_batch_upper", lambda m, x: (lambda r: r.eigenvectors ** 2)(m.linalg.eigh(sym(x), UPLO="U")),
     [rnd(26, 2, 3, 3)], True),
    ("eigh_projector", lambda m, x: (lambda V: V[..., :2] @ V[..., :2].mT)(m.linalg.eigh(sym(x)).eigenvectors),
     [rnd(27, 4, 4)], True),
    ("eigvalsh", lambda m, x: m.linalg.eigvalsh(sym(x)), [rnd(28, 2, 3, 3)], True),
    ("svd_tall", lambda m, a: (lambda r: (r.S, r.U @ r.Vh, r.U ** 2))(m.linalg.svd(a, full_matrices=False)),
     [rnd(29, 5, 3)], True),
    ("svd_wide", lambda m, a: (lambda r: (r.S, r.U @ r.Vh, r.Vh ** 2))(m.linalg.svd(a, full_matrices=False)),
     [rnd(30, 3, 5)], True),
    ("svd_square_batch", lambda m, a: (lambda r: (r.S, r.U @ r.Vh))(m.linalg.svd(a)), [rnd(31, 2, 4, 4)], True),
    ("svd_full_matrices", lambda m, a: (lambda r: (r.S, r.U[..., :3] @ r.Vh))(m.linalg.svd(a)),
     [rnd(32, 5, 3)], True),
    ("svd_only_S", lambda m, a: m.linalg.svd(a, full_matrices=False).S, [rnd(33, 4, 3)], True),
    ("svdvals", lambda m, a: m.linalg.svdvals(a), [rnd(34, 2, 3, 4)], True),
    ("qr_tall", lambda m, a: tuple(m.linalg.qr(a)), [rnd(35, 5, 3)], True),
    ("qr_square_batch", lambda m, a: tuple(m.linalg.qr(a)), [rnd(36, 2, 3, 3)], True),
    ("qr_wide", lambda m, a: tuple(m.linalg.qr(a)), [rnd(37, 3, 5)], True),
    ("qr_complete_square", lambda m, a: tuple(m.linalg.qr(a, mode="complete")), [rnd(38, 3, 3)], True),
    ("qr_only_R", lambda m, a: m.linalg.qr(a).R, [rnd(39, 4, 3)], True),
    ("pinv_tall", lambda m, a: m.linalg.pinv(a), [rnd(40, 5, 3)], True),
    ("pinv_wide_batch", lambda m, a: m.linalg.pinv(a), [rnd(41, 2, 3, 4)], True),
    ("pinv_hermitian", lambda m, x: m.linalg.pinv(sym(x), hermitian=True), [rnd(42, 4, 4)], True),
    ("lstsq_matrix", lambda m, a, b: m.linalg.lstsq(a, b).solution, [rnd(43, 5, 3), rnd(44, 5, 2)], True),
    ("lstsq_vector", lambda m, a, b: m.linalg.lstsq(a, b).solution, [rnd(45, 5, 3), rnd(46, 5)], True),
    ("lstsq_batch", lambda m, a, b: m.linalg.lstsq(a, b).solution, [rnd(47, 2, 5, 3), rnd(48, 2, 5, 2)], True),
    ("multi_dot", lambda m, a, b, c: m.linalg.multi_dot([a, b, c]), [rnd(49, 3), rnd(50, 3, 4), rnd(51, 4)], True),
    ("multi_dot_matrices", lambda m, a, b, c: m.linalg.multi_dot([a, b, c]),
     [rnd(52, 2, 3), rnd(53, 3, 4), rnd(54, 4, 2)], True),
    ("cross", lambda m, a, b: m.linalg.cross(a, b), [rnd(55, 4, 3), rnd(56, 1, 3)], True),
    ("cross_dim0", lambda m, a, b: m.linalg.cross(a, b, dim=0), [rnd(57, 3, 2), rnd(58, 3, 2)], True),
    ("vecdot", lambda m, a, b: m.linalg.vecdot(a, b, dim=0), [rnd(59, 4, 3), rnd(60, 4, 1)], True),
    ("matrix_power_3", lambda m, a: m.linalg.matrix_power(a, 3), [rnd(61, 2, 3, 3)], True),
    ("matrix_power_neg2", lambda m, a: m.linalg.matrix_power(a, -2), [well(62, 3, 3)], True),
    ("matrix_power_0", lambda m, a: m.linalg.matrix_power(a, 0), [rnd(63, 2, 3, 3)], True),
    ("matrix_power_1", lambda m, a: m.linalg.matrix_power(a, 1), [rnd(64, 3, 3)], True),
    ("cond", lambda m, a: m.linalg.cond(a), [well(65, 3, 3)], True),
    ("cond_fro", lambda m, a: m.linalg.cond(a, "fro"), [well(66, 3, 3)], None),  # torch's backward fails
    ("linalg_diagonal", lambda m, a: m.linalg.diagonal(a, offset=1), [rnd(67, 2, 3, 4)], True),
    # norms
    ("norm_default", lambda m, a: m.linalg.norm(a), [rnd(70, 2, 3, 4)], True),
    ("norm_ord_matrix", lambda m, a: m.linalg.norm(a, 1), [rnd(71, 3, 4)], True),
    ("norm_ord_vector", lambda m, a: m.linalg.norm(a, 3), [rnd(72, 5)], True),
    ("norm_dim_int", lambda m, a: m.linalg.norm(a, dim=1, keepdim=True), [rnd(73, 2, 3, 4)], True),
    ("norm_dim_pair_nuc", lambda m, a: m.linalg.norm(a, "nuc", dim=(0, 2)), [rnd(74, 3, 2, 4)], True),
    ("torch_norm_nuc", lambda m, a: m.norm(a, "nuc"), [rnd(75, 3, 4)], True),
    ("tensor_norm", lambda m, a: a.norm(1, dim=0, keepdim=True), [rnd(76, 3, 4)], True),
]

for _o in [2, 1, math.inf, -math.inf, 3, 0.5, -1]:
    CASES.append((f"vector_norm_{_o}", lambda m, a, o=_o: m.linalg.vector_norm(a, o, dim=(0, 2)),
                  [rnd(77, 3, 2, 4)], _o in (2, 1, math.inf, -math.inf)))
# (torch's double backward of other orders imports torch._dynamo: seconds, once per process)
CASES.append(("vector_norm_0", lambda m, a: m.linalg.vector_norm(a, 0), [rnd(78, 3, 4)], False))
CASES.append(("vector_norm_all_keepdim", lambda m, a: m.linalg.vector_norm(a, keepdim=True), [rnd(79, 3, 4)], False))
for _o in ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf]:
    CASES.append((f"matrix_norm_{_o}", lambda m, a, o=_o: m.linalg.matrix_norm(a, o),
                  [rnd(80, 2, 3, 4)], True))
    CASES.append((f"matrix_norm_{_o}_dims_keepdim",
                  lambda m, a, o=_o: m.linalg.matrix_norm(a, o, dim=(2, 0), keepdim=True),
                  [rnd(81, 3, 2, 4)], True))

# the ops: diagonals, products, distances (deepgrad.* / Tensor methods)
CASES += [
    ("diag_1d", lambda m, v: m.diag(v), [rnd(90, 3)], True),
    ("diag_1d_offset", lambda m, v: m.diag(v, 2), [rnd(91, 3)], True),
    ("diag_1d_neg_offset", lambda m, v: v.diag(-1), [rnd(92, 3)], True),
    ("diag_2d", lambda m, a: m.diag(a), [rnd(93, 3, 4)], True),
    ("diag_2d_offset", lambda m, a: m.diag(a, 1), [rnd(94, 3, 4)], True),
    ("diag_2d_neg_offset", lambda m, a: a.diag(-2), [rnd(95, 3, 4)], True),
    ("diag_2d_past_end", lambda m, a: m.diag(a, 5), [rnd(96, 3, 4)], True),
    ("diag_embed", lambda m, a: m.diag_embed(a), [rnd(97, 2, 3)], True),
    ("diag_embed_offset_dims", lambda m, a: m.diag_embed(a, 1, 0, 2), [rnd(98, 2, 3)], True),
    ("diag_embed_neg_offset", lambda m, a: a.diag_embed(-2, dim1=-1, dim2=0), [rnd(99, 2, 3)], True),
    ("diagonal", lambda m, a: m.diagonal(a), [rnd(100, 3, 4)], True),
    ("diagonal_offset_dims", lambda m, a: m.diagonal(a, 1, 2, 0), [rnd(101, 3, 2, 4)], True),
    ("diagonal_neg_offset", lambda m, a: a.diagonal(-1, -1, -2), [rnd(102, 2, 3, 4)], True),
    ("diagflat", lambda m, a: m.diagflat(a, 1), [rnd(103, 2, 2)], True),
    ("trace", lambda m, a: m.trace(a), [rnd(104, 3, 4)], True),
    ("trace_method", lambda m, a: a.trace(), [rnd(105, 4, 3)], True),
    ("tensordot_int", lambda m, a, b: m.tensordot(a, b, 2), [rnd(106, 2, 3, 4), rnd(107, 3, 4, 5)], True),
    ("tensordot_lists", lambda m, a, b: m.tensordot(a, b, dims=([0, 2], [2, 1])),
     [rnd(108, 2, 3, 4), rnd(109, 5, 4, 2)], True),
    ("tensordot_zero", lambda m, a, b: m.tensordot(a, b, 0), [rnd(110, 2), rnd(111, 3)], True),
    ("tensordot_pair_ints", lambda m, a, b: m.tensordot(a, b, dims=([1], [0])), [rnd(112, 2, 3), rnd(113, 3, 4)], True),
    ("baddbmm", lambda m, i, a, b: m.baddbmm(i, a, b, beta=0.5, alpha=2.0),
     [rnd(114, 1, 3), rnd(115, 2, 4, 5), rnd(116, 2, 5, 3)], True),
    ("baddbmm_method", lambda m, i, a, b: i.baddbmm(a, b), [rnd(117, 2, 4, 3), rnd(118, 2, 4, 5), rnd(119, 2, 5, 3)], True),
    ("addbmm", lambda m, i, a, b: m.addbmm(i, a, b, beta=2, alpha=-1),
     [rnd(120, 4, 3), rnd(121, 2, 4, 5), rnd(122, 2, 5, 3)], True),
    ("addmv", lambda m, i, a, v: m.addmv(i, a, v, alpha=3), [rnd(123, 1), rnd(124, 4, 5), rnd(125, 5)], True),
    ("addmv_method", lambda m, i, a, v: i.addmv(a, v, beta=0.25), [rnd(126, 4), rnd(127, 4, 5), rnd(128, 5)], True),
    ("addr", lambda m, i, a, b: m.addr(i, a, b, beta=-1, alpha=0.5), [rnd(129, 3, 4), rnd(130, 3), rnd(131, 4)], True),
    ("addmm_method", lambda m, i, a, b: i.addmm(a, b, beta=2), [rnd(132, 4), rnd(133, 3, 5), rnd(134, 5, 4)], True),
    ("mv_method", lambda m, a, v: a.mv(v), [rnd(135, 3, 4), rnd(136, 4)], True),
    ("ger", lambda m, a, b: m.ger(a, b), [rnd(137, 3), rnd(138, 4)], True),
    ("cdist", lambda m, a, b: m.cdist(a, b), [rnd(139, 4, 3), rnd(140, 5, 3)], False),
    ("cdist_large_mm", lambda m, a, b: m.cdist(a, b), [rnd(141, 30, 2), rnd(142, 3, 2)], False),
    ("cdist_batch_broadcast", lambda m, a, b: m.cdist(a, b), [rnd(143, 2, 1, 3, 4), rnd(144, 3, 2, 4)], False),
    ("cdist_p1", lambda m, a, b: m.cdist(a, b, p=1), [rnd(145, 4, 3), rnd(146, 5, 3)], False),
    ("cdist_pinf", lambda m, a, b: m.cdist(a, b, p=math.inf), [rnd(147, 4, 3), rnd(148, 5, 3)], False),
    ("cdist_p3", lambda m, a, b: m.cdist(a, b, p=3), [rnd(149, 2, 4, 3), rnd(150, 2, 5, 3)], False),
    ("cdist_p0", lambda m, a, b: m.cdist(a, b, p=0), [rnd(151, 4, 3), rnd(152, 5, 3)], False),
    ("dist", lambda m, a, b: m.dist(a, b), [rnd(153, 3, 4), rnd(154, 4)], True),
    ("dist_p1_method", lambda m, a, b: a.dist(b, 1), [rnd(155, 3, 4), rnd(156, 3, 4)], False),
    # PyTorch's top-level and Tensor-method spellings
    ("torch_inverse", lambda m, a: m.inverse(a), [well(160, 3, 3)], True),
    ("method_inverse_det", lambda m, a: a.inverse().det(), [well(161, 2, 3, 3)], True),
    ("torch_logdet_nan", lambda m, a: m.logdet(a), [rnd(162, 4, 3, 3)], None),  # NaN: values only
    ("method_logdet", lambda m, x: spd(x).logdet(), [rnd(163, 3, 5)], True),
    ("torch_slogdet", lambda m, a: tuple(m.slogdet(a)), [rnd(164, 3, 3)], True),
    ("torch_pinverse", lambda m, a: m.pinverse(a), [rnd(165, 4, 3)], True),
    ("method_pinverse", lambda m, a: a.pinverse(), [rnd(166, 3, 4)], True),
    ("torch_svd_V", lambda m, a: (lambda r: (r.S, r.U @ r.V.mT))(m.svd(a)), [rnd(167, 4, 3)], True),
    ("method_svd_full", lambda m, a: (lambda r: (r.S, r.U.shape[-1] + 0.0 * r.S))(a.svd(some=False)),
     [rnd(168, 4, 3)], True),
    ("torch_qr", lambda m, a: tuple(m.qr(a)), [rnd(169, 4, 3)], True),
    ("method_qr_complete", lambda m, a: tuple(a.qr(some=False)), [rnd(170, 3, 3)], True),
    ("torch_cholesky", lambda m, x: m.cholesky(spd(x)), [rnd(171, 3, 5)], True),
    ("method_cholesky_upper", lambda m, x: spd(x).cholesky(upper=True), [rnd(172, 3, 5)], True),
    ("cholesky_solve", lambda m, x, b: m.cholesky_solve(b, m.linalg.cholesky(spd(x))), [rnd(173, 3, 5), rnd(174, 3, 2)], True),
    ("cholesky_solve_upper", lambda m, x, b: b.cholesky_solve(m.linalg.cholesky(spd(x), upper=True), True),
     [rnd(175, 3, 5), rnd(176, 3, 2)], True),
    ("cholesky_inverse", lambda m, x: m.cholesky_inverse(m.linalg.cholesky(spd(x))), [rnd(177, 3, 5)], True),
    ("torch_matrix_power", lambda m, a: m.matrix_power(a, 2), [rnd(178, 3, 3)], True),
    ("method_matrix_power", lambda m, a: a.matrix_power(-1), [well(179, 3, 3)], True),
    ("torch_cross_default_dim", lambda m, a, b: m.cross(a, b), [rnd(180, 2, 3, 3), rnd(181, 2, 3, 3)], True),
    ("method_cross", lambda m, a, b: a.cross(b, dim=-1), [rnd(182, 2, 3), rnd(183, 2, 3)], True),
    ("chain_matmul", lambda m, a, b: m.chain_matmul(a, b), [rnd(184, 2, 3), rnd(185, 3, 2)], True),
]


@pytest.mark.parametrize("name,fn,inputs,double", CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, fn, inputs, double):
    if double is None:
        case(fn, inputs, grad=False)
    else:
        case(fn, inputs, double=double)


# ---------------------------------------------------------------------------------------------
# Values that are not differentiated: shapes, dtypes, named fields
# ---------------------------------------------------------------------------------------------

def _both(fn, *arrays):
    return fn(dg, *[dg.tensor(a) for a in arrays]), fn(torch, *[torch.tensor(a) for a in arrays])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fname", ["inv", "det", "eigvalsh", "svdvals", "pinv", "cholesky", "matrix_norm"])
def test_dtype_kept(fname, dtype):
    a = well(200, 2, 3, 3, dtype=dtype)
    if fname in ("cholesky", "eigvalsh"):
        a = (a @ a.swapaxes(-1, -2)).astype(dtype)
    ours, theirs = _both(lambda m, x: getattr(m.linalg, fname)(x), a)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert_close(ours, theirs, dtype, fname, rtol=1e-4 if dtype == np.float32 else None,
                 atol=1e-4 if dtype == np.float32 else None)


@pytest.mark.parametrize("driver", [None, "gelsy", "gelsd", "gelss", "gels"])
@pytest.mark.parametrize("shapes", [((5, 3), (5, 2)), ((2, 5, 3), (2, 5, 2)), ((5, 3), (5,)),
                                    ((3, 3), (3, 2)), ((2, 5, 3), (1, 5, 2)),
                                    ((2, 5, 3), (2, 5))], ids=str)
def test_lstsq_fields(driver, shapes):
    a, b = rnd(210, *shapes[0]), rnd(211, *shapes[1])
    ours, theirs = _both(lambda m, x, y: m.linalg.lstsq(x, y, driver=driver), a, b)
    assert type(ours).__name__ == type(theirs).__name__ == "linalg_lstsq"
    for f in ours._fields:
        o, t = getattr(ours, f), getattr(theirs, f)
        assert tuple(o.shape) == tuple(t.shape), (f, tuple(o.shape), tuple(t.shape))
        assert str(o.dtype) == str(t.dtype).replace("torch.", ""), f
        assert_close(o, t, np.float64, f)


def test_lstsq_rank_deficient_min_norm():
    a = rnd(212, 5, 2) @ rnd(213, 2, 4)  # rank 2
    b = rnd(214, 5, 3)
    ours, theirs = _both(lambda m, x, y: m.linalg.lstsq(x, y, driver="gelsd"), a, b)
    assert int(ours.rank) == int(theirs.rank) == 2
    assert_close(ours.solution, theirs.solution, np.float64, "solution")


@pytest.mark.parametrize("kw", [{}, dict(atol=1.0), dict(rtol=0.5), dict(hermitian=True), dict(atol=0.1, rtol=0.2)],
                         ids=str)
def test_matrix_rank(kw):
    a = rnd(220, 2, 4, 2) @ rnd(221, 2, 2, 4) + np.diag([0, 0, 0, 0.3])  # rank 3
    if kw.get("hermitian"):
        a = a + a.swapaxes(-1, -2)
    ours, theirs = _both(lambda m, x: m.linalg.matrix_rank(x, **kw), a)
    assert ours.dtype == np.int64 and tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("kw", [dict(atol=1.0), dict(rtol=0.3), dict(hermitian=True)], ids=str)
def test_pinv_tolerances(kw):
    a = rnd(222, 4, 2) @ rnd(223, 2, 4) + np.diag([0, 0, 0, 0.05])
    if kw.get("hermitian"):
        a = a + a.T
    ours, theirs = _both(lambda m, x: m.linalg.pinv(x, **kw), a)
    assert_close(ours, theirs, np.float64, "pinv")


@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 3, 3)], ids=str)
def test_qr_modes(mode, shape):
    ours, theirs = _both(lambda m, x: m.linalg.qr(x, mode=mode), rnd(230, *shape))
    assert type(ours).__name__ == "linalg_qr"
    for o, t in zip(ours, theirs):
        assert tuple(o.shape) == tuple(t.shape)
        assert_close(o, t, np.float64, mode)


@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 3, 3)], ids=str)
def test_svd_shapes_and_reconstruction(full, shape):
    a = rnd(231, *shape)
    ours, theirs = _both(lambda m, x: m.linalg.svd(x, full_matrices=full), a)
    assert ours._fields == ("U", "S", "Vh")
    for o, t in zip(ours, theirs):
        assert tuple(o.shape) == tuple(t.shape)
    k = min(shape[-2:])
    U, S, Vh = (x.numpy() for x in ours)
    np.testing.assert_allclose((U[..., :k] * S[..., None, :]) @ Vh[..., :k, :], a, atol=1e-12)
    np.testing.assert_allclose(np.abs(U[..., :k]), np.abs(theirs.U.numpy()[..., :k]), atol=1e-10)


def test_eigh_fields_and_vectors():
    a = rnd(232, 2, 4, 4)
    a = a + a.swapaxes(-1, -2)
    ours, theirs = _both(lambda m, x: m.linalg.eigh(x), a)
    assert ours._fields == ("eigenvalues", "eigenvectors") and type(ours).__name__ == type(theirs).__name__
    assert_close(ours.eigenvalues, theirs.eigenvalues)
    np.testing.assert_allclose(np.abs(ours.eigenvectors.numpy()), np.abs(theirs.eigenvectors.numpy()), atol=1e-10)


def test_svd_compute_uv_false():
    ours, theirs = _both(lambda m, x: m.svd(x, compute_uv=False), rnd(233, 4, 3))
    for o, t in zip(ours, theirs):
        assert_close(o, t)


def test_slogdet_sign_has_zero_gradient_and_fields():
    a = dg.tensor(rnd(234, 3, 3), requires_grad=True)
    r = dg.linalg.slogdet(a)
    assert r._fields == ("sign", "logabsdet") and r.sign.requires_grad and r.logabsdet.requires_grad
    (g,) = dg.autograd.grad(r.sign.sum(), a, allow_unused=True, materialize_grads=True)
    np.testing.assert_array_equal(g.numpy(), 0)


def test_det_gradient_of_singular_matrix():
    a = rnd(235, 4, 2) @ rnd(236, 2, 4)                  # rank 2: the cofactor matrix is zero
    x, t = dg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    dg.linalg.det(x).backward()
    torch.linalg.det(t).backward()
    assert_close(x.grad, t.grad, np.float64, "det grad", atol=1e-8)
    # rank 3: the gradient is the (non-zero) cofactor matrix. PyTorch 2.13 returns zeros here
    # (its own gradcheck fails on this input), so finite differences are the reference.
    b = np.diag([1.0, 2.0, 3.0, 0.0]) @ rnd(237, 4, 4)
    assert dg.autograd.gradcheck(dg.linalg.det, [dg.tensor(b, requires_grad=True)])


def test_diagonal_is_a_writable_view():
    x, t = dg.tensor(rnd(240, 3, 4)), torch.tensor(rnd(240, 3, 4))
    x.diagonal(1).fill_(7.0)
    t.diagonal(1).fill_(7.0)
    dg.diagonal(x, -1).zero_()
    torch.diagonal(t, -1).zero_()
    assert_close(x, t)
    d = dg.diag(x)                                       # diag copies
    d.fill_(0.0)
    assert x.numpy()[0, 0] != 0


def test_beta_zero_ignores_nan_input():
    nan = np.full((2, 3, 3), np.nan)
    a, b = rnd(241, 2, 3, 4), rnd(242, 2, 4, 3)
    ours, theirs = _both(lambda m, i, x, y: m.baddbmm(i, x, y, beta=0), nan, a, b)
    assert_close(ours, theirs)
    i = dg.tensor(nan, requires_grad=True)
    dg.baddbmm(i, dg.tensor(a), dg.tensor(b), beta=0).sum().backward()
    np.testing.assert_array_equal(i.grad.numpy(), 0)


@pytest.mark.parametrize("p,rows", [(2.0, 4), (2.0, 27), (3.0, 4), (1.5, 3)])
def test_cdist_second_order(p, rows):
    """PyTorch has no double backward for cdist: finite differences of our first gradient."""
    xs = [dg.tensor(rnd(246, rows, 3), requires_grad=True), dg.tensor(rnd(247, 3, 3), requires_grad=True)]

    def f(a, b):
        with dg.enable_grad():  # the finite differences run under no_grad
            return dg.cdist(a, b, p=p)
    assert dg.autograd.gradgradcheck(f, xs)


def test_cdist_gradient_at_coincident_rows():
    a = rnd(243, 3, 2)
    b = np.concatenate([a[:1], rnd(244, 2, 2)])          # row 0 of both coincide: distance 0
    x, y = dg.tensor(a, requires_grad=True), dg.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    dg.cdist(x, y).sum().backward()
    torch.cdist(tx, ty).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(y.grad, ty.grad)


def test_hessian_spectrum_through_eigh():
    """The downstream use: eigenvalues of a Hessian built by double backward, differentiated."""
    w0 = rnd(245, 3)

    def spectrum(m, w):
        with m.enable_grad():  # gradcheck's finite differences run under no_grad
            f = (w[0] ** 2 * w[1] + w[1] * w[2] ** 3 + (w ** 4).sum())
            (g,) = m.autograd.grad(f, w, create_graph=True)
            rows = [m.autograd.grad(g[i], w, create_graph=True)[0] for i in range(3)]
            return m.linalg.eigvalsh(m.stack(rows))

    check_op(lambda w: spectrum(dg, w), lambda w: spectrum(torch, w), [w0], double=False)


def test_linalg_error_class():
    assert issubclass(dg.linalg.LinAlgError, RuntimeError)
    with pytest.raises(NotImplementedError, match="torch.linalg.eig "):
        dg.linalg.eig(dg.ones(2, 2))


# ---------------------------------------------------------------------------------------------
# Errors: the same class as PyTorch's for the same misuse
# ---------------------------------------------------------------------------------------------

SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])
NOT_PD = np.array([[1.0, 2.0], [2.0, 1.0]])
F = np.float64

ERRORS = [
    ("inv_singular", lambda m, a: m.linalg.inv(a), [SINGULAR]),
    ("inv_batch_singular", lambda m, a: m.linalg.inv(a), [np.stack([np.eye(2), SINGULAR])]),
    ("solve_singular", lambda m, a, b: m.linalg.solve(a, b), [SINGULAR, np.ones(2)]),
    ("cholesky_not_pd", lambda m, a: m.linalg.cholesky(a), [NOT_PD]),
    ("cholesky_negative", lambda m, a: m.linalg.cholesky(a), [-np.eye(3)]),
    ("top_cholesky_not_pd", lambda m, a: m.cholesky(a), [NOT_PD]),
    ("inverse_singular", lambda m, a: m.inverse(a), [SINGULAR]),
    ("inv_nonsquare", lambda m, a: m.linalg.inv(a), [rnd(1, 2, 3)]),
    ("det_nonsquare", lambda m, a: m.linalg.det(a), [rnd(1, 3, 2)]),
    ("slogdet_nonsquare", lambda m, a: m.linalg.slogdet(a), [rnd(1, 3, 2)]),
    ("cholesky_nonsquare", lambda m, a: m.linalg.cholesky(a), [rnd(1, 2, 3)]),
    ("eigh_nonsquare", lambda m, a: m.linalg.eigh(a), [rnd(1, 2, 3)]),
    ("eigvalsh_nonsquare", lambda m, a: m.linalg.eigvalsh(a), [rnd(1, 2, 3)]),
    ("solve_nonsquare", lambda m, a, b: m.linalg.solve(a, b), [rnd(1, 2, 3), rnd(2, 2)]),
    ("solve_mismatch", lambda m, a, b: m.linalg.solve(a, b), [well(1, 3, 3), rnd(2, 4, 2)]),
    ("solve_dtype", lambda m, a, b: m.linalg.solve(a, b), [well(1, 3, 3), rnd(2, 3).astype(np.float32)]),
    ("inv_1d", lambda m, a: m.linalg.inv(a), [rnd(1, 3)]),
    ("svd_1d", lambda m, a: m.linalg.svd(a), [rnd(1, 3)]),
    ("inv_int", lambda m, a: m.linalg.inv(a), [np.ones((2, 2), dtype=np.int64)]),
    ("inv_half", lambda m, a: m.linalg.inv(a), [np.eye(2, dtype=np.float16)]),
    ("eigh_uplo", lambda m, a: m.linalg.eigh(a, UPLO="X"), [np.eye(2)]),
    ("qr_mode", lambda m, a: m.linalg.qr(a, mode="full"), [np.eye(2)]),
    ("matrix_norm_dims", lambda m, a: m.linalg.matrix_norm(a, dim=(0, 1, 2)), [rnd(1, 2, 2, 2)]),
    ("matrix_norm_1d", lambda m, a: m.linalg.matrix_norm(a), [rnd(1, 3)]),
    ("norm_ord_3d", lambda m, a: m.linalg.norm(a, 2), [rnd(1, 2, 2, 2)]),
    ("vector_norm_int", lambda m, a: m.linalg.vector_norm(a), [np.ones(3, dtype=np.int64)]),
    ("vector_norm_inf_empty", lambda m, a: m.linalg.vector_norm(a, math.inf), [np.zeros((0,))]),
    ("cross_not_3", lambda m, a, b: m.linalg.cross(a, b), [rnd(1, 2, 4), rnd(2, 2, 4)]),
    ("multi_dot_one", lambda m, a: m.linalg.multi_dot([a]), [rnd(1, 2, 2)]),
    ("multi_dot_3d", lambda m, a, b: m.linalg.multi_dot([a, b]), [rnd(1, 2, 2, 2), rnd(2, 2, 2)]),
    ("matrix_power_nonsquare", lambda m, a: m.linalg.matrix_power(a, 2), [rnd(1, 2, 3)]),
    ("lstsq_mismatch", lambda m, a, b: m.linalg.lstsq(a, b), [rnd(1, 4, 3), rnd(2, 5, 2)]),
    ("lstsq_vector_batch", lambda m, a, b: m.linalg.lstsq(a, b), [rnd(1, 2, 5, 3), rnd(2, 5, 1)]),
    ("lstsq_ndim", lambda m, a, b: m.linalg.lstsq(a, b), [rnd(1, 2, 5, 3), rnd(2, 5)]),
    ("lstsq_driver", lambda m, a, b: m.linalg.lstsq(a, b, driver="nope"), [rnd(1, 4, 3), rnd(2, 4, 2)]),
    ("diag_3d", lambda m, a: m.diag(a), [rnd(1, 2, 2, 2)]),
    ("diagonal_same_dims", lambda m, a: m.diagonal(a, 0, 1, 1), [rnd(1, 2, 2)]),
    ("diagonal_1d", lambda m, a: m.diagonal(a), [rnd(1, 3)]),
    ("diagonal_dim_range", lambda m, a: m.diagonal(a, 0, 0, 2), [rnd(1, 2, 2)]),
    ("trace_3d", lambda m, a: m.trace(a), [rnd(1, 2, 2, 2)]),
    ("tensordot_mismatch", lambda m, a, b: m.tensordot(a, b, 1), [rnd(1, 2, 3), rnd(2, 4, 2)]),
    ("tensordot_negative", lambda m, a, b: m.tensordot(a, b, -1), [rnd(1, 2, 3), rnd(2, 3, 2)]),
    ("baddbmm_shapes", lambda m, i, a, b: m.baddbmm(i, a, b), [rnd(1, 2, 3, 3), rnd(2, 2, 3, 4), rnd(3, 2, 5, 3)]),
    ("baddbmm_input", lambda m, i, a, b: m.baddbmm(i, a, b), [rnd(1, 2, 4, 3), rnd(2, 2, 3, 4), rnd(3, 2, 4, 3)]),
    ("addmv_shapes", lambda m, i, a, v: m.addmv(i, a, v), [rnd(1, 3), rnd(2, 3, 4), rnd(3, 5)]),
    ("cdist_cols", lambda m, a, b: m.cdist(a, b), [rnd(1, 3, 2), rnd(2, 3, 4)]),
    ("cdist_1d", lambda m, a, b: m.cdist(a, b), [rnd(1, 3), rnd(2, 3)]),
    ("cdist_negative_p", lambda m, a, b: m.cdist(a, b, p=-1), [rnd(1, 3, 2), rnd(2, 3, 2)]),
]


@pytest.mark.parametrize("name,fn,inputs", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_torch(name, fn, inputs):
    with pytest.raises(Exception) as theirs:
        fn(torch, *[torch.tensor(a) for a in inputs])
    with pytest.raises(Exception) as ours:
        fn(dg, *[dg.tensor(a) for a in inputs])
    t, o = theirs.value, ours.value
    torch_base = next(c for c in (torch.linalg.LinAlgError, NotImplementedError, IndexError, TypeError,
                                  ValueError, RuntimeError) if isinstance(t, c))
    ours_map = {torch.linalg.LinAlgError: dg.linalg.LinAlgError}
    assert isinstance(o, ours_map.get(torch_base, torch_base)), \
        f"torch raised {type(t).__name__}: {t}; deepgrad raised {type(o).__name__}: {o}"
    if torch_base is RuntimeError:
        assert not isinstance(o, dg.linalg.LinAlgError), f"{type(o).__name__}: {o}"


@pytest.mark.parametrize("name,fn", [
    ("qr_r_backward", lambda m, a: m.linalg.qr(a, mode="r").R.sum()),
    ("qr_complete_tall_backward", lambda m, a: m.linalg.qr(a, mode="complete").Q.sum()),
], ids=lambda x: x if isinstance(x, str) else "")
def test_backward_errors_match_torch(name, fn):
    a = rnd(250, 4, 3)
    t = torch.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError):
        fn(torch, t).backward()
    x = dg.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError):
        fn(dg, x).backward()
