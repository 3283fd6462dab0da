"""Word vectors and a sequence-to-sequence model, asked questions (deck 004): "king - man + woman =
queen", and an encoder-decoder that answers typed-in sums.

* word2vec (recipe ``word2vec``, skip-gram with negative sampling): the nearest neighbours of a few
  words and the analogy ``king - man + woman`` from a checkpoint. Quick mode trains a tiny one on
  the recipe's synthetic corpus (sentences with planted gender x role structure) in a couple of
  seconds; full mode trains the synthetic one at full size and the Tiny Shakespeare one (about two
  minutes) — or pass ``word2vec_checkpoint=`` to query a checkpoint you trained with
  ``deepgrad train word2vec``.
* seq2seq-addition (recipe ``seq2seq-addition``, LSTM encoder-decoder with attention): the model's
  answers to sums such as ``"8584+920"``. Quick mode trains it for a few dozen steps only (its answers
  are mostly wrong: this shows the plumbing); full mode trains the recipe (about six minutes, 97.65%
  exact match) unless ``seq2seq_checkpoint=`` names a trained one. ``sums=`` sets the questions.

``query_word_vectors(path, words)`` and ``answer_sums(path, sums)`` are the same queries on any
checkpoint, for use from Python or a notebook.
"""
from __future__ import annotations

import numpy as np

from . import _b_common as C

NAME = "word-vectors"
DECKS = ("004",)
SUMMARY = "nearest neighbours and king - man + woman from word2vec; a seq2seq model answering typed-in sums"

DEFAULT_SUMS = ("8584+920", "12+34", "7+5", "999+1")


def query_word_vectors(path, words=("king", "queen", "man"), k=5):
    """Print and return ``{"neighbours": {word: [(w, sim)...]}, "analogy": [(w, sim)...]}`` for a
    word2vec checkpoint."""
    from ..recipes.word2vec import load_word_vectors
    wv = load_word_vectors(path)
    out = {"neighbours": {}, "analogy": None, "vectors": wv}
    for w in words:
        if w in wv:
            out["neighbours"][w] = wv.most_similar(w, k)
            C.print_row(f"nearest to {w!r}", ", ".join(f"{n} ({s:.2f})" for n, s in out["neighbours"][w]))
    if all(w in wv for w in ("king", "man", "woman")):
        out["analogy"] = wv.analogy("man", "king", "woman", k)
        C.print_row("king - man + woman", ", ".join(f"{n} ({s:.2f})" for n, s in out["analogy"]), "queen")
    return out


def answer_sums(path, sums=DEFAULT_SUMS):
    """The answers of a ``seq2seq-addition`` checkpoint to ``sums`` (strings ``"a+b"``), printed
    beside the true ones; returns ``[(sum, answer, truth)]``."""
    from ..recipes._runner import load_trained
    from ..recipes.seq2seq_addition import solve
    recipe, hp, model = load_trained(path)
    if recipe.name != "seq2seq-addition":
        raise ValueError(f"{str(path)!r} is a checkpoint of recipe {recipe.name!r}, not seq2seq-addition")
    for s in sums:
        parts = s.replace(" ", "").split("+")
        if len(parts) != 2 or not all(p.isdigit() and len(p) <= hp["max_digits"] for p in parts):
            raise ValueError(f"seq2seq-addition answers sums 'a+b' of numbers with at most {hp['max_digits']} "
                             f"digits; got {s!r}")
    answers = solve(model, list(sums), hp["max_digits"])
    rows = []
    for s, a in zip(sums, answers):
        truth = str(sum(int(p) for p in s.replace(" ", "").split("+")))
        rows.append((s, a, truth))
        C.print_row(f"{s} =", f"{a or '(empty)'}", f"{truth}{'  ok' if a == truth else ''}")
    return rows


def _pca_figure(wv, out):
    from ..recipes.word2vec import PAIRS
    pairs = [(m, f) for m, f, _ in PAIRS if m in wv and f in wv]
    words = [w for p in pairs for w in p]
    v = np.stack([wv.unit[wv.index[w]] for w in words])
    v = v - v.mean(0)
    _, _, vt = np.linalg.svd(v, full_matrices=False)
    p2 = v @ vt[:2].T
    fig, ax = C.new_figure(size=(6, 5))
    ax = ax[0, 0]
    for i, (m, f) in enumerate(pairs):
        a, b = p2[2 * i], p2[2 * i + 1]
        ax.annotate("", b, a, arrowprops=dict(arrowstyle="->", color="gray"))
        ax.scatter(*a, color="C0", label="male word" if i == 0 else None)
        ax.scatter(*b, color="C3", label="female word" if i == 0 else None)
        ax.text(*a, m, fontsize=8)
        ax.text(*b, f, fontsize=8)
    ax.set(title="word2vec: gendered pairs (PCA of the vectors)", xlabel="principal component 1",
           ylabel="principal component 2")
    ax.legend()
    return C.save_fig(fig, out, "word_vectors_pca.png")


def run(quick: bool = False, out=None, seed: int = 0, word2vec_checkpoint=None, seq2seq_checkpoint=None,
        sums=DEFAULT_SUMS) -> dict:
    """Quick runs train their throwaway models in a temporary folder; full runs keep the trained
    checkpoints in ``out/word2vec-*`` and ``out/seq2seq-addition`` for later queries."""
    import tempfile
    out = C.out_dir(NAME, out)
    if not quick:
        return _run(quick, out, out, seed, word2vec_checkpoint, seq2seq_checkpoint, sums)
    with tempfile.TemporaryDirectory(prefix="deepgrad-word-vectors-") as tmp:
        return _run(quick, out, C.Path(tmp), seed, word2vec_checkpoint, seq2seq_checkpoint, sums)


def _run(quick, out, runs, seed, word2vec_checkpoint, seq2seq_checkpoint, sums):
    from ..recipes._runner import train_recipe
    res, figs = {}, []
    C.print_header("word2vec: nearest neighbours and king - man + woman")
    ckpt = word2vec_checkpoint
    if ckpt is None:
        kw = dict(corpus="synthetic", epochs=1, n_sentences=2000, dim=16, min_count=1, batch_size=256, lr=2e-2,
                  subsample_t=0) \
            if quick else dict(corpus="synthetic", epochs=5)
        print(f"  training word2vec on the synthetic corpus ({kw.get('n_sentences', 20000)} sentences)")
        r = train_recipe("word2vec", out=str(runs / "word2vec-synthetic"), verbose=0, plots=False, seed=seed, **kw)
        ckpt = r["checkpoint"]
    q = query_word_vectors(ckpt, ("king", "queen", "man", "woman"))
    res["king_neighbours"] = [w for w, _ in q["neighbours"].get("king", [])]
    res["analogy"] = [w for w, _ in q["analogy"]] if q["analogy"] else []
    res["analogy_top"] = res["analogy"][0] if res["analogy"] else None
    res["queen_rank"] = res["analogy"].index("queen") + 1 if "queen" in res["analogy"] else None
    figs.append(_pca_figure(q["vectors"], out))
    if not quick and word2vec_checkpoint is None:
        print("  training word2vec on Tiny Shakespeare's words (about two minutes)")
        r = train_recipe("word2vec", out=str(runs / "word2vec-shakespeare"), verbose=0, plots=False, seed=seed)
        query_word_vectors(r["checkpoint"], ("romeo", "queen", "father", "night"))

    C.print_header("seq2seq-addition: answering typed-in sums")
    ckpt = seq2seq_checkpoint
    if ckpt is None:
        kw = dict(epochs=1, steps_per_epoch=30, batch_size=64, hidden=32, embed=16, max_digits=2,
                  n_val=100, n_test=100) if quick else {}
        print(f"  training seq2seq-addition ({'30 steps: expect wrong answers' if quick else 'full recipe'})")
        r = train_recipe("seq2seq-addition", out=str(runs / "seq2seq-addition"), verbose=0, plots=False, seed=seed,
                         **kw)
        ckpt = r["checkpoint"]
        res["seq2seq_test"] = {k: float(v) for k, v in r["test"].items()}
        if quick:
            sums = tuple(s for s in sums if all(len(p) <= 2 for p in s.split("+"))) or ("12+34", "7+5")
    rows = answer_sums(ckpt, sums)
    res["sums"] = rows
    res["sums_right"] = sum(a == t for _, a, t in rows)
    res["figures"] = [str(p) for p in figs]
    return res


def main(argv=None):
    """``python -m deepgrad.demos.word_vectors --seq2seq CKPT 8584+920 3+4`` answers typed-in sums;
    ``--word2vec CKPT king queen`` prints neighbours (and king - man + woman when it can)."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m deepgrad.demos.word_vectors",
                                description="query trained word2vec / seq2seq-addition checkpoints")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--word2vec", metavar="CKPT", help="a checkpoint of `deepgrad train word2vec`")
    g.add_argument("--seq2seq", metavar="CKPT", help="a checkpoint of `deepgrad train seq2seq-addition`")
    p.add_argument("queries", nargs="*", help="words (word2vec) or sums like 8584+920 (seq2seq)")
    a = p.parse_args(argv)
    try:
        if a.word2vec:
            query_word_vectors(a.word2vec, tuple(a.queries) or ("king", "queen", "man"))
        else:
            answer_sums(a.seq2seq, tuple(a.queries) or DEFAULT_SUMS)
    except (ValueError, KeyError, OSError) as e:
        print(f"error: {e}", file=__import__("sys").stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
