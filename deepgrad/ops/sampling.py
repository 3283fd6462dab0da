"""Sliding blocks and spatial sampling: ``unfold``/``fold`` (im2col and its adjoint col2im),
``affine_grid`` and ``grid_sample`` (the spatial transformer of Jaderberg et al.).

* ``Unfold`` copies the ``kh*kw`` shifted, strided views of the zero-padded input into a
  ``(N, C, kh, kw, oh, ow)`` array (one strided copy per kernel offset) and returns it as
  ``(N, C*kh*kw, oh*ow)``, PyTorch's layout. ``Fold`` adds those views back into a zero-padded
  image. The two are linear and each other's adjoint, so each one's backward is the other one:
  gradients of any order come for free.
* ``affine_grid`` is composed of differentiable ops (a fixed base grid times ``theta``), so it is
  twice differentiable in ``theta``.
* ``GridSample`` is a fused op (first-order, like PyTorch's): the sampling positions are
  unnormalised from [-1, 1], mapped into the image by the padding mode (``border`` clips,
  ``reflection`` folds back and forth), then read with bilinear (trilinear for 5-D input)
  weights from the 2 x 2 (x 2) pixels around each position, or the nearest pixel, or (2-D only)
  the 4 x 4 pixels of the cubic convolution kernel, each tap padded on its own, all from a copy
  of the image with a border of zeros. Backward scatters the output gradient into the taps (one
  ``bincount`` for all of them) and differentiates the tap weights for the grid.
"""
from __future__ import annotations

import itertools
import numbers

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..tensor import Tensor

__all__ = ["unfold", "fold", "affine_grid", "grid_sample"]


# ---------------------------------------------------------------------------------------------
# unfold / fold
# ---------------------------------------------------------------------------------------------

def _pair_arg(v, name, opname):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = tuple(v) * 2
        if len(v) != 2 or not all(isinstance(a, numbers.Integral) for a in v):
            raise ValueError(f"{opname}: {name} must be an int or a tuple of 2 ints, got {tuple(v)}")
        return int(v[0]), int(v[1])
    if isinstance(v, numbers.Integral):
        return int(v), int(v)
    raise TypeError(f"{opname}: {name} must be an int or a tuple of 2 ints, got {v!r}")


def _block_args(opname, kernel_size, dilation, padding, stride):
    k = _pair_arg(kernel_size, "kernel_size", opname)
    d = _pair_arg(dilation, "dilation", opname)
    p = _pair_arg(padding, "padding", opname)
    s = _pair_arg(stride, "stride", opname)
    if min(k) <= 0:
        raise RuntimeError(f"{opname}: kernel size should be greater than zero, but got kernel_height: {k[0]} "
                           f"kernel_width: {k[1]}")
    if min(d) <= 0:
        raise RuntimeError(f"{opname}: dilation should be greater than zero, but got dilation_height: {d[0]} "
                           f"dilation_width: {d[1]}")
    if min(p) < 0:
        raise RuntimeError(f"{opname}: padding should be non-negative, but got pad_height: {p[0]} "
                           f"pad_width: {p[1]}")
    if min(s) <= 0:
        raise RuntimeError(f"{opname}: stride should be greater than zero, but got stride_height: {s[0]} "
                           f"stride_width: {s[1]}")
    return k, d, p, s


def _blocks(size, k, d, p, s):
    """Number of sliding blocks along each spatial dimension."""
    return tuple((size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))


def _offsets(k, d, s, out):
    """For each kernel offset (i, j): the slices of the padded image that it reads."""
    for i in range(k[0]):
        for j in range(k[1]):
            yield i, j, (slice(i * d[0], i * d[0] + s[0] * (out[0] - 1) + 1, s[0]),
                         slice(j * d[1], j * d[1] + s[1] * (out[1] - 1) + 1, s[1]))


class Unfold(Function):
    """(N, C, H, W) -> (N, C*kh*kw, L): every block of the zero-padded input as a column."""

    def forward(self, x, k=(1, 1), d=(1, 1), p=(0, 0), s=(1, 1)):
        self.cfg = (k, d, p, s)
        self.size = x.shape[2:]
        xp = backend.array_module(x)
        N, C, H, W = x.shape
        out = _blocks((H, W), k, d, p, s)
        if p[0] or p[1]:
            xpad = xp.zeros((N, C, H + 2 * p[0], W + 2 * p[1]), dtype=x.dtype)
            xpad[:, :, p[0]:p[0] + H, p[1]:p[1] + W] = x
        else:
            xpad = x
        cols = xp.empty((N, C, k[0], k[1], out[0], out[1]), dtype=x.dtype)
        for i, j, (sh, sw) in _offsets(k, d, s, out):
            cols[:, :, i, j] = xpad[:, :, sh, sw]
        return cols.reshape(N, C * k[0] * k[1], out[0] * out[1])

    def backward(self, g):
        k, d, p, s = self.cfg
        return Fold.apply(g, size=self.size, k=k, d=d, p=p, s=s)


class Fold(Function):
    """(N, C*kh*kw, L) -> (N, C, H, W): the columns summed back into their blocks (col2im)."""

    def forward(self, cols, size=(1, 1), k=(1, 1), d=(1, 1), p=(0, 0), s=(1, 1)):
        self.cfg = (k, d, p, s)
        xp = backend.array_module(cols)
        N, CK, _ = cols.shape
        C = CK // (k[0] * k[1])
        out = _blocks(size, k, d, p, s)
        H, W = size
        buf = xp.zeros((N, C, H + 2 * p[0], W + 2 * p[1]), dtype=cols.dtype)
        c6 = cols.reshape(N, C, k[0], k[1], out[0], out[1])
        for i, j, (sh, sw) in _offsets(k, d, s, out):
            buf[:, :, sh, sw] += c6[:, :, i, j]
        return xp.ascontiguousarray(buf[:, :, p[0]:p[0] + H, p[1]:p[1] + W])

    def backward(self, g):
        k, d, p, s = self.cfg
        return Unfold.apply(g, k=k, d=d, p=p, s=s)


def _check_tensor(x, opname, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{opname}(): argument '{name}' must be Tensor, not {type(x).__name__}")


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's ``F.unfold`` (im2col): (N, C, H, W) or (C, H, W) -> (N, C*prod(kernel_size), L)."""
    opname = "unfold"
    _check_tensor(input, opname)
    k, d, p, s = _block_args(opname, kernel_size, dilation, padding, stride)
    if input.ndim not in (3, 4) or any(n == 0 for n in input.shape[-3:]):
        raise RuntimeError(f"{opname}: expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other "
                           f"non-zero dimensions for input, but got: {list(input.shape)}")
    batched = input.ndim == 4
    x = input if batched else input.unsqueeze(0)
    out = _blocks(tuple(x.shape[2:]), k, d, p, s)
    if min(out) < 1:
        raise RuntimeError(f"{opname}: given input with spatial size {tuple(x.shape[2:])}, kernel_size={k}, "
                           f"dilation={d}, padding={p}, calculated shape of the array of sliding blocks as "
                           f"{out}, but its components must be at least one.")
    y = Unfold.apply(x, k=k, d=d, p=p, s=s)
    return y if batched else y.squeeze(0)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's ``F.fold`` (col2im, the adjoint of ``unfold``): (N, C*prod(kernel_size), L) or
    (C*prod(kernel_size), L) -> (N, C, *output_size), overlapping values summed."""
    opname = "fold"
    _check_tensor(input, opname)
    size = _pair_arg(output_size, "output_size", opname)
    k, d, p, s = _block_args(opname, kernel_size, dilation, padding, stride)
    if input.ndim not in (2, 3) or any(n == 0 for n in input.shape[-2:]):
        raise RuntimeError(f"{opname}: expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size "
                           f"and non-zero dimensions for input, but got: {list(input.shape)}")
    batched = input.ndim == 3
    x = input if batched else input.unsqueeze(0)
    kk = k[0] * k[1]
    if x.shape[1] % kk:
        raise RuntimeError(f"{opname}: expected size of input's dimension 1 to be divisible by the product of "
                           f"kernel_size, but got input.size(1)={x.shape[1]} and kernel_size={k}.")
    out = _blocks(size, k, d, p, s)
    if min(out) < 1:
        raise RuntimeError(f"{opname}: given output_size={size}, kernel_size={k}, dilation={d}, padding={p}, "
                           f"stride={s}, calculated shape of the array of sliding blocks as {out}, but its "
                           f"components must be at least one.")
    if x.shape[2] != out[0] * out[1]:
        raise RuntimeError(f"{opname}: given output_size={size}, kernel_size={k}, dilation={d}, padding={p}, "
                           f"stride={s}, expected size of input's dimension 2 to match the calculated number "
                           f"of sliding blocks {out[0]} * {out[1]} = {out[0] * out[1]}, but got "
                           f"input.size(2)={x.shape[2]}.")
    y = Fold.apply(x, size=size, k=k, d=d, p=p, s=s)
    return y if batched else y.squeeze(0)


# ---------------------------------------------------------------------------------------------
# affine_grid
# ---------------------------------------------------------------------------------------------

_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since "
                  "1.3.0. Please specify align_corners=True if the old behavior is desired. See the "
                  "documentation of grid_sample for details.")


def _linspace_unit(n, align_corners, dtype):
    """``n`` coordinates spanning [-1, 1] (pixel corners) or pixel centres when not ``align_corners``."""
    if n <= 1:
        return np.zeros(max(n, 0), dtype=dtype)
    r = np.linspace(-1.0, 1.0, n, dtype=np.float64)
    if not align_corners:
        r = r * (n - 1) / n
    return r.astype(dtype)


def affine_grid(theta, size, align_corners=None):
    """PyTorch's ``F.affine_grid``: the sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the
    affine maps ``theta`` (N, 2, 3) (or (N, 3, 4)), in [-1, 1] coordinates; differentiable in
    ``theta``."""
    import warnings
    from .linalg import matmul
    _check_tensor(theta, "affine_grid", "theta")
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    if theta.array.dtype.kind not in "fc":
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = tuple(int(v) for v in size)
    if len(size) == 4:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (2, 3):
            raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. "
                             f"Got {tuple(theta.shape)}.")
        spatial = size[-2:]
    elif len(size) == 5:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (3, 4):
            raise ValueError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. "
                             f"Got {tuple(theta.shape)}.")
        spatial = size[-3:]
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the "
                      "documentation of affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    if theta.shape[0] != size[0]:
        raise RuntimeError(f"affine_grid: expected theta with batch size {size[0]} (size[0]), got theta of shape "
                           f"{tuple(theta.shape)}")
    dt = theta.array.dtype
    # base grid: the last axis holds (x, y[, z], 1); x runs along the last spatial dimension
    axes = [_linspace_unit(n, align_corners, dt) for n in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")              # each of shape spatial, axis order (d,) h, w
    coords = [m for m in reversed(mesh)] + [np.ones(spatial, dtype=dt)]
    base = np.stack(coords, axis=-1).reshape(1, -1, len(spatial) + 1)
    xp = backend.array_module(theta.array)
    if xp is not np:
        base = backend.to_device(base, backend.device_of(theta.array))
    grid = matmul(Tensor._make(base), theta.transpose(1, 2))  # (N, prod(spatial), ndim)
    return grid.reshape(size[0], *spatial, len(spatial))


# ---------------------------------------------------------------------------------------------
# grid_sample
# ---------------------------------------------------------------------------------------------

def _unnormalize(coord, size, align_corners):
    """[-1, 1] -> pixel coordinates, and the derivative of that map."""
    if align_corners:
        return (coord + 1) * ((size - 1) / 2), (size - 1) / 2
    return ((coord + 1) * size - 1) / 2, size / 2


def _clip(coord, size, xp):
    """Clip into [0, size - 1]; the gradient is 1 strictly inside and 0 on or beyond the borders."""
    hi = size - 1
    mult = ((coord > 0) & (coord < hi)).astype(coord.dtype)
    return xp.clip(coord, 0, hi), mult


def _reflect(coord, twice_low, twice_high, xp):
    """Reflect ``coord`` back and forth into [twice_low/2, twice_high/2]; the gradient is +-1."""
    if twice_low == twice_high:
        return xp.zeros_like(coord), xp.zeros_like(coord)
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = coord - lo
    sign = xp.where(c < 0, -1.0, 1.0).astype(coord.dtype)
    c = xp.abs(c)
    extra = xp.fmod(c, span)
    flips = xp.floor(c / span)
    even = (flips % 2) == 0
    out = xp.where(even, extra + lo, span - extra + lo).astype(coord.dtype)
    return out, xp.where(even, sign, -sign).astype(coord.dtype)


def _source_coords(coord, size, padding_mode, align_corners, xp):
    """Pixel coordinates for the normalised ``coord`` and d(pixel)/d(coord)."""
    c, scale = _unnormalize(coord, size, align_corners)
    mult = xp.full(c.shape, scale, dtype=c.dtype)
    if padding_mode == "border":
        c, m = _clip(c, size, xp)
        mult = mult * m
    elif padding_mode == "reflection":
        if align_corners:
            c, m = _reflect(c, 0, 2 * (size - 1), xp)
        else:
            c, m = _reflect(c, -1, 2 * size - 1, xp)
        mult = mult * m
        c, m = _clip(c, size, xp)
        mult = mult * m
    return c, mult


_CUBIC_A = -0.75      # the cubic convolution kernel's parameter (PyTorch's and OpenCV's)


def _cubic_weights(t):
    """The four cubic-convolution weights of taps at -1, 0, 1, 2 for a fractional offset ``t``,
    and their derivatives in ``t``."""
    A = _CUBIC_A

    def near(x):        # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def near_d(x):
        return (3 * (A + 2) * x - 2 * (A + 3)) * x

    def far(x):         # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    def far_d(x):
        return (3 * A * x - 10 * A) * x + 8 * A

    u = 1 - t
    w = [far(t + 1), near(t), near(u), far(u + 1)]
    dw = [far_d(t + 1), near_d(t), -near_d(u), -far_d(u + 1)]
    return w, dw


def _tap_index(c, size, padding_mode, align_corners, xp):
    """Integer tap coordinates ``c`` mapped by the padding mode (bicubic): the column (or row) of the
    zero-bordered image to read; taps outside the image read the border when padding is 'zeros'."""
    if padding_mode == "zeros":
        return xp.clip(c, -1, size) + 1
    cf = c.astype(np.float64)
    if padding_mode == "reflection":
        cf = _reflect(cf, 0, 2 * (size - 1), xp)[0] if align_corners else _reflect(cf, -1, 2 * size - 1, xp)[0]
    return xp.clip(cf, 0, size - 1).astype(np.int64) + 1


def _axis_taps(g, size, mode, padding_mode, align_corners, xp):
    """The taps of one spatial axis for the normalised coordinates ``g``: their positions in the
    zero-bordered image (clipped into the border), their weights and the weights' derivatives in
    the pixel coordinate (None for nearest), d(pixel)/d(g), and the fractional offset ``t`` the
    weights are functions of (None for nearest)."""
    if mode == "bicubic":        # the position is only unnormalised; each tap is padded on its own
        c, scale = _unnormalize(g, size, align_corners)
        f = xp.floor(c)
        w, dw = _cubic_weights(c - f)
        f = f.astype(np.int64)
        pos = [_tap_index(f + k, size, padding_mode, align_corners, xp) for k in (-1, 0, 1, 2)]
        return pos, w, dw, xp.full(c.shape, scale, dtype=c.dtype), c - f
    c, mult = _source_coords(g, size, padding_mode, align_corners, xp)
    if mode == "nearest":
        return [xp.clip(xp.rint(c).astype(np.int64), -1, size) + 1], None, None, mult, None
    f = xp.floor(c)
    t = c - f
    f = f.astype(np.int64)
    return [xp.clip(f, -1, size) + 1, xp.clip(f + 1, -1, size) + 1], [1 - t, t], [-1.0, 1.0], mult, t


class GridSample(Function):
    """Sample (N, C, [D,] H, W) at the positions ``grid`` (N, [Do,] Ho, Wo, 2 or 3).

    Every mode is a weighted sum over taps: 1 (nearest), 2 per axis (bilinear/trilinear) or 4 per
    axis (bicubic, 2-d only) pixels around each position; a tap's weight is the product of its
    weights along each axis. The image is read from a copy with a one-pixel border of zeros, and a
    tap outside the image is clipped into that border: it reads 0 (the 'zeros' padding, and the far
    corner at the edge in the other modes) with no mask to build or apply."""
    array_backward = True

    def forward(self, x, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
        xp = backend.array_module(x)
        N, C = x.shape[:2]
        sizes = x.shape[2:]
        nd = len(sizes)
        P = int(np.prod(grid.shape[1:-1]))
        padded = tuple(n + 2 for n in sizes)
        xpad = xp.zeros((N, C) + padded, dtype=x.dtype)
        xpad[(slice(None), slice(None)) + (slice(1, -1),) * nd] = x
        flat = xpad.reshape(-1)
        strides = [int(np.prod(padded[k + 1:])) for k in range(nd)]
        base = (xp.arange(N * C, dtype=np.int64) * int(np.prod(padded))).reshape(N, C, 1)
        self.shape, self.mode, self.out_shape = x.shape, mode, grid.shape[:-1]
        if self._record:                 # for graph_backward (create_graph=True) only
            self.save_for_backward(*self.inputs)
        # grid component a (x, y, z) indexes spatial dimension nd - 1 - a (W, H, D)
        axes = [_axis_taps(grid[..., a].reshape(N, P), sizes[nd - 1 - a], mode, padding_mode, align_corners, xp)
                for a in range(nd)]
        combos = list(itertools.product(*[range(len(ax[0])) for ax in axes]))
        self.idx = []
        for combo in combos:
            lin = 0
            for a, i in enumerate(combo):
                lin = lin + axes[a][0][i] * strides[nd - 1 - a]
            self.idx.append(base + lin[:, None, :])
        self.v = [flat.take(i) for i in self.idx]
        if mode == "nearest":
            self.w = [None]
            out = self.v[0]
        else:
            self.w = [_prod_weights([axes[a][1][i] for a, i in enumerate(combo)]) for combo in combos]
            out = self.v[0] * self.w[0][:, None]
            for v, w in zip(self.v[1:], self.w[1:]):
                out += v * w[:, None]
        self.axes, self.combos = axes, combos
        return out.reshape((N, C) + tuple(grid.shape[1:-1]))

    def backward(self, g):
        shape = self.shape
        N, C = shape[:2]
        nd = len(shape) - 2
        xp = backend.array_module(g)
        gf = g.reshape(N, C, -1)
        dx = dgrid = None
        if self.needs_input_grad[0]:
            vals = [gf if w is None else gf * w[:, None] for w in self.w]
            padded = tuple(n + 2 for n in shape[2:])
            flat = xp.bincount(xp.concatenate([i.ravel() for i in self.idx]),
                               weights=xp.concatenate([v.ravel() for v in vals]),
                               minlength=N * C * int(np.prod(padded)))
            crop = (slice(None), slice(None)) + (slice(1, -1),) * nd
            dx = xp.ascontiguousarray(flat.astype(g.dtype, copy=False).reshape((N, C) + padded)[crop])
        if self.needs_input_grad[1]:
            if self.mode == "nearest":
                dgrid = xp.zeros(tuple(self.out_shape) + (nd,), dtype=g.dtype)
            else:
                comps = []
                for a in range(nd):
                    # d out / d(pixel coordinate a): the tap weights with axis a's differentiated
                    dv = 0
                    for v, combo in zip(self.v, self.combos):
                        dw = _prod_weights([self.axes[b][2 if b == a else 1][i] for b, i in enumerate(combo)])
                        dv = dv + v * dw[:, None]
                    comps.append((gf * dv).sum(1) * self.axes[a][3])
                dgrid = xp.stack(comps, axis=-1).reshape(tuple(self.out_shape) + (nd,))
        return dx, dgrid

    def release(self):
        self.idx = self.w = self.v = self.axes = self.combos = None

    def graph_backward(self, g):
        """create_graph=True: differentiate the sampling composed of ops. The tap indices are
        constants; each axis's fractional offset is ``t0 + m * (grid - grid0)`` (exact: the
        coordinate maps are piecewise affine, ``m`` their slope at the sample), and the tap weights
        are the same functions of it as in forward (linear, or cubic for bicubic)."""
        from ._graph import reference_grads
        from .index import take
        from .shape import pad as _pad
        N, C = self.shape[:2]
        nd = len(self.shape) - 2
        P = int(np.prod(self.out_shape[1:]))
        mk = Tensor._make

        def ref(x, grid):
            flat = _pad(x, (1, 1) * nd).reshape(-1)
            if self.mode == "nearest":
                return take(flat, mk(self.idx[0])).reshape(g.shape)
            g0 = grid.array
            weights = []
            for a in range(nd):
                m, t0 = self.axes[a][3], self.axes[a][4]
                t = (grid[..., a].reshape(N, P) - mk(g0[..., a].reshape(N, P))) * mk(m) + mk(t0)
                weights.append(_cubic_weights(t)[0] if self.mode == "bicubic" else [1 - t, t])
            out = None
            for idx, combo in zip(self.idx, self.combos):
                w = _prod_weights([weights[a][i] for a, i in enumerate(combo)])
                term = take(flat, mk(idx)) * w.reshape(N, 1, P)
                out = term if out is None else out + term
            return out.reshape(g.shape)
        gx, ggrid = reference_grads(ref, self.saved_tensors, [g], self.needs_input_grad)
        if ggrid is None and self.needs_input_grad[1]:      # nearest: zeros, as first order gives
            gshape = tuple(self.saved_tensors[1].shape)
            ggrid = Tensor._make(backend.array_module(g.array).zeros(gshape, g.dtype))
        return gx, ggrid


def _prod_weights(ws):
    out = ws[0]
    for w in ws[1:]:
        out = out * w
    return out


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """PyTorch's ``F.grid_sample`` (4-D or 5-D input): ``output[n, :, h, w]`` is ``input[n]`` read at
    ``grid[n, h, w] = (x, y)`` in [-1, 1] coordinates (bilinear, nearest or bicubic; ``padding_mode``
    'zeros', 'border' or 'reflection'). Differentiable in ``input`` and ``grid``."""
    import warnings
    opname = "grid_sample"
    _check_tensor(input, opname)
    _check_tensor(grid, opname, "grid")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    if input.ndim != grid.ndim or input.ndim not in (4, 5):
        raise RuntimeError(f"grid_sampler(): expected 4D or 5D input and grid with same number of dimensions, "
                           f"but got input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if grid.shape[-1] != input.ndim - 2:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {input.ndim - 2} in last dimension, but "
                           f"got grid with sizes {list(grid.shape)}")
    if input.array.dtype.kind not in "fV" or grid.array.dtype != input.array.dtype:
        raise RuntimeError(f"grid_sampler(): expected input and grid to have the same floating point dtype, but "
                           f"got input {input.dtype} and grid {grid.dtype}")
    if any(n == 0 for n in input.shape[2:]):
        raise RuntimeError(f"grid_sampler(): expected input to have non-empty spatial dimensions, but input has "
                           f"sizes {list(input.shape)}")
    if input.ndim == 5 and mode == "bicubic":
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    return GridSample.apply(input, grid, mode=mode, padding_mode=padding_mode, align_corners=bool(align_corners))
