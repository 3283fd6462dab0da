"""``deepgrad.nn.functional`` (``F``): the functional form of every layer, activation and loss.

Hot paths are single fused Functions: ``linear`` (``x @ W.T + b``; backward with three BLAS calls
when no graph of the gradient is wanted, with differentiable ops when one is), ``embedding``,
``cross_entropy`` / ``nll_loss`` (``deepgrad.ops.loss``) and the normalisations
(``deepgrad.ops.normalization``). The rest is composed from ``deepgrad.ops``.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from .. import ops as _ops
from ..ops.conv import *  # noqa: F401,F403  (conv1d/conv2d/... filled in by the conv engineer)
from ..ops.pool import *  # noqa: F401,F403  (max_pool2d/avg_pool2d/... likewise)
from ..ops.loss import cross_entropy, nll_loss, multi_margin_loss, _legacy_reduction, _check_reduction
from ..ops.normalization import batch_norm, layer_norm, group_norm
from ..ops.attention import scaled_dot_product_attention  # noqa: F401
from ..ops.linalg import linear, bilinear  # noqa: F401
from ..ops.elementwise import prelu  # noqa: F401
from ..ops.index import embedding  # noqa: F401
from ..ops.elementwise import (relu as _relu_op, leaky_relu as _leaky_relu_op, elu as _elu_op,
                               gelu as _gelu_op, silu as _silu_op, softplus as _softplus_op,
                               sigmoid, tanh, clamp, where, abs as _abs, log as _log, exp as _exp)
from ..random import rng
from ..tensor import Tensor

# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

def _apply(input, fn, inplace, name):
    """``fn(input)``, written into ``input`` (autograd-tracked, like PyTorch's ``op_``) when ``inplace``."""
    return input._inplace(name, fn) if inplace else fn(input)


def relu(input, inplace=False):
    return relu_(input) if inplace else _relu_op(input)


def relu_(input):
    # float32/64 written straight into input's array: ReLU's backward keeps only its mask
    from ..ops.elementwise import relu_ as _relu_inplace
    return _relu_inplace(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _apply(input, lambda x: _leaky_relu_op(x, negative_slope), inplace, "leaky_relu_")


def elu(input, alpha=1.0, inplace=False):
    return _elu_op(input, alpha)


def gelu(input, approximate="none"):
    return _gelu_op(input, approximate)


def silu(input, inplace=False):
    return _silu_op(input)


def softplus(input, beta=1.0, threshold=20.0):
    return _softplus_op(input, beta, threshold)


def threshold(input, threshold, value, inplace=False):
    return _apply(input, lambda x: where(x > threshold, x, value), inplace, "threshold_")


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError("hardtanh: min_val cannot be greater than max_val")
    return _apply(input, lambda x: clamp(x, min_val, max_val), inplace, "hardtanh_")


def selu(input, inplace=False):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return elu(input, alpha) * scale


def celu(input, alpha=1.0, inplace=False):
    return elu(input / alpha, 1.0) * alpha


def logsigmoid(input):
    return -softplus(-input)


def softsign(input):
    return input / (_abs(input) + 1.0)


def tanhshrink(input):
    return input - tanh(input)


def mish(input, inplace=False):
    return input * tanh(softplus(input))


def hardsigmoid(input, inplace=False):
    return clamp(input / 6.0 + 0.5, 0.0, 1.0)


def hardswish(input, inplace=False):
    return input * hardsigmoid(input)


def _softmax_dim(name, ndim):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  f"as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    if dtype is not None:
        input = input.to(dtype)
    return _ops.softmax(input, dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    if dtype is not None:
        input = input.to(dtype)
    return _ops.log_softmax(input, dim)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return softmax(-input, dim, dtype=dtype)


def glu(input, dim=-1):
    a, b = input.chunk(2, dim)
    return a * sigmoid(b)


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------

def _check_p(p, name="dropout"):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"{name} probability has to be between 0 and 1, but got {p}")


def _keep_mask(shape, p, dtype, like):
    """A mask of 0 and 1/(1-p), each entry kept with probability 1-p (inverted dropout)."""
    draw_dt = np.float64 if dtype == np.float64 else np.float32
    from ..cuda import _rng
    if backend.array_module(like) is not np and _rng.draws_on_device():   # drawn on the GPU (cuda/_rng.py)
        u = _rng.for_device(backend.device_of(like)).random(shape, draw_dt)
        mask = (u >= p).astype(dtype)
        mask *= dtype.type(1.0 / (1.0 - p))
        return mask
    u = rng().random(shape, dtype=draw_dt)
    mask = (u >= p).astype(dtype)
    mask *= dtype.type(1.0 / (1.0 - p))
    if backend.array_module(like) is not np:
        mask = backend.to_device(mask, backend.device_of(like))
    return mask


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        mask = backend.array_module(input.array).zeros(input.array.shape, input.array.dtype)
    else:
        mask = _keep_mask(input.array.shape, p, input.array.dtype, input.array)
    m = Tensor._make(mask)
    return _apply(input, lambda x: _ops.mul(x, m), inplace, "dropout_")


def _feature_dropout(input, p, training, inplace, batched_ndim, name):
    _check_p(p)
    if not training or p == 0.0:
        return input
    nd = input.ndim
    if nd not in (batched_ndim - 1, batched_ndim):
        raise RuntimeError(f"{name}: expected {batched_ndim - 1}D or {batched_ndim}D input, got "
                           f"shape {tuple(input.shape)}")
    lead = 2 if nd == batched_ndim else 1
    shape = tuple(input.shape[:lead]) + (1,) * (nd - lead)
    dt = input.array.dtype
    mask = np.zeros(shape, dt) if p == 1.0 else _keep_mask(shape, p, dt, input.array)
    m = Tensor._make(mask)
    return _apply(input, lambda x: _ops.mul(x, m), inplace, name + "_")


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, inplace, 3, "dropout1d")


def _feature_dropout_nc(input, p, training, inplace, name):
    """PyTorch's ``feature_dropout``: one draw per (dim 0, dim 1) entry, shared over the rest."""
    if not training or p == 0.0:
        return input
    if input.ndim < 2:
        raise RuntimeError(f"{name}: Feature dropout requires at least 2 dimensions in the input, got shape "
                           f"{tuple(input.shape)}")
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    dt = input.array.dtype
    mask = (backend.array_module(input.array).zeros(shape, dt) if p == 1.0
            else _keep_mask(shape, p, dt, input.array))
    m = Tensor._make(mask)
    return _apply(input, lambda x: _ops.mul(x, m), inplace, name + "_")


def _wrong_dim_warning(name, nd, spatial, expected):
    warnings.warn(f"{name}: Received a {nd}-D input to {name}, which is deprecated and will result in an error "
                  f"in a future release. To retain the behavior and silence this warning, please use dropout "
                  f"instead. Note that {name} exists to provide channel-wise dropout on inputs with {spatial} "
                  f"spatial dimensions, a channel dimension, and an optional batch dimension (i.e. {expected} "
                  f"inputs).", UserWarning, stacklevel=3)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout for (N, C, H, W). As PyTorch: other ranks warn; a 3-D input is read as
    (N, C, L) (one draw per (n, c)), and any input draws one value per entry of its first two dims."""
    _check_p(p)
    nd = input.ndim
    if nd not in (3, 4):
        _wrong_dim_warning("dropout2d", nd, 2, "3D or 4D")
    if nd == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel "
                      "dim. This behavior will change in a future release to interpret the input as one without "
                      "a batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout "
                      "behavior, please switch to using dropout1d instead.", UserWarning, stacklevel=2)
    return _feature_dropout_nc(input, p, training, inplace, "dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout for (N, C, D, H, W) or (C, D, H, W). As PyTorch, other ranks warn and
    are read as unbatched: one draw per entry of dim 0."""
    _check_p(p)
    nd = input.ndim
    if nd not in (4, 5):
        _wrong_dim_warning("dropout3d", nd, 3, "4D or 5D")
    if nd == 5:
        return _feature_dropout_nc(input, p, training, inplace, "dropout3d")
    if not training or p == 0.0:
        return input
    if nd == 0:
        raise RuntimeError("dropout3d: Feature dropout requires at least 2 dimensions in the input, got a 0-d "
                           "tensor")
    shape = (input.shape[0],) + (1,) * (nd - 1)
    dt = input.array.dtype
    mask = (backend.array_module(input.array).zeros(shape, dt) if p == 1.0
            else _keep_mask(shape, p, dt, input.array))
    m = Tensor._make(mask)
    return _apply(input, lambda x: _ops.mul(x, m), inplace, "dropout3d_")


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    _check_p(p)
    if not training or p == 0.0:
        return input
    alpha_p = -1.7580993408473766
    keep = 1.0 - p
    a = (keep + alpha_p * alpha_p * keep * p) ** -0.5
    b = -a * alpha_p * p
    dt = input.array.dtype
    kept = backend.asarray_on((rng().random(input.array.shape) >= p).astype(dt), input.array)
    return input * Tensor._make(kept * dt.type(a)) + Tensor._make(((1 - kept) * alpha_p * a + b).astype(dt))


def one_hot(tensor, num_classes=-1):
    return _ops.one_hot(tensor, num_classes)


def pad(input, pad, mode="constant", value=None):
    return _ops.pad(input, pad, mode, value)


# ---------------------------------------------------------------------------------------------
# Losses (cross_entropy, nll_loss, multi_margin_loss are fused ops in deepgrad.ops.loss)
# ---------------------------------------------------------------------------------------------

def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{reduction!r} is not a valid value for reduction (expected 'none', 'mean' or 'sum')")


def _pair(name, input, target):
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{name}: expected Tensors, got {type(input).__name__} and {type(target).__name__}")
    if tuple(input.shape) != tuple(target.shape):
        try:
            np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
        except ValueError:
            raise ValueError(f"{name}: the input of shape {tuple(input.shape)} and the target of shape "
                             f"{tuple(target.shape)} do not broadcast; they should have the same size") from None
        warnings.warn(f"{name}: using a target size {tuple(target.shape)} that is different to the input "
                      f"size {tuple(input.shape)}; this will likely lead to incorrect results due to "
                      f"broadcasting. Please ensure they have the same size.", stacklevel=3)
    if target.dtype != input.dtype and target.array.dtype.kind in "fiub":
        target = target.to(input.dtype)
    return input, target


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "mse_loss")
    input, target = _pair("mse_loss", input, target)
    d = input - target
    loss = d * d
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "l1_loss")
    input, target = _pair("l1_loss", input, target)
    loss = _abs(input - target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    input, target = _pair("smooth_l1_loss", input, target)
    if beta == 0.0:
        return l1_loss(input, target, reduction=reduction)
    d = input - target
    ad = _abs(d)
    loss = where(ad < beta, d * d * (0.5 / beta), ad - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    input, target = _pair("huber_loss", input, target)
    d = input - target
    ad = _abs(d)
    loss = where(ad < delta, d * d * 0.5, (ad - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy: using a target size ({tuple(target.shape)}) that is different "
                         f"to the input size ({tuple(input.shape)}) is deprecated. Please ensure they have "
                         f"the same size.")
    a = input.array
    if a.size and not bool(((a >= 0) & (a <= 1)).all()):      # NaN fails too, as in PyTorch
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1 "
                           "(apply sigmoid first, or use binary_cross_entropy_with_logits)")
    input, target = _pair("binary_cross_entropy", input, target)
    t = target.array
    if t.size and not bool(((t >= 0) & (t <= 1)).all()):
        raise RuntimeError("binary_cross_entropy: all elements of target should be between 0 and 1")
    log_x = clamp(_log(input), min=-100.0)
    log_1mx = clamp(_log(1.0 - input), min=-100.0)
    loss = -(target * log_x + (1.0 - target) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable formula:
    ``(1 - y) x + (1 + (pw - 1) y) softplus(-x)``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: target size ({tuple(target.shape)}) must be the "
                         f"same as input size ({tuple(input.shape)})")
    input, target = _pair("binary_cross_entropy_with_logits", input, target)
    sp = softplus(-input)
    if pos_weight is not None:
        lw = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input + lw * sp
    else:
        loss = (1.0 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || exp(input)) pointwise: ``target * (log target - input)`` (``input`` is log-probs)."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"kl_div: {reduction!r} is not a valid value for reduction "
                         f"(expected 'none', 'batchmean', 'sum' or 'mean')")
    input, target = _pair("kl_div", input, target)
    if log_target:
        loss = _exp(target) * (target - input)
    else:
        t = target.array
        pos = Tensor._make(t > 0)
        safe = where(pos, target, 1.0)
        loss = where(pos, target * _log(safe), target * 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size and the "
                      "support size; 'batchmean' divides only by the batch size and matches the maths "
                      "definition of KL divergence.", stacklevel=2)
    return _reduce(loss, reduction)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input / max(||input||_p, eps)`` along ``dim``."""
    if p == 2.0:
        n = _ops.sqrt((input * input).sum(dim, keepdim=True))
    else:
        n = (_abs(input) ** p).sum(dim, keepdim=True) ** (1.0 / p)
    return input / clamp(n, min=eps)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "cosine_embedding_loss")
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise RuntimeError(f"cosine_embedding_loss: expected two 1D or 2D inputs of the same shape, got "
                           f"{tuple(input1.shape)} and {tuple(input2.shape)}")
    d = input1.ndim - 1
    eps = 1e-12
    prod = (input1 * input2).sum(d)
    m1 = (input1 * input1).sum(d) + eps
    m2 = (input2 * input2).sum(d) + eps
    cos = prod / _ops.sqrt(m1 * m2)
    t = target.array if isinstance(target, Tensor) else np.asarray(target)
    zeros = cos * 0.0
    pos = where(Tensor._make(t == 1), 1.0 - cos, zeros)
    neg = where(Tensor._make(t == -1), clamp(cos - margin, min=0.0), zeros)
    return _reduce(pos + neg, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = clamp(-target * (input1 - input2) + margin, min=0.0)
    return _reduce(loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    t = target.array
    zeros = input * 0.0
    loss = where(Tensor._make(t == 1), input, zeros) + where(Tensor._make(t == -1),
                                                               clamp(margin - input, min=0.0), zeros)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _reduce(softplus(-target * input), reduction)


# ---------------------------------------------------------------------------------------------
# Sliding blocks, spatial sampling, distances (deepgrad.ops.sampling / deepgrad.ops.distance)
# ---------------------------------------------------------------------------------------------
from ..ops.sampling import unfold, fold, affine_grid, grid_sample  # noqa: E402,F401
from ..ops.distance import (pairwise_distance, cosine_similarity, triplet_margin_loss,  # noqa: E402,F401
                            triplet_margin_with_distance_loss)
