"""word2vec: skip-gram with negative sampling (the lecture notes' "word embeddings", king - man +
woman = queen), on the words of Tiny Shakespeare or on a small synthetic corpus with planted
gender x role structure.

Corpora (``corpus``):

* ``"shakespeare"``: Tiny Shakespeare lower-cased, split into words (``[a-z']+``), words seen
  fewer than ``min_count`` times dropped (about 200k tokens; it is tiny next to the 6-billion-word
  news corpus of Mikolov et al., so do not expect their analogies).
* ``"synthetic"``: :func:`synthetic_corpus`, sentences about ten gendered word pairs (king/queen,
  man/woman, prince/princess, ...), each sentence mixing gender context words (he/him/his vs
  she/her/hers), role context words (crown/throne/reign for king and queen, ...) and fillers, so
  that ``king - man + woman`` lands on ``queen`` when the vectors capture the structure.

Every epoch draws a fresh subsampling of frequent words, dynamic windows and noise words from the
recipe's seeded generator. The model and loss are in :mod:`deepgrad.models.word2vec`; after
training, :func:`load_word_vectors` gives a :class:`~deepgrad.models.word2vec.WordVectors` with
``most_similar`` and ``analogy``.

Measured on Tiny Shakespeare (defaults: 3,330 words with min_count 5, 100-d, window 5, 5 noise
words, t = 1e-3, Adam 3e-3 decayed linearly, 5 epochs, 122 s on a shared 2-core CPU): the
neighbours are sensible (romeo: juliet, mercutio, benvolio, tybalt; queen: margaret, elizabeth;
father: son, grandfather; night: morning, morrow) and ``analogy("he", "his", "she")`` gives
``her``, but ``analogy("man", "king", "woman")`` gives protector, commands, title (queen ranks
92nd): 200k words are far too few for that analogy. On the synthetic corpus it gives queen.
"""
from __future__ import annotations

import re

import numpy as np

from . import Recipe, Splits, register

__all__ = ["PAIRS", "synthetic_corpus", "shakespeare_words", "SkipGramBatches", "Word2VecRecipe",
           "load_word_vectors"]

#: (male, female, role context words) of the synthetic corpus
PAIRS = [("king", "queen", ["crown", "throne", "reign", "royal"]),
         ("man", "woman", ["walks", "works", "street", "adult"]),
         ("prince", "princess", ["castle", "heir", "young_royal", "court"]),
         ("boy", "girl", ["school", "plays", "toy", "child"]),
         ("father", "mother", ["parent", "family", "home", "raise"]),
         ("son", "daughter", ["born", "offspring", "inherit", "grow"]),
         ("lord", "lady", ["manor", "estate", "noble", "title"]),
         ("brother", "sister", ["sibling", "twin", "older", "younger"]),
         ("husband", "wife", ["married", "wedding", "spouse", "ring"]),
         ("uncle", "aunt", ["nephew", "niece", "relative", "visit"])]
_GENDER = (["he", "him", "his", "himself"], ["she", "her", "hers", "herself"])
_FILLERS = ["the", "a", "of", "and", "to", "in", "is", "was", "with", "for"]


def synthetic_corpus(n_sentences=20000, seed=0):
    """Tokens of ``n_sentences`` sentences: a word of :data:`PAIRS`, two of its gender's context
    words, two of its role's context words and two fillers, shuffled."""
    rng = np.random.default_rng(seed)
    tokens = []
    for _ in range(n_sentences):
        p = rng.integers(len(PAIRS))
        g = rng.integers(2)
        words = [PAIRS[p][g]] + list(rng.choice(_GENDER[g], 2)) + list(rng.choice(PAIRS[p][2], 2)) \
            + list(rng.choice(_FILLERS, 2))
        rng.shuffle(words)
        tokens.extend(str(w) for w in words)
    return tokens


def shakespeare_words(root=None):
    """Tiny Shakespeare's text, lower-cased, as a list of words."""
    from ..data.datasets.text import TinyShakespeare
    text = TinyShakespeare(root=root, train=True, seq_len=1).text
    return re.findall(r"[a-z']+", text.lower())


class SkipGramBatches:
    """``((centers, candidates), labels)`` batches for one epoch over ``ids``: frequent words
    subsampled, skip-gram pairs within dynamic windows, shuffled, ``negatives`` noise words per
    pair from the unigram^0.75 distribution (all drawn from ``generator``). ``len`` is an
    estimate from the expected number of pairs (the last batches of an epoch may differ)."""

    def __init__(self, ids, counts, batch_size, window=5, negatives=5, t=1e-3, generator=None):
        from ..models.word2vec import keep_probabilities, noise_distribution
        self.ids = np.asarray(ids, dtype=np.int64)
        self.batch_size, self.window, self.negatives = int(batch_size), int(window), int(negatives)
        self.keep = keep_probabilities(counts, t) if t else np.ones(len(counts))
        self.noise = noise_distribution(counts)
        self.cdf = np.cumsum(self.noise)
        self.generator = generator
        kept = float(self.keep[self.ids].sum())
        self.steps = max(1, int(kept * (self.window + 1) // self.batch_size))

    def __len__(self):
        return self.steps

    def __iter__(self):
        from ..models.word2vec import sample_negatives, skipgram_pairs, subsample
        rng = self.generator.np if self.generator is not None else np.random.default_rng(0)
        ids = subsample(self.ids, self.keep, rng)
        centers, contexts = skipgram_pairs(ids, self.window, rng)
        order = rng.permutation(len(centers))
        B, K = self.batch_size, self.negatives
        labels = np.zeros((B, 1 + K), np.float32)
        labels[:, 0] = 1
        for s in range(self.steps):
            idx = order[(s * B) % len(order):][:B]
            if len(idx) == 0:
                break
            cand = np.empty((len(idx), 1 + K), np.int64)
            cand[:, 0] = contexts[idx]
            cand[:, 1:] = sample_negatives(self.cdf, (len(idx), K), rng)
            yield (centers[idx], cand), labels[:len(idx)]


@register
class Word2VecRecipe(Recipe):
    name = "word2vec"
    summary = "skip-gram with negative sampling (word2vec) on Tiny Shakespeare's words (or a synthetic corpus)"
    reproduces = ("Mikolov et al. 2013: word vectors whose neighbours are related words; king - man + woman ~ queen "
                  "(on the planted synthetic corpus; Shakespeare's 200k words are far too few for the news analogies)")
    metrics = ()
    defaults = dict(epochs=5, batch_size=1024, lr=3e-3, optimizer="adam", corpus="shakespeare", dim=100, window=5,
                    negatives=5, min_count=5, subsample_t=1e-3, n_sentences=20000, momentum=0.0, vocab=None,
                    counts=None)

    def build_data(self, hp, root=None):
        from ..models.word2vec import build_vocab
        if hp["corpus"] == "shakespeare":
            tokens = shakespeare_words(root)
        elif hp["corpus"] == "synthetic":
            tokens = synthetic_corpus(hp["n_sentences"], seed=hp["seed"])
        else:
            raise ValueError(f"word2vec: corpus must be 'shakespeare' or 'synthetic', got {hp['corpus']!r}")
        if hp.get("subset"):
            tokens = tokens[:hp["subset"]]
        words, counts = build_vocab(tokens, hp["min_count"])
        if hp.get("vocab") is not None and hp["vocab"] != words:
            raise ValueError("word2vec: the corpus's vocabulary differs from the checkpoint's")
        hp["vocab"], hp["counts"] = words, counts.tolist()     # recorded in the checkpoint
        index = {w: i for i, w in enumerate(words)}
        ids = np.array([index[w] for w in tokens if w in index], dtype=np.int64)
        return Splits((ids, counts), None, None)

    def build_loaders(self, hp, splits):
        from .. import random
        gen = random.Generator().manual_seed(hp["seed"] + 1)
        ids, counts = splits.train
        return SkipGramBatches(ids, counts, hp["batch_size"], hp["window"], hp["negatives"], hp["subsample_t"],
                               generator=gen), None, None

    def build_model(self, hp):
        from ..models.word2vec import SkipGram
        if hp.get("vocab") is None:
            raise ValueError("word2vec: build the data first (the vocabulary sizes the model)")
        return SkipGram(len(hp["vocab"]), hp["dim"])

    def build_loss(self, hp):
        from ..models.word2vec import NegativeSamplingLoss
        return NegativeSamplingLoss()

    def build_scheduler(self, hp, optimizer, steps_per_epoch):
        from ..optim.lr_scheduler import LambdaLR
        total = max(1, hp["epochs"] * steps_per_epoch)    # word2vec's linear decay (to 1e-4 of lr)
        return LambdaLR(optimizer, lambda step: max(1e-4, 1 - step / total)), "batch"


def load_word_vectors(path):
    """The :class:`WordVectors` (input vectors) of a ``word2vec`` checkpoint."""
    from ..models.word2vec import WordVectors
    from ._runner import load_trained
    recipe, hp, model = load_trained(path)
    if recipe.name != Word2VecRecipe.name:
        raise ValueError(f"{str(path)!r} is a checkpoint of recipe {recipe.name!r}, not word2vec")
    return WordVectors(hp["vocab"], model.vectors)
