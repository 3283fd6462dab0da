"""Unsupervised learning: RBM / DBN, autoencoders (plain, tied, sparse, denoising, deep), PCA and
greedy layer-wise pre-training (issue 11's "How it will be checked")."""
import itertools
import math

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn
from deepgrad.models import (DBN, PCA, RBM, AutoEncoder, DeepAutoEncoder, DenoisingAutoEncoder,
                             SparseAutoEncoder, fine_tune, pretrain)
from deepgrad.models.pretrain import linear_layers

torch.set_num_threads(1)


pytestmark = pytest.mark.usefixtures("one_blas_thread")     # see tests/conftest.py



def sig(a):
    return 1 / (1 + np.exp(-a))


def rbm64(nv, nh, visible="bernoulli", hidden="bernoulli", seed=0, scale=0.5):
    r = RBM(nv, nh, visible=visible, hidden=hidden, dtype="float64")
    rng = np.random.default_rng(seed)
    r.weight.array[...] = rng.standard_normal((nh, nv)) * scale
    r.v_bias.array[...] = rng.standard_normal(nv) * 0.3
    r.h_bias.array[...] = rng.standard_normal(nh) * 0.3
    return r


def params(r):
    return r.weight.array.copy(), r.v_bias.array.copy(), r.h_bias.array.copy()


# ---- RBM: CD-k gradient by hand -----------------------------------------------------------------------

@pytest.mark.parametrize("visible,hidden,k,persistent", [
    ("bernoulli", "bernoulli", 1, False), ("bernoulli", "bernoulli", 3, False),
    ("gaussian", "bernoulli", 2, False), ("bernoulli", "gaussian", 1, False),
    ("bernoulli", "bernoulli", 2, True)])
def test_cd_gradient_matches_hand_formula(visible, hidden, k, persistent):
    nv, nh, B = 5, 3, 7
    r = rbm64(nv, nh, visible, hidden)
    W, b, c = params(r)
    rng = np.random.default_rng(1)
    v0 = rng.standard_normal((B, nv)) if visible == "gaussian" else (rng.random((B, nv)) < 0.5).astype(float)
    gen = dg.Generator().manual_seed(123)
    dW, db, dc = r.contrastive_divergence(dg.tensor(v0), k=k, persistent=persistent, generator=gen)

    # the same draws, in the documented order, from a twin generator
    draws = dg.Generator().manual_seed(123).np

    def h_mean(v):
        a = v @ W.T + c
        return a if hidden == "gaussian" else sig(a)

    def v_mean(h):
        a = h @ W + b
        return a if visible == "gaussian" else sig(a)

    def sample(m, units):
        if units == "gaussian":
            return m + draws.standard_normal(m.shape)
        return (draws.random(m.shape) < m).astype(float)

    h0 = h_mean(v0)
    h = sample(h0, hidden)
    for s in range(k):
        vm = v_mean(h)
        vk = sample(vm, visible) if persistent else vm
        hk = h_mean(vk)
        if s < k - 1 or persistent:
            h = sample(hk, hidden)
    # ⟨v hᵀ⟩_data - ⟨v hᵀ⟩_model, in the (n_hidden, n_visible) layout of the weight
    np.testing.assert_allclose(dW.detach().numpy(), (h0.T @ v0 - hk.T @ vk) / B, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db.detach().numpy(), (v0 - vk).mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dc.detach().numpy(), (h0 - hk).mean(0), rtol=1e-12, atol=1e-12)

    # and it is minus the gradient of mean F(v0) - mean F(vk) (the free energy's derivative)
    r.zero_grad()
    (r.free_energy(dg.tensor(v0)).mean() - r.free_energy(dg.tensor(vk)).mean()).backward()
    np.testing.assert_allclose(-r.weight.grad.detach().numpy(), dW.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(-r.v_bias.grad.detach().numpy(), db.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(-r.h_bias.grad.detach().numpy(), dc.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_step_applies_momentum_and_weight_decay():
    r = rbm64(4, 3)
    v = (np.random.default_rng(0).random((6, 4)) < 0.5).astype(float)
    vel = [np.zeros_like(p) for p in params(r)]
    for it in range(3):
        before = params(r)
        dW, db, dc = (g.detach().numpy() for g in r.contrastive_divergence(v, generator=dg.Generator().manual_seed(it)))
        r.weight.array[...], r.v_bias.array[...], r.h_bias.array[...] = before
        r.step(v, lr=0.1, momentum=0.5, weight_decay=0.01, generator=dg.Generator().manual_seed(it))
        grads = (dW - 0.01 * before[0], db, dc)
        for j in range(3):
            vel[j] = 0.5 * vel[j] + 0.1 * grads[j]
            np.testing.assert_allclose(params(r)[j], before[j] + vel[j], rtol=1e-12, atol=1e-14)


# ---- free energy --------------------------------------------------------------------------------------

def _all_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_closed_form_bernoulli_hidden(visible):
    r = rbm64(4, 3, visible=visible)
    W, b, c = params(r)
    v = np.random.default_rng(2).standard_normal((5, 4))
    if visible == "bernoulli":
        v = (v > 0).astype(float)
    H = _all_states(3)
    vis = 0.5 * ((v - b) ** 2).sum(1) if visible == "gaussian" else -(v @ b)
    # E(v, h) for every h, then F = -log Σ_h exp(-E)
    E = vis[:, None] - H @ c - (v @ W.T) @ H.T
    expected = -np.log(np.exp(-E).sum(1))
    np.testing.assert_allclose(r.free_energy(dg.tensor(v)).detach().numpy(), expected, rtol=1e-12)


def test_free_energy_closed_form_gaussian_hidden():
    r = rbm64(3, 1, hidden="gaussian")
    W, b, c = params(r)
    v = _all_states(3)
    h = np.linspace(-30, 30, 200001)
    # E = -bᵀv + ½(h - c)² - h Wv, integrated over h numerically, (2π)^(1/2) dropped
    E = -(v @ b)[:, None] + 0.5 * (h[None] - c) ** 2 - (v @ W.T) * h[None]
    Z = np.trapezoid(np.exp(-E), h, axis=1) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(r.free_energy(dg.tensor(v)).detach().numpy(), -np.log(Z), rtol=1e-8)


def test_free_energy_gradcheck():
    r = rbm64(4, 3)
    v = dg.tensor((np.random.default_rng(3).random((5, 4)) < 0.5).astype(float))
    W = dg.tensor(r.weight.detach().numpy(), requires_grad=True)
    c = dg.tensor(r.h_bias.detach().numpy(), requires_grad=True)

    def F(W, c):
        r.weight.array[...], r.h_bias.array[...] = W.array, c.array
        a = nn.functional.linear(v, W, c)
        return -(v * r.v_bias).sum(1) - nn.functional.softplus(a).sum(1)

    assert dg.autograd.gradcheck(F, (W, c))
    np.testing.assert_allclose(F(W, c).detach().numpy(), r.free_energy(v).detach().numpy(), rtol=1e-12)


# ---- exact log-likelihood ----------------------------------------------------------------------------

def test_log_partition_equals_double_enumeration():
    for visible, nv, nh in [("bernoulli", 4, 3), ("bernoulli", 3, 5)]:
        r = rbm64(nv, nh, visible)
        W, b, c = params(r)
        V, H = _all_states(nv), _all_states(nh)
        E = -(V @ b)[:, None] - (H @ c)[None] - V @ W.T @ H.T
        np.testing.assert_allclose(r.log_partition(), np.log(np.exp(-E).sum()), rtol=1e-12)


def test_exact_log_likelihood_rises_during_training():
    rng = np.random.default_rng(0)
    protos = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], float)
    data = protos[rng.integers(0, 3, 300)]
    data = np.where(rng.random(data.shape) < 0.05, 1 - data, data)
    r = RBM(4, 3, dtype="float64", generator=dg.Generator().manual_seed(0))
    lls = [r.log_likelihood(data)]
    gen = dg.Generator().manual_seed(1)
    for _ in range(6):
        r.fit(data, epochs=5, batch_size=20, lr=0.1, momentum=0.5, weight_decay=0.0, generator=gen)
        lls.append(r.log_likelihood(data))
    assert lls[-1] > lls[0] + 0.5, lls
    assert sum(b > a for a, b in zip(lls, lls[1:])) >= 4, lls
    # the pseudo-log-likelihood also improves, and its scale is that of the log-likelihood
    fresh = RBM(4, 3, dtype="float64")
    assert r.pseudo_log_likelihood(data, dg.Generator().manual_seed(2)).mean().item() > \
        fresh.pseudo_log_likelihood(data, dg.Generator().manual_seed(2)).mean().item()


def test_persistent_cd_learns_too():
    rng = np.random.default_rng(0)
    data = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], float)[rng.integers(0, 2, 200)]
    r = RBM(4, 2, dtype="float64", generator=dg.Generator().manual_seed(0))
    ll0 = r.log_likelihood(data)
    r.fit(data, epochs=20, batch_size=20, lr=0.05, persistent=True, generator=dg.Generator().manual_seed(1))
    assert r.log_likelihood(data) > ll0 + 0.5


# ---- autoencoders ------------------------------------------------------------------------------------

def test_tied_weights_share_one_parameter_and_match_torch():
    ae = AutoEncoder(sizes=(6, 4, 3), tied=True, dtype=dg.float64)
    enc = [m for m in ae.encoder if isinstance(m, nn.Linear)]
    dec = [m for m in ae.decoder if hasattr(m, "weight")]
    assert dec[0].weight is enc[1].weight and dec[1].weight is enc[0].weight
    names = [n for n, _ in ae.named_parameters()]
    assert len(names) == 6, names                    # 2 weights + 2 encoder biases + 2 decoder biases
    x = np.random.default_rng(0).random((5, 6))
    loss = ae.loss(dg.tensor(x))
    loss.backward()
    # torch twin of deck 004's r(x) = W h(Wᵀx + b) per layer
    W1, b1, W2, b2 = (torch.tensor(p.detach().numpy(), requires_grad=True) for p in
                      (enc[0].weight, enc[0].bias, enc[1].weight, enc[1].bias))
    c2, c1 = (torch.tensor(m.bias.detach().numpy(), requires_grad=True) for m in dec)
    xt = torch.tensor(x)
    h = torch.sigmoid(torch.sigmoid(xt @ W1.T + b1) @ W2.T + b2)
    r = torch.sigmoid(torch.sigmoid(h @ W2 + c2) @ W1 + c1)
    tl = (0.5 * ((r - xt) ** 2).sum(1)).mean()
    tl.backward()
    assert abs(loss.item() - tl.item()) < 1e-12
    for ours, theirs in [(enc[0].weight, W1), (enc[1].weight, W2), (enc[0].bias, b1), (dec[0].bias, c2),
                         (dec[1].bias, c1)]:
        np.testing.assert_allclose(ours.grad.detach().numpy(), theirs.grad.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_sparse_penalty_gradient_is_deck_002_delta_term():
    beta, rho = 3.0, 0.1
    ae = SparseAutoEncoder(6, 4, sparsity_target=rho, beta=beta, dtype=dg.float64)
    x = np.random.default_rng(0).random((8, 6))
    m = len(x)
    W1, b1 = ae.encoder[0].weight.detach().numpy(), ae.encoder[0].bias.detach().numpy()
    W2, b2 = ae.decoder[0].weight.detach().numpy(), ae.decoder[0].bias.detach().numpy()
    loss = ae.loss(dg.tensor(x))
    loss.backward()
    # by hand: forward, J = (1/m) Σ ½‖x - a3‖² + β Σ_j KL(ρ‖ρ̂_j)
    a2 = sig(x @ W1.T + b1)
    a3 = sig(a2 @ W2.T + b2)
    rho_hat = a2.mean(0)
    kl = (rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))).sum()
    assert abs(loss.item() - ((0.5 * ((x - a3) ** 2).sum(1)).mean() + beta * kl)) < 1e-12
    # deck 002: δ3 = -(x - a3)·g'(z3); δ2 = (W2ᵀδ3 + β(-ρ/ρ̂ + (1-ρ)/(1-ρ̂)))·g'(z2); ∇W1 = (1/m) Σ δ2 xᵀ
    d3 = -(x - a3) * a3 * (1 - a3)
    d2 = (d3 @ W2 + beta * (-rho / rho_hat + (1 - rho) / (1 - rho_hat))) * a2 * (1 - a2)
    np.testing.assert_allclose(ae.encoder[0].weight.grad.detach().numpy(), d2.T @ x / m, rtol=1e-10)
    np.testing.assert_allclose(ae.encoder[0].bias.grad.detach().numpy(), d2.mean(0), rtol=1e-10)
    np.testing.assert_allclose(ae.decoder[0].weight.grad.detach().numpy(), d3.T @ a2 / m, rtol=1e-10)


def test_sparse_autoencoder_bad_target_names_layer():
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"SparseAutoEncoder\(784, 196\).*sparsity_target.*\(0, 1\)"):
            SparseAutoEncoder(784, 196, sparsity_target=bad)


def test_denoising_masks_only_in_training():
    ae = DenoisingAutoEncoder(400, 10, corruption=0.3, generator=dg.Generator().manual_seed(0))
    x = dg.ones(50, 400)
    frac = 1 - ae.corrupt(x).detach().numpy().mean()
    assert abs(frac - 0.3) < 0.02
    ae.eval()
    assert ae.corrupt(x) is x
    assert ae.decoder[0].weight is ae.encoder[0].weight


def test_deep_autoencoder_layout():
    ae = DeepAutoEncoder()
    lin = [m for m in ae.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [
        (784, 1000), (1000, 500), (500, 250), (250, 30), (30, 250), (250, 500), (500, 1000), (1000, 784)]
    assert isinstance(ae.encoder[-1], nn.Identity)            # linear code layer
    assert isinstance(ae.decoder[-1], nn.Sigmoid)
    assert ae(dg.rand(3, 784)).shape == (3, 784)
    assert ae.encode(dg.rand(3, 784)).shape == (3, 30)


# ---- DBN ---------------------------------------------------------------------------------------------

def test_dbn_unrolls_and_initialises_classifier():
    x = (np.random.default_rng(0).random((60, 12)) < 0.3).astype(np.float32)
    dbn = DBN((12, 8, 4), top_hidden="gaussian")
    errs = dbn.fit(x, epochs=[2, 1], batch_size=20, lr=[0.1, 0.01])
    assert len(errs) == 2 and len(errs[0]) == 2 and len(errs[1]) == 1
    ae = dbn.to_autoencoder()
    enc = [m for m in ae.encoder if isinstance(m, nn.Linear)]
    dec = [m for m in ae.decoder if isinstance(m, nn.Linear)]
    for i, r in enumerate(dbn.rbms):
        np.testing.assert_array_equal(enc[i].weight.detach().numpy(), r.weight.detach().numpy())
        np.testing.assert_array_equal(enc[i].bias.detach().numpy(), r.h_bias.detach().numpy())
        np.testing.assert_array_equal(dec[-1 - i].weight.detach().numpy(), r.weight.detach().numpy().T)
        np.testing.assert_array_equal(dec[-1 - i].bias.detach().numpy(), r.v_bias.detach().numpy())
    assert isinstance(ae.encoder[-1], nn.Identity) and isinstance(ae.decoder[-1], nn.Sigmoid)
    # the unrolled encoder computes the DBN's deterministic up-pass
    np.testing.assert_allclose(ae.encode(dg.tensor(x)).detach().numpy(), dbn(dg.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    clf = dbn.to_classifier(3)
    assert clf(dg.tensor(x)).shape == (60, 3)
    np.testing.assert_array_equal(clf[0].weight.detach().numpy(), dbn.rbms[0].weight.detach().numpy())
    s = dbn.sample(5, gibbs_steps=3, generator=dg.Generator().manual_seed(0))
    assert s.shape == (5, 12) and float(s.min()) >= 0 and float(s.max()) <= 1


def test_dbn_sizes_must_chain():
    with pytest.raises(ValueError, match=r"layer 0 \(RBM\(784, 500\)\) has 500 hidden.*layer 1 \(RBM\(400, 2000\)\) "
                                         r"has 400 visible"):
        DBN(rbms=[RBM(784, 500), RBM(400, 2000)])
    with pytest.raises(ValueError, match="at least two"):
        DBN((784,))


def test_label_units_are_one_softmax_group():
    rng = np.random.default_rng(1)
    r = RBM(7, 5, n_labels=3, dtype="float64", generator=dg.Generator().manual_seed(0))
    with dg.no_grad():
        r.weight.copy_(dg.tensor(rng.standard_normal((5, 7))))
        r.v_bias.copy_(dg.tensor(rng.standard_normal(7)))
    h = (rng.random((40, 5)) < 0.5).astype(np.float64)
    m = r._v_mean(h)
    a = h @ r.weight.detach().numpy() + r.v_bias.detach().numpy()
    np.testing.assert_allclose(m[:, :4], sig(a[:, :4]), rtol=1e-12)
    e = np.exp(a[:, 4:] - a[:, 4:].max(1, keepdims=True))
    np.testing.assert_allclose(m[:, 4:], e / e.sum(1, keepdims=True), rtol=1e-12)
    # one categorical draw per row; over many rows the label frequencies follow the softmax
    big = np.repeat(m[:1], 20000, 0)
    v = r._sample_v(big.copy(), np.random.default_rng(2))
    assert set(np.unique(v[:, 4:].sum(1))) == {1.0}
    freq = v[:, 4:].mean(0)
    se = np.sqrt(m[0, 4:] * (1 - m[0, 4:]) / len(big))
    assert np.all(np.abs(freq - m[0, 4:]) < 4 * se + 1e-12)
    with pytest.raises(NotImplementedError, match="label units"):
        r.log_partition()
    with pytest.raises(ValueError, match="n_labels"):
        RBM(4, 3, visible="gaussian", n_labels=2)


def test_dbn_with_labels_classifies_by_free_energy_and_clamps_samples():
    rng = np.random.default_rng(0)
    x = (rng.random((80, 12)) < 0.3).astype(np.float32)
    y = rng.integers(0, 3, 80)
    dbn = DBN((12, 8, 6), n_labels=3, generator=dg.Generator().manual_seed(0))
    assert dbn.sizes == (12, 8, 6) and dbn.rbms[-1].n_visible == 11
    with pytest.raises(ValueError, match="needs labels"):
        dbn.fit(x, epochs=1)
    dbn.fit(x, labels=y, epochs=2, batch_size=20)
    p = dbn.classify(x[:10]).numpy()
    # oracle: the top RBM's own free energy of [features, one-hot k] for each k
    f = dbn.rbms[0].transform(x[:10]).numpy()
    F = np.stack([dbn.rbms[-1].free_energy(np.concatenate([f, np.eye(3, dtype=np.float32)[[k] * 10]], 1)).detach().numpy()
                  for k in range(3)], 1)
    q = np.exp(-(F - F.min(1, keepdims=True)))
    np.testing.assert_allclose(p, q / q.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    s = dbn.sample(6, gibbs_steps=4, generator=dg.Generator().manual_seed(1))
    assert s.shape == (6, 12)
    clf = dbn.to_classifier(3)
    np.testing.assert_array_equal(clf[2].weight.detach().numpy(), dbn.rbms[1].weight.detach().numpy()[:, :8])
    # the classifier's up-pass equals the DBN's (labels left out)
    np.testing.assert_allclose(clf[:4](dg.tensor(x)).detach().numpy(), dbn(dg.tensor(x)).detach().numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="label units"):
        dbn.to_autoencoder()
    with pytest.raises(ValueError, match=r"layer 1 \(RBM\(9, 4\)\) has 8 visible units besides its 1 label"):
        DBN(rbms=[RBM(12, 7), RBM(9, 4, n_labels=1)])


def test_gaussian_units_refuse_unstandardised_data():
    r = RBM(5, 3, visible="gaussian")
    raw = np.random.default_rng(0).random((100, 5)).astype(np.float32) * 255
    with pytest.raises(ValueError, match=r"RBM\(5, 3\).*standardised.*shape \(100, 5\)"):
        r.fit(raw, epochs=1)
    ok = (raw - raw.mean(0)) / raw.std(0)
    r.fit(ok, epochs=1, batch_size=50)
    with pytest.warns(UserWarning, match=r"RBM\(5, 3\).*standard deviation is 0\.3"):
        r.fit(raw / 255, epochs=1, batch_size=50)
    with pytest.raises(ValueError, match="unbounded"):
        RBM(3, 3, visible="gaussian", hidden="gaussian")
    with pytest.raises(ValueError, match=r"RBM\(5, 3\).*\(batch, 5\).*\(4, 6\)"):
        r.transform(np.zeros((4, 6), np.float32))


# ---- PCA ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["svd", "eigh"])
def test_pca_equals_numpy_svd_pca(method):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 12)) @ rng.standard_normal((12, 12)) + rng.standard_normal(12)
    k = 5
    Xc = X - X.mean(0)
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    var = S ** 2 / (len(X) - 1)
    p = PCA(k, method=method).fit(dg.tensor(X))
    comps = p.components_.detach().numpy()
    signs = np.sign((comps * Vt[:k]).sum(1))
    np.testing.assert_allclose(comps, Vt[:k] * signs[:, None], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(p.explained_variance_.detach().numpy(), var[:k], rtol=1e-9)
    np.testing.assert_allclose(p.explained_variance_ratio_.detach().numpy(), var[:k] / var.sum(), rtol=1e-9)
    Z = p.transform(dg.tensor(X)).detach().numpy()
    np.testing.assert_allclose(np.abs(Z), np.abs(Xc @ Vt[:k].T), rtol=1e-7, atol=1e-9)
    R = (Xc @ Vt[:k].T) @ Vt[:k] + X.mean(0)
    np.testing.assert_allclose(p.inverse_transform(p.transform(dg.tensor(X))).detach().numpy(), R, rtol=1e-7, atol=1e-9)
    assert abs(p.reconstruction_error(X) - ((X - R) ** 2).sum(1).mean()) < 1e-8
    # the discarded variance is the reconstruction error (times (n-1)/n)
    assert abs(p.reconstruction_error(X) - var[k:].sum() * (len(X) - 1) / len(X)) < 1e-8


def test_pca_bad_input():
    with pytest.raises(ValueError, match="n_components=20 exceeds"):
        PCA(20).fit(np.zeros((10, 5)))
    with pytest.raises(RuntimeError, match="fit"):
        PCA(2).transform(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="2-d"):
        PCA(2).fit(np.zeros(5))


def test_linalg_svd_gradcheck():
    A = dg.tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True)
    assert dg.autograd.gradcheck(lambda a: dg.linalg.svd(a, full_matrices=False)[1], (A,))


# ---- greedy pre-training + fine-tuning on a user model --------------------------------------------------

class UserNet(nn.Module):
    """Layers registered in an order different from the order forward calls them."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 2)
        self.second = nn.Linear(12, 8)
        self.first = nn.Linear(16, 12)

    def forward(self, x):
        return self.head(self.second(self.first(x.flatten(1)).sigmoid()).sigmoid())


def _toy(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    protos = rng.random((2, 16)) < 0.5
    x = np.where(rng.random((n, 16)) < 0.1, ~protos[y], protos[y]).astype(np.float32)
    return x.reshape(n, 4, 4), y


@pytest.mark.parametrize("method", ["autoencoder", "sparse", "denoising", "rbm"])
def test_pretrain_then_fine_tune_user_model(method):
    dg.manual_seed(0)
    x, y = _toy()
    model = UserNet()
    assert linear_layers(model, x[:2]) == [model.first, model.second, model.head]
    head_before = model.head.weight.detach().numpy().copy()
    blocks = pretrain(model, x, method=method, epochs=3, batch_size=30,
                      lr=0.05 if method == "rbm" else 1e-2, generator=dg.Generator().manual_seed(0))
    assert len(blocks) == 2
    for b in blocks:                                   # each block's objective went down
        assert b.history[-1] < b.history[0], (method, b.history)
    enc0 = blocks[0].weight if method == "rbm" else blocks[0].encoder[0].weight
    np.testing.assert_array_equal(model.first.weight.detach().numpy(), enc0.detach().numpy())
    np.testing.assert_array_equal(model.head.weight.detach().numpy(), head_before)     # output layer untouched
    # block 1 was trained on what the (pre-trained) first layer feeds the second
    assert blocks[1].encoder_layers[0].in_features == 12 if method != "rbm" else blocks[1].n_visible == 12
    from deepgrad.data import DataLoader, TensorDataset
    loader = DataLoader(TensorDataset(x, y), batch_size=30, shuffle=True)
    hist = fine_tune(model, loader, lr=3e-2, epochs=8)
    assert hist.rows()[-1]["accuracy"] > 0.9


def test_pretrain_bad_layers():
    model = nn.Sequential(nn.Linear(10, 6), nn.Sigmoid(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"do not chain: layer 0 .*6 outputs.*layer 1 .*5 inputs"):
        pretrain(model, np.zeros((4, 10), np.float32), layers=[model[0], model[2]])
    with pytest.raises(ValueError, match="method must be"):
        pretrain(model, np.zeros((4, 10), np.float32), method="pca")
    with pytest.raises(ValueError, match="fewer than two Linear"):
        pretrain(nn.Sequential(nn.Linear(10, 2)), np.zeros((4, 10), np.float32))


def test_ais_estimate_matches_exact_log_partition():
    r = rbm64(10, 6, scale=1.0)
    exact = r.log_partition()
    est, std = r.ais_log_partition(n_chains=200, betas=600, generator=dg.Generator().manual_seed(0))
    assert abs(est - exact) < 0.1 and 0 < std < 0.1, (est, exact, std)
    data = (np.random.default_rng(0).random((50, 10)) < 0.3).astype(float)
    est2, _ = r.ais_log_partition(n_chains=200, betas=np.linspace(0, 1, 400), base_data=data,
                                  generator=dg.Generator().manual_seed(1))
    assert abs(est2 - exact) < 0.15
    with pytest.raises(ValueError, match="increase from 0 to 1"):
        r.ais_log_partition(betas=[0.0, 0.5, 0.4, 1.0])
    with pytest.raises(NotImplementedError, match="Bernoulli-Bernoulli"):
        RBM(3, 2, visible="gaussian").ais_log_partition()


def test_stacked_autoencoder_sizes_must_chain():
    enc = nn.Sequential(nn.Linear(784, 500), nn.Sigmoid(), nn.Linear(500, 250), nn.Sigmoid())
    dec = nn.Sequential(nn.Linear(200, 500), nn.Sigmoid(), nn.Linear(500, 784))
    with pytest.raises(ValueError, match=r"encoder\[2\] .*250 features but decoder\[0\] .*takes 200"):
        AutoEncoder(enc, dec)
    ok = nn.Sequential(nn.Linear(250, 500), nn.Sigmoid(), nn.Linear(500, 784))
    assert AutoEncoder(enc, ok)(dg.rand(2, 784)).shape == (2, 784)


@pytest.mark.parametrize("visible,hidden", [("bernoulli", "bernoulli"), ("gaussian", "bernoulli"),
                                            ("bernoulli", "gaussian")])
def test_free_energy_and_gradients_match_torch(visible, hidden):
    r = rbm64(5, 4, visible, hidden)
    v = np.random.default_rng(4).standard_normal((6, 5))
    if visible == "bernoulli":
        v = (v > 0).astype(float)
    F = r.free_energy(dg.tensor(v))
    F.sum().backward()
    W, b, c = (torch.tensor(p.detach().numpy(), requires_grad=True) for p in (r.weight, r.v_bias, r.h_bias))
    vt = torch.tensor(v)
    a = vt @ W.T + c
    vis = 0.5 * ((vt - b) ** 2).sum(1) if visible == "gaussian" else -(vt @ b)
    Ft = vis - (0.5 * (a * a).sum(1) - 0.5 * (c * c).sum() if hidden == "gaussian"
                else torch.nn.functional.softplus(a).sum(1))
    Ft.sum().backward()
    np.testing.assert_allclose(F.detach().numpy(), Ft.detach().numpy(), rtol=1e-12)
    for ours, theirs in [(r.weight, W), (r.v_bias, b), (r.h_bias, c)]:
        np.testing.assert_allclose(ours.grad.detach().numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    # the conditionals match torch's too
    h_mean, _ = r.sample_h(v, generator=dg.Generator().manual_seed(0))
    ref = a if hidden == "gaussian" else torch.sigmoid(a)
    np.testing.assert_allclose(h_mean.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(r(dg.tensor(v)).detach().numpy(), ref.detach().numpy(), rtol=1e-12)
