"""``deepgrad.linalg``: PyTorch's ``torch.linalg`` with gradients.

Every function takes batches of matrices (leading batch dimensions, broadcast where PyTorch
broadcasts them). Forward is one call into the array module's ``linalg`` (NumPy's LAPACK
wrappers, or CuPy's). Backward is written with deepgrad ops, and the outputs it needs are read
back through the graph, so most gradients are differentiable again (Hessian-vector products,
Hessian spectra through ``eigh`` of a Hessian).

The gradient formulas, for ``A`` (n, n) unless said otherwise, with ``g`` the incoming gradient:

* ``inv``: ``X = A^-1`` moves by ``dX = -X dA X``, so ``gA = -X^T g X^T``.
* ``solve``: ``X = A^-1 B``; ``gB = A^-T g`` (one more solve) and ``gA = -gB X^T``.
* ``det``: ``d det = det * tr(A^-1 dA)``, so ``gA = g det A^-T``; a singular ``A`` uses the
  cofactor matrix from the SVD instead (first order only). ``slogdet``: ``gA = g A^-T``.
* ``cholesky``: from ``L^-1 dA L^-T = L^-1 dL + (L^-1 dL)^T`` with ``L^-1 dL`` lower triangular:
  ``gA = sym(L^-T Phi(L^T gL) L^-1)``, ``Phi`` keeping the lower triangle with half the diagonal.
* ``eigh``: ``A = V diag(w) V^T``; ``V^T dA V`` has ``dw`` on its diagonal and
  ``(w_j - w_i) (V^T dV)_ij`` off it, so ``gA = V (diag(gw) + F o skew(V^T gV)) V^T`` with
  ``F_ij = 1 / (w_j - w_i)``: infinite for repeated eigenvalues unless the loss does not depend
  on how a repeated eigenvalue's eigenvectors are chosen (what PyTorch does too).
* ``svd``: the same reasoning with ``E_ij = s_j^2 - s_i^2``, plus the parts of ``gU``/``gV``
  outside the spans of ``U``/``V`` for non-square input (formula at ``_Svd.backward``).
* ``qr``: ``Q^T dA R^-1 = Q^T dQ + dR R^-1``, skew plus upper triangular (``_Qr.backward``).
* ``pinv``: the derivative of the pseudo-inverse at constant rank (Golub and Pereyra).

Errors follow PyTorch: a singular matrix or a failed factorisation raises ``LinAlgError`` (a
``RuntimeError``), a non-square or too-small input a ``RuntimeError`` naming the shapes.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from . import backend
from .autograd.function import Function
from .ops.elementwise import where
from .ops.linalg import diag_embed, diagonal as _diagonal, matmul
from .ops.reduce import _reshape, _SwapLast, amax, amin, return_types
from .ops.reduce import norm as _norm
from .ops.shape import broadcast_to, movedim, narrow, sum_to, tril, triu
from .tensor import Tensor

__all__ = ["LinAlgError", "norm", "vector_norm", "matrix_norm", "inv", "inv_ex", "det", "slogdet",
           "solve", "solve_triangular", "svd", "svdvals", "qr", "cholesky", "cholesky_ex", "eigh",
           "eigvalsh", "pinv", "lstsq", "matrix_rank", "multi_dot", "cross", "vecdot",
           "matrix_power", "cond", "matmul", "diagonal"]


class LinAlgError(RuntimeError):
    """A linear-algebra routine failed on its input (singular matrix, not positive-definite, no
    convergence): PyTorch's ``torch.linalg.LinAlgError``, also a ``RuntimeError``."""


# Named results, printed as PyTorch prints its own (torch.return_types.linalg_svd(U=..., ...)).
return_types.linalg_svd = namedtuple("linalg_svd", ["U", "S", "Vh"])
return_types.linalg_eigh = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
return_types.linalg_qr = namedtuple("linalg_qr", ["Q", "R"])
return_types.linalg_slogdet = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
return_types.linalg_lstsq = namedtuple("linalg_lstsq", ["solution", "residuals", "rank",
                                                        "singular_values"])
return_types.linalg_inv_ex = namedtuple("linalg_inv_ex", ["inverse", "info"])
return_types.linalg_cholesky_ex = namedtuple("linalg_cholesky_ex", ["L", "info"])
return_types.svd = namedtuple("svd", ["U", "S", "V"])
return_types.slogdet = namedtuple("slogdet", ["sign", "logabsdet"])
return_types.qr = namedtuple("qr", ["Q", "R"])

_TORCH_DTYPE_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double", "int64": "Long",
                      "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                      "bool": "Bool", "bfloat16": "BFloat16"}


def _tname(dt):
    return _TORCH_DTYPE_NAMES.get(str(dt), str(dt))


# ---------------------------------------------------------------------------------------------
# Argument checks and small helpers
# ---------------------------------------------------------------------------------------------

def _check(A, opname, square=True, name="A"):
    if not isinstance(A, Tensor):
        raise TypeError(f"{opname}: expected a Tensor as input, got {type(A).__name__}")
    a = A.array
    if a.dtype.kind not in "fV":
        raise RuntimeError(f"{opname}: Expected a floating point or complex tensor as input. "
                           f"Got {_tname(a.dtype)}")
    if a.dtype.itemsize < 4:
        raise RuntimeError(f"{opname}: Low precision dtypes not supported. Got {_tname(a.dtype)}")
    if a.ndim < 2:
        raise RuntimeError(f"{opname}: The input tensor {name} must have at least 2 dimensions.")
    if square and a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"{opname}: {name} must be batches of square matrices, but they are "
                           f"{a.shape[-2]} by {a.shape[-1]} matrices")
    return a


def _same_dtype(opname, A, B):
    if A.array.dtype != B.array.dtype:
        raise RuntimeError(f"{opname}: Expected A and B to have the same dtype, but found A of type "
                           f"{_tname(A.dtype)} and B of type {_tname(B.dtype)} instead")


def _mT(x):
    return _SwapLast.apply(x)


def _eye_like(x, n=None):
    xp = backend.array_module(x.array)
    n = x.array.shape[-1] if n is None else n
    return Tensor._make(xp.eye(n, dtype=x.array.dtype))


def _col(v):
    """(..., k) -> (..., 1, k): scales the columns of a matrix when multiplied elementwise."""
    return _reshape(v, v.array.shape[:-1] + (1, v.array.shape[-1]))


def _row(v):
    """(..., k) -> (..., k, 1): scales the rows."""
    return _reshape(v, v.array.shape + (1,))


def _skew(x):
    return x - _mT(x)


def _batch_broadcast(opname, A, B):
    try:
        return tuple(np.broadcast_shapes(A.array.shape[:-2], B.array.shape[:-2]))
    except ValueError:
        raise RuntimeError(f"{opname}: the batch dimensions of A {tuple(A.shape)} and B "
                           f"{tuple(B.shape)} are not broadcastable") from None


def _lapack_error(opname, what):
    return LinAlgError(f"{opname}: {what}")


def _xp_linalg(x):
    return backend.array_module(x).linalg


# ---------------------------------------------------------------------------------------------
# inv, solve, det, slogdet
# ---------------------------------------------------------------------------------------------

class _Inv(Function):
    save_output = True

    def forward(self, a):
        try:
            return _xp_linalg(a).inv(a)
        except np.linalg.LinAlgError:
            raise _lapack_error("linalg.inv", "the inversion could not be completed because the "
                                f"input matrix is singular (shape {tuple(a.shape)})") from None

    def backward(self, g):
        x = _mT(self.output())
        return -matmul(matmul(x, g), x)


def inv(A, *, out=None):
    """The inverse of each square matrix of ``A`` (..., n, n)."""
    _no_out(out, "linalg.inv")
    _check(A, "linalg.inv")
    return _Inv.apply(A)


def inv_ex(A, *, check_errors=False, out=None):
    """``inv`` that reports singular matrices in ``info`` (the batch's shape: 0 where the
    inversion succeeded, positive where the matrix is singular) instead of raising, unless
    ``check_errors``; the inverse is then NaN."""
    _no_out(out, "linalg.inv_ex")
    a = _check(A, "linalg.inv_ex")
    xp = backend.array_module(a)
    try:
        res = inv(A)
        info = xp.zeros(a.shape[:-2], dtype=np.int32)
    except LinAlgError:
        if check_errors:
            raise
        info = (xp.linalg.matrix_rank(a) < a.shape[-1]).astype(np.int32) if a.size else \
            xp.zeros(a.shape[:-2], dtype=np.int32)
        res = Tensor._make(xp.full(a.shape, xp.nan, dtype=a.dtype))
    return return_types.linalg_inv_ex(res, Tensor._make(info))


class _Solve(Function):
    """``X = A^-1 B`` for matrix right-hand sides, batch dimensions broadcast."""
    save_output = True

    def forward(self, a, b):
        self.save_for_backward(self.inputs[0])
        try:
            return _xp_linalg(a).solve(a, b)
        except np.linalg.LinAlgError:
            raise _lapack_error("torch.linalg.solve", "The solver failed because the input "
                                f"matrix is singular (A of shape {tuple(a.shape)})") from None

    def backward(self, g):
        (a,) = self.saved_tensors
        gb = _Solve.apply(_mT(a), g)
        ga = None
        if self.needs_input_grad[0]:
            ga = sum_to(-matmul(gb, _mT(self.output())), a.array.shape)
        return ga, gb if self.needs_input_grad[1] else None


def _is_vector_rhs(A, B):
    """PyTorch's rule: B is a (batch of) vector(s) when it is 1-D, or has one dimension fewer
    than A and the shape of A without its last dimension."""
    nb = B.array.ndim
    return nb == 1 or (nb == A.array.ndim - 1 and B.array.shape == A.array.shape[:-1])


def solve(A, B, *, left=True, out=None):
    """``X`` with ``A X = B`` (``X A = B`` when ``left=False``). ``B`` is (..., n, k) or a batch of
    vectors (..., n)."""
    _no_out(out, "linalg.solve")
    _check(A, "linalg.solve")
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve: expected B to be a Tensor, got {type(B).__name__}")
    _same_dtype("linalg.solve", A, B)
    n = A.array.shape[-1]
    vector = _is_vector_rhs(A, B)
    if not left:
        if vector or B.array.ndim < 2:
            raise RuntimeError("linalg.solve: Vector broadcasting of the left hand side is not "
                               "supported for left=False. In this case linalg.solve is equivalent "
                               "to B / A.squeeze(-1)")
        return _mT(solve(_mT(A), _mT(B)))
    Bm = _reshape(B, B.array.shape + (1,)) if vector else B
    if Bm.array.ndim < 2 or Bm.array.shape[-2] != n:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({n}x{n} and {'x'.join(map(str, B.array.shape[-2:]))})")
    batch = _batch_broadcast("linalg.solve", A, Bm)
    Bm = Bm if Bm.array.shape[:-2] == batch else broadcast_to(Bm, batch + Bm.array.shape[-2:])
    X = _Solve.apply(A, Bm)
    if vector:
        X = _reshape(X, X.array.shape[:-1])
    return X


def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    """``solve`` with the triangle of ``A`` named by ``upper`` (the other is ignored; with
    ``unitriangular`` the diagonal is taken to be ones)."""
    _no_out(out, "linalg.solve_triangular")
    _check(A, "linalg.solve_triangular")
    _check(B, "linalg.solve_triangular", square=False, name="B")
    T = triu(A) if upper else tril(A)
    if unitriangular:
        T = T - diag_embed(_diagonal(T, 0, -2, -1)) + _eye_like(A)
    return solve(T, B, left=left)


class _Det(Function):
    save_output = True

    def forward(self, a):
        self.save_for_backward(self.inputs[0])
        return _xp_linalg(a).det(a)

    def backward(self, g):
        (a,) = self.saved_tensors
        d = self.output()
        if bool((d.array == 0).any()):
            return _row(_row(g)) * Tensor._make(_cofactor(a.array))
        return _row(_row(g * d)) * _mT(_Inv.apply(a))


def _cofactor(a):
    """The cofactor matrix ``det(A) A^-T`` of each matrix, also where ``A`` is singular: with
    ``A = U S Vh`` it is ``det(U) det(Vh) U diag(prod_{j!=i} s_j) Vh``."""
    xp = backend.array_module(a)
    u, s, vh = xp.linalg.svd(a)
    ones = xp.ones(s.shape[:-1] + (1,), dtype=s.dtype)
    before = xp.cumprod(xp.concatenate([ones, s[..., :-1]], -1), -1)
    after = xp.flip(xp.cumprod(xp.concatenate([ones, xp.flip(s, -1)[..., :-1]], -1), -1), -1)
    others = before * after
    sign = xp.linalg.det(u) * xp.linalg.det(vh)
    return sign[..., None, None] * ((u * others[..., None, :]) @ vh)


def det(A, *, out=None):
    """The determinant of each square matrix of ``A``."""
    _no_out(out, "linalg.det")
    _check(A, "linalg.det")
    return _Det.apply(A)


class _Slogdet(Function):
    def forward(self, a):
        self.save_for_backward(self.inputs[0])
        sign, lad = _xp_linalg(a).slogdet(a)
        return sign, lad

    def backward(self, gsign, glad):
        if glad is None:
            return None
        (a,) = self.saved_tensors
        return _row(_row(glad)) * _mT(_Inv.apply(a))


def slogdet(A, *, out=None):
    """``(sign, logabsdet)`` of each determinant; the sign's gradient is zero."""
    _no_out(out, "linalg.slogdet")
    _check(A, "linalg.slogdet")
    sign, lad = _Slogdet.apply(A)
    return return_types.linalg_slogdet(sign, lad)


def logdet(input):
    """``log(det(input))``: NaN for a negative determinant, -inf for a zero one."""
    _check(input, "logdet")
    sign, lad = _Slogdet.apply(input)
    s = sign.array
    xp = backend.array_module(s)
    bad = Tensor._make(s < 0)
    return where(bad, Tensor._make(xp.asarray(xp.nan, dtype=s.dtype)), lad)


# ---------------------------------------------------------------------------------------------
# cholesky
# ---------------------------------------------------------------------------------------------

def _leading_minor_failure(a):
    """The order of the first leading minor of ``a`` (one matrix) that is not positive-definite
    (a binary search: positive-definiteness of leading minors is inherited downwards)."""
    xp = backend.array_module(a)
    lo, hi = 0, a.shape[-1]  # minor lo is PD (0 trivially), minor hi is not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            xp.linalg.cholesky(a[:mid, :mid])
            lo = mid
        except np.linalg.LinAlgError:
            hi = mid
    return hi


class _Cholesky(Function):
    save_output = True

    def forward(self, a):
        try:
            return _xp_linalg(a).cholesky(a)
        except np.linalg.LinAlgError:
            raise LinAlgError(_not_pd_message("linalg.cholesky", a)) from None

    def backward(self, g):
        L = self.output()
        Linv = _Inv.apply(L)
        P = tril(matmul(_mT(L), tril(g)))
        P = P - 0.5 * diag_embed(_diagonal(P, 0, -2, -1))
        S = matmul(matmul(_mT(Linv), P), Linv)
        return 0.5 * (S + _mT(S))


def _not_pd_message(opname, a):
    xp = backend.array_module(a)
    flat = a.reshape((-1,) + a.shape[-2:])
    order, where_ = None, ""
    for i in range(flat.shape[0]):
        try:
            xp.linalg.cholesky(flat[i])
        except np.linalg.LinAlgError:
            order = _leading_minor_failure(flat[i])
            if a.ndim > 2:
                where_ = f"For batch {i}: "
            break
    return (f"{opname}: {where_}The factorization could not be completed because the input is not "
            f"positive-definite (the leading minor of order {order} is not positive-definite).")


def cholesky(A, *, upper=False, out=None):
    """The lower-triangular ``L`` with ``A = L L^T`` (``U = L^T`` with ``upper=True``); only the
    lower triangle of ``A`` is read. The gradient is symmetric, as PyTorch's."""
    _no_out(out, "linalg.cholesky")
    _check(A, "linalg.cholesky")
    L = _Cholesky.apply(A)
    return _mT(L) if upper else L


def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
    """``cholesky`` that reports failure in ``info`` (the order of the first leading minor that
    is not positive-definite, 0 where it succeeded) instead of raising, unless ``check_errors``."""
    _no_out(out, "linalg.cholesky_ex")
    a = _check(A, "linalg.cholesky_ex")
    xp = backend.array_module(a)
    try:
        return return_types.linalg_cholesky_ex(cholesky(A, upper=upper),
                                               Tensor._make(xp.zeros(a.shape[:-2], dtype=np.int32)))
    except LinAlgError:
        if check_errors:
            raise
    flat = a.reshape((-1,) + a.shape[-2:])
    info = np.zeros(flat.shape[0], dtype=np.int32)
    L = xp.zeros_like(flat)
    for i in range(flat.shape[0]):
        try:
            L[i] = xp.linalg.cholesky(flat[i])
        except np.linalg.LinAlgError:
            info[i] = _leading_minor_failure(flat[i])
    L = L.reshape(a.shape)
    if upper:
        L = L.swapaxes(-1, -2)
    return return_types.linalg_cholesky_ex(Tensor._make(L), Tensor._make(
        xp.asarray(info.reshape(a.shape[:-2]))))


# ---------------------------------------------------------------------------------------------
# eigh, eigvalsh
# ---------------------------------------------------------------------------------------------

class _Eigh(Function):
    save_output = True

    def forward(self, a, uplo="L"):
        try:
            w, v = _xp_linalg(a).eigh(a, UPLO=uplo)
        except np.linalg.LinAlgError:
            raise LinAlgError(f"linalg.eigh: The algorithm failed to converge because the input "
                              f"matrix is ill-conditioned or has too many repeated eigenvalues "
                              f"(shape {tuple(a.shape)})") from None
        return w, v

    def backward(self, gw, gv):
        w, V = self.output(0), self.output(1)
        inner = None
        if gv is not None:
            # F o skew(V^T gV) / 2, F_ij = 1 / (w_j - w_i); the diagonal of the skew part is 0
            E = _col(w) - _row(w) + _eye_like(V)
            inner = 0.5 * _skew(matmul(_mT(V), gv)) / E
        if gw is not None:
            dw = diag_embed(gw)
            inner = dw if inner is None else inner + dw
        return matmul(matmul(V, inner), _mT(V))


def _check_uplo(UPLO, opname):
    if UPLO not in ("L", "U", "l", "u"):
        raise RuntimeError(f"{opname}: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO.upper()


def eigh(A, UPLO="L", *, out=None):
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of each symmetric matrix;
    only the triangle ``UPLO`` of ``A`` is read."""
    _no_out(out, "linalg.eigh")
    _check(A, "linalg.eigh")
    w, v = _Eigh.apply(A, uplo=_check_uplo(UPLO, "linalg.eigh"))
    return return_types.linalg_eigh(w, v)


def eigvalsh(A, UPLO="L", *, out=None):
    """The eigenvalues of ``eigh`` (its eigenvectors are computed only when a gradient needs
    them)."""
    _no_out(out, "linalg.eigvalsh")
    a = _check(A, "linalg.eigvalsh")
    uplo = _check_uplo(UPLO, "linalg.eigvalsh")
    if A.requires_grad:
        return _Eigh.apply(A, uplo=uplo)[0]
    try:
        return Tensor._make(_xp_linalg(a).eigvalsh(a, UPLO=uplo))
    except np.linalg.LinAlgError:
        raise LinAlgError(f"linalg.eigvalsh: The algorithm failed to converge (shape "
                          f"{tuple(a.shape)})") from None


# ---------------------------------------------------------------------------------------------
# svd, svdvals
# ---------------------------------------------------------------------------------------------

class _Svd(Function):
    save_output = True

    def forward(self, a, full_matrices=False):
        self.m, self.n = a.shape[-2], a.shape[-1]
        try:
            u, s, vh = _xp_linalg(a).svd(a, full_matrices=full_matrices)
        except np.linalg.LinAlgError:
            raise LinAlgError(f"linalg.svd: The algorithm failed to converge because the input "
                              f"matrix is ill-conditioned or has too many repeated singular "
                              f"values (shape {tuple(a.shape)})") from None
        return u, s, vh

    def backward(self, gU, gS, gVh):
        # With A = U S V^T (U: m x k, V: n x k) and P = U^T dA V:
        #   dS = diag(P),  U^T dU = (P S + S P^T) / E,  V^T dV = (S P + P^T S) / E,
        #   E_ij = s_j^2 - s_i^2, plus (I - U U^T) dA V S^-1 in dU and its mirror in dV. Hence
        # gA = U [diag(gS) + (skew(U^T gU) S + S skew(V^T gV)) / E] V^T
        #      + (I - U U^T) gU S^-1 V^T + U S^-1 gV^T (I - V V^T).
        m, n = self.m, self.n
        k = min(m, n)
        U, S, Vh = self.output(0), self.output(1), self.output(2)
        if U.array.shape[-1] != k:  # full_matrices: the columns beyond k take no part
            U = narrow(U, -1, 0, k)
            gU = None if gU is None else narrow(gU, -1, 0, k)
        if Vh.array.shape[-2] != k:
            Vh = narrow(Vh, -2, 0, k)
            gVh = None if gVh is None else narrow(gVh, -2, 0, k)
        if gU is None and gVh is None:
            return matmul(U * _col(gS), Vh)
        S2 = S * S
        E = _col(S2) - _row(S2) + _eye_like(S2, k)
        inner = None
        if gU is not None:
            inner = _skew(matmul(_mT(U), gU)) * _col(S) / E
        if gVh is not None:
            term = _row(S) * _skew(matmul(Vh, _mT(gVh))) / E
            inner = term if inner is None else inner + term
        if gS is not None:
            inner = inner + diag_embed(gS)
        gA = matmul(matmul(U, inner), Vh)
        if m > k and gU is not None:
            gUS = gU / _col(S)
            gA = gA + matmul(gUS - matmul(U, matmul(_mT(U), gUS)), Vh)
        if n > k and gVh is not None:
            SgVh = gVh / _row(S)
            gA = gA + matmul(U, SgVh - matmul(matmul(SgVh, _mT(Vh)), Vh))
        return gA


def svd(A, full_matrices=True, *, driver=None, out=None):
    """``U, S, Vh`` with ``A = U diag(S) Vh``, singular values descending. With
    ``full_matrices=True`` (the default, as PyTorch's) ``U`` and ``Vh`` are square; gradients
    ignore their columns/rows beyond ``min(m, n)``, as PyTorch's do."""
    _no_out(out, "linalg.svd")
    _check(A, "linalg.svd", square=False)
    u, s, vh = _Svd.apply(A, full_matrices=bool(full_matrices))
    return return_types.linalg_svd(u, s, vh)


def svdvals(A, *, driver=None, out=None):
    """The singular values of ``A``, descending."""
    _no_out(out, "linalg.svdvals")
    a = _check(A, "linalg.svdvals", square=False)
    if A.requires_grad:
        return _Svd.apply(A, full_matrices=False)[1]
    return Tensor._make(_xp_linalg(a).svd(a, compute_uv=False))


# ---------------------------------------------------------------------------------------------
# qr
# ---------------------------------------------------------------------------------------------

class _Qr(Function):
    save_output = True

    def forward(self, a, mode="reduced"):
        self.mode, self.m, self.n = mode, a.shape[-2], a.shape[-1]
        xp = backend.array_module(a)
        if mode == "r":
            r = xp.linalg.qr(a, mode="r")
            return xp.zeros((0,), dtype=a.dtype), r
        q, r = xp.linalg.qr(a, mode=mode)
        return q, r

    def backward(self, gQ, gR):
        m, n = self.m, self.n
        if self.mode == "r":
            raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when "
                               "mode='r'. Please use linalg.qr(A, mode='reduced') if you are going "
                               "to differentiate through linalg.qr.")
        if self.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and "
                               "nrows > ncols.")
        Q, R = self.output(0), self.output(1)
        if m >= n:
            return _qr_square_backward(Q, R, gQ, gR)
        # A = Q [R1 R2] with X = A[:, :m] = Q R1 and Y = A[:, m:] = Q R2. R2 = Q^T Y adds
        # Y gR2^T to Q's gradient, and Y itself gets Q gR2.
        R1 = narrow(R, -1, 0, m)
        gR1 = gY = None
        if gR is not None:
            gR1, gR2 = narrow(gR, -1, 0, m), narrow(gR, -1, m, n - m)
            Y = matmul(Q, narrow(R, -1, m, n - m))
            extra = matmul(Y, _mT(gR2))
            gQ = extra if gQ is None else gQ + extra
            gY = matmul(Q, gR2)
        gX = _qr_square_backward(Q, R1, gQ, gR1)
        if gY is None:
            gY = Tensor._make(backend.array_module(R.array).zeros(
                R.array.shape[:-2] + (m, n - m), dtype=R.array.dtype))
        from .ops.shape import cat
        return cat([gX, gY], -1)


def _qr_square_backward(Q, R, gQ, gR):
    """The gradient of ``A = Q R`` with ``R`` square and invertible (m >= n, reduced).

    ``X = Q^T dA R^-1 = C + dR R^-1`` (C = Q^T dQ skew, dR R^-1 upper triangular) pins
    ``C = tril(X, -1) - tril(X, -1)^T``; substituting ``dQ`` and ``dR`` and collecting the terms
    of ``dA`` gives ``gA = (gQ + Q N) R^-T`` where, with ``M = Q^T gQ - gR R^T``, ``N`` is minus
    the symmetric matrix that has M's upper triangle (and the mirror of it below)."""
    M = None
    if gQ is not None:
        M = matmul(_mT(Q), gQ)
    if gR is not None:
        t = matmul(gR, _mT(R))
        M = -t if M is None else M - t
    N = -(triu(M) + _mT(triu(M, 1)))
    lhs = matmul(Q, N)
    if gQ is not None:
        lhs = lhs + gQ
    # lhs R^-T, as the solve R X^T = lhs^T
    return _mT(_Solve.apply(R, _mT(lhs)))


def qr(A, mode="reduced", *, out=None):
    """``Q, R`` with ``A = Q R``; ``mode`` is 'reduced', 'complete' or 'r' (Q empty)."""
    _no_out(out, "linalg.qr")
    _check(A, "linalg.qr", square=False)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' "
                           f"(default), 'r', or 'complete'")
    q, r = _Qr.apply(A, mode=mode)
    return return_types.linalg_qr(q, r)


# ---------------------------------------------------------------------------------------------
# pinv, matrix_rank, lstsq
# ---------------------------------------------------------------------------------------------

def _tolerances(a, atol, rtol, opname):
    """PyTorch's defaults: both unset -> rtol = eps * max(m, n); atol > 0 alone -> rtol = 0."""
    def val(t):
        return t.array if isinstance(t, Tensor) else t
    atol, rtol = val(atol), val(rtol)
    if rtol is None:
        if atol is not None and bool(np.all(np.asarray(atol) > 0)):
            rtol = 0.0
        else:
            rtol = np.finfo(a.dtype).eps * max(a.shape[-2], a.shape[-1])
    if atol is None:
        atol = 0.0
    return atol, rtol


def _kept_singular_values(a, atol, rtol, hermitian):
    """The singular values (or |eigenvalues| for ``hermitian``) and the mask of those above
    ``max(atol, rtol * largest)``."""
    xp = backend.array_module(a)
    s = xp.abs(xp.linalg.eigvalsh(a)) if hermitian else xp.linalg.svd(a, compute_uv=False)
    smax = s.max(axis=-1, keepdims=True) if s.shape[-1] else xp.zeros(s.shape[:-1] + (1,), s.dtype)
    atol = xp.asarray(atol, dtype=a.dtype)
    rtol = xp.asarray(rtol, dtype=a.dtype)
    cut = xp.maximum(atol[..., None] if atol.ndim else atol, (rtol[..., None] if rtol.ndim else rtol) * smax)
    return s, s > cut


class _Pinv(Function):
    save_output = True

    def forward(self, a, atol=0.0, rtol=None, hermitian=False):
        self.save_for_backward(self.inputs[0])
        self.hermitian = hermitian
        xp = backend.array_module(a)
        atol = xp.asarray(atol, dtype=a.dtype)
        rtol = xp.asarray(rtol, dtype=a.dtype)
        if hermitian:
            w, v = xp.linalg.eigh(a)
            s = xp.abs(w)
        else:
            v_u, s, vh = xp.linalg.svd(a, full_matrices=False)
        smax = s.max(axis=-1, keepdims=True) if s.shape[-1] else s[..., :0]
        cut = xp.maximum(atol[..., None] if atol.ndim else atol,
                         (rtol[..., None] if rtol.ndim else rtol) * smax)
        if hermitian:
            winv = xp.where(s > cut, 1 / xp.where(s > cut, w, 1), 0)
            return (v * winv[..., None, :]) @ v.swapaxes(-1, -2)
        sinv = xp.where(s > cut, 1 / xp.where(s > cut, s, 1), 0)
        return (vh.swapaxes(-1, -2) * sinv[..., None, :]) @ v_u.swapaxes(-1, -2)

    def backward(self, g):
        (a,) = self.saved_tensors
        ga = _pinv_vjp(a, self.output(), g)
        return 0.5 * (ga + _mT(ga)) if self.hermitian else ga


def _pinv_vjp(A, P, g):
    """The gradient through ``P = pinv(A)`` at constant rank: from
    ``dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P``,
    ``gA = -P^T g P^T + (I - A P) g^T P P^T + P^T P g^T (I - P A)``."""
    Pt, gt = _mT(P), _mT(g)
    ga = -matmul(matmul(Pt, g), Pt)
    left = gt - matmul(A, matmul(P, gt))             # (I - A P) g^T
    ga = ga + matmul(left, matmul(P, Pt))
    right = gt - matmul(matmul(gt, P), A)            # g^T (I - P A)
    return ga + matmul(matmul(Pt, P), right)


def pinv(A, *, atol=None, rtol=None, hermitian=False, out=None, rcond=None):
    """The Moore-Penrose pseudo-inverse; singular values at or below
    ``max(atol, rtol * largest)`` are treated as zero (``rcond`` is the older name of rtol)."""
    _no_out(out, "linalg.pinv")
    a = _check(A, "linalg.pinv", square=bool(hermitian))
    if rcond is not None:
        rtol = rcond
    atol, rtol = _tolerances(a, atol, rtol, "linalg.pinv")
    return _Pinv.apply(A, atol=atol, rtol=rtol, hermitian=bool(hermitian))


def matrix_rank(A, tol=None, hermitian=False, *, atol=None, rtol=None, out=None):
    """The number of singular values above ``max(atol, rtol * largest)`` (int64)."""
    _no_out(out, "linalg.matrix_rank")
    a = _check(A, "linalg.matrix_rank", square=bool(hermitian))
    if tol is not None:
        atol, rtol = tol, 0.0
    atol, rtol = _tolerances(a, atol, rtol, "linalg.matrix_rank")
    _, keep = _kept_singular_values(a, atol, rtol, bool(hermitian))
    return Tensor._make(keep.sum(axis=-1).astype(np.int64))


_LSTSQ_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares (minimum-norm) solution of ``A X = B`` with PyTorch's fields:
    ``solution``, ``residuals`` (squared, per column; for m > n, full rank and a driver other than
    'gelsy'), ``rank`` (drivers other than 'gels') and ``singular_values`` ('gelsd', 'gelss').
    All drivers are served by one SVD; the solution's gradient is the pseudo-inverse's."""
    a = _check(A, "linalg.lstsq", square=False)
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.lstsq: expected B to be a Tensor, got {type(B).__name__}")
    _same_dtype("linalg.lstsq", A, B)
    driver = "gelsy" if driver is None else driver
    if driver not in _LSTSQ_DRIVERS:
        raise RuntimeError(f"torch.linalg.lstsq: parameter `driver` should be one of "
                           f"{_LSTSQ_DRIVERS}")
    m, n = a.shape[-2:]
    if not 0 <= A.array.ndim - B.array.ndim <= 1:
        raise RuntimeError(f"torch.linalg.lstsq: input.dim() must be greater or equal to other.dim() "
                           f"and (input.dim() - other.dim()) <= 1 (shapes {tuple(A.shape)} and "
                           f"{tuple(B.shape)})")
    vector = B.array.ndim == A.array.ndim - 1
    Bm = _reshape(B, B.array.shape + (1,)) if vector else B
    if Bm.array.ndim < 2 or Bm.array.shape[-2] != m:
        raise RuntimeError(f"torch.linalg.lstsq: input.size(-2) should match other.size(-2) "
                           f"(A of shape {tuple(A.shape)}, B of shape {tuple(B.shape)})")
    batch = _batch_broadcast("linalg.lstsq", A, Bm)
    rtol = np.finfo(a.dtype).eps * max(m, n) if rcond is None else rcond
    X = matmul(pinv(A, atol=0.0, rtol=rtol), Bm)
    xp = backend.array_module(a)
    s, keep = _kept_singular_values(a, 0.0, rtol, False)
    rank = keep.sum(axis=-1).astype(np.int64)
    empty = Tensor._make(xp.zeros((0,), dtype=a.dtype))
    if driver != "gelsy" and m > n and bool((rank == n).all()):
        r = matmul(A, X) - Bm
        residuals = (r * r).sum(-2)
    else:  # empty, but attached to the graph as PyTorch's is
        residuals = narrow(_reshape(X, (-1,)), 0, 0, 0)
    rank_t = Tensor._make(xp.zeros((0,), dtype=np.int64)) if driver == "gels" else \
        Tensor._make(xp.broadcast_to(rank, batch).copy())
    sv = Tensor._make(xp.broadcast_to(s, batch + s.shape[-1:]).copy()) \
        if driver in ("gelsd", "gelss") else empty
    if vector:
        X = _reshape(X, X.array.shape[:-1])
    return return_types.linalg_lstsq(X, residuals, rank_t, sv)


# ---------------------------------------------------------------------------------------------
# Norms
# ---------------------------------------------------------------------------------------------

def _check_norm_input(x, opname):
    if not isinstance(x, Tensor):
        raise TypeError(f"{opname}: expected a Tensor as input, got {type(x).__name__}")
    if x.array.dtype.kind not in "fV":
        raise RuntimeError(f"{opname}: Expected a floating point or complex tensor as input. "
                           f"Got {_tname(x.dtype)}")


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    """``(sum |x|^ord)^(1/ord)`` over ``dim`` (all dims when None); ord may be inf, -inf, 0."""
    _no_out(out, "linalg.vector_norm")
    if dtype is not None:
        x = x.to(backend.as_dtype(dtype))
    _check_norm_input(x, "linalg.vector_norm")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: Expected a number for ord, got '{ord}'")
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None
    ordf = float(ord)
    if ordf < 0 or math.isinf(ordf):
        if x.array.size == 0:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on an empty "
                               f"tensor because the operation does not have an identity")
    return _norm(x, ordf, dim, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
    """Matrix norms over the two dims ``dim``: 'fro', 'nuc', 2, -2 (largest/smallest singular
    value), 1, -1 (max/min column sum of |A|), inf, -inf (max/min row sum)."""
    _no_out(out, "linalg.matrix_norm")
    if dtype is not None:
        A = A.to(backend.as_dtype(dtype))
    _check_norm_input(A, "linalg.matrix_norm")
    nd = A.array.ndim
    if nd < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got "
                           f"{' '.join(map(str, dim)) if isinstance(dim, (tuple, list)) else dim}")
    from .ops._util import wrap_dim
    d0, d1 = wrap_dim(dim[0], nd, "linalg.matrix_norm"), wrap_dim(dim[1], nd, "linalg.matrix_norm")
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return _norm(A, 2.0, (d0, d1), keepdim)
    if ord == "nuc" or ord in (2, -2):
        if 0 in (A.array.shape[d0], A.array.shape[d1]) and ord != "nuc":
            raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have non-zero "
                               f"rows and columns for ord={ord}")
        s = svdvals(movedim(A, (d0, d1), (-2, -1)))
        r = s.sum(-1) if ord == "nuc" else (amax(s, -1) if ord == 2 else amin(s, -1))
    elif not isinstance(ord, str) and float(ord) in (1.0, -1.0, math.inf, -math.inf):
        ordf = float(ord)
        # 1: sum over rows (d0) then the max over columns; inf: the other way round
        first, second = (d0, d1) if abs(ordf) == 1 else (d1, d0)
        sums = A.abs().sum(first, keepdim=True)
        r = (amax if ordf > 0 else amin)(sums, second, keepdim=True)
        r = _reshape(r, tuple(s for i, s in enumerate(r.array.shape) if i not in (d0, d1)))
    else:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if keepdim:
        shape = list(r.array.shape)
        for d in sorted((d0, d1)):
            shape.insert(d, 1)
        r = _reshape(r, tuple(shape))
    return r


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):
    """A vector norm (``dim`` an int, or ``dim`` None with ``ord`` None or a 1-D input) or a
    matrix norm (``dim`` a 2-tuple, or ``dim`` None with a 2-D input and ``ord`` given)."""
    _no_out(out, "linalg.norm")
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None:
        dim = tuple(dim)
        if len(dim) == 1:
            return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
        if len(dim) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {list(dim)}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    nd = A.array.ndim if isinstance(A, Tensor) else 0
    if nd == 1:
        if isinstance(ord, str):
            raise RuntimeError(f"linalg.norm: ord={ord!r} requires a 2-D input; got a 1-D tensor")
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if nd == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or "
                       f"2D. Got {nd}D.")


def cond(A, p=None, *, out=None):
    """The condition number of ``A`` in norm ``p`` (None or 2: largest over smallest singular
    value; -2: the inverse; others: ``norm(A, p) * norm(inv(A), p)``)."""
    _no_out(out, "linalg.cond")
    _check(A, "linalg.cond", square=p not in (None, 2, -2))
    if p in (None, 2, -2):
        s = svdvals(A)
        big, small = amax(s, -1), amin(s, -1)
        return big / small if p != -2 else small / big
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


# ---------------------------------------------------------------------------------------------
# Products and the rest
# ---------------------------------------------------------------------------------------------

def multi_dot(tensors, *, out=None):
    """``tensors[0] @ tensors[1] @ ...``; the first may be 1-D (a row) and the last 1-D (a
    column); every other operand is 2-D."""
    _no_out(out, "linalg.multi_dot")
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        nd = t.array.ndim
        ok = nd == 2 or (nd == 1 and i in (0, len(tensors) - 1))
        if not ok:
            where_ = "the first and last tensors" if i in (0, len(tensors) - 1) else f"tensor {i}"
            raise RuntimeError(f"multi_dot(): {where_} must be 1D or 2D (2D for the middle ones) "
                               f"but got {nd}D (shape {tuple(t.shape)})")
    dt = tensors[0].array.dtype
    for t in tensors[1:]:
        if t.array.dtype != dt:
            raise RuntimeError(f"multi_dot(): all tensors must have the same dtype, got "
                               f"{', '.join(str(t.dtype) for t in tensors)}")
    out_ = tensors[0]
    for t in tensors[1:]:
        out_ = matmul(out_, t)
    return out_


def cross(input, other, *, dim=-1, out=None):
    """The cross product of 3-vectors along ``dim`` (broadcasting the other dims)."""
    _no_out(out, "linalg.cross")
    for t in (input, other):
        if not isinstance(t, Tensor):
            raise TypeError(f"linalg.cross: expected Tensors, got {type(t).__name__}")
    if input.array.ndim != other.array.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions "
                           f"(shapes {tuple(input.shape)} and {tuple(other.shape)})")
    try:
        shape = tuple(np.broadcast_shapes(input.array.shape, other.array.shape))
    except ValueError:
        raise RuntimeError(f"linalg.cross: shapes {tuple(input.shape)} and {tuple(other.shape)} "
                           f"are not broadcastable") from None
    from .ops._util import wrap_dim
    d = wrap_dim(dim, len(shape), "linalg.cross")
    if input.array.shape[d] != 3 or other.array.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{input.array.shape[d]} and {other.array.shape[d]}")
    a, b = broadcast_to(input, shape), broadcast_to(other, shape)
    # c = a[(i+1)%3] b[(i+2)%3] - a[(i+2)%3] b[(i+1)%3]
    return a.roll(-1, d) * b.roll(-2, d) - a.roll(-2, d) * b.roll(-1, d)


def vecdot(x, y, *, dim=-1, out=None):
    """``sum(x * y, dim)`` with broadcasting (real tensors: no conjugation)."""
    _no_out(out, "linalg.vecdot")
    return (x * y).sum(dim)


def matrix_power(A, n, *, out=None):
    """``A`` multiplied by itself ``n`` times (the identity for 0, powers of the inverse for
    negative ``n``), by repeated squaring."""
    _no_out(out, "linalg.matrix_power")
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.matrix_power: expected a Tensor, got {type(A).__name__}")
    a = A.array
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but got "
                           f"shape {tuple(a.shape)}")
    n = int(n)
    if n == 0:
        xp = backend.array_module(a)
        eye = xp.broadcast_to(xp.eye(a.shape[-1], dtype=a.dtype), a.shape).copy()
        return Tensor._make(eye) if not A.requires_grad else Tensor._make(eye) + A * 0
    if n < 0:
        A = inv(A)
        n = -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """``torch.linalg.diagonal``: ``torch.diagonal`` with the last two dims as defaults."""
    return _diagonal(A, offset, dim1, dim2)


def _no_out(out, opname):
    if out is not None:
        raise NotImplementedError(f"{opname}(out=...) is not supported in deepgrad; use the "
                                  f"returned tensor")


_MISSING = {
    "eig": "linalg.eigh for symmetric matrices",
    "eigvals": "linalg.eigvalsh for symmetric matrices",
    "matrix_exp": "an eigendecomposition (linalg.eigh) for symmetric matrices",
    "lu": "linalg.solve / linalg.det",
    "lu_factor": "linalg.solve",
    "lu_factor_ex": "linalg.solve",
    "lu_solve": "linalg.solve",
    "ldl_factor": "linalg.cholesky / linalg.solve",
    "ldl_factor_ex": "linalg.cholesky / linalg.solve",
    "ldl_solve": "linalg.solve",
    "householder_product": "linalg.qr",
    "tensorinv": "linalg.inv on a reshaped tensor",
    "tensorsolve": "linalg.solve on reshaped tensors",
    "vander": "powers built with deepgrad.stack",
    "solve_ex": "linalg.solve inside try/except LinAlgError",
}


def __getattr__(name):
    if name in _MISSING:
        raise NotImplementedError(f"torch.linalg.{name} is not implemented in deepgrad; use "
                                  f"{_MISSING[name]} instead")
    raise AttributeError(f"module 'deepgrad.linalg' has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# PyTorch's top-level spellings (deepgrad.det, deepgrad.inverse, ...)
# ---------------------------------------------------------------------------------------------

def _top_slogdet(input):
    sign, lad = slogdet(input)
    return return_types.slogdet(sign, lad)


def _top_pinverse(input, rcond=1e-15):
    return pinv(input, rtol=rcond)


def _top_cholesky(input, upper=False):
    return cholesky(input, upper=upper)


def _top_svd(input, some=True, compute_uv=True):
    """The older ``torch.svd``: returns ``V`` (not ``Vh``); ``some=True`` is the reduced SVD."""
    a = _check(input, "svd", square=False)
    if not compute_uv:
        xp = backend.array_module(a)
        m, n = a.shape[-2:]
        z = lambda k: Tensor._make(xp.zeros(a.shape[:-2] + (k, k), dtype=a.dtype))  # noqa: E731
        return return_types.svd(z(m), svdvals(input), z(n))
    u, s, vh = svd(input, full_matrices=not some)
    return return_types.svd(u, s, _mT(vh))


def _top_qr(input, some=True):
    q, r = qr(input, "reduced" if some else "complete")
    return return_types.qr(q, r)


def _top_cholesky_solve(B, L, upper=False):
    """Solve ``A X = B`` given the Cholesky factor of ``A``."""
    _check(L, "cholesky_solve", name="L")
    Lo = _mT(L) if upper else L
    return solve(_mT(Lo), solve(Lo, B))


def _top_cholesky_inverse(L, upper=False):
    _check(L, "cholesky_inverse", name="L")
    Lo = _mT(L) if upper else L
    Linv = inv(Lo)
    return matmul(_mT(Linv), Linv)


def _top_cross(input, other, dim=None):
    if dim is None:  # the first dimension of size 3 (PyTorch's deprecated default)
        shape = np.broadcast_shapes(input.array.shape, other.array.shape)
        dim = next((i for i, s in enumerate(shape) if s == 3), None)
        if dim is None:
            raise RuntimeError(f"cross: no dimension of size 3 in input (shapes "
                               f"{tuple(input.shape)} and {tuple(other.shape)})")
    return cross(input, other, dim=dim)


def _top_chain_matmul(*matrices):
    return multi_dot(matrices)


TOP_LEVEL = {
    "det": det, "logdet": logdet, "slogdet": _top_slogdet, "inverse": inv,
    "pinverse": _top_pinverse, "cholesky": _top_cholesky, "cholesky_solve": _top_cholesky_solve,
    "cholesky_inverse": _top_cholesky_inverse, "svd": _top_svd, "qr": _top_qr,
    "matrix_power": matrix_power, "cross": _top_cross, "chain_matmul": _top_chain_matmul,
}
for _name, _fn in TOP_LEVEL.items():
    if _fn.__name__.startswith("_top_"):
        _fn.__name__ = _name
del _name, _fn
