"""Deck 004's three Theano snippets, as written, on deepgrad.theano (only the imports change).

    python examples/theano_snippets.py

The lecture elides part of the autoencoder; the missing definitions (shared weights, the data,
the learning rate, the update) are filled in below in Theano's own style.
"""
import numpy as np
from numpy.random import randn

import deepgrad.theano as theano
from deepgrad.theano import tensor

# --- theano code snippet (from deeplearning.net) ---
a = tensor.dscalar()
b = tensor.dscalar()
c = a + b
f = theano.function([a, b], c)
assert 4.0 == f(1.5, 2.5)

# --- theano code snippet: linear regression ---
import deepgrad.theano.tensor as T  # noqa: E402

# define computational graph:
W = T.dmatrix()
inputs = T.dmatrix()
targets = T.dmatrix()
outputs = T.dot(W.T, inputs)
cost_theano = ((outputs - targets) ** 2).mean()
grad_theano = T.grad(cost_theano, W)
# compile functions:
cost = theano.function([W, inputs, targets], cost_theano)
grad = theano.function([W, inputs, targets], grad_theano)
# try on some _random_ data:
my_w = 0.01 * randn(10, 1).astype("float32")
my_inputs = randn(100, 10).T.astype("float32")
my_targets = randn(1, 100).astype("float32")
print(cost(my_w, my_inputs, my_targets))
my_w -= 0.1 * grad(my_w, my_inputs, my_targets)
print(cost(my_w, my_inputs, my_targets))
theano.printing.debugprint(cost)

# --- theano code snippet: autoencoder ---
numvis, numhid, selectionthreshold, lr = 64, 32, 0.1, 0.01
W = theano.shared(0.1 * randn(numvis, numhid), name="W")
bhid = theano.shared(np.zeros(numhid), name="bhid")
bvis = theano.shared(np.zeros(numvis), name="bvis")
params = [W, bhid, bvis]
inputs = T.dmatrix("inputs")

prehiddens = T.dot(inputs, W) + bhid
hiddens = (prehiddens > selectionthreshold) * prehiddens
outputs = T.dot(hiddens, W.T) + bvis
cost = T.mean(T.sum(0.5 * ((inputs - outputs) ** 2), axis=1))
grad = T.grad(cost, params)

train = theano.function([inputs], cost, updates=[(p, p - lr * g) for p, g in zip(params, grad)])
data = randn(256, 8) @ randn(8, numvis)
data /= data.std()
for epoch in range(200):
    c = train(data)
    if epoch % 50 == 0:
        print(f"epoch {epoch}: reconstruction cost {c:.4f}")
print(theano.pp(cost))
