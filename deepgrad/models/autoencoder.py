"""Autoencoders (lecture decks 002, 003 and 004): networks trained to reconstruct their input.

* :class:`AutoEncoder` -- any ``encoder`` / ``decoder`` pair, or a stack built from layer sizes,
  optionally with tied weights: deck 004's ``r(x) = W h(Wᵀx + b)``, where the decoder of each layer
  uses the transpose of its encoder's weight (ONE shared ``Parameter``; see :class:`TiedLinear`).
* :class:`DeepAutoEncoder` -- Hinton & Salakhutdinov 2006: 784-1000-500-250-30 logistic layers
  with a *linear* code layer, mirrored decoder with logistic outputs.
* :class:`SparseAutoEncoder` -- deck 002: ``J_sparse = J + β Σ_j KL(ρ ‖ ρ̂_j)`` with ρ̂_j the mean
  activation of hidden unit j over the batch.
* :class:`DenoisingAutoEncoder` -- reconstruct the clean input from one with a random fraction of
  its entries set to zero (masking noise; Vincent et al. 2008).

Every autoencoder has ``encode(x)``, ``decode(h)``, ``forward(x) = decode(encode(x))`` and
``loss(x)``: the objective it is trained on (deck 004's ``mean_batch Σ_i ½ (r(x)_i - x_i)²``
plus any penalty), so a training loop is ``model.loss(x).backward(); opt.step()``.
"""
from __future__ import annotations

import math

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F

__all__ = ["TiedLinear", "AutoEncoder", "DeepAutoEncoder", "SparseAutoEncoder", "DenoisingAutoEncoder",
           "reconstruction_loss", "kl_sparsity"]


def reconstruction_loss(output, target):
    """``mean over the batch of Σ_i ½ (output_i - target_i)²`` (decks 002 and 004)."""
    d = output - target
    return 0.5 * (d * d).reshape(d.shape[0], -1).sum(1).mean()


def kl_sparsity(rho_hat, rho):
    """``Σ_j KL(ρ ‖ ρ̂_j) = Σ_j ρ log(ρ/ρ̂_j) + (1-ρ) log((1-ρ)/(1-ρ̂_j))`` (deck 002)."""
    rho_hat = rho_hat.clamp(1e-7, 1 - 1e-7)
    return (rho * (math.log(rho) - rho_hat.log())
            + (1 - rho) * (math.log(1 - rho) - (1 - rho_hat).log())).sum()


def _make_activation(act):
    if act is None or act == "linear" or act == "identity":
        return nn.Identity()
    if isinstance(act, str):
        table = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
        if act not in table:
            raise ValueError(f"unknown activation {act!r}; use one of {sorted(table)} or 'linear', or a Module")
        return table[act]()
    if isinstance(act, type):
        return act()
    return act


class TiedLinear(nn.Module):
    """The decoder half of a tied layer: ``y = x Wᵀᵀ + b = x W + b`` with ``W`` the weight of the
    encoder ``Linear`` it is tied to. ``self.weight`` *is* that Parameter (one object, listed once by
    ``parameters()``), so training updates both halves; only the bias is its own."""

    def __init__(self, tied_to, bias=True):
        super().__init__()
        if not isinstance(tied_to, nn.Linear):
            raise TypeError(f"TiedLinear: tied_to must be an nn.Linear, got {type(tied_to).__name__}")
        self.in_features, self.out_features = tied_to.out_features, tied_to.in_features
        self.weight = tied_to.weight
        if bias:
            self.bias = nn.Parameter(tied_to.weight.new_zeros(self.out_features))
        else:
            self.bias = None

    def forward(self, x):
        return F.linear(x, self.weight.t(), self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, tied"


class AutoEncoder(nn.Module):
    """``decoder(encoder(x))``.

    ``AutoEncoder(encoder, decoder)`` wraps any two modules. ``AutoEncoder(sizes=(784, 256))``
    builds the stack: encoder ``Linear(s_i, s_{i+1})`` + ``activation`` per layer (``code_activation``
    after the last; default: ``activation``), decoder mirrored with ``activation`` and
    ``output_activation`` after the last layer; ``tied=True`` gives each decoder layer the transpose
    of its encoder layer's weight (deck 004's ``r(x) = W h(Wᵀx + b)``).
    """

    def __init__(self, encoder=None, decoder=None, *, sizes=None, activation="sigmoid", code_activation="same",
                 output_activation="sigmoid", tied=False, dtype=None):
        super().__init__()
        if sizes is not None:
            if encoder is not None or decoder is not None:
                raise ValueError(f"{type(self).__name__}: give either encoder and decoder modules or sizes, not both")
            sizes = tuple(int(s) for s in sizes)
            if len(sizes) < 2 or min(sizes) < 1:
                raise ValueError(f"{type(self).__name__}: sizes must list at least two positive sizes, got {sizes}")
            self.sizes = sizes
            encoder, decoder = self._build(sizes, activation, code_activation, output_activation, tied, dtype)
        elif encoder is None or decoder is None:
            raise ValueError(f"{type(self).__name__}: needs encoder and decoder modules, or sizes=(...)")
        self.tied = bool(tied)
        self.encoder = encoder
        self.decoder = decoder
        self._check_chain()

    def _check_chain(self):
        """When encoder and decoder are ``Sequential`` stacks, their linear layers' sizes must
        chain (each layer's outputs are the next one's inputs)."""
        if not (isinstance(self.encoder, nn.Sequential) and isinstance(self.decoder, nn.Sequential)):
            return
        layers = [("encoder", i, m) for i, m in enumerate(self.encoder) if isinstance(m, (nn.Linear, TiedLinear))]
        layers += [("decoder", i, m) for i, m in enumerate(self.decoder) if isinstance(m, (nn.Linear, TiedLinear))]
        for (pa, ia, a), (pb, ib, b) in zip(layers, layers[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"{type(self).__name__}: layer sizes do not chain: {pa}[{ia}] ({a!r}) gives "
                                 f"{a.out_features} features but {pb}[{ib}] ({b!r}) takes {b.in_features}")

    @staticmethod
    def _build(sizes, activation, code_activation, output_activation, tied, dtype):
        n = len(sizes) - 1
        enc_lin = [nn.Linear(sizes[i], sizes[i + 1], dtype=dtype) for i in range(n)]
        enc = []
        for i, lin in enumerate(enc_lin):
            act = (activation if code_activation == "same" else code_activation) if i == n - 1 else activation
            enc += [lin, _make_activation(act)]
        dec = []
        for i in reversed(range(n)):
            lin = TiedLinear(enc_lin[i]) if tied else nn.Linear(sizes[i + 1], sizes[i], dtype=dtype)
            dec += [lin, _make_activation(output_activation if i == 0 else activation)]
        return nn.Sequential(*enc), nn.Sequential(*dec)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, h):
        return self.decoder(h)

    def forward(self, x):
        return self.decode(self.encode(x))

    def penalty(self, x, code):
        """Extra terms of the objective (none here; see :class:`SparseAutoEncoder`)."""
        return None

    def corrupt(self, x):
        """The input the encoder sees in training (``x`` itself here; see
        :class:`DenoisingAutoEncoder`)."""
        return x

    def loss(self, x):
        """The training objective for batch ``x``: ``reconstruction_loss(r(x̃), x)`` plus
        :meth:`penalty`."""
        code = self.encode(self.corrupt(x))
        out = reconstruction_loss(self.decode(code), x)
        p = self.penalty(x, code)
        return out if p is None else out + p

    @property
    def encoder_layers(self):
        """The encoder's ``Linear`` layers, bottom to top."""
        return [m for m in self.encoder.modules() if isinstance(m, nn.Linear)]


class DeepAutoEncoder(AutoEncoder):
    """Hinton & Salakhutdinov 2006's deep autoencoder: logistic hidden layers of ``sizes``, a
    *linear* code layer (the last size), a mirrored decoder with logistic output units (pixel
    intensities in [0, 1]). Pre-train it with a :class:`~deepgrad.models.rbm.DBN`
    (``DBN(sizes, top_hidden="gaussian").fit(x).to_autoencoder()`` gives the same layout) or
    :func:`~deepgrad.models.pretrain.pretrain`."""

    def __init__(self, sizes=(784, 1000, 500, 250, 30), tied=False, output_activation="sigmoid", dtype=None):
        super().__init__(sizes=sizes, activation="sigmoid", code_activation="linear",
                         output_activation=output_activation, tied=tied, dtype=dtype)


class SparseAutoEncoder(AutoEncoder):
    """One hidden layer of sigmoid units with deck 002's sparsity penalty:

    ``J_sparse(θ) = J(θ) + β Σ_j KL(ρ ‖ ρ̂_j)``, ``ρ̂_j = (1/m) Σ_i a_j(x^(i))`` over the batch.

    Its gradient enters back-propagation as deck 002's extra δ term: for example i and hidden
    unit j, ``δ_ij += (β/m)·(-ρ/ρ̂_j + (1-ρ)/(1-ρ̂_j))·g'(z_ij)`` (the ``1/m`` because ``J`` averages
    over the batch; the deck writes the term per example, and Ng's derivation multiplies it by
    ``g'(z)`` together with the back-propagated error).
    """

    def __init__(self, n_visible, n_hidden, sparsity_target=0.05, beta=3.0, tied=False,
                 output_activation="sigmoid", dtype=None):
        name = f"SparseAutoEncoder({n_visible}, {n_hidden})"
        rho = float(sparsity_target)
        if not 0.0 < rho < 1.0:
            raise ValueError(f"{name}: sparsity_target ρ must be in (0, 1) (a mean sigmoid activation), got "
                             f"{sparsity_target!r} for the hidden layer of {n_hidden} units")
        if float(beta) < 0:
            raise ValueError(f"{name}: beta must be non-negative, got {beta!r}")
        super().__init__(sizes=(n_visible, n_hidden), activation="sigmoid", output_activation=output_activation,
                         tied=tied, dtype=dtype)
        self.sparsity_target, self.beta = rho, float(beta)

    def penalty(self, x, code):
        """``β Σ_j KL(ρ ‖ ρ̂_j)`` with ρ̂ the batch mean of the hidden activations ``code``."""
        return self.beta * kl_sparsity(code.mean(0), self.sparsity_target)

    def extra_repr(self):
        return f"sparsity_target={self.sparsity_target}, beta={self.beta}"


class DenoisingAutoEncoder(AutoEncoder):
    """One hidden layer trained to reconstruct ``x`` from ``x̃``: each input entry set to zero with
    probability ``corruption`` (masking noise), in training mode only. Tied weights by default."""

    def __init__(self, n_visible, n_hidden, corruption=0.3, tied=True, activation="sigmoid",
                 output_activation="sigmoid", dtype=None, generator=None):
        if not 0.0 <= float(corruption) < 1.0:
            raise ValueError(f"DenoisingAutoEncoder({n_visible}, {n_hidden}): corruption must be in [0, 1), got "
                             f"{corruption!r}")
        super().__init__(sizes=(n_visible, n_hidden), activation=activation, output_activation=output_activation,
                         tied=tied, dtype=dtype)
        self.corruption = float(corruption)
        self.generator = generator

    def corrupt(self, x):
        if not self.training or self.corruption == 0:
            return x
        from .. import backend
        from .. import random as _random
        from ..tensor import Tensor
        xp = backend.array_module(x.array)
        keep = xp.asarray(_random.rng(self.generator).random(x.shape) >= self.corruption).astype(x.array.dtype)
        return x * Tensor._make(keep)

    def extra_repr(self):
        return f"corruption={self.corruption}"


def copy_linear_(dst, weight, bias=None):
    """Copy ``weight`` (and ``bias``) arrays into the ``nn.Linear`` ``dst`` in place."""
    with no_grad():
        dst.weight.array[...] = weight
        if bias is not None and dst.bias is not None:
            dst.bias.array[...] = bias
        dst.weight._version[0] += 1
