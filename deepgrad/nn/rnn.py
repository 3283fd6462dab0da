"""Recurrent layers with PyTorch's API: ``RNN``, ``LSTM``, ``GRU``, the cells, and packed sequences.

Each direction of each layer runs as one fused op (``deepgrad.ops.recurrent.rnn_layer``: one
GEMM for the input projection of all steps, one GEMM per step, hand-written BPTT). Parameters have
PyTorch's names and layouts (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
``..._reverse``; LSTM gates i, f, g, o; GRU gates r, z, n) and its default initialisation
U(-1/sqrt(hidden), 1/sqrt(hidden)), so state dicts transfer by name.

Variable-length batches: pass a ``PackedSequence`` (``pack_padded_sequence``), or a padded batch
with ``lengths=`` (a deepgrad extension): outputs past a sequence's end are zero and the final
states are taken at each sequence's true end.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple, Optional

import numpy as np

from .. import backend
from .. import ops as _ops
from ..ops.recurrent import rnn_layer, rnn_tanh_cell, rnn_relu_cell, lstm_cell, gru_cell
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import _empty, _set_parameters

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
           "PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence",
           "pad_sequence", "unpad_sequence", "unpack_sequence"]


def _reset_uniform(self):
    """PyTorch's recurrent init: every parameter U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
    stdv = 1.0 / math.sqrt(self.hidden_size)
    for w in self.parameters():
        init.uniform_(w, -stdv, stdv)


def _index(idx, like):
    """An int64 index Tensor on ``like``'s device."""
    a = np.asarray(idx, dtype=np.int64)
    if backend.array_module(like.array) is not np:
        a = backend.to_device(a, backend.device_of(like.array))
    return Tensor._make(a)


def _as_lengths(lengths, what):
    if isinstance(lengths, Tensor):
        a = backend.to_numpy(lengths.array)
    else:
        a = np.asarray(lengths.detach().cpu().numpy() if hasattr(lengths, "detach") else lengths)
    a = np.asarray(a).reshape(-1)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"{what}: lengths must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Packed sequences
# ---------------------------------------------------------------------------------------------

class PackedSequence(NamedTuple):
    """Sequences of different lengths packed time step by time step (PyTorch's layout).

    ``data`` (sum(lengths), *): the rows running at step 0, then those at step 1, ... in order of
    decreasing length; ``batch_sizes[t]``: how many sequences run at step t;
    ``sorted_indices``/``unsorted_indices``: the permutation to and from decreasing length.
    """
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Optional[Tensor] = None
    unsorted_indices: Optional[Tensor] = None

    def to(self, *args, **kwargs):
        return self._replace(data=self.data.to(*args, **kwargs))

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def is_pinned(self):
        return False


def _sizes(bs):
    return np.asarray(backend.to_numpy(bs.array) if isinstance(bs, Tensor) else bs, dtype=np.int64)


def _pack_index(batch_sizes, B):
    """Flat (t*B + b) positions of the packed rows in a time-major (T, B) padded layout."""
    T = len(batch_sizes)
    mask = np.arange(B)[None, :] < batch_sizes[:, None]
    return np.flatnonzero(mask.reshape(T * B))


def _unpack_index(batch_sizes, B, T):
    """For each padded (t, b) position: its packed row, or ``N`` (the padding row) past the end."""
    N = int(batch_sizes.sum())
    src = np.full((T, B), N, dtype=np.int64)
    mask = np.zeros((T, B), dtype=bool)
    Tb = len(batch_sizes)
    mask[:Tb] = np.arange(B)[None, :] < batch_sizes[:, None]
    src[mask] = np.arange(N)
    return src.reshape(-1)


def _permutation(sorted_indices):
    inv = np.empty_like(sorted_indices)
    inv[sorted_indices] = np.arange(len(sorted_indices))
    return inv


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) (or (B, T, *) with ``batch_first``) of sequences of ``lengths``."""
    lengths = _as_lengths(lengths, "pack_padded_sequence")
    B = input.shape[0] if batch_first else input.shape[1]
    if len(lengths) != B:
        raise ValueError(f"pack_padded_sequence: expected {B} lengths (the batch size), got {len(lengths)}")
    if lengths.size and lengths.min() <= 0:
        raise RuntimeError("pack_padded_sequence: all sequence lengths must be > 0, got "
                           f"{lengths.tolist()}")
    T = input.shape[1] if batch_first else input.shape[0]
    if lengths.max() > T:
        raise RuntimeError(f"pack_padded_sequence: a length ({lengths.max()}) exceeds the padded "
                           f"sequence length {T}")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RuntimeError("pack_padded_sequence: `lengths` array must be sorted in decreasing order "
                               "when `enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                               "pack sequences of any order.")
        sorted_indices = None
        unsorted = None
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        input = _ops.index_select(input, 0 if batch_first else 1, _index(order, input))
        sorted_indices = Tensor._make(order.astype(np.int64))
        unsorted = Tensor._make(_permutation(order).astype(np.int64))
    if batch_first:
        input = input.transpose(0, 1)
    Tmax = int(lengths.max())
    bs = (lengths[None, :] > np.arange(Tmax)[:, None]).sum(axis=1).astype(np.int64)
    rest = tuple(input.shape[2:])
    flat = input.reshape(T * B, *rest)
    data = _ops.index_select(flat, 0, _index(_pack_index(bs, B), input))
    return PackedSequence(data, Tensor._make(bs), sorted_indices, unsorted)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """The inverse of ``pack_padded_sequence``: returns ``(padded, lengths)``."""
    data, bs = sequence.data, _sizes(sequence.batch_sizes)
    B, Tb = int(bs[0]), len(bs)
    T = Tb
    if total_length is not None:
        if total_length < Tb:
            raise ValueError(f"pad_packed_sequence: total_length={total_length} is smaller than the "
                             f"longest sequence ({Tb})")
        T = int(total_length)
    rest = tuple(data.shape[1:])
    xp = backend.array_module(data.array)
    pad_row = Tensor._make(xp.full((1,) + rest, padding_value, dtype=data.dtype))
    ext = _ops.cat([data, pad_row], 0)
    padded = _ops.index_select(ext, 0, _index(_unpack_index(bs, B, T), data)).reshape(T, B, *rest)
    lengths = (bs[None, :] > np.arange(B)[:, None]).sum(axis=1).astype(np.int64)
    if sequence.unsorted_indices is not None:
        uns = _sizes(sequence.unsorted_indices)
        padded = _ops.index_select(padded, 1, _index(uns, data))
        lengths = lengths[uns]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, Tensor._make(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shape (L_i, *) into one padded tensor (L_max, B, *) (or (B, L_max, *))."""
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    Lmax = max(s.shape[0] for s in sequences)
    rest = tuple(sequences[0].shape[1:])
    xp = backend.array_module(sequences[0].array)
    rows = []
    for s in sequences:
        L = s.shape[0]
        if L < Lmax:
            pad = Tensor._make(xp.full((Lmax - L,) + rest, padding_value, dtype=s.dtype))
            s = _ops.cat([s, pad] if padding_side == "right" else [pad, s], 0)
        rows.append(s)
    return _ops.stack(rows, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    lengths = _as_lengths(lengths, "unpad_sequence")
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[i, :int(L)] for i, L in enumerate(lengths)]


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of tensors (L_i, *)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


# ---------------------------------------------------------------------------------------------
# Multi-layer recurrent networks
# ---------------------------------------------------------------------------------------------

_MODES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


class RNNBase(Module):
    """The shared machinery of ``RNN``, ``LSTM`` and ``GRU``."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability "
                             "of an element being zeroed")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if proj_size:
            raise NotImplementedError("LSTM proj_size is not supported by deepgrad")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero "
                          f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}")
        self.mode = mode
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = 0
        ng = _MODES[mode]
        D = 2 if bidirectional else 1
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for d in range(D):
                in_size = self.input_size if layer == 0 else hidden_size * D
                suffix = "_reverse" if d == 1 else ""
                shapes = [(f"weight_ih_l{layer}{suffix}", (ng * hidden_size, in_size)),
                          (f"weight_hh_l{layer}{suffix}", (ng * hidden_size, hidden_size))]
                if bias:
                    shapes += [(f"bias_ih_l{layer}{suffix}", (ng * hidden_size,)),
                               (f"bias_hh_l{layer}{suffix}", (ng * hidden_size,))]
                _set_parameters(self, **{name: _empty(shape, dtype, device) for name, shape in shapes})
                names = [n for n, _ in shapes]
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    reset_parameters = _reset_uniform

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self):
        """A no-op (kept for PyTorch compatibility)."""

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    # ---- forward -----------------------------------------------------------------------------
    def _check_state(self, s, B, what):
        D = 2 if self.bidirectional else 1
        expected = (self.num_layers * D, B, self.hidden_size)
        if tuple(s.shape) != expected:
            raise RuntimeError(f"Expected {what} size {expected}, got {list(s.shape)}")

    def forward(self, input, hx=None, lengths=None):
        """``input``: (T, B, I) (``batch_first``: (B, T, I)), (T, I) unbatched, or a PackedSequence.

        ``hx``: (num_layers * num_directions, B, H) (a pair ``(h_0, c_0)`` for LSTM) or None for
        zeros. ``lengths`` (deepgrad extension): true lengths of a padded batch. Returns
        ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``) like PyTorch.
        """
        lstm = self.mode == "LSTM"
        packed = isinstance(input, PackedSequence)
        sorted_idx = unsorted_idx = None
        if packed:
            data, bs = input.data, _sizes(input.batch_sizes)
            if lengths is not None:
                raise ValueError(f"{self._get_name()}: pass lengths or a PackedSequence, not both")
            B, T = int(bs[0]), len(bs)
            if input.sorted_indices is not None:
                sorted_idx = _sizes(input.sorted_indices)
                unsorted_idx = _sizes(input.unsorted_indices)
            xp = backend.array_module(data.array)
            zero = Tensor._make(xp.zeros((1, data.shape[1]), dtype=data.dtype))
            x = _ops.index_select(_ops.cat([data, zero], 0), 0,
                                  _index(_unpack_index(bs, B, T), data)).reshape(T, B, data.shape[1])
            batched = True
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"{self._get_name()}: expected a Tensor or PackedSequence input, got "
                                f"{type(input).__name__}")
            if input.ndim not in (2, 3):
                raise ValueError(f"{self._get_name()}: Expected input to be 2D or 3D, got {input.ndim}D "
                                 f"tensor of shape {tuple(input.shape)}")
            batched = input.ndim == 3
            x = input
            if not batched:
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
            T, B = x.shape[0], x.shape[1]
            bs = None
            if lengths is not None:
                L = _as_lengths(lengths, self._get_name())
                if len(L) != B or L.min() <= 0 or L.max() > T:
                    raise ValueError(f"{self._get_name()}: lengths must be {B} values in [1, {T}], got "
                                     f"{L.tolist()}")
                if np.any(np.diff(L) > 0):
                    sorted_idx = np.argsort(-L, kind="stable")
                    unsorted_idx = _permutation(sorted_idx)
                    L = L[sorted_idx]
                    x = _ops.index_select(x, 1, _index(sorted_idx, x))
                bs = (L[None, :] > np.arange(T)[:, None]).sum(axis=1)
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"{self._get_name()}: input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {x.shape[-1]}")
        D = 2 if self.bidirectional else 1
        # initial states
        h0 = c0 = None
        if hx is not None:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise RuntimeError("LSTM: hx must be a tuple (h_0, c_0)")
                h0, c0 = hx
            else:
                if isinstance(hx, (tuple, list)):
                    raise RuntimeError(f"{self._get_name()}: hx must be a Tensor, got a tuple")
                h0 = hx
            states = [h0, c0] if lstm else [h0]
            fixed = []
            for s, what in zip(states, ["hidden", "cell"]):
                if not batched:
                    if s.ndim != 2:
                        raise RuntimeError(f"For unbatched 2-D input, {what} state should also be 2-D but "
                                           f"got {s.ndim}-D tensor")
                    s = s.unsqueeze(1)
                self._check_state(s, B, what)
                if s.dtype != x.dtype:
                    raise RuntimeError(f"{self._get_name()}: {what} state dtype {s.dtype} does not match "
                                       f"input dtype {x.dtype}")
                if sorted_idx is not None:
                    s = _ops.index_select(s, 1, _index(sorted_idx, s))
                fixed.append(s)
            h0 = fixed[0].unbind(0)
            c0 = fixed[1].unbind(0) if lstm else None
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                w = self._flat_weights[k * (4 if self.bias else 2):(k + 1) * (4 if self.bias else 2)]
                b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
                res = rnn_layer(self.mode, x, None if h0 is None else h0[k], None if c0 is None else c0[k],
                                w[0], w[1], b_ih, b_hh, batch_sizes=bs, reverse=d == 1)
                outs.append(res[0])
                hs.append(res[1])
                if lstm:
                    cs.append(res[2])
            x = outs[0] if D == 1 else _ops.cat(outs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = _ops.stack(hs, 0)
        c_n = _ops.stack(cs, 0) if lstm else None
        if unsorted_idx is not None:
            h_n = _ops.index_select(h_n, 1, _index(unsorted_idx, h_n))
            if lstm:
                c_n = _ops.index_select(c_n, 1, _index(unsorted_idx, c_n))
            if not packed:
                x = _ops.index_select(x, 1, _index(unsorted_idx, x))
        if packed:
            H = x.shape[2]
            out = _ops.index_select(x.reshape(T * B, H), 0, _index(_pack_index(bs, B), x))
            output = PackedSequence(out, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
        elif not batched:
            output = x.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        else:
            output = x.transpose(0, 1) if self.batch_first else x
        return (output, (h_n, c_n)) if lstm else (output, h_n)


class RNN(RNNBase):
    """Elman RNN: ``h_t = nonlinearity(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (tanh or relu)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (Hochreiter & Schmidhuber): gates i, f, g, o as in PyTorch."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit (Cho et al.): gates r, z, n as in PyTorch."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------

class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.bias = bool(bias)
        G = num_chunks * hidden_size
        _set_parameters(self, weight_ih=_empty((G, input_size), dtype, device),
                        weight_hh=_empty((G, hidden_size), dtype, device),
                        bias_ih=_empty((G,), dtype, device) if bias else None,
                        bias_hh=_empty((G,), dtype, device) if bias else None)
        self.reset_parameters()

    reset_parameters = _reset_uniform

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s

    def _prepare(self, input, hx, n_states):
        if not isinstance(input, Tensor):
            raise TypeError(f"{self._get_name()}: expected a Tensor input, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{self._get_name()}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{self._get_name()}: input has inconsistent input_size: got "
                               f"{input.shape[-1]} expected {self.input_size}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        B = x.shape[0]
        if hx is None:
            xp = backend.array_module(x.array)
            states = [Tensor._make(xp.zeros((B, self.hidden_size), x.dtype)) for _ in range(n_states)]
        else:
            states = list(hx) if n_states == 2 else [hx]
            if len(states) != n_states:
                raise RuntimeError(f"{self._get_name()}: expected hx to be a tuple of {n_states} tensors")
            for i, s in enumerate(states):
                if s.ndim != x.ndim:
                    raise RuntimeError(f"{self._get_name()}: hidden state has {s.ndim} dimensions for an "
                                       f"input with {input.ndim}")
                s = s if batched else s.unsqueeze(0)
                if tuple(s.shape) != (B, self.hidden_size):
                    raise RuntimeError(f"{self._get_name()}: expected hidden state of shape "
                                       f"{(B, self.hidden_size)}, got {tuple(s.shape)}")
                states[i] = s
        return x, states, batched

    def _weights(self):
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, hx, 1)
        fn = rnn_tanh_cell if self.nonlinearity == "tanh" else rnn_relu_cell
        out = fn(x, h, *self._weights())
        return out if batched else out.squeeze(0)


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        x, (h, c), batched = self._prepare(input, hx, 2)
        h, c = lstm_cell(x, h, c, *self._weights())
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, hx, 1)
        out = gru_cell(x, h, *self._weights())
        return out if batched else out.squeeze(0)
