"""Transforms against their definitions, hand computations and torch (no torchvision)."""
import colorsys
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
from deepgrad.data import ArrayDataset, transforms as T

F = T.functional


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)


def chw(a):
    return a.transpose(2, 0, 1)


# ---------------------------------------------------------------------------------------------
# ToTensor / Normalize
# ---------------------------------------------------------------------------------------------
def test_to_tensor_matches_torchvision_definition(rgb):
    out = T.ToTensor()(rgb)
    ref = torch.from_numpy(rgb).permute(2, 0, 1).contiguous().float().div(255).numpy()
    assert isinstance(out, dg.Tensor) and out.dtype == dg.float32 and out.shape == (3, 9, 11)
    assert out.array.flags.c_contiguous
    np.testing.assert_array_equal(out.array, ref)
    g = T.ToTensor()(rgb[..., 0])
    assert g.shape == (1, 9, 11)
    f = T.ToTensor()(rgb.astype(np.float64))                # non-uint8: layout only, no scaling
    assert f.dtype == dg.float64 and f.array.max() > 1
    batch = np.stack([rgb, rgb[::-1]])
    np.testing.assert_array_equal(T.ToTensor().apply_batch(batch).array,
                                  np.stack([T.ToTensor()(b).array for b in batch]))
    np.testing.assert_array_equal(T.BatchToTensor()(batch).array, T.ToTensor().apply_batch(batch).array)
    t = dg.ones(3, 4, 4)
    assert T.ToTensor()(t) is t


def test_normalize(rgb):
    x = T.ToTensor()(rgb)
    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)
    out = T.Normalize(mean, std)(x)
    ref = torch.from_numpy(x.array.copy())
    ref.sub_(torch.tensor(mean).view(-1, 1, 1)).div_(torch.tensor(std).view(-1, 1, 1))
    np.testing.assert_array_equal(out.array, ref.numpy())
    b = np.stack([x.array, x.array * 0.5])
    np.testing.assert_array_equal(T.BatchNormalize(mean, std)(b)[1], T.Normalize(mean, std)(b[1]))
    with pytest.raises(TypeError, match="ToTensor first"):
        T.Normalize(mean, std)(rgb)
    with pytest.raises(ValueError, match="zero"):
        T.Normalize(mean, (1, 0, 1))
    with pytest.raises(ValueError, match="channels"):
        T.Normalize((0.1, 0.2), (1, 1))(x)


# ---------------------------------------------------------------------------------------------
# flips, pad, crops
# ---------------------------------------------------------------------------------------------
def test_flips_layouts_and_probability(rgb):
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(rgb), rgb[:, ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(1.0)(rgb), rgb[::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(rgb), rgb)
    t = T.ToTensor()(rgb)
    out = T.RandomHorizontalFlip(1.0)(t)
    assert isinstance(out, dg.Tensor)
    np.testing.assert_array_equal(out.array, t.array[..., ::-1])
    flips = sum(not np.array_equal(T.RandomHorizontalFlip(0.5)(rgb), rgb) for _ in range(2000))
    assert 900 < flips < 1100
    dg.manual_seed(3)
    a = [T.RandomHorizontalFlip()(rgb) for _ in range(10)]
    dg.manual_seed(3)
    assert all(np.array_equal(p, q) for p, q in zip(a, [T.RandomHorizontalFlip()(rgb) for _ in range(10)]))


@pytest.mark.parametrize("mode,torch_mode", [("constant", "constant"), ("edge", "replicate"),
                                             ("reflect", "reflect")])
def test_pad_modes_match_torch(mode, torch_mode):
    x = np.random.default_rng(1).random((2, 6, 7)).astype(np.float32)
    pads = (1, 2, 3, 4)                                          # left, top, right, bottom
    out = T.Pad(pads, padding_mode=mode)(x)
    ref = TF.pad(torch.from_numpy(x)[None], (1, 3, 2, 4), mode=torch_mode)[0].numpy()
    np.testing.assert_array_equal(out, ref)


def test_pad_conventions(rgb):
    out = T.Pad((1, 2), fill=(10, 20, 30))(rgb)                 # left/right 1, top/bottom 2
    assert out.shape == (13, 13, 3)
    assert out[0, 0].tolist() == [10, 20, 30] and np.array_equal(out[2:-2, 1:-1], rgb)
    sym = T.Pad(2, padding_mode="symmetric")(np.arange(4, dtype=np.float32).reshape(1, 1, 4))
    assert sym[0, 2].tolist() == [1, 0, 0, 1, 2, 3, 3, 2]


def _windows(padded, th, tw):
    """All crops of (C, H, W) ``padded`` as a dict offset -> window."""
    H, W = padded.shape[-2:]
    return {(i, j): padded[..., i:i + th, j:j + tw] for i in range(H - th + 1) for j in range(W - tw + 1)}


def test_random_crop_is_a_uniform_window():
    x = np.random.default_rng(2).random((2, 6, 6)).astype(np.float32)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    wins = _windows(padded, 6, 6)
    seen = Counter()
    for _ in range(1500):
        out = T.RandomCrop(6, padding=2)(x)
        hits = [k for k, w in wins.items() if np.array_equal(w, out)]
        assert hits
        seen[hits[0]] += 1
    assert len(seen) == 25 and min(seen.values()) > 25              # all 25 offsets, roughly uniform
    assert T.RandomCrop(6)(x).shape == (2, 6, 6)
    out = T.RandomCrop((8, 9), pad_if_needed=True)(x)
    assert out.shape == (2, 8, 9)
    with pytest.raises(ValueError, match="larger than input"):
        T.RandomCrop(7)(x)
    out = T.RandomCrop(4, padding=1, padding_mode="reflect")(np.zeros((4, 4, 3), np.uint8))
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8


def test_center_crop(rgb):
    out = T.CenterCrop((4, 6))(rgb)
    top, left = int(round((9 - 4) / 2)), int(round((11 - 6) / 2))
    np.testing.assert_array_equal(out, rgb[top:top + 4, left:left + 6])
    big = T.CenterCrop(13)(rgb)                                 # larger: zero-padded
    assert big.shape == (13, 13, 3)
    np.testing.assert_array_equal(big[2:11, 1:12], rgb)
    assert big[0].max() == 0


# ---------------------------------------------------------------------------------------------
# resizing
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(7, 9), (20, 31), (13, 8)])
@pytest.mark.parametrize("antialias", [False, True])
def test_resize_bilinear_matches_torch_interpolate(size, antialias):
    x = np.random.default_rng(3).random((3, 13, 17)).astype(np.float32)
    out = T.Resize(size, antialias=antialias)(x)
    ref = TF.interpolate(torch.from_numpy(x)[None], size=size, mode="bilinear", align_corners=False,
                         antialias=antialias)[0].numpy()
    np.testing.assert_allclose(out, ref, atol=2e-6)


def test_resize_nearest_and_sizes(rgb):
    x = np.random.default_rng(4).random((2, 10, 15)).astype(np.float32)
    out = T.Resize((7, 4), interpolation="nearest")(x)
    ref = TF.interpolate(torch.from_numpy(x)[None], size=(7, 4), mode="nearest")[0].numpy()
    np.testing.assert_array_equal(out, ref)
    assert T.Resize(5)(x).shape == (2, 5, 7)                      # smaller edge -> 5, aspect kept
    assert T.Resize(5, max_size=6)(x).shape == (2, 4, 6)
    u = T.Resize((18, 22))(rgb)
    assert u.shape == (18, 22, 3) and u.dtype == np.uint8
    np.testing.assert_allclose(u.astype(float), T.Resize((18, 22))(chw(rgb).astype(np.float32)).transpose(1, 2, 0),
                               atol=0.51)


def test_random_resized_crop_params():
    dg.manual_seed(0)
    for _ in range(200):
        i, j, h, w = T.RandomResizedCrop.get_params((40, 60), (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= i <= 40 - h and 0 <= j <= 60 - w and h > 0 and w > 0
        assert 0.08 * 2400 * 0.8 <= h * w <= 2400
        assert 3 / 4 * 0.8 < w / h < 4 / 3 * 1.25
    # impossible ratios -> the central fallback
    assert T.RandomResizedCrop.get_params((10, 100), (0.9, 1.0), (1.0, 1.0)) == (0, 45, 10, 10)
    out = T.RandomResizedCrop(8)(np.zeros((20, 30, 3), np.uint8))
    assert out.shape == (8, 8, 3)


# ---------------------------------------------------------------------------------------------
# colour
# ---------------------------------------------------------------------------------------------
def test_brightness_contrast_saturation_formulas():
    x = np.random.default_rng(5).random((3, 6, 7)).astype(np.float32)
    np.testing.assert_allclose(F.adjust_brightness(x, 1.7), np.clip(1.7 * x, 0, 1), rtol=1e-6)
    gray = 0.2989 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    np.testing.assert_allclose(F.adjust_contrast(x, 0.3), np.clip(0.3 * x + 0.7 * gray.mean(), 0, 1), atol=1e-6)
    np.testing.assert_allclose(F.adjust_saturation(x, 1.5), np.clip(1.5 * x - 0.5 * gray, 0, 1), atol=1e-6)
    np.testing.assert_allclose(F.adjust_saturation(x, 0.0), np.broadcast_to(gray, x.shape), atol=1e-6)
    u = (x * 255).astype(np.uint8)
    out = F.adjust_brightness(u, 2.0)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.clip(2.0 * u.astype(np.float64), 0, 255).astype(np.uint8))


def test_hue_matches_colorsys():
    x = np.random.default_rng(6).random((3, 4, 5)).astype(np.float64)
    for shift in (0.0, 0.1, -0.37, 0.5):
        out = F.adjust_hue(x, shift)
        for i in range(4):
            for j in range(5):
                h, s, v = colorsys.rgb_to_hsv(*x[:, i, j])
                ref = colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)
                np.testing.assert_allclose(out[:, i, j], ref, atol=1e-9)
    red = np.zeros((3, 1, 1))
    red[0] = 1
    np.testing.assert_allclose(F.adjust_hue(red, 1 / 3)[:, 0, 0], [0, 1, 0], atol=1e-9)
    with pytest.raises(ValueError):
        F.adjust_hue(x, 0.6)


def test_color_jitter_ranges_and_layouts(rgb):
    assert T.ColorJitter(brightness=0.5).brightness == (0.5, 1.5)
    assert T.ColorJitter(brightness=2).brightness == (0.0, 3.0)
    assert T.ColorJitter(hue=0.2).hue == (-0.2, 0.2) and T.ColorJitter().hue is None
    with pytest.raises(ValueError):
        T.ColorJitter(hue=0.7)
    dg.manual_seed(0)
    for _ in range(50):
        order, b, c, s, h = T.ColorJitter.get_params((0.6, 1.4), (0.9, 1.1), None, (-0.1, 0.1))
        assert sorted(order.tolist()) == [0, 1, 2, 3] and 0.6 <= b <= 1.4 and s is None and -0.1 <= h <= 0.1
    np.testing.assert_array_equal(T.ColorJitter()(rgb), rgb)
    fixed = T.ColorJitter(brightness=(2.0, 2.0))(rgb)
    np.testing.assert_array_equal(fixed, np.clip(rgb * 2.0, 0, 255).astype(np.uint8))
    out = T.ColorJitter(0.4, 0.4, 0.4, 0.1)(T.ToTensor()(rgb))
    assert isinstance(out, dg.Tensor) and out.shape == (3, 9, 11)
    assert 0 <= out.array.min() and out.array.max() <= 1
    assert T.ColorJitter(0.4, 0.4, 0.4, 0.1)(rgb[..., :1]).shape == (9, 11, 1)   # grey images work


# ---------------------------------------------------------------------------------------------
# rotation / affine
# ---------------------------------------------------------------------------------------------
def test_rotation_conventions():
    img = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
    np.testing.assert_array_equal(T.rotate(img, 90.0), np.rot90(img, 1, axes=(1, 2)))     # counter-clockwise
    np.testing.assert_array_equal(T.rotate(img, 180.0), img[:, ::-1, ::-1])
    np.testing.assert_array_equal(T.rotate(img, 0.0), img)
    assert T.rotate(np.zeros((1, 6, 10), np.float32), 90.0, expand=True).shape == (1, 10, 6)
    assert T.rotate(np.zeros((1, 10, 10), np.float32), 45.0, expand=True).shape == (1, 16, 16)
    out = T.rotate(np.ones((1, 8, 8), np.float32), 45.0, fill=0.25)
    assert out[0, 0, 0] == 0.25 and out[0, 4, 4] == 1.0
    dg.manual_seed(0)
    r = T.RandomRotation(10)(np.zeros((12, 12, 3), np.uint8))
    assert r.shape == (12, 12, 3) and r.dtype == np.uint8


@pytest.mark.parametrize("interp", ["nearest", "bilinear"])
def test_affine_sampling_matches_torch_grid_sample(interp):
    x = np.random.default_rng(7).random((2, 11, 14))
    H, W = 11, 14
    m = F.inverse_affine_matrix([0.0, 0.0], 30.0, [1.0, -2.0], 1.3, [10.0, 5.0])
    out = F.affine_sample(x, m, None, interp, fill=None)
    theta = torch.tensor(m, dtype=torch.float64).view(1, 2, 3)
    xs = torch.linspace(-W * 0.5 + 0.5, W * 0.5 - 0.5, W, dtype=torch.float64)
    ys = torch.linspace(-H * 0.5 + 0.5, H * 0.5 - 0.5, H, dtype=torch.float64)
    base = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None], torch.ones(H, W, dtype=torch.float64)), -1)
    grid = (base.view(1, -1, 3) @ theta.transpose(1, 2)) / torch.tensor([0.5 * W, 0.5 * H], dtype=torch.float64)
    ref = TF.grid_sample(torch.from_numpy(x)[None], grid.view(1, H, W, 2), mode=interp, padding_mode="zeros",
                         align_corners=False)[0].numpy()
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_affine_translate_and_params():
    img = np.arange(1, 31, dtype=np.float32).reshape(1, 5, 6)
    out = T.affine(img, 0.0, (2, 1), 1.0, (0.0, 0.0))
    ref = np.zeros_like(img)
    ref[:, 1:, 2:] = img[:, :-1, :-2]                              # moved right 2, down 1
    np.testing.assert_array_equal(out, ref)
    dg.manual_seed(0)
    for _ in range(100):
        a, (tx, ty), s, (shx, shy) = T.RandomAffine.get_params((-10, 10), (0.2, 0.1), (0.9, 1.1),
                                                               (-5, 5, -3, 3), (30, 20))
        assert -10 <= a <= 10 and abs(tx) <= 6 and abs(ty) <= 2 and isinstance(tx, int)
        assert 0.9 <= s <= 1.1 and -5 <= shx <= 5 and -3 <= shy <= 3
    out = T.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5)(np.zeros((28, 28), np.uint8))
    assert out.shape == (28, 28) and out.dtype == np.uint8


# ---------------------------------------------------------------------------------------------
# composition helpers
# ---------------------------------------------------------------------------------------------
def test_compose_lambda_randomapply(rgb):
    tf = T.Compose([T.ToTensor(), T.Lambda(lambda t: t * 2), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    out = tf(rgb)
    np.testing.assert_allclose(out.array, (chw(rgb) / 255 * 2 - 0.5) / 0.5, atol=1e-6)
    assert not tf.deterministic and T.Compose([T.ToTensor(), T.Normalize(0, 1)]).deterministic
    np.testing.assert_array_equal(T.RandomApply([T.RandomHorizontalFlip(1.0)], p=0.0)(rgb), rgb)
    np.testing.assert_array_equal(T.RandomApply([T.RandomHorizontalFlip(1.0)], p=1.0)(rgb), rgb[:, ::-1])
    np.testing.assert_allclose(T.Grayscale()(chw(rgb).astype(np.float32))[0],
                               0.2989 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2], rtol=1e-5)
    with pytest.raises(TypeError):
        T.RandomHorizontalFlip()([[1, 2]])


# ---------------------------------------------------------------------------------------------
# batched augmentation
# ---------------------------------------------------------------------------------------------
def test_batch_horizontal_flip_is_per_sample():
    x = np.random.default_rng(8).random((1000, 2, 3, 4)).astype(np.float32)
    out = T.BatchRandomHorizontalFlip(0.5)(dg.from_numpy(x))
    assert isinstance(out, dg.Tensor)
    flipped = np.array([np.array_equal(o, s[..., ::-1]) for o, s in zip(out.array, x)])
    same = np.array([np.array_equal(o, s) for o, s in zip(out.array, x)])
    assert np.all(flipped ^ same) and 420 < flipped.sum() < 580
    np.testing.assert_array_equal(T.BatchRandomHorizontalFlip(0.0)(x), x)


def test_batch_random_crop_windows_and_offsets():
    x = np.random.default_rng(9).random((400, 2, 5, 5)).astype(np.float32)
    out = T.BatchRandomCrop(5, padding=1)(x)
    assert out.shape == (400, 2, 5, 5) and out.flags.c_contiguous
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    offsets = Counter()
    for n in range(400):
        hits = [(i, j) for i in range(3) for j in range(3) if np.array_equal(padded[n, :, i:i + 5, j:j + 5], out[n])]
        assert hits
        offsets[hits[0]] += 1
    assert len(offsets) == 9 and min(offsets.values()) > 20
    out = T.BatchRandomCrop(3, padding=(1, 2), fill=7.0)(x[:10])
    assert out.shape == (10, 2, 3, 3)
    dg.manual_seed(4)
    a = T.BatchRandomCrop(5, padding=2, padding_mode="reflect")(x)
    dg.manual_seed(4)
    np.testing.assert_array_equal(a, T.BatchRandomCrop(5, padding=2, padding_mode="reflect")(x))


def test_array_dataset_batchable_transform(rgb):
    imgs = np.stack([rgb] * 6)
    ds = ArrayDataset(imgs, np.arange(6), transform=T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.2,) * 3)]))
    xb, yb = ds._get_batch(np.array([4, 1]))
    np.testing.assert_array_equal(xb.array, np.stack([ds[4][0].array, ds[1][0].array]))


# ---------------------------------------------------------------------------------------------
# StandardScaler (input standardisation fitted on the training set)
# ---------------------------------------------------------------------------------------------
def test_standard_scaler_per_channel_and_per_pixel():
    x = np.random.default_rng(10).normal(3.0, 2.0, (200, 3, 4, 5)).astype(np.float32)
    x[:, :, 0, 0] = 1.5                                          # a constant pixel
    sc = T.StandardScaler(per="channel").fit(x)
    np.testing.assert_allclose(sc.mean_.ravel(), x.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(sc.std_.ravel(), x.astype(np.float64).std(axis=(0, 2, 3)), rtol=1e-10)
    z = sc.apply_batch(x)
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-5)
    np.testing.assert_allclose(sc(x[0]), z[0], rtol=1e-6)
    pp = T.StandardScaler(per="pixel").fit(x)
    assert pp.mean_.shape == (3, 4, 5)
    np.testing.assert_allclose(pp.std_[:, 0, 0], 1.0)           # zero variance -> scale 1 (sklearn)
    np.testing.assert_allclose(pp.mean_, x.astype(np.float64).mean(axis=0), rtol=1e-10)
    streamed = T.StandardScaler(per="pixel").fit([(s, 0) for s in x], batch_size=37)
    np.testing.assert_allclose(streamed.mean_, pp.mean_, rtol=1e-10)
    np.testing.assert_allclose(streamed.std_, pp.std_, rtol=1e-8)
    np.testing.assert_allclose(sc.inverse_transform(z), x, atol=1e-5)
    norm = sc.to_normalize()
    np.testing.assert_allclose(norm(x[1]), sc(x[1]), atol=1e-5)
    fresh = T.StandardScaler()
    fresh.load_state_dict(sc.state_dict())
    np.testing.assert_array_equal(fresh(x[2]), sc(x[2]))
    with pytest.raises(RuntimeError, match="fit"):
        T.StandardScaler()(x[0])


def test_standard_scaler_on_mnist(mnist_test):
    from deepgrad.data.datasets import MNIST
    train = MNIST(train=True)
    sc = T.StandardScaler(per="channel")
    for k in range(0, 60000, 15000):
        sc.partial_fit(np.asarray(train.data[k:k + 15000, None]).astype(np.float32) / 255)
    np.testing.assert_allclose(sc.mean_.ravel(), [0.130660], atol=1e-6)
    np.testing.assert_allclose(sc.std_.ravel(), [0.308108], atol=1e-6)
    ds = MNIST(train=False, transform=T.Compose([T.ToTensor(), sc]))
    x, _ = ds._get_batch(np.arange(10))                        # deterministic: batch fast path
    np.testing.assert_allclose(x.array[3], ds[3][0].array, rtol=1e-6)


from collections import Counter  # noqa: E402


def test_batch_pipeline_on_raw_loader_batches(rgb):
    from deepgrad.data import DataLoader
    imgs = np.stack([rgb[:8, :8]] * 10)
    aug = T.Compose([T.BatchToTensor(), T.BatchRandomCrop(8, padding=2), T.BatchRandomHorizontalFlip(),
                     T.BatchNormalize((0.5,) * 3, (0.25,) * 3)])
    x, y = next(iter(DataLoader(ArrayDataset(imgs, np.arange(10)), batch_size=4, batch_transform=aug)))
    assert isinstance(x, dg.Tensor) and x.shape == (4, 3, 8, 8) and x.dtype == dg.float32
    assert y.tolist() == [0, 1, 2, 3]
