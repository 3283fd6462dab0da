"""Greedy layer-wise pre-training, then supervised fine-tuning (deck 002's stacked autoencoders,
deck 003's Hinton & Salakhutdinov 2006).

:func:`pretrain` works on *any* model: it finds the model's ``nn.Linear`` layers in the order the
forward pass calls them, and for each one in turn (bottom to top) trains a one-layer autoencoder
(plain, sparse or denoising) or an RBM on that layer's inputs -- computed by the model itself,
with the layers below already pre-trained -- then copies the trained encoder weights into the
layer. Afterwards train the whole model on the labels (:func:`fine_tune`, or any loop).

>>> model = nn.Sequential(nn.Linear(784, 256), nn.Sigmoid(), nn.Linear(256, 64), nn.Sigmoid(),
...                       nn.Linear(64, 10))                                  # doctest: +SKIP
>>> pretrain(model, unlabelled_images, method="autoencoder", epochs=5)        # doctest: +SKIP
>>> fine_tune(model, labelled_loader, epochs=10)                              # doctest: +SKIP

Everything runs in mini-batches on the same fused paths as supervised training.
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn
from .. import random as _random
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor

__all__ = ["greedy_layerwise", "linear_layers", "layer_inputs", "train_autoencoder", "pretrain", "fine_tune",
           "METHODS"]

METHODS = ("autoencoder", "sparse", "denoising", "rbm")


def _as_array(data):
    if isinstance(data, Tensor):
        return data.array
    return np.asarray(data)


def greedy_layerwise(blocks, data, train_block, transform, batch_size=1000):
    """The greedy procedure itself: ``train_block(i, block, X_i)`` for each block, where ``X_0`` is
    ``data`` and ``X_{i+1} = transform(block_i, X_i)`` (computed in chunks of ``batch_size`` rows).
    Returns the last features."""
    X = _as_array(data)
    for i, block in enumerate(blocks):
        train_block(i, block, X)
        if i < len(blocks) - 1:
            xp = backend.array_module(X)
            X = xp.concatenate([_as_array(transform(block, X[s:s + batch_size]))
                                for s in range(0, len(X), batch_size)])
    return X


class _Stop(Exception):
    pass


def linear_layers(model, example):
    """The ``nn.Linear`` modules of ``model`` in the order its forward pass first calls them on
    ``example`` (a batch of model inputs)."""
    order, handles = [], []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            handles.append(m.register_forward_pre_hook(lambda mod, args: order.append(mod) if mod not in order else None))
    was = model.training
    model.eval()
    try:
        with no_grad():
            model(example if isinstance(example, Tensor) else Tensor._make(_as_array(example)))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return order


def layer_inputs(model, layer, data, batch_size=1000):
    """What ``layer`` receives when ``model`` runs on ``data``, as one array (rows: samples, or
    samples x positions for layers applied to sequences), computed batch by batch in eval mode;
    the forward pass stops at ``layer``."""
    captured = []

    def hook(mod, args):
        captured.append(args[0].array)
        raise _Stop

    X = _as_array(data)
    h = layer.register_forward_pre_hook(hook)
    was = model.training
    model.eval()
    try:
        with no_grad():
            for s in range(0, len(X), batch_size):
                try:
                    model(Tensor._make(X[s:s + batch_size]))
                except _Stop:
                    pass
    finally:
        h.remove()
        model.train(was)
    if not captured:
        raise RuntimeError(f"pretrain: the model's forward never reached {layer!r}")
    xp = backend.array_module(captured[0])
    out = xp.concatenate([c.reshape(-1, c.shape[-1]) for c in captured])
    return out


def train_autoencoder(ae, X, epochs=10, batch_size=100, lr=1e-3, optimizer="adam", generator=None,
                      verbose=False, name="autoencoder", objective=None, **opt_kwargs):
    """Minimise ``ae.loss(x)`` (or ``objective(ae, x)``) over shuffled mini-batches of the array
    ``X``. ``optimizer``: a name (built with ``lr`` and ``opt_kwargs``) or an Optimizer. Returns
    the mean loss of each epoch."""
    from ..train import get_optimizer
    opt = get_optimizer(optimizer, ae.parameters(), lr=lr, **opt_kwargs) if isinstance(optimizer, str) else optimizer
    X = _as_array(X)
    xp = backend.array_module(X)
    rng = _random.rng(generator)
    n = len(X)
    bs = max(1, min(int(batch_size), n))
    ae.train()
    losses = []
    for epoch in range(int(epochs)):
        order = xp.asarray(rng.permutation(n))
        total = 0.0
        for s in range(0, n, bs):
            x = Tensor._make(X[order[s:s + bs]])
            opt.zero_grad()
            loss = ae.loss(x) if objective is None else objective(ae, x)
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(x)
        losses.append(total / n)
        if verbose:
            print(f"{name} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}")
    return losses


def _in_unit_interval(X):
    return float(X.min()) >= 0.0 and float(X.max()) <= 1.0


def _block_for(method, layer, X, i, activation, tied, sparsity_target, beta, corruption, generator):
    from .autoencoder import AutoEncoder, DenoisingAutoEncoder, SparseAutoEncoder, copy_linear_
    from .rbm import RBM
    n_in, n_out = layer.in_features, layer.out_features
    dt = layer.weight.array.dtype
    unit = _in_unit_interval(X)
    if method == "rbm":
        return RBM(n_in, n_out, visible="bernoulli" if unit else "gaussian", dtype=dt, generator=generator)
    out_act = "sigmoid" if unit else "linear"
    if method == "autoencoder":
        ae = AutoEncoder(sizes=(n_in, n_out), activation=activation, output_activation=out_act, tied=tied, dtype=dt)
    elif method == "sparse":
        ae = SparseAutoEncoder(n_in, n_out, sparsity_target=sparsity_target, beta=beta, tied=tied,
                               output_activation=out_act, dtype=dt)
    else:
        ae = DenoisingAutoEncoder(n_in, n_out, corruption=corruption, tied=tied, activation=activation,
                                  output_activation=out_act, dtype=dt, generator=generator)
    # start from the model's own initialisation of the layer
    copy_linear_(ae.encoder_layers[0], layer.weight.array, None if layer.bias is None else layer.bias.array)
    return ae


def pretrain(model, data, method="autoencoder", layers=None, epochs=10, batch_size=100, lr=None,
             optimizer="adam", activation="sigmoid", tied=False, sparsity_target=0.05, beta=3.0, corruption=0.3,
             k=1, persistent=False, momentum=(0.5, 0.9), weight_decay=2e-4, generator=None, verbose=False):
    """Greedy layer-wise unsupervised pre-training of ``model``'s ``Linear`` layers on ``data``
    (an array or Tensor of model inputs; no labels).

    ``layers``: the ``nn.Linear`` modules to pre-train, bottom to top (default: every ``Linear``
    the forward pass calls, in call order, except the last -- the output layer). Their sizes must
    chain. ``method``: ``"autoencoder"``, ``"sparse"`` (deck 002's KL penalty with
    ``sparsity_target``, ``beta``), ``"denoising"`` (masking noise ``corruption``) or ``"rbm"``
    (CD-``k`` with ``momentum`` and ``weight_decay``; the layer's inputs should then be
    probabilities, i.e. sigmoid units below). ``activation`` is the block's hidden nonlinearity:
    make it the one that follows the layer in your model. A block whose inputs lie in [0, 1]
    reconstructs them with sigmoid units (Bernoulli visible units for an RBM), otherwise with
    linear units (Gaussian visible units: standardise such data). ``epochs``/``lr`` may be
    per-layer lists (default lr: 1e-3 for autoencoders with Adam, 0.1 for RBMs).

    Returns the trained blocks (autoencoders or RBMs), one per layer, with ``history`` attributes
    (per-epoch loss or reconstruction error)."""
    if method not in METHODS:
        raise ValueError(f"pretrain: method must be one of {METHODS}, got {method!r}")
    X0 = _as_array(data)
    if layers is None:
        layers = linear_layers(model, X0[:2])[:-1]
        if not layers:
            raise ValueError(f"pretrain: {type(model).__name__} calls fewer than two Linear layers, so there is no "
                             "hidden layer to pre-train (pass layers=[...] explicitly)")
    layers = list(layers)
    for i, lay in enumerate(layers):
        if not isinstance(lay, nn.Linear):
            raise TypeError(f"pretrain: layers[{i}] is a {type(lay).__name__}, not an nn.Linear")
    for i in range(len(layers) - 1):
        a, b = layers[i], layers[i + 1]
        if a.out_features != b.in_features:
            raise ValueError(f"pretrain: layer sizes do not chain: layer {i} ({a!r}) has {a.out_features} outputs "
                             f"but layer {i + 1} ({b!r}) has {b.in_features} inputs")
    n = len(layers)
    eps = list(epochs) if isinstance(epochs, (list, tuple)) else [epochs] * n
    if lr is None:
        lr = 0.1 if method == "rbm" else 1e-3
    lrs = list(lr) if isinstance(lr, (list, tuple)) else [lr] * n
    if len(eps) != n or len(lrs) != n:
        raise ValueError(f"pretrain: {n} layers but {len(eps)} epochs and {len(lrs)} learning rates given")
    blocks = []
    from .autoencoder import copy_linear_
    for i, layer in enumerate(layers):
        X = layer_inputs(model, layer, X0, batch_size=max(1000, batch_size))
        block = _block_for(method, layer, X, i, activation, tied, sparsity_target, beta, corruption, generator)
        name = f"pretrain layer {i} ({layer.in_features}->{layer.out_features}, {method})"
        if method == "rbm":
            block.history = block.fit(X, epochs=eps[i], batch_size=batch_size, lr=lrs[i], k=k, persistent=persistent,
                                      momentum=momentum, weight_decay=weight_decay, generator=generator,
                                      verbose=verbose)
            copy_linear_(layer, block.weight.array, block.h_bias.array)
        else:
            block.history = train_autoencoder(block, X, epochs=eps[i], batch_size=batch_size, lr=lrs[i],
                                              optimizer=optimizer, generator=generator, verbose=verbose, name=name)
            enc = block.encoder_layers[0]
            copy_linear_(layer, enc.weight.array, enc.bias.array)
        blocks.append(block)
    return blocks


def fine_tune(model, train_loader, loss_fn="cross_entropy", optimizer="adam", lr=1e-3, epochs=10, val_loader=None,
              metrics=("accuracy",), verbose=0, **kwargs):
    """Supervised training of the whole (pre-trained) model: :func:`deepgrad.train.fit` with an
    optimiser built from ``optimizer``/``lr``. Returns the History."""
    from ..train import fit, get_optimizer
    opt = get_optimizer(optimizer, model.parameters(), lr=lr) if isinstance(optimizer, str) else optimizer
    return fit(model, loss_fn, opt, train_loader, epochs=epochs, val_loader=val_loader, metrics=metrics,
               verbose=verbose, **kwargs)
