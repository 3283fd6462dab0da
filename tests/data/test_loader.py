"""Datasets, samplers, collate and the DataLoader against their definitions."""
import gc
import threading
import time
from collections import Counter, namedtuple

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset, IterableDataset,
                           RandomSampler, SequentialSampler, Subset, SubsetRandomSampler, TensorDataset,
                           WeightedRandomSampler, ArrayDataset, default_collate, random_split)
from deepgrad.data import transforms as T


def data_threads():
    return [t for t in threading.enumerate() if t.name.startswith("deepgrad-data") and t.is_alive()]


def wait_no_data_threads(timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if not data_threads():
            return True
        time.sleep(0.02)
    return not data_threads()


class PerSample(Dataset):
    """Wraps a dataset hiding its fast path (the reference per-sample behaviour)."""

    def __init__(self, d):
        self.d = d

    def __len__(self):
        return len(self.d)

    def __getitem__(self, i):
        return self.d[i]


def _xy(n=103):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64) % 7
    return x, y


def _flat(loader, k=1):
    return np.concatenate([np.asarray(b[k].array) for b in loader])


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------
def test_tensor_dataset():
    x, y = _xy()
    ds = TensorDataset(dg.tensor(x), y)
    assert len(ds) == 103
    a, b = ds[5]
    assert isinstance(a, dg.Tensor) and a.shape == (3,) and b.shape == () and int(b.item()) == 5
    np.testing.assert_array_equal(ds[-1][0].array, x[-1])
    with pytest.raises(IndexError):
        ds[103]
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(x, y[:-1])


def test_subset_concat_random_split():
    x, y = _xy(10)
    ds = TensorDataset(x, y)
    sub = Subset(ds, [7, 2, 2])
    assert len(sub) == 3 and int(sub[0][1].item()) == 0 and int(sub[1][1].item()) == 2
    cat = ConcatDataset([ds, sub, ds])
    assert len(cat) == 23 and int(cat[10][1].item()) == 0 and int(cat[-1][1].item()) == 2
    cat2 = ds + sub
    assert isinstance(cat2, ConcatDataset) and len(cat2) == 13
    idx = np.array([22, 0, 11, 10, 12, 5])
    fast = cat._get_batch(idx)
    ref = default_collate([cat[int(i)] for i in idx])
    for f, r in zip(fast, ref):
        np.testing.assert_array_equal(f, r.array)
    dg.manual_seed(3)
    parts = random_split(range(10), [0.33, 0.33, 0.34])
    assert [len(p) for p in parts] == [4, 3, 3]                       # remainder dealt round-robin
    assert sorted(i for p in parts for i in p) == list(range(10))
    dg.manual_seed(3)
    assert [list(p) for p in random_split(range(10), [0.33, 0.33, 0.34])] == [list(p) for p in parts]
    parts = random_split(range(10), [5, 5], generator=dg.Generator().manual_seed(1))
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    with pytest.raises(ValueError, match="does not equal"):
        random_split(range(10), [5, 4])


# ---------------------------------------------------------------------------------------------
# samplers
# ---------------------------------------------------------------------------------------------
def test_sequential_and_random_sampler():
    assert list(SequentialSampler(range(5))) == [0, 1, 2, 3, 4]
    s = RandomSampler(range(50))
    epochs = [list(s) for _ in range(3)]
    for e in epochs:
        assert sorted(e) == list(range(50))
    assert epochs[0] != epochs[1]
    s = RandomSampler(range(10), num_samples=25)
    e = list(s)
    assert len(e) == 25 and sorted(e[:10]) == list(range(10)) and sorted(e[10:20]) == list(range(10))
    assert len(set(e[20:])) == 5
    s = RandomSampler(range(4), replacement=True, num_samples=4000)
    c = Counter(s)
    assert set(c) == {0, 1, 2, 3} and all(900 < v < 1100 for v in c.values())
    g1, g2 = dg.Generator().manual_seed(7), dg.Generator().manual_seed(7)
    assert list(RandomSampler(range(30), generator=g1)) == list(RandomSampler(range(30), generator=g2))
    dg.manual_seed(1)
    a = list(RandomSampler(range(30)))
    dg.manual_seed(1)
    assert a == list(RandomSampler(range(30)))
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(3), num_samples=0)


def test_subset_weighted_batch_samplers():
    idx = [3, 9, 27, 81]
    e = list(SubsetRandomSampler(idx))
    assert sorted(e) == idx
    w = [0.0, 1.0, 3.0, 0.0]
    c = Counter(WeightedRandomSampler(w, 8000))
    assert set(c) == {1, 2} and abs(c[2] / 8000 - 0.75) < 0.03
    e = list(WeightedRandomSampler([1, 1, 5, 1], 4, replacement=False))
    assert sorted(e) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler(w, 3, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1, -1], 3)
    bs = BatchSampler(SequentialSampler(range(10)), 3, drop_last=False)
    assert list(bs) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] and len(bs) == 4
    bs = BatchSampler(SequentialSampler(range(10)), 3, drop_last=True)
    assert list(bs) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and len(bs) == 3
    bs = BatchSampler(iter_only := type("It", (), {"__iter__": lambda s: iter(range(5)),
                                                   "__len__": lambda s: 5})(), 2, False)
    assert list(bs) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(SequentialSampler(range(3)), 0, False)


# ---------------------------------------------------------------------------------------------
# collate
# ---------------------------------------------------------------------------------------------
def test_default_collate_types():
    out = default_collate([1, 2, 3])
    assert out.dtype == dg.int64 and out.tolist() == [1, 2, 3]
    out = default_collate([1.5, 2.0])
    assert out.dtype == dg.float64          # PyTorch: torch.tensor(batch, dtype=torch.float64)
    assert default_collate([True, False]).dtype == dg.bool
    assert default_collate([np.float64(1), np.float64(2)]).dtype == dg.float64
    assert default_collate(["a", "b"]) == ["a", "b"]
    imgs = [np.full((2, 2), i, np.uint8) for i in range(3)]
    out = default_collate(imgs)
    assert out.shape == (3, 2, 2) and out.dtype == dg.uint8
    out = default_collate([(np.zeros(2, np.float32), 1), (np.ones(2, np.float32), 2)])
    assert isinstance(out, list) and out[0].shape == (2, 2) and out[1].tolist() == [1, 2]
    out = default_collate([{"x": dg.ones(3), "y": 0}, {"x": dg.zeros(3), "y": 1}])
    assert out["x"].shape == (2, 3) and out["y"].dtype == dg.int64
    P = namedtuple("P", "a b")
    out = default_collate([P(1, 2.0), P(3, 4.0)])
    assert isinstance(out, P) and out.a.tolist() == [1, 3]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="None"):
        default_collate([None, None])


# ---------------------------------------------------------------------------------------------
# DataLoader
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefetch,workers", [(0, 0), (2, 0), (2, 3)])
def test_loader_sequential_batches(prefetch, workers):
    x, y = _xy(103)
    dl = DataLoader(TensorDataset(x, y), batch_size=10, prefetch=prefetch, num_workers=workers)
    batches = list(dl)
    assert len(dl) == 11 and len(batches) == 11
    assert [b[0].shape[0] for b in batches] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.concatenate([b[0].array for b in batches]), x)
    assert batches[0][0].dtype == dg.float32 and batches[0][1].dtype == dg.int64
    dl = DataLoader(TensorDataset(x, y), batch_size=10, drop_last=True, prefetch=prefetch)
    assert len(dl) == 10 and [b[0].shape[0] for b in dl] == [10] * 10


def test_shuffle_epochs_are_permutations_and_seeded():
    x, y = _xy(101)
    ds = TensorDataset(x, np.arange(101))
    dl = DataLoader(ds, batch_size=16, shuffle=True)
    e1, e2 = _flat(dl), _flat(dl)
    assert sorted(e1.tolist()) == list(range(101)) and sorted(e2.tolist()) == list(range(101))
    assert e1.tolist() != e2.tolist()
    dg.manual_seed(42)
    a = _flat(dl)
    dg.manual_seed(42)
    np.testing.assert_array_equal(a, _flat(dl))
    g = dg.Generator().manual_seed(5)
    b = _flat(DataLoader(ds, batch_size=16, shuffle=True, generator=g))
    g.manual_seed(5)
    np.testing.assert_array_equal(b, _flat(DataLoader(ds, batch_size=16, shuffle=True, generator=g)))


def test_fast_path_equals_per_sample(mnist_test):
    from deepgrad.data.datasets import MNIST
    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    m = MNIST(train=False, transform=tf)
    assert m._get_batch(np.array([0, 1])) is not None                  # deterministic: batched
    assert MNIST(train=False, transform=T.RandomCrop(28, 2))._get_batch(np.array([0])) is None
    sub = Subset(m, np.arange(2000, 2600))
    for fast, slow in ((sub, PerSample(sub)), (m, PerSample(m))):
        dg.manual_seed(0)
        a = [b for _, b in zip(range(3), DataLoader(fast, batch_size=64, shuffle=True))]
        dg.manual_seed(0)
        b = [b for _, b in zip(range(3), DataLoader(slow, batch_size=64, shuffle=True))]
        for (xa, ya), (xb, yb) in zip(a, b):
            assert xa.shape == (64, 1, 28, 28) and xa.dtype == dg.float32 and ya.dtype == dg.int64
            np.testing.assert_array_equal(xa.array, xb.array)
            np.testing.assert_array_equal(ya.array, yb.array)
    raw = next(iter(DataLoader(MNIST(train=False), batch_size=5)))
    assert raw[0].dtype == dg.uint8 and raw[0].shape == (5, 28, 28)
    np.testing.assert_array_equal(raw[0].array, mnist_test.data[:5])


def test_random_transforms_reproducible_for_any_prefetch_and_workers():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (300, 12, 12, 3), dtype=np.uint8)
    ds = ArrayDataset(imgs, np.arange(300), transform=T.Compose([T.RandomCrop(10, padding=2), T.ToTensor()]))
    outs = []
    for pf, nw in ((0, 0), (1, 0), (3, 4)):
        dg.manual_seed(9)
        dl = DataLoader(ds, batch_size=32, shuffle=True, prefetch=pf, num_workers=nw,
                        batch_transform=T.BatchRandomHorizontalFlip())
        outs.append([(x.array.copy(), y.array.copy()) for x, y in dl])
    for o in outs[1:]:
        for (xa, ya), (xb, yb) in zip(outs[0], o):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    dg.manual_seed(10)
    other = [x.array for x, _ in DataLoader(ds, batch_size=32, shuffle=True)]
    assert not np.array_equal(other[0], outs[0][0][0])


class Boom(Dataset):
    def __len__(self):
        return 100

    def __getitem__(self, i):
        if i == 37:
            raise ValueError("bad sample 37")
        return np.float32(i)


@pytest.mark.parametrize("prefetch,workers", [(0, 0), (2, 0), (2, 4)])
def test_worker_errors_are_reraised_in_main_thread(prefetch, workers):
    dl = DataLoader(Boom(), batch_size=8, prefetch=prefetch, num_workers=workers)
    seen = []
    with pytest.raises(ValueError, match="bad sample 37"):
        for b in dl:
            seen.append(b)
    assert len(seen) == 4                                   # batches 0..3 fine, batch 4 holds 37
    assert threading.current_thread() is threading.main_thread()
    assert wait_no_data_threads()


def test_abandoned_iteration_releases_threads():
    x, y = _xy(1000)
    dl = DataLoader(TensorDataset(x, y), batch_size=4, num_workers=3, prefetch=4)
    for i, b in enumerate(dl):
        if i == 2:
            break
    assert wait_no_data_threads()
    it = iter(dl)
    next(it)
    assert data_threads()
    del it
    gc.collect()
    assert wait_no_data_threads()
    it = iter(dl)
    next(it)
    it.close()
    assert wait_no_data_threads()
    with pytest.raises(StopIteration):
        next(it)
    assert len(list(dl)) == 250                             # loader reusable afterwards


def test_slow_consumer_and_timeout():
    class Slow(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            time.sleep(0.3)
            return i
    with pytest.raises(RuntimeError, match="timed out"):
        list(DataLoader(Slow(), batch_size=1, timeout=0.05))
    assert wait_no_data_threads()


def test_iterable_dataset():
    class Stream(IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

    for pf in (0, 2):
        out = [b.tolist() for b in DataLoader(Stream(10), batch_size=4, prefetch=pf)]
        assert out == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
        out = [b.tolist() for b in DataLoader(Stream(10), batch_size=4, drop_last=True, prefetch=pf)]
        assert out == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert list(DataLoader(Stream(3), batch_size=None)) == [0, 1, 2]       # no batching: left as is
    with pytest.raises(TypeError):
        len(DataLoader(Stream(3), batch_size=2))
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(3), shuffle=True)
    chained = ChainDataset([Stream(2), Stream(3)])
    assert list(DataLoader(chained, batch_size=None)) == [0, 1, 0, 1, 2]


def test_loader_options():
    x, y = _xy(20)
    ds = TensorDataset(x, y)
    one = list(DataLoader(ds))
    assert len(one) == 20 and one[0][0].shape == (1, 3)
    nob = list(DataLoader(ds, batch_size=None))
    assert nob[0][0].shape == (3,)
    bs = BatchSampler(SequentialSampler(ds), 6, False)
    assert [b[0].shape[0] for b in DataLoader(ds, batch_sampler=bs)] == [6, 6, 6, 2]
    assert [b[0].shape[0] for b in DataLoader(ds, batch_sampler=[[0, 1], [5]])] == [2, 1]
    sub = _flat(DataLoader(ds, batch_size=4, sampler=SubsetRandomSampler([1, 3, 5])))
    assert sorted(sub.tolist()) == [1, 3, 5]
    custom = list(DataLoader(ds, batch_size=5, collate_fn=lambda b: len(b)))
    assert custom == [5, 5, 5, 5]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_sampler=bs, batch_size=3)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    ids = []
    list(DataLoader(ds, batch_size=5, num_workers=2, worker_init_fn=ids.append))
    assert sorted(ids) == [0, 1] or sorted(ids) == [0]
    out = next(iter(DataLoader(ds, batch_size=4, batch_transform=lambda t: t * 2)))
    np.testing.assert_array_equal(out[0].array, x[:4] * 2)
