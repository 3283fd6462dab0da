"""Convolution layers: ``Conv1d``, ``Conv2d``, ``ConvTranspose1d``, ``ConvTranspose2d``.

Parameters, initialisation (``kaiming_uniform_(a=sqrt(5))``, bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)))
and ``repr`` follow PyTorch. ``padding_mode`` other than ``'zeros'`` pads the input first
(reflect / replicate / circular) and convolves without padding.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..ops import conv as _C
from ..ops.shape import pad as _pad
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter, _on_device

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _empty(shape, dtype, device):
    return _on_device(np.empty(shape, dtype=backend.as_dtype(dtype)), device)


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", output_padding=0, device=None, dtype=None):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        in_channels, out_channels, groups = int(in_channels), int(out_channels), int(groups)
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {list(_PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        kernel_size = _C._ntuple(kernel_size, nd, "kernel_size", name)
        stride = _C._ntuple(stride, nd, "stride", name)
        dilation = _C._ntuple(dilation, nd, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: invalid padding string '{padding}', should be one of ['valid', 'same']")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
        else:
            padding = _C._ntuple(padding, nd, "padding", name)
        # PyTorch builds such a layer and raises RuntimeError on its first forward; the same type,
        # raised where the mistake is made
        if any(k <= 0 for k in kernel_size):
            raise RuntimeError(f"{name}: kernel size should be greater than zero, but got kernel_size={kernel_size}")
        if any(s <= 0 for s in stride):
            raise RuntimeError(f"{name}: non-positive stride is not supported, but got stride={stride}")
        if any(d <= 0 for d in dilation):
            raise RuntimeError(f"{name}: dilation should be greater than zero, but got dilation={dilation}")
        if not isinstance(padding, str) and any(p < 0 for p in padding):
            raise RuntimeError(f"{name}: negative padding is not supported, but got padding={padding}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.transposed = self._transposed
        self.output_padding = _C._ntuple(output_padding, nd, "output_padding", name)
        self.groups = groups
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            rev = []
            for d, k in zip(reversed(dilation), reversed(kernel_size)):
                total = d * (k - 1) if padding == "same" else 0
                rev += [total // 2, total - total // 2]
        else:
            rev = [p for p in reversed(padding) for _ in range(2)]
        self._reversed_padding_repeated_twice = rev
        if self._transposed:
            shape = (in_channels, out_channels // groups) + kernel_size
        else:
            shape = (out_channels, in_channels // groups) + kernel_size
        self.weight = Parameter(_empty(shape, dtype, device))
        if bias:
            self.bias = Parameter(_empty((out_channels,), dtype, device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)

    def _check_input(self, input):
        nd = self._nd
        if not isinstance(input, Tensor):
            raise TypeError(f"{self!r}: expected a Tensor input, got {type(input).__name__}")
        spatial = "L" if nd == 1 else "H, W"
        if input.ndim not in (nd + 1, nd + 2):
            raise RuntimeError(f"{self!r}: expected a {nd + 2}D input (N, C, {spatial}) or {nd + 1}D unbatched "
                               f"input (C, {spatial}), but got input of shape {tuple(input.shape)}")
        c = input.shape[-nd - 1]
        if c != self.in_channels:
            raise RuntimeError(f"{self!r}: expected input with {self.in_channels} channels (dim {input.ndim - nd - 1}),"
                               f" but got input of shape {tuple(input.shape)} with {c} channels")

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RuntimeError as e:
            raise RuntimeError(f"{self!r}: {e}") from None

    def forward(self, input):
        self._check_input(input)
        fn = _C.conv1d if self._nd == 1 else _C.conv2d
        if self.padding_mode != "zeros":
            x = self._call(_pad, input, self._reversed_padding_repeated_twice, self.padding_mode)
            return self._call(fn, x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return self._call(fn, input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                          self.groups)


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L) inputs."""

    _nd = 1


class Conv2d(_ConvNd):
    """2-d convolution over (N, C_in, H, W) inputs."""

    _nd = 2


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of ints, got '{padding}'")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        nd = self._nd
        output_size = [int(v) for v in output_size]
        if len(output_size) == nd + 2 or len(output_size) == nd + 1:
            output_size = output_size[-nd:]
        if len(output_size) != nd:
            raise ValueError(f"{self!r}: output_size must have {nd} or {nd + 2} elements (got {len(output_size)})")
        res = []
        for d in range(nd):
            n = input.shape[input.ndim - nd + d]
            lo = ((n - 1) * self.stride[d] - 2 * self.padding[d]
                  + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            hi = lo + self.stride[d] - 1
            if not lo <= output_size[d] <= hi:
                raise ValueError(f"{self!r}: requested an output size of {output_size}, but valid sizes range "
                                 f"from {lo} to {hi} (for an input of {list(input.shape[-nd:])})")
            res.append(output_size[d] - lo)
        return tuple(res)


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution (the gradient of Conv1d with respect to its input)."""

    _nd = 1

    def forward(self, input, output_size=None):
        self._check_input(input)
        op = self._output_padding(input, output_size)
        return self._call(_C.conv_transpose1d, input, self.weight, self.bias, self.stride, self.padding, op,
                          self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution (the gradient of Conv2d with respect to its input)."""

    _nd = 2

    def forward(self, input, output_size=None):
        self._check_input(input)
        op = self._output_padding(input, output_size)
        return self._call(_C.conv_transpose2d, input, self.weight, self.bias, self.stride, self.padding, op,
                          self.groups, self.dilation)
