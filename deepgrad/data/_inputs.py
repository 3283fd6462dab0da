"""Reading one input file given to a trained model (``deepgrad predict``): an image or a ``.npy``.

Both readers follow the discipline of :mod:`deepgrad._files`: regular files only (a FIFO or a
symlink to ``/dev/zero`` is refused at once), sizes bounded *before* anything large is allocated,
and every failure a :class:`deepgrad._files.FileError` naming the file.

* Images (PNG, JPEG, ... through Pillow): the header is read first and an image with more than
  ``max_pixels`` pixels (default ``MAX_IMAGE_PIXELS`` = 4096 x 4096, or
  ``$DEEPGRAD_MAX_IMAGE_PIXELS``) is refused before it is decoded. The cap is deepgrad's own,
  checked per call: Pillow's global ``Image.MAX_IMAGE_PIXELS`` is left as the user set it. A file
  Pillow cannot identify or decode, or its own decompression-bomb refusal, becomes a FileError.
* ``.npy``: the header is parsed with NumPy's safe parser (no pickle, at most NumPy's 10,000-byte
  header limit, reported as such), the dtype must be a plain numeric one, and the declared shape is
  checked against ``max_bytes`` and against the file's real size before the data are read.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .._files import FileError, MiB, UnsafeFileError, check_alloc, open_regular

__all__ = ["read_image", "read_npy", "read_input", "MAX_IMAGE_PIXELS", "MAX_NPY_BYTES", "MAX_IMAGE_FILE_BYTES"]

MAX_IMAGE_PIXELS = int(os.environ.get("DEEPGRAD_MAX_IMAGE_PIXELS", 4096 * 4096))
MAX_IMAGE_FILE_BYTES = 256 * MiB
MAX_NPY_BYTES = int(os.environ.get("DEEPGRAD_MAX_NPY_BYTES", 256 * MiB))
NPY_MAX_HEADER_BYTES = 10000        # NumPy's own limit for a header read without trusting the file


def read_image(path, max_pixels=None, max_file_bytes=None) -> np.ndarray:
    """The pixels of an image file as an ndarray (H x W or H x W x C; palette images as RGBA).
    Refuses images over ``max_pixels`` pixels before decoding them."""
    cap = MAX_IMAGE_PIXELS if max_pixels is None else int(max_pixels)
    fcap = MAX_IMAGE_FILE_BYTES if max_file_bytes is None else int(max_file_bytes)
    try:
        from PIL import Image
    except ImportError:   # pragma: no cover
        raise FileError(path, "reading images needs Pillow (pip install pillow); or pass a .npy array") from None
    with open_regular(path, "image file") as f:
        size = os.fstat(f.fileno()).st_size
        if size > fcap:
            raise FileError(path, f"is {size:,} bytes, more than the {fcap:,} an image file may have")
        try:
            with warnings.catch_warnings():
                # Pillow warns (and past twice its global limit raises) about large images; the
                # check that decides is ours, below, before any pixel is decoded
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(f) as im:
                    w, h = im.size
                    if w <= 0 or h <= 0:
                        raise FileError(path, f"declares an empty image ({w}x{h})")
                    if w * h > cap:
                        raise FileError(path, f"is a {w}x{h} image ({w * h:,} pixels), more than the {cap:,} pixels "
                                              f"deepgrad decodes (a decompression bomb, or an image far larger than "
                                              f"the model's input; set max_pixels or $DEEPGRAD_MAX_IMAGE_PIXELS)")
                    if im.mode in ("P", "PA"):
                        im = im.convert("RGBA")
                    else:
                        im.load()
                    return np.asarray(im)
        except FileError:
            raise
        except Image.DecompressionBombError as e:
            raise FileError(path, f"refused as a decompression bomb ({e})") from None
        except Exception as e:  # noqa: BLE001 (Pillow's decoders raise many types for a bad file)
            kind = "not an image Pillow can read" if type(e).__name__ == "UnidentifiedImageError" \
                else f"cannot decode the image ({type(e).__name__}: {e})"
            raise FileError(path, kind) from None


def _npy_header(f, path):
    """``(shape, fortran_order, dtype)`` from the header of an open ``.npy`` file."""
    fmt = np.lib.format
    try:
        major, minor = fmt.read_magic(f)
    except ValueError as e:
        raise FileError(path, f"not a .npy file ({e})") from None
    if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
        raise FileError(path, f"unsupported .npy format version {major}.{minor}")
    # the header's declared length, read here so that an over-long one is named as such
    nlen = 2 if major == 1 else 4
    start = f.tell()
    raw = f.read(nlen)
    if len(raw) < nlen:
        raise FileError(path, "truncated .npy header")
    hlen = int.from_bytes(raw, "little")
    if hlen > NPY_MAX_HEADER_BYTES:
        raise FileError(path, f"declares a .npy header of {hlen:,} bytes, over NumPy's limit of "
                              f"{NPY_MAX_HEADER_BYTES:,} bytes for a header read without trusting the file")
    f.seek(start)
    try:
        if major == 1:
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=NPY_MAX_HEADER_BYTES)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=NPY_MAX_HEADER_BYTES)
    except (ValueError, SyntaxError, TypeError, OverflowError, MemoryError, RecursionError) as e:
        raise FileError(path, f"corrupt .npy header ({type(e).__name__}: {e})") from None
    return shape, fortran, dtype


def read_npy(path, max_bytes=None) -> np.ndarray:
    """The array stored in a ``.npy`` file, read without pickle; numeric dtypes only, at most
    ``max_bytes`` bytes of data (default ``MAX_NPY_BYTES``)."""
    cap = MAX_NPY_BYTES if max_bytes is None else int(max_bytes)
    with open_regular(path, ".npy file") as f:
        shape, fortran, dtype = _npy_header(f, path)
        if dtype.hasobject:
            raise UnsafeFileError(path, f"holds an object array (dtype {dtype}), which could run code when "
                                        f"loaded; deepgrad reads numeric arrays only")
        if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
            raise FileError(path, f"holds an array of dtype {dtype}; deepgrad reads numeric arrays only")
        nbytes = check_alloc(tuple(int(s) for s in shape), dtype.itemsize, cap, path, what=".npy array")
        left = os.fstat(f.fileno()).st_size - f.tell()
        if left < nbytes:
            raise FileError(path, f"truncated .npy data: the header declares shape {tuple(shape)} of {dtype} "
                                  f"({nbytes:,} bytes) but the file holds {left:,}")
        if left > nbytes:
            raise FileError(path, f"{left - nbytes:,} unexpected bytes after the .npy data of shape {tuple(shape)}")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise FileError(path, "the .npy file changed while it was read")
    a = np.frombuffer(data, dtype=dtype)
    a = a.reshape(shape[::-1]).T if fortran else a.reshape(shape)
    return a.astype(dtype.newbyteorder("="), copy=True)


def read_input(path, max_pixels=None, max_bytes=None) -> np.ndarray:
    """One model input: the array in a ``.npy`` file, else the pixels of an image."""
    if str(path).lower().endswith(".npy"):
        return read_npy(path, max_bytes)
    return read_image(path, max_pixels)
