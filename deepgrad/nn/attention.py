"""Attention modules: ``MultiheadAttention`` (PyTorch's API and parameter layout) and Bahdanau's
additive attention ``AdditiveAttention``.

``multi_head_attention_forward`` follows PyTorch's functional of the same name (time-major
(L, N, E) inputs): project q, k, v (``in_proj_weight`` rows are q, k, v), split into heads,
``softmax(q k^T / sqrt(head_dim) + attn_mask + key_padding_mask) v``, merge heads, ``out_proj``.
Bool masks mark positions that may NOT be attended (True = masked); float masks are added.
"""
from __future__ import annotations

import math

from .. import backend
from .. import ops as _ops
from ..ops.attention import attention_bias, scaled_dot_product_attention
from ..tensor import Tensor
from . import functional as F
from . import init
from .linear import Linear
from .module import Module
from .parameter import Parameter, _empty, _set_parameters

__all__ = ["MultiheadAttention", "AdditiveAttention"]


def _zeros_like_shape(shape, like):
    xp = backend.array_module(like.array)
    return Tensor._make(xp.zeros(shape, like.dtype))


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight,
                                 out_proj_bias, training=True, key_padding_mask=None, need_weights=True,
                                 attn_mask=None, use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None, static_v=None,
                                 average_attn_weights=True, is_causal=False):
    """PyTorch's ``F.multi_head_attention_forward`` (inputs (L, N, E), or (L, E) unbatched)."""
    name = "multi_head_attention_forward"
    batched = query.ndim == 3
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise RuntimeError(f"{name}: query, key and value must all be 3-D (batched) or 2-D (unbatched), got "
                           f"shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0) if isinstance(key_padding_mask, Tensor) \
                else Tensor._make(backend.array_module(query.array).asarray(key_padding_mask)[None])
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    if embed_dim != embed_dim_to_check:
        raise RuntimeError(f"{name}: was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise RuntimeError(f"{name}: embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2] or key.shape[1] != bsz:
        raise RuntimeError(f"{name}: key shape {tuple(key.shape)} does not match value shape "
                           f"{tuple(value.shape)} / batch size {bsz}")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                           "module method `generate_square_subsequent_mask` to create this mask.")
    dt = query.dtype
    # input projections
    if not use_separate_proj_weight:
        w_q, w_k, w_v = in_proj_weight.chunk(3)
    else:
        w_q, w_k, w_v = q_proj_weight, k_proj_weight, v_proj_weight
    b_q = b_k = b_v = None
    if in_proj_bias is not None:
        b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = F.linear(query, w_q, b_q)
    k = F.linear(key, w_k, b_k)
    v = F.linear(value, w_v, b_v)
    # masks as additive float biases
    attn_mask = attention_bias(attn_mask, dt, query, name=name)
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(tgt_len, src_len)}.")
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(bsz * num_heads, tgt_len, src_len)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    key_padding_mask = attention_bias(key_padding_mask, dt, query, name=name)
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (bsz, src_len):
        raise RuntimeError(f"expecting key_padding_mask shape of {(bsz, src_len)}, but got "
                           f"{tuple(key_padding_mask.shape)}")
    if bias_k is not None and bias_v is not None:
        k = _ops.cat([k, bias_k.expand(1, bsz, embed_dim)], 0)
        v = _ops.cat([v, bias_v.expand(1, bsz, embed_dim)], 0)
        if attn_mask is not None:
            attn_mask = _ops.pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = _ops.pad(key_padding_mask, (0, 1))
    # heads: (N*H, L, hd)
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = (k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_k is None else static_k)
    v = (v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_v is None else static_v)
    if add_zero_attn:
        k = _ops.cat([k, _zeros_like_shape((bsz * num_heads, 1, head_dim), k)], 1)
        v = _ops.cat([v, _zeros_like_shape((bsz * num_heads, 1, head_dim), v)], 1)
        if attn_mask is not None:
            attn_mask = _ops.pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = _ops.pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0
    scores = _ops.matmul(q * math.sqrt(1.0 / head_dim), k.transpose(-2, -1))
    if attn_mask is not None:
        scores = scores + attn_mask
    weights = _ops.softmax(scores, -1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    out = _ops.matmul(weights, v)                                      # (N*H, L, hd)
    out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
    out = F.linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if not batched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
    if average_attn_weights:
        weights = weights.mean(1)
    if not batched:
        weights = weights.squeeze(0)
    return out, weights


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al.) with PyTorch's signature and parameters.

    Parameters: ``in_proj_weight`` (3E, E) (or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``
    when ``kdim``/``vdim`` differ from ``embed_dim``), ``in_proj_bias`` (3E), ``out_proj`` (Linear),
    optional ``bias_k``/``bias_v``. ``forward`` returns ``(attn_output, attn_weights)``.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                             f"and num_heads={num_heads} instead")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if not self._qkv_same_embed_dim:
            _set_parameters(self, q_proj_weight=_empty((embed_dim, embed_dim), dtype, device),
                            k_proj_weight=_empty((embed_dim, self.kdim), dtype, device),
                            v_proj_weight=_empty((embed_dim, self.vdim), dtype, device), in_proj_weight=None)
        else:
            _set_parameters(self, in_proj_weight=_empty((3 * embed_dim, embed_dim), dtype, device),
                            q_proj_weight=None, k_proj_weight=None, v_proj_weight=None)
        _set_parameters(self, in_proj_bias=_empty((3 * embed_dim,), dtype, device) if bias else None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(_empty((1, 1, embed_dim), dtype, device))
            self.bias_v = Parameter(_empty((1, 1, embed_dim), dtype, device))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.ndim == 3
        if self.batch_first and batched:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        common = dict(training=self.training, key_padding_mask=key_padding_mask, need_weights=need_weights,
                      attn_mask=attn_mask, average_attn_weights=average_attn_weights, is_causal=is_causal)
        args = (query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
                self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight,
                self.out_proj.bias)
        if not self._qkv_same_embed_dim:
            out, w = multi_head_attention_forward(*args, use_separate_proj_weight=True,
                                                  q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight,
                                                  v_proj_weight=self.v_proj_weight, **common)
        else:
            out, w = multi_head_attention_forward(*args, **common)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        return out, w


class AdditiveAttention(Module):
    """Bahdanau ("soft", additive) attention: ``score(q, k_s) = v^T tanh(W_q q + W_k k_s + b)``.

    ``forward(query, keys, values=None, key_padding_mask=None)`` with batch-first tensors:
    ``query`` (N, Dq) or (N, L, Dq), ``keys`` (N, S, Dk), ``values`` (N, S, Dv) (default: the keys),
    ``key_padding_mask`` (N, S) bool, True = padding. Returns ``(context, weights)``:
    context (N, Dv) / (N, L, Dv), weights (N, S) / (N, L, S) summing to one over S.
    """

    def __init__(self, query_dim, key_dim=None, hidden_dim=None, bias=True, dropout=0.0, device=None, dtype=None):
        super().__init__()
        key_dim = query_dim if key_dim is None else key_dim
        hidden_dim = query_dim if hidden_dim is None else hidden_dim
        self.query_dim, self.key_dim, self.hidden_dim = query_dim, key_dim, hidden_dim
        self.dropout = dropout
        self.query_proj = Linear(query_dim, hidden_dim, bias=False, device=device, dtype=dtype)
        self.key_proj = Linear(key_dim, hidden_dim, bias=bias, device=device, dtype=dtype)
        self.v = Linear(hidden_dim, 1, bias=False, device=device, dtype=dtype)

    def extra_repr(self):
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, hidden_dim={self.hidden_dim}"

    def forward(self, query, keys, values=None, key_padding_mask=None):
        if values is None:
            values = keys
        single = query.ndim == 2
        if single:
            query = query.unsqueeze(1)
        if query.ndim != 3 or keys.ndim != 3 or values.ndim != 3:
            raise RuntimeError(f"AdditiveAttention: expected query (N, [L,] Dq), keys (N, S, Dk), values "
                               f"(N, S, Dv); got {tuple(query.shape)}, {tuple(keys.shape)}, {tuple(values.shape)}")
        q = self.query_proj(query).unsqueeze(2)                 # (N, L, 1, h)
        k = self.key_proj(keys).unsqueeze(1)                    # (N, 1, S, h)
        scores = self.v(_ops.tanh(q + k)).squeeze(-1)          # (N, L, S)
        bias = attention_bias(key_padding_mask, scores.dtype, scores, name="AdditiveAttention")
        if bias is not None:
            scores = scores + bias.unsqueeze(1)
        weights = _ops.softmax(scores, -1)
        if self.dropout and self.training:
            weights = F.dropout(weights, self.dropout)
        context = _ops.matmul(weights, values)                 # (N, L, Dv)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights
