# The checks a scalar-autograd library (micrograd-style) runs against torch, as a program (written anew).
import argparse
import torch

parser = argparse.ArgumentParser()
parser.add_argument('--seed', type=int, default=0)
parser.parse_args()

x = torch.Tensor([-4.0]).double()
x.requires_grad = True
z = 2 * x + 2 + x
q = z.relu() + z * x
h = (z * z).relu()
y = h + q + q * x
y.backward()
xpt, ypt = x, y
print('y', ypt.data.item(), 'dy/dx', xpt.grad.item())

a = torch.Tensor([-4.0]).double()
b = torch.Tensor([2.0]).double()
a.requires_grad = True
b.requires_grad = True
c = a + b
d = a * b + b**3
c = c + c + 1
c = c + 1 + c + (-a)
d = d + d * 2 + (b + a).relu()
d = d + 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g = g + 10.0 / f
g.backward()
apt, bpt, gpt = a, b, g
print('g', gpt.data.item(), 'dg/da', apt.grad.item(), 'dg/db', bpt.grad.item())
print('final loss: %.10f' % (gpt.data.item() + apt.grad.item() + 2 * bpt.grad.item()))
