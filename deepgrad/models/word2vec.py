"""Skip-gram with negative sampling (Mikolov et al. 2013, "Distributed representations of words and
phrases"), and word-vector queries: ``most_similar`` and ``analogy`` (king - man + woman).

Pieces:

* :func:`build_vocab` counts words and keeps those seen ``min_count`` times, most frequent first.
* :func:`keep_probabilities`: subsampling of frequent words; word ``w`` with corpus frequency
  ``f`` is kept with probability ``min(1, (sqrt(f / t) + 1) * t / f)`` (word2vec.c's rule).
* :func:`noise_distribution`: unigram counts to the power 0.75, normalised.
* :func:`skipgram_pairs`: (center, context) pairs within a window whose radius is drawn uniformly
  in ``1..window`` per center word (word2vec's dynamic window).
* :class:`SkipGram`: input vectors ``in_embed`` (the word vectors) and output vectors
  ``out_embed``; ``model(center, candidates)`` is the scores ``v_center . u_candidate`` (B, 1 + K)
  where column 0 is the true context and the rest are noise words; :class:`NegativeSamplingLoss`
  is ``-log s(u_o . v_c) - sum_k log s(-u_k . v_c)`` averaged over the batch.
* :class:`WordVectors`: cosine queries on the learnt (input) vectors.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .. import nn, ops
from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["build_vocab", "keep_probabilities", "noise_distribution", "subsample", "skipgram_pairs",
           "sample_negatives", "SkipGram", "NegativeSamplingLoss", "WordVectors"]


def build_vocab(tokens, min_count=1, max_size=None):
    """``(words, counts)``: the words seen at least ``min_count`` times, most frequent first (ties
    alphabetically), and their counts."""
    c = Counter(tokens)
    items = sorted(((w, n) for w, n in c.items() if n >= min_count), key=lambda x: (-x[1], x[0]))
    if max_size:
        items = items[:max_size]
    return [w for w, _ in items], np.array([n for _, n in items], dtype=np.int64)


def keep_probabilities(counts, t=1e-3):
    """Probability of keeping each occurrence of a word with these counts (``t``: threshold)."""
    f = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    return np.minimum(1.0, (np.sqrt(f / t) + 1) * t / f)


def noise_distribution(counts, power=0.75):
    """The negative-sampling distribution: ``counts ** power`` normalised."""
    p = np.asarray(counts, dtype=np.float64) ** power
    return p / p.sum()


def subsample(ids, keep_prob, rng):
    """The ids kept by one draw of frequent-word subsampling."""
    ids = np.asarray(ids)
    return ids[rng.random(len(ids)) < keep_prob[ids]]


def skipgram_pairs(ids, window, rng):
    """``(centers, contexts)``: every pair at distance <= r, with the radius r drawn uniformly in
    ``1..window`` for each center position."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    radius = rng.integers(1, window + 1, n)
    centers, contexts = [], []
    pos = np.arange(n)
    for d in range(1, window + 1):
        ok = radius >= d
        for sign in (-1, 1):
            j = pos + sign * d
            m = ok & (j >= 0) & (j < n)
            centers.append(ids[pos[m]])
            contexts.append(ids[j[m]])
    return np.concatenate(centers), np.concatenate(contexts)


def sample_negatives(noise_cdf, shape, rng):
    """Ids drawn from the distribution with cumulative ``noise_cdf``."""
    u = rng.random(shape)
    return np.minimum(np.searchsorted(noise_cdf, u, side="right"), len(noise_cdf) - 1)


class SkipGram(nn.Module):
    """Skip-gram word vectors: ``in_embed`` (V, D) initialised uniform in +-0.5/D, ``out_embed``
    (V, D) zeros (as word2vec.c)."""

    def __init__(self, vocab_size, dim=100):
        super().__init__()
        self.in_embed = nn.Embedding(vocab_size, dim)
        self.out_embed = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out_embed.weight)

    def forward(self, center, candidates):
        """``center`` (B,), ``candidates`` (B, 1 + K) -> scores (B, 1 + K)."""
        v = self.in_embed(center).unsqueeze(-1)                 # (B, D, 1)
        u = self.out_embed(candidates)                          # (B, 1+K, D)
        return ops.matmul(u, v).squeeze(-1)

    @property
    def vectors(self):
        return self.in_embed.weight.array


class NegativeSamplingLoss(nn.Module):
    """``-log s(score_0) - sum_{k>=1} log s(-score_k)``, mean over the batch; ``target`` (B, 1+K)
    holds 1 for the true context and 0 for noise words."""

    def forward(self, scores, target):
        sign = Tensor._make((2 * target.array - 1).astype(scores.array.dtype))
        return -F.logsigmoid(scores * sign).sum(-1).mean()


class WordVectors:
    """Cosine-similarity queries over word vectors (rows of ``vectors``, one per word)."""

    def __init__(self, words, vectors):
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        v = np.asarray(vectors, dtype=np.float64)
        self.vectors = v
        self.unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def __contains__(self, word):
        return word in self.index

    def _id(self, word):
        try:
            return self.index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self.words)} words)") from None

    def _nearest(self, query, k, exclude):
        q = query / max(np.linalg.norm(query), 1e-12)
        sims = self.unit @ q
        sims[list(exclude)] = -np.inf
        order = np.argsort(-sims)[:k]
        return [(self.words[i], float(sims[i])) for i in order]

    def similarity(self, a, b):
        return float(self.unit[self._id(a)] @ self.unit[self._id(b)])

    def most_similar(self, word, k=10):
        """The ``k`` words with the largest cosine similarity to ``word`` (itself excluded)."""
        i = self._id(word)
        return self._nearest(self.unit[i], k, {i})

    def analogy(self, a, b, c, k=5):
        """"a is to b as c is to ?": the words nearest ``b - a + c`` (3CosAdd on unit vectors; the
        query words excluded). ``analogy("man", "king", "woman")`` -> ideally queen."""
        ia, ib, ic = self._id(a), self._id(b), self._id(c)
        return self._nearest(self.unit[ib] - self.unit[ia] + self.unit[ic], k, {ia, ib, ic})
