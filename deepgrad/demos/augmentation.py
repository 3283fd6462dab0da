"""Data augmentation (deck 001): "changing the pixels without changing the label" — horizontal
flips, random crops (pad 4, crop back) and colour jitter on CIFAR-10, with deepgrad's
``BatchRandomHorizontalFlip``, ``BatchRandomCrop`` and ``ColorJitter``.

A small CNN is trained on a few CIFAR-10 training images with and without augmentation on the same
budget. Without it the network memorises its few images (high training accuracy, a large gap to the
test accuracy); with it each image is seen differently every time, so the training set is harder to
memorise and the gap shrinks. The figure shows a grid of augmented copies of a few images.
Quick mode: 16x16 images, 500 training images, 150 steps.
"""
from __future__ import annotations

import numpy as np

from . import _b_common as C

NAME = "augmentation"
DECKS = ("001",)
SUMMARY = "a small CIFAR-10 CNN with and without flips, crops and colour jitter; a grid of augmented images"


def make_augment(size):
    """``augment(batch, rng)`` for float (N, 3, H, W) batches: flip, pad-and-crop, colour jitter."""
    from ..data.transforms import BatchRandomCrop, BatchRandomHorizontalFlip, ColorJitter
    flip = BatchRandomHorizontalFlip(0.5)
    crop = BatchRandomCrop(size, padding=size // 8, padding_mode="reflect")
    jitter = ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3)

    def augment(xb, rng=None):
        xb = np.asarray(crop(flip(np.asarray(xb, dtype=np.float32))))
        return np.stack([np.clip(np.asarray(jitter(im)), 0, 1) for im in xb]).astype(np.float32)
    return augment


def _cnn(size, seed, width=16):
    import deepgrad as dg
    from .. import nn
    dg.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * (size // 4) ** 2, 64), nn.ReLU(), nn.Linear(64, 10))


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    import deepgrad as dg
    out = C.out_dir(NAME, out)
    if quick:
        size, n_train, n_test, steps, width = 16, 500, 500, 100, 8
    else:
        size, n_train, n_test, steps, width = 32, 10000, 2000, 6000, 32
    xtr, ytr = C.cifar_arrays(n_train, train=True, size=size)
    xte, yte = C.cifar_arrays(n_test, train=False, size=size)
    mean = xtr.mean((0, 2, 3), keepdims=True)
    std = xtr.std((0, 2, 3), keepdims=True)
    norm = lambda x: ((x - mean) / std).astype(np.float32)     # noqa: E731
    dg.manual_seed(seed)
    augment = make_augment(size)

    # the grid: each row one image, then augmented copies
    k, copies = 6, 7
    rows = [np.concatenate([xtr[i:i + 1], augment(np.repeat(xtr[i:i + 1], copies, 0))]) for i in range(k)]
    pad = 2
    H = size + pad
    grid = np.ones((k * H, (copies + 1) * H, 3), np.float32)
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            grid[r * H:r * H + size, c * H:c * H + size] = np.clip(im.transpose(1, 2, 0), 0, 1)
    fig, ax = C.new_figure(size=(6.0, 4.8))
    ax = ax[0, 0]
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([H * c + size / 2 for c in range(copies + 1)],
                  ["original"] + [f"aug {c}" for c in range(1, copies + 1)], fontsize=7)
    ax.set_yticks([H * r + size / 2 for r in range(k)], [C.CIFAR_CLASSES[ytr[r]] for r in range(k)], fontsize=8)
    ax.set(xlabel="copy", ylabel="image (class)")
    fig.suptitle("CIFAR-10 with random flips, crops and colour jitter")
    figs = [C.save_fig(fig, out, "augmentation_grid.png")]
    res = {"augmented_changed": float(np.mean([np.abs(r[1:] - r[:1]).mean() for r in rows]))}

    C.print_header(f"CNN on {n_train} CIFAR-10 images ({size}x{size}), {steps} SGD steps, with/without augmentation")
    for aug in (False, True):
        model = _cnn(size, seed, width)
        opt = dg.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        dg.manual_seed(seed + 1)
        tfm = (lambda xb, rng: norm(augment(xb, rng))) if aug else (lambda xb, rng: norm(xb))
        losses = C.train_steps(model, opt, xtr, ytr, steps, batch_size=50, seed=seed, augment=tfm)
        tr = C.accuracy(model, norm(xtr), ytr)
        te = C.accuracy(model, norm(xte), yte)
        key = "aug" if aug else "plain"
        res.update({f"train_acc_{key}": tr, f"test_acc_{key}": te, f"final_loss_{key}": float(np.mean(losses[-10:]))})
        C.print_row(f"{'with' if aug else 'without'} augmentation: train / test accuracy",
                    f"{100 * tr:.1f}% / {100 * te:.1f}%")
        res[f"losses_{key}"] = losses
    for key, word in (("plain", "without"), ("aug", "with")):
        gap = res[f"train_acc_{key}"] - res[f"test_acc_{key}"]
        C.print_row(f"generalisation gap (train - test), {word}", f"{100 * gap:.1f} pts")
    fig, ax = C.new_figure()
    ax = ax[0, 0]
    for key, lab in (("plain", "no augmentation"), ("aug", "flips + crops + jitter")):
        ls = res.pop(f"losses_{key}")
        ax.plot(np.convolve(ls, np.ones(10) / 10, "valid"), label=lab)
    ax.set(title="CIFAR-10 CNN: training loss", xlabel="SGD step", ylabel="cross-entropy (10-step mean)")
    ax.legend()
    figs.append(C.save_fig(fig, out, "augmentation_loss.png"))
    res["figures"] = [str(p) for p in figs]
    return res
