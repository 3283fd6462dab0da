"""PyTorch's top-level spellings of functional ops (``torch.conv2d``, ``torch.batch_norm``,
``torch.embedding`` ...) and of in-place ops (``torch.relu_``, ``torch.exp_`` ...), plus small
top-level helpers and constants. Where the top-level signature differs from nn.functional's
(``torch.batch_norm`` puts weight first, ``torch.embedding`` takes the weight first, losses take an
integer reduction), the wrapper here reorders; everything computes through nn.functional / ops.
"""
from __future__ import annotations

import builtins as _builtins
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
    if a.kind in "fV" and b.kind not in "fV":
        return a
    if b.kind in "fV" and a.kind not in "fV":
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


def is_anomaly_enabled():
    from .autograd import function as _fn
    return bool(_fn._anomaly[0])


def set_anomaly_enabled(enabled, check_nan=True):
    from .autograd import function as _fn
    _fn._anomaly[0] = bool(enabled)


def is_anomaly_check_nan_enabled():
    return is_anomaly_enabled()


# Determinism and warning flags: deepgrad's CPU kernels are deterministic already, so these only
# record what the program asked (reproducibility boilerplate runs unchanged).
_FLAGS = {"deterministic": False, "warn_only": False, "warn_always": False}


def use_deterministic_algorithms(mode, *, warn_only=False):
    _FLAGS["deterministic"], _FLAGS["warn_only"] = bool(mode), bool(warn_only)


def are_deterministic_algorithms_enabled():
    return _FLAGS["deterministic"]


def is_deterministic_algorithms_warn_only_enabled():
    return _FLAGS["warn_only"]


def set_deterministic_debug_mode(debug_mode):
    modes = {"default": 0, "warn": 1, "error": 2}
    mode = modes[debug_mode] if isinstance(debug_mode, str) else int(debug_mode)
    use_deterministic_algorithms(mode > 0, warn_only=mode == 1)


def get_deterministic_debug_mode():
    return 0 if not _FLAGS["deterministic"] else (1 if _FLAGS["warn_only"] else 2)


def set_warn_always(b):
    _FLAGS["warn_always"] = bool(b)


def is_warn_always_enabled():
    return _FLAGS["warn_always"]


def set_flush_denormal(mode):
    """PyTorch returns whether flushing is supported; NumPy cannot flush denormals, so False."""
    return False


def get_default_device():
    d = backend._DEFAULT_DEVICE[0]
    return backend.device("cpu") if d is None else d


def set_default_device(device):
    """Where factories (``tensor``, ``zeros``, ``randn`` ..., so also new modules' parameters) put
    tensors when no ``device=`` is given; ``None`` or "cpu" restores the CPU. A CUDA device without
    one raises the CudaUnavailableError that ``device="cuda"`` raises."""
    d = None if device is None else backend.device(device)
    if d is not None and d.type == "cpu":
        d = None
    if d is not None:
        backend.module_for(d)
    backend._DEFAULT_DEVICE[0] = d


def set_default_tensor_type(t):
    """Legacy: the default floating dtype from a tensor type (``deepgrad.DoubleTensor`` or its name)."""
    from . import _legacy
    dt = _legacy.dtype_of_type(t)
    if dt.kind not in "fV":
        raise TypeError("only floating-point types are supported as the default type")
    backend.set_default_dtype(dt)


class _Marker:
    """A named constant (memory formats, layouts): compared by identity, printed as PyTorch does."""

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"torch.{self._name}"


# Memory formats and layouts: deepgrad keeps its own layouts, so these are accepted and ignored.
contiguous_format = _Marker("contiguous_format")
channels_last = _Marker("channels_last")
channels_last_3d = _Marker("channels_last_3d")
preserve_format = _Marker("preserve_format")
legacy_contiguous_format = contiguous_format
strided = _Marker("strided")
memory_format = _Marker
layout = _Marker


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    from .creation import as_tensor, tensor
    if copy:
        out = tensor(obj.detach() if isinstance(obj, Tensor) else obj, dtype=dtype, device=device)
    else:
        out = as_tensor(obj, dtype=dtype, device=device)
    if requires_grad:
        out.requires_grad_(True)
    return out


def range(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):  # noqa: A001
    """Deprecated ``torch.range``: like arange but includes ``end``, default float dtype."""
    from .creation import tensor
    if end is None:
        start, end = 0, start
    n = int(math.floor((end - start) / step)) + 1
    vals = start + step * np.arange(_builtins.max(n, 0))
    return tensor(vals, dtype=backend.get_default_dtype() if dtype is None else dtype, device=device,
                  requires_grad=requires_grad)


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    a = elements.array if isinstance(elements, Tensor) else np.asarray(elements)
    b = test_elements.array if isinstance(test_elements, Tensor) else np.asarray(test_elements)
    xp = backend.array_module(a)
    return Tensor._make(xp.asarray(xp.isin(a, b, invert=invert)))


def _tri_indices(row, col, offset, lower):
    r, c = np.tril_indices(row, offset, col) if lower else np.triu_indices(row, offset, col)
    return np.stack([r, c]).astype(np.int64)


def tril_indices(row, col, offset=0, *, dtype=None, device=None):
    from .creation import tensor
    return tensor(_tri_indices(row, col, offset, True), dtype=dtype or np.int64, device=device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None):
    from .creation import tensor
    return tensor(_tri_indices(row, col, offset, False), dtype=dtype or np.int64, device=device)


def unravel_index(indices, shape):
    a = indices.array if isinstance(indices, Tensor) else np.asarray(indices)
    if a.dtype.kind not in "iu":
        raise TypeError(f"expected 'indices' to be integer dtype, but got {a.dtype}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    size = int(np.prod(shape))
    if a.size and (a.max() >= size or a.min() < -size):
        raise RuntimeError("unravel_index: index out of bounds for the given shape")
    xp = backend.array_module(a)
    a = xp.where(a < 0, a + size, a)
    return tuple(Tensor._make(xp.asarray(v, dtype=np.int64)) for v in xp.unravel_index(a, shape))


def vander(x, N=None, increasing=False):
    from .ops import stack
    n = x.shape[0] if N is None else int(N)
    xf = x if x.dtype.kind in "fV" or x.dtype.kind in "iu" else x.to(np.int64)
    cols = [xf ** k if k else xf * 0 + 1 for k in np.arange(n).tolist()]
    if not increasing:
        cols = cols[::-1]
    if not cols:
        return Tensor._make(np.zeros((x.shape[0], 0), dtype=x.dtype))
    return stack(cols, 1)


def renorm(input, p, dim, maxnorm):
    """Each slice along ``dim`` rescaled to p-norm at most ``maxnorm``."""
    from .ops import norm, where
    d = dim % input.ndim
    others = tuple(i for i in _builtins.range(input.ndim) if i != d)
    n = norm(input, p, others, True)
    scale = where(n > maxnorm, maxnorm / (n + 1e-7), Tensor._make(np.ones((), dtype=input.dtype)))
    return input * scale


def _window(name, fn):
    def window(window_length, periodic=True, *, dtype=None, device=None, requires_grad=False):
        from .creation import tensor
        n = int(window_length)
        if n < 0:
            raise RuntimeError(f"{name} requires non-negative window_length, got window_length={n}")
        if n == 0:
            vals = np.zeros(0)
        elif n == 1:
            vals = np.ones(1)
        else:
            vals = fn(n + 1)[:-1] if periodic else fn(n)
        return tensor(vals, dtype=backend.get_default_dtype() if dtype is None else dtype, device=device,
                      requires_grad=requires_grad)
    window.__name__ = name
    return window


hann_window = _window("hann_window", np.hanning)
hamming_window = _window("hamming_window", np.hamming)
blackman_window = _window("blackman_window", np.blackman)
bartlett_window = _window("bartlett_window", np.bartlett)


def poisson(input, generator=None):
    from .random import rng
    return Tensor._make(backend.to_device(rng(generator).poisson(backend.to_numpy(input.array)).astype(input.dtype), input.device))


def binomial(count, prob, generator=None):
    from .random import rng
    n, p = backend.to_numpy(count.array), backend.to_numpy(prob.array)
    return Tensor._make(backend.to_device(rng(generator).binomial(n.astype(np.int64), p).astype(count.dtype), count.device))


def adjoint(input):
    return input.adjoint()


def index_put_(input, indices, values, accumulate=False):
    return input.index_put_(indices, values, accumulate)


def nan_to_num_(input, nan=0.0, posinf=None, neginf=None):
    return input.nan_to_num_(nan, posinf, neginf)


def frobenius_norm(input, dim=(-2, -1), keepdim=False):
    from .ops import norm
    return norm(input, "fro", dim, keepdim)


def is_conj(input):
    return False


def is_neg(input):
    return False


def conj(input):
    return input


def resolve_conj(input):
    return input


def resolve_neg(input):
    return input


def conj_physical(input):
    return input.clone()


class OutOfMemoryError(RuntimeError):
    """PyTorch's out-of-memory error class (deepgrad raises MemoryError from NumPy)."""


class AcceleratorError(RuntimeError):
    """PyTorch's accelerator error class (nothing in deepgrad raises it on the CPU)."""


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, device=None, requires_grad=False):
    return _window("kaiser_window", lambda n: np.kaiser(n, beta))(window_length, periodic, dtype=dtype,
                                                                   device=device, requires_grad=requires_grad)


def nuclear_norm(input, dim=(-2, -1), keepdim=False):
    from .linalg import matrix_norm
    return matrix_norm(input, "nuc", dim, keepdim)


def matrix_rank(input, tol=None, symmetric=False):
    from .linalg import matrix_rank as rank
    return rank(input, tol=tol, hermitian=symmetric)


def gradient(input, *, spacing=1, dim=None, edge_order=1):
    """Central differences inside, one-sided at the edges (edge_order=1), one tensor per dim."""
    from .ops import cat, narrow
    if edge_order != 1:
        raise NotImplementedError("torch.gradient with edge_order=2 is not implemented in deepgrad; use edge_order=1")
    dims = list(_builtins.range(input.ndim)) if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    dims = [d % input.ndim for d in dims]
    sp = spacing if isinstance(spacing, (list, tuple)) else [spacing] * len(dims)
    if len(sp) != len(dims):
        raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar or a list of length "
                           f"{len(dims)}, but got a list of length {len(sp)}")
    x = input if input.dtype.kind in "fV" else input.to(backend.get_default_dtype())
    out = []
    for d, h in zip(dims, sp):
        if isinstance(h, Tensor):
            raise NotImplementedError("torch.gradient with coordinate tensors is not implemented in deepgrad; "
                                      "pass scalar spacings")
        n = x.shape[d]
        if n < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")
        first = (narrow(x, d, 1, 1) - narrow(x, d, 0, 1)) / h
        last = (narrow(x, d, n - 1, 1) - narrow(x, d, n - 2, 1)) / h
        parts = [first]
        if n > 2:
            parts.append((narrow(x, d, 2, n - 2) - narrow(x, d, 0, n - 2)) / (2.0 * h))
        parts.append(last)
        out.append(cat(parts, d))
    return tuple(out)


def pdist(input, p=2):
    """Distances between all pairs of rows i < j of a 2-D input, in row-major order."""
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    from .ops import norm
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    diff = input[Tensor._make(i.astype(np.int64))] - input[Tensor._make(j.astype(np.int64))]
    return norm(diff, p, 1)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(f"rms_norm: normalized_shape {list(shape)} does not match the input's trailing "
                           f"shape {list(input.shape)}")
    dims = tuple(_builtins.range(input.ndim - len(shape), input.ndim))
    e = float(np.finfo(input.dtype).eps) if eps is None else eps
    out = input * ((input * input).mean(dims, keepdim=True) + e).rsqrt()
    return out if weight is None else out * weight


def channel_shuffle(input, groups):
    n, c = input.shape[0], input.shape[1]
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    rest = tuple(input.shape[2:])
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


def constant_pad_nd(input, pad, value=0):
    return F.pad(input, list(pad), "constant", value)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    """Leaky ReLU with slope (lower+upper)/2 in eval; a uniform random slope per element in training."""
    from .ops import where
    if not training:
        a = Tensor._make(np.asarray((lower + upper) / 2.0, dtype=input.dtype))
    else:
        from .random import rng
        a = Tensor._make(backend.to_device(rng(generator).uniform(lower, upper, tuple(input.shape)).astype(input.dtype),
                                           input.device))
    return where(input >= 0, input, input * a)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    return input._inplace("rrelu_", lambda s: rrelu(s, lower, upper, training, generator))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    from .ops import exp, log
    loss = exp(input) - target * input if log_input else input - target * log(input + eps)
    if full:
        t = target
        stirling = t * log(t) - t + 0.5 * log(t * (2 * math.pi))
        loss = loss + stirling * (t > 1).to(loss.dtype)
    r = _red(reduction)
    return loss if r == "none" else (loss.mean() if r == "mean" else loss.sum())


def narrow_copy(input, dim, start, length):
    return input.narrow_copy(dim, start, length)


def resize_as_(input, the_template, memory_format=None):
    return input.resize_as_(the_template)


def is_distributed(input):
    return False


from .amp import GradScaler  # noqa: E402  (torch.GradScaler is torch.amp.GradScaler)


short = np.dtype(np.int16)
has_lapack, has_mkl, has_openmp, has_spectral = True, False, False, False


pi, e, inf, nan = math.pi, math.e, math.inf, math.nan
newaxis = None
dtype = np.dtype


def _clone_all(out):
    return tuple(t.clone() for t in out) if isinstance(out, (tuple, list)) else out.clone()


def _copy_variant(base, method=False):
    """torch.X_copy: the view op X, then a copy (no memory shared with the input)."""
    def fn(input, *args, **kwargs):
        from . import ops
        op = getattr(input, base) if method else getattr(ops, base)
        return _clone_all(op(*args, **kwargs) if method else op(input, *args, **kwargs))
    fn.__name__ = base + "_copy"
    fn.__doc__ = f"``{base}`` followed by a copy (torch.{base}_copy)."
    return fn


_COPIES = {n + "_copy": _copy_variant(n) for n in
           ("diagonal", "expand", "permute", "select", "split", "split_with_sizes", "squeeze", "t",
            "transpose", "unbind", "unsqueeze", "view")}
_COPIES.update({"detach_copy": _copy_variant("detach", True), "alias_copy": _copy_variant("view_as", True),
                "unfold_copy": _copy_variant("unfold", True)})
_COPIES["alias_copy"] = lambda input: input.clone()


def unsafe_chunk(input, chunks, dim=0):
    return input.chunk(chunks, dim)


def unsafe_split(input, split_size, dim=0):
    return input.split(split_size, dim)


def unsafe_split_with_sizes(input, split_sizes, dim=0):
    return input.split_with_sizes(split_sizes, dim)


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
TOP_LEVEL.update(_COPIES)
TOP_LEVEL.update({k: v for k, v in list(globals().items())
                  if not k.startswith("_") and k not in ("annotations", "math", "np", "backend", "F", "builtins_max",
                                                         "Tensor", "TOP_LEVEL")})
# names deepgrad's ops already export with nn.functional's argument order, which PyTorch's
# top level spells differently: these replace them at deepgrad's top level
OVERRIDE = ("embedding", "binary_cross_entropy_with_logits", "triplet_margin_loss", "kl_div",
            "margin_ranking_loss", "cosine_embedding_loss", "hinge_embedding_loss", "batch_norm",
            "instance_norm", "layer_norm", "group_norm", "adaptive_max_pool1d", "threshold")
