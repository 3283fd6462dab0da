"""Attention composed of ordinary ops (so gradcheck and double backward come for free).

``scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale)`` follows
PyTorch's ``F.scaled_dot_product_attention``: ``softmax(q k^T * scale + bias) v`` where a bool
``attn_mask`` marks the positions that MAY be attended (True = keep) and a float mask is added to
the scores; ``is_causal`` keeps the lower triangle. ``additive_attention_scores`` is Bahdanau's
``v^T tanh(W_q q + W_k k)`` score used by ``nn.AdditiveAttention``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..random import rng
from ..tensor import Tensor
from .elementwise import mul, add
from .linalg import matmul
from .reduce import softmax
from .index import index_select

__all__ = ["scaled_dot_product_attention", "attention_bias"]


def _dropout(x, p):
    """Inverted dropout with the global generator (the op layer's own; nn.functional has another)."""
    if p <= 0.0:
        return x
    if p >= 1.0:
        return mul(x, Tensor._make(backend.array_module(x.array).zeros(x.shape, x.dtype)))
    dt = x.dtype
    from ..cuda import _rng
    if backend.array_module(x.array) is not np and _rng.draws_on_device():   # drawn on the GPU
        u = _rng.for_device(backend.device_of(x.array)).random(tuple(x.shape), np.float64 if dt == np.float64 else np.float32)
        mask = (u >= p).astype(dt)
        mask *= dt.type(1.0 / (1.0 - p))
        return mul(x, Tensor._make(mask))
    mask = (rng().random(tuple(x.shape), dtype=np.float64 if dt == np.float64 else np.float32) >= p).astype(dt)
    mask *= dt.type(1.0 / (1.0 - p))
    if backend.array_module(x.array) is not np:
        mask = backend.to_device(mask, backend.device_of(x.array))
    return mul(x, Tensor._make(mask))


def attention_bias(mask, dtype, like=None, keep_true=False, name="attention"):
    """A mask as an additive score bias: a float mask as is; a bool mask as 0 / -inf.

    ``keep_true``: True marks allowed positions (SDPA's convention); otherwise True marks masked
    positions (``nn.MultiheadAttention``'s ``attn_mask`` / ``key_padding_mask`` convention).
    Returns a Tensor (differentiable when the float mask requires grad) or None.
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        a = np.asarray(mask)
        if like is not None and backend.array_module(like.array) is not np:
            a = backend.to_device(a, backend.device_of(like.array))
        mask = Tensor._make(a)
    a = mask.array
    if a.dtype == np.bool_:
        xp = backend.array_module(a)
        blocked = ~a if keep_true else a
        bias = xp.zeros(a.shape, dtype)
        bias[blocked] = -np.inf
        return Tensor._make(bias)
    if a.dtype.kind not in "fV":
        raise TypeError(f"{name}: only bool and floating types of masks are supported, got {a.dtype}")
    return mask if a.dtype == dtype else mask.to(dtype)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """``softmax(query @ key^T * scale + mask) @ value`` over the last two dims (..., L, E)."""
    for t, nm in ((query, "query"), (key, "key"), (value, "value")):
        if not isinstance(t, Tensor):
            raise TypeError(f"scaled_dot_product_attention: {nm} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise RuntimeError(f"scaled_dot_product_attention: {nm} must have at least 2 dims, got shape "
                               f"{tuple(t.shape)}")
    if not query.dtype == key.dtype == value.dtype:
        raise RuntimeError(f"scaled_dot_product_attention: query, key and value must have the same dtype, got "
                           f"{query.dtype}, {key.dtype} and {value.dtype}")
    L, E = query.shape[-2], query.shape[-1]
    S = key.shape[-2]
    if key.shape[-1] != E:
        raise RuntimeError(f"scaled_dot_product_attention: query's and key's last dims differ: "
                           f"{tuple(query.shape)} vs {tuple(key.shape)}")
    if value.shape[-2] != S:
        raise RuntimeError(f"scaled_dot_product_attention: key and value must have the same sequence length, "
                           f"got {tuple(key.shape)} and {tuple(value.shape)}")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk:
            raise RuntimeError(f"scaled_dot_product_attention: {hq} query heads are not a multiple of {hk} kv heads")
        rep = np.repeat(np.arange(hk), hq // hk)
        idx = Tensor._make(rep if backend.array_module(key.array) is np else backend.to_device(rep, key.device))
        key = index_select(key, key.ndim - 3, idx)
        value = index_select(value, value.ndim - 3, idx)
    s = 1.0 / math.sqrt(E) if scale is None else float(scale)
    scores = mul(matmul(query, key.transpose(-2, -1)), s)
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("scaled_dot_product_attention: pass attn_mask or is_causal=True, not both")
        xp = backend.array_module(query.array)
        attn_mask = Tensor._make(xp.tril(xp.ones((L, S), dtype=bool)))
    bias = attention_bias(attn_mask, query.dtype, query, keep_true=True, name="scaled_dot_product_attention")
    if bias is not None:
        scores = add(scores, bias)
    attn = softmax(scores, -1)
    if dropout_p > 0.0:
        attn = _dropout(attn, dropout_p)
    return matmul(attn, value)
