"""Normalisation layers: ``BatchNorm1d/2d/3d`` (running statistics exactly like PyTorch),
``LayerNorm``, ``GroupNorm``."""
from __future__ import annotations

import numpy as np

from ..ops.normalization import batch_norm, layer_norm, group_norm
from . import init
from .module import Module
from .parameter import _full, _on_device, _set_parameters

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm"]


def _set_affine(module, affine, bias, shape, dtype, device):
    """The norm layers' affine parameters: ``weight`` = 1 and ``bias`` = 0 of ``shape`` (``bias``
    None when not ``bias``), both None when not ``affine``."""
    _set_parameters(module, weight=_full(shape, 1.0, dtype, device) if affine else None,
                    bias=_full(shape, 0.0, dtype, device) if affine and bias else None)


def _reset_affine(module, affine):
    if affine:
        init.ones_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)


class _BatchNorm(Module):
    _expected = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _set_affine(self, affine, bias, (num_features,), dtype, device)
        if track_running_stats:
            self.register_buffer("running_mean", _full((num_features,), 0.0, dtype, device))
            self.register_buffer("running_var", _full((num_features,), 1.0, dtype, device))
            self.register_buffer("num_batches_tracked", _on_device(np.array(0, dtype=np.int64), device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self, self.affine)

    def _check_input_dim(self, input):
        if input.ndim not in self._expected:
            dims = " or ".join(f"{d}D" for d in self._expected)
            raise ValueError(f"{self!r}: expected {dims} input (got {input.ndim}D input of shape "
                             f"{tuple(input.shape)})")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input with {self.num_features} channels in dim 1, got shape "
                             f"{tuple(input.shape)}")

    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        training = self.training
        if training and self.track_running_stats and self.num_batches_tracked is not None:
            nbt = self.num_batches_tracked
            nbt.array[...] += 1
            nbt._version[0] += 1
            if self.momentum is None:      # cumulative moving average
                factor = 1.0 / float(nbt.array)
        bn_training = training or (self.running_mean is None and self.running_var is None)
        use_stats = not training or self.track_running_stats
        return batch_norm(input, self.running_mean if use_stats else None,
                          self.running_var if use_stats else None, self.weight, self.bias,
                          bn_training, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input."""
    _expected = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input."""
    _expected = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch norm over (N, C, D, H, W) input."""
    _expected = (5,)


class LayerNorm(Module):
    """Normalises over the last ``len(normalized_shape)`` dims; per-element affine."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _set_affine(self, elementwise_affine, bias, self.normalized_shape, dtype, device)

    def reset_parameters(self):
        _reset_affine(self, self.elementwise_affine)

    def forward(self, input):
        k = len(self.normalized_shape)
        if tuple(input.shape[input.ndim - k:]) != self.normalized_shape or input.ndim < k:
            raise ValueError(f"{self!r}: expected input with shape [*, "
                             f"{', '.join(map(str, self.normalized_shape))}], got shape {tuple(input.shape)}")
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalises each group of ``num_channels // num_groups`` channels; per-channel affine."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _set_affine(self, affine, bias, (num_channels,), dtype, device)

    def reset_parameters(self):
        _reset_affine(self, self.affine)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_channels}, *), got shape "
                             f"{tuple(input.shape)}")
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.bias is not None}"
