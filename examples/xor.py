"""XOR with a two-layer network, written with plain deepgrad autograd (no nn, no optim).

A single perceptron cannot separate XOR (Minsky & Papert, 1969); one hidden layer can. This is
the whole training loop by hand: forward, loss, backward, gradient step.

    python examples/xor.py
"""
import deepgrad as dg

dg.manual_seed(0)
x = dg.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = dg.tensor([[0.0], [1.0], [1.0], [0.0]])

# 2 -> 4 -> 1, tanh hidden units, sigmoid output
w1 = (dg.randn(2, 4) * 1.0).requires_grad_()
b1 = dg.zeros(4, requires_grad=True)
w2 = (dg.randn(4, 1) * 1.0).requires_grad_()
b2 = dg.zeros(1, requires_grad=True)
params = [w1, b1, w2, b2]
lr = 0.5

for step in range(2001):
    h = (x @ w1 + b1).tanh()
    p = (h @ w2 + b2).sigmoid()
    # binary cross-entropy, averaged over the four points
    loss = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    for q in params:
        q.grad = None
    loss.backward()
    with dg.no_grad():
        for q in params:
            q -= lr * q.grad          # in-place update of the leaf, outside the graph
    if step % 250 == 0:
        print(f"step {step:4d}  loss {loss.item():.4f}")

print("predictions:", [round(v, 3) for v in p.detach().flatten().tolist()], "targets: [0, 1, 1, 0]")
