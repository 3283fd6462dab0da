"""Every loss vs PyTorch: values and gradients for each reduction, weights, special cases."""
import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn
import deepgrad.nn.functional as F
from nnutil import close, randn

REDUCTIONS = ["mean", "sum", "none"]


def run(ours, theirs, inputs, grad_idx=(0,), rtol=1e-4, atol=1e-5, seed=0):
    """Apply both loss callables to the same NumPy inputs; compare value and grads of ``grad_idx``."""
    xs = [dg.tensor(a, requires_grad=(i in grad_idx)) for i, a in enumerate(inputs)]
    ts = [torch.tensor(a, requires_grad=(i in grad_idx)) for i, a in enumerate(inputs)]
    y, ty = ours(*xs), theirs(*ts)
    close(y, ty, "loss", rtol, atol)
    w = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(ty.detach().numpy().dtype)
    y.backward(dg.tensor(w))
    ty.backward(torch.tensor(w))
    for i in grad_idx:
        close(xs[i].grad, ts[i].grad, f"grad of input {i}", rtol, atol)
    return y


# ---- cross-entropy ------------------------------------------------------------------------------

def _targets(shape, C, seed=1, ignore=None):
    t = np.random.default_rng(seed).integers(0, C, shape).astype(np.int64)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("ignore", [None, 2])
def test_cross_entropy_indices(reduction, weighted, ls, ignore):
    C = 5
    x, t = randn(8, C, scale=3.0), _targets(8, C, ignore=ignore)
    w = np.linspace(0.5, 2.0, C).astype(np.float32) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=ls, ignore_index=ignore if ignore is not None else -100)
    ours = nn.CrossEntropyLoss(weight=None if w is None else dg.tensor(w), **kw)
    theirs = torch.nn.CrossEntropyLoss(weight=None if w is None else torch.tensor(w), **kw)
    run(ours, theirs, [x, t])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cross_entropy_probabilities(reduction, weighted, ls):
    C = 4
    x = randn(6, C, 3, scale=2.0)
    p = np.random.default_rng(2).dirichlet(np.ones(C), size=(6, 3)).transpose(0, 2, 1).astype(np.float32)
    w = dg.tensor([1.0, 2.0, 0.5, 1.5]) if weighted else None
    tw = torch.tensor([1.0, 2.0, 0.5, 1.5]) if weighted else None
    run(lambda a, b: F.cross_entropy(a, b, weight=w, reduction=reduction, label_smoothing=ls),
        lambda a, b: torch.nn.functional.cross_entropy(a, b, weight=tw, reduction=reduction, label_smoothing=ls),
        [x, p], grad_idx=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_extra_dims_and_unbatched(reduction):
    C = 3
    x, t = randn(2, C, 4, 5), _targets((2, 4, 5), C, ignore=-100)
    run(nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.05),
        torch.nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.05), [x, t])
    run(nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
        [randn(C), np.array(1, dtype=np.int64)])


def test_cross_entropy_huge_logits_stable():
    x = np.array([[1e30, -1e30, 0.0], [5e4, 5e4 + 1, -5e4], [-1e4, 1e4, 0.0]], dtype=np.float32)
    t = np.array([1, 1, 0], dtype=np.int64)
    xs = dg.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xs, dg.tensor(t))
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(xs.grad.numpy()))
    run(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), [x, t], rtol=1e-5, atol=1e-3)
    run(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), [x.astype(np.float64), t], rtol=1e-7, atol=1e-6)


def test_cross_entropy_errors():
    x = dg.randn(4, 3)
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, dg.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"expected target of shape \(4,\)"):
        F.cross_entropy(x, dg.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, dg.tensor([0, 1, 2, 0]), reduction="avg")
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, dg.tensor([0, 1, 2, 0]), weight=dg.ones(4))


def test_cross_entropy_all_ignored_is_nan_like_torch():
    t = np.full(3, -100, dtype=np.int64)
    ours = F.cross_entropy(dg.randn(3, 4), dg.tensor(t))
    theirs = torch.nn.functional.cross_entropy(torch.randn(3, 4), torch.tensor(t))
    assert np.isnan(ours.item()) and np.isnan(theirs.item())


# ---- NLL, multi-margin --------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(reduction, weighted):
    C = 4
    x = np.log(np.random.default_rng(0).dirichlet(np.ones(C), size=(5, 3)).transpose(0, 2, 1)).astype(np.float32)
    t = _targets((5, 3), C, ignore=1)
    w = np.array([1.0, 0.3, 2.0, 1.0], np.float32) if weighted else None
    run(nn.NLLLoss(weight=None if w is None else dg.tensor(w), ignore_index=1, reduction=reduction),
        torch.nn.NLLLoss(weight=None if w is None else torch.tensor(w), ignore_index=1, reduction=reduction), [x, t])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,margin,weighted", [(1, 1.0, False), (2, 0.5, True), (1, 2.0, True)])
def test_multi_margin_loss(reduction, p, margin, weighted):
    C = 5
    w = np.linspace(0.5, 1.5, C).astype(np.float32) if weighted else None
    run(nn.MultiMarginLoss(p, margin, None if w is None else dg.tensor(w), reduction=reduction),
        torch.nn.MultiMarginLoss(p, margin, None if w is None else torch.tensor(w), reduction=reduction),
        [randn(6, C), _targets(6, C)])


# ---- composed losses ----------------------------------------------------------------------------

PAIRS = [
    ("MSELoss", {}), ("L1Loss", {}), ("SmoothL1Loss", {"beta": 0.5}), ("SmoothL1Loss", {"beta": 0.0}),
    ("HuberLoss", {"delta": 0.7}), ("SoftMarginLoss", {}),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kw", PAIRS, ids=[p[0] + str(p[1]) for p in PAIRS])
def test_regression_losses(name, kw, reduction):
    x, y = randn(4, 6), randn(4, 6, seed=1)
    if name == "SoftMarginLoss":
        y = np.sign(y)
    run(getattr(nn, name)(reduction=reduction, **kw), getattr(torch.nn, name)(reduction=reduction, **kw),
        [x, y], grad_idx=(0, 1) if name != "SoftMarginLoss" else (0,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce(reduction, weighted):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, (5, 3)).astype(np.float32)
    y = rng.integers(0, 2, (5, 3)).astype(np.float32)
    w = rng.uniform(0.5, 2, (5, 3)).astype(np.float32) if weighted else None
    run(nn.BCELoss(None if w is None else dg.tensor(w), reduction=reduction),
        torch.nn.BCELoss(None if w is None else torch.tensor(w), reduction=reduction), [p, y])
    with pytest.raises(ValueError, match="same size"):
        F.binary_cross_entropy(dg.tensor(p), dg.tensor(y[:2]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, [1.0, 3.0, 0.5]])
def test_bce_with_logits(reduction, pos_weight):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5, 3)) * 30).astype(np.float32)  # large logits: stable formula
    x[0] = 0.0                                                   # gradient at exactly 0 is sigmoid(0) - y
    y = rng.uniform(0, 1, (5, 3)).astype(np.float32)
    w = np.linspace(0.5, 1.5, 3).astype(np.float32)
    run(nn.BCEWithLogitsLoss(dg.tensor(w), reduction=reduction,
                             pos_weight=None if pos_weight is None else dg.tensor(pos_weight)),
        torch.nn.BCEWithLogitsLoss(torch.tensor(w), reduction=reduction,
                                   pos_weight=None if pos_weight is None else torch.tensor(pos_weight)),
        [x, y], grad_idx=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    rng = np.random.default_rng(0)
    inp = np.log(rng.dirichlet(np.ones(5), size=4)).astype(np.float32)
    tgt = rng.dirichlet(np.ones(5), size=4).astype(np.float32)
    tgt[0, 0] = 0.0                                   # 0 * log 0 = 0
    if log_target:
        tgt = np.log(tgt + 1e-3).astype(np.float32)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(nn.KLDivLoss(reduction=reduction, log_target=log_target),
            torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), [inp, tgt])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cosine_embedding_loss(reduction):
    a, b = randn(6, 4), randn(6, 4, seed=1)
    y = np.array([1, -1, 1, -1, -1, 1], dtype=np.float32)
    run(nn.CosineEmbeddingLoss(margin=0.1, reduction=reduction),
        torch.nn.CosineEmbeddingLoss(margin=0.1, reduction=reduction), [a, b, y], grad_idx=(0, 1))


def test_margin_ranking_and_hinge():
    a, b = randn(6), randn(6, seed=1)
    y = np.array([1, -1, 1, -1, -1, 1], dtype=np.float32)
    run(nn.MarginRankingLoss(0.2), torch.nn.MarginRankingLoss(0.2), [a, b, y], grad_idx=(0, 1))
    run(nn.HingeEmbeddingLoss(0.5), torch.nn.HingeEmbeddingLoss(0.5), [a, y])


def test_legacy_size_average_reduce_and_reprs():
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.MSELoss(reduce=False).reduction == "none"
    for name in ["CrossEntropyLoss", "MSELoss", "NLLLoss", "BCEWithLogitsLoss", "KLDivLoss", "L1Loss"]:
        assert repr(getattr(nn, name)()) == repr(getattr(torch.nn, name)())
    w = dg.ones(3)
    assert list(nn.CrossEntropyLoss(weight=w).state_dict()) == list(torch.nn.CrossEntropyLoss(weight=torch.ones(3)).state_dict())
