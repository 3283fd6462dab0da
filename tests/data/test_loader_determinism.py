"""User randomness inside ``Dataset.__getitem__`` (``dg.randn``, ``dg.rand``, dropout ...) is
reproducible under a seed whatever the prefetching and the number of worker threads (issue 10)."""
import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn
from deepgrad.data import DataLoader, Dataset


class NoisyDataset(Dataset):
    """Each sample is a fixed vector plus noise drawn from the *global* generator."""

    def __init__(self, n=64, d=8):
        self.x = np.arange(n * d, dtype=np.float32).reshape(n, d) / (n * d)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        noise = dg.randn(self.x.shape[1]).numpy()
        return self.x[i] + 0.1 * noise, int(i % 3)


def _train(prefetch, workers, seed=0, epochs=2):
    dg.manual_seed(seed)
    model = nn.Linear(8, 3)
    opt = dg.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(NoisyDataset(), batch_size=8, shuffle=True, prefetch=prefetch, num_workers=workers)
    for _ in range(epochs):
        for x, y in loader:
            # the main thread draws too, interleaved with the prefetch threads
            h = nn.functional.dropout(model(x), 0.2, training=True)
            loss = nn.functional.cross_entropy(h, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.weight.detach().numpy().copy(), dg.rand(4).numpy()


def test_seeded_runs_with_prefetch_are_identical():
    runs = [_train(prefetch=2, workers=2) for _ in range(5)]
    for w, r in runs[1:]:
        np.testing.assert_array_equal(w, runs[0][0])
        np.testing.assert_array_equal(r, runs[0][1])


@pytest.mark.parametrize("prefetch,workers", [(2, 0), (1, 3), (4, 2)])
def test_prefetch_and_workers_do_not_change_results(prefetch, workers):
    w0, r0 = _train(prefetch=0, workers=0)
    w, r = _train(prefetch=prefetch, workers=workers)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(r, r0)


def test_different_seeds_differ():
    assert not np.array_equal(_train(0, 0, seed=0)[0], _train(0, 0, seed=1)[0])


def test_main_thread_stream_unaffected_by_fetching():
    """Fetching (which draws in __getitem__) does not advance the global generator: the main
    thread sees the same numbers as if the dataset drew nothing, apart from the epoch's seed."""
    class Quiet(NoisyDataset):
        def __getitem__(self, i):
            return self.x[i], 0

    for ds_cls in (NoisyDataset, Quiet):
        pass
    outs = []
    for ds in (NoisyDataset(), Quiet()):
        dg.manual_seed(3)
        for _ in DataLoader(ds, batch_size=8, prefetch=0):
            pass
        outs.append(dg.rand(5).numpy())
    np.testing.assert_array_equal(outs[0], outs[1])


def test_batches_draw_per_batch_streams():
    """Two epochs give different noise; batch k's noise does not depend on other batches."""
    dg.manual_seed(0)
    loader = DataLoader(NoisyDataset(), batch_size=8, prefetch=0)
    e1 = [x.numpy() for x, _ in loader]
    e2 = [x.numpy() for x, _ in loader]
    assert not np.array_equal(e1[0], e2[0])
    assert not np.array_equal(e1[0] - NoisyDataset().x[:8], e1[1] - NoisyDataset().x[8:16])
