"""Encoder-decoder LSTM with attention (Sutskever et al. 2014; Bahdanau et al. 2014; Luong et al.
2015), as in the lecture notes' "encoder-decoder architecture" and "soft attention".

The encoder LSTM reads the source ids (B, S) (padding id ``pad_id`` is masked out of the
attention); with ``bidirectional=True`` it runs both ways with ``hidden_size / 2`` units each, and
outputs and final states are concatenated, so every source position sees the whole input (for
addition: the carries coming from the digits to its right). The decoder LSTM starts from the encoder's final state and reads the previous target
token; at every step its output ``h_t`` attends over the encoder outputs (``attention="additive"``:
Bahdanau's ``v^T tanh(W_q h_t + W_k e_s)``; ``"dot"``: ``h_t . e_s``; ``None``: no attention),
and ``tanh(W_c [h_t; context_t])`` is read out to the next token's logits (Luong's "global
attention", without input feeding, so teacher forcing runs the decoder over the whole target in
one fused LSTM call and greedy decoding computes exactly the same function step by step).

``model(src, tgt_in)``: in training mode, teacher forcing (``tgt_in`` = BOS + target, shifted);
in eval mode, greedy decoding of ``tgt_in.shape[1]`` tokens (only its length is used), so that
``Trainer.evaluate`` scores what the model really outputs. Both return logits (B, L, V).
"""
from __future__ import annotations


import numpy as np

from .. import backend, nn, ops
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor

__all__ = ["Seq2Seq", "exact_match", "token_accuracy"]


class Seq2Seq(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, embed_dim=32, hidden_size=128, num_layers=1, attention="additive",
                 pad_id=0, bos_id=1, eos_id=2, dropout=0.0, bidirectional=False):
        super().__init__()
        if attention not in ("additive", "dot", None, "none"):
            raise ValueError(f"Seq2Seq: attention must be 'additive', 'dot' or None, got {attention!r}")
        self.attention_kind = None if attention == "none" else attention
        self.pad_id, self.bos_id, self.eos_id = int(pad_id), int(bos_id), int(eos_id)
        self.hidden_size = hidden_size
        self.src_embed = nn.Embedding(src_vocab, embed_dim)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed_dim)
        drop = dropout if num_layers > 1 else 0.0
        if bidirectional and hidden_size % 2:
            raise ValueError(f"Seq2Seq: a bidirectional encoder needs an even hidden_size, got {hidden_size}")
        self.bidirectional = bool(bidirectional)
        # bidirectional: hidden_size / 2 per direction, outputs and final states concatenated
        self.encoder = nn.LSTM(embed_dim, hidden_size // 2 if bidirectional else hidden_size, num_layers,
                               batch_first=True, dropout=drop, bidirectional=self.bidirectional)
        self.decoder = nn.LSTM(embed_dim, hidden_size, num_layers, batch_first=True, dropout=drop)
        if self.attention_kind == "additive":
            self.attention = nn.AdditiveAttention(hidden_size, hidden_size, hidden_size)
        self.combine = nn.Linear(2 * hidden_size if self.attention_kind else hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, tgt_vocab)

    # ---- pieces ---------------------------------------------------------------------------------
    def encode(self, src):
        """``(memory (B, S, H), padding mask (B, S) bool, final state)``."""
        memory, state = self.encoder(self.src_embed(src))
        if self.bidirectional:                       # (2L, B, H/2) -> (L, B, H): [forward; backward]
            def merge(s):
                L2, B, h = s.shape
                s = s.reshape(L2 // 2, 2, B, h)
                return ops.cat([s[:, 0], s[:, 1]], -1)
            state = tuple(merge(s) for s in state)
        return memory, src.array == self.pad_id, state

    def _attend(self, query, memory, mask):
        """Context (B, L, H) and weights (B, L, S) for decoder outputs ``query`` (B, L, H)."""
        if self.attention_kind == "additive":
            return self.attention(query, memory, key_padding_mask=Tensor._make(mask))
        scores = ops.matmul(query, memory.transpose(1, 2))            # (B, L, S)
        bias = np.where(mask, -np.inf, 0.0).astype(scores.array.dtype)[:, None, :]
        weights = ops.softmax(scores + Tensor._make(bias), -1)
        return ops.matmul(weights, memory), weights

    def _readout(self, dec_out, memory, mask):
        if self.attention_kind:
            context, weights = self._attend(dec_out, memory, mask)
            dec_out = ops.cat([dec_out, context], -1)
        else:
            weights = None
        return self.out(ops.tanh(self.combine(dec_out))), weights

    # ---- forward ----------------------------------------------------------------------------------
    def forward(self, src, tgt_in):
        if self.training:
            memory, mask, state = self.encode(src)
            dec_out, _ = self.decoder(self.tgt_embed(tgt_in), state)
            return self._readout(dec_out, memory, mask)[0]
        return self.greedy(src, tgt_in.shape[1], return_logits=True)

    def greedy(self, src, max_len, return_logits=False, return_attention=False):
        """Greedy decoding of ``max_len`` tokens: ids (B, max_len) (after the first EOS of a row the
        ids are whatever the model emits; see :meth:`strip`), or their logits (B, max_len, V)."""
        if not isinstance(src, Tensor):
            src = Tensor._make(np.asarray(src, dtype=np.int64))
        with no_grad():
            memory, mask, state = self.encode(src)
            B = src.shape[0]
            xp = backend.array_module(memory.array)       # decode on the model's device
            tok = xp.full((B, 1), self.bos_id, dtype=np.int64)
            logits, ids, attn = [], [], []
            for _ in range(int(max_len)):
                dec_out, state = self.decoder(self.tgt_embed(Tensor._make(tok)), state)
                step, weights = self._readout(dec_out, memory, mask)
                logits.append(step.array)
                tok = step.array.argmax(-1).astype(np.int64)
                ids.append(tok)
                if weights is not None:
                    attn.append(weights.array)
        if return_logits:
            return Tensor._make(xp.concatenate(logits, axis=1))
        out = backend.to_numpy(xp.concatenate(ids, axis=1))      # ids on the host, as before
        if return_attention:
            return out, (backend.to_numpy(xp.concatenate(attn, axis=1)) if attn else None)
        return out

    def strip(self, ids):
        """Rows of ids cut at their first EOS, as lists."""
        rows = []
        for row in np.asarray(ids):
            row = list(int(i) for i in row)
            rows.append(row[:row.index(self.eos_id)] if self.eos_id in row else row)
        return rows


def exact_match(output, target, pad_id=0):
    """Fraction of rows whose argmax ids equal the target at every non-padding position (the target
    ends with EOS, so the length must be right too)."""
    out = output.array if isinstance(output, Tensor) else np.asarray(output)
    tgt = target.array if isinstance(target, Tensor) else np.asarray(target)
    ok = (out.argmax(-1) == tgt) | (tgt == pad_id)
    return float(ok.all(-1).mean())


def token_accuracy(output, target, pad_id=0):
    """Fraction of non-padding target positions predicted right."""
    out = output.array if isinstance(output, Tensor) else np.asarray(output)
    tgt = target.array if isinstance(target, Tensor) else np.asarray(target)
    valid = tgt != pad_id
    return float(((out.argmax(-1) == tgt) & valid).sum() / max(1, valid.sum()))


