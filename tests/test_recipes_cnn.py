"""The convolutional recipes: mnist-lenet5, mnist-cnn, cifar10-resnet20, cifar10-quick.

Each recipe builds; its data pipeline gives correctly shaped and normalised batches; CIFAR
augmentation (crop + flip) is applied to training batches only; and a tiny run (a subset of a few
hundred samples, one epoch) goes through ``deepgrad train`` and writes a checkpoint that
``deepgrad evaluate`` reloads with the same test accuracy. CIFAR-10 comes from the shared datasets
folder (``$DEEPGRAD_DATA`` or ``<repo>/../shared/datasets``); its tests skip without it.
"""
import json

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import cli
from deepgrad.data import shared_datasets_dir
from deepgrad.data import transforms as T
from deepgrad.recipes import evaluate_checkpoint, get_recipe, load_trained
from deepgrad.recipes.cnn import CIFAR_MEAN, CIFAR_STD, ToFloatNormalize

CNN_RECIPES = ["mnist-lenet5", "mnist-cnn", "cifar10-resnet20", "cifar10-quick"]


def _cifar_root():
    root = shared_datasets_dir()
    if root is None or not (root / "cifar10").is_dir():
        return None
    return str(root)


needs_cifar = pytest.mark.skipif(_cifar_root() is None, reason="CIFAR-10 not in the shared datasets folder")


def _normalise(u8):
    m = np.asarray(CIFAR_MEAN, np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(CIFAR_STD, np.float32).reshape(1, 3, 1, 1)
    return (u8.astype(np.float32) / 255 - m) / s


# ---- models --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, shape, params", [
    ("mnist-lenet5", (2, 1, 28, 28), 61_706),
    ("mnist-cnn", (2, 1, 28, 28), None),
    ("cifar10-resnet20", (2, 3, 32, 32), 269_722),
    ("cifar10-quick", (2, 3, 32, 32), None),
])
def test_recipe_builds_model(name, shape, params):
    recipe = get_recipe(name)
    assert recipe.name == name and recipe.summary and recipe.reproduces and recipe.target
    hp = recipe.hparams()
    model = recipe.build_model(hp)
    if params is not None:
        assert sum(p.numel() for p in model.parameters()) == params
    model.eval()
    with dg.no_grad():
        y = model(dg.randn(*shape))
    assert tuple(y.shape) == (2, 10)
    assert np.isfinite(y.numpy()).all()


def test_listed_by_cli(capsys):
    assert cli.main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in CNN_RECIPES:
        assert name in out


def test_resnet20_follows_the_paper():
    recipe = get_recipe("cifar10-resnet20")
    hp = recipe.hparams()
    assert (hp["epochs"], hp["batch_size"], hp["lr"], hp["optimizer"], hp["momentum"], hp["weight_decay"]) == \
        (164, 128, 0.1, "sgd", 0.9, 1e-4)
    model = recipe.build_model(hp)
    opt = recipe.build_optimizer(hp, model)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.1, 0.9, 1e-4)
    sched, interval = recipe.build_scheduler(hp, opt, steps_per_epoch=391)
    assert interval == "epoch"
    lrs = []
    for _ in range(hp["epochs"]):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    # 0.1 for epochs 0..81, 0.01 for 82..122, 0.001 from 123 (32k and 48k of 64k iterations)
    assert lrs[81] == pytest.approx(0.1) and lrs[82] == pytest.approx(0.01)
    assert lrs[122] == pytest.approx(0.01) and lrs[123] == pytest.approx(0.001) and lrs[-1] == pytest.approx(0.001)


def test_quick_uses_one_cycle():
    recipe = get_recipe("cifar10-quick")
    hp = recipe.hparams(epochs=2)
    model = recipe.build_model(hp)
    opt = recipe.build_optimizer(hp, model)
    sched, interval = recipe.build_scheduler(hp, opt, steps_per_epoch=10)
    assert interval == "batch"
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = int(np.argmax(lrs))
    assert 0 < peak < 19 and max(lrs) == pytest.approx(hp["lr"], rel=1e-6)
    assert lrs[0] < hp["lr"] / 10 and lrs[-1] < hp["lr"] / 10


# ---- data pipelines --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist-lenet5", "mnist-cnn"])
def test_mnist_pipeline(name):
    recipe = get_recipe(name)
    hp = recipe.hparams(subset=500, batch_size=100)
    splits = recipe.build_data(hp)
    train, _, test = recipe.build_loaders(hp, splits)
    x, y = next(iter(train))
    assert tuple(x.shape) == (100, 1, 28, 28) and x.dtype == np.float32
    assert tuple(y.shape) == (100,) and y.dtype == np.int64
    xs = splits.train.tensors[0].numpy() if hasattr(splits.train, "tensors") else x.numpy()
    assert abs(float(xs.mean())) < 0.1 and abs(float(xs.std()) - 1) < 0.1    # standardised
    xt, _ = next(iter(test))
    assert tuple(xt.shape[1:]) == (1, 28, 28)


@needs_cifar
def test_cifar_pipeline_normalises_and_augments_training_batches_only():
    recipe = get_recipe("cifar10-quick")
    hp = recipe.hparams(subset=256, batch_size=64)
    splits = recipe.build_data(hp, _cifar_root())
    train, val, test = recipe.build_loaders(hp, splits)
    assert val is None and len(splits.train) == 256 and len(splits.test) == 256
    raw_test = splits.test.tensors[0].numpy()
    assert raw_test.dtype == np.uint8 and raw_test.shape == (256, 3, 32, 32)

    # test batches: deterministic, exactly normalised, no augmentation
    xt, yt = next(iter(test))
    assert tuple(xt.shape) == (256, 3, 32, 32) and xt.dtype == np.float32 and yt.dtype == np.int64
    np.testing.assert_allclose(xt.numpy(), _normalise(raw_test), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(next(iter(test))[0].numpy(), xt.numpy())
    per_channel = xt.numpy().mean(axis=(0, 2, 3))
    assert np.all(np.abs(per_channel) < 0.2)
    assert np.all(np.abs(xt.numpy().std(axis=(0, 2, 3)) - 1) < 0.2)
    assert getattr(test.batch_transform, "deterministic", False)

    # training batches: shape/dtype, and each sample is a 4-pixel-padded crop, maybe flipped
    x, y = next(iter(train))
    assert tuple(x.shape) == (64, 3, 32, 32) and x.dtype == np.float32 and tuple(y.shape) == (64,)
    assert not getattr(train.batch_transform, "deterministic", True)
    dg.manual_seed(3)
    u8 = raw_test[:32]
    aug = train.batch_transform(dg.Tensor._make(u8.copy())).numpy()
    pad_value = _normalise(np.zeros((1, 3, 1, 1), np.uint8))
    padded = np.broadcast_to(pad_value, (32, 3, 40, 40)).copy()
    padded[:, :, 4:36, 4:36] = _normalise(u8)
    changed = 0
    for k in range(32):
        found = None
        for flip in (False, True):
            src = padded[k][..., ::-1] if flip else padded[k]
            for i in range(9):
                for j in range(9):
                    if np.allclose(src[:, i:i + 32, j:j + 32], aug[k], atol=1e-5):
                        found = (flip, i, j)
                        break
                if found:
                    break
            if found:
                break
        assert found is not None, f"sample {k} is not a padded crop (or its mirror image)"
        changed += found != (False, 4, 4)
    assert changed >= 16        # 1 - (1/2)(1/81) of the samples move or flip


def test_to_float_normalize_on_arrays_and_tensors():
    u8 = np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    t = ToFloatNormalize()
    np.testing.assert_allclose(t(u8), _normalise(u8), rtol=1e-5, atol=1e-5)
    out = t(dg.Tensor._make(u8))
    assert isinstance(out, dg.Tensor) and out.dtype == np.float32
    # the same as torchvision's ToTensor + Normalize order: BatchToTensor then BatchNormalize
    ref = T.BatchNormalize(CIFAR_MEAN, CIFAR_STD)(T.BatchToTensor()(u8.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(out.numpy(), np.asarray(ref.numpy() if isinstance(ref, dg.Tensor) else ref),
                               rtol=1e-5, atol=1e-5)


def test_cifar_preprocess_of_an_image_file_array():
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = get_recipe("cifar10-quick").preprocess(img)
    assert tuple(x.shape) == (1, 3, 32, 32)
    np.testing.assert_allclose(x.numpy(), _normalise(img.transpose(2, 0, 1)[None]), rtol=1e-5, atol=1e-5)
    assert tuple(get_recipe("mnist-lenet5").preprocess(np.zeros((28, 28), np.uint8)).shape) == (1, 1, 28, 28)


# ---- a tiny run through `deepgrad train` and `deepgrad evaluate` -----------------------------------
@pytest.mark.parametrize("name, subset, batch", [
    ("mnist-lenet5", 300, 100),
    ("mnist-cnn", 128, 64),
    pytest.param("cifar10-quick", 128, 64, marks=needs_cifar),
    pytest.param("cifar10-resnet20", 64, 32, marks=needs_cifar),
])
def test_tiny_run_checkpoint_roundtrip(name, subset, batch, tmp_path, capsys):
    out = tmp_path / name
    data = ["--data", _cifar_root()] if name.startswith("cifar") else []
    assert cli.main(["train", name, "--subset", str(subset), "--epochs", "1", "--batch-size", str(batch),
                     "--out", str(out), "--verbose", "0", *data]) == 0
    text = capsys.readouterr().out
    assert f"{name}: test loss" in text and "after 1 epochs" in text
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 1 and result["hparams"]["subset"] == subset
    ckpt = out / "checkpoint.npz"
    assert ckpt.exists()

    recipe, hp, model = load_trained(str(ckpt))
    assert recipe.name == name and not model.training
    assert cli.main(["evaluate", str(ckpt), "--json", *data]) == 0
    reloaded = json.loads(capsys.readouterr().out)
    assert reloaded["recipe"] == name
    assert reloaded["accuracy"] == pytest.approx(result["test"]["accuracy"], abs=1e-12)
    assert reloaded["loss"] == pytest.approx(result["test"]["loss"], rel=1e-5)
