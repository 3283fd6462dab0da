"""deepgrad.vision (torchvision's names): make_grid/save_image layouts, FakeData, ImageFolder."""
import numpy as np
import pytest

import deepgrad as dg
from deepgrad.vision import datasets, transforms, utils


def test_make_grid_layout_matches_torchvision_rule():
    # torchvision: nrow images per row, `padding` pixels of pad_value around and between tiles,
    # grey images repeated to three channels.
    rng = np.random.default_rng(0)
    x = rng.random((5, 1, 3, 4)).astype(np.float32)
    g = utils.make_grid(dg.tensor(x), nrow=2, padding=1, pad_value=0.5).numpy()
    assert g.shape == (3, 1 + 3 * (3 + 1), 1 + 2 * (4 + 1))
    for k in range(5):
        r, c = divmod(k, 2)
        tile = g[:, 1 + r * 4: 1 + r * 4 + 3, 1 + c * 5: 1 + c * 5 + 4]
        np.testing.assert_array_equal(tile, np.repeat(x[k], 3, axis=0))
    assert np.all(g[:, 0, :] == 0.5) and np.all(g[:, :, 0] == 0.5)
    assert np.all(g[:, 9:, 6:] == 0.5)  # the empty sixth cell


def test_make_grid_normalize_and_single_image():
    x = np.array([[[[-2.0, 0.0], [2.0, 6.0]]]], dtype=np.float32)   # (1, 1, 2, 2)
    g = utils.make_grid(dg.tensor(x), normalize=True).numpy()
    assert g.shape == (3, 2, 2)                                       # one image: no padding
    np.testing.assert_allclose(g[0], [[0.0, 0.25], [0.5, 1.0]], rtol=1e-6)
    g = utils.make_grid(dg.tensor(x), normalize=True, value_range=(0.0, 2.0)).numpy()
    np.testing.assert_allclose(g[0], [[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="make_grid"):
        utils.make_grid(dg.zeros(2, 2, 2, 2, 2))


def test_save_image_round_trip(tmp_path):
    from PIL import Image
    x = dg.tensor(np.linspace(0, 1, 2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4))
    p = tmp_path / "grid.png"
    utils.save_image(x, p, nrow=2, padding=0)
    img = np.asarray(Image.open(p))
    assert img.shape == (4, 8, 3)
    expect = np.clip(x.numpy() * 255 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(img[:, :4], expect[0].transpose(1, 2, 0))
    np.testing.assert_array_equal(img[:, 4:], expect[1].transpose(1, 2, 0))
    assert [f.name for f in tmp_path.iterdir()] == ["grid.png"]      # no temporary left behind
    with pytest.raises(ValueError, match="format"):
        utils.save_image(x, tmp_path / "grid.unknownext")


def test_fakedata_is_deterministic_and_transformable():
    ds = datasets.FakeData(size=4, image_size=(3, 5, 6), num_classes=3, transform=transforms.ToTensor())
    x0, y0 = ds[1]
    x1, y1 = ds[1]
    assert x0.shape == (3, 5, 6) and x0.dtype == dg.float32 and 0 <= y0 < 3
    np.testing.assert_array_equal(x0.numpy(), x1.numpy())
    assert not np.array_equal(ds[0][0].numpy(), x0.numpy())
    with pytest.raises(IndexError, match="FakeData"):
        ds[4]
    batch = next(iter(dg.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 3, 5, 6)


def test_image_folder(tmp_path):
    from PIL import Image
    for cls, colour in (("cat", 10), ("dog", 200)):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((4, 5, 3), colour + i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    ds = datasets.ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.targets == [0, 0, 1, 1]
    img, label = ds[3]
    assert img.shape == (4, 5, 3) and img.dtype == np.uint8 and label == 1 and img[0, 0, 0] == 201
    (tmp_path / "cat" / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="bad.png"):
        datasets.ImageFolder(tmp_path)[2]
