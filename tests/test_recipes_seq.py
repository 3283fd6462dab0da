"""Sequence recipes: shakespeare-char-lstm (+ `deepgrad sample`), seq2seq-addition, word2vec.

Data pipelines, model invariants and tiny end-to-end runs; the real training runs are reported in
the recipes' docs, not repeated here.
"""
import numpy as np
import pytest

import deepgrad as dg
from deepgrad import cli
from deepgrad.data.datasets._paths import shared_datasets_dir
from deepgrad.data.datasets.text import CharVocab
from deepgrad.models.charrnn import CharRNN, SequenceCrossEntropy, sample_ids
from deepgrad.models.seq2seq import Seq2Seq, exact_match
from deepgrad.models.word2vec import (NegativeSamplingLoss, SkipGram, WordVectors, build_vocab, keep_probabilities,
                                      noise_distribution, sample_negatives, skipgram_pairs, subsample)
from deepgrad.recipes import get_recipe, list_recipes, train_recipe
from deepgrad.recipes import seq2seq_addition as add
from deepgrad.recipes.text import CharBatches, sample_checkpoint
from deepgrad.recipes.word2vec import PAIRS, synthetic_corpus

DATA = shared_datasets_dir()
HAVE_SHAKESPEARE = DATA is not None and (DATA / "tinyshakespeare" / "input.txt").is_file()
needs_data = pytest.mark.skipif(not HAVE_SHAKESPEARE, reason="Tiny Shakespeare not found in the shared datasets")
T = dg.tensor


def N(t):
    return t.detach().numpy()


# ---- recipes ------------------------------------------------------------------------------------
def test_recipes_registered_and_build():
    names = {r.name for r in list_recipes()}
    assert {"shakespeare-char-lstm", "seq2seq-addition", "word2vec"} <= names
    r = get_recipe("shakespeare-char-lstm")
    m = r.build_model(r.hparams(vocab="abc\n", hidden=8, embed=4))
    assert m(T(np.zeros((2, 5), np.int64))).shape == (2, 5, 4)
    r = get_recipe("seq2seq-addition")
    hp = r.hparams(hidden=8, embed=4)
    assert r.build_model(hp)(T(np.full((2, 9), 5)), T(np.ones((2, 6), np.int64))).shape == (2, 6, 14)
    r = get_recipe("word2vec")
    m = r.build_model(r.hparams(vocab=["a", "b", "c"], dim=4))
    assert m(T(np.array([0, 1])), T(np.array([[1, 2], [0, 2]]))).shape == (2, 2)


# ---- char language model: data ----------------------------------------------------------------------
@needs_data
def test_vocabulary_round_trip_and_split():
    r = get_recipe("shakespeare-char-lstm")
    hp = r.hparams(seq_len=16)
    splits = r.build_data(hp, str(DATA))
    vocab = CharVocab(hp["vocab"])
    assert len(vocab) == 65 and hp["vocab"][0] == "\n"
    text = "ROMEO:\nWhat light through yonder window breaks?"
    assert vocab.decode(vocab.encode(text)) == text
    n = len(splits.train) + len(splits.test)
    assert n == 1115394 and len(splits.train) == int(0.9 * n)          # nanoGPT's 90/10 split
    assert vocab.decode(splits.train[:9]) == "First Cit"


def test_char_batches_carry_streams_and_random_windows():
    ids = np.arange(1000)
    b = CharBatches(ids, batch_size=4, seq_len=10, mode="carry", generator=dg.Generator().manual_seed(3))
    batches = list(b)
    assert len(batches) == len(b) == (1000 - 10) // 4 // 10
    for s, ((x, reset), y) in enumerate(batches):
        assert x.shape == y.shape == (4, 10) and reset == (s == 0)
        np.testing.assert_array_equal(y, x + 1)                       # next character
        if s:
            np.testing.assert_array_equal(x[:, 0], batches[s - 1][0][0][:, -1] + 1)   # rows continue
    assert 0 <= batches[0][0][0][0, 0] < 10                              # random offset < seq_len
    r = CharBatches(ids, 4, 10, mode="random", generator=dg.Generator().manual_seed(0))
    for x, y in r:
        np.testing.assert_array_equal(y, x + 1)
        np.testing.assert_array_equal(np.diff(x, axis=1), 1)
        assert x.max() < 999 and y.max() <= 999
    ev = CharBatches(ids, 4, 10)           # evaluation: offset 0, every character but the tail
    assert list(ev)[0][0][0][0, 0] == 0


def test_stateful_forward_equals_one_long_sequence():
    m = CharRNN(7, embed_dim=5, hidden_size=6, num_layers=2).eval()
    x = T(np.random.default_rng(0).integers(0, 7, (3, 12)))
    full = N(m(x))
    a = N(m(x[:, :5], True))
    b = N(m(x[:, 5:], False))
    np.testing.assert_allclose(np.concatenate([a, b], 1), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(N(m(x[:, 5:], True)), N(m(x[:, 5:])), rtol=1e-6)  # reset = zeros
    m.train()
    m(x[:, :5], True)
    assert all(not s.requires_grad for s in m._streams[True])             # carried state is detached


def test_sample_ids_temperature_and_top_k():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    rng = np.random.default_rng(0)
    assert sample_ids(logits, 0.0)[0] == 0
    draws = sample_ids(np.repeat(logits, 20000, 0), 1.0, None, rng)
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / len(draws), [0.5, 0.3, 0.15, 0.05], atol=0.015)
    draws = sample_ids(np.repeat(logits, 5000, 0), 0.5, 2, rng)
    p = np.array([0.5, 0.3]) ** 2
    assert set(draws) <= {0, 1}
    assert abs((draws == 0).mean() - p[0] / p.sum()) < 0.03


@pytest.fixture(scope="module")
def tiny_char_checkpoint(tmp_path_factory):
    if not HAVE_SHAKESPEARE:
        pytest.skip("Tiny Shakespeare not found")
    out = tmp_path_factory.mktemp("charlstm")
    res = train_recipe("shakespeare-char-lstm", out=str(out), data=str(DATA), verbose=0, plots=False, epochs=3,
                       subset=6000, hidden=32, embed=16, seq_len=32, batch_size=16, eval_batch_size=8, lr=1e-2)
    return res


def test_tiny_char_training_lowers_the_loss(tiny_char_checkpoint):
    h = tiny_char_checkpoint["history"]
    assert h[0]["loss"] < np.log(65) + 0.1
    assert h[-1]["loss"] < h[0]["loss"] - 0.3 and h[-1]["val_loss"] < h[0]["val_loss"]


def test_sample_command_reproducible_and_in_vocabulary(tiny_char_checkpoint, capsys):
    ckpt = tiny_char_checkpoint["checkpoint"]
    vocab = set(tiny_char_checkpoint["hparams"]["vocab"])
    args = ["sample", ckpt, "--prompt", "ROMEO:", "--temperature", "0.8", "--length", "60", "--seed", "7"]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    assert cli.main(args) == 0
    assert capsys.readouterr().out == first
    text = first.rstrip("\n")
    assert text.startswith("ROMEO:") and len(text) == 66 and set(text) <= vocab
    other = sample_checkpoint(ckpt, "ROMEO:", 60, 0.8, seed=8)
    assert other != text
    assert sample_checkpoint(ckpt, "A", 30, 1.0, top_k=1, seed=1) == sample_checkpoint(ckpt, "A", 30, 0.0, seed=2)
    assert cli.main(["sample", ckpt, "--prompt", "ROMEO\u00e9"]) == 1            # not in the vocabulary
    assert "not in the vocabulary" in capsys.readouterr().err


# ---- addition: data and model -------------------------------------------------------------------
def test_addition_pairs_encode_correct_sums():
    rng = np.random.default_rng(0)
    a, b = add.sample_operands(500, 4, rng), add.sample_operands(500, 4, rng)
    assert a.min() >= 0 and a.max() <= 9999
    digits = np.array([len(str(v)) for v in a])
    assert set(digits) == {1, 2, 3, 4} and abs((digits == 1).mean() - 0.25) < 0.07
    src, tin, tout = add.encode_pairs(a, b, 4)
    assert src.shape == (500, 9) and tin.shape == tout.shape == (500, 6)
    for i in range(500):
        assert add.decode_ids(src[i]) == f"{a[i]}+{b[i]}"
        assert add.decode_ids(tout[i]) == str(a[i] + b[i])
        n = len(str(a[i] + b[i]))
        assert tout[i, n] == add.EOS and (tout[i, n + 1:] == add.PAD).all()
        assert tin[i, 0] == add.BOS and (tin[i, 1:n + 1] == tout[i, :n]).all()
    s, _, o = add.encode_pairs([8584], [920], 4)
    assert add.decode_ids(s[0]) == "8584+920" and add.decode_ids(o[0]) == "9504"


def test_addition_held_out_pairs_never_trained_on():
    r = get_recipe("seq2seq-addition")
    hp = r.hparams(n_val=300, n_test=700, batch_size=512, steps_per_epoch=40)
    splits = r.build_data(hp)
    held = splits.train
    keys = add._key(held.a, held.b, 4)
    assert len(np.unique(keys)) == 1000                                    # distinct, val and test disjoint
    train, val, test = r.build_loaders(hp, splits)
    assert sum(len(y) for _, y in val) == 300 and sum(len(y) for _, y in test) == 700
    seen = 0
    for (src, _), _ in train:
        pairs = [add.decode_ids(row).split("+") for row in src]
        a = np.array([int(p[0]) for p in pairs])
        b = np.array([int(p[1]) for p in pairs])
        assert not held.contains(a, b).any() and not held.contains(b, a).any()
        seen += len(a)
    assert seen == 40 * 512
    # the rejection really happens: 20 of the 55 one-digit pairs are held out
    batches = add.AdditionBatches(64, 1, steps=5, generator=dg.Generator().manual_seed(0),
                                  held_out=add.HeldOut(10, 10, 1, seed=0, max_fraction=0.4))
    for (src, _), _ in batches:
        pairs = np.array([[int(v) for v in add.decode_ids(row).split("+")] for row in src])
        assert not batches.held_out.contains(pairs[:, 0], pairs[:, 1]).any()


@pytest.mark.parametrize("attention,bidirectional", [("additive", True), ("additive", False), ("dot", True),
                                                     (None, False)])
def test_seq2seq_greedy_matches_teacher_forcing_on_its_own_outputs(attention, bidirectional):
    m = Seq2Seq(14, 14, embed_dim=6, hidden_size=8, attention=attention, bidirectional=bidirectional)
    src, _, _ = add.encode_pairs([12, 3456, 7], [345, 9, 88], 4)
    m.eval()
    ids = m.greedy(src, 6)
    logits = N(m(T(src), T(np.zeros((3, 6), np.int64))))
    np.testing.assert_array_equal(logits.argmax(-1), ids)
    tin = np.concatenate([np.full((3, 1), add.BOS), ids[:, :-1]], 1)
    m.train()
    np.testing.assert_allclose(N(m(T(src), T(tin))), logits, rtol=1e-4, atol=1e-5)
    assert exact_match(logits, ids) == 1.0


def test_seq2seq_attention_ignores_padding():
    m = Seq2Seq(14, 14, embed_dim=6, hidden_size=8, attention="additive").eval()
    src, _, _ = add.encode_pairs([12], [34], 4)
    _, attn = m.greedy(src, 3, return_attention=True)
    np.testing.assert_allclose(attn[0, :, src[0] == add.PAD], 0.0)
    np.testing.assert_allclose(attn.sum(-1), 1.0, rtol=1e-5)


def test_tiny_addition_training_lowers_the_loss(tmp_path):
    res = train_recipe("seq2seq-addition", out=str(tmp_path), verbose=0, plots=False, epochs=2, steps_per_epoch=15,
                       batch_size=64, hidden=32, embed=8, max_digits=2, n_val=64, n_test=64, lr=1e-2)
    h = res["history"]
    assert h[-1]["loss"] < h[0]["loss"] and h[-1]["token_accuracy"] > 0.2
    assert set(res["test"]) == {"loss", "exact_match", "token_accuracy"}


# ---- word2vec -----------------------------------------------------------------------------------
def test_vocab_subsampling_and_noise_distribution():
    words, counts = build_vocab("a b a c a b d".split() + ["e"], min_count=1)
    assert words == ["a", "b", "c", "d", "e"] and counts.tolist() == [3, 2, 1, 1, 1]
    assert build_vocab("a b a c".split(), min_count=2)[0] == ["a"]
    counts = np.array([5000, 1000, 100, 10, 1])
    keep = keep_probabilities(counts, t=1e-2)
    f = counts / counts.sum()
    np.testing.assert_allclose(keep, np.minimum(1, (np.sqrt(f / 1e-2) + 1) * 1e-2 / f))
    assert keep[0] < keep[1] < 1 and keep[-1] == 1
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(5), 20000)
    kept = subsample(ids, keep, rng)
    np.testing.assert_allclose(np.bincount(kept, minlength=5) / 20000, keep, atol=0.015)
    noise = noise_distribution(counts)
    np.testing.assert_allclose(noise, counts ** 0.75 / (counts ** 0.75).sum())
    draws = sample_negatives(np.cumsum(noise), (200000,), rng)
    np.testing.assert_allclose(np.bincount(draws, minlength=5) / draws.size, noise, atol=0.004)


def test_skipgram_pairs_lie_in_dynamic_windows():
    rng = np.random.default_rng(0)
    ids = np.arange(4000)                                # id = position
    c, o = skipgram_pairs(ids, 3, rng)
    d = np.abs(c - o)
    assert d.min() == 1 and d.max() == 3
    pairs = set(zip(c.tolist(), o.tolist()))
    assert all((i, i + 1) in pairs and (i + 1, i) in pairs for i in range(3999))    # radius >= 1 always
    assert 0.3 < (d == 3).sum() / (d == 1).sum() < 0.37     # P(radius >= 3) = 1/3
    per_center = np.bincount(c, minlength=4000)
    assert per_center.max() <= 6


def test_negative_sampling_loss_matches_formula():
    scores = T(np.array([[2.0, -1.0, 0.5], [0.1, 0.3, -2.0]], np.float32), requires_grad=True)
    labels = T(np.array([[1, 0, 0], [1, 0, 0]], np.float32))
    loss = NegativeSamplingLoss()(scores, labels)
    s = N(scores)
    lsig = lambda z: -np.log1p(np.exp(-z))  # noqa: E731
    expect = -(lsig(s[:, 0]) + lsig(-s[:, 1:]).sum(1)).mean()
    np.testing.assert_allclose(loss.item(), expect, rtol=1e-5)
    loss.backward()
    sig = 1 / (1 + np.exp(-s))
    g = np.where(labels.numpy() == 1, sig - 1, sig) / 2
    np.testing.assert_allclose(scores.grad.numpy(), g, rtol=1e-5, atol=1e-7)


def test_word_vectors_queries_on_planted_vectors():
    words = ["king", "queen", "man", "woman", "apple"]
    male, female, royal, common = np.eye(5)[:4]
    vecs = np.stack([male + royal, female + royal, male + common, female + common, np.eye(5)[4]])
    wv = WordVectors(words, vecs)
    assert wv.analogy("man", "king", "woman", k=1)[0][0] == "queen"
    top = wv.most_similar("king", 4)
    assert top[0][1] == pytest.approx(0.5) and top[-1][0] == "apple" and "king" not in [w for w, _ in top]
    assert wv.similarity("king", "king") == pytest.approx(1.0)
    with pytest.raises(KeyError, match="not in the vocabulary"):
        wv.most_similar("emperor")


def test_word2vec_learns_planted_analogy():
    """A short run on the synthetic gender x role corpus recovers king - man + woman = queen."""
    dg.manual_seed(0)
    rng = np.random.default_rng(0)
    tokens = synthetic_corpus(3000, seed=0)
    words, counts = build_vocab(tokens)
    index = {w: i for i, w in enumerate(words)}
    ids = np.array([index[w] for w in tokens])
    model = SkipGram(len(words), 16)
    opt = dg.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = NegativeSamplingLoss()
    keep = keep_probabilities(counts, 1e-2)
    cdf = np.cumsum(noise_distribution(counts))
    losses = []
    for epoch in range(4):
        c, o = skipgram_pairs(subsample(ids, keep, rng), 4, rng)
        order = rng.permutation(len(c))
        for s in range(0, len(order), 512):
            idx = order[s:s + 512]
            cand = np.concatenate([o[idx, None], sample_negatives(cdf, (len(idx), 5), rng)], 1)
            labels = np.zeros(cand.shape, np.float32)
            labels[:, 0] = 1
            loss = loss_fn(model(T(c[idx]), T(cand)), T(labels))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.5
    wv = WordVectors(words, model.vectors)
    assert wv.analogy("man", "king", "woman", k=1)[0][0] == "queen"
    assert wv.most_similar("king", 1)[0][0] in {"queen"} | set(PAIRS[0][2])


def test_held_out_keeps_small_buckets_in_training():
    with pytest.raises(ValueError, match="distinct"):
        add.HeldOut(30, 30, 1, seed=0)
    h = add.HeldOut(1000, 2000, 4, seed=1234)
    one_digit = (h.a < 10) & (h.b < 10)
    assert 0 < one_digit.sum() <= 5                      # 10% of the 55 one-digit pairs at most
    small = lambda a, b: ((a < 100) & (b < 100)).sum()  # noqa: E731
    assert small(*h.val) > 0 and small(*h.test) > 0       # both splits hold easy pairs


def test_sequence_cross_entropy_ignores_padding():
    logits = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
    target = np.array([[1, 2, 0], [4, 0, 0]])
    got = SequenceCrossEntropy(ignore_index=0)(T(logits), T(target)).item()
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -np.mean([lp[0, 0, 1], lp[0, 1, 2], lp[1, 0, 4]])
    assert got == pytest.approx(want, rel=1e-5)
