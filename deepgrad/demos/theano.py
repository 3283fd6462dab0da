"""The lecture's Theano snippets (deck 004), run as written on ``deepgrad.theano``.

1. ``f = theano.function([a, b], a + b)``; ``assert 4.0 == f(1.5, 2.5)``.
2. Linear regression: the cost and ``T.grad(cost, W)`` compiled as two functions, one gradient
   step ``my_w -= 0.1 * grad(...)`` on random data; then the same model trained to the
   least-squares solution with the update inside the function (``updates=[(W, W - lr * g)]``).
3. The autoencoder with thresholded hidden units (``(prehiddens > selectionthreshold) *
   prehiddens``), its weights shared variables updated by ``T.grad(cost, params)``.

Prints the graphs (``debugprint``, ``pp``) and writes the linear-regression graph as Graphviz
.dot text (and a PNG when the ``dot`` program is installed).
"""
from __future__ import annotations

import numpy as np

from . import _common as C

NAME = "theano"
DECKS = ("004",)
SUMMARY = "the deck's three Theano snippets on deepgrad.function; graphs printed and drawn (.dot)"


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    import deepgrad as dg
    import deepgrad.theano as theano
    import deepgrad.theano.tensor as T
    from deepgrad.theano import tensor
    from deepgrad.utils.graphviz import to_dot

    out = C.out_dir(out, NAME)
    rng = np.random.default_rng(seed)
    randn = rng.standard_normal

    C.print_header("snippet 1: a + b")
    a = tensor.dscalar()
    b = tensor.dscalar()
    c = a + b
    f = theano.function([a, b], c)
    assert 4.0 == f(1.5, 2.5)
    C.print_row("f(1.5, 2.5)", float(f(1.5, 2.5)), 4.0)

    C.print_header("snippet 2: linear regression")
    W = T.dmatrix("W")
    inputs = T.dmatrix("inputs")
    targets = T.dmatrix("targets")
    outputs = T.dot(W.T, inputs)
    cost_theano = ((outputs - targets) ** 2).mean()
    grad_theano = T.grad(cost_theano, W)
    cost = theano.function([W, inputs, targets], cost_theano)
    grad = theano.function([W, inputs, targets], grad_theano)
    my_w = 0.01 * randn((10, 1)).astype("float32")
    my_inputs = randn((100, 10)).T.astype("float32")
    my_targets = randn((1, 100)).astype("float32")
    c0 = float(cost(my_w, my_inputs, my_targets))
    my_w -= 0.1 * grad(my_w, my_inputs, my_targets)
    c1 = float(cost(my_w, my_inputs, my_targets))
    C.print_row("cost before / after one step", f"{c0:.4f} -> {c1:.4f}")
    print(theano.printing.debugprint(cost, file="str"), end="")
    print("pp:", theano.pp(cost_theano))
    dot_path = out / "linear_regression.dot"
    to_dot(cost, path=dot_path)
    print(f"  graph: {dot_path}")

    # the same model, trained inside the function: W is shared, the step is an update
    true_w = randn((10, 1))
    x = randn((10, 200))
    y = true_w.T @ x + 0.1 * randn((1, 200))
    Ws = theano.shared(np.zeros((10, 1)), name="W")
    cost_s = ((T.dot(Ws.T, inputs) - targets) ** 2).mean()
    train = theano.function([inputs, targets], cost_s, updates=[(Ws, Ws - 0.1 * T.grad(cost_s, Ws))])
    steps = 100 if quick else 500
    for _ in range(steps):
        last = float(train(x, y))
    w_ls = np.linalg.lstsq(x.T, y.T, rcond=None)[0]
    err = float(np.abs(Ws.get_value() - w_ls).max())
    C.print_row(f"trained W vs least squares after {steps} steps (max |diff|)", err)
    C.print_row("training cost", last)
    to_dot(train, path=out / "linear_regression_train.dot")

    C.print_header("snippet 3: thresholded autoencoder")
    nvis, nhid = 64, 32
    Wa = theano.shared(0.1 * randn((nvis, nhid)), name="W")
    bhid = theano.shared(np.zeros(nhid), name="bhid")
    bvis = theano.shared(np.zeros(nvis), name="bvis")
    params = [Wa, bhid, bvis]
    inputs = T.dmatrix("inputs")
    selectionthreshold = 0.1
    prehiddens = T.dot(inputs, Wa) + bhid
    hiddens = (prehiddens > selectionthreshold) * prehiddens
    outputs = T.dot(hiddens, Wa.T) + bvis
    cost = T.mean(T.sum(0.5 * ((inputs - outputs) ** 2), axis=1))
    grads = T.grad(cost, params)
    lr = 0.01
    train_ae = theano.function([inputs], cost, updates=[(p, p - lr * g) for p, g in zip(params, grads)])
    data = randn((256, 8)) @ randn((8, nvis))       # data on an 8-d subspace: learnable
    data /= data.std()
    epochs = 50 if quick else 300
    first = float(train_ae(data))
    for _ in range(epochs - 1):
        last_ae = float(train_ae(data))
    C.print_row(f"reconstruction cost: first -> after {epochs} full-batch steps", f"{first:.3f} -> {last_ae:.3f}")
    print(theano.printing.debugprint(train_ae, file="str"), end="")
    if train_ae.program is not None:     # replayed by deepgrad.compile's capture-and-replay compiler
        C.print_header("the program deepgrad.compile recorded for the autoencoder's training step")
        dg.print_graph(train_ae.program)
    return {"snippet1": float(f(1.5, 2.5)), "linreg_cost_before": c0, "linreg_cost_after": c1,
            "linreg_trained_vs_lstsq": err, "ae_cost_first": first, "ae_cost_last": last_ae,
            "dot_file": str(dot_path)}
