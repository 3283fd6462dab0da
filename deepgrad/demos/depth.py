"""Plain vs residual depth (deck 003): He et al. (2016, figure 1) train 20- and 56-layer "plain"
networks on CIFAR-10 and find the deeper one has *higher training error* (and so test error): not
overfitting but an optimisation difficulty, the degradation problem. With identity shortcuts
(ResNets) the deeper network trains at least as well as the shallower one.

Full mode trains ``models.plain20``/``plain56`` and ``resnet20``/``resnet56`` on one CIFAR-10
training batch (10,000 32x32 images) for a short schedule: 600 SGD steps of 32 images (about two
epochs; He et al. train for 64,000 steps of 128), which on one CPU core takes about half an hour quiet
(a plain-56 step is ~0.7 s). The degradation is already plain in that window: after 200 steps the
20-layer plain net's training loss is 1.83 and the 56-layer one's 2.26. Quick mode keeps the idea
and the block structure (two layers + BN per block, shortcut around them) but in fully connected
form on 16x16 images: 4 vs 22 layers, width 64, so the four training curves take seconds.
"""
from __future__ import annotations

import time

import numpy as np

from . import _b_common as C

NAME = "depth"
DECKS = ("003",)
SUMMARY = "plain vs residual nets of two depths on CIFAR-10: the deeper plain net trains worse (He et al. 2016)"

PAPER = "He et al. fig. 1/6: plain-56 trains worse than plain-20; ResNet-56 better than ResNet-20 (test 6.97% vs 8.75%)"


def _mlp_net(d_in, width, blocks, residual, seed):
    import deepgrad as dg
    from .. import nn
    from ..nn import functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.bn1 = nn.Linear(width, width, bias=False), nn.BatchNorm1d(width)
            self.fc2, self.bn2 = nn.Linear(width, width, bias=False), nn.BatchNorm1d(width)
            if residual:      # each block starts as the identity (zero-initialised last BN scale)
                nn.init.zeros_(self.bn2.weight)

        def forward(self, x):
            y = self.bn2(self.fc2(F.relu(self.bn1(self.fc1(x)))))
            return F.relu(y + x if residual else y)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Flatten(), nn.Linear(d_in, width, bias=False), nn.BatchNorm1d(width),
                                      nn.ReLU())
            self.blocks = nn.Sequential(*[Block() for _ in range(blocks)])
            self.fc = nn.Linear(width, 10)

        def forward(self, x):
            return self.fc(self.blocks(self.stem(x)))

    dg.manual_seed(seed)
    return Net()


def _conv_net(depth, residual, seed):
    import deepgrad as dg
    from ..models import resnet
    dg.manual_seed(seed)
    # residual blocks start as the identity (last BN scale zero), as the quick mode's blocks do
    return resnet.CifarResNet(depth, residual=residual, zero_init_residual=residual)


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    import deepgrad as dg
    out = C.out_dir(NAME, out)
    if quick:
        size, n_train, steps, every, depths, lr, batch = 16, 1000, 100, 10, (4, 22), 0.05, 100
        build = lambda depth, res: _mlp_net(3 * size * size, 64, (depth - 2) // 2, res, seed)   # noqa: E731
        kind = "fully connected, width 64"
    else:
        size, n_train, steps, every, depths, lr, batch = 32, 10000, 600, 25, (20, 56), 0.05, 32
        build = lambda depth, res: _conv_net(depth, res, seed)   # noqa: E731
        kind = "CIFAR ResNet/plain conv nets (He et al. section 4.2)"
    xtr, ytr = C.cifar_arrays(n_train, train=True, size=size)
    mean, std = xtr.mean((0, 2, 3), keepdims=True), xtr.std((0, 2, 3), keepdims=True)
    xtr = ((xtr - mean) / std).astype(np.float32)
    C.print_header(f"{kind}: depths {depths[0]} and {depths[1]}, {n_train} images ({size}x{size}), {steps} steps of {batch}")
    res, curves = {}, {}
    for residual in (False, True):
        for depth in depths:
            model = build(depth, residual)
            opt = dg.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
            t0 = time.perf_counter()
            losses = C.train_steps(model, opt, xtr, ytr, steps, batch_size=batch, seed=seed)
            seconds = time.perf_counter() - t0
            # training error of the running batches, smoothed over each window of `every` steps
            name = f"{'resnet' if residual else 'plain'}{depth}"
            err = C.accuracy(model, xtr, ytr)
            res[f"{name}_train_error"] = 1 - err
            res[f"{name}_final_loss"] = float(np.mean(losses[-every:]))
            curves[name] = losses
            C.print_row(f"{name}: training loss, last {every} steps", f"{res[f'{name}_final_loss']:.3f}")
            C.print_row(f"{name}: training error (after training)", f"{100 * (1 - err):.1f}%  ({seconds:.0f} s)")
    d0, d1 = depths
    res["plain_degrades"] = res[f"plain{d1}_train_error"] > res[f"plain{d0}_train_error"]
    gap = res[f"plain{d1}_train_error"] - res[f"plain{d0}_train_error"]
    C.print_row(f"plain{d1} - plain{d0} training error", f"{100 * gap:+.1f} pts", PAPER)
    C.print_row(f"resnet{d1} - resnet{d0} training error",
                f"{100 * (res[f'resnet{d1}_train_error'] - res[f'resnet{d0}_train_error']):+.1f} pts")
    fig, axes = C.new_figure(2, 1)
    for ax, kind_ in zip(axes[0], ("plain", "resnet")):
        for depth, ls in zip(depths, ("-", "--")):
            loss = curves[f"{kind_}{depth}"]
            ax.plot(np.convolve(loss, np.ones(every) / every, "valid"), ls, label=f"{depth} layers")
        ax.set(title=f"{'plain' if kind_ == 'plain' else 'residual'} networks", xlabel="SGD step",
               ylabel=f"training loss ({every}-step mean)")
        ax.legend()
    fig.suptitle("Degradation: the deeper plain net trains worse; shortcuts let the deep net learn")
    res["figures"] = [str(C.save_fig(fig, out, "depth.png"))]
    return res
