"""Transfer learning (deck 001): "if small dataset: fix all weights (treat the CNN as a fixed feature
extractor), retrain only the classifier; if medium sized, fine-tune".

A CNN is trained on CIFAR-10's classes 0-4 (airplane, automobile, bird, cat, deer). The task is
then classes 5-9 (dog, frog, horse, ship, truck) with few labels per class, solved three ways on
the same labelled images and the same budget:

(a) frozen features + new head: ``models.transfer.freeze`` the network, ``replace_head`` with a
    fresh 5-way ``Linear``, train only it;
(b) fine-tune all layers from the pretrained weights with a smaller learning rate for the body
    (``models.transfer.param_groups``);
(c) train the same architecture from scratch.

Quick mode: 16x16 images, 1,500 pretraining images, 20 labels per new class.
"""
from __future__ import annotations

import numpy as np

from . import _b_common as C

NAME = "transfer"
DECKS = ("001",)
SUMMARY = "CIFAR-10 classes 0-4 -> 5-9 with few labels: frozen features + new head, fine-tuning, vs from scratch"


class _Net:
    @staticmethod
    def build(size, width, seed):
        import deepgrad as dg
        from .. import nn

        class SmallCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten())
                self.fc = nn.Linear(4 * width, 5)

            def forward(self, x):
                return self.fc(self.features(x))

        dg.manual_seed(seed)
        return SmallCNN()


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    import deepgrad as dg
    from ..models.transfer import freeze, param_groups, replace_head
    out = C.out_dir(NAME, out)
    if quick:
        size, n_pre, pre_steps, per_class, steps, n_test, width = 16, 1500, 100, 20, 50, 300, 12
    else:
        size, n_pre, pre_steps, per_class, steps, n_test, width = 32, 10000, 4000, 100, 600, 2000, 32
    src, dst = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
    xa, ya = C.cifar_arrays(n_pre, train=True, classes=src, size=size)
    xb_all, yb_all = C.cifar_arrays(per_class * 5 * 3, train=True, classes=dst, size=size)
    pick = np.concatenate([np.flatnonzero(yb_all == k)[:per_class] for k in range(5)])
    xb, yb = xb_all[pick], yb_all[pick]
    xt, yt = C.cifar_arrays(n_test, train=False, classes=dst, size=size)
    mean, std = xa.mean((0, 2, 3), keepdims=True), xa.std((0, 2, 3), keepdims=True)
    xa, xb, xt = [((x - mean) / std).astype(np.float32) for x in (xa, xb, xt)]

    C.print_header(f"pretraining on classes 0-4: {n_pre} images ({size}x{size}), {pre_steps} steps")
    base = _Net.build(size, width, seed)
    opt = dg.optim.SGD(base.parameters(), lr=0.05, momentum=0.9)
    C.train_steps(base, opt, xa, ya, pre_steps, batch_size=50, seed=seed)
    res = {"pretrain_test_acc": None}
    xs, ys = C.cifar_arrays(n_test, train=False, classes=src, size=size)
    res["pretrain_test_acc"] = C.accuracy(base, ((xs - mean) / std).astype(np.float32), ys)
    C.print_row("accuracy on classes 0-4 (test)", f"{100 * res['pretrain_test_acc']:.1f}%")
    state = {k: v.detach().clone() for k, v in base.state_dict().items()}

    C.print_header(f"classes 5-9 with {per_class} labels each ({5 * per_class} images), {steps} steps each")
    curves = {}
    for mode in ("frozen", "finetune", "scratch"):
        model = _Net.build(size, width, seed + 7)
        if mode != "scratch":
            model.load_state_dict(state)
            replace_head(model, 5)
        if mode == "frozen":
            freeze(model, except_=("fc",))
            opt = dg.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
        elif mode == "finetune":
            opt = dg.optim.SGD(param_groups(model, {"fc": 0.05}, default_lr=0.005), lr=0.05, momentum=0.9)
        else:
            opt = dg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        acc = []
        if mode == "frozen":        # a frozen body keeps its batch-norm statistics too
            model.features.eval()
            _train = model.train
            model.train = lambda mode=True: (_train(mode), model.features.eval())[0]
        C.train_steps(model, opt, xb, yb, steps, batch_size=min(50, len(xb)), seed=seed, every=max(1, steps // 5),
                      callback=lambda s: acc.append(C.accuracy(model, xt, yt)) and False)
        res[f"{mode}_acc"] = acc[-1]
        res[f"{mode}_trainable"] = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
        curves[mode] = acc
        C.print_row(f"{mode}: test accuracy on classes 5-9", f"{100 * acc[-1]:.1f}%")
        C.print_row(f"{mode}: trainable parameters", res[f"{mode}_trainable"])
    fig, ax = C.new_figure()
    ax = ax[0, 0]
    every = max(1, steps // 5)
    labels = {"frozen": "frozen features + new head", "finetune": "fine-tune all (body lr / 10)",
              "scratch": "from scratch"}
    for mode, acc in curves.items():
        ax.plot(np.arange(1, len(acc) + 1) * every, acc, marker="o", label=labels[mode])
    ax.axhline(0.2, color="gray", ls=":", label="chance (5 classes)")
    ax.set(title=f"Transfer CIFAR-10 0-4 -> 5-9, {per_class} labels/class", xlabel="SGD step",
           ylabel="test accuracy (classes 5-9)")
    ax.legend()
    res["figures"] = [str(C.save_fig(fig, out, "transfer.png"))]
    return res
