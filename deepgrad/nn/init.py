"""Weight initialisers (``deepgrad.nn.init``), with PyTorch's names, arguments and formulas.

Every initialiser fills its tensor in place (no graph is recorded), draws from deepgrad's global
generator unless ``generator=`` is given, and returns the tensor.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend
from ..random import rng
from ..tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_", "dirac_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_",
           "orthogonal_", "sparse_"]


def calculate_gain(nonlinearity, param=None):
    r"""The recommended gain for a nonlinearity (PyTorch's ``torch.nn.init.calculate_gain``).

    ================= ====================================================
    nonlinearity      gain
    ================= ====================================================
    Linear / Identity :math:`1`
    Conv{1,2,3}D      :math:`1`
    Sigmoid           :math:`1`
    Tanh              :math:`\frac{5}{3}`
    ReLU              :math:`\sqrt{2}`
    Leaky Relu        :math:`\sqrt{\frac{2}{1 + \text{negative\_slope}^2}}`
    SELU              :math:`\frac{3}{4}`
    ================= ====================================================
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    elif nonlinearity == "tanh":
        return 5.0 / 3
    elif nonlinearity == "relu":
        return math.sqrt(2.0)
    elif nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int) or isinstance(param, float):
            # True/False are instances of int, hence the check above
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    elif nonlinearity == "selu":
        return 3.0 / 4  # PyTorch's value for self-normalising networks
    else:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _check(tensor, name):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.{name}: expected a Tensor, got {type(tensor).__name__}")


def _fill(tensor, values):
    """Write ``values`` into ``tensor`` in place (no graph; bumps the version counter)."""
    a = tensor.array
    v = np.asarray(values)
    if v.dtype != a.dtype:
        v = v.astype(a.dtype)
    a[...] = backend.to_device(v, backend.device_of(a)) if backend.array_module(a) is not np else v
    tensor._version[0] += 1
    return tensor


def _drawable_in_place(arr):
    return type(arr) is np.ndarray and arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous


def _float_draw_dtype(tensor):
    return np.float32 if tensor.array.dtype in (np.float32, np.float16) else np.float64


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with draws from U(a, b)."""
    _check(tensor, "uniform_")
    arr = tensor.array
    if _drawable_in_place(arr):  # draw straight into the parameter: no float64 temporary
        rng(generator).random(out=arr, dtype=arr.dtype)
        arr *= arr.dtype.type(b - a)
        arr += arr.dtype.type(a)
        tensor._version[0] += 1
        return tensor
    return _fill(tensor, rng(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with draws from N(mean, std^2)."""
    _check(tensor, "normal_")
    arr = tensor.array
    if _drawable_in_place(arr):
        rng(generator).standard_normal(out=arr, dtype=arr.dtype)
        arr *= arr.dtype.type(std)
        arr += arr.dtype.type(mean)
        tensor._version[0] += 1
        return tensor
    return _fill(tensor, rng(generator).normal(mean, std, tensor.shape))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std^2) conditioned on [a, b] (rejection sampling: exact distribution)."""
    _check(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    g = rng(generator)
    n = tensor.numel()
    out = np.empty(n, dtype=np.float64)
    filled = 0
    lo, hi = (a - mean) / std if std > 0 else -np.inf, (b - mean) / std if std > 0 else np.inf
    # acceptance probability of one standard-normal draw
    p = 0.5 * (math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2))) if std > 0 else 1.0
    if p < 1e-6:
        raise ValueError(f"trunc_normal_: the window [{a}, {b}] holds a probability of only {p:.3g} of "
                         f"N({mean}, {std}^2); move it closer to the mean")
    while filled < n:
        k = int((n - filled) / p * 1.1) + 16
        z = g.standard_normal(k)
        z = z[(z >= lo) & (z <= hi)][: n - filled]
        out[filled:filled + z.size] = z
        filled += z.size
    vals = out * std + mean
    return _fill(tensor, np.clip(vals, a, b).reshape(tensor.shape))


def constant_(tensor, val):
    _check(tensor, "constant_")
    tensor.array[...] = val
    tensor._version[0] += 1
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def eye_(tensor):
    """Fill a 2-D tensor with the identity (preserves the identity of the inputs in Linear layers)."""
    _check(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    xp = backend.array_module(tensor.array)
    tensor.array[...] = xp.eye(*tensor.shape, dtype=tensor.dtype)
    tensor._version[0] += 1
    return tensor


def dirac_(tensor, groups=1):
    """Fill a {3, 4, 5}-D tensor with the Dirac delta (identity convolution), per group."""
    _check(tensor, "dirac_")
    d = tensor.ndim
    if d not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = sizes[0] // groups
    min_dim = min(out_per_group, sizes[1])
    a = tensor.array
    a[...] = 0
    for g in range(groups):
        for k in range(min_dim):
            idx = (g * out_per_group + k, k) + tuple(s // 2 for s in sizes[2:])
            a[idx] = 1
    tensor._version[0] += 1
    return tensor


def _calculate_fan_in_and_fan_out(tensor):
    dimensions = tensor.ndim
    if dimensions < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    num_input_fmaps = tensor.shape[1]
    num_output_fmaps = tensor.shape[0]
    receptive_field_size = 1
    for s in tensor.shape[2:]:
        receptive_field_size *= s
    return num_input_fmaps * receptive_field_size, num_output_fmaps * receptive_field_size


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor, a, mode, nonlinearity, name):
    """He et al.'s ``gain / sqrt(fan_mode)``; None (with PyTorch's warning) for a zero-element tensor."""
    _check(tensor, name)
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op")
        return None
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan_mode) (He et al., 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2) with std = gain / sqrt(fan_mode) (He et al., 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain=1, generator=None):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al., 2013)."""
    _check(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = rng(generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    d = np.sign(np.diag(r))
    d[d == 0] = 1
    q = q * d
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape))


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """A 2-D tensor with a fraction ``sparsity`` of each column zero, the rest N(0, std^2)."""
    _check(tensor, "sparse_")
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    num_zeros = int(math.ceil(sparsity * rows))
    g = rng(generator)
    vals = g.normal(0.0, std, (rows, cols))
    for c in range(cols):
        vals[g.permutation(rows)[:num_zeros], c] = 0
    return _fill(tensor, vals)


# PyTorch's deprecated non-underscore aliases
uniform = uniform_
normal = normal_
constant = constant_
xavier_uniform = xavier_uniform_
xavier_normal = xavier_normal_
kaiming_uniform = kaiming_uniform_
kaiming_normal = kaiming_normal_
orthogonal = orthogonal_
