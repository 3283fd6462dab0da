"""Convolutions: conv1d, conv2d, conv_transpose1d/2d, and zero_pad2d.

All are fused ops (``array_backward = True``: a raw-array first-order backward; with
``create_graph=True`` the ``Corr`` family below, see docs/architecture.md "Second order")
written as im2col + GEMM in an NHWC ("channels last") layout, processed in chunks of images:

* The (zero-padded) input is laid out as ``(N, Hp, Wp, C)``. The im2col matrix of a chunk of
  images is then a strided *view* ``(n, Ho, Wo, kh, kw, C)`` whose inner ``kw*C`` elements are one
  contiguous run; one copy into a reused buffer of about ``_CHUNK_BYTES`` makes it the
  ``(n*Ho*Wo, kh*kw*C)`` GEMM operand while it is still in cache.
* ``y[(n, ho, wo), o] = cols @ Wm`` with ``Wm = weight`` as a ``(kh*kw*C, O)`` matrix is one BLAS
  GEMM per chunk (``matmul(..., out=)`` straight into the output, batched over groups), the bias
  added to the chunk while it is hot. The result is a C-contiguous ``(N, Ho, Wo, O)`` array; the
  op returns it as the NCHW-shaped view ``transpose(0, 3, 1, 2)`` (no copy). Elementwise ops,
  batch norm and pooling keep that layout, and the gradient that comes back in it is an
  ``(N*Ho*Wo, O)`` matrix for free.
* Backward recomputes each chunk's im2col (cheaper than keeping ``kh*kw`` copies of the input
  alive) for ``dWm += cols.T @ g``, and computes ``dcols = g @ Wm.T`` per chunk, adding it back
  into the padded input with one strided add per kernel offset (col2im).

* Per-shape algorithm (``_Geom.cf``), as cuDNN/oneDNN choose per shape: the im2col copy's speed
  is set by its innermost contiguous run, ``kw*C/g`` numbers channels-last against ``Wo``
  channels-first. When ``kw*C/g < Wo`` (first layers: LeNet conv1 5 vs 24, ResNet conv1 9 vs 32)
  the padded input keeps NCHW memory, the columns are built as a (K, rows) matrix (one
  row-of-Wo copy per (c, i, j); the GEMM reads it transposed, output still NHWC) and the input
  gradient is a channels-first col2im (one add of Wo-long rows per kernel offset) rather than
  the flipped-kernel correlation, whose GEMM would have a single output column when C = 1.
  Measured at 1 thread, load ~3.5-4 on 2 cores, fwd+bwd: LeNet conv1 (128,1,28,28)->6@5x5
  65 -> 27 ms, (32,3,32,32)->16@3x3 p1 17 -> 11 ms, (64,1,28,28)->32@3x3 25 -> 13 ms; the
  im2col copy alone 9.8 -> 1.4 ms for LeNet conv1. Wider layers keep channels-last.
* Chunks of ``_CHUNK_BYTES`` (1 MB) of columns: at 1 thread 1 MB beat 4 MB, 16 MB and the whole
  batch in one GEMM for every benchmark shape (the chunk stays in L2 between copy and GEMM).
* Fast paths (``_FAST``; each falls back to the general kernels, tests/test_fastpaths_conv.py):
  the stride-1 input gradient is the flipped-kernel correlation only when its im2col moves at
  most 3x the numbers of col2im's column gradient (``_flip_xgrad``: ResNet's C == O, not LeNet-5
  conv2's 6 -> 16); channels-last col2im with stride 1 along W computes the column gradient one
  kernel offset at a time so each offset's add moves runs of Wo*C numbers (``_offset_col2im``),
  and with a W stride adds whole (kernel row, output column) blocks of kw*C numbers when a cost
  model says that beats one add per kernel offset (``_row_col2im``); a 1x1 stride-1
  convolution's channels-last input is its own GEMM operand (``_Geom.pointwise``).

* Threads (``_Geom.run``, deepgrad/_parallel.py): at more than one BLAS thread the chunks are
  shared by deepgrad's own threads (each pulls the next chunk; OpenBLAS pinned to one thread
  meanwhile), so the im2col copies and col2im adds run in parallel and no GEMM is split by
  OpenBLAS, whose threads spin-wait for each other and stall on a machine whose cores are busy.
  The weight gradient sums its chunks' products in chunk order (the same sum at any thread count).

Transposed convolution is the same three kernels used the other way round. 1-d ops run the 2-d
code with H = 1; unbatched inputs get a batch axis of 1.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _parallel, backend
from ..autograd.function import Function
from ..tensor import Tensor
from .shape import pad

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "zero_pad2d"]

_CHUNK_BYTES = 1 << 20      # im2col buffer per chunk: about the size of one core's L2 cache

# Fast paths on/off (tests/test_fastpaths_conv.py compares both ways). Off, 1x1 convolutions
# copy their im2col like any other and every input gradient is the general col2im, one add per
# kernel offset.
_FAST = True


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _ntuple(v, n, name, opname):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = tuple(v) * n
        if len(v) != n:
            raise ValueError(f"{opname}: {name} must be an int or a tuple of {n} ints, got {tuple(v)}")
        out = tuple(int(a) for a in v)
    elif isinstance(v, numbers.Integral):
        out = (int(v),) * n
    else:
        raise TypeError(f"{opname}: {name} must be an int or a tuple of {n} ints, got {v!r}")
    return out


def _to4(a, nd, batched):
    """Lift a (batched or not) 1-d/2-d NC... array to NCHW (views only)."""
    if not batched:
        a = a[None]
    return a[:, :, None, :] if nd == 1 else a


def _from4(a, nd, batched):
    """The inverse of ``_to4``."""
    if nd == 1:
        a = a[:, :, 0, :]
    return a if batched else a[0]


def _as_strided(xp, a, shape, strides, writeable=False):
    if xp is np:
        return np.lib.stride_tricks.as_strided(a, shape, strides, writeable=writeable)
    return xp.lib.stride_tricks.as_strided(a, shape, strides)  # pragma: no cover - CuPy


def _nhwc(x, xp):
    """The NCHW-shaped ``x`` as a C-contiguous (N, H, W, C) array (free for conv outputs)."""
    return xp.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _pad_nhwc(x, pads, xp):
    """The NCHW-shaped ``x`` zero-padded by ``pads = (top, bottom, left, right)`` (negative pads
    crop) as a C-contiguous (N, Hp, Wp, C) array."""
    pt, pb, pl, pr = pads
    if not (pt or pb or pl or pr):
        return _nhwc(x, xp)
    N, C, H, W = x.shape
    buf = xp.zeros((N, H + pt + pb, W + pl + pr, C), dtype=x.dtype)
    src = x.transpose(0, 2, 3, 1)[:, max(-pt, 0):H - max(-pb, 0), max(-pl, 0):W - max(-pr, 0)]
    buf[:, max(pt, 0):max(pt, 0) + src.shape[1], max(pl, 0):max(pl, 0) + src.shape[2]] = src
    return buf


def _wmat(w, g):
    """Conv weight (O, C/g, kh, kw) as the GEMM operand (g, kh*kw*C/g, O/g) (rows ordered (i, j, c))."""
    O, Cg, kh, kw = w.shape
    return w.reshape(g, O // g, Cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(g, kh * kw * Cg, O // g)


def _wunmat(wm, shape):
    """The inverse of ``_wmat``: (g, kh*kw*Cg, Og) -> (O, Cg, kh, kw)."""
    O, Cg, kh, kw = shape
    g = wm.shape[0]
    return wm.reshape(g, kh, kw, Cg, O // g).transpose(0, 4, 3, 1, 2).reshape(shape)


class _Geom:
    """Geometry of one correlation ``(N, Hp, Wp, C) -> (N, Ho, Wo, O)``, and its chunking."""

    def __init__(self, N, Hp, Wp, C, O, k, s, d, out, g, itemsize):
        self.N, self.Hp, self.Wp, self.C, self.O = N, Hp, Wp, C, O
        self.k, self.s, self.d, (self.Ho, self.Wo), self.g = k, s, d, out, g
        self.K = k[0] * k[1] * (C // g)
        self.P = out[0] * out[1]
        nb = max(1, min(N, _CHUNK_BYTES // max(1, self.P * C * k[0] * k[1] * itemsize)))
        n = -(-N // nb)
        if _FAST and n > 1 and n % 2 and _parallel.threads() > 1:
            # an even number of chunks, so that two threads (``_parallel.run_chunks``) share
            # them evenly (at one thread the 1 MB chunks are kept: 5-10% faster than smaller)
            nb = -(-N // (n + 1))
        self.nb = nb
        # The im2col copy's speed is set by its innermost contiguous run: kw*C/g numbers in NHWC,
        # Wo in NCHW. Few channels (first layers: LeNet conv1 runs 5 vs 24) copy channels-first.
        self.cf = k[1] * (C // g) < out[1] and s[1] == 1 and d[1] == 1
        # 1x1 convolutions (ResNet-50's bottlenecks, GoogLeNet) are plain GEMMs on the input
        self.pointwise = _FAST and k == (1, 1) and s == (1, 1) and g == 1 and not self.cf

    def chunks(self):
        for n0 in range(0, self.N, self.nb):
            n1 = min(self.N, n0 + self.nb)
            yield n0, n1, n0 * self.P, n1 * self.P

    def windows(self, xpad, xp):
        """All images' windows as one strided view (N, Ho, Wo, kh, kw, g, C/g) of ``xpad``: made
        once per call, then sliced per chunk (``as_strided`` costs ~20 us, a slice ~1 us; ResNet-20
        runs ~800 chunks a step)."""
        (kh, kw), (sh, sw), (dh, dw), g = self.k, self.s, self.d, self.g
        sN, sH, sW, sC = xpad.strides
        Cg = self.C // g
        return _as_strided(xp, xpad, (xpad.shape[0], self.Ho, self.Wo, kh, kw, g, Cg),
                           (sN, sH * sh, sW * sw, sH * dh, sW * dw, Cg * sC, sC))

    def cols(self, xpad, n0, n1, buf, xp, win=None):
        """im2col of images n0:n1 into ``buf`` as a (g, rows, K) GEMM operand (rows = (n, ho, wo),
        K = (i, j, c)). ``xpad`` is (N, Hp, Wp, C)-shaped, its memory NCHW when ``self.cf``:
        then the buffer is (g, K, rows) ("channels-first" columns) and the operand its transpose.
        ``win``: ``self.windows(xpad, xp)`` when the caller has it."""
        (kh, kw), g = self.k, self.g
        Cg = self.C // g
        m = n1 - n0
        if self.pointwise and xpad.flags.c_contiguous:
            # 1x1, stride 1, one group, channels-last: the input already is the GEMM operand
            return xpad[n0:n1].reshape(1, m * self.P, self.C)
        v = (win if win is not None else self.windows(xpad, xp))[n0:n1]
        size = m * self.P * g * self.K
        if self.cf:
            b = buf[:size].reshape(g, kh, kw, Cg, m, self.Ho, self.Wo)
            xp.copyto(b.transpose(4, 5, 6, 1, 2, 0, 3), v)
            return b.reshape(g, self.K, m * self.P).transpose(0, 2, 1)
        b = buf[:size].reshape(m, self.Ho, self.Wo, g, kh, kw, Cg)
        xp.copyto(b.transpose(0, 1, 2, 4, 5, 3, 6), v)
        return b.reshape(m * self.P, g, self.K).transpose(1, 0, 2)

    def pad(self, x, pads, xp):
        """The NCHW-shaped ``x`` zero-padded by ``pads`` (negative pads crop) as the (N, Hp, Wp,
        C)-shaped input of ``cols``: NHWC memory, or NCHW memory when ``self.cf``."""
        if not self.cf:
            return _pad_nhwc(x, pads, xp)
        pt, pb, pl, pr = pads
        N, C, H, W = x.shape
        if not (pt or pb or pl or pr):
            return xp.ascontiguousarray(x).transpose(0, 2, 3, 1)
        buf = xp.zeros((N, C, H + pt + pb, W + pl + pr), dtype=x.dtype)
        src = x[:, :, max(-pt, 0):H - max(-pb, 0), max(-pl, 0):W - max(-pr, 0)]
        buf[:, :, max(pt, 0):max(pt, 0) + src.shape[2], max(pl, 0):max(pl, 0) + src.shape[3]] = src
        return buf.transpose(0, 2, 3, 1)

    def buffer(self, dtype, xp):
        return xp.empty(self.nb * self.P * self.C * self.k[0] * self.k[1], dtype=dtype)

    def threads(self, xp):
        """How many threads ``run`` shares the chunks over."""
        return _parallel.workers_for(-(-self.N // self.nb)) if xp is np else 1

    def run(self, fn, xp, dtype):
        """``fn((n0, n1, r0, r1), buf)`` for every chunk, ``buf`` a scratch of ``buffer()``'s size
        private to the thread running it: on NumPy the chunks are shared by deepgrad's threads
        (``_parallel.run_chunks``: each chunk writes its own rows, OpenBLAS at one thread
        meanwhile), on other array modules one loop."""
        chunks = list(self.chunks())
        t = self.threads(xp)
        bufs = [None] * t

        def call(c, slot):
            if bufs[slot] is None:
                bufs[slot] = self.buffer(dtype, xp)
            fn(c, bufs[slot])

        _parallel.run_chunks(call, chunks, t)


def _corr(xpad, wm, geo, bias, xp):
    """Forward correlation: (N, Hp, Wp, C) x (g, K, Og) -> C-contiguous (N, Ho, Wo, O) (+ bias)."""
    y = xp.empty((geo.N, geo.Ho, geo.Wo, geo.O), dtype=xpad.dtype)
    y2 = y.reshape(-1, geo.g, geo.O // geo.g)
    win = geo.windows(xpad, xp)

    def chunk(c, buf):
        n0, n1, r0, r1 = c
        cols = geo.cols(xpad, n0, n1, buf, xp, win)
        yc = y2[r0:r1]
        _mm(xp)(cols, wm, out=yc.transpose(1, 0, 2))
        if bias is not None:
            _add_bias(yc.reshape(r1 - r0, geo.O), bias, xp)

    geo.run(chunk, xp, xpad.dtype)
    return y


def _mm(xp):
    """The matmul of the chunk loops: on NumPy ``_parallel.gemm`` (one OpenBLAS thread, the same
    whether the chunks run on one thread or several, and under ``torch.compile``'s replay)."""
    return _parallel.gemm if xp is np else xp.matmul


def _add_bias(y2, bias, xp):
    """``y2 += bias`` on a C-contiguous (rows, O) array. With ``_FAST`` the rows are folded
    ``r`` at a time into rows of >= 256 numbers and the bias tiled ``r`` times: NumPy's inner
    loop over only O numbers (LeNet-5 conv1: 6) made the add 3-7x slower."""
    rows, O = y2.shape
    r = 1
    if _FAST and xp is np:
        while r * O < 256 and rows % (2 * r) == 0:
            r *= 2
    if r == 1:
        y2 += bias
    else:
        y2.reshape(rows // r, r * O).__iadd__(np.tile(bias, r))


def _col_sums(a2, xp):
    """Column sums of a C-contiguous (rows, O) array (a bias gradient). With ``_FAST`` one GEMV
    with a ones vector: NumPy's axis-0 reduction over a narrow array was 4-15x slower (LeNet-5
    conv1's bias gradient 2.2 -> 0.2 ms); as exact as batch norm's channel sums. Taken on every
    device (a cuBLAS GEMV on CuPy), so a device's result equals the CPU's summation order."""
    if _FAST and a2.dtype in _GEMV_DTYPES and a2.flags.c_contiguous and a2.shape[0] > 1:
        if xp is np:        # OpenBLAS's threaded GEMV stalls when a core is busy (_parallel.py)
            return _parallel.gemm(np.ones(a2.shape[0], a2.dtype), a2)
        return xp.ones(a2.shape[0], a2.dtype) @ a2
    return a2.sum(axis=0)


_GEMV_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _corr_wgrad(xpad, g2, geo, xp):
    """Weight gradient (g, K, Og) of ``_corr`` given its output gradient as (N*Ho*Wo, g, Og)."""
    dwm = xp.zeros((geo.g, geo.K, geo.O // geo.g), dtype=g2.dtype)
    win = geo.windows(xpad, xp)
    if geo.threads(xp) == 1:
        tmp = xp.empty_like(dwm)
        buf = geo.buffer(xpad.dtype, xp)
        for n0, n1, r0, r1 in geo.chunks():
            cols = geo.cols(xpad, n0, n1, buf, xp, win)
            _mm(xp)(cols.transpose(0, 2, 1), g2[r0:r1].transpose(1, 0, 2), out=tmp)
            dwm += tmp
        return dwm
    parts = {}          # chunk start -> its product, summed in chunk order: the same sum as above

    def chunk(c, buf):
        n0, n1, r0, r1 = c
        cols = geo.cols(xpad, n0, n1, buf, xp, win)
        parts[n0] = _mm(xp)(cols.transpose(0, 2, 1), g2[r0:r1].transpose(1, 0, 2))

    geo.run(chunk, xp, xpad.dtype)
    for n0 in sorted(parts):
        dwm += parts[n0]
    return dwm


def _corr_xgrad(g2, wm, geo, xp):
    """Input gradient (N, Hp, Wp, C) of ``_corr`` (col2im: one strided add per kernel offset).
    With ``geo.cf`` the columns are (g, K, rows) and dx has NCHW memory, so each add moves rows
    of Wo numbers instead of C (LeNet conv1's input gradient: 25 ms -> a few ms)."""
    (kh, kw), (sh, sw), (dh, dw) = geo.k, geo.s, geo.d
    Ho, Wo, g, Cg = geo.Ho, geo.Wo, geo.g, geo.C // geo.g
    he, we = sh * (Ho - 1) + 1, sw * (Wo - 1) + 1
    disjoint = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1
    if geo.cf:
        dx = xp.zeros((geo.N, geo.C, geo.Hp, geo.Wp), dtype=g2.dtype)

        def chunk(c, buf):
            n0, n1, r0, r1 = c
            m = n1 - n0
            dcols = buf[:(r1 - r0) * g * geo.K].reshape(g, geo.K, r1 - r0)
            _mm(xp)(wm, g2[r0:r1].transpose(1, 2, 0), out=dcols)
            d7 = dcols.reshape(g * kh, kw, Cg, m, Ho, Wo) if g == 1 else \
                dcols.reshape(g, kh, kw, Cg, m, Ho, Wo).transpose(1, 2, 0, 3, 4, 5, 6).reshape(
                    kh, kw, g * Cg, m, Ho, Wo)
            dxc = dx[n0:n1].transpose(1, 0, 2, 3)                       # (C, m, Hp, Wp)
            for i in range(kh):
                for j in range(kw):
                    dst = dxc[:, :, i * dh:i * dh + he:sh, j * dw:j * dw + we:sw]
                    if disjoint:
                        dst[...] = d7[i, j]
                    else:
                        dst += d7[i, j]

        geo.run(chunk, xp, g2.dtype)
        return dx.transpose(0, 2, 3, 1)
    dx = xp.zeros((geo.N, geo.Hp, geo.Wp, geo.C), dtype=g2.dtype)
    if _band_col2im(geo):
        # the W axis as a banded matrix: B[(wo, o), (i, w, c)] = weight[o, c, i, j] where
        # w = wo*sw + j*dw, so one GEMM (m*Ho, Wo*O) @ (Wo*O, kh*Wp*C) gives every kernel row's
        # whole padded input rows, added with kh adds of contiguous (Ho, Wp*C) blocks. Wp/kw
        # times the multiply-adds of col2im's GEMM, but a wide GEMM instead of kh*kw narrow ones
        # and no scattered adds (LeNet-5 conv2: 4.0 -> 2.5 ms)
        C, Wp, O = geo.C, geo.Wp, geo.O
        w4 = wm[0].reshape(kh, kw, C, O)
        band = xp.zeros((Wo, O, kh, Wp, C), dtype=g2.dtype)
        wo_ = xp.arange(Wo)
        for j in range(kw):
            band[wo_, :, :, wo_ * sw + j * dw, :] = w4[:, j].transpose(2, 0, 1)
        band = band.reshape(Wo * O, kh * Wp * C)

        def chunk(c, buf):
            n0, n1, r0, r1 = c
            m = n1 - n0
            d = buf[:m * Ho * kh * Wp * C].reshape(m * Ho, kh * Wp * C)
            _mm(xp)(g2[r0:r1, 0].reshape(m * Ho, Wo * O), band, out=d)
            d4 = d.reshape(m, Ho, kh, Wp * C)
            dxr = dx[n0:n1].reshape(m, geo.Hp, Wp * C)
            for i in range(kh):
                dxr[:, i * dh:i * dh + he:sh] += d4[:, :, i]

        geo.run(chunk, xp, g2.dtype)
        return dx
    if _offset_col2im(geo):
        # offset-major column gradient: one small GEMM per kernel offset writes that offset's
        # (m, Ho, Wo, C) block contiguously, so its add into dx moves runs of Wo*C numbers
        # (LeNet-5 conv2: 60, against 6 per offset or 30 per (kernel row, output column) block)
        kk, C = kh * kw, geo.C
        wk = wm[0].reshape(kk, C, geo.O).transpose(0, 2, 1)                # (kk, O, C)

        def chunk(c, buf):
            n0, n1, r0, r1 = c
            m = n1 - n0
            d = buf[:kk * (r1 - r0) * C].reshape(kk, r1 - r0, C)
            _mm(xp)(g2[r0:r1, 0][None], wk, out=d)
            d4 = d.reshape(kk, m, Ho, Wo * C)
            dxr = dx[n0:n1].reshape(m, geo.Hp, geo.Wp * C)
            for i in range(kh):
                rows = dxr[:, i * dh:i * dh + he:sh]
                for j in range(kw):
                    c0 = j * dw * C
                    rows[:, :, c0:c0 + Wo * C] += d4[i * kw + j]

        geo.run(chunk, xp, g2.dtype)
        return dx
    wmT = wm.transpose(0, 2, 1)

    def chunk(c, buf):
        n0, n1, r0, r1 = c
        m = n1 - n0
        dcols = buf[:(r1 - r0) * g * geo.K].reshape(r1 - r0, g, geo.K)
        _mm(xp)(g2[r0:r1].transpose(1, 0, 2), wmT, out=dcols.transpose(1, 0, 2))
        if _row_col2im(geo, m):
            # one add per (kernel row, output column): runs of kw*C numbers instead of C
            d5 = dcols.reshape(m, Ho, Wo, kh, kw * geo.C)
            dxr = dx[n0:n1].reshape(m, geo.Hp, geo.Wp * geo.C)
            for i in range(kh):
                rows = dxr[:, i * dh:i * dh + he:sh]
                for wo in range(Wo):
                    c0 = wo * sw * geo.C
                    rows[:, :, c0:c0 + kw * geo.C] += d5[:, :, wo, i]
            return
        d7 = dcols.reshape(m, Ho, Wo, g, kh, kw, Cg)
        dxc = dx[n0:n1].reshape(m, geo.Hp, geo.Wp, g, Cg)
        for i in range(kh):
            for j in range(kw):
                dst = dxc[:, i * dh:i * dh + he:sh, j * dw:j * dw + we:sw]
                if disjoint:
                    dst[...] = d7[:, :, :, :, i, j]
                else:
                    dst += d7[:, :, :, :, i, j]

    geo.run(chunk, xp, g2.dtype)
    return dx


# Rough costs of one NumPy add on strided views (1 thread): a call, an inner run, an element.
_CALL_S, _RUN_S = 1.5e-6, 8e-9


def _offset_col2im(geo):
    """Whether channels-last col2im should compute its column gradient offset by offset (kh*kw
    small GEMMs, each offset's block contiguous, adds of Wo*C runs): one group, stride 1 along W."""
    return _FAST and geo.g == 1 and geo.s[1] == 1


def _band_col2im(geo):
    """Whether channels-last col2im should be one GEMM with the weight as a banded (Wo*O,
    kh*Wp*C) matrix (see ``_corr_xgrad``): one group, a padded width at most 3 kernel widths
    (the band's zeros cost Wp/kw times the multiply-adds; LeNet-5 conv2: 14 / 5), and the rows'
    block no larger than the chunk buffer."""
    (kh, kw), C = geo.k, geo.C
    return (_FAST and geo.g == 1 and not geo.cf and geo.Wp <= 3 * kw
            and geo.Ho * kh * geo.Wp <= geo.P * kh * kw)


def _row_col2im(geo, m):
    """Whether channels-last col2im of ``m`` images should add one (kernel row, output column)
    block at a time (kh*Wo adds whose inner runs are kw*C numbers) rather than one kernel offset
    at a time (kh*kw adds, runs of C numbers): LeNet-5 conv2's input gradient (C = 6) 3x faster.
    Needs one group and no dilation along W (then a block's kw*C numbers are contiguous)."""
    if not _FAST or geo.g != 1 or geo.d[1] != 1:
        return False
    (kh, kw), Ho, Wo = geo.k, geo.Ho, geo.Wo
    by_col = Wo * (_CALL_S + m * Ho * _RUN_S)
    by_offset = kw * (_CALL_S + m * Ho * Wo * _RUN_S)
    return by_col < by_offset


def _flip_xgrad(geo, H, W):
    """Whether a stride-1 input gradient should be the flipped-kernel correlation (one more
    forward-shaped GEMM over an (N*H*W, kh*kw*O) im2col) rather than col2im of the (N*Ho*Wo,
    kh*kw*C) column gradient: the first moves O*H*W / (C*Ho*Wo) times as many numbers, fine for
    ResNet's C == O (ratio ~1, no scattered adds) but 5x for LeNet-5 conv2 (6 -> 16 channels)."""
    return _FAST and geo.s == (1, 1) and not geo.cf and geo.O * H * W <= 3 * geo.C * geo.Ho * geo.Wo


def _check_input(opname, x, w, b, nd):
    for name, t in (("input", x), ("weight", w), ("bias", b)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{opname}: {name} must be a Tensor, got {type(t).__name__}")
        if t.dtype.kind not in "fV":
            raise TypeError(f"{opname}: expected a floating point {name}, got dtype {t.dtype}")
    if x.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{opname}: expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input, "
                           f"but got input of size {list(x.shape)}")
    if w.ndim != nd + 2:
        raise RuntimeError(f"{opname}: expected {nd + 2}D weight, but got weight of size {list(w.shape)}")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise RuntimeError(f"{opname}: input ({x.dtype}), weight ({w.dtype})"
                           + (f" and bias ({b.dtype})" if b is not None else "")
                           + " should have the same dtype")


# ---------------------------------------------------------------------------------------------
# convolution and transposed convolution (one Function each; 1-d and unbatched lift to NCHW)
# ---------------------------------------------------------------------------------------------

class _ConvFunction(Function):
    """Lifts 1-d / unbatched arrays to NCHW around ``_fwd``/``_bwd`` (config is already 2-d)."""

    array_backward = True

    def forward(self, x, w, *b, nd=2, **cfg):
        self.nd, self.batched, self.has_b = nd, x.ndim == nd + 2, bool(b)
        if self._record:                 # for graph_backward (create_graph=True) only
            self.save_for_backward(*self.inputs)
        w4 = w[:, :, None, :] if nd == 1 else w
        y = self._fwd(_to4(x, nd, self.batched), w4, b[0] if b else None, **cfg)
        return _from4(y, nd, self.batched)

    def backward(self, gy):
        n = self.needs_input_grad
        dx, dw, db = self._bwd(_to4(gy, self.nd, self.batched), n[0], n[1], self.has_b and n[2])
        if dx is not None:
            dx = _from4(dx, self.nd, self.batched)
        if dw is not None and self.nd == 1:
            dw = dw[:, :, 0, :]
        return (dx, dw, db) if self.has_b else (dx, dw)

    def release(self):
        self.xpad = self.wm = self.x2 = None

    def graph_backward(self, gy):
        """create_graph=True: the gradients as the differentiable Functions ``Corr``,
        ``CorrInputGrad`` and ``CorrWeightGrad`` (the family closes on itself)."""
        saved = self.saved_tensors
        x, w = saved[0], saved[1]
        n = self.needs_input_grad
        x4s, w4s = _shape4(x.shape, self.nd, self.batched), _shape4(w.shape, self.nd, True)
        g4 = gy.reshape(_shape4(gy.shape, self.nd, self.batched))
        x4 = x.reshape(x4s) if n[1] else None
        w4 = w.reshape(w4s)
        dx, dw = self._graph_grads(g4, x4, w4, x4s, w4s, n[0], n[1])
        dx = dx.reshape(x.shape) if dx is not None else None
        dw = dw.reshape(w.shape) if dw is not None else None
        if not self.has_b:
            return dx, dw
        return dx, dw, (g4.sum((0, 2, 3)) if n[2] else None)


def _shape4(shape, nd, batched):
    s = tuple(shape) if batched else (1,) + tuple(shape)
    return s[:2] + (1,) + s[2:] if nd == 1 else s


# ---------------------------------------------------------------------------------------------
# create_graph=True: a correlation y = corr(x, w) with a fixed geometry ``spec`` = (stride,
# pads (top, bottom, left, right), dilation, groups, output size), and its two adjoints as three
# Functions whose backwards are written with each other. NCHW 4-d arrays; the same kernels.
# ---------------------------------------------------------------------------------------------

def _spec_geo(xshape, wshape, spec, itemsize):
    stride, (pt, pb, pl, pr), dilation, groups, out = spec
    N, C, H, W = xshape
    O, _, kh, kw = wshape
    return _Geom(N, H + pt + pb, W + pl + pr, C, O, (kh, kw), stride, dilation, out, groups, itemsize)


def _raw_corr(x, w, spec):
    xp = backend.array_module(x)
    geo = _spec_geo(x.shape, w.shape, spec, x.itemsize)
    return _corr(geo.pad(x, spec[1], xp), _wmat(w, geo.g), geo, None, xp).transpose(0, 3, 1, 2)


def _raw_corr_x(gy, w, xshape, spec):
    xp = backend.array_module(gy)
    geo = _spec_geo(xshape, w.shape, spec, gy.itemsize)
    pt, _, pl, _ = spec[1]
    H, W = xshape[2:]
    if _flip_xgrad(geo, H, W):
        # as Conv._bwd: the correlation of the padded gradient with the flipped kernel (one GEMM
        # per chunk instead of col2im's scattered adds); pads may be negative (crop)
        (kh, kw), (dh, dw), g = geo.k, geo.d, geo.g
        eh, ew = dh * (kh - 1), dw * (kw - 1)
        wf = _wmat(w, g).reshape(g, kh, kw, geo.C // g, geo.O // g)[:, ::-1, ::-1].transpose(0, 1, 2, 4, 3)
        wf = wf.reshape(g, -1, geo.C // g)
        rgeo = _Geom(geo.N, H + eh, W + ew, geo.O, geo.C, geo.k, (1, 1), geo.d, (H, W), g, gy.itemsize)
        Ho, Wo = gy.shape[2:]
        gpad = rgeo.pad(gy, (eh - pt, H + pt - Ho, ew - pl, W + pl - Wo), xp)
        return _corr(gpad, wf, rgeo, None, xp).transpose(0, 3, 1, 2)
    g2 = _nhwc(gy, xp).reshape(-1, geo.g, geo.O // geo.g)
    return _corr_xgrad(g2, _wmat(w, geo.g), geo, xp)[:, pt:pt + H, pl:pl + W].transpose(0, 3, 1, 2)


def _raw_corr_w(x, gy, wshape, spec):
    xp = backend.array_module(x)
    geo = _spec_geo(x.shape, wshape, spec, x.itemsize)
    g2 = _nhwc(gy, xp).reshape(-1, geo.g, geo.O // geo.g)
    return _wunmat(_corr_wgrad(geo.pad(x, spec[1], xp), g2, geo, xp), tuple(wshape))


class Corr(Function):
    """``y = corr(x, w)`` (differentiable to any order; used by create_graph=True routes)."""

    def forward(self, x, w, spec=None):
        self.spec = spec
        self.save_for_backward(*self.inputs)
        return _raw_corr(x, w, spec)

    def backward(self, gy):
        x, w = self.saved_tensors
        n = self.needs_input_grad
        return (CorrInputGrad.apply(gy, w, spec=self.spec, shape=tuple(x.shape)) if n[0] else None,
                CorrWeightGrad.apply(x, gy, spec=self.spec, shape=tuple(w.shape)) if n[1] else None)


class CorrInputGrad(Function):
    """``dx = corr_x^T(gy, w)``: the input gradient of ``Corr`` (a transposed convolution)."""

    def forward(self, gy, w, spec=None, shape=None):
        self.spec = spec
        self.save_for_backward(*self.inputs)
        return _raw_corr_x(gy, w, shape, spec)

    def backward(self, gdx):
        gy, w = self.saved_tensors
        n = self.needs_input_grad
        return (Corr.apply(gdx, w, spec=self.spec) if n[0] else None,
                CorrWeightGrad.apply(gdx, gy, spec=self.spec, shape=tuple(w.shape)) if n[1] else None)


class CorrWeightGrad(Function):
    """``dw = corr_w^T(x, gy)``: the weight gradient of ``Corr`` (a correlation of x with gy)."""

    def forward(self, x, gy, spec=None, shape=None):
        self.spec = spec
        self.save_for_backward(*self.inputs)
        return _raw_corr_w(x, gy, shape, spec)

    def backward(self, gdw):
        x, gy = self.saved_tensors
        n = self.needs_input_grad
        return (CorrInputGrad.apply(gy, gdw, spec=self.spec, shape=tuple(x.shape)) if n[0] else None,
                Corr.apply(x, gdw, spec=self.spec) if n[1] else None)


class Conv(_ConvFunction):
    def _fwd(self, x, w, b, stride, pads, dilation, groups):
        xp = backend.array_module(x)
        N, C, H, W = x.shape
        O, Cg, kh, kw = w.shape
        Hp, Wp = H + pads[0] + pads[1], W + pads[2] + pads[3]
        Ho = (Hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        Wo = (Wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        geo = _Geom(N, Hp, Wp, C, O, (kh, kw), stride, dilation, (Ho, Wo), groups, x.itemsize)
        xpad = geo.pad(x, pads, xp)
        wm = _wmat(w, groups)
        y = _corr(xpad, wm, geo, b, xp)
        if self._record:
            self.geo, self.pads, self.wshape = geo, pads, w.shape
            self.xpad = xpad if self.inputs[1].requires_grad else None
            self.wm = wm
        return y.transpose(0, 3, 1, 2)

    def _bwd(self, gy, need_x, need_w, need_b):
        xp = backend.array_module(gy)
        geo = self.geo
        g2 = _nhwc(gy, xp).reshape(-1, geo.g, geo.O // geo.g)
        dx = dw = db = None
        if need_b:
            db = _col_sums(g2.reshape(-1, geo.O), xp)
        if need_w:
            dw = _wunmat(_corr_wgrad(self.xpad, g2, geo, xp), self.wshape)
        if need_x:
            pt, pb, pl, pr = self.pads
            H, W = geo.Hp - pt - pb, geo.Wp - pl - pr
            (kh, kw), (dil_h, dil_w) = geo.k, geo.d
            if _flip_xgrad(geo, H, W):
                # stride 1 (channels-last): dx is the correlation of the gradient, padded by the kernel's extent
                # minus the forward padding, with the flipped kernel (channels swapped): one more
                # forward-shaped GEMM instead of col2im's kh*kw scattered adds.
                eh, ew = dil_h * (kh - 1), dil_w * (kw - 1)
                gg = geo.g
                wf = self.wm.reshape(gg, kh, kw, geo.C // gg, geo.O // gg)[:, ::-1, ::-1].transpose(0, 1, 2, 4, 3)
                wf = wf.reshape(gg, -1, geo.C // gg)
                rgeo = _Geom(geo.N, H + eh, W + ew, geo.O, geo.C, geo.k, (1, 1), geo.d, (H, W), gg, gy.itemsize)
                gpad = rgeo.pad(gy, (eh - pt, eh - pb, ew - pl, ew - pr), xp)
                dx = _corr(gpad, wf, rgeo, None, xp).transpose(0, 3, 1, 2)
            else:
                dx = _corr_xgrad(g2, self.wm, geo, xp)[:, pt:pt + H, pl:pl + W].transpose(0, 3, 1, 2)
        return dx, dw, db

    def _graph_grads(self, g4, x4, w4, x4s, w4s, need_x, need_w):
        geo = self.geo
        spec = (geo.s, self.pads, geo.d, geo.g, (geo.Ho, geo.Wo))
        dx = CorrInputGrad.apply(g4, w4, spec=spec, shape=x4s) if need_x else None
        dw = CorrWeightGrad.apply(x4, g4, spec=spec, shape=w4s) if need_w else None
        return dx, dw


class ConvTranspose(_ConvFunction):
    """The adjoint of ``Conv`` in its input: forward is Conv's input gradient, backward runs
    Conv's forward (input gradient) and weight gradient on the padded output gradient."""

    def _fwd(self, x, w, b, stride, padding, output_padding, dilation, groups):
        xp = backend.array_module(x)
        N, Cin, H, W = x.shape
        _, Cog, kh, kw = w.shape
        (sh, sw), (dh, dw), (ph, pw) = stride, dilation, padding
        Hf = (H - 1) * sh + dh * (kh - 1) + 1 + output_padding[0]
        Wf = (W - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]
        Hout, Wout = Hf - 2 * ph, Wf - 2 * pw
        # the conv whose input gradient this is: (N, Hf, Wf, Cout) -> (N, H, W, Cin), weight w
        geo = _Geom(N, Hf, Wf, Cog * groups, Cin, (kh, kw), stride, dilation, (H, W), groups, x.itemsize)
        x2 = _nhwc(x, xp).reshape(-1, groups, Cin // groups)
        wm = _wmat(w, groups)
        out = _corr_xgrad(x2, wm, geo, xp)[:, ph:ph + Hout, pw:pw + Wout]
        if b is not None:
            out += b
        if self._record:
            self.geo, self.crop = geo, (ph, Hf - ph - Hout, pw, Wf - pw - Wout)
            self.x2 = x2 if self.inputs[1].requires_grad else None
            self.wm, self.wshape = wm, w.shape
        return out.transpose(0, 3, 1, 2)

    def _bwd(self, gy, need_x, need_w, need_b):
        xp = backend.array_module(gy)
        geo = self.geo
        dx = dw = db = None
        if need_b:
            db = gy.sum(axis=(0, 2, 3))
        if need_x or need_w:
            gpad = geo.pad(gy, self.crop, xp)                       # (N, Hf, Wf, Cout)
            if need_x:
                dx = _corr(gpad, self.wm, geo, None, xp).transpose(0, 3, 1, 2)
            if need_w:
                dw = _wunmat(_corr_wgrad(gpad, self.x2, geo, xp), self.wshape)
        return dx, dw, db

    def _graph_grads(self, g4, x4, w4, x4s, w4s, need_x, need_w):
        # y = CorrInputGrad(x, w) of the correlation z (N, Cout, Hout, Wout) -> x's shape whose
        # padding is the transposed convolution's crop
        geo = self.geo
        spec = (geo.s, self.crop, geo.d, geo.g, (geo.Ho, geo.Wo))
        dx = Corr.apply(g4, w4, spec=spec) if need_x else None
        dw = CorrWeightGrad.apply(g4, x4, spec=spec, shape=w4s) if need_w else None
        return dx, dw


# ---------------------------------------------------------------------------------------------
# create_graph=True for Conv: its first-order backward as one Function (``ConvGrad``), like the
# norms' NormGrad. Forward *is* the Conv node's raw backward (the padded input and weight matrix
# its forward kept: nothing padded again); backward is the second derivative on raw arrays, with
# A, Bw, Bb the cotangents of dx, dw, db: ``x: corr_x^T(gy, Bw)``, ``w: corr_w(A, gy)``, ``gy:
# corr(A, w) + corr(x, Bw) + Bb`` (A padded once for its two kernels, the two correlations
# summed in place: one node instead of CorrInputGrad + CorrWeightGrad + the engine's Tensor
# sums). Third and higher orders (``graph_backward``) are the same formulas as the ``Corr``
# family above. ``_FUSED_GRAD = False`` takes the Corr route from the first order on.
# ---------------------------------------------------------------------------------------------

_FUSED_GRAD = True


def _corr_pair(apad, wm, g2, geo, bias, xp):
    """``(_corr(apad, wm, geo, bias), _corr_wgrad(apad, g2, geo))`` in one chunk loop: each
    chunk's im2col of ``apad`` serves both GEMMs (the same GEMMs, in the same order, as the two
    kernels: the same numbers). ResNet-20's im2col copies are ~1/3 of a 3x3 kernel's time."""
    y = xp.empty((geo.N, geo.Ho, geo.Wo, geo.O), dtype=apad.dtype)
    y2 = y.reshape(-1, geo.g, geo.O // geo.g)
    dwm = xp.zeros((geo.g, geo.K, geo.O // geo.g), dtype=g2.dtype)
    tmp = xp.empty_like(dwm)
    buf = geo.buffer(apad.dtype, xp)
    win = geo.windows(apad, xp)
    for n0, n1, r0, r1 in geo.chunks():
        cols = geo.cols(apad, n0, n1, buf, xp, win)
        yc = y2[r0:r1]
        xp.matmul(cols, wm, out=yc.transpose(1, 0, 2))
        if bias is not None:
            _add_bias(yc.reshape(r1 - r0, geo.O), bias, xp)
        xp.matmul(cols.transpose(0, 2, 1), g2[r0:r1].transpose(1, 0, 2), out=tmp)
        dwm += tmp
    return y, dwm


class ConvGrad(Function):
    """``(dx, dw, db)`` (those the Conv node ``src`` was asked for) of ``src`` given its output
    gradient: inputs ``(x, w, gy)``."""

    array_backward = True

    def forward(self, x, w, gy, src=None):
        grads = src.backward(gy)
        self.outs = [i for i, a in enumerate(grads) if a is not None]
        if self._record:
            self.save_for_backward(*self.inputs)
            self.nd, self.batched = src.nd, src.batched
            self.geo, self.pads, self.xpad, self.wm = src.geo, src.pads, src.xpad, src.wm
            self.g, self.xshape, self.wshape = gy, x.shape, w.shape
        out = tuple(grads[i] for i in self.outs)
        return out if len(out) != 1 else out[0]

    def release(self):
        self.xpad = self.wm = self.g = None

    def _cotangents(self, grads):
        full = [None, None, None]
        for i, gr in zip(self.outs, grads):
            full[i] = gr
        return full

    def _spec(self):
        geo = self.geo
        return (geo.s, self.pads, geo.d, geo.g, (geo.Ho, geo.Wo))

    def backward(self, *grads):
        A, Bw, Bb = self._cotangents(grads)
        need_x, need_w, need_g = self.needs_input_grad
        geo, nd, bt = self.geo, self.nd, self.batched
        xp = backend.array_module(self.g)
        g4 = _to4(self.g, nd, bt)
        A4 = _to4(A, nd, bt) if A is not None else None
        B4 = (Bw[:, :, None, :] if nd == 1 else Bw) if Bw is not None else None
        gx = gw = gg = None
        if need_x and B4 is not None:
            gx = _from4(_raw_corr_x(g4, B4, _shape4(self.xshape, nd, bt), self._spec()), nd, bt)
        apad = geo.pad(A4, self.pads, xp) if A4 is not None and (need_w or need_g) else None
        y = dwm = None
        if need_w and apad is not None:
            g2 = _nhwc(g4, xp).reshape(-1, geo.g, geo.O // geo.g)
            if need_g:          # corr(A, w) and corr_w(A, gy) on one im2col of A
                y, dwm = _corr_pair(apad, self.wm, g2, geo, Bb, xp)
            else:
                dwm = _corr_wgrad(apad, g2, geo, xp)
            gw = _wunmat(dwm, _shape4(self.wshape, nd, True))
            gw = gw[:, :, 0, :] if nd == 1 else gw
        if need_g:
            if apad is not None and y is None:
                y = _corr(apad, self.wm, geo, Bb, xp)
            if B4 is not None:
                yb = _corr(self.xpad, _wmat(B4, geo.g), geo, Bb if y is None else None, xp)
                if y is None:
                    y = yb
                else:
                    y += yb
            if y is None and Bb is not None:
                y = xp.zeros((geo.N, geo.Ho, geo.Wo, geo.O), dtype=Bb.dtype)
                _add_bias(y.reshape(-1, geo.O), Bb, xp)
            if y is not None:
                gg = _from4(y.transpose(0, 3, 1, 2), nd, bt)
        return gx, gw, gg

    def graph_backward(self, *grads):
        """Third and higher orders: the same formulas with the ``Corr`` family."""
        A, Bw, Bb = self._cotangents(grads)
        need_x, need_w, need_g = self.needs_input_grad
        x, w, gy = self.saved_tensors
        nd, bt, spec = self.nd, self.batched, self._spec()
        x4s, w4s = _shape4(x.shape, nd, bt), _shape4(w.shape, nd, True)
        g4 = gy.reshape(_shape4(gy.shape, nd, bt))
        A4 = A.reshape(x4s) if A is not None else None
        B4 = Bw.reshape(w4s) if Bw is not None else None
        gx = gw = gg = None
        if need_x and B4 is not None:
            gx = CorrInputGrad.apply(g4, B4, spec=spec, shape=x4s).reshape(x.shape)
        if need_w and A4 is not None:
            gw = CorrWeightGrad.apply(A4, g4, spec=spec, shape=w4s).reshape(w.shape)
        if need_g:
            if A4 is not None:
                gg = Corr.apply(A4, w.reshape(w4s), spec=spec)
            if B4 is not None:
                t = Corr.apply(x.reshape(x4s), B4, spec=spec)
                gg = t if gg is None else gg + t
            if Bb is not None:
                t = Bb.reshape((1, -1, 1, 1))
                gg = t.expand(*g4.shape) if gg is None else gg + t
            gg = gg.reshape(gy.shape) if gg is not None else None
        return gx, gw, gg


def _conv_graph_backward(self, gy):
    """create_graph=True for Conv: ``ConvGrad`` (x, w, gy) -> the gradients asked for."""
    if not _FUSED_GRAD or self.wm is None:
        return _ConvFunction.graph_backward(self, gy)
    saved = self.saved_tensors
    outs = ConvGrad.apply(saved[0], saved[1], gy, src=self)
    outs = outs if isinstance(outs, tuple) else (outs,)
    it = iter(outs)
    return tuple(next(it) if need else None for need in self.needs_input_grad)


# assigned here rather than edited into Conv (whose first-order kernels other work touches)
Conv.graph_backward = _conv_graph_backward


def _conv_args(opname, input, weight, bias, stride, padding, dilation, groups, nd):
    _check_input(opname, input, weight, bias, nd)
    stride = _ntuple(stride, nd, "stride", opname)
    dilation = _ntuple(dilation, nd, "dilation", opname)
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{opname}: non-positive stride is not supported (got {stride})")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"{opname}: dilation should be greater than zero (got {dilation})")
    groups = int(groups)
    if groups <= 0:
        raise RuntimeError(f"{opname}: non-positive groups is not supported (got {groups})")
    ksize = tuple(weight.shape[2:])
    if any(k <= 0 for k in ksize):
        raise RuntimeError(f"{opname}: kernel size should be greater than zero, but got weight of size "
                           f"{list(weight.shape)}")
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0,) * (2 * nd)
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError(f"{opname}: padding='same' is not supported for strided convolutions")
            pads = ()
            for k, d in zip(ksize, dilation):
                total = d * (k - 1)
                pads += (total // 2, total - total // 2)
        else:
            raise ValueError(f"{opname}: invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    else:
        p = _ntuple(padding, nd, "padding", opname)
        if any(v < 0 for v in p):
            raise RuntimeError(f"{opname}: negative padding is not supported (got {p})")
        pads = tuple(v for a in p for v in (a, a))
    C = input.shape[-nd - 1]
    O, Cg = weight.shape[:2]
    xs = list(input.shape)
    if O % groups:
        raise RuntimeError(f"{opname}: out_channels ({O}, weight of size {list(weight.shape)}) must be "
                           f"divisible by groups ({groups})")
    if Cg * groups != C:
        raise RuntimeError(f"{opname}: given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input{xs} to have {Cg * groups} channels, but got {C} channels instead")
    if bias is not None and tuple(bias.shape) != (O,):
        raise RuntimeError(f"{opname}: given weight of size {list(weight.shape)}, expected bias to be 1-dimensional "
                           f"with {O} elements, but got bias of size {list(bias.shape)} instead")
    spatial = input.shape[-nd:]
    padded = tuple(s + pads[2 * i] + pads[2 * i + 1] for i, s in enumerate(spatial))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(ksize, dilation))
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(f"{opname}: calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                           f"Kernel size: ({' x '.join(map(str, eff))}). Kernel size can't be greater than "
                           f"actual input size (input of size {xs}, weight of size {list(weight.shape)})")
    return stride, pads, dilation, groups



def _conv(opname, nd, input, weight, bias, stride, padding, dilation, groups):
    stride, pads, dilation, groups = _conv_args(opname, input, weight, bias, stride, padding,
                                                dilation, groups, nd)
    if nd == 1:
        stride, dilation, pads = (1,) + stride, (1,) + dilation, (0, 0) + pads
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv.apply(*args, nd=nd, stride=stride, pads=pads, dilation=dilation, groups=groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation of ``input`` (N, C, H, W) with ``weight`` (O, C/groups, kh, kw)."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation of ``input`` (N, C, L) with ``weight`` (O, C/groups, k)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose_args(opname, input, weight, bias, stride, padding, output_padding, groups, dilation,
                         nd):
    _check_input(opname, input, weight, bias, nd)
    stride = _ntuple(stride, nd, "stride", opname)
    dilation = _ntuple(dilation, nd, "dilation", opname)
    if isinstance(padding, str):
        raise RuntimeError(f"{opname}: padding must be an int or a tuple of ints, got {padding!r}")
    padding = _ntuple(padding, nd, "padding", opname)
    output_padding = _ntuple(output_padding, nd, "output_padding", opname)
    groups = int(groups)
    if any(s <= 0 for s in stride) or any(d <= 0 for d in dilation) or groups <= 0:
        raise RuntimeError(f"{opname}: stride, dilation and groups must be positive "
                           f"(got {stride}, {dilation}, {groups})")
    if any(p < 0 for p in padding) or any(p < 0 for p in output_padding):
        raise RuntimeError(f"{opname}: negative padding is not supported (got {padding}, {output_padding})")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise RuntimeError(f"{opname}: output padding must be smaller than either stride or dilation, "
                               f"but got output_padding={output_padding}, stride={stride}, dilation={dilation}")
    Cin = input.shape[-nd - 1]
    if weight.shape[0] != Cin:
        raise RuntimeError(f"{opname}: given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(input.shape)} to have {weight.shape[0]} channels, but got {Cin} "
                           f"channels instead")
    if Cin % groups:
        raise RuntimeError(f"{opname}: in_channels ({Cin}) must be divisible by groups ({groups})")
    Cout = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (Cout,):
        raise RuntimeError(f"{opname}: expected bias of size [{Cout}], but got bias of size {list(bias.shape)}")
    ksize = tuple(weight.shape[2:])
    if any(k <= 0 for k in ksize):
        raise RuntimeError(f"{opname}: kernel size should be greater than zero, but got weight of size "
                           f"{list(weight.shape)}")
    for n, k, s, d, p, op in zip(input.shape[-nd:], ksize, stride, dilation, padding, output_padding):
        if (n - 1) * s - 2 * p + d * (k - 1) + op + 1 <= 0:
            raise RuntimeError(f"{opname}: the output size is too small for input of size {list(input.shape)}, "
                               f"weight of size {list(weight.shape)}, padding {padding}")
    return stride, padding, output_padding, groups, dilation



def _conv_transpose(opname, nd, input, weight, bias, stride, padding, output_padding, groups, dilation):
    stride, padding, output_padding, groups, dilation = _conv_transpose_args(
        opname, input, weight, bias, stride, padding, output_padding, groups, dilation, nd)
    if nd == 1:
        stride, padding, output_padding, dilation = ((1,) + stride, (0,) + padding, (0,) + output_padding,
                                                     (1,) + dilation)
    args = (input, weight) if bias is None else (input, weight, bias)
    return ConvTranspose.apply(*args, nd=nd, stride=stride, padding=padding, output_padding=output_padding,
                               dilation=dilation, groups=groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution; ``weight`` is (C_in, C_out/groups, kh, kw)."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-d transposed convolution; ``weight`` is (C_in, C_out/groups, k)."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def zero_pad2d(input, padding):
    """Zero-pad the last two dims: ``padding`` is an int or (left, right, top, bottom)."""
    pads = _ntuple(padding, 4, "padding", "zero_pad2d") if not isinstance(padding, int) else (padding,) * 4
    return pad(input, pads, "constant", 0.0)
