"""Image transforms with torchvision's semantics, on NumPy arrays and deepgrad Tensors.

Layouts (decided by type, as torchvision does for PIL images vs tensors):

* an integer ``np.ndarray`` (uint8) is a PIL-like image: ``(H, W)`` or ``(H, W, C)``;
* a Tensor or a floating ``np.ndarray`` is channels-first: ``(C, H, W)`` (or ``(H, W)``), with any
  leading batch dimensions (a per-sample random transform then applies one draw to all of them).

Every transform returns the type and layout it was given (``ToTensor`` returns a CHW float32
Tensor). Values are in [0, 255] for integer images and [0, 1] for float ones. All randomness comes
from ``deepgrad.random`` (through the DataLoader's per-batch generator when run inside a loader),
so ``deepgrad.manual_seed`` makes augmentation reproducible.

Batched transforms (``BatchToTensor``, ``BatchNormalize``, ``BatchRandomHorizontalFlip``,
``BatchRandomCrop``) take a whole ``(N, C, H, W)`` batch (``(N, H, W[, C])`` uint8 for
``BatchToTensor``) and draw independent parameters per sample with array operations; pass them to
``DataLoader(batch_transform=...)`` or call them in a training loop. Deterministic per-sample
transforms also have ``apply_batch(batch)`` (same result as mapping over the samples), which lets
datasets gather and transform a whole batch at once.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import _rng

__all__ = ["Compose", "ToTensor", "Normalize", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomCrop",
           "RandomResizedCrop", "CenterCrop", "Pad", "Resize", "ColorJitter", "RandomRotation", "RandomAffine",
           "Lambda", "RandomApply", "Grayscale", "StandardScaler", "BatchToTensor", "BatchNormalize",
           "BatchRandomHorizontalFlip", "BatchRandomCrop", "functional"]


# ---------------------------------------------------------------------------------------------
# layout handling
# ---------------------------------------------------------------------------------------------
class _Layout:
    """How to get back from a canonical (..., C, H, W) array to the caller's type and layout."""

    __slots__ = ("kind", "squeeze", "batched")

    def __init__(self, kind, squeeze, batched):
        self.kind, self.squeeze, self.batched = kind, squeeze, batched

    def restore(self, x):
        if self.kind == "hwc":
            if self.squeeze:
                x = x[..., 0, :, :]
            else:
                x = _chw_to_hwc(x)
            return np.ascontiguousarray(x)
        if self.squeeze:
            x = x[..., 0, :, :]
        if self.kind == "tensor":
            return Tensor._make(x)
        return x


def _hwc_to_chw(x):
    n = x.ndim
    return x.transpose(tuple(range(n - 3)) + (n - 1, n - 3, n - 2))


def _chw_to_hwc(x):
    n = x.ndim
    return x.transpose(tuple(range(n - 3)) + (n - 2, n - 1, n - 3))


def _to_chw(img, batched=False, name="transform"):
    """(array (..., C, H, W), layout). ``batched``: img has a leading sample axis."""
    extra = 1 if batched else 0
    if isinstance(img, Tensor):
        x, kind = img.array, "tensor"
    elif isinstance(img, np.ndarray) or hasattr(img, "__cuda_array_interface__"):
        x = img
        kind = "hwc" if (x.dtype.kind in "iub" and isinstance(img, np.ndarray)) else "chw"
    else:
        try:
            from PIL import Image  # optional: decode PIL images into HWC arrays
        except ImportError:  # pragma: no cover
            Image = None
        if Image is not None and isinstance(img, Image.Image):
            return _to_chw(np.asarray(img), batched, name)
        raise TypeError(f"{name}: expected a Tensor or a NumPy array, got {type(img).__name__}")
    if kind == "hwc":
        if x.ndim == 2 + extra:
            return x[..., None, :, :], _Layout(kind, True, batched)
        if x.ndim == 3 + extra:
            return _hwc_to_chw(x), _Layout(kind, False, batched)
        raise ValueError(f"{name}: an integer ndarray image must be (H, W) or (H, W, C)"
                         f"{' with a leading batch axis' if batched else ''}, got shape {x.shape}")
    if x.ndim < 2 + extra:
        raise ValueError(f"{name}: expected an image of shape (C, H, W) or (H, W), got shape {tuple(x.shape)}")
    if x.ndim == 2 + extra:
        return x[..., None, :, :], _Layout(kind, True, batched)
    return x, _Layout(kind, False, batched)


def _bound(x):
    return 255.0 if x.dtype.kind in "iub" else 1.0


def _cast_like(y, x):
    """Cast float result ``y`` back to ``x``'s dtype (rounding and clipping integer images)."""
    if x.dtype.kind in "iu":
        xp = backend.array_module(y)
        info = np.iinfo(x.dtype)
        return xp.clip(xp.round(y), info.min, info.max).astype(x.dtype)
    if x.dtype.kind == "b":
        return y > 0.5
    return y.astype(x.dtype, copy=False)


def _pair(size, name):
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name}: size should be an int or a sequence of one or two ints (h, w), got {size!r}")


def _padding4(padding, name):
    """(left, top, right, bottom) from an int or a 1/2/4 sequence (torchvision's convention)."""
    if isinstance(padding, numbers.Number):
        p = int(padding)
        pads = (p, p, p, p)
    elif isinstance(padding, Sequence) and len(padding) == 1:
        pads = (int(padding[0]),) * 4
    elif isinstance(padding, Sequence) and len(padding) == 2:
        pads = (int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1]))
    elif isinstance(padding, Sequence) and len(padding) == 4:
        pads = tuple(int(p) for p in padding)
    else:
        raise ValueError(f"{name}: padding must be an int or a 1, 2 or 4 element sequence, got {padding!r}")
    if min(pads) < 0:
        raise ValueError(f"{name}: negative padding is not supported, got {padding!r}")
    return pads


# ---------------------------------------------------------------------------------------------
# functional ops on canonical (..., C, H, W) arrays
# ---------------------------------------------------------------------------------------------
class functional:  # noqa: N801  (a namespace, like torchvision.transforms.functional)
    """Array-level operations on (..., C, H, W) arrays (no randomness)."""

    @staticmethod
    def hflip(x):
        return x[..., ::-1].copy()

    @staticmethod
    def vflip(x):
        return x[..., ::-1, :].copy()

    @staticmethod
    def crop(x, top, left, height, width):
        H, W = x.shape[-2:]
        if top < 0 or left < 0 or top + height > H or left + width > W:
            pl, pt = max(-left, 0), max(-top, 0)
            pr, pb = max(left + width - W, 0), max(top + height - H, 0)
            x = functional.pad(x, (pl, pt, pr, pb))
            top, left = top + pt, left + pl
        return x[..., top:top + height, left:left + width].copy()

    @staticmethod
    def pad(x, padding, fill=0, padding_mode="constant"):
        left, top, right, bottom = padding
        xp = backend.array_module(x)
        if padding_mode == "constant":
            H, W = x.shape[-2:]
            out = xp.empty(x.shape[:-2] + (H + top + bottom, W + left + right), dtype=x.dtype)
            if isinstance(fill, (tuple, list)):
                if len(fill) != x.shape[-3]:
                    raise ValueError(f"pad: fill has {len(fill)} values for {x.shape[-3]} channels")
                out[...] = xp.asarray(fill, dtype=x.dtype).reshape(-1, 1, 1)
            else:
                out[...] = fill
            out[..., top:top + H, left:left + W] = x
            return out
        modes = {"edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}
        if padding_mode not in modes:
            raise ValueError(f"pad: padding_mode must be constant, edge, reflect or symmetric, got {padding_mode!r}")
        width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        return xp.pad(x, width, mode=modes[padding_mode])

    @staticmethod
    def _resize_matrix(n_in, n_out, interpolation, antialias):
        if interpolation == "nearest":
            scale = np.float32(n_in / n_out)
            src = np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64), n_in - 1)
            m = np.zeros((n_out, n_in), dtype=np.float64)
            m[np.arange(n_out), src] = 1.0
            return m
        if interpolation != "bilinear":
            raise ValueError(f"resize: interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        scale = n_in / n_out
        ss = max(scale, 1.0) if antialias else 1.0          # filter stretch when downscaling
        support = 1.0 * ss
        centers = (np.arange(n_out) + 0.5) * scale
        xmin = np.maximum(np.trunc(centers - support + 0.5), 0)
        xmax = np.minimum(np.trunc(centers + support + 0.5), n_in)
        j = np.arange(n_in)
        w = np.maximum(0.0, 1.0 - np.abs((j[None, :] - centers[:, None] + 0.5) / ss))
        w *= (j[None, :] >= xmin[:, None]) & (j[None, :] < xmax[:, None])
        w /= w.sum(axis=1, keepdims=True)
        return w

    @staticmethod
    def resize(x, size, interpolation="bilinear", antialias=True):
        oh, ow = size
        H, W = x.shape[-2:]
        if (oh, ow) == (H, W):
            return x.copy()
        xp = backend.array_module(x)
        if interpolation == "nearest":
            rows = np.argmax(functional._resize_matrix(H, oh, "nearest", False), axis=1)
            cols = np.argmax(functional._resize_matrix(W, ow, "nearest", False), axis=1)
            return x[..., rows[:, None], cols[None, :]]
        dt = np.float64 if x.dtype == np.float64 else np.float32
        mh = xp.asarray(functional._resize_matrix(H, oh, interpolation, antialias).astype(dt))
        mw = xp.asarray(functional._resize_matrix(W, ow, interpolation, antialias).astype(dt))
        y = xp.matmul(xp.matmul(mh, x.astype(dt, copy=False)), mw.T)
        return _cast_like(y, x)

    @staticmethod
    def inverse_affine_matrix(center, angle, translate, scale, shear):
        """The 2x3 matrix mapping output to input coordinates (torchvision's convention: angle in
        degrees, clockwise in image coordinates; shear in degrees; center relative to the image
        centre)."""
        rot = math.radians(angle)
        sx, sy = math.radians(shear[0]), math.radians(shear[1])
        cx, cy = center
        tx, ty = translate
        a = math.cos(rot - sy) / math.cos(sy)
        b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
        c = math.sin(rot - sy) / math.cos(sy)
        d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
        m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
        return m

    @staticmethod
    def affine_output_size(matrix, w, h):
        pts = np.array([[-0.5 * w, -0.5 * h, 1.0], [-0.5 * w, 0.5 * h, 1.0],
                        [0.5 * w, 0.5 * h, 1.0], [0.5 * w, -0.5 * h, 1.0]], dtype=np.float32)
        theta = np.asarray(matrix, dtype=np.float32).reshape(2, 3)
        new = pts @ theta.T
        lo = new.min(axis=0) + np.array([w * 0.5, h * 0.5], dtype=np.float32)
        hi = new.max(axis=0) + np.array([w * 0.5, h * 0.5], dtype=np.float32)
        tol = 1e-4
        cmax = np.ceil(np.trunc(hi / tol) * tol)
        cmin = np.floor(np.trunc(lo / tol) * tol)
        size = cmax - cmin
        return int(size[0]), int(size[1])

    @staticmethod
    def affine_sample(x, matrix, out_size=None, interpolation="nearest", fill=0):
        """Resample ``x`` (..., C, H, W): output pixel (i, j) reads the input at ``matrix``
        applied to its centred coordinates (grid_sample, align_corners=False, zero padding, then
        ``fill`` blended in through a validity mask, as torchvision does)."""
        H, W = x.shape[-2:]
        oh, ow = (H, W) if out_size is None else out_size
        xs = np.arange(ow, dtype=np.float64) - (ow - 1) * 0.5
        ys = np.arange(oh, dtype=np.float64) - (oh - 1) * 0.5
        m = np.asarray(matrix, dtype=np.float64)
        sx = m[0] * xs[None, :] + m[1] * ys[:, None] + m[2] + (W - 1) * 0.5
        sy = m[3] * xs[None, :] + m[4] * ys[:, None] + m[5] + (H - 1) * 0.5
        xf = x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=False)
        C = x.shape[-3]
        if fill is None:
            fillv = None
        else:
            fillv = np.asarray(fill if isinstance(fill, (tuple, list)) else [fill] * C, dtype=xf.dtype)
            if fillv.size == 1:
                fillv = np.repeat(fillv, C)
            if fillv.size != C:
                raise ValueError(f"affine: fill has {fillv.size} values for {C} channels")
            fillv = fillv.reshape(C, 1, 1)
        if interpolation == "nearest":
            ix, iy = np.rint(sx).astype(np.int64), np.rint(sy).astype(np.int64)
            valid = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
            out = xf[..., np.clip(iy, 0, H - 1), np.clip(ix, 0, W - 1)] * valid
            if fillv is not None:
                out = np.where(valid, out, fillv)
        elif interpolation == "bilinear":
            x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
            fx, fy = (sx - x0).astype(xf.dtype), (sy - y0).astype(xf.dtype)
            out = np.zeros(x.shape[:-2] + (oh, ow), dtype=xf.dtype)
            mask = np.zeros((oh, ow), dtype=xf.dtype)
            for dy, wy in ((0, 1 - fy), (1, fy)):
                for dx, wx in ((0, 1 - fx), (1, fx)):
                    cx, cy = x0 + dx, y0 + dy
                    ok = (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)
                    w = wx * wy * ok
                    out += xf[..., np.clip(cy, 0, H - 1), np.clip(cx, 0, W - 1)] * w
                    mask += w
            if fillv is not None:
                out = out * mask + (1.0 - mask) * fillv
        else:
            raise ValueError(f"affine: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        return _cast_like(out, x)

    # ---- colour -------------------------------------------------------------------------------
    @staticmethod
    def rgb_to_grayscale(x):
        r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
        gray = (0.2989 * r + 0.587 * g + 0.114 * b)
        if x.dtype.kind in "iu":
            gray = np.trunc(gray)
        return gray.astype(x.dtype)[..., None, :, :]

    @staticmethod
    def _blend(a, b, ratio):
        bound = _bound(a)
        y = np.clip(ratio * a + (1.0 - ratio) * b, 0, bound)
        if a.dtype.kind in "iu":
            return np.trunc(y).astype(a.dtype)
        return y.astype(a.dtype, copy=False)

    @staticmethod
    def adjust_brightness(x, factor):
        return functional._blend(x, np.zeros_like(x), factor)

    @staticmethod
    def adjust_contrast(x, factor):
        dt = x.dtype if x.dtype.kind == "f" else np.float32
        gray = functional.rgb_to_grayscale(x) if x.shape[-3] == 3 else x
        mean = gray.astype(dt).mean(axis=(-3, -2, -1), keepdims=True)
        return functional._blend(x, mean, factor)

    @staticmethod
    def adjust_saturation(x, factor):
        if x.shape[-3] == 1:
            return x.copy()
        return functional._blend(x, functional.rgb_to_grayscale(x), factor)

    @staticmethod
    def rgb_to_hsv(x):
        r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
        maxc, minc = x.max(axis=-3), x.min(axis=-3)
        eqc = maxc == minc
        cr = maxc - minc
        s = cr / np.where(eqc, 1, maxc)
        crd = np.where(eqc, 1, cr)
        rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
        h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
        h = np.where(eqc, 0.0, h)
        h = np.fmod(h / 6.0 + 1.0, 1.0)
        return np.stack([h, s, maxc], axis=-3).astype(x.dtype, copy=False)

    @staticmethod
    def hsv_to_rgb(x):
        h, s, v = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
        i = np.floor(h * 6.0)
        f = h * 6.0 - i
        i = i.astype(np.int64) % 6
        p = np.clip(v * (1.0 - s), 0.0, 1.0)
        q = np.clip(v * (1.0 - s * f), 0.0, 1.0)
        t = np.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
        r = np.choose(i, [v, q, p, p, t, v])
        g = np.choose(i, [t, v, v, q, p, p])
        b = np.choose(i, [p, p, t, v, v, q])
        return np.stack([r, g, b], axis=-3).astype(x.dtype, copy=False)

    @staticmethod
    def adjust_hue(x, factor):
        if not -0.5 <= factor <= 0.5:
            raise ValueError(f"adjust_hue: hue_factor ({factor}) is not in [-0.5, 0.5]")
        if x.shape[-3] == 1:
            return x.copy()
        xf = x.astype(np.float32) / 255.0 if x.dtype.kind in "iu" else x
        hsv = functional.rgb_to_hsv(xf)
        hsv[..., 0, :, :] = np.mod(hsv[..., 0, :, :] + factor, 1.0)
        rgb = functional.hsv_to_rgb(hsv)
        if x.dtype.kind in "iu":
            return (rgb * (255.0 + 1.0 - 1e-3)).astype(x.dtype)
        return rgb.astype(x.dtype, copy=False)


F = functional


# ---------------------------------------------------------------------------------------------
# transform classes
# ---------------------------------------------------------------------------------------------
class Transform:
    """Base: subclasses implement ``_apply(x)`` on a canonical (..., C, H, W) array."""

    deterministic = True

    def __call__(self, img):
        x, layout = _to_chw(img, False, type(self).__name__)
        return layout.restore(self._apply(x))

    def apply_batch(self, batch):
        """Apply to every sample of ``batch`` (the per-sample layout with a leading axis)."""
        x, layout = _to_chw(batch, True, type(self).__name__)
        return layout.restore(self._apply(x))

    def _apply(self, x):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose:
    """Apply transforms in sequence."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    @property
    def deterministic(self):
        return all(getattr(t, "deterministic", False) and hasattr(t, "apply_batch") for t in self.transforms)

    def apply_batch(self, batch):
        for t in self.transforms:
            batch = t.apply_batch(batch)
        return batch

    def __repr__(self):
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToTensor:
    """HWC (or HW) ndarray -> CHW Tensor; uint8 is scaled to float32 in [0, 1] (``x / 255``),
    other dtypes are kept, as torchvision's ToTensor. A Tensor passes through unchanged."""

    deterministic = True

    def __call__(self, pic):
        return self._convert(pic, False)

    def apply_batch(self, batch):
        return self._convert(batch, True)

    @staticmethod
    def _convert(pic, batched):
        if isinstance(pic, Tensor):
            return pic
        if not isinstance(pic, np.ndarray):
            x, _ = _to_chw(pic, batched, "ToTensor")  # PIL images
            pic = _chw_to_hwc(x)
        extra = 1 if batched else 0
        if pic.ndim == 2 + extra:
            pic = pic[..., None]
        if pic.ndim != 3 + extra:
            raise ValueError(f"ToTensor: pic should be 2/3 dimensional (HW or HWC){' plus a batch axis' * extra}, "
                             f"got {pic.ndim} dimensions (shape {pic.shape})")
        x = _hwc_to_chw(pic)
        if x.dtype == np.uint8:
            x = x.astype(np.float32, order="C")
            x /= np.float32(255)
            return Tensor._make(x)
        return Tensor._make(np.ascontiguousarray(x))

    def __repr__(self):
        return "ToTensor()"


class BatchToTensor(ToTensor):
    """``(N, H, W)`` or ``(N, H, W, C)`` uint8 -> ``(N, C, H, W)`` float32 in [0, 1].

    Also takes the uint8 Tensor a DataLoader collates from raw images (``MNIST()``/``CIFAR10()``
    without a transform); floating Tensors pass through unchanged."""

    def __call__(self, batch):
        if isinstance(batch, Tensor) and batch.dtype.kind in "iu":
            batch = backend.to_numpy(batch.array)
        return self._convert(batch, True)


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel, on float (C, H, W) images (any leading dims)."""

    def __init__(self, mean, std, inplace=False):
        self.mean = tuple(float(m) for m in np.atleast_1d(np.asarray(mean, dtype=np.float64)))
        self.std = tuple(float(s) for s in np.atleast_1d(np.asarray(std, dtype=np.float64)))
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std evaluated to zero after conversion to float, leading to "
                             f"division by zero (std={self.std})")
        self.inplace = inplace
        self._stats = {}

    def _apply(self, x):
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: input should be a float tensor/array, got {x.dtype}; apply ToTensor first")
        C = x.shape[-3]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if len(v) not in (1, C):
                raise ValueError(f"Normalize: {name} has {len(v)} values for an image with {C} channels")
        key = (x.dtype, type(x))
        stats = self._stats.get(key)
        if stats is None:
            xp = backend.array_module(x)
            stats = self._stats[key] = (xp.asarray(self.mean, dtype=x.dtype).reshape(-1, 1, 1),
                                        xp.asarray(self.std, dtype=x.dtype).reshape(-1, 1, 1))
        mean, std = stats
        if self.inplace:
            x -= mean
            x /= std
            return x
        return (x - mean) / std


class BatchNormalize(Normalize):
    """Normalize for ``(N, C, H, W)`` batches (the same arithmetic; named for symmetry)."""

    def __call__(self, batch):
        return self.apply_batch(batch)


class Lambda:
    """Wrap a function as a transform."""

    deterministic = False

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self):
        return f"Lambda({self.lambd!r})"


class RandomApply:
    """Apply ``transforms`` (in order) with probability ``p``."""

    deterministic = False

    def __init__(self, transforms, p=0.5):
        self.transforms = list(transforms)
        self.p = p

    def __call__(self, img):
        if self.p < _rng.rng().random():
            return img
        for t in self.transforms:
            img = t(img)
        return img


class RandomHorizontalFlip(Transform):
    """Flip left-right with probability ``p``."""

    deterministic = False

    def __init__(self, p=0.5):
        self.p = p

    def _apply(self, x):
        if _rng.rng().random() < self.p:
            return F.hflip(x)
        return x.copy()


class RandomVerticalFlip(Transform):
    """Flip upside-down with probability ``p``."""

    deterministic = False

    def __init__(self, p=0.5):
        self.p = p

    def _apply(self, x):
        if _rng.rng().random() < self.p:
            return F.vflip(x)
        return x.copy()


class Pad(Transform):
    """Pad the borders: ``padding`` int (all sides), (left/right, top/bottom) or (l, t, r, b);
    ``padding_mode`` constant (with ``fill``, a number or one per channel), edge, reflect, symmetric."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        self.padding = padding
        self._pads = _padding4(padding, "Pad")
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"Pad: padding_mode should be constant, edge, reflect or symmetric, got {padding_mode!r}")
        self.fill = fill
        self.padding_mode = padding_mode

    def _apply(self, x):
        return F.pad(x, self._pads, self.fill, self.padding_mode)


class CenterCrop(Transform):
    """Crop the centre (``top = round((H - h) / 2)``); zero-pads first if the crop is larger."""

    def __init__(self, size):
        self.size = _pair(size, "CenterCrop")

    def _apply(self, x):
        th, tw = self.size
        H, W = x.shape[-2:]
        if th > H or tw > W:
            pads = ((tw - W) // 2 if tw > W else 0, (th - H) // 2 if th > H else 0,
                    (tw - W + 1) // 2 if tw > W else 0, (th - H + 1) // 2 if th > H else 0)
            x = F.pad(x, pads, 0)
            H, W = x.shape[-2:]
            if th == H and tw == W:
                return x
        top = int(round((H - th) / 2.0))
        left = int(round((W - tw) / 2.0))
        return F.crop(x, top, left, th, tw)


class RandomCrop(Transform):
    """Crop a random ``size`` window, after optional ``padding`` (and ``pad_if_needed`` to reach
    ``size``); the offset is uniform over every position that fits."""

    deterministic = False

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _pair(size, "RandomCrop")
        self.padding = padding
        self._pads = None if padding is None else _padding4(padding, "RandomCrop")
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    @staticmethod
    def get_params(shape_hw, output_size, rng=None):
        h, w = shape_hw
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than input image size {(h, w)}")
        if h == th and w == tw:
            return 0, 0, h, w
        g = rng or _rng.rng()
        i = int(g.integers(0, h - th + 1))
        j = int(g.integers(0, w - tw + 1))
        return i, j, th, tw

    def _apply(self, x):
        if self._pads is not None:
            x = F.pad(x, self._pads, self.fill, self.padding_mode)
        H, W = x.shape[-2:]
        th, tw = self.size
        if self.pad_if_needed and W < tw:
            x = F.pad(x, (tw - W, 0, tw - W, 0), self.fill, self.padding_mode)
        if self.pad_if_needed and H < th:
            x = F.pad(x, (0, th - H, 0, th - H), self.fill, self.padding_mode)
        i, j, h, w = self.get_params(x.shape[-2:], self.size)
        return F.crop(x, i, j, h, w)


def _resized_size(size, H, W, max_size=None):
    if isinstance(size, numbers.Number) or (isinstance(size, Sequence) and len(size) == 1):
        s = int(size if isinstance(size, numbers.Number) else size[0])
        short, long = (W, H) if W <= H else (H, W)
        new_short, new_long = s, int(s * long / short)
        if max_size is not None:
            if max_size <= s:
                raise ValueError(f"Resize: max_size = {max_size} must be strictly greater than the requested size {s}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_long, new_short) if W <= H else (new_short, new_long)
    if max_size is not None:
        raise ValueError("Resize: max_size is only supported when size is a single int")
    return _pair(size, "Resize")


class Resize(Transform):
    """Resize to ``size`` = (h, w), or scale the smaller edge to ``size`` keeping the aspect
    ratio. ``interpolation`` 'bilinear' (antialiased when downscaling, by default) or 'nearest'."""

    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=True):
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"Resize: interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        self.size = size
        self.interpolation = interpolation
        self.max_size = max_size
        self.antialias = antialias

    def _apply(self, x):
        H, W = x.shape[-2:]
        return F.resize(x, _resized_size(self.size, H, W, self.max_size), self.interpolation, self.antialias)


class RandomResizedCrop(Transform):
    """Crop a random region (area fraction in ``scale``, aspect ratio in ``ratio``, log-uniform)
    and resize it to ``size`` (torchvision's sampling: 10 tries, then a central fallback)."""

    deterministic = False

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation="bilinear",
                 antialias=True):
        self.size = _pair(size, "RandomResizedCrop")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("RandomResizedCrop: scale and ratio should be of kind (min, max)")
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = interpolation
        self.antialias = antialias

    @staticmethod
    def get_params(shape_hw, scale, ratio, rng=None):
        height, width = shape_hw
        g = rng or _rng.rng()
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * g.uniform(scale[0], scale[1])
            aspect = math.exp(g.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                i = int(g.integers(0, height - h + 1))
                j = int(g.integers(0, width - w + 1))
                return i, j, h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w = width
            h = int(round(w / min(ratio)))
        elif in_ratio > max(ratio):
            h = height
            w = int(round(h * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def _apply(self, x):
        i, j, h, w = self.get_params(x.shape[-2:], self.scale, self.ratio)
        return F.resize(F.crop(x, i, j, h, w), self.size, self.interpolation, self.antialias)


def _check_jitter(value, name, center=1.0, bound=(0, float("inf")), clip_first_on_zero=True):
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"ColorJitter: if {name} is a single number, it must be non negative, got {value}")
        value = [center - float(value), center + float(value)]
        if clip_first_on_zero:
            value[0] = max(value[0], 0.0)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        value = [float(value[0]), float(value[1])]
    else:
        raise TypeError(f"ColorJitter: {name} should be a single number or a list/tuple with length 2, got {value!r}")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise ValueError(f"ColorJitter: {name} values should be between {bound}, got {value}")
    if value[0] == value[1] == center:
        return None
    return tuple(value)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue, applied in a random order.

    A number ``b`` means a factor uniform in ``[max(0, 1 - b), 1 + b]`` (hue: a shift uniform in
    ``[-h, h]``, ``h <= 0.5``); a pair gives the range. brightness: ``x * f``; contrast: blend with
    the mean grey level; saturation: blend with the greyscale image; hue: rotate the HSV hue.
    """

    deterministic = False

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _check_jitter(brightness, "brightness")
        self.contrast = _check_jitter(contrast, "contrast")
        self.saturation = _check_jitter(saturation, "saturation")
        self.hue = _check_jitter(hue, "hue", center=0, bound=(-0.5, 0.5), clip_first_on_zero=False)

    @staticmethod
    def get_params(brightness, contrast, saturation, hue, rng=None):
        g = rng or _rng.rng()
        order = g.permutation(4)
        b = None if brightness is None else float(g.uniform(brightness[0], brightness[1]))
        c = None if contrast is None else float(g.uniform(contrast[0], contrast[1]))
        s = None if saturation is None else float(g.uniform(saturation[0], saturation[1]))
        h = None if hue is None else float(g.uniform(hue[0], hue[1]))
        return order, b, c, s, h

    def _apply(self, x):
        order, b, c, s, h = self.get_params(self.brightness, self.contrast, self.saturation, self.hue)
        if x.shape[-3] not in (1, 3):
            raise ValueError(f"ColorJitter: expected 1 or 3 channels, got {x.shape[-3]}")
        for k in order:
            if k == 0 and b is not None:
                x = F.adjust_brightness(x, b)
            elif k == 1 and c is not None:
                x = F.adjust_contrast(x, c)
            elif k == 2 and s is not None:
                x = F.adjust_saturation(x, s)
            elif k == 3 and h is not None:
                x = F.adjust_hue(x, h)
        return x.copy() if b is c is s is h is None else x


class Grayscale(Transform):
    """RGB -> luminance (0.2989 R + 0.587 G + 0.114 B), 1 or 3 output channels."""

    def __init__(self, num_output_channels=1):
        if num_output_channels not in (1, 3):
            raise ValueError("Grayscale: num_output_channels should be either 1 or 3")
        self.num_output_channels = num_output_channels

    def _apply(self, x):
        g = F.rgb_to_grayscale(x) if x.shape[-3] == 3 else x.copy()
        if self.num_output_channels == 3:
            g = np.repeat(g, 3, axis=-3)
        return g


def _range(value, name, center=0.0):
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{name}: if it is a single number, it must be positive, got {value}")
        return (center - float(value), center + float(value))
    if isinstance(value, Sequence) and len(value) == 2:
        return (float(value[0]), float(value[1]))
    raise ValueError(f"{name}: should be a number or a sequence of length 2, got {value!r}")


class RandomRotation(Transform):
    """Rotate by an angle uniform in ``degrees`` (a number d means [-d, d]), counter-clockwise,
    about the centre (or ``center``, in pixels); ``expand`` grows the canvas to fit; ``fill``
    for the uncovered area; ``interpolation`` 'nearest' (default) or 'bilinear'."""

    deterministic = False

    def __init__(self, degrees, interpolation="nearest", expand=False, center=None, fill=0):
        self.degrees = _range(degrees, "RandomRotation degrees")
        self.interpolation = interpolation
        self.expand = expand
        self.center = center
        self.fill = fill

    def _apply(self, x):
        angle = float(_rng.rng().uniform(self.degrees[0], self.degrees[1]))
        return rotate(x, angle, self.interpolation, self.expand, self.center, self.fill)


def rotate(x, angle, interpolation="nearest", expand=False, center=None, fill=0):
    """Rotate a (..., C, H, W) array counter-clockwise by ``angle`` degrees."""
    H, W = x.shape[-2:]
    c = [0.0, 0.0] if center is None else [float(ci) - s * 0.5 for ci, s in zip(center, (W, H))]
    m = F.inverse_affine_matrix(c, -angle, [0.0, 0.0], 1.0, [0.0, 0.0])
    out = None
    if expand:
        ow, oh = F.affine_output_size(m, W, H)
        out = (oh, ow)
    return F.affine_sample(x, m, out, interpolation, fill)


class RandomAffine(Transform):
    """Random rotation (``degrees``), translation (``translate`` = (fx, fy) fractions of the width
    and height, rounded to whole pixels), ``scale`` range and ``shear`` (a number s: x-shear in
    [-s, s]; a pair: x range; four numbers: x and y ranges), torchvision's conventions."""

    deterministic = False

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation="nearest", fill=0,
                 center=None):
        self.degrees = _range(degrees, "RandomAffine degrees")
        if translate is not None:
            if len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"RandomAffine: translate should be two values in [0, 1], got {translate!r}")
        self.translate = translate
        if scale is not None:
            if len(scale) != 2 or any(s <= 0 for s in scale):
                raise ValueError(f"RandomAffine: scale should be two positive values, got {scale!r}")
        self.scale = scale
        if shear is None:
            self.shear = None
        elif isinstance(shear, numbers.Number):
            self.shear = _range(shear, "RandomAffine shear") + (0.0, 0.0)
        elif len(shear) == 2:
            self.shear = (float(shear[0]), float(shear[1]), 0.0, 0.0)
        elif len(shear) == 4:
            self.shear = tuple(float(s) for s in shear)
        else:
            raise ValueError(f"RandomAffine: shear should be a number or a sequence of 2 or 4 values, got {shear!r}")
        self.interpolation = interpolation
        self.fill = fill
        self.center = center

    @staticmethod
    def get_params(degrees, translate, scale_ranges, shears, img_size, rng=None):
        g = rng or _rng.rng()
        angle = float(g.uniform(degrees[0], degrees[1]))
        if translate is not None:
            max_dx = float(translate[0] * img_size[0])
            max_dy = float(translate[1] * img_size[1])
            tx = int(round(g.uniform(-max_dx, max_dx)))
            ty = int(round(g.uniform(-max_dy, max_dy)))
            translations = (tx, ty)
        else:
            translations = (0, 0)
        scale = float(g.uniform(scale_ranges[0], scale_ranges[1])) if scale_ranges is not None else 1.0
        shear_x = shear_y = 0.0
        if shears is not None:
            shear_x = float(g.uniform(shears[0], shears[1]))
            if shears[2] != 0.0 or shears[3] != 0.0:
                shear_y = float(g.uniform(shears[2], shears[3]))
        return angle, translations, scale, (shear_x, shear_y)

    def _apply(self, x):
        H, W = x.shape[-2:]
        angle, t, s, sh = self.get_params(self.degrees, self.translate, self.scale, self.shear, (W, H))
        return affine(x, angle, t, s, sh, self.interpolation, self.fill, self.center)


def affine(x, angle, translate, scale, shear, interpolation="nearest", fill=0, center=None):
    """Affine transform of a (..., C, H, W) array (torchvision's ``F.affine`` conventions)."""
    H, W = x.shape[-2:]
    c = [0.0, 0.0] if center is None else [float(ci) - s * 0.5 for ci, s in zip(center, (W, H))]
    m = F.inverse_affine_matrix(c, angle, [float(t) for t in translate], scale, shear)
    return F.affine_sample(x, m, None, interpolation, fill)


# ---------------------------------------------------------------------------------------------
# batched augmentation: (N, C, H, W) at once, independent draws per sample
# ---------------------------------------------------------------------------------------------
def _batch_in(batch, name):
    if isinstance(batch, Tensor):
        x, is_tensor = batch.array, True
    elif isinstance(batch, np.ndarray) or hasattr(batch, "__cuda_array_interface__"):
        x, is_tensor = batch, False
    else:
        raise TypeError(f"{name}: expected a Tensor or an array of shape (N, C, H, W), got {type(batch).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a batch of shape (N, C, H, W), got shape {tuple(x.shape)}")
    return x, (Tensor._make if is_tensor else (lambda a: a))


class BatchRandomHorizontalFlip:
    """Flip each sample of an (N, C, H, W) batch left-right independently with probability p."""

    deterministic = False

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, batch):
        x, wrap = _batch_in(batch, "BatchRandomHorizontalFlip")
        flip = _rng.rng().random(x.shape[0]) < self.p
        xp = backend.array_module(x)
        out = x.copy()
        if flip.any():
            idx = xp.asarray(np.nonzero(flip)[0])
            out[idx] = x[idx][..., ::-1]
        return wrap(out)

    def __repr__(self):
        return f"BatchRandomHorizontalFlip(p={self.p})"


class BatchRandomCrop:
    """RandomCrop for an (N, C, H, W) batch: pad the whole batch once, then gather each sample's
    window (its own uniform offset) with one fancy-index."""

    deterministic = False

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _pair(size, "BatchRandomCrop")
        self.padding = padding
        self._pads = None if padding is None else _padding4(padding, "BatchRandomCrop")
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, batch):
        x, wrap = _batch_in(batch, "BatchRandomCrop")
        if self._pads is not None:
            x = F.pad(x, self._pads, self.fill, self.padding_mode)
        th, tw = self.size
        H, W = x.shape[-2:]
        if self.pad_if_needed and W < tw:
            x = F.pad(x, (tw - W, 0, tw - W, 0), self.fill, self.padding_mode)
        if self.pad_if_needed and H < th:
            x = F.pad(x, (0, th - H, 0, th - H), self.fill, self.padding_mode)
        N, C, H, W = x.shape
        if H < th or W < tw:
            raise ValueError(f"BatchRandomCrop: required crop size {(th, tw)} is larger than input image size {(H, W)}")
        g = _rng.rng()
        i = g.integers(0, H - th + 1, size=N)
        j = g.integers(0, W - tw + 1, size=N)
        xp = backend.array_module(x)
        windows = xp.lib.stride_tricks.sliding_window_view(x, (th, tw), axis=(2, 3))
        out = windows[xp.arange(N), :, xp.asarray(i), xp.asarray(j)]   # (N, C, th, tw)
        return wrap(xp.ascontiguousarray(out))

    def __repr__(self):
        return f"BatchRandomCrop(size={self.size}, padding={self.padding})"


# ---------------------------------------------------------------------------------------------
# input standardisation fitted on the training set
# ---------------------------------------------------------------------------------------------
class StandardScaler(Transform):
    """Standardise inputs with statistics of the training set, as ``sklearn``'s StandardScaler:
    ``(x - mean) / std`` with the population std (ddof=0); zero std is replaced by 1.

    ``per="channel"``: one mean/std per channel (statistics over samples and pixels, shape
    (C, 1, 1)); ``per="pixel"``: one per pixel position and channel (statistics over samples,
    shape = sample shape). Fit with ``fit(X)``: an (N, C, H, W) / (N, D) array or Tensor, or a
    Dataset / iterable of samples (the first element of tuple samples is used), streamed in float64.
    """

    def __init__(self, per="channel", with_mean=True, with_std=True, eps=0.0):
        if per not in ("channel", "pixel"):
            raise ValueError(f"StandardScaler: per must be 'channel' or 'pixel', got {per!r}")
        self.per = per
        self.with_mean = with_mean
        self.with_std = with_std
        self.eps = eps
        self.mean_ = None
        self.std_ = None
        self.n_samples_seen_ = 0

    # -- fitting --
    def _reduce_axes(self, ndim_sample):
        if self.per == "pixel" or ndim_sample < 3:
            return ()
        return tuple(range(ndim_sample - 2, ndim_sample))  # H, W of (..., C, H, W)

    def partial_fit(self, X):
        """Add a batch ``X`` (N, *sample_shape) to the running statistics."""
        x = X.array if isinstance(X, Tensor) else np.asarray(X)
        x = backend.to_numpy(x) if not isinstance(x, np.ndarray) else x
        if x.ndim < 2:
            raise ValueError(f"StandardScaler.fit: expected (N, features...) data, got shape {x.shape}")
        x = x.astype(np.float64)
        axes = (0,) + tuple(a + 1 for a in self._reduce_axes(x.ndim - 1))
        n = x.shape[0] * int(np.prod([x.shape[a] for a in axes[1:]], dtype=np.int64))
        bmean = x.mean(axis=axes, keepdims=True)[0]
        bm2 = ((x - bmean[None]) ** 2).sum(axis=axes, keepdims=True)[0]
        if self.n_samples_seen_ == 0:
            self._count, self._mean, self._m2 = n, bmean, bm2
        else:
            if bmean.shape != self._mean.shape:
                raise ValueError(f"StandardScaler.fit: sample shape changed: {bmean.shape} vs {self._mean.shape}")
            tot = self._count + n
            delta = bmean - self._mean
            self._mean = self._mean + delta * (n / tot)
            self._m2 = self._m2 + bm2 + delta ** 2 * (self._count * n / tot)
            self._count = tot
        self.n_samples_seen_ += x.shape[0]
        self._finalize()
        return self

    def _finalize(self):
        var = self._m2 / self._count
        std = np.sqrt(var + self.eps)
        std[std == 0] = 1.0
        self.mean_ = self._mean if self.with_mean else np.zeros_like(self._mean)
        self.std_ = std if self.with_std else np.ones_like(std)

    def fit(self, X, batch_size=1024):
        """Compute mean and std from training data ``X`` (array/Tensor, Dataset or iterable)."""
        self.n_samples_seen_ = 0
        if isinstance(X, (Tensor, np.ndarray)):
            return self.partial_fit(X)
        if hasattr(X, "__getitem__") and hasattr(X, "__len__"):
            samples = (X[i] for i in range(len(X)))
        else:
            samples = iter(X)
        buf = []
        for s in samples:
            buf.append(_first(s))
            if len(buf) == batch_size:
                self.partial_fit(np.stack(buf))
                buf = []
        if buf:
            self.partial_fit(np.stack(buf))
        if self.n_samples_seen_ == 0:
            raise ValueError("StandardScaler.fit: no samples")
        return self

    def fit_transform(self, X):
        return self.fit(X).apply_batch(X)

    # -- applying --
    def _apply(self, x):
        if self.mean_ is None:
            raise RuntimeError("StandardScaler: call fit() on the training set before using it")
        dt = x.dtype if x.dtype.kind == "f" else np.float32
        xp = backend.array_module(x)
        mean, std = xp.asarray(self.mean_.astype(dt)), xp.asarray(self.std_.astype(dt))
        if x.shape[x.ndim - mean.ndim:] != mean.shape and not self._broadcasts(x.shape, mean.shape):
            raise ValueError(f"StandardScaler: input of shape {tuple(x.shape)} does not match the fitted statistics "
                             f"of shape {mean.shape}")
        return (x.astype(dt, copy=False) - mean) / std

    @staticmethod
    def _broadcasts(shape, stat_shape):
        tail = shape[len(shape) - len(stat_shape):]
        return len(tail) == len(stat_shape) and all(s == 1 or s == t for s, t in zip(stat_shape, tail))

    def __call__(self, img):
        return self._apply_any(img, batched=False)

    def apply_batch(self, batch):
        return self._apply_any(batch, batched=True)

    def _apply_any(self, img, batched):
        if isinstance(img, Tensor):
            return Tensor._make(self._apply(img.array))
        return self._apply(np.asarray(img))

    def inverse_transform(self, x):
        arr = x.array if isinstance(x, Tensor) else np.asarray(x)
        out = arr * self.std_.astype(arr.dtype) + self.mean_.astype(arr.dtype)
        return Tensor._make(out) if isinstance(x, Tensor) else out

    def to_normalize(self):
        """The equivalent ``Normalize`` (per-channel scalers only)."""
        if self.per != "channel" or self.mean_ is None:
            raise ValueError("StandardScaler.to_normalize: needs a fitted per-channel scaler")
        return Normalize(self.mean_.reshape(-1).tolist(), self.std_.reshape(-1).tolist())

    def state_dict(self):
        return {"per": self.per, "mean": None if self.mean_ is None else self.mean_.copy(),
                "std": None if self.std_ is None else self.std_.copy(), "n_samples_seen": self.n_samples_seen_}

    def load_state_dict(self, state):
        self.per = state["per"]
        self.mean_ = None if state["mean"] is None else np.asarray(state["mean"], dtype=np.float64)
        self.std_ = None if state["std"] is None else np.asarray(state["std"], dtype=np.float64)
        self.n_samples_seen_ = int(state.get("n_samples_seen", 0))

    def __repr__(self):
        return f"StandardScaler(per={self.per!r}, fitted={self.mean_ is not None})"


def _first(sample):
    if isinstance(sample, (tuple, list)):
        sample = sample[0]
    if isinstance(sample, Tensor):
        return backend.to_numpy(sample.array)
    return np.asarray(sample)
