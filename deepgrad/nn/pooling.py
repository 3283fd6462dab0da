"""Pooling and resampling layers (PyTorch's names, arguments and reprs), plus the lecture notes'
``DivisiveNormalization`` (002: ``n = x / sqrt(x**2 (*) 1_{nh x nw x nd})``)."""
from __future__ import annotations

from ..ops import conv as _C
from ..ops import pool as _P
from ..ops.shape import pad as _pad
from ..tensor import Tensor
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxUnpool1d", "MaxUnpool2d", "AvgPool1d", "AvgPool2d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "LPPool1d",
           "LPPool2d", "LocalResponseNorm", "DivisiveNormalization", "ZeroPad1d", "ZeroPad2d",
           "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d",
           "ReplicationPad2d", "CircularPad1d", "CircularPad2d", "Upsample", "UpsamplingNearest2d",
           "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle"]


class _Layer(Module):
    """Re-raise the functional's errors prefixed with this layer's repr."""

    def _call(self, fn, *args, **kwargs):
        if args and not isinstance(args[0], Tensor):
            raise TypeError(f"{self!r}: expected a Tensor input, got {type(args[0]).__name__}")
        try:
            return fn(*args, **kwargs)
        except RuntimeError as e:
            shape = tuple(args[0].shape)
            raise RuntimeError(f"{self!r} (input of shape {shape}): {e}") from None


class _MaxPoolNd(_Layer):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self):
        return ("kernel_size={kernel_size}, stride={stride}, padding={padding}, dilation={dilation}, "
                "ceil_mode={ceil_mode}".format(**self.__dict__))


class MaxPool1d(_MaxPoolNd):
    def forward(self, input):
        return self._call(_P.max_pool1d, input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class MaxPool2d(_MaxPoolNd):
    def forward(self, input):
        return self._call(_P.max_pool2d, input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class _MaxUnpoolNd(_Layer):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        n = self._nd
        name = type(self).__name__
        self.kernel_size = _C._ntuple(kernel_size, n, "kernel_size", name)
        self.stride = _C._ntuple(stride if stride is not None else kernel_size, n, "stride", name)
        self.padding = _C._ntuple(padding, n, "padding", name)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    _nd = 1

    def forward(self, input, indices, output_size=None):
        return self._call(_P.max_unpool1d, input, indices, self.kernel_size, self.stride, self.padding,
                          output_size)


class MaxUnpool2d(_MaxUnpoolNd):
    _nd = 2

    def forward(self, input, indices, output_size=None):
        return self._call(_P.max_unpool2d, input, indices, self.kernel_size, self.stride, self.padding,
                          output_size)


class AvgPool1d(_Layer):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = _C._ntuple(kernel_size, 1, "kernel_size", "AvgPool1d")
        self.stride = _C._ntuple(stride if stride is not None else kernel_size, 1, "stride", "AvgPool1d")
        self.padding = _C._ntuple(padding, 1, "padding", "AvgPool1d")
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        return self._call(_P.avg_pool1d, input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)


class AvgPool2d(_Layer):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        return self._call(_P.avg_pool2d, input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


class _AdaptiveNd(_Layer):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = output_size
        if self._max:
            self.return_indices = return_indices

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveNd):
    _max = False

    def __init__(self, output_size):
        super().__init__(output_size)

    def forward(self, input):
        return self._call(_P.adaptive_avg_pool1d, input, self.output_size)


class AdaptiveAvgPool2d(_AdaptiveNd):
    _max = False

    def __init__(self, output_size):
        super().__init__(output_size)

    def forward(self, input):
        return self._call(_P.adaptive_avg_pool2d, input, self.output_size)


class AdaptiveMaxPool1d(_AdaptiveNd):
    _max = True

    def forward(self, input):
        return self._call(_P.adaptive_max_pool1d, input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveNd):
    _max = True

    def forward(self, input):
        return self._call(_P.adaptive_max_pool2d, input, self.output_size, self.return_indices)


class _LPPoolNd(_Layer):
    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def extra_repr(self):
        return ("norm_type={norm_type}, kernel_size={kernel_size}, stride={stride}, "
                "ceil_mode={ceil_mode}".format(**self.__dict__))


class LPPool1d(_LPPoolNd):
    def forward(self, input):
        return self._call(_P.lp_pool1d, input, float(self.norm_type), self.kernel_size, self.stride,
                          self.ceil_mode)


class LPPool2d(_LPPoolNd):
    """``(sum over each window of x**p) ** (1/p)``: the notes' Lp pooling of strength p."""

    def forward(self, input):
        return self._call(_P.lp_pool2d, input, float(self.norm_type), self.kernel_size, self.stride,
                          self.ceil_mode)


class LocalResponseNorm(_Layer):
    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def extra_repr(self):
        return "{size}, alpha={alpha}, beta={beta}, k={k}".format(**self.__dict__)

    def forward(self, input):
        return self._call(_P.local_response_norm, input, self.size, self.alpha, self.beta, self.k)


class DivisiveNormalization(_Layer):
    """Divisive normalisation (lecture notes 002): ``n = x / sqrt(eps + sum of x**2 over the
    nh x nw x nd neighbourhood of each position)``, the neighbourhood centred and zero padded so
    the output has the input's shape; ``depth=None`` takes all channels (the notes' ``nd = xd``)."""

    def __init__(self, size=(3, 3), depth=None, eps=1e-6):
        super().__init__()
        self.size = _C._ntuple(size, 2, "size", "DivisiveNormalization")
        self.depth = depth
        self.eps = eps

    def extra_repr(self):
        return f"size={self.size}, depth={self.depth}, eps={self.eps}"

    def forward(self, input):
        return self._call(_P.divisive_normalization, input, self.size, self.depth, self.eps)


class _PadNd(_Layer):
    _nd = 2
    _mode = "constant"

    def __init__(self, padding, value=0.0):
        super().__init__()
        n = 2 * self._nd
        self.padding = _C._ntuple(padding, n, "padding", type(self).__name__)
        if self._mode == "constant":
            self.value = value

    def extra_repr(self):
        if self._mode == "constant" and type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"

    def forward(self, input):
        if not isinstance(input, Tensor):
            raise TypeError(f"{self!r}: expected a Tensor input, got {type(input).__name__}")
        if input.ndim not in (self._nd + 1, self._nd + 2):
            raise RuntimeError(f"{self!r}: expected {self._nd + 1}D or {self._nd + 2}D input, got input of "
                               f"shape {tuple(input.shape)}")
        value = getattr(self, "value", 0.0)
        return self._call(_pad, input, self.padding, self._mode, value)


class ZeroPad1d(_PadNd):
    _nd = 1

    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ZeroPad2d(_PadNd):
    _nd = 2

    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ConstantPad1d(_PadNd):
    _nd = 1


class ConstantPad2d(_PadNd):
    _nd = 2


class ReflectionPad1d(_PadNd):
    _nd, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    _nd, _mode = 2, "reflect"


class ReplicationPad1d(_PadNd):
    _nd, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    _nd, _mode = 2, "replicate"


class CircularPad1d(_PadNd):
    _nd, _mode = 1, "circular"


class CircularPad2d(_PadNd):
    _nd, _mode = 2, "circular"


class Upsample(_Layer):
    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def extra_repr(self):
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        return info + ", mode=" + repr(self.mode)

    def forward(self, input):
        return self._call(_P.interpolate, input, self.size, self.scale_factor, self.mode, self.align_corners,
                          recompute_scale_factor=self.recompute_scale_factor)


class UpsamplingNearest2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(_Layer):
    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"

    def forward(self, input):
        return self._call(_P.pixel_shuffle, input, self.upscale_factor)


class PixelUnshuffle(_Layer):
    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"

    def forward(self, input):
        return self._call(_P.pixel_unshuffle, input, self.downscale_factor)
