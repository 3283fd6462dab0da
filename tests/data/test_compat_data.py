"""PyTorch-compatibility details of the data pipeline: huge RandomSampler epochs drawn lazily,
``get_worker_info``, the ``deepgrad.utils.data`` import path, torchvision-like MNIST/CIFAR
attributes, ``default_collate`` against ``torch.utils.data.default_collate``, and the zoo's
``weights=`` / ``pretrained=`` arguments."""
import collections
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import deepgrad as dg
from deepgrad.data import sampler as sampler_mod


# ---- RandomSampler: a 10**10-sample epoch is drawn lazily ---------------------------------------
def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("replacement", [True, False])
def test_huge_random_sampler_does_not_allocate_the_epoch(replacement):
    ds = dg.data.TensorDataset(dg.arange(1000))
    s = dg.data.RandomSampler(ds, replacement=replacement, num_samples=10 ** 10)
    assert len(s) == 10 ** 10
    loader = dg.data.DataLoader(ds, batch_size=256, sampler=s)
    assert len(loader) == -(-10 ** 10 // 256)
    assert len(loader) == len(tud.DataLoader(tud.TensorDataset(torch.arange(1000)), batch_size=256,
                                             sampler=tud.RandomSampler(range(1000), replacement,
                                                                       10 ** 10)))
    got = []

    def run():
        it = iter(loader)
        for _ in range(300):                      # crosses the lazy chunks' boundaries
            got.append(next(it)[0].array)
        it.close()
        first = iter(s)
        got.append(np.array([next(first) for _ in range(10)]))

    peak = _peak_bytes(run)
    assert peak < 64 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MiB"   # 10**10 int64 would be 80 GB
    batches = np.stack(got[:300])
    assert batches.shape == (300, 256) and batches.min() >= 0 and batches.max() < 1000
    if not replacement:                           # permutations of the data, back to back
        flat = batches.reshape(-1)[:76000]
        for k in range(76):
            assert sorted(flat[k * 1000:(k + 1) * 1000]) == list(range(1000))
    else:
        counts = np.bincount(batches.reshape(-1), minlength=1000)
        assert counts.min() > 30 and counts.max() < 130      # ~76.8 each


def test_huge_random_sampler_is_seeded_and_prefetch_independent():
    ds = dg.data.TensorDataset(dg.arange(50))

    def first_batches(prefetch, num_workers, seed=3):
        dg.manual_seed(seed)
        s = dg.data.RandomSampler(ds, replacement=True, num_samples=10 ** 10)
        it = iter(dg.data.DataLoader(ds, batch_size=1000, sampler=s, prefetch=prefetch,
                                     num_workers=num_workers))
        out = [next(it)[0].array for _ in range(70)]
        it.close()
        return np.concatenate(out)

    a = first_batches(0, 0)
    np.testing.assert_array_equal(a, first_batches(4, 3))
    assert not np.array_equal(a, first_batches(0, 0, seed=4))
    g1, g2 = dg.Generator().manual_seed(7), dg.Generator().manual_seed(7)
    s1 = dg.data.RandomSampler(ds, replacement=True, num_samples=10 ** 12, generator=g1)
    s2 = dg.data.RandomSampler(ds, replacement=True, num_samples=10 ** 12, generator=g2)
    i1, i2 = iter(s1), iter(s2)
    assert [next(i1) for _ in range(100_000)] == [next(i2) for _ in range(100_000)]


@pytest.mark.parametrize("replacement,m", [(True, 1000), (True, 70_000), (False, 2500), (False, 50)])
def test_normal_sizes_keep_the_seeded_stream(replacement, m):
    """Up to the eager limit the sampler draws exactly what it always drew from its generator."""
    ds = dg.data.TensorDataset(dg.arange(1000))
    s = dg.data.RandomSampler(ds, replacement=replacement, num_samples=m,
                              generator=dg.Generator().manual_seed(11))
    g = dg.random.rng(dg.Generator().manual_seed(11))      # the same seeded NumPy stream
    if replacement:
        want = g.integers(0, 1000, size=m, dtype=np.int64)
    else:
        perms = [g.permutation(1000) for _ in range(m // 1000)]
        if m % 1000:
            perms.append(g.permutation(1000)[:m % 1000])
        want = np.concatenate(perms)
    assert list(s) == want.tolist()
    assert m <= sampler_mod._EAGER_LIMIT


def test_batch_sampler_rebatches_across_lazy_chunks(monkeypatch):
    monkeypatch.setattr(sampler_mod, "_EAGER_LIMIT", 10)
    monkeypatch.setattr(sampler_mod, "_LAZY_CHUNK", 7)
    ds = dg.data.TensorDataset(dg.arange(5))
    for replacement in (True, False):
        for drop_last in (True, False):
            s = dg.data.RandomSampler(ds, replacement=replacement, num_samples=23,
                                      generator=dg.Generator().manual_seed(1))
            flat = list(s)
            assert len(flat) == 23
            s.generator = dg.Generator().manual_seed(1)
            batches = list(dg.data.BatchSampler(s, 4, drop_last))
            want = [flat[i:i + 4] for i in range(0, 23, 4)]
            if drop_last:
                want = want[:-1]
            assert batches == want
            if not replacement:
                for k in range(4):
                    assert sorted(flat[5 * k:5 * k + 5]) == list(range(5))


# ---- get_worker_info ---------------------------------------------------------------------------
class _Probe(dg.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        info = dg.data.get_worker_info()
        return np.array([i, -1 if info is None else info.id,
                         -1 if info is None else info.num_workers], dtype=np.int64)


def test_get_worker_info():
    assert dg.data.get_worker_info() is None and tud.get_worker_info() is None
    ds = _Probe()
    for kw in (dict(num_workers=0), dict(num_workers=0, prefetch=0)):
        out = np.concatenate([b.array for b in dg.data.DataLoader(ds, batch_size=8, **kw)])
        assert (out[:, 1] == -1).all()           # no workers: None, as in PyTorch
    seen = {}

    def init(wid):
        info = dg.data.get_worker_info()
        seen[wid] = (info.id, info.num_workers, info.seed, info.dataset, threading.get_ident())

    loader = dg.data.DataLoader(ds, batch_size=4, num_workers=3, worker_init_fn=init)
    out = np.concatenate([b.array for b in loader])
    assert sorted(out[:, 0].tolist()) == list(range(64))
    assert set(out[:, 1].tolist()) <= {0, 1, 2} and (out[:, 2] == 3).all()
    assert seen and all(v[0] == k and v[1] == 3 and v[3] is ds for k, v in seen.items())
    seeds = {v[2] for v in seen.values()}
    assert len(seeds) == len(seen)                # base seed + id
    assert dg.data.get_worker_info() is None
    info = dg.data.WorkerInfo(id=0, num_workers=1, seed=5, dataset=ds)
    with pytest.raises(RuntimeError):
        info.id = 3
    for name in ("id", "num_workers", "seed", "dataset"):   # torch's WorkerInfo fields
        assert hasattr(tud._utils.worker.WorkerInfo(id=0, num_workers=1, seed=5, dataset=ds), name)
        assert hasattr(info, name)


# ---- the deepgrad.utils.data import path ----------------------------------------------------------
def test_utils_data_import_path():
    from deepgrad.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset,  # noqa: F401
                                     IterableDataset, RandomSampler, Sampler, SequentialSampler,
                                     Subset, SubsetRandomSampler, TensorDataset,
                                     WeightedRandomSampler, default_collate, get_worker_info,
                                     random_split)
    from deepgrad.utils.data.dataloader import default_collate as dc
    from deepgrad.utils.data.sampler import Sampler as S2
    import deepgrad.utils.data.dataset as dsmod
    assert DataLoader is dg.data.DataLoader and dc is dg.data.default_collate and S2 is Sampler
    assert dsmod.TensorDataset is TensorDataset
    assert dg.utils.data.DataLoader is DataLoader               # torch.utils.data.DataLoader
    names = [n for n in ("DataLoader", "Dataset", "TensorDataset", "random_split", "Subset",
                         "ConcatDataset", "IterableDataset", "Sampler", "RandomSampler",
                         "SequentialSampler", "BatchSampler", "WeightedRandomSampler",
                         "SubsetRandomSampler", "ChainDataset", "default_collate",
                         "default_convert", "get_worker_info")]
    for n in names:
        assert hasattr(tud, n) and hasattr(dg.utils.data, n), n


# ---- torchvision-like MNIST / CIFAR-10 attributes ----------------------------------------------------
def test_mnist_data_targets_classes_like_torchvision():
    ds = dg.data.MNIST(train=False)
    assert isinstance(ds.data, dg.Tensor) and ds.data.dtype == dg.uint8
    assert tuple(ds.data.shape) == (10000, 28, 28)
    assert isinstance(ds.targets, dg.Tensor) and ds.targets.dtype == dg.int64
    assert tuple(ds.targets.shape) == (10000,)
    assert ds.targets[:5].tolist() == [7, 2, 1, 0, 4]
    assert ds.classes[0] == "0 - zero" and len(ds.classes) == 10
    assert ds.class_to_idx["3 - three"] == 3
    x = ds.data.float() / 255                                  # the usual torchvision idiom
    assert x.dtype == dg.float32 and float(x.max()) == 1.0
    assert int((ds.targets == 1).sum()) == 1135
    img, label = ds[0]
    assert type(label) is int and np.array_equal(img, ds.data[0].numpy())
    keep = (ds.targets < 2).nonzero().reshape(-1)              # subset by assignment
    ds.data, ds.targets = ds.data[keep], ds.targets[keep]
    assert len(ds) == 980 + 1135 and set(ds.targets.tolist()) == {0, 1}
    assert ds[0][1] in (0, 1)
    batch = next(iter(dg.data.DataLoader(ds, batch_size=16)))
    assert batch[1].dtype == dg.int64 and tuple(batch[0].shape) == (16, 28, 28)


def test_cifar10_data_targets_like_torchvision(shared_dir):
    ds = dg.data.CIFAR10(root=shared_dir, train=False)     # its own instance: it is modified below
    assert isinstance(ds.data, np.ndarray) and ds.data.dtype == np.uint8
    assert ds.data.shape == (10000, 32, 32, 3)
    assert isinstance(ds.targets, list) and all(type(t) is int for t in ds.targets[:100])
    assert ds.targets[:10] == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert ds.classes[3] == "cat"
    ds.targets = ds.targets[:100]
    ds.data = ds.data[:100]
    assert len(ds) == 100
    _, y = next(iter(dg.data.DataLoader(ds, batch_size=10)))
    assert y.dtype == dg.int64 and y.tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]


# ---- default_collate against torch.utils.data.default_collate ------------------------------------
Point = collections.namedtuple("Point", "x y")


COLLATE = {
    "py-floats": [1.5, 2.0, -3.25],
    "py-ints": [1, 2, 3],
    "py-bools": [True, False],
    "int-then-float": [1, 2.5],
    "float-then-int": [2.5, 1],
    "bool-then-int": [True, 2],
    "np-float32": [np.float32(1.5), np.float32(2)],
    "np-float64": [np.float64(1.5), np.float64(2)],
    "np-int32": [np.int32(1), np.int32(2)],
    "np-uint8": [np.uint8(1), np.uint8(250)],
    "np-bool": [np.bool_(True), np.bool_(False)],
    "np-mixed": [np.int64(1), np.float64(2.5)],
    "np-f32-pyfloat": [np.float32(1.5), 2.0],
    "arrays-f32": [np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)],
    "arrays-f64": [np.ones(3), np.arange(3.0)],
    "arrays-u8": [np.ones((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8)],
    "arrays-i16": [np.ones(2, np.int16), np.zeros(2, np.int16)],
    "arrays-0d": [np.array(1.0, np.float32), np.array(2.0, np.float32)],
    "tuple": [(np.ones(2, np.float32), 1, 0.5), (np.zeros(2, np.float32), 2, 1.5)],
    "list": [[1.0, 2], [3.0, 4]],
    "dict": [{"x": np.ones(2, np.float32), "y": 3, "w": 0.25, "name": "a"},
             {"x": np.zeros(2, np.float32), "y": 4, "w": 0.75, "name": "b"}],
    "ordereddict": [collections.OrderedDict(a=1.0, b=2), collections.OrderedDict(a=3.0, b=4)],
    "defaultdict": [collections.defaultdict(int, a=1.5), collections.defaultdict(int, a=2.5)],
    "namedtuple": [Point(1.0, np.ones(2)), Point(2.0, np.zeros(2))],
    "nested": [{"p": (1, [2.5, np.float32(3)]), "q": {"r": np.arange(3)}},
               {"p": (4, [5.5, np.float32(6)]), "q": {"r": np.arange(3) + 1}}],
    "strings": ["a", "bc"],
}


def _compare(ours, theirs, where):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, dg.Tensor), f"{where}: {type(ours)}"
        assert str(ours.dtype).replace("deepgrad.", "") == str(theirs.dtype).replace("torch.", ""), \
            f"{where}: {ours.dtype} vs {theirs.dtype}"
        assert tuple(ours.shape) == tuple(theirs.shape), where
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=where)
        return
    assert type(ours) is type(theirs), f"{where}: {type(ours)} vs {type(theirs)}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        if isinstance(theirs, collections.defaultdict):
            assert ours.default_factory is theirs.default_factory
        for k in theirs:
            _compare(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _compare(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, where


@pytest.mark.parametrize("name", list(COLLATE))
def test_default_collate_matches_torch(name):
    batch = COLLATE[name]
    _compare(dg.data.default_collate(batch), tud.default_collate(batch), name)


def test_default_collate_errors_match_torch():
    for batch in ([[1, 2], [3]], [np.array(["a"]), np.array(["b"])], [object(), object()]):
        with pytest.raises(Exception) as theirs:
            tud.default_collate(batch)
        with pytest.raises(type(theirs.value)):
            dg.data.default_collate(batch)


def test_loader_batches_python_float_targets_as_float64():
    class Reg(dg.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return np.full(2, i, np.float32), float(i) / 3

    x, y = next(iter(dg.data.DataLoader(Reg(), batch_size=6)))
    assert x.dtype == dg.float32 and y.dtype == dg.float64
    np.testing.assert_array_equal(y.numpy(), np.arange(6) / 3)


# ---- the zoo's weights= / pretrained= --------------------------------------------------------------
ZOO = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11", "vgg11_bn", "vgg13",
       "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "alexnet", "googlenet"]


class _Built:
    """Stands in for a zoo network class (building VGG's 100M parameters takes seconds)."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def stub_networks(monkeypatch):
    import importlib
    alexnet, googlenet, resnet, vgg = (importlib.import_module(f"deepgrad.models.{m}")
                                       for m in ("alexnet", "googlenet", "resnet", "vgg"))
    monkeypatch.setattr(resnet, "ResNet", _Built)
    monkeypatch.setattr(vgg, "VGG", _Built)
    monkeypatch.setattr(vgg, "make_vgg_layers", lambda cfg, batch_norm=False: (cfg, batch_norm))
    monkeypatch.setattr(alexnet, "AlexNet", _Built)
    monkeypatch.setattr(googlenet, "GoogLeNet", _Built)


@pytest.mark.parametrize("name", ["resnet18", "googlenet"])
def test_zoo_weights_none_builds_the_network(name):
    import deepgrad.models as M
    m = getattr(M, name)(weights=None, num_classes=3)
    assert isinstance(m, dg.nn.Module)
    assert tuple(m.eval()(dg.zeros(1, 3, 32, 32)).shape) == (1, 3)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_weights_none_and_errors(name, stub_networks):
    import deepgrad.models as M
    build = getattr(M, name)
    small = dict(num_classes=3)
    m1 = build(weights=None, **small)
    assert isinstance(m1, _Built) and m1.kwargs.get("num_classes") == 3
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m2 = build(pretrained=False, **small)
    assert any("pretrained" in str(x.message) for x in w)
    assert (m1.args, m1.kwargs) == (m2.args, m2.kwargs)
    assert build(**small).kwargs == m1.kwargs
    enum = build.weights_enum
    for bad in ("DEFAULT", "IMAGENET1K_V1", enum.DEFAULT, f"{enum.__name__}.IMAGENET1K_V1"):
        with pytest.raises(RuntimeError, match=r"no pretrained weights ship with deepgrad.*"
                                               r"load_state_dict"):
            build(weights=bad, **small)
    with pytest.raises(RuntimeError, match=enum.__name__):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(pretrained=True, **small)
    with pytest.raises(ValueError, match="NOT_A_WEIGHT"):
        build(weights="NOT_A_WEIGHT", **small)
    other = M.AlexNet_Weights if name != "alexnet" else M.ResNet18_Weights
    with pytest.raises(TypeError):
        build(weights=other.DEFAULT, **small)


def test_zoo_weights_enum_names():
    import deepgrad.models as M
    assert M.ResNet50_Weights.DEFAULT is M.ResNet50_Weights.IMAGENET1K_V2
    assert M.ResNet18_Weights.DEFAULT is M.ResNet18_Weights.IMAGENET1K_V1
    assert M.VGG16_Weights.IMAGENET1K_FEATURES.name == "IMAGENET1K_FEATURES"
    assert repr(M.ResNet18_Weights.DEFAULT) == "ResNet18_Weights.IMAGENET1K_V1"


def test_subclass_overriding_iter_is_honoured():
    class Evens(dg.data.RandomSampler):
        def __iter__(self):
            return iter(range(0, len(self.data_source), 2))

    ds = dg.data.TensorDataset(dg.arange(10))
    got = [b[0].tolist() for b in dg.data.DataLoader(ds, batch_size=2, sampler=Evens(ds))]
    assert got == [[0, 2], [4, 6], [8]]


def test_mnist_deprecated_aliases_warn_like_torchvision():
    ds = dg.data.MNIST(train=False)
    with pytest.warns(UserWarning, match="renamed targets"):
        assert ds.test_labels is ds.targets
    with pytest.warns(UserWarning, match="renamed data"):
        assert ds.train_data is ds.data
