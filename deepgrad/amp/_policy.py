"""CPU autocast's op lists (PyTorch's, checked op by op against PyTorch 2.13 in tests/test_autocast.py)
and the wrappers that apply them.

Under ``autocast("cpu", dtype=D)`` PyTorch sorts ops three ways:

* LOWER: matrix products and convolutions run in ``D``: their floating inputs other than float64
  are cast to ``D`` (parameters through a per-region cache).
* FP32: losses, linear algebra and a few ops sensitive to range run in float32: float16/bfloat16
  inputs are cast up.
* PROMOTE: ops over several tensors (cat, stack, index_copy) cast them to the widest dtype among
  them.

Every other op runs in whatever dtype its inputs have (softmax of a bfloat16 tensor is bfloat16 on
CPU; CUDA autocast would run it in float32). Inside a listed op autocast is off, as PyTorch
excludes its autocast dispatch key below the cast: ``cross_entropy``'s own ``log_softmax`` runs
in float32, not lowered again. Ops written in Python from other ops (``multi_head_attention``,
``tensordot``) are not in the lists and get the behaviour of the ops they call, as in PyTorch.

The wrappers are installed the first time an enabled CPU autocast is entered (``install``), so a
program that never uses autocast pays nothing: each listed function object is replaced, under
every name a loaded ``deepgrad`` module or ``Tensor`` gives it, by a wrapper that asks one list
index whether autocast is on before anything else.
"""
from __future__ import annotations

import functools
import sys

import numpy as np

from .. import backend

# torch.amp's CPU lists (PyTorch 2.13, autocast_mode.cpp) restricted to the ops deepgrad has,
# as (module, name) with module "" for deepgrad, "F" for deepgrad.nn.functional, "linalg".
LOWER = [
    ("F", "linear"), ("", "matmul"), ("", "mm"), ("", "bmm"), ("", "addmm"), ("", "baddbmm"),
    ("", "addbmm"), ("F", "conv1d"), ("F", "conv2d"), ("F", "conv3d"), ("F", "conv_transpose1d"),
    ("F", "conv_transpose2d"), ("F", "conv_transpose3d"), ("F", "prelu"), ("", "prelu"),
    ("F", "scaled_dot_product_attention"), ("linalg", "vecdot"), ("", "einsum"),
    ("", "conv1d"), ("", "conv2d"), ("", "conv3d"), ("", "conv_transpose1d"), ("", "conv_transpose2d"),
    ("", "conv_transpose3d"), ("linalg", "matmul"),
]
FP32 = [
    ("F", "mse_loss"), ("F", "l1_loss"), ("F", "smooth_l1_loss"), ("F", "huber_loss"), ("F", "cross_entropy"),
    ("F", "nll_loss"), ("F", "binary_cross_entropy"), ("F", "binary_cross_entropy_with_logits"),
    ("F", "kl_div"), ("F", "soft_margin_loss"), ("F", "margin_ranking_loss"), ("F", "hinge_embedding_loss"),
    ("F", "poisson_nll_loss"), ("F", "cosine_embedding_loss"), ("F", "triplet_margin_loss"),
    ("F", "multi_margin_loss"), ("F", "multilabel_margin_loss"), ("F", "ctc_loss"),
    ("", "binary_cross_entropy_with_logits"), ("", "kl_div"), ("", "margin_ranking_loss"),
    ("", "hinge_embedding_loss"), ("", "poisson_nll_loss"), ("", "cosine_embedding_loss"),
    ("", "triplet_margin_loss"),
    ("", "prod"), ("", "cdist"), ("", "trace"), ("", "inverse"), ("", "pinverse"), ("", "cholesky"),
    ("", "cholesky_solve"), ("", "cholesky_inverse"), ("", "triangular_solve"), ("", "geqrf"),
    ("", "orgqr"), ("", "ormqr"), ("", "qr"), ("", "svd"), ("", "quantile"), ("", "nanquantile"),
    ("", "polar"), ("", "stft"), ("", "view_as_complex"),
    ("linalg", "cond"), ("linalg", "matrix_rank"), ("linalg", "solve"), ("linalg", "cholesky"),
    ("linalg", "svdvals"), ("linalg", "eigvals"), ("linalg", "eigvalsh"), ("linalg", "inv"),
    ("linalg", "householder_product"), ("linalg", "tensorinv"), ("linalg", "tensorsolve"),
    ("linalg", "qr"), ("linalg", "cholesky_ex"), ("linalg", "svd"), ("linalg", "eig"), ("linalg", "eigh"),
    ("linalg", "lstsq"), ("linalg", "inv_ex"),
    ("F", "max_pool3d"), ("F", "avg_pool3d"), ("F", "adaptive_avg_pool3d"), ("F", "adaptive_max_pool3d"),
    ("F", "max_unpool2d"), ("F", "max_unpool3d"), ("F", "fractional_max_pool2d"),
    ("F", "fractional_max_pool3d"), ("F", "grid_sample"),
]
PROMOTE = [("", "cat"), ("", "stack"), ("", "index_copy"), ("", "concat"), ("", "concatenate")]


def _pad_kind(args, kwargs):
    """F.pad: PyTorch lists reflection_pad1d/2d and replication_pad1d/2d/3d as float32 ops; the
    other modes (and 3-d reflection) run in the input's dtype."""
    mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
    pad = kwargs.get("pad", args[1] if len(args) > 1 else ())
    if mode == "replicate" or (mode == "reflect" and len(pad) <= 4):
        return "fp32"
    return None


CONDITIONAL = [("F", "pad", _pad_kind)]

# The autocast state of the CPU: [enabled, dtype, nesting depth]; the wrappers read [0] first.
STATE = [False, backend.bfloat16, 0]
_cache = {}          # id(leaf parameter) -> (parameter, its cast): cleared when the outermost region exits
_installed = []


def _eligible(t, Tensor):
    return isinstance(t, Tensor) and t.array.dtype.kind in "fV" and t.array.dtype != backend.float64


def _cast(t, dtype, Tensor, cache_ok):
    if t.array.dtype == dtype:
        return t
    if cache_ok and t.requires_grad and t.grad_fn is None:
        hit = _cache.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        c = t.to(dtype)
        _cache[id(t)] = (t, c)
        return c
    return t.to(dtype)


def _map(obj, fn):
    if isinstance(obj, (list, tuple)) and obj and type(obj) in (list, tuple):
        return type(obj)(_map(o, fn) for o in obj)
    return fn(obj)


def _cast_all(args, kwargs, dtype, Tensor, cache_ok, only_lowp=False):
    def one(t):
        if not _eligible(t, Tensor):
            return t
        if only_lowp and t.array.dtype.char not in "eE":
            return t
        return _cast(t, dtype, Tensor, cache_ok)
    return [_map(a, one) for a in args], {k: _map(v, one) for k, v in kwargs.items()}


def _widest(args, kwargs, Tensor):
    dt = STATE[1]
    seen = []

    def look(t):
        if _eligible(t, Tensor):
            seen.append(t.array.dtype)
        return t
    for a in list(args) + list(kwargs.values()):
        _map(a, look)
    for d in seen:
        if d != dt:
            try:
                dt = np.promote_types(dt, d)
            except TypeError:         # float16 with bfloat16: PyTorch promotes to float32
                dt = backend.float32
    return dt


def _wrap(fn, kind, Tensor):
    if getattr(fn, "_autocast_wrapped", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not STATE[0]:
            return fn(*args, **kwargs)
        k = kind(args, kwargs) if callable(kind) else kind
        if k is None or kwargs.get("dtype") is not None:   # an explicit dtype= opts out, as in PyTorch
            return fn(*args, **kwargs)
        if k == "lower":
            args, kwargs = _cast_all(args, kwargs, STATE[1], Tensor, _cache_enabled[0])
        elif k == "fp32":
            args, kwargs = _cast_all(args, kwargs, backend.float32, Tensor, False, only_lowp=True)
        else:
            args, kwargs = _cast_all(args, kwargs, _widest(args, kwargs, Tensor), Tensor, False)
        STATE[0] = False             # the op's insides are below autocast (PyTorch excludes its key)
        try:
            return fn(*args, **kwargs)
        finally:
            STATE[0] = True

    wrapper._autocast_wrapped = True
    wrapper._autocast_kind = kind
    return wrapper


_cache_enabled = [True]


def _resolve(where, name):
    import deepgrad
    import deepgrad.nn.functional as F
    mod = {"": deepgrad, "F": F, "linalg": deepgrad.linalg}[where]
    fn = mod.__dict__.get(name)
    return fn if callable(fn) and not isinstance(fn, type) else None


def install():
    """Replace every listed function, under all the names loaded deepgrad modules give it."""
    if _installed:
        return
    from ..tensor import Tensor
    wrappers = {}
    for table, kind in ((LOWER, "lower"), (FP32, "fp32"), (PROMOTE, "promote")):
        for where, name in table:
            fn = _resolve(where, name)
            if fn is not None and id(fn) not in wrappers:
                wrappers[id(fn)] = (fn, _wrap(fn, kind, Tensor))
    for where, name, pred in CONDITIONAL:
        fn = _resolve(where, name)
        if fn is not None and id(fn) not in wrappers:
            wrappers[id(fn)] = (fn, _wrap(fn, pred, Tensor))
    spaces = [m.__dict__ for n, m in list(sys.modules.items())
              if m is not None and (n == "deepgrad" or n.startswith("deepgrad.")) and hasattr(m, "__dict__")]
    for d in spaces:
        for key, val in list(d.items()):
            hit = wrappers.get(id(val))
            if hit is not None and hit[0] is val:
                d[key] = hit[1]
    for key, val in list(Tensor.__dict__.items()):
        hit = wrappers.get(id(val))
        if hit is not None and hit[0] is val:
            setattr(Tensor, key, hit[1])
    _install_modules()
    _installed.append(True)


def _install_modules():
    """nn.Linear calls its Function directly (the float32 hot path); under autocast it goes
    through F.linear, so the policy applies."""
    from ..nn import linear as _lin
    import deepgrad.nn.functional as F
    fwd = _lin.Linear.forward
    if getattr(fwd, "_autocast_wrapped", False):
        return

    @functools.wraps(fwd)
    def forward(self, input):
        if STATE[0]:
            return F.linear(input, self.weight, self.bias)
        return fwd(self, input)
    forward._autocast_wrapped = True
    _lin.Linear.forward = forward


def clear_cache():
    _cache.clear()
