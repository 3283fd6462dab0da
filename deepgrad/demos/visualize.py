"""What a trained network looks at (decks 001, 003): "what sort of images maximise the activity of a
given neuron?"

A LeNet-5 (``deepgrad.models.LeNet5``) is trained on MNIST, then:

* its six first-layer 5x5 filters are drawn (and, at the end, the 16 RGB filters of a small CIFAR-10
  CNN's first layer);
* activation maximisation: starting from a grey image, gradient ascent on the input raises one
  class's logit (or the mean activation of one channel of the second convolution), with the
  regularisers that make such images readable — random jitter (the image is shifted by a pixel or
  two before each step), L2 decay of the pixels and a light blur every few steps;
* saliency maps (Simonyan et al. 2014): ``|d score / d pixel|`` for a few test digits;
* Zeiler & Fergus (2014)-style deconvolution: the strongest activation of a conv2 channel is
  projected back to pixel space through ReLU, transposed convolutions with the same weights and
  max-unpooling that puts each value back where the forward max-pool found its maximum (the
  "switches", ``return_indices=True`` and ``F.max_unpool2d``).
"""
from __future__ import annotations

import numpy as np

from . import _b_common as C

NAME = "visualize"
DECKS = ("001", "003")
SUMMARY = ("first-layer filters of LeNet-5 and a CIFAR CNN, activation maximisation, saliency maps and Zeiler & "
           "Fergus deconvolution")


def _blur(a):
    """A 3x3 box-ish blur of (N, 1, H, W) arrays (weights 1-2-1), edges replicated."""
    p = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    k = np.array([1, 2, 1], np.float32) / 4
    h = k[0] * p[..., :, :-2] + k[1] * p[..., :, 1:-1] + k[2] * p[..., :, 2:]
    return (k[0] * h[..., :-2, :] + k[1] * h[..., 1:-1, :] + k[2] * h[..., 2:, :]).astype(np.float32)


def activation_maximisation(score_fn, n, shape, steps=60, lr=0.5, decay=1e-2, jitter=2, seed=0, init_std=0.3):
    """Images (n, *shape) maximising ``score_fn(batch) -> (n,) Tensor`` (row i for target i) by
    gradient ascent with jitter, L2 decay and blur. Returns ``(images, first_scores, last_scores)``.

    The start is noise of ``init_std`` around zero (the data's mean after normalisation): a nearly
    flat start can sit where every first-layer ReLU is off -- a well-trained LeNet-5's conv1 biases
    end negative -- and there the input gradient is exactly zero and ascent never moves."""
    import deepgrad as dg
    rng = np.random.default_rng(seed)
    x = (init_std * rng.standard_normal((n, *shape))).astype(np.float32)
    first = None
    for step in range(steps):
        dy, dx = rng.integers(-jitter, jitter + 1, 2)
        xt = dg.tensor(np.roll(x, (dy, dx), axis=(-2, -1)), requires_grad=True)
        s = score_fn(xt)
        if first is None:
            first = s.detach().numpy().copy()
        s.sum().backward()
        g = np.roll(xt.grad.numpy(), (-dy, -dx), axis=(-2, -1))
        g /= np.abs(g).mean(axis=tuple(range(1, g.ndim)), keepdims=True) + 1e-8
        x = (x + lr * 0.1 * g) * (1 - decay)
        if step % 4 == 3:
            x = _blur(x)
        x = np.clip(x, -0.5, 3.0)
    with dg.no_grad():
        last = score_fn(dg.tensor(x)).numpy()
    return x, first, last


def deconvolve(model, image, channel):
    """Zeiler & Fergus's deconvnet for LeNet-5's second convolution: the pixel-space projection
    (1, 1, 28, 28) of the strongest activation of ``channel`` for ``image`` (1, 1, 28, 28)."""
    import deepgrad as dg
    from ..nn import functional as F
    conv1, conv2 = model.features[0], model.features[3]
    with dg.no_grad():
        a1 = F.relu(conv1(dg.tensor(image)))
        p1, switches = F.max_pool2d(a1, 2, 2, return_indices=True)
        a2 = F.relu(conv2(p1)).numpy()
        keep = np.zeros_like(a2)
        c = a2[0, channel]
        i, j = np.unravel_index(np.argmax(c), c.shape)
        keep[0, channel, i, j] = c[i, j]                                   # only the top activation
        r = F.conv_transpose2d(F.relu(dg.tensor(keep)), conv2.weight)       # undo conv2
        r = F.max_unpool2d(F.relu(r), switches, 2, 2, output_size=a1.shape[-2:])   # switches
        r = F.conv_transpose2d(F.relu(r), conv1.weight, padding=2)          # undo conv1 (padding 2)
    return r.numpy(), float(c[i, j])


def _show_row(axes, images, titles, cmap="gray"):
    for ax, im, t in zip(axes, images, titles):
        m = float(np.abs(im).max()) or 1.0
        ax.imshow(im, cmap=cmap, interpolation="nearest", **({"vmin": -m, "vmax": m} if cmap == "bwr" else {}))
        ax.set_title(t, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])


def run(quick: bool = False, out=None, seed: int = 0) -> dict:
    import deepgrad as dg
    from ..models import LeNet5
    from ..nn import functional as F
    out = C.out_dir(NAME, out)
    n_train, steps, am_steps = (1000, 60, 30) if quick else (60000, 3000, 200)
    xtr, ytr, xte, yte = C.mnist_arrays(n_train, 1000)
    dg.manual_seed(seed)
    model = LeNet5()
    opt = dg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    C.print_header(f"LeNet-5 on {n_train} MNIST digits, {steps} SGD steps")
    C.train_steps(model, opt, xtr, ytr, steps, batch_size=64, seed=seed)
    acc = C.accuracy(model, xte, yte)
    C.print_row("LeNet-5 test accuracy", f"{100 * acc:.2f}%", "99.05% (LeCun et al. 1998, full training)")
    model.eval()
    res = {"test_acc": acc}
    figs = []

    # first-layer filters
    w = model.features[0].weight.detach().numpy()[:, 0]
    fig, axes = C.new_figure(6, 1, size=(1.3, 1.6))
    _show_row(axes[0], w, [f"filter {i}" for i in range(6)], cmap="bwr")
    fig.suptitle("LeNet-5 first-layer 5x5 filters (red +, blue -)")
    figs.append(C.save_fig(fig, out, "visualize_filters.png"))
    res["filter_shape"] = tuple(w.shape)

    # activation maximisation for the ten classes
    for p in model.parameters():
        p.requires_grad_(False)
    idx = dg.arange(10)
    imgs, first, last = activation_maximisation(lambda x: model(x)[idx, idx], 10, (1, 28, 28), am_steps, seed=seed)
    with dg.no_grad():
        pred = model(dg.tensor(imgs)).argmax(1).numpy()
    res["am_logit_gain"] = float(np.mean(last - first))
    res["am_classified_as_target"] = int((pred == np.arange(10)).sum())
    C.print_row("activation maximisation: mean logit gain", res["am_logit_gain"])
    C.print_row("images classified as their target class", f"{res['am_classified_as_target']}/10")
    fig, axes = C.new_figure(10, 1, size=(1.2, 1.5))
    _show_row(axes[0], imgs[:, 0], [f"class {k}" for k in range(10)])
    fig.suptitle("Activation maximisation: inputs that maximise each class logit (jitter + L2 + blur)")
    figs.append(C.save_fig(fig, out, "visualize_class_maximisation.png"))

    # ... and for the 16 channels of the second convolution
    feats = model.features[:4]
    ch = dg.arange(16)
    imgs2, f2, l2 = activation_maximisation(lambda x: feats(x).mean((2, 3))[ch, ch], 16, (1, 28, 28), am_steps,
                                            seed=seed + 1)
    res["am_channel_gain"] = float(np.mean(l2 - f2))
    C.print_row("conv2 channels: mean activation gain", res["am_channel_gain"])
    fig, axes = C.new_figure(8, 2, size=(1.2, 1.4))
    for k in range(16):
        _show_row([axes[k // 8, k % 8]], [imgs2[k, 0]], [f"conv2 ch {k}"])
    fig.suptitle("Activation maximisation: inputs that excite each conv2 channel")
    figs.append(C.save_fig(fig, out, "visualize_channel_maximisation.png"))

    # saliency maps
    x = dg.tensor(xte[:6], requires_grad=True)
    scores = model(x)
    top = scores.argmax(1)
    scores[dg.arange(6), top].sum().backward()
    sal = np.abs(x.grad.numpy()[:, 0])
    res["saliency_nonzero"] = float((sal > 0).mean())
    fig, axes = C.new_figure(6, 2, size=(1.3, 1.5))
    _show_row(axes[0], xte[:6, 0], [f"digit (label {yte[k]})" for k in range(6)])
    _show_row(axes[1], sal, [f"saliency (pred {int(t)})" for t in top.numpy()], cmap="hot")
    fig.suptitle("Saliency maps: |d class score / d pixel|")
    figs.append(C.save_fig(fig, out, "visualize_saliency.png"))

    # Zeiler & Fergus deconvolution of the top activation of a few conv2 channels
    chans = [0, 3, 7, 11]
    recon, act = [], []
    for c in chans:
        m = min(200, len(xte))
        with dg.no_grad():
            a = feats(dg.tensor(xte[:m])).numpy()[:, c].reshape(m, -1).max(1)
        best = int(np.argmax(a))                       # the test digit that excites channel c most
        r, v = deconvolve(model, xte[best:best + 1], c)
        recon.append((xte[best, 0], r[0, 0], c, best))
        act.append(v)
    res["deconv_shape"] = tuple(r.shape)
    res["deconv_nonzero"] = float(np.mean([(np.abs(r) > 1e-8).mean() for _, r, _, _ in recon]))
    C.print_row("deconvnet projections: nonzero pixel fraction", res["deconv_nonzero"])
    fig, axes = C.new_figure(len(chans), 2, size=(1.5, 1.6))
    _show_row(axes[0], [d for d, _, _, _ in recon], [f"top digit of ch {c}" for _, _, c, _ in recon])
    _show_row(axes[1], [r for _, r, _, _ in recon], [f"deconv ch {c}" for _, _, c, _ in recon], cmap="bwr")
    fig.suptitle("Zeiler & Fergus deconvolution (max-unpooling with switches)")
    figs.append(C.save_fig(fig, out, "visualize_deconvolution.png"))
    for p in model.parameters():
        p.requires_grad_(True)
    figs.append(_cifar_filters(quick, seed, out, res))
    res["figures"] = [str(p) for p in figs]
    return res


def _cifar_filters(quick, seed, out, res):
    """First-layer 5x5 RGB filters of a small CNN trained on CIFAR-10 (quick: 16x16 images, a few
    dozen steps, so the filters are only starting to form; full: 32x32, 4,000 steps)."""
    import deepgrad as dg
    from .. import nn
    size, n, steps = (16, 500, 40) if quick else (32, 10000, 4000)
    x, y = C.cifar_arrays(n, train=True, size=size)
    x = ((x - x.mean((0, 2, 3), keepdims=True)) / x.std((0, 2, 3), keepdims=True)).astype(np.float32)
    dg.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(32, 10))
    C.train_steps(net, dg.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), x, y, steps, batch_size=50, seed=seed)
    res["cifar_train_acc"] = C.accuracy(net, x, y)
    C.print_row(f"CIFAR CNN after {steps} steps: training accuracy", f"{100 * res['cifar_train_acc']:.1f}%")
    w = net[0].weight.detach().numpy().transpose(0, 2, 3, 1)           # (16, 5, 5, 3)
    lo, hi = w.min((1, 2, 3), keepdims=True), w.max((1, 2, 3), keepdims=True)
    w = (w - lo) / np.maximum(hi - lo, 1e-12)
    fig, axes = C.new_figure(8, 2, size=(1.1, 1.3))
    for k in range(16):
        ax = axes[k // 8, k % 8]
        ax.imshow(w[k], interpolation="nearest")
        ax.set_title(f"filter {k}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"First-layer 5x5 RGB filters of a CIFAR-10 CNN ({steps} steps; each scaled to its range)")
    return C.save_fig(fig, out, "visualize_cifar_filters.png")
