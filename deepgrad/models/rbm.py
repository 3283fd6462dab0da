"""Restricted Boltzmann machines and deep belief nets (lecture decks 001 and 004; Hinton,
Osindero & Teh 2006; Hinton & Salakhutdinov 2006; Hinton's "A practical guide to training
RBMs", 2010).

An RBM has visible units ``v`` (n_visible), hidden units ``h`` (n_hidden), a weight matrix ``W``
stored as ``weight`` of shape (n_hidden, n_visible) -- the layout of ``nn.Linear(n_visible,
n_hidden).weight``, so an RBM's weights drop into an MLP or an encoder unchanged and ``Wᵀ`` into the
decoder -- a visible bias ``b`` (``v_bias``) and a hidden bias ``c`` (``h_bias``). With unit-variance
Gaussian units where asked (the data must then be standardised), the energy is::

    Bernoulli v, Bernoulli h:   E(v, h) = -bᵀv - cᵀh - hᵀWv
    Gaussian  v, Bernoulli h:   E(v, h) = ½‖v - b‖² - cᵀh - hᵀWv
    Bernoulli v, Gaussian  h:   E(v, h) = -bᵀv + ½‖h - c‖² - hᵀWv

and the free energy ``F(v) = -log Σ_h exp(-E(v, h))`` has the closed forms of :meth:`RBM.free_energy`.
The conditionals factorise: ``p(h_j = 1 | v) = σ(c_j + W_j v)`` (Gaussian hidden: mean
``c + Wv``, variance 1), ``p(v_i = 1 | h) = σ(b_i + W_iᵀ h)`` (Gaussian visible: mean ``b + Wᵀh``).

Contrastive divergence CD-k approximates the log-likelihood gradient
``∂ log p(v) / ∂W = ⟨h vᵀ⟩_data - ⟨h vᵀ⟩_model`` by running k steps of Gibbs sampling from the
data; persistent CD (Tieleman 2008) keeps the negative chain between updates. The positive
statistics use hidden probabilities, the chain drives with sampled hidden states and (CD) visible
probabilities, as the practical guide recommends. Updates: ``Δθ ← momentum·Δθ + lr·(gradient -
weight_decay·W)`` (weight decay on the weights only), momentum 0.5 for the first epochs then 0.9.

Training works on raw arrays in batches (a few GEMMs per update, no per-sample loop); the free
energy is written in deepgrad ops, so ``free_energy(v).mean()`` can also be differentiated.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend, nn
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .. import random as _random

__all__ = ["RBM", "DBN", "check_standardised"]

_UNITS = ("bernoulli", "gaussian")


def _arr(x, dtype=None):
    """The raw array of a Tensor / array-like, as a 2-d floating array."""
    a = x.array if isinstance(x, Tensor) else np.asarray(x)
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    return a


def _sigmoid(xp, a, out=None):
    # σ(a) = ½(1 + tanh(a/2)): one transcendental per element and no overflow for large |a|
    out = xp.multiply(a, 0.5, out=out)
    xp.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def _softplus(xp, a):
    return xp.logaddexp(0, a)


def check_standardised(data, who, tol_mean=3.0, tol_std=3.0, low_std=0.5):
    """Check that ``data`` (N, D) suit unit-variance Gaussian units: a ValueError when some feature's
    mean is off zero by more than ``tol_mean`` or its standard deviation exceeds ``tol_std`` (raw
    0-255 pixels, say: CD updates then diverge), a warning when every feature's standard deviation
    is below ``low_std`` (e.g. [0, 1] pixels: the unit-variance noise drowns the signal). ``who``
    names the layer."""
    a = _arr(data)
    if a.ndim != 2 or a.shape[0] < 2:
        return
    xp = backend.array_module(a)
    mean = xp.abs(a.mean(0, dtype=np.float64))
    std = a.std(0, dtype=np.float64)
    worst_m, worst_s = float(mean.max()), float(std.max())
    advice = "subtract each feature's mean and divide by its standard deviation first"
    if worst_m > tol_mean or worst_s > tol_std:
        raise ValueError(f"{who}: Gaussian visible units have unit variance, so the data must be standardised "
                         f"(each feature mean 0, standard deviation 1), but a feature has |mean| {worst_m:.3g} "
                         f"and the largest standard deviation is {worst_s:.3g} (shape {tuple(a.shape)}); {advice}")
    if worst_s < low_std:
        warnings.warn(f"{who}: Gaussian visible units have unit variance but the data's largest feature standard "
                      f"deviation is {worst_s:.3g} (shape {tuple(a.shape)}): the units' noise will swamp the "
                      f"signal; {advice}", stacklevel=3)


class RBM(nn.Module):
    """A restricted Boltzmann machine with ``visible`` and ``hidden`` units each ``"bernoulli"``
    or ``"gaussian"`` (unit variance; not both Gaussian: that energy is unbounded below).

    ``forward(v)`` returns ``E[h | v]`` (the hidden probabilities, or means for Gaussian hidden
    units), so a trained RBM is a feature extractor. Train with :meth:`fit` (mini-batch CD-k or
    PCD with momentum and weight decay) or one :meth:`step` at a time.

    ``n_labels=K`` makes the last K visible units one softmax group (a one-hot label, as in the
    top RBM of Hinton, Osindero & Teh 2006): ``p(label = k | h) ∝ exp(b_k + W_kᵀh)``, sampled as
    one categorical draw. The energy keeps its form, so :meth:`free_energy` is unchanged.

    >>> rbm = RBM(6, 3)                                            # doctest: +SKIP
    >>> rbm.fit(data, epochs=5, batch_size=10, lr=0.1)              # doctest: +SKIP
    """

    def __init__(self, n_visible, n_hidden, visible="bernoulli", hidden="bernoulli", dtype=None, device=None,
                 init_std=0.01, generator=None, n_labels=0):
        super().__init__()
        if visible not in _UNITS or hidden not in _UNITS:
            raise ValueError(f"RBM: visible and hidden must be one of {_UNITS}, got {visible!r}, {hidden!r}")
        if visible == "gaussian" and hidden == "gaussian":
            raise ValueError("RBM: Gaussian visible and Gaussian hidden units together have an energy unbounded "
                             "below (no probability distribution); make one side 'bernoulli'")
        if int(n_visible) < 1 or int(n_hidden) < 1:
            raise ValueError(f"RBM: n_visible and n_hidden must be positive, got {n_visible}, {n_hidden}")
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.visible, self.hidden = visible, hidden
        self.n_labels = int(n_labels)
        if not 0 <= self.n_labels < self.n_visible or (self.n_labels and visible != "bernoulli"):
            raise ValueError(f"RBM({n_visible}, {n_hidden}): n_labels ({n_labels}) must be at least 0 and fewer than "
                             f"the visible units, and label units need visible='bernoulli' (got {visible!r})")
        dt = backend.as_dtype(dtype) if dtype is not None else backend.get_default_dtype()
        dt = np.dtype(dt)
        rng = _random.rng(generator)
        # small random weights, zero biases (practical guide, section 8)
        w = (rng.standard_normal((self.n_hidden, self.n_visible)) * init_std).astype(dt)
        self.weight = nn.Parameter(Tensor._make(w))
        self.v_bias = nn.Parameter(Tensor._make(np.zeros(self.n_visible, dt)))
        self.h_bias = nn.Parameter(Tensor._make(np.zeros(self.n_hidden, dt)))
        device = device if device is not None else backend._DEFAULT_DEVICE[0]
        if device is not None:
            self.to(device)
        self._velocity = None
        self._chain = None          # persistent CD: the chain's hidden states
        self._last_reconstruction = None

    def extra_repr(self):
        labels = f", n_labels={self.n_labels}" if self.n_labels else ""
        return (f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, visible={self.visible!r}, "
                f"hidden={self.hidden!r}{labels}")

    def _name(self):
        return f"RBM({self.n_visible}, {self.n_hidden})"

    # ---- conditionals (raw arrays) ----------------------------------------------------------------
    def _check(self, v, what="v"):
        a = _arr(v)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or a.shape[1] != self.n_visible:
            raise ValueError(f"{self._name()}: expected {what} of shape (batch, {self.n_visible}), got "
                             f"{tuple(a.shape)}")
        dt = self.weight.array.dtype
        return a if a.dtype == dt else a.astype(dt)

    def _h_mean(self, v):
        xp = backend.array_module(v)
        a = v @ self.weight.array.T
        a += self.h_bias.array
        return a if self.hidden == "gaussian" else _sigmoid(xp, a, out=a)

    def _v_mean(self, h):
        xp = backend.array_module(h)
        a = h @ self.weight.array
        a += self.v_bias.array
        if self.visible == "gaussian":
            return a
        L = self.n_labels
        if L:       # the label units: one softmax group, p(label = k | h) ∝ exp(b_k + W_kᵀh)
            lab = a[:, -L:]
            lab -= lab.max(1, keepdims=True)
            xp.exp(lab, out=lab)
            lab /= lab.sum(1, keepdims=True)
            _sigmoid(xp, a[:, :-L], out=a[:, :-L])
            return a
        return _sigmoid(xp, a, out=a)

    def _sample_v(self, mean, rng):
        """Visible states drawn from their means; the label units (if any) as one one-hot draw."""
        v = self._sample(mean, self.visible, rng)
        L = self.n_labels
        if L:
            xp = backend.array_module(mean)
            u = xp.asarray(rng.random((mean.shape[0], 1), dtype=mean.dtype))
            k = xp.minimum((xp.cumsum(mean[:, -L:], 1) < u).sum(1), L - 1)
            v[:, -L:] = 0
            v[xp.arange(mean.shape[0]), mean.shape[1] - L + k] = 1
        return v

    def _no_labels(self, what):
        if self.n_labels:
            raise NotImplementedError(f"{self._name()}.{what}: not defined for an RBM with softmax label units "
                                      f"(n_labels={self.n_labels})")

    def _sample(self, mean, units, rng):
        xp = backend.array_module(mean)
        if units == "gaussian":
            return mean + xp.asarray(rng.standard_normal(mean.shape, dtype=mean.dtype))
        return (xp.asarray(rng.random(mean.shape, dtype=mean.dtype)) < mean).astype(mean.dtype)

    # ---- public conditionals (Tensors) ------------------------------------------------------------
    def forward(self, v):
        """``E[h | v]``: hidden probabilities (Bernoulli) or means (Gaussian), differentiable."""
        from ..nn import functional as F
        a = F.linear(v, self.weight, self.h_bias)
        return a if self.hidden == "gaussian" else a.sigmoid()

    def transform(self, v):
        """``E[h | v]`` as a Tensor without a graph (the features a DBN passes up)."""
        return Tensor._make(self._h_mean(self._check(v)))

    def sample_h(self, v, generator=None):
        """``(E[h|v], h ~ p(h|v))`` as Tensors."""
        m = self._h_mean(self._check(v))
        return Tensor._make(m), Tensor._make(self._sample(m, self.hidden, _random.rng(generator)))

    def sample_v(self, h, generator=None):
        """``(E[v|h], v ~ p(v|h))`` as Tensors."""
        h = _arr(h, self.weight.array.dtype)
        if h.ndim == 1:
            h = h[None]
        if h.ndim != 2 or h.shape[1] != self.n_hidden:
            raise ValueError(f"{self._name()}: expected h of shape (batch, {self.n_hidden}), got {tuple(h.shape)}")
        m = self._v_mean(h)
        return Tensor._make(m), Tensor._make(self._sample_v(m, _random.rng(generator)))

    def gibbs(self, v, steps=1, generator=None, return_mean=True):
        """Run ``steps`` full Gibbs steps v -> h -> v from ``v``; returns the last ``E[v|h]`` (or the
        sampled ``v`` with ``return_mean=False``)."""
        rng = _random.rng(generator)
        v = self._check(v)
        m = v
        for _ in range(int(steps)):
            h = self._sample(self._h_mean(v), self.hidden, rng)
            m = self._v_mean(h)
            v = self._sample_v(m, rng)
        return Tensor._make(m if return_mean else v)

    # ---- energies and monitoring ------------------------------------------------------------------
    def free_energy(self, v):
        """``F(v)`` per row of ``v`` (differentiable, deepgrad ops):

        * Bernoulli v, Bernoulli h: ``-bᵀv - Σ_j softplus(c_j + W_j v)``
        * Gaussian v, Bernoulli h:  ``½‖v - b‖² - Σ_j softplus(c_j + W_j v)``
        * Bernoulli v, Gaussian h:  ``-bᵀv - ½‖c + Wv‖² + ½‖c‖²`` (dropping ``(n_hidden/2)·log 2π``)
        """
        from ..nn import functional as F
        if not isinstance(v, Tensor):
            v = Tensor._make(self._check(v))
        if v.dim() != 2 or v.shape[1] != self.n_visible:
            raise ValueError(f"{self._name()}.free_energy: expected v of shape (batch, {self.n_visible}), got "
                             f"{tuple(v.shape)}")
        a = F.linear(v, self.weight, self.h_bias)
        if self.visible == "gaussian":
            vis = 0.5 * ((v - self.v_bias) ** 2).sum(1)
        else:
            vis = -(v * self.v_bias).sum(1)
        if self.hidden == "gaussian":
            return vis - 0.5 * (a * a).sum(1) + 0.5 * (self.h_bias * self.h_bias).sum()
        return vis - F.softplus(a).sum(1)

    def reconstruction_error(self, v):
        """Mean over the batch of ``‖v - E[v | E[h|v]]‖²`` (deterministic mean-field
        reconstruction; the practical guide's rough monitor)."""
        v = self._check(v)
        r = self._v_mean(self._h_mean(v))
        return float(((v - r) ** 2).sum(1).mean())

    def pseudo_log_likelihood(self, v, generator=None):
        """Stochastic pseudo-log-likelihood per row (Bernoulli visible units): for one visible unit
        i drawn at random per row, ``n_visible · log σ(F(ṽ) - F(v))`` with ``ṽ`` = v with bit i
        flipped. Its mean over a data set tracks the log-likelihood without the partition
        function."""
        self._no_labels("pseudo_log_likelihood")
        if self.visible != "bernoulli":
            raise NotImplementedError(f"{self._name()}.pseudo_log_likelihood: defined for Bernoulli visible "
                                      "units; use reconstruction_error for Gaussian visible units")
        v = self._check(v)
        xp = backend.array_module(v)
        rng = _random.rng(generator)
        vb = (v > 0.5).astype(v.dtype)
        idx = xp.asarray(rng.integers(0, self.n_visible, len(vb)))
        flipped = vb.copy()
        rows = xp.arange(len(vb))
        flipped[rows, idx] = 1 - flipped[rows, idx]
        with no_grad():
            f = self.free_energy(Tensor._make(vb)).array
            ff = self.free_energy(Tensor._make(flipped)).array
        return Tensor._make(self.n_visible * -_softplus(xp, f - ff))

    def log_partition(self):
        """``log Z`` by enumerating every state of the Bernoulli side (the smaller one when both
        are Bernoulli); for tiny models only (at most 20 units enumerated). Gaussian hidden units
        are integrated out with their ``(2π)^(n/2)`` factor dropped, as in :meth:`free_energy`."""
        self._no_labels("log_partition")
        W, b, c = (p.array.astype(np.float64) for p in (self.weight, self.v_bias, self.h_bias))
        W, b, c = (backend.to_numpy(a) for a in (W, b, c))
        if self.hidden == "bernoulli" and (self.visible == "gaussian" or self.n_hidden < self.n_visible):
            n = self.n_hidden
            if n > 20:
                raise ValueError(f"{self._name()}.log_partition: enumerating 2^{n} hidden states is too many")
            H = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
            # -F(h) summing out v: Bernoulli v: cᵀh + Σ_i softplus(b_i + W_iᵀh); Gaussian v: the
            # Gaussian integral gives cᵀh + ½‖b + Wᵀh‖² - ½‖b‖² + (n_v/2) log 2π
            a = H @ W + b
            if self.visible == "bernoulli":
                neg = H @ c + np.logaddexp(0, a).sum(1)
            else:
                neg = H @ c + 0.5 * (a * a).sum(1) - 0.5 * (b * b).sum() + 0.5 * self.n_visible * math.log(2 * math.pi)
            m = neg.max()
            return float(m + np.log(np.exp(neg - m).sum()))
        n = self.n_visible
        if n > 20:
            raise ValueError(f"{self._name()}.log_partition: enumerating 2^{n} visible states is too many")
        V = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
        with no_grad():
            f = RBM._free_energy_np(self, V)
        m = (-f).max()
        return float(m + np.log(np.exp(-f - m).sum()))

    def _free_energy_np(self, V):
        W, b, c = (backend.to_numpy(p.array).astype(np.float64) for p in (self.weight, self.v_bias, self.h_bias))
        a = V @ W.T + c
        vis = 0.5 * ((V - b) ** 2).sum(1) if self.visible == "gaussian" else -(V @ b)
        if self.hidden == "gaussian":
            return vis - 0.5 * (a * a).sum(1) + 0.5 * (c * c).sum()
        return vis - np.logaddexp(0, a).sum(1)

    def ais_log_partition(self, n_chains=100, betas=14500, base_data=None, generator=None):
        """An annealed-importance-sampling estimate of ``log Z`` (Bernoulli units; Salakhutdinov &
        Murray 2008). Returns ``(log_Z, log_Z_std)``: the estimate and the standard deviation of
        the log of the mean importance weight (delta method).

        The base model has the visible biases ``b_A`` of ``base_data``'s mean pixels (or zeros) and
        no weights, ``log Z_A = Σ_i softplus(b_A,i) + n_hidden·log 2``. The intermediate models are
        ``log p*_β(v) = (1-β) b_Aᵀv + β bᵀv + Σ_j softplus(β (c_j + W_j v))``, each visited with one
        Gibbs step ``h ~ σ(β(c + Wv))``, ``v ~ σ((1-β) b_A + β (b + Wᵀh))``. ``betas``: an int (the
        paper's schedule -- 0 to 0.5 in steps of 1e-3, to 0.9 in 1e-4, to 1 in 1e-4 -- stretched to
        that many steps) or an increasing array from 0 to 1."""
        self._no_labels("ais_log_partition")
        if self.visible != "bernoulli" or self.hidden != "bernoulli":
            raise NotImplementedError(f"{self._name()}.ais_log_partition: for Bernoulli-Bernoulli RBMs only")
        W, b, c = (backend.to_numpy(p.array).astype(np.float64) for p in (self.weight, self.v_bias, self.h_bias))
        if np.ndim(betas) == 0:
            K = int(betas)
            if K < 2:
                raise ValueError(f"{self._name()}.ais_log_partition: needs at least 2 betas, got {betas}")
            # Salakhutdinov & Murray's 500 + 4000 + 10000 steps, in the same proportions
            n1, n2 = max(1, round(K * 500 / 14500)), max(1, round(K * 4000 / 14500))
            n3 = max(1, K - n1 - n2)
            betas = np.concatenate([np.linspace(0, 0.5, n1, endpoint=False), np.linspace(0.5, 0.9, n2, endpoint=False),
                                    np.linspace(0.9, 1.0, n3 + 1)])
        betas = np.asarray(betas, dtype=np.float64)
        if betas[0] != 0 or betas[-1] != 1 or np.any(np.diff(betas) <= 0):
            raise ValueError(f"{self._name()}.ais_log_partition: betas must increase from 0 to 1")
        if base_data is not None:
            p = np.clip(backend.to_numpy(_arr(base_data)).astype(np.float64).mean(0), 0.01, 0.99)
            bA = np.log(p) - np.log1p(-p)
        else:
            bA = np.zeros(self.n_visible)
        rng = _random.rng(generator)
        dt = np.float32 if self.weight.array.dtype == np.float32 else np.float64
        Wd, bd, cd, bAd = W.astype(dt), b.astype(dt), c.astype(dt), bA.astype(dt)
        v = (rng.random((int(n_chains), self.n_visible)) < 1 / (1 + np.exp(-bA))).astype(dt)
        logw = np.zeros(len(v))
        a = v @ Wd.T + cd                    # the hidden inputs, shared by the weight and the step
        for k in range(1, len(betas)):
            beta, prev = betas[k], betas[k - 1]
            # log p*_β(v) - log p*_β'(v) for the current states
            logw += (beta - prev) * (v @ (bd - bAd)) + (np.logaddexp(0, beta * a).sum(1, dtype=np.float64)
                                                      - np.logaddexp(0, prev * a).sum(1, dtype=np.float64))
            h = (rng.random(a.shape, dtype=dt) < _sigmoid(np, (beta * a).astype(dt))).astype(dt)
            x = h @ Wd
            x += bd
            x *= beta
            x += (1 - beta) * bAd
            v = (rng.random(v.shape, dtype=dt) < _sigmoid(np, x, out=x)).astype(dt)
            a = v @ Wd.T + cd
        log_za = float(np.logaddexp(0, bA).sum() + self.n_hidden * math.log(2))
        m = logw.max()
        w = np.exp(logw - m)
        log_mean = float(m + math.log(w.mean()))
        std = float(w.std() / (w.mean() * math.sqrt(len(w)))) if len(w) > 1 else float("nan")
        return log_za + log_mean, std

    def log_likelihood(self, v):
        """Exact mean ``log p(v)`` over the rows of binary ``v`` (Bernoulli visible units; tiny
        models: the partition function is enumerated, see :meth:`log_partition`)."""
        if self.visible != "bernoulli":
            raise NotImplementedError(f"{self._name()}.log_likelihood: exact only for Bernoulli visible units")
        V = backend.to_numpy(self._check(v)).astype(np.float64)
        return float(-self._free_energy_np(V).mean() - self.log_partition())

    # ---- learning -------------------------------------------------------------------------------
    def contrastive_divergence(self, v, k=1, persistent=False, generator=None):
        """The CD-k (or PCD-k) estimate of the log-likelihood gradient for the batch ``v``,
        averaged over its rows: ``(dW, dv_bias, dh_bias)`` as Tensors, the ascent direction
        ``⟨h vᵀ⟩_data - ⟨h vᵀ⟩_model``.

        Draws, in this order, from ``generator``: the hidden states of the data (``random`` or
        ``standard_normal`` of shape (batch, n_hidden)), then per Gibbs step the visible states
        (PCD only: CD uses the means ``E[v|h]`` and draws nothing there) and, except after the
        last CD step, the hidden states."""
        v0 = self._check(v)
        xp = backend.array_module(v0)
        rng = _random.rng(generator)
        k = int(k)
        if k < 1:
            raise ValueError(f"{self._name()}: k must be at least 1, got {k}")
        h0 = self._h_mean(v0)
        if persistent:
            if self._chain is None or self._chain.shape[0] != v0.shape[0]:
                self._chain = self._sample(h0, self.hidden, rng)
            h = self._chain
        else:
            h = self._sample(h0, self.hidden, rng)
        first = None
        for step in range(k):
            vm = self._v_mean(h)
            if first is None:
                first = vm
            vk = self._sample_v(vm, rng) if persistent else vm
            hk = self._h_mean(vk)
            if step < k - 1 or persistent:
                h = self._sample(hk, self.hidden, rng)
        if persistent:
            self._chain = h
        n = v0.shape[0]
        # both outer products in one GEMM: [h0; -hk]ᵀ [v0; vk]
        dW = xp.concatenate([h0, -hk]).T @ xp.concatenate([v0, vk])
        dW /= n
        dv = (v0.sum(0) - vk.sum(0)) / n
        dh = (h0.sum(0) - hk.sum(0)) / n
        self._last_reconstruction = None if persistent else first
        return Tensor._make(dW), Tensor._make(dv), Tensor._make(dh)

    def reset_chain(self):
        """Forget the persistent chain and the momentum (a fresh start for :meth:`step`)."""
        self._chain = None
        self._velocity = None

    def step(self, v, lr=0.1, k=1, persistent=False, momentum=0.0, weight_decay=0.0, generator=None):
        """One update from the batch ``v``: ``Δ ← momentum·Δ + lr·(CD gradient - weight_decay·W)``,
        ``θ += Δ`` (weight decay on ``W`` only). Returns the batch's reconstruction error
        ``mean ‖v - E[v|h]‖²`` with ``h`` the sampled hidden states of CD's first Gibbs step (free:
        it is computed anyway; PCD, whose chain does not start at the data, computes the
        mean-field :meth:`reconstruction_error` instead)."""
        v0 = self._check(v)
        dW, dv, dh = (g.array for g in self.contrastive_divergence(v0, k, persistent, generator))
        W = self.weight.array
        if weight_decay:
            dW -= weight_decay * W
        if self._velocity is None:
            xp = backend.array_module(W)
            self._velocity = [xp.zeros_like(W), xp.zeros_like(self.v_bias.array), xp.zeros_like(self.h_bias.array)]
        for vel, g, p in zip(self._velocity, (dW, dv, dh), (self.weight, self.v_bias, self.h_bias)):
            vel *= momentum
            vel += lr * g
            p.array += vel
            p._version[0] += 1
        r = self._last_reconstruction
        if r is None:
            return self.reconstruction_error(v0)
        r -= v0
        r *= r
        return float(r.sum(1).mean())

    def fit(self, data, epochs=10, batch_size=100, lr=0.1, k=1, persistent=False, momentum=(0.5, 0.9),
            momentum_switch=5, weight_decay=2e-4, generator=None, verbose=False, callback=None):
        """Train on ``data`` (N, n_visible) for ``epochs`` passes of shuffled mini-batches.
        ``momentum``: a number, or ``(initial, final)`` switched after ``momentum_switch`` epochs
        (the practical guide's 0.5 then 0.9). Gaussian visible units check that the data are
        standardised (ValueError otherwise). ``callback(rbm, epoch, error)`` runs after each epoch.
        Returns the list of the epochs' mean reconstruction errors."""
        X = self._check(data, "data")
        if self.visible == "gaussian":
            check_standardised(X, f"{self._name()} (Gaussian visible units)")
        xp = backend.array_module(X)
        rng = _random.rng(generator)
        m0, m1 = (momentum, momentum) if isinstance(momentum, (int, float)) else momentum
        n = X.shape[0]
        bs = max(1, min(int(batch_size), n))
        errors = []
        for epoch in range(int(epochs)):
            mom = m0 if epoch < momentum_switch else m1
            order = xp.asarray(rng.permutation(n))
            total = 0.0
            for s in range(0, n, bs):
                batch = X[order[s:s + bs]]
                total += self.step(batch, lr=lr, k=k, persistent=persistent, momentum=mom,
                                   weight_decay=weight_decay, generator=generator) * len(batch)
            errors.append(total / n)
            if verbose:
                print(f"{self._name()} epoch {epoch + 1}/{epochs}: reconstruction error {errors[-1]:.4f}")
            if callback is not None:
                callback(self, epoch, errors[-1])
        return errors

    # ---- conversion ---------------------------------------------------------------------------
    def to_linear(self):
        """``nn.Linear(n_visible, n_hidden)`` holding a copy of ``W`` and ``c`` (the encoder)."""
        lin = nn.Linear(self.n_visible, self.n_hidden, dtype=self.weight.dtype)
        with no_grad():
            lin.weight.array[...] = self.weight.array
            lin.bias.array[...] = self.h_bias.array
        return lin

    def to_linear_transposed(self):
        """``nn.Linear(n_hidden, n_visible)`` holding a copy of ``Wᵀ`` and ``b`` (the decoder)."""
        lin = nn.Linear(self.n_hidden, self.n_visible, dtype=self.weight.dtype)
        with no_grad():
            lin.weight.array[...] = self.weight.array.T
            lin.bias.array[...] = self.v_bias.array
        return lin


def _activation(units):
    return nn.Identity() if units == "gaussian" else nn.Sigmoid()


class DBN(nn.Module):
    """A deep belief net: a stack of RBMs trained greedily, each on the hidden means of the one
    below (Hinton, Osindero & Teh 2006).

    ``DBN((784, 500, 500, 2000))`` builds Bernoulli RBMs 784-500, 500-500, 500-2000;
    ``visible="gaussian"`` makes the bottom RBM's visible units Gaussian (standardised data) and
    ``top_hidden="gaussian"`` the top RBM's hidden units linear-Gaussian (the code layer of Hinton
    & Salakhutdinov 2006). ``DBN(rbms=[...])`` stacks RBMs you built; their sizes must chain.

    ``n_labels=10`` adds the paper's softmax label units to the top RBM's visible layer (500 + 10
    units below the 2000 in Hinton, Osindero & Teh's Fig. 1): :meth:`fit` then needs the labels,
    :meth:`sample` generates digits of a chosen class by clamping them, and :meth:`classify`
    picks the label of lowest free energy (the generative classifier, before any fine-tuning).
    """

    def __init__(self, sizes=None, visible="bernoulli", top_hidden="bernoulli", rbms=None, dtype=None,
                 generator=None, n_labels=0):
        super().__init__()
        if rbms is None:
            if sizes is None or len(sizes) < 2:
                raise ValueError(f"DBN: sizes must list at least two layer sizes, got {sizes!r}")
            sizes = [int(s) for s in sizes]
            top = len(sizes) - 2
            rbms = [RBM(sizes[i] + (int(n_labels) if i == top else 0), sizes[i + 1],
                        visible=visible if i == 0 else "bernoulli",
                        hidden=top_hidden if i == top else "bernoulli", dtype=dtype, generator=generator,
                        n_labels=int(n_labels) if i == top else 0)
                    for i in range(len(sizes) - 1)]
        rbms = list(rbms)
        if not rbms:
            raise ValueError("DBN: needs at least one RBM")
        for i, r in enumerate(rbms):
            if not isinstance(r, RBM):
                raise TypeError(f"DBN: layer {i} is a {type(r).__name__}, not an RBM")
        for i in range(len(rbms) - 1):
            a, b = rbms[i], rbms[i + 1]
            if a.n_labels:
                raise ValueError(f"DBN: layer {i} ({a._name()}) has label units; only the top RBM may have them")
            if a.n_hidden != b.n_visible - b.n_labels:
                raise ValueError(f"DBN: layer sizes do not chain: layer {i} ({a._name()}) has {a.n_hidden} hidden "
                                 f"units but layer {i + 1} ({b._name()}) has {b.n_visible - b.n_labels} visible units"
                                 + (f" besides its {b.n_labels} label units" if b.n_labels else ""))
            if b.visible != "bernoulli":
                raise ValueError(f"DBN: layer {i + 1} ({b._name()}) has Gaussian visible units, but it is fed "
                                 "the hidden probabilities of the layer below; only the bottom RBM may have them")
        self.rbms = nn.ModuleList(rbms)

    @property
    def sizes(self):
        return (self.rbms[0].n_visible - self.rbms[0].n_labels,) + tuple(r.n_hidden for r in self.rbms)

    @property
    def n_labels(self):
        return self.rbms[-1].n_labels

    def forward(self, v):
        """The top layer's hidden means, propagated up deterministically (label units, if any,
        left at zero: the features alone)."""
        from ..nn import functional as F
        for r in self.rbms:
            if r.n_labels:
                a = F.linear(v, r.weight[:, :r.n_visible - r.n_labels], r.h_bias)
                v = a if r.hidden == "gaussian" else a.sigmoid()
            else:
                v = r(v)
        return v

    def _onehot(self, labels, n):
        L = self.n_labels
        y = backend.to_numpy(_arr(labels)).astype(np.int64).reshape(-1)
        if len(y) != n or (len(y) and (y.min() < 0 or y.max() >= L)):
            raise ValueError(f"DBN: expected {n} labels in [0, {L}), got {len(y)} with range "
                             f"[{y.min() if len(y) else '-'}, {y.max() if len(y) else '-'}]")
        dt = self.rbms[-1].weight.array.dtype
        xp = backend.array_module(self.rbms[-1].weight.array)
        out = np.zeros((n, L), dt)
        out[np.arange(n), y] = 1
        return xp.asarray(out)

    def _features(self, x):
        """The penultimate layer's hidden means (the top RBM's non-label visible units)."""
        x = _arr(x, self.rbms[0].weight.array.dtype)
        for r in self.rbms[:-1]:
            x = r._h_mean(r._check(x))
        return x

    def classify(self, v):
        """Class probabilities from the generative model (``n_labels`` > 0): for each label k,
        ``p(k | v) ∝ exp(-F([h(v), e_k]))`` with ``F`` the top RBM's free energy and ``h(v)`` the
        features propagated up. Returns a (N, n_labels) Tensor."""
        if not self.n_labels:
            raise ValueError("DBN.classify: this DBN has no label units; build it with n_labels=...")
        top = self.rbms[-1]
        L = top.n_labels
        f = self._features(v)
        xp = backend.array_module(f)
        W, b, c = top.weight.array, top.v_bias.array, top.h_bias.array
        a = f @ W[:, :-L].T + c                                   # (N, hidden)
        # -F([f, e_k]) = bᵀ[f, e_k] + Σ_j softplus(a_j + W_jk)  (Bernoulli hidden units)
        neg = (f @ b[:-L])[:, None] + b[-L:][None, :]
        if top.hidden == "gaussian":
            z = a[:, None, :] + W[:, -L:].T[None, :, :]
            neg = neg + 0.5 * (z * z).sum(-1)
        else:
            neg = neg + xp.stack([_softplus(xp, a + W[:, -L + k]).sum(1) for k in range(L)], 1)
        neg -= neg.max(1, keepdims=True)
        p = xp.exp(neg)
        p /= p.sum(1, keepdims=True)
        return Tensor._make(p)

    def fit(self, data, epochs=10, batch_size=100, lr=0.1, verbose=False, labels=None, k=1, **kwargs):
        """Greedy layer-wise training: RBM 0 on ``data``, RBM i on the hidden means of RBM i-1;
        with label units the top RBM sees those means beside the one-hot ``labels``.
        ``epochs``, ``lr`` and ``k`` (CD steps) may be per-layer lists -- a top RBM trained with
        more Gibbs steps than the layers below (``k=[1, 1, 10]``) generates far better, since CD-1
        never visits the spurious modes its free Gibbs chains fall into. Other keywords go to
        :meth:`RBM.fit`.
        Returns the per-layer lists of reconstruction errors."""
        from .pretrain import greedy_layerwise
        n = len(self.rbms)
        if self.n_labels and labels is None:
            raise ValueError(f"DBN.fit: the top RBM has {self.n_labels} label units, so fit needs labels=")
        if labels is not None and not self.n_labels:
            raise ValueError("DBN.fit: labels given but this DBN has no label units (build it with n_labels=...)")
        ep = list(epochs) if isinstance(epochs, (list, tuple)) else [epochs] * n
        lrs = list(lr) if isinstance(lr, (list, tuple)) else [lr] * n
        ks = list(k) if isinstance(k, (list, tuple)) else [k] * n
        if len(ep) != n or len(lrs) != n or len(ks) != n:
            raise ValueError(f"DBN.fit: {n} layers but {len(ep)} epochs, {len(lrs)} learning rates and {len(ks)} "
                             "CD step counts given")
        errors = []

        def train(i, rbm, X):
            if rbm.n_labels:
                xp = backend.array_module(X)
                X = xp.concatenate([X, self._onehot(labels, len(X))], 1)
            errors.append(rbm.fit(X, epochs=ep[i], batch_size=batch_size, lr=lrs[i], k=ks[i], verbose=verbose,
                                  **kwargs))

        greedy_layerwise(list(self.rbms), data, train, lambda rbm, X: rbm._h_mean(rbm._check(X)),
                         batch_size=max(1000, batch_size))
        return errors

    def sample(self, n=16, gibbs_steps=200, init=None, generator=None, labels=None):
        """``n`` visible vectors generated by the DBN: ``gibbs_steps`` steps of alternating Gibbs
        sampling in the top RBM (from random states, or from ``init``'s data propagated up), then
        one top-down pass ``E[v | h]`` through the lower RBMs' generative weights. With label
        units, ``labels`` (default ``0, 1, …`` cycling) are clamped throughout, so each row is a
        sample of its class. Returns the bottom layer's probabilities (means), shape
        (n, n_visible)."""
        rng = _random.rng(generator)
        top = self.rbms[-1]
        dt = top.weight.array.dtype
        xp = backend.array_module(top.weight.array)
        L = top.n_labels
        if init is not None:
            v = self._features(init)
            n = len(v)
        else:
            v = (xp.asarray(rng.random((int(n), top.n_visible - L), dtype=dt)) < 0.5).astype(dt)
        if L:
            lab = self._onehot(np.arange(int(n)) % L if labels is None else labels, int(n))
            v = xp.concatenate([v, lab], 1)
        elif labels is not None:
            raise ValueError("DBN.sample: labels given but this DBN has no label units (build it with n_labels=...)")
        for _ in range(int(gibbs_steps)):
            h = top._sample(top._h_mean(v), top.hidden, rng)
            v = top._sample_v(top._v_mean(h), rng)
            if L:
                v[:, -L:] = lab
        x = top._v_mean(top._sample(top._h_mean(v), top.hidden, rng))
        if L:
            x = x[:, :-L]
        for r in reversed(self.rbms[:-1]):
            x = r._v_mean(r._sample(x, r.hidden, rng))
        return Tensor._make(x)

    def to_autoencoder(self):
        """Unroll into a deep :class:`~deepgrad.models.autoencoder.AutoEncoder`: encoder layers
        ``W_i, c_i``, decoder layers ``W_iᵀ, b_i`` in reverse order (copies, untied, ready for
        fine-tuning), sigmoid units except where the RBM's units are Gaussian (linear)."""
        from .autoencoder import AutoEncoder
        if self.n_labels:
            raise ValueError("DBN.to_autoencoder: the top RBM has label units; a deep autoencoder is unrolled from "
                             "a DBN without them (n_labels=0)")
        enc, dec = [], []
        for r in self.rbms:
            enc += [r.to_linear(), _activation(r.hidden)]
        for r in reversed(self.rbms):
            dec += [r.to_linear_transposed(), _activation(r.visible)]
        return AutoEncoder(nn.Sequential(*enc), nn.Sequential(*dec))

    def to_classifier(self, n_classes):
        """An MLP initialised from the DBN: its layers with sigmoid units, then a fresh
        ``Linear(top, n_classes)`` giving logits (for cross-entropy fine-tuning)."""
        layers = []
        for r in self.rbms:
            lin = r.to_linear()
            if r.n_labels:          # the label units' weights have no input in a feed-forward net
                keep = r.n_visible - r.n_labels
                feat = nn.Linear(keep, r.n_hidden, dtype=r.weight.dtype)
                with no_grad():
                    feat.weight.array[...] = lin.weight.array[:, :keep]
                    feat.bias.array[...] = lin.bias.array
                lin = feat
            layers += [lin, _activation(r.hidden)]
        layers.append(nn.Linear(self.rbms[-1].n_hidden, int(n_classes), dtype=self.rbms[-1].weight.dtype))
        return nn.Sequential(*layers)
