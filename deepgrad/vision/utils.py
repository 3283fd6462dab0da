"""torchvision.utils on deepgrad: ``make_grid`` tiles a batch of images into one, ``save_image``
writes it as a PNG (or any format PIL knows), atomically."""
from __future__ import annotations

import math
import os

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["make_grid", "save_image"]


def _as_array(tensor, name):
    if isinstance(tensor, (list, tuple)):
        if not tensor:
            raise ValueError(f"{name}: got an empty list of images")
        arrays = [_as_array(t, name) for t in tensor]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"{name}: all images in the list must have one shape, got {sorted(shapes)}")
        return np.stack(arrays)
    if isinstance(tensor, Tensor):
        return backend.to_numpy(tensor.detach().array)
    if isinstance(tensor, np.ndarray):
        return tensor
    raise TypeError(f"{name}: expected a Tensor or a list of Tensors, got {type(tensor).__name__}")


def make_grid(tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0.0):
    """Tile ``tensor`` — ``(B, C, H, W)``, ``(C, H, W)``, ``(H, W)`` or a list of ``(C, H, W)`` —
    into one ``(3 or C, H', W')`` image: ``nrow`` images per row, ``padding`` pixels of
    ``pad_value`` between and around them. One-channel images become three-channel (grey) images.

    ``normalize=True`` shifts each image (``scale_each``) or the whole batch into [0, 1] using
    ``value_range=(low, high)`` or, by default, the data's own min and max.
    """
    a = _as_array(tensor, "make_grid")
    a = a.copy() if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 3:
        if a.shape[0] == 1:
            a = np.concatenate([a, a, a], axis=0)
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"make_grid: expected a 2-D, 3-D or 4-D tensor, got shape {a.shape}")
    if a.shape[1] == 1:
        a = np.concatenate([a, a, a], axis=1)
    if value_range is not None and not (isinstance(value_range, (tuple, list)) and len(value_range) == 2):
        raise TypeError(f"make_grid: value_range must be a (low, high) pair, got {value_range!r}")

    def norm(img, rng):
        low, high = rng if rng is not None else (float(img.min()), float(img.max()))
        np.clip(img, low, high, out=img)
        img -= low
        img /= max(high - low, 1e-5)

    if normalize:
        if scale_each:
            for img in a:
                norm(img, value_range)
        else:
            norm(a, value_range)
    if a.shape[0] == 1:
        return Tensor._make(np.ascontiguousarray(a[0]))
    n, c, h, w = a.shape
    xmaps = min(nrow, n)
    ymaps = int(math.ceil(n / xmaps))
    height, width = h + padding, w + padding
    grid = np.full((c, height * ymaps + padding, width * xmaps + padding), pad_value, dtype=a.dtype)
    for k in range(n):
        y, x = divmod(k, xmaps)
        grid[:, y * height + padding: y * height + padding + h, x * width + padding: x * width + padding + w] = a[k]
    return Tensor._make(grid)


def save_image(tensor, fp, format=None, **kwargs):
    """``make_grid(tensor, **kwargs)`` scaled from [0, 1] to 0-255 and written to ``fp`` (a path,
    written atomically, or a binary file object) as an image; ``format`` defaults to the file
    name's extension."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        raise ImportError("save_image needs Pillow: pip install pillow") from None
    grid = make_grid(tensor, **kwargs).array
    img = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    if img.shape[2] == 1:
        img = img[:, :, 0]
    pil = Image.fromarray(np.ascontiguousarray(img))
    if hasattr(fp, "write"):
        pil.save(fp, format=format)
        return
    from ..io import atomic_write
    path = os.fspath(fp)
    fmt = format or Image.registered_extensions().get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise ValueError(f"save_image: cannot tell the image format from {path!r}; pass format='PNG'")
    atomic_write(path, lambda f: pil.save(f, format=fmt))
