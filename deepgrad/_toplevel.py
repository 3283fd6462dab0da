"""PyTorch's top-level spellings of functional ops (``torch.conv2d``, ``torch.batch_norm``,
``torch.embedding`` ...) and of in-place ops (``torch.relu_``, ``torch.exp_`` ...), plus small
top-level helpers and constants. Where the top-level signature differs from nn.functional's
(``torch.batch_norm`` puts weight first, ``torch.embedding`` takes the weight first, losses take an
integer reduction), the wrapper here reorders; everything computes through nn.functional / ops.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from .nn import functional as F
from .tensor import Tensor

_REDUCTION = {0: "none", 1: "mean", 2: "sum"}
# torch 2.13's top-level loss functions (not nn.functional's) default to no reduction when the
# argument is left out (measured); they are mirrored here with reduction=0.


def _red(reduction):
    return _REDUCTION.get(reduction, reduction) if isinstance(reduction, int) else reduction


# same positional signature as nn.functional
conv1d, conv2d = F.conv1d, F.conv2d
conv_transpose1d, conv_transpose2d = F.conv_transpose1d, F.conv_transpose2d
cosine_similarity, pairwise_distance = F.cosine_similarity, F.pairwise_distance
pixel_shuffle, pixel_unshuffle = F.pixel_shuffle, F.pixel_unshuffle
max_pool1d, max_pool2d, avg_pool1d = F.max_pool1d, F.max_pool2d, F.avg_pool1d
adaptive_avg_pool1d = F.adaptive_avg_pool1d
selu, celu = F.selu, F.celu


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):
    return F.group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled=True):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps,
                  cudnn_enabled=True):
    """Normalise each (sample, channel) over its spatial positions (torch.instance_norm)."""
    if running_mean is not None or running_var is not None or not use_input_stats:
        raise NotImplementedError("torch.instance_norm with running statistics is not implemented in deepgrad; "
                                  "use deepgrad.nn.functional.group_norm(x, num_channels) for instance statistics")
    c = input.shape[1]
    return F.group_norm(input, c, weight, bias, eps)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return F.embedding(indices, weight, None if padding_idx is None or padding_idx < 0 else padding_idx,
                       scale_grad_by_freq=scale_grad_by_freq)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=0):
    return F.binary_cross_entropy_with_logits(input, target, weight, reduction=_red(reduction), pos_weight=pos_weight)


def kl_div(input, target, reduction=0, log_target=False):
    return F.kl_div(input, target, reduction=_red(reduction), log_target=log_target)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=0):
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_red(reduction))


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=0):
    return F.cosine_embedding_loss(input1, input2, target, margin, reduction=_red(reduction))


def hinge_embedding_loss(input, target, margin=1.0, reduction=0):
    return F.hinge_embedding_loss(input, target, margin, reduction=_red(reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False, reduction=0):
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction=_red(reduction))


def alpha_dropout(input, p, train):
    return F.alpha_dropout(input, p, train)


def feature_dropout(input, p, train):
    """Dropout of whole channels (torch.feature_dropout): every dim after the first two shares a mask."""
    if not train or p == 0:
        return input
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return F.dropout2d(input, p, train)


def dropout_(input, p, train):
    return F.dropout(input, p, train, inplace=True)


def alpha_dropout_(input, p, train):
    return F.alpha_dropout(input, p, train, inplace=True)


def feature_dropout_(input, p, train):
    return F.dropout2d(input, p, train, inplace=True)


def adaptive_max_pool1d(input, output_size):
    return F.adaptive_max_pool1d(input, output_size, return_indices=True)


def threshold(input, threshold, value):
    return F.threshold(input, threshold, value)


def threshold_(input, threshold, value):
    return F.threshold(input, threshold, value, inplace=True)


def selu_(input):
    return F.selu(input, inplace=True)


def celu_(input, alpha=1.0):
    return F.celu(input, alpha, inplace=True)


def hardshrink(input, lambd=0.5):
    from .ops import where
    return where((input > lambd) | (input < -lambd), input, Tensor._make(input.array.dtype.type(0)))


def rsub(input, other, *, alpha=1):
    """``other - alpha * input``."""
    from .ops import sub
    return sub(other, input, alpha=alpha)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad=False):
    from .creation import tensor
    return tensor(s, dtype=backend.get_default_dtype() if dtype is None else dtype, device=device,
                  requires_grad=requires_grad)


def promote_types(type1, type2):
    a, b = backend.as_dtype(type1), backend.as_dtype(type2)
    if a.kind == "f" and b.kind != "f":
        return a
    if b.kind == "f" and a.kind != "f":
        return b
    return np.promote_types(a, b)


def result_type(tensor1, tensor2):
    from .ops._util import promote
    a, b = promote(tensor1, tensor2, "result_type")
    return a.dtype


def can_cast(from_, to):
    """PyTorch's casting rule: no float -> integral, no integral/float -> bool."""
    f, t = backend.as_dtype(from_), backend.as_dtype(to)
    order = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
    return order[f.kind] <= order[t.kind]


def is_storage(obj):
    return False


def typename(obj):
    if isinstance(obj, Tensor):
        return obj.type()
    module = type(obj).__module__
    return (module + "." if module not in ("builtins", None) else "") + type(obj).__qualname__


def is_inference_mode_enabled():
    from .autograd import grad_mode
    return bool(getattr(grad_mode, "_inference", [False])[0]) if hasattr(grad_mode, "_inference") else False


def is_anomaly_enabled():
    from .autograd import api
    return bool(getattr(api, "_anomaly", [False])[0]) if hasattr(api, "_anomaly") else False


def is_inference(input):
    return input.is_inference()


def get_device(input):
    return input.get_device()


def detach(input):
    return input.detach()


def detach_(input):
    return input.detach_()


def fill(input, value):
    return input.clone().fill_(value)


pi, e, inf, nan = math.pi, math.e, math.inf, math.nan
newaxis = None
dtype = np.dtype


# torch.X_(input, ...) for the in-place tensor methods
_TOP_INPLACE = ("abs acos acosh arccos arccosh arcsin arcsinh arctan arctanh asin asinh atan atanh ceil "
                "clamp clamp_min clamp_max clip cos cosh deg2rad erf erfc exp exp2 expm1 fix floor frac "
                "log log10 log1p log2 logit neg negative rad2deg reciprocal relu round rsqrt sigmoid sin "
                "sinc sinh sqrt square tan tanh trunc xlogy ldexp addmv lcm gcd fill zero").split()


def _top_inplace(name):
    def fn(input, *args, **kwargs):
        return getattr(input, name + "_")(*args, **kwargs)
    fn.__name__ = name + "_"
    fn.__doc__ = f"In-place ``{name}`` of ``input`` (``input.{name}_(...)``)."
    return fn


TOP_LEVEL = {n + "_": _top_inplace(n) for n in _TOP_INPLACE}
TOP_LEVEL.update({k: v for k, v in list(globals().items())
                  if not k.startswith("_") and k not in ("annotations", "math", "np", "backend", "F",
                                                         "Tensor", "TOP_LEVEL")})
# names deepgrad's ops already export with nn.functional's argument order, which PyTorch's
# top level spells differently: these replace them at deepgrad's top level
OVERRIDE = ("embedding", "binary_cross_entropy_with_logits", "triplet_margin_loss", "kl_div",
            "margin_ranking_loss", "cosine_embedding_loss", "hinge_embedding_loss", "batch_norm",
            "instance_norm", "layer_norm", "group_norm", "adaptive_max_pool1d", "threshold")
