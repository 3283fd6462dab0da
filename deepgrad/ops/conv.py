"""Convolutions: conv1d, conv2d, conv_transpose1d/2d, and padding (zeros/reflect/replicate/circular).

All are fused ops (``array_backward = True``, first-order only) written as im2col + one GEMM:

* The input is laid out as a column matrix ``cols[(c, i, j), (n, ho, wo)]`` (``C*kh*kw`` rows,
  ``N*Ho*Wo`` columns), built by one copy of a strided view (no Python loop over positions).
* ``out[(o), (n, ho, wo)] = W[o, (c, i, j)] @ cols`` is one BLAS GEMM (batched over groups).
  The result's memory is therefore in "CNHW" order; the op returns it as the NCHW-shaped view
  ``transpose(1, 0, 2, 3)`` (no copy). A following conv/pool/elementwise op reads any strides,
  and the gradient that comes back in the same layout reshapes to ``(O, N*Ho*Wo)`` for free.
* Backward: ``dW = dY @ cols.T`` and ``dcols = W.T @ dY`` (GEMMs), then col2im adds ``dcols``
  back into the (padded) input with one strided-slice add per kernel offset (kh*kw adds).

Transposed convolution is the same pair of kernels used the other way round.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "zero_pad2d"]


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


def _as_strided(xp, a, shape, strides, writeable=False):
    if xp is np:
        return np.lib.stride_tricks.as_strided(a, shape, strides, writeable=writeable)
    return xp.lib.stride_tricks.as_strided(a, shape, strides)  # pragma: no cover - CuPy


# "Wide" im2col for stride 1 along W: the output grid keeps the padded width Wp (the last
# Wp - Wo columns of each row are garbage, dropped by a view), so that every kernel offset is a
# contiguous run of Ho*Wp elements per (channel, image) in both im2col and col2im: long inner
# loops instead of one short loop per output row. The padded input lives in a (C, N*Hp*Wp + slack)
# buffer; the slack absorbs the garbage columns' overrun past the last row.

def _wide_buffer(x, pads, kw, dw, xp):
    N, C, H, W = x.shape
    pt, pb, pl, pr = pads
    Hp, Wp = H + pt + pb, W + pl + pr
    L = N * Hp * Wp
    buf = xp.zeros((C, L + dw * (kw - 1)), dtype=x.dtype)
    buf[:, :L].reshape(C, N, Hp, Wp)[:, :, pt:pt + H, pl:pl + W] = x.transpose(1, 0, 2, 3)
    return buf


def _im2col_wide(buf, N, Hp, Wp, kh, kw, sh, dh, dw, Ho, xp):
    C, it, rs = buf.shape[0], buf.itemsize, buf.strides[0]
    v = _as_strided(xp, buf, (C, kh, kw, N, Ho, Wp), (rs, dh * Wp * it, dw * it, Hp * Wp * it, sh * Wp * it, it))
    return xp.ascontiguousarray(v).reshape(C * kh * kw, N * Ho * Wp)


def _col2im_wide(dcols, C, N, Hp, Wp, kh, kw, sh, dh, dw, Ho, xp):
    L = N * Hp * Wp
    buf = xp.zeros((C, L + dw * (kw - 1)), dtype=dcols.dtype)
    it, rs = buf.itemsize, buf.strides[0]
    d6 = dcols.reshape(C, kh, kw, N, Ho, Wp)
    # Channel blocks of about 1 MB of output, so that the kh*kw adds into a block hit the cache.
    cb = max(1, min(C, (1 << 18) // max(1, N * Hp * Wp)))
    for c0 in range(0, C, cb):
        c1 = min(C, c0 + cb)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * Wp + j * dw
                dst = _as_strided(xp, buf[c0:c1, off:], (c1 - c0, N, Ho, Wp),
                                  (rs, Hp * Wp * it, sh * Wp * it, it), True)
                dst += d6[c0:c1, i, j]
    return buf[:, :L].reshape(C, N, Hp, Wp)


def _pad_cnhw(x, pads, xp, value=0):
    """Zero-pad the last two dims of the NCHW-shaped ``x`` by ``pads = (top, bottom, left, right)``;
    the result is an NCHW-shaped view of a buffer laid out as (C, N, H, W)."""
    pt, pb, pl, pr = pads
    if not (pt or pb or pl or pr):
        return x
    N, C, H, W = x.shape
    buf = (xp.zeros if value == 0 else xp.empty)((C, N, H + pt + pb, W + pl + pr), dtype=x.dtype)
    if value != 0:
        buf.fill(value)
    buf[:, :, pt:pt + H, pl:pl + W] = x.transpose(1, 0, 2, 3)
    return buf.transpose(1, 0, 2, 3)


def _im2col(xpad, kh, kw, sh, sw, dh, dw, Ho, Wo, xp):
    """``cols[(c, i, j), (n, ho, wo)] = xpad[n, c, ho*sh + i*dh, wo*sw + j*dw]`` (one copy)."""
    N, C = xpad.shape[:2]
    sN, sC, sH, sW = xpad.strides
    v = _as_strided(xp, xpad, (C, kh, kw, N, Ho, Wo), (sC, sH * dh, sW * dw, sN, sH * sh, sW * sw))
    return xp.ascontiguousarray(v).reshape(C * kh * kw, N * Ho * Wo)


def _col2im(cols, C, N, Hp, Wp, kh, kw, sh, sw, dh, dw, Ho, Wo, xp):
    """The adjoint of ``_im2col``: a (C, N, Hp, Wp) buffer; one strided add per kernel offset."""
    d6 = cols.reshape(C, kh, kw, N, Ho, Wo)
    out = xp.zeros((C, N, Hp, Wp), dtype=cols.dtype)
    he, we = sh * (Ho - 1) + 1, sw * (Wo - 1) + 1
    disjoint = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1
    for i in range(kh):
        for j in range(kw):
            dst = out[:, :, i * dh:i * dh + he:sh, j * dw:j * dw + we:sw]
            if disjoint:
                dst[...] = d6[:, i, j]
            else:
                dst += d6[:, i, j]
    return out


def _rows_major(g, O, xp):
    """The NCHW-shaped gradient as an (O, N*H*W) matrix (free when it is laid out as CNHW)."""
    gt = g.transpose(1, 0, 2, 3)
    if not gt.flags.c_contiguous:
        gt = xp.ascontiguousarray(gt)
    return gt.reshape(O, -1)


def _check_input(opname, x, w, b, nd):
    for name, t in (("input", x), ("weight", w), ("bias", b)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{opname}: {name} must be a Tensor, got {type(t).__name__}")
        if t.dtype.kind != "f":
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


def _out_size(opname, size, k, s, d, pads):
    eff = d * (k - 1) + 1
    padded = size + pads[0] + pads[1]
    return padded, (padded - eff) // s + 1 if padded >= eff else 0


# ---------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------

class _ConvCore(Function):
    """2-d convolution on NCHW arrays; 1-d ops reshape to H = 1 around it."""

    array_backward = True

    def _fwd(self, x, w, b, stride, pads, dilation, groups):
        xp = backend.array_module(x)
        N, C, H, W = x.shape
        O, Cg, kh, kw = w.shape
        sh, sw = stride
        dh, dw = dilation
        Hp, Ho = _out_size("conv", H, kh, sh, dh, pads[:2])
        Wp, Wo = _out_size("conv", W, kw, sw, dw, pads[2:])
        wide = sw == 1 and 4 * Wp <= 5 * Wo and Ho > 0 and Wo > 0
        if wide:
            cols = _im2col_wide(_wide_buffer(x, pads, kw, dw, xp), N, Hp, Wp, kh, kw, sh, dh, dw, Ho, xp)
            Wq = Wp
        else:
            cols = _im2col(_pad_cnhw(x, pads, xp), kh, kw, sh, sw, dh, dw, Ho, Wo, xp)
            Wq = Wo
        g = groups
        K = Cg * kh * kw
        if self._record:
            self.cols = cols if self.inputs[1].requires_grad else None
            self.w = w
            self.geom = (N, C, H, W, O, Cg, kh, kw, sh, sw, dh, dw, pads, Hp, Wp, Ho, Wo, g, wide)
        if g == 1:
            # cols.T @ W.T (BLAS reads both transposed, no copy) runs faster than W @ cols for
            # these tall-skinny shapes; the output is then laid out (N, Ho, Wq, O), i.e. NHWC.
            y = cols.T @ w.reshape(O, K).T
            if b is not None:
                y += b
            y = y.reshape(N, Ho, Wq, O)
            if wide:
                y = y[:, :, :Wo]
            return y.transpose(0, 3, 1, 2)
        y = xp.matmul(w.reshape(g, O // g, K), cols.reshape(g, K, -1)).reshape(O, -1)
        if b is not None:
            y += b.reshape(O, 1)
        y = y.reshape(O, N, Ho, Wq)
        if wide:
            y = y[:, :, :, :Wo]
        return y.transpose(1, 0, 2, 3)

    def _bwd(self, gy, need_x, need_w, need_b):
        xp = backend.array_module(gy)
        N, C, H, W, O, Cg, kh, kw, sh, sw, dh, dw, pads, Hp, Wp, Ho, Wo, g, wide = self.geom
        if wide:                                    # zeros in the garbage columns
            gw = xp.zeros((O, N, Ho, Wp), dtype=gy.dtype)
            gw[:, :, :, :Wo] = gy.transpose(1, 0, 2, 3)
            gT = gw.reshape(O, -1)
        else:
            gT = _rows_major(gy, O, xp)             # (O, N*Ho*Wo)
        dx = dw_ = db = None
        K = Cg * kh * kw
        if need_b:
            db = gT.sum(axis=1)
        if need_w:
            cols = self.cols
            if g == 1:
                dw_ = (cols @ gT.T).T.reshape(O, Cg, kh, kw)   # (CK, O): the faster orientation
            else:
                dw_ = xp.matmul(gT.reshape(g, O // g, -1),
                                cols.reshape(g, K, -1).transpose(0, 2, 1)).reshape(O, Cg, kh, kw)
        if need_x:
            w = self.w
            if g == 1:
                dcols = w.reshape(O, K).T @ gT
            else:
                dcols = xp.matmul(w.reshape(g, O // g, K).transpose(0, 2, 1), gT.reshape(g, O // g, -1))
            if wide:
                buf = _col2im_wide(dcols, C, N, Hp, Wp, kh, kw, sh, dh, dw, Ho, xp)
            else:
                buf = _col2im(dcols, C, N, Hp, Wp, kh, kw, sh, sw, dh, dw, Ho, Wo, xp)
            pt, _, pl, _ = pads
            dx = buf[:, :, pt:pt + H, pl:pl + W].transpose(1, 0, 2, 3)
        self.cols = self.w = None
        return dx, dw_, db


class Conv2d(_ConvCore):
    def forward(self, x, w, *b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        self.unbatched = x.ndim == 3
        if self.unbatched:
            x = x[None]
        y = self._fwd(x, w, b[0] if b else None, stride, pads, dilation, groups)
        self.has_b = bool(b)
        return y[0] if self.unbatched else y

    def backward(self, gy):
        if self.unbatched:
            gy = gy[None]
        n = self.needs_input_grad
        dx, dw, db = self._bwd(gy, n[0], n[1], self.has_b and n[2])
        if dx is not None and self.unbatched:
            dx = dx[0]
        return (dx, dw, db) if self.has_b else (dx, dw)


class Conv1d(_ConvCore):
    def forward(self, x, w, *b, stride=(1,), pads=(0, 0), dilation=(1,), groups=1):
        self.unbatched = x.ndim == 2
        if self.unbatched:
            x = x[None]
        y = self._fwd(x[:, :, None, :], w[:, :, None, :], b[0] if b else None, (1,) + stride,
                      (0, 0) + pads, (1,) + dilation, groups)
        self.has_b = bool(b)
        y = y[:, :, 0, :]
        return y[0] if self.unbatched else y

    def backward(self, gy):
        gy = gy[None] if self.unbatched else gy
        n = self.needs_input_grad
        dx, dw, db = self._bwd(gy[:, :, None, :], n[0], n[1], self.has_b and n[2])
        if dx is not None:
            dx = dx[:, :, 0, :]
            if self.unbatched:
                dx = dx[0]
        if dw is not None:
            dw = dw[:, :, 0, :]
        return (dx, dw, db) if self.has_b else (dx, dw)


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


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation of ``input`` (N, C, H, W) with ``weight`` (O, C/groups, kh, kw)."""
    stride, pads, dilation, groups = _conv_args("conv2d", input, weight, bias, stride, padding,
                                                dilation, groups, 2)
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d.apply(*args, stride=stride, pads=pads, dilation=dilation, groups=groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation of ``input`` (N, C, L) with ``weight`` (O, C/groups, k)."""
    stride, pads, dilation, groups = _conv_args("conv1d", input, weight, bias, stride, padding,
                                                dilation, groups, 1)
    args = (input, weight) if bias is None else (input, weight, bias)
    return Conv1d.apply(*args, stride=stride, pads=pads, dilation=dilation, groups=groups)


# ---------------------------------------------------------------------------------------------
# transposed convolution (the adjoint of conv2d in its input)
# ---------------------------------------------------------------------------------------------

class _ConvTransposeCore(Function):
    array_backward = True

    def _fwd(self, x, w, b, stride, padding, output_padding, dilation, groups):
        xp = backend.array_module(x)
        N, Cin, H, W = x.shape
        _, Cog, kh, kw = w.shape
        g = groups
        Cout = Cog * g
        sh, sw = stride
        dh, dw = dilation
        ph, pw = padding
        Hf = (H - 1) * sh + dh * (kh - 1) + 1 + output_padding[0]
        Wf = (W - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]
        Hout, Wout = Hf - 2 * ph, Wf - 2 * pw
        xT = _rows_major(x, Cin, xp)                                   # (Cin, N*H*W)
        K = Cog * kh * kw
        if g == 1:
            cols = w.reshape(Cin, K).T @ xT
        else:
            cols = xp.matmul(w.reshape(g, Cin // g, K).transpose(0, 2, 1), xT.reshape(g, Cin // g, -1))
        buf = _col2im(cols, Cout, N, Hf, Wf, kh, kw, sh, sw, dh, dw, H, W, xp)
        out = buf[:, :, ph:ph + Hout, pw:pw + Wout]
        if b is not None:
            out += b.reshape(Cout, 1, 1, 1)
        if self._record:
            self.xT = xT if self.inputs[1].requires_grad else None
            self.w = w
            self.geom = (N, Cin, H, W, Cout, Cog, kh, kw, sh, sw, dh, dw, ph, pw, Hf, Wf, Hout, Wout, g)
        return out.transpose(1, 0, 2, 3)

    def _bwd(self, gy, need_x, need_w, need_b):
        xp = backend.array_module(gy)
        N, Cin, H, W, Cout, Cog, kh, kw, sh, sw, dh, dw, ph, pw, Hf, Wf, Hout, Wout, g = self.geom
        dx = dw_ = db = None
        if need_b:
            db = gy.sum(axis=(0, 2, 3))
        if need_x or need_w:
            gpad = _pad_cnhw(gy, (ph, Hf - ph - Hout, pw, Wf - pw - Wout), xp)
            gcols = _im2col(gpad, kh, kw, sh, sw, dh, dw, H, W, xp)     # (Cout*kh*kw, N*H*W)
            K = Cog * kh * kw
            if need_x:
                w = self.w
                if g == 1:
                    dxT = w.reshape(Cin, K) @ gcols
                else:
                    dxT = xp.matmul(w.reshape(g, Cin // g, K), gcols.reshape(g, K, -1)).reshape(Cin, -1)
                dx = dxT.reshape(Cin, N, H, W).transpose(1, 0, 2, 3)
            if need_w:
                xT = self.xT
                if g == 1:
                    dw_ = (xT @ gcols.T).reshape(Cin, Cog, kh, kw)
                else:
                    dw_ = xp.matmul(xT.reshape(g, Cin // g, -1),
                                    gcols.reshape(g, K, -1).transpose(0, 2, 1)).reshape(Cin, Cog, kh, kw)
        self.xT = self.w = None
        return dx, dw_, db


class ConvTranspose2d(_ConvTransposeCore):
    def forward(self, x, w, *b, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1),
                groups=1):
        self.unbatched = x.ndim == 3
        if self.unbatched:
            x = x[None]
        self.has_b = bool(b)
        y = self._fwd(x, w, b[0] if b else None, stride, padding, output_padding, dilation, groups)
        return y[0] if self.unbatched else y

    def backward(self, gy):
        if self.unbatched:
            gy = gy[None]
        n = self.needs_input_grad
        dx, dw, db = self._bwd(gy, n[0], n[1], self.has_b and n[2])
        if dx is not None and self.unbatched:
            dx = dx[0]
        return (dx, dw, db) if self.has_b else (dx, dw)


class ConvTranspose1d(_ConvTransposeCore):
    def forward(self, x, w, *b, stride=(1,), padding=(0,), output_padding=(0,), dilation=(1,), groups=1):
        self.unbatched = x.ndim == 2
        if self.unbatched:
            x = x[None]
        self.has_b = bool(b)
        y = self._fwd(x[:, :, None, :], w[:, :, None, :], b[0] if b else None, (1,) + stride, (0,) + padding,
                      (0,) + output_padding, (1,) + dilation, groups)[:, :, 0, :]
        return y[0] if self.unbatched else y

    def backward(self, gy):
        gy = gy[None] if self.unbatched else gy
        n = self.needs_input_grad
        dx, dw, db = self._bwd(gy[:, :, None, :], n[0], n[1], self.has_b and n[2])
        if dx is not None:
            dx = dx[:, :, 0, :]
            if self.unbatched:
                dx = dx[0]
        if dw is not None:
            dw = dw[:, :, 0, :]
        return (dx, dw, db) if self.has_b else (dx, dw)


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
    for n, k, s, d, p, op in zip(input.shape[-nd:], ksize, stride, dilation, padding, output_padding):
        if (n - 1) * s - 2 * p + d * (k - 1) + op + 1 <= 0:
            raise RuntimeError(f"{opname}: the output size is too small for input of size {list(input.shape)}, "
                               f"weight of size {list(weight.shape)}, padding {padding}")
    return stride, padding, output_padding, groups, dilation


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution; ``weight`` is (C_in, C_out/groups, kh, kw)."""
    stride, padding, output_padding, groups, dilation = _conv_transpose_args(
        "conv_transpose2d", input, weight, bias, stride, padding, output_padding, groups, dilation, 2)
    args = (input, weight) if bias is None else (input, weight, bias)
    return ConvTranspose2d.apply(*args, stride=stride, padding=padding, output_padding=output_padding,
                                 dilation=dilation, groups=groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-d transposed convolution; ``weight`` is (C_in, C_out/groups, k)."""
    stride, padding, output_padding, groups, dilation = _conv_transpose_args(
        "conv_transpose1d", input, weight, bias, stride, padding, output_padding, groups, dilation, 1)
    args = (input, weight) if bias is None else (input, weight, bias)
    return ConvTranspose1d.apply(*args, stride=stride, padding=padding, output_padding=output_padding,
                                 dilation=dilation, groups=groups)


# ---------------------------------------------------------------------------------------------
# padding of the trailing spatial dims (used by the Conv modules' padding_mode and ZeroPad2d)
# ---------------------------------------------------------------------------------------------

def _pad_index(n, lo, hi, mode, xp):
    """Source index of each padded position along one axis (None where it is the constant)."""
    idx = np.arange(-lo, n + hi)
    if mode == "reflect":
        period = 2 * (n - 1)
        m = np.abs(idx) % period if period else np.zeros_like(idx)
        idx = np.where(m >= n, period - m, m)
    elif mode == "replicate":
        idx = np.clip(idx, 0, n - 1)
    elif mode == "circular":
        idx = idx % n
    return idx


class Pad(Function):
    """Pad the last ``len(pads)//2`` dims; ``pads`` is in F.pad's order (last dim first)."""

    array_backward = True

    def forward(self, x, pads=(), mode="constant", value=0.0):
        xp = backend.array_module(x)
        nd = len(pads) // 2
        self.in_shape = x.shape
        self.pads, self.mode = pads, mode
        if mode == "constant":
            shape = list(x.shape)
            sl = [slice(None)] * x.ndim
            src = [slice(None)] * x.ndim
            for k in range(nd):
                ax = x.ndim - 1 - k
                lo, hi = pads[2 * k], pads[2 * k + 1]
                shape[ax] = x.shape[ax] + lo + hi
                sl[ax] = slice(max(lo, 0), max(lo, 0) + x.shape[ax] + min(lo, 0) + min(hi, 0))
                src[ax] = slice(max(-lo, 0), x.shape[ax] - max(-hi, 0))
            out = xp.full(shape, value, dtype=x.dtype) if value != 0 else xp.zeros(shape, dtype=x.dtype)
            out[tuple(sl)] = x[tuple(src)]
            self.sl, self.src = tuple(sl), tuple(src)
            return out
        self.idx = []
        for k in range(nd):
            ax = x.ndim - 1 - k
            idx = _pad_index(x.shape[ax], pads[2 * k], pads[2 * k + 1], mode, xp)
            self.idx.append((ax, idx))
            x = xp.take(x, xp.asarray(idx), axis=ax)
        return x

    def backward(self, g):
        xp = backend.array_module(g)
        if self.mode == "constant":
            out = xp.zeros(self.in_shape, dtype=g.dtype)
            out[self.src] = g[self.sl]
            return out
        for ax, idx in reversed(self.idx):
            n = self.in_shape[ax]
            onehot = np.zeros((len(idx), n), dtype=g.dtype)
            onehot[np.arange(len(idx)), idx] = 1
            gm = xp.moveaxis(g, ax, -1)
            g = xp.moveaxis(gm @ xp.asarray(onehot), -1, ax)
        return g


def _pad(input, pads, mode="constant", value=0.0, opname="pad"):
    """F.pad for the conv/pool layers: ``pads`` = (left, right[, top, bottom])."""
    pads = tuple(int(p) for p in pads)
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(f"{opname}: unknown padding mode {mode!r}")
    nd = len(pads) // 2
    if len(pads) % 2 or nd > input.ndim:
        raise RuntimeError(f"{opname}: padding {pads} does not fit an input of size {list(input.shape)}")
    for k in range(nd):
        n = input.shape[input.ndim - 1 - k]
        lo, hi = pads[2 * k], pads[2 * k + 1]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"{opname}: padding size should be less than the corresponding input dimension, "
                               f"but got padding ({lo}, {hi}) at dimension {input.ndim - 1 - k} of input "
                               f"{list(input.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError(f"{opname}: padding value causes wrapping around more than once "
                               f"(padding {pads}, input {list(input.shape)})")
        if mode != "constant" and (lo < 0 or hi < 0):
            raise RuntimeError(f"{opname}: negative padding is only supported in constant mode")
        if n + lo + hi < 0 or (mode != "constant" and n == 0):
            raise RuntimeError(f"{opname}: padding {pads} gives an empty output for input {list(input.shape)}")
    if not any(pads):
        return input
    return Pad.apply(input, pads=pads, mode=mode, value=value)


def zero_pad2d(input, padding):
    """Zero-pad the last two dims: ``padding`` is an int or (left, right, top, bottom)."""
    pads = _ntuple(padding, 4, "padding", "zero_pad2d") if not isinstance(padding, int) else (padding,) * 4
    return _pad(input, pads, "constant", 0.0, "zero_pad2d")
