"""Pooling and friends: max/avg/adaptive/Lp pooling, max-unpooling, local response and divisive
normalisation, pixel shuffle and interpolation.

Fused ops (``array_backward = True``; ``graph_backward`` for create_graph=True: a fixed linear
map of the gradient, ops/_graph.py). Window ops never loop over batch or
positions: they loop over the kh*kw kernel offsets, each step one vectorised operation on a
strided slice of the (padded) input. Max pooling keeps the winning offset of each window (a small
integer array, updated as ``max(idx, n * (v > best))``) and its backward routes the gradient
through it with one strided write per offset; when the windows tile the input (kernel == stride,
divisible sizes: LeNet-5, the MNIST CNN) those writes cover it, so the buffer is not zero-filled
(``_tiles``, switched off with ``_FAST`` in tests/test_fastpaths_conv.py).
1-d ops run the 2-d code with H = 1; unbatched inputs get a batch axis of 1.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _parallel, backend
from ..autograd.function import Function
from ..tensor import Tensor
from .conv import _from4, _ntuple, _to4
from ._graph import linear_map

__all__ = ["max_pool1d", "max_pool2d", "max_unpool1d", "max_unpool2d", "avg_pool1d", "avg_pool2d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "lp_pool1d", "lp_pool2d", "local_response_norm", "divisive_normalization", "pixel_shuffle",
           "pixel_unshuffle", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _layout(a):
    """The memory order of the 4-d array ``a``'s axes, outermost first (NCHW, CNHW for transposed
    GEMM outputs, NHWC for convolution outputs): buffers made with it keep writes contiguous."""
    return tuple(sorted(range(4), key=lambda ax: (a.shape[ax] > 1 and -a.strides[ax], ax)))


def _buffer(xp, shape, order, dtype, fill=0.0):
    mem = tuple(shape[ax] for ax in order)
    buf = xp.zeros(mem, dtype) if fill == 0 else xp.full(mem, fill, dtype)
    return buf.transpose(tuple(np.argsort(order)))


def _pad4(x, pt, pb, pl, pr, fill, xp):
    if not (pt or pb or pl or pr):
        return x
    N, C, H, W = x.shape
    buf = _buffer(xp, (N, C, H + pt + pb, W + pl + pr), _layout(x), x.dtype, fill)
    buf[:, :, pt:pt + H, pl:pl + W] = x
    return buf


def _pool_out(opname, n, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    o = (n + 2 * p - eff + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _check_pool_input(opname, x, nd):
    if not isinstance(x, Tensor):
        raise TypeError(f"{opname}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{opname}: expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input, "
                           f"but got input of size {list(x.shape)}")
    if any(s == 0 for s in x.shape[-nd - 1:]):
        raise RuntimeError(f"{opname}: expected input with non-zero channel and spatial sizes, got {list(x.shape)}")


def _pool_args(opname, x, nd, kernel_size, stride, padding, dilation, ceil_mode):
    _check_pool_input(opname, x, nd)
    k = _ntuple(kernel_size, nd, "kernel_size", opname)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else \
        _ntuple(stride, nd, "stride", opname)
    p = _ntuple(padding, nd, "padding", opname)
    d = _ntuple(dilation, nd, "dilation", opname)
    if any(v <= 0 for v in k):
        raise RuntimeError(f"{opname}: kernel_size must be greater than zero, but got {k}")
    if any(v <= 0 for v in s):
        raise RuntimeError(f"{opname}: stride must be greater than zero, but got {s}")
    if any(v <= 0 for v in d):
        raise RuntimeError(f"{opname}: dilation must be greater than zero, but got {d}")
    if any(pv < 0 or pv > kv // 2 for pv, kv in zip(p, k)):
        raise RuntimeError(f"{opname}: pad should be at most half of effective kernel size, but got "
                           f"pad={p}, kernel_size={k}")
    spatial = tuple(x.shape[-nd:])
    out = tuple(_pool_out(opname, n, kv, sv, pv, dv, ceil_mode) for n, kv, sv, pv, dv in zip(spatial, k, s, p, d))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{opname}: given input size {list(x.shape)} (spatial {spatial}), kernel_size {k}, "
                           f"stride {s}, padding {p}, dilation {d}: calculated output size {out} is too small")
    if nd == 1:
        k, s, p, d, out = (1,) + k, (1,) + s, (0,) + p, (1,) + d, (1,) + out
    return k, s, p, d, out


def _slices(i, j, k, s, d, out):
    (kh, kw), (sh, sw), (dh, dw), (Ho, Wo) = k, s, d, out
    return (slice(None), slice(None), slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw))


def _disjoint(k, s, d):
    return all(sv >= dv * (kv - 1) + 1 for kv, sv, dv in zip(k, s, d))


# Fast paths on/off (tests/test_fastpaths_conv.py compares both ways).
_FAST = True


def _tiles(k, s, d, out, pshape):
    """Whether the pooling windows tile the padded input exactly (kernel == stride, no
    dilation, ``out * kernel`` == the padded size): each element lies in exactly one window."""
    return (_FAST and tuple(k) == tuple(s) and tuple(d) == (1, 1)
            and all(o * kv == n for o, kv, n in zip(out, k, pshape[2:])))


def _by_images(part, N, work, xp):
    """``part(n0, n1)`` over all N images: on NumPy at more than one thread, images split in
    2 blocks per thread shared by deepgrad's threads (``_parallel.run_chunks``) when the pass
    has at least ``_PAR_MIN`` elements of work; else one call."""
    t = _parallel.workers_for(N) if xp is np and _FAST and work >= _PAR_MIN else 1
    if t <= 1:
        part(0, N)
        return
    step = -(-N // (2 * t))
    _parallel.run_chunks(lambda c, slot: part(*c), [(a, min(N, a + step)) for a in range(0, N, step)], t)


_PAR_MIN = 1 << 17      # elements per pass below which splitting does not pay for the hand-off


# ---------------------------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------------------------

class MaxPool(Function):
    array_backward = True

    def forward(self, x, nd=2, k=(1, 1), s=(1, 1), p=(0, 0), d=(1, 1), out=(1, 1), return_indices=False):
        xp = backend.array_module(x)
        batched = x.ndim == nd + 2
        x = _to4(x, nd, batched)
        N, C, H, W = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw), (Ho, Wo) = k, s, p, d, out
        rb = max(0, (Ho - 1) * sh + dh * (kh - 1) + 1 - H - ph)
        rr = max(0, (Wo - 1) * sw + dw * (kw - 1) + 1 - W - pw)
        xpad = _pad4(x, ph, rb, pw, rr, -np.inf, xp)
        need_idx = self._record or return_indices
        K = kh * kw
        best = xpad[_slices(0, 0, k, s, d, out)].copy(order="K")
        idx = mask = tmp = None
        if need_idx:
            idx = xp.zeros_like(best, dtype=np.uint8 if K < 256 else np.int32)
            mask = xp.empty_like(best, dtype=bool)
            tmp = xp.empty_like(idx)

        def part(n0, n1):
            b = best[n0:n1]
            for n in range(1, K):
                i, j = divmod(n, kw)
                v = xpad[_slices(i, j, k, s, d, out)][n0:n1]
                if need_idx:
                    # idx = where(v > best, n, idx), written as max(idx, n * (v > best)): every
                    # earlier offset is < n, and a masked copyto is ~10x slower than two plain ufuncs
                    ix, mk, tp = idx[n0:n1], mask[n0:n1], tmp[n0:n1]
                    xp.greater(v, b, out=mk)
                    xp.multiply(mk, ix.dtype.type(n), out=tp)
                    xp.maximum(ix, tp, out=ix)
                xp.maximum(b, v, out=b)

        _by_images(part, N, best.size * K, xp)
        if self._record:
            self.idx, self.geom = idx, (nd, batched, x.shape, xpad.shape, _layout(x), k, s, p, d, out)
            self.save_for_backward(self.inputs[0])
        y = _from4(best, nd, batched)
        if not return_indices:
            return y
        ii, jj = xp.divmod(idx.astype(np.int64), kw)
        hh = (xp.arange(Ho) * sh - ph).reshape(Ho, 1) + ii * dh
        ww = (xp.arange(Wo) * sw - pw) + jj * dw
        flat = ww if nd == 1 else hh * W + ww
        return y, _from4(flat, nd, batched)

    def backward(self, g, *_):
        xp = backend.array_module(g)
        nd, batched, xshape, pshape, order, k, s, p, d, out = self.geom
        g = _to4(g, nd, batched)
        idx = self.idx
        disjoint = _disjoint(k, s, d)
        if _tiles(k, s, d, out, pshape):
            # fast path: the windows tile the (padded) input exactly, so the per-offset writes
            # below cover every element and the buffer needs no zero fill
            mem = tuple(pshape[ax] for ax in order)
            dxp = xp.empty(mem, g.dtype).transpose(tuple(np.argsort(order)))
        else:
            dxp = _buffer(xp, pshape, order, g.dtype)
        kw = k[1]
        if disjoint:
            # one mask buffer, read as 0/1 bytes: float * uint8 is ~3x faster than float * bool;
            # a gradient in another memory order than idx (the NCHW gradient of a flatten after
            # channels-last pooling) is copied into idx's order once: mixed orders cost ~2.5x
            if _FAST and _layout(g) != _layout(idx):
                g2 = xp.empty_like(idx, dtype=g.dtype)
                xp.copyto(g2, g)
                g = g2
            mask = xp.empty_like(idx, dtype=bool)
            m8 = mask.view(np.uint8)

        def part(n0, n1):
            gi, ix = g[n0:n1], idx[n0:n1]
            for n in range(k[0] * kw):
                i, j = divmod(n, kw)
                dst = dxp[_slices(i, j, k, s, d, out)][n0:n1]
                if disjoint:
                    xp.equal(ix, n, out=mask[n0:n1])
                    xp.multiply(gi, m8[n0:n1], out=dst)
                else:
                    dst += gi * (ix == n)

        _by_images(part, g.shape[0], idx.size * k[0] * kw, xp)
        (ph, pw), (H, W) = p, xshape[2:]
        dx = dxp[:, :, ph:ph + H, pw:pw + W]
        return _from4(dx, nd, batched)

    def release(self):
        self.idx = None

    def graph_backward(self, g, *_):
        # the gradient is g scattered to each window's winner: a fixed linear map of g
        xp = backend.array_module(g.array)
        nd, batched, (N, C, H, W), _, _, k, s, p, d, (Ho, Wo) = self.geom
        ii, jj = xp.divmod(self.idx.astype(np.int64), k[1])
        hh = (xp.arange(Ho) * s[0] - p[0]).reshape(Ho, 1) + ii * d[0]
        ww = (xp.arange(Wo) * s[1] - p[1]) + jj * d[1]
        flat = hh * W + ww + (xp.arange(N * C) * (H * W)).reshape(N, C, 1, 1)
        return _index_map(g, flat, self.saved_tensors[0])


def _index_map(g, flat, x):
    """``dx[flat[i]] += g[i]`` as a differentiable linear map of ``g`` (adjoint: ``a[flat]``);
    ``x`` (the op's input) gets a zero gradient, as in PyTorch."""
    xp = backend.array_module(g.array)
    flat = flat.reshape(-1)
    xshape, yshape, size = tuple(x.shape), tuple(g.shape), x.numel()

    def scatter(a):
        return xp.bincount(flat, weights=a.reshape(-1), minlength=size).astype(a.dtype, copy=False).reshape(xshape)

    def gather(a):
        return a.reshape(-1)[flat].reshape(yshape)
    return linear_map(g, scatter, gather, x)


def _max_pool(opname, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    k, s, p, d, out = _pool_args(opname, input, nd, kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPool.apply(input, nd=nd, k=k, s=s, p=p, d=d, out=out, return_indices=bool(return_indices))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# ---------------------------------------------------------------------------------------------
# max unpooling
# ---------------------------------------------------------------------------------------------

class MaxUnpool(Function):
    array_backward = True

    def forward(self, x, indices, nd=2, out_size=(1, 1)):
        xp = backend.array_module(x)
        lead = x.shape[:-nd]
        rows = int(np.prod(lead)) if lead else 1
        plane = int(np.prod(out_size))
        idx = indices.reshape(rows, -1).astype(np.int64, copy=False)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= plane):
            bad = int(idx.max()) if int(idx.max()) >= plane else int(idx.min())
            raise RuntimeError(f"max_unpool{nd}d: found an invalid max index {bad} (output volumes are of "
                               f"size {'x'.join(map(str, out_size))})")
        out = xp.zeros((rows, plane), dtype=x.dtype)
        r = xp.arange(rows).reshape(rows, 1)
        out[r, idx] = x.reshape(rows, -1)
        self.sel, self.xshape = (r, idx), x.shape
        return out.reshape(lead + tuple(out_size))

    def backward(self, g):
        r, idx = self.sel
        rows = idx.shape[0]
        return g.reshape(rows, -1)[r, idx].reshape(self.xshape), None

    def graph_backward(self, g):
        r, idx = self.sel
        xp = backend.array_module(g.array)
        plane = g.numel() // idx.shape[0]
        flat = (idx + r * plane).reshape(-1)
        xshape, gshape = self.xshape, tuple(g.shape)

        def gather(a):
            return a.reshape(-1)[flat].reshape(xshape)

        def scatter(a):
            return xp.bincount(flat, weights=a.reshape(-1), minlength=g.numel()).astype(
                a.dtype, copy=False).reshape(gshape)
        return linear_map(g, gather, scatter), None


def _max_unpool(opname, nd, input, indices, kernel_size, stride, padding, output_size):
    _check_pool_input(opname, input, nd)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise TypeError(f"{opname}: indices must be an integer Tensor")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"{opname}: expected input and indices of the same shape, got {list(input.shape)} "
                           f"and {list(indices.shape)}")
    k = _ntuple(kernel_size, nd, "kernel_size", opname)
    s = k if stride is None else _ntuple(stride, nd, "stride", opname)
    p = _ntuple(padding, nd, "padding", opname)
    default = tuple((n - 1) * sv - 2 * pv + kv for n, sv, pv, kv in zip(input.shape[-nd:], s, p, k))
    if output_size is None:
        size = default
    else:
        size = tuple(int(v) for v in output_size)[-nd:]
        if len(size) != nd:
            raise ValueError(f"{opname}: output_size must have {nd} elements, got {tuple(output_size)}")
        for v, dv, sv in zip(size, default, s):
            if not dv - sv < v < dv + sv:
                raise ValueError(f"{opname}: invalid output_size {tuple(output_size)} (it must lie between "
                                 f"{tuple(a - b for a, b in zip(default, s))} and "
                                 f"{tuple(a + b for a, b in zip(default, s))}, exclusive)")
    return MaxUnpool.apply(input, indices, nd=nd, out_size=size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


# ---------------------------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------------------------

def _avg_divisor(n, k, s, p, o, count_include_pad, xp, dtype):
    start = np.arange(o) * s - p
    end = np.minimum(start + k, n + p)
    full = end - start
    clipped = np.minimum(end, n) - np.maximum(start, 0)
    return full if count_include_pad else clipped, clipped > 0


class AvgPool(Function):
    array_backward = True

    def forward(self, x, nd=2, k=(1, 1), s=(1, 1), p=(0, 0), out=(1, 1), count_include_pad=True,
                divisor_override=None):
        xp = backend.array_module(x)
        batched = x.ndim == nd + 2
        x = _to4(x, nd, batched)
        N, C, H, W = x.shape
        (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = k, s, p, out
        d = (1, 1)
        rb = max(0, (Ho - 1) * sh + kh - H - ph)
        rr = max(0, (Wo - 1) * sw + kw - W - pw)
        xpad = _pad4(x, ph, rb, pw, rr, 0.0, xp)
        acc = None
        for n in range(kh * kw):
            i, j = divmod(n, kw)
            v = xpad[_slices(i, j, k, s, d, out)]
            if acc is None:
                acc = v.copy(order="K")
            else:
                acc += v
        if divisor_override:
            div = float(divisor_override)
        else:
            dh_, vh = _avg_divisor(H, kh, sh, ph, Ho, count_include_pad, xp, x.dtype)
            dw_, vw = _avg_divisor(W, kw, sw, pw, Wo, count_include_pad, xp, x.dtype)
            div = (dh_[:, None] * dw_[None, :]).astype(x.dtype)
            div[div == 0] = 1
            if not (vh.all() and vw.all()):          # windows entirely in the padding give 0
                acc *= xp.asarray((vh[:, None] & vw[None, :]).astype(x.dtype))
            div = xp.asarray(div)
        acc /= div
        if self._record:
            self.cfg = dict(nd=nd, k=k, s=s, p=p, out=out, count_include_pad=count_include_pad,
                            divisor_override=divisor_override)
            self.save_for_backward(self.inputs[0])
            self.div = div
            self.geom = (nd, batched, x.shape, xpad.shape, _layout(x), k, s, p, out)
        return _from4(acc, nd, batched)

    def backward(self, g):
        xp = backend.array_module(g)
        nd, batched, xshape, pshape, order, k, s, p, out = self.geom
        g = _to4(g, nd, batched)
        gd = g / self.div
        dxp = _buffer(xp, pshape, order, g.dtype)
        d = (1, 1)
        disjoint = _disjoint(k, s, d)
        for n in range(k[0] * k[1]):
            i, j = divmod(n, k[1])
            dst = dxp[_slices(i, j, k, s, d, out)]
            if disjoint:
                dst[...] = gd
            else:
                dst += gd
        (ph, pw), (H, W) = p, xshape[2:]
        return _from4(dxp[:, :, ph:ph + H, pw:pw + W], nd, batched)

    def graph_backward(self, g):
        return _adjoint_route(self, g)


def _adjoint_route(node, g):
    """create_graph=True for a pooling op that is linear in its input: its backward is the
    adjoint of its forward, so the gradient is a ``linear_map`` of g (backward, adjoint forward)."""
    x = node.saved_tensors[0]
    cls, cfg = type(node), node.cfg

    def forward(a):
        fresh = object.__new__(cls)
        fresh._record = False
        return fresh.forward(a, **cfg)
    return linear_map(g, node.backward, forward, x)


def _avg_pool(opname, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    k, s, p, _, out = _pool_args(opname, input, nd, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and int(divisor_override) == 0:
        raise RuntimeError(f"{opname}: divisor must be not zero")
    if input.dtype.kind not in "fV":
        raise TypeError(f"{opname}: expected a floating point input, got dtype {input.dtype}")
    return AvgPool.apply(input, nd=nd, k=k, s=s, p=p, out=out, count_include_pad=bool(count_include_pad),
                         divisor_override=divisor_override)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


# ---------------------------------------------------------------------------------------------
# adaptive pooling
# ---------------------------------------------------------------------------------------------

def _adaptive_bounds(n, o):
    i = np.arange(o)
    return (i * n) // o, ((i + 1) * n + o - 1) // o


def _adaptive_matrix(n, o, dtype):
    st, en = _adaptive_bounds(n, o)
    m = np.zeros((o, n), dtype=dtype)
    cols = np.arange(n)
    inside = (cols[None, :] >= st[:, None]) & (cols[None, :] < en[:, None])
    m[inside] = 1
    return m / (en - st)[:, None].astype(dtype)


class AdaptiveAvgPool(Function):
    array_backward = True

    def forward(self, x, nd=2, out=(1, 1)):
        xp = backend.array_module(x)
        batched = x.ndim == nd + 2
        x = _to4(x, nd, batched)
        N, C, H, W = x.shape
        Ho, Wo = out
        self.geom = (nd, batched, x.shape, out)
        if self._record:
            self.cfg = dict(nd=nd, out=out)
            self.save_for_backward(self.inputs[0])
        if H % Ho == 0 and W % Wo == 0:
            self.mats = None
            y = x.reshape(N, C, Ho, H // Ho, Wo, W // Wo).mean(axis=(3, 5))
        else:
            mh = xp.asarray(_adaptive_matrix(H, Ho, x.dtype))
            mw = xp.asarray(_adaptive_matrix(W, Wo, x.dtype))
            self.mats = (mh, mw)
            y = xp.matmul(xp.matmul(mh, x), mw.T)
        return _from4(y, nd, batched)

    def backward(self, g):
        xp = backend.array_module(g)
        nd, batched, (N, C, H, W), (Ho, Wo) = self.geom
        g = _to4(g, nd, batched)
        if self.mats is None:
            kh, kw = H // Ho, W // Wo
            gd = g * (1.0 / (kh * kw))
            dx = xp.broadcast_to(gd[:, :, :, None, :, None], (N, C, Ho, kh, Wo, kw)).reshape(N, C, H, W)
        else:
            mh, mw = self.mats
            dx = xp.matmul(xp.matmul(mh.T, g), mw)
        return _from4(dx, nd, batched)

    def graph_backward(self, g):
        return _adjoint_route(self, g)


class AdaptiveMaxPool(Function):
    """Windows of varying size: gather them (padded by repeating the last index), argmax, and scatter
    the gradient back with one bincount."""

    array_backward = True

    def forward(self, x, nd=2, out=(1, 1), return_indices=False):
        xp = backend.array_module(x)
        batched = x.ndim == nd + 2
        x = _to4(x, nd, batched)
        N, C, H, W = x.shape
        Ho, Wo = out

        def windows(n, o):
            st, en = _adaptive_bounds(n, o)
            L = int((en - st).max())
            return np.minimum(st[:, None] + np.arange(L)[None, :], (en - 1)[:, None]), L

        ih, Lh = windows(H, Ho)
        iw, Lw = windows(W, Wo)
        win = x[:, :, xp.asarray(ih)[:, :, None, None], xp.asarray(iw)[None, None, :, :]]  # N,C,Ho,Lh,Wo,Lw
        win = win.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, Lh * Lw)
        a = xp.argmax(win, axis=-1)
        y = xp.take_along_axis(win, a[..., None], axis=-1)[..., 0]
        ai, aj = xp.divmod(a, Lw)
        hh = xp.asarray(ih)[xp.arange(Ho)[:, None], ai]
        ww = xp.asarray(iw)[xp.arange(Wo)[None, :], aj]
        flat = hh * W + ww
        if self._record:
            self.flat, self.geom = flat, (nd, batched, x.shape)
            self.save_for_backward(self.inputs[0])
        y = _from4(y, nd, batched)
        return (y, _from4(flat if nd == 2 else ww, nd, batched)) if return_indices else y

    def backward(self, g, *_):
        xp = backend.array_module(g)
        nd, batched, (N, C, H, W) = self.geom
        g = _to4(g, nd, batched)
        base = (xp.arange(N * C) * (H * W)).reshape(N, C, 1, 1)
        dx = xp.bincount((self.flat + base).ravel(), weights=g.ravel(), minlength=N * C * H * W)
        return _from4(dx.astype(g.dtype, copy=False).reshape(N, C, H, W), nd, batched)

    def release(self):
        self.flat = None

    def graph_backward(self, g, *_):
        xp = backend.array_module(g.array)
        _, _, (N, C, H, W) = self.geom
        return _index_map(g, self.flat + (xp.arange(N * C) * (H * W)).reshape(N, C, 1, 1),
                          self.saved_tensors[0])


def _adaptive_args(opname, input, output_size, nd):
    _check_pool_input(opname, input, nd)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise ValueError(f"{opname}: output_size must have {nd} elements, got {tuple(output_size)}")
        out = tuple(input.shape[-nd + i] if v is None else int(v) for i, v in enumerate(output_size))
    else:
        out = (int(output_size),) * nd
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{opname}: output_size must be positive, got {out}")
    return (1,) + out if nd == 1 else out


def adaptive_avg_pool2d(input, output_size):
    out = _adaptive_args("adaptive_avg_pool2d", input, output_size, 2)
    return AdaptiveAvgPool.apply(input, nd=2, out=out)


def adaptive_avg_pool1d(input, output_size):
    out = _adaptive_args("adaptive_avg_pool1d", input, output_size, 1)
    return AdaptiveAvgPool.apply(input, nd=1, out=out)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    out = _adaptive_args("adaptive_max_pool2d", input, output_size, 2)
    return AdaptiveMaxPool.apply(input, nd=2, out=out, return_indices=bool(return_indices))


def adaptive_max_pool1d(input, output_size, return_indices=False):
    out = _adaptive_args("adaptive_max_pool1d", input, output_size, 1)
    return AdaptiveMaxPool.apply(input, nd=1, out=out, return_indices=bool(return_indices))


# ---------------------------------------------------------------------------------------------
# Lp pooling (composed of avg pooling and elementwise ops, so it is differentiable as they are)
# ---------------------------------------------------------------------------------------------

def _lp_pool(opname, nd, input, norm_type, kernel_size, stride, ceil_mode):
    from .elementwise import abs as _abs, mul, pow as _pow, relu, sign
    k = _ntuple(kernel_size, nd, "kernel_size", opname)
    p = float(norm_type)
    if p == 0:
        raise RuntimeError(f"{opname}: norm_type must be non-zero")
    out = _avg_pool(opname, nd, _pow(input, p), k, stride, 0, ceil_mode, True, None)
    out = mul(mul(sign(out), relu(_abs(out))), float(math.prod(k)))
    return _pow(out, 1.0 / p)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """``(sum over each window of x**p) ** (1/p)`` (the notes' Lp pooling, PyTorch's formula)."""
    return _lp_pool("lp_pool2d", 2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool("lp_pool1d", 1, input, norm_type, kernel_size, stride, ceil_mode)


# ---------------------------------------------------------------------------------------------
# normalisation over neighbourhoods
# ---------------------------------------------------------------------------------------------

def _window_sum(a, axis, lo, hi, xp):
    """``out[i] = sum(a[i + t] for t in -lo..hi)`` along ``axis``, zeros outside (lo+hi+1 adds)."""
    n = a.shape[axis]
    out = xp.zeros_like(a)
    idx = [slice(None)] * a.ndim
    src = [slice(None)] * a.ndim
    for t in range(-lo, hi + 1):
        if abs(t) >= n:
            continue
        idx[axis] = slice(max(0, -t), min(n, n - t))
        src[axis] = slice(max(0, t), min(n, n + t))
        out[tuple(idx)] += a[tuple(src)]
    return out


class LocalResponseNorm(Function):
    """``y = x / (k + alpha/size * sum over the channel window of x**2) ** beta`` (PyTorch's LRN)."""

    array_backward = True

    def forward(self, x, size=1, alpha=1e-4, beta=0.75, k=1.0):
        xp = backend.array_module(x)
        lo, hi = size // 2, (size - 1) // 2
        s = _window_sum(x * x, 1, lo, hi, xp)
        s *= alpha / size
        s += k
        d = s ** -beta
        if self._record:
            self.keep = (x, s, d, size, alpha, beta)
            self.k = k
            self.save_for_backward(self.inputs[0])
        return x * d

    def backward(self, g):
        xp = backend.array_module(g)
        x, s, d, size, alpha, beta = self.keep
        u = g * x * d / s
        t = _window_sum(u, 1, (size - 1) // 2, size // 2, xp)
        return g * d - (2.0 * alpha * beta / size) * x * t

    def release(self):
        self.keep = None

    def graph_backward(self, g):
        """create_graph=True: differentiate LRN composed of ordinary ops (the channel window
        sum as ``size`` shifted slices of the zero-padded squares)."""
        from ._graph import reference_grads
        _, _, _, size, alpha, beta = self.keep
        lo, hi = size // 2, (size - 1) // 2

        def ref(x):
            win = _window_sum_t(x * x, 1, lo, hi)
            return x * (win * (alpha / size) + self.k) ** (-beta)
        return reference_grads(ref, self.saved_tensors, [g], self.needs_input_grad)


def _window_sum_t(a, axis, lo, hi):
    """``_window_sum`` on Tensors (differentiable): shifted slices of the zero-padded ``a``."""
    from .shape import cat
    xp = backend.array_module(a.array)
    n = a.shape[axis]

    def zeros(k):
        shape = list(a.shape)
        shape[axis] = k
        return Tensor._make(xp.zeros(shape, a.dtype))
    parts = ([zeros(lo)] if lo else []) + [a] + ([zeros(hi)] if hi else [])
    p = cat(parts, axis) if len(parts) > 1 else a
    out = None
    idx = [slice(None)] * a.ndim
    for i in range(lo + hi + 1):
        idx[axis] = slice(i, i + n)
        part = p[tuple(idx)]
        out = part if out is None else out + part
    return out


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    if not isinstance(input, Tensor):
        raise TypeError(f"local_response_norm: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 3:
        raise RuntimeError(f"local_response_norm: expected 3D or higher dimensional input (got {input.ndim} "
                           f"dimensions, size {list(input.shape)})")
    if input.shape[0] == 0 or input.shape[1] == 0:
        return input * 1
    if int(size) <= 0:
        raise RuntimeError(f"local_response_norm: size must be positive, got {size}")
    return LocalResponseNorm.apply(input, size=int(size), alpha=float(alpha), beta=float(beta), k=float(k))


class DivisiveNorm(Function):
    """``n = x / sqrt(eps + (x**2 summed over an nh x nw x nd neighbourhood))`` (centred, zero padded)."""

    array_backward = True

    def _box(self, a, transpose, xp):
        (nh, nw), depth = self.size, self.depth
        if depth is None:
            a = a.sum(axis=1, keepdims=True)
        else:
            lo, hi = depth // 2, (depth - 1) // 2
            a = _window_sum(a, 1, hi, lo, xp) if transpose else _window_sum(a, 1, lo, hi, xp)
        for ax, n in ((2, nh), (3, nw)):
            if n > 1:
                lo, hi = n // 2, (n - 1) // 2
                a = _window_sum(a, ax, hi, lo, xp) if transpose else _window_sum(a, ax, lo, hi, xp)
        return a

    def forward(self, x, size=(3, 3), depth=None, eps=1e-6):
        xp = backend.array_module(x)
        self.size, self.depth = size, depth
        s = self._box(x * x, False, xp)
        s += eps
        d = xp.sqrt(s)
        y = x / d
        if self._record:
            self.keep = (x, y, s)
            self.eps = eps
            self.save_for_backward(self.inputs[0])
        return y

    def backward(self, g):
        xp = backend.array_module(g)
        x, y, s = self.keep
        t = self._box(g * y / s, True, xp)
        return g / xp.sqrt(s) - x * t

    def release(self):
        self.keep = None

    def graph_backward(self, g):
        """create_graph=True: differentiate the composition (window sums as shifted slices)."""
        from ._graph import reference_grads
        (nh, nw), depth = self.size, self.depth

        def ref(x):
            a = x * x
            a = a.sum(1, keepdim=True) if depth is None else _window_sum_t(a, 1, depth // 2, (depth - 1) // 2)
            for ax, n in ((2, nh), (3, nw)):
                if n > 1:
                    a = _window_sum_t(a, ax, n // 2, (n - 1) // 2)
            return x / (a + self.eps).sqrt()
        return reference_grads(ref, self.saved_tensors, [g], self.needs_input_grad)


def divisive_normalization(input, size=(3, 3), depth=None, eps=1e-6):
    """Divisive normalisation of NCHW ``input`` over an ``size`` spatial x ``depth`` channel
    neighbourhood (``depth=None``: all channels), as in the lecture notes (002)."""
    if not isinstance(input, Tensor) or input.ndim != 4:
        raise RuntimeError("divisive_normalization: expected a 4D (N, C, H, W) Tensor, got "
                           f"{list(input.shape) if isinstance(input, Tensor) else type(input).__name__}")
    size = _ntuple(size, 2, "size", "divisive_normalization")
    if any(v <= 0 for v in size) or (depth is not None and int(depth) <= 0):
        raise RuntimeError(f"divisive_normalization: neighbourhood sizes must be positive, got {size}, {depth}")
    return DivisiveNorm.apply(input, size=size, depth=None if depth is None else int(depth), eps=float(eps))


# ---------------------------------------------------------------------------------------------
# pixel shuffle
# ---------------------------------------------------------------------------------------------

class PixelShuffle(Function):
    array_backward = True

    def forward(self, x, r=1, inverse=False):
        self.r, self.inverse, self.shape = r, inverse, x.shape
        return _unshuffle(x, r) if inverse else _shuffle(x, r)

    def backward(self, g):
        return _shuffle(g, self.r) if self.inverse else _unshuffle(g, self.r)

    def graph_backward(self, g):                 # a permutation: its adjoint is the inverse
        return linear_map(g, self.backward, lambda a: self.forward(a, self.r, self.inverse))


def _shuffle(x, r):
    *lead, C, H, W = x.shape
    y = x.reshape(*lead, C // (r * r), r, r, H, W)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, C // (r * r), H * r, W * r)


def _unshuffle(x, r):
    *lead, C, H, W = x.shape
    y = x.reshape(*lead, C, H // r, r, W // r, r)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, C * r * r, H // r, W // r)


def pixel_shuffle(input, upscale_factor):
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle: expected input of at least 3 dimensions, got {list(input.shape)}")
    if r <= 0 or input.shape[-3] % (r * r):
        raise RuntimeError(f"pixel_shuffle: expected the channel dimension ({input.shape[-3]}) of input "
                           f"{list(input.shape)} to be divisible by the square of upscale_factor ({r})")
    return PixelShuffle.apply(input, r=r, inverse=False)


def pixel_unshuffle(input, downscale_factor):
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle: expected input of at least 3 dimensions, got {list(input.shape)}")
    if r <= 0 or input.shape[-1] % r or input.shape[-2] % r:
        raise RuntimeError(f"pixel_unshuffle: expected height and width of input {list(input.shape)} to be "
                           f"divisible by downscale_factor ({r})")
    return PixelShuffle.apply(input, r=r, inverse=True)


# ---------------------------------------------------------------------------------------------
# interpolation: one (out x in) matrix per spatial axis, applied with matmul
# ---------------------------------------------------------------------------------------------

def _interp_matrix(n_in, n_out, mode, align_corners, scale, dtype):
    ft = np.float32 if dtype == np.float32 else np.float64
    dst = np.arange(n_out)
    m = np.zeros((n_out, n_in), dtype=np.float64)
    if mode in ("nearest", "nearest-exact"):
        sc = ft(1.0 / scale) if scale else ft(n_in) / ft(n_out)
        off = ft(0.5) if mode == "nearest-exact" else ft(0)
        src = np.minimum(np.floor((dst.astype(ft) + off) * sc).astype(np.int64), n_in - 1)
        m[dst, src] = 1
        return m.astype(dtype)
    if align_corners:
        sc = ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
        src = dst.astype(ft) * sc
    else:
        sc = ft(1.0 / scale) if scale else ft(n_in) / ft(n_out)
        src = np.maximum((dst.astype(ft) + ft(0.5)) * sc - ft(0.5), ft(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0.astype(ft)).astype(np.float64)
    np.add.at(m, (dst, i0), 1.0 - lam)
    np.add.at(m, (dst, i1), lam)
    return m.astype(dtype)


class Interpolate(Function):
    array_backward = True

    def forward(self, x, mats=()):
        xp = backend.array_module(x)
        self.mats = [(ax, xp.asarray(m)) for ax, m in mats]
        for ax, m in self.mats:
            x = xp.matmul(x, m.T) if ax == -1 else xp.matmul(m, x)
        return x

    def backward(self, g):
        xp = backend.array_module(g)
        for ax, m in reversed(self.mats):
            g = xp.matmul(g, m) if ax == -1 else xp.matmul(m.T, g)
        return g

    def graph_backward(self, g):                 # linear in x: backward and forward are adjoints
        xp = backend.array_module(g.array)

        def forward(a):
            for ax, m in self.mats:
                a = xp.matmul(a, m.T) if ax == -1 else xp.matmul(m, a)
            return a
        return linear_map(g, self.backward, forward)


_MODES = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "linear": (1,), "bilinear": (2,)}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of ``input`` (N, C, *spatial): modes nearest, nearest-exact,
    linear (3D input) and bilinear (4D input), ``align_corners`` as in PyTorch."""
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: input must be a Tensor, got {type(input).__name__}")
    nd = input.ndim - 2
    if mode == "area":
        if size is None:
            sf = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd
            size = tuple(int(math.floor(n * float(f))) for n, f in zip(input.shape[2:], sf))
        if nd == 1:
            return adaptive_avg_pool1d(input, size)
        return adaptive_avg_pool2d(input, size)
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (use one of "
                                  f"{sorted(_MODES) + ['area']})")
    if nd not in _MODES[mode]:
        raise NotImplementedError(f"interpolate: got {input.ndim}D input, but mode {mode!r} needs "
                                  f"{' or '.join(str(d + 2) for d in _MODES[mode])}D input")
    if input.dtype.kind not in "fV":
        raise TypeError(f"interpolate: expected a floating point input, got dtype {input.dtype}")
    if align_corners is not None and mode.startswith("nearest"):
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    align_corners = bool(align_corners)
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: exactly one of size or scale_factor should be defined")
    spatial = tuple(input.shape[2:])
    if size is not None:
        out = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        if len(out) != nd:
            raise ValueError(f"interpolate: size {tuple(out)} must have {nd} elements for input of size "
                             f"{list(input.shape)}")
        out = tuple(int(v) for v in out)
        scales = (None,) * nd
    else:
        sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd
        if len(sf) != nd:
            raise ValueError(f"interpolate: scale_factor {sf} must have {nd} elements")
        out = tuple(int(math.floor(float(n) * float(f))) for n, f in zip(spatial, sf))
        scales = (None,) * nd if recompute_scale_factor else tuple(float(f) for f in sf)
    if any(o <= 0 for o in out):
        raise RuntimeError(f"interpolate: output size {out} must be positive (input {list(input.shape)})")
    mats = []
    for k, (n, o, sc) in enumerate(zip(spatial, out, scales)):
        if n == o and mode.startswith("nearest") and not sc:
            continue
        ax = -1 if k == nd - 1 else -2
        mats.append((ax, _interp_matrix(n, o, mode, align_corners, sc, input.dtype)))
    if nd == 3:
        raise NotImplementedError("interpolate: 5D inputs are not supported")
    if not mats:
        return input * 1
    return Interpolate.apply(input, mats=tuple(mats))


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
