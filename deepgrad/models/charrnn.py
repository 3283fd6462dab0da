"""Character-level recurrent language model (Karpathy's char-rnn): embedding -> LSTM/GRU/RNN ->
linear read-out of the next character's logits, plus temperature / top-k sampling.

``CharRNN(vocab_size)(x)`` maps ids ``(B, T)`` to logits ``(B, T, vocab_size)`` from a zero
state. Truncated back-propagation through time: ``model(x, reset)`` with ``reset`` a bool
(``True`` at the first batch of a stream) starts from the final state of the previous call in the
same mode (train / eval), detached, so consecutive batches whose rows continue each other carry
their hidden states forward while gradients stop at the batch boundary.
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn
from ..autograd.grad_mode import no_grad
from ..ops.loss import cross_entropy
from ..tensor import Tensor

__all__ = ["CharRNN", "SequenceCrossEntropy", "char_accuracy", "sample_ids"]

_CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _state_batch(state):
    return (state[0] if isinstance(state, tuple) else state).shape[1]


class CharRNN(nn.Module):
    """Embedding(vocab, embed_dim) -> ``cell``(embed_dim, hidden_size, num_layers) -> Dropout ->
    Linear(hidden_size, vocab). ``cell``: ``"lstm"``, ``"gru"`` or ``"rnn"``."""

    def __init__(self, vocab_size, embed_dim=64, hidden_size=256, num_layers=1, dropout=0.0, cell="lstm"):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"CharRNN: cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.vocab_size, self.cell = int(vocab_size), cell
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = getattr(nn, _CELLS[cell])(embed_dim, hidden_size, num_layers, batch_first=True,
                                             dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        self._streams = {}            # training mode (bool) -> detached final state of the last call

    def reset_state(self):
        """Forget the carried states (both modes)."""
        self._streams = {}

    def forward(self, x, reset=None, state=None, return_state=False):
        """``x``: int ids (B, T). ``reset``: None (start from ``state`` or zeros, keep nothing) or a
        bool (truncated BPTT: start from zeros when True, else from the carried state).
        Returns logits (B, T, V), and the final state too when ``return_state``."""
        if reset is not None and state is None:
            if isinstance(reset, Tensor):
                reset = bool(reset.array.reshape(-1)[0])
            carried = self._streams.get(self.training)
            if not reset and carried is not None and _state_batch(carried) == x.shape[0]:
                state = carried
        out, new = self.rnn(self.embed(x), state)
        if reset is not None:
            self._streams[self.training] = _detach(new)
        logits = self.head(self.drop(out))
        return (logits, new) if return_state else logits

    @no_grad()
    def generate(self, prompt_ids, length, temperature=1.0, top_k=None, generator=None):
        """Continue ``prompt_ids`` (a non-empty 1-d sequence of ids) by ``length`` sampled ids
        (returned as an int64 array, without the prompt). ``temperature`` divides the logits
        (-> 0: greedy); ``top_k`` keeps the k most likely characters; ``generator``: a NumPy
        ``Generator`` (or an int seed)."""
        rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
        ids = np.asarray(prompt_ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            raise ValueError("CharRNN.generate: the prompt must contain at least one character")
        was_training = self.training
        self.eval()
        try:
            dev = self.head.weight.device           # ids go to the model's device, logits come back
            logits, state = self.forward(Tensor._make(backend.to_device(ids[None], dev)), return_state=True)
            last = backend.to_numpy(logits.array[0, -1])
            out = np.empty(int(length), dtype=np.int64)
            for i in range(int(length)):
                nxt = sample_ids(np.asarray(last, dtype=np.float64)[None], temperature, top_k, rng)[0]
                out[i] = nxt
                step = backend.to_device(np.array([[nxt]], dtype=np.int64), dev)
                logits, state = self.forward(Tensor._make(step), state=state, return_state=True)
                last = backend.to_numpy(logits.array[0, -1])
        finally:
            self.train(was_training)
        return out


def sample_ids(logits, temperature=1.0, top_k=None, rng=None):
    """One id per row of ``logits`` (N, V) drawn from ``softmax(logits / temperature)``, restricted
    to the ``top_k`` largest when given; ``temperature <= 0`` takes the argmax."""
    rng = rng if rng is not None else np.random.default_rng()
    logits = np.asarray(logits, dtype=np.float64)
    if temperature is None or temperature <= 0:
        return logits.argmax(-1)
    z = logits / float(temperature)
    if top_k:
        k = min(int(top_k), z.shape[-1])
        kth = np.sort(z, axis=-1)[:, -k][:, None]
        z = np.where(z < kth, -np.inf, z)
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    u = rng.random((p.shape[0], 1))
    return np.minimum((np.cumsum(p, -1) < u).sum(-1), p.shape[-1] - 1)


class SequenceCrossEntropy(nn.Module):
    """Mean cross-entropy over every position of logits (..., V) against ids (...) (nats per
    token); positions equal to ``ignore_index`` do not count."""

    def __init__(self, ignore_index=-100):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits, target):
        V = logits.shape[-1]
        return cross_entropy(logits.reshape(-1, V), target.reshape(-1), ignore_index=self.ignore_index)


def char_accuracy(output, target):
    """Fraction of positions whose argmax over the last axis is the target."""
    out = output.array if isinstance(output, Tensor) else output
    tgt = target.array if isinstance(target, Tensor) else target
    return float((out.argmax(-1) == tgt).mean())
