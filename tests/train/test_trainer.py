"""fit / evaluate / predict, callbacks, and resuming bit for bit."""
import csv
import json
import math

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.train import (CSVLogger, EarlyStopping, JSONLogger, LambdaCallback, ModelCheckpoint,
                            PlotHistory, TerminateOnNaN, Trainer, evaluate, fit, load_checkpoint, predict)


def blobs(n=256, seed=0):
    """Three Gaussian blobs in 2-d (linearly separable enough for 95%+)."""
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, n)
    centers = np.array([[0, 3], [3, -2], [-3, -2]], np.float32)
    x = centers[y] + g.normal(0, 0.8, (n, 2)).astype(np.float32)
    return x, y.astype(np.int64)


def make(seed=0, dropout=0.2, loader_generator=True, n=256):
    dg.manual_seed(seed)
    x, y = blobs(n)
    gen = dg.Generator().manual_seed(seed + 1) if loader_generator else None
    train = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=gen)
    val = DataLoader(TensorDataset(*blobs(128, seed=1)), batch_size=64)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))
    return model, train, val


def weights(model):
    return {k: v.array.copy() for k, v in model.state_dict().items()}


def assert_bit_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and (a[k] == b[k]).all(), k


def test_fit_evaluate_predict(tmp_path):
    model, train, val = make()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    hist = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=4, val_loader=val,
               metrics=("accuracy", "top5_accuracy"), verbose=0,
               callbacks=[CSVLogger(tmp_path / "h.csv"), JSONLogger(tmp_path / "h.json"), PlotHistory(tmp_path)])
    assert hist.epoch == [0, 1, 2, 3]
    assert set(hist.history) == {"loss", "accuracy", "top5_accuracy", "val_loss", "val_accuracy",
                                 "val_top5_accuracy", "lr"}
    assert hist["loss"][-1] < hist["loss"][0]
    assert hist["val_accuracy"][-1] > 0.9
    res = evaluate(model, val, loss_fn=nn.CrossEntropyLoss())
    assert res["accuracy"] == pytest.approx(hist["val_accuracy"][-1])
    assert res["loss"] == pytest.approx(hist["val_loss"][-1], rel=1e-6)
    xv, yv = blobs(128, seed=1)
    out = predict(model, xv, batch_size=50)
    assert out.shape == (128, 3) and not out.requires_grad
    assert np.mean(out.numpy().argmax(1) == yv) == pytest.approx(res["accuracy"])
    assert predict(model, val).shape == (128, 3)
    assert model.training                          # evaluate/predict restore the mode
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["val_loss"]) == pytest.approx(hist["val_loss"][-1])
    assert len(json.load(open(tmp_path / "h.json"))["epochs"]) == 4
    for name in ("loss", "accuracy", "lr"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_shows_loss_metrics_and_throughput():
    import io
    from deepgrad.train import ProgressBar
    model, train, val = make()
    for verbose in (1, 2):
        buf = io.StringIO()
        Trainer(model, "cross_entropy", "adam", callbacks=[ProgressBar(verbose, file=buf)]).fit(train, 2, val)
        text = buf.getvalue()
        assert "Epoch 2/2" in text and "val_accuracy=" in text and "samples/s" in text and "loss=" in text
        if verbose == 1:
            assert "8/8" in text                                      # tqdm's batch counter


def test_trainer_with_names_schedules_and_clipping():
    model, train, val = make(dropout=0.0)
    seen = []
    sched_model = Trainer(model, "cross_entropy", "sgd", lr=0.2,
                          scheduler=None, clip_grad_value=1e-3, verbose=0,
                          callbacks=[LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(
                              max(float(abs(p.grad.array).max()) for p in model.parameters())))])
    sched_model.fit(train, epochs=1)
    assert max(seen) <= 1e-3 + 1e-9
    # per-batch schedule: lr follows OneCycle over every step
    model, train, val = make()
    opt = optim.SGD(model.parameters(), lr=0.1)
    steps = len(train) * 2
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=steps, cycle_momentum=False)
    Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=sched, scheduler_interval="batch", verbose=0).fit(train, 2)
    assert sched.last_epoch == steps
    # ReduceLROnPlateau gets the monitored value each epoch
    model, train, val = make()
    opt = optim.SGD(model.parameters(), lr=1e-3)
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5, threshold=0.5)
    h = Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=plateau, verbose=0).fit(train, 3, val_loader=val)
    assert h["lr"] == [1e-3, 1e-3, 5e-4]           # the lr each epoch ran with
    assert opt.param_groups[0]["lr"] == 2.5e-4


def test_unknown_names_raise():
    model, _, _ = make()
    with pytest.raises(ValueError, match="unknown metric 'f1'.*accuracy"):
        Trainer(model, "cross_entropy", "adam", metrics=("f1",))
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        Trainer(model, "cross_entropy", "adamm")
    with pytest.raises(ValueError, match="unknown loss"):
        Trainer(model, "hinge-ish", "adam")


def test_early_stopping_restores_best_weights():
    model, train, val = make()
    scores = iter([3.0, 1.0, 2.0, 4.0, 5.0, 6.0])      # best at epoch index 1
    snapshots = []

    def fake_metric(epoch, logs):
        logs["score"] = next(scores)
        snapshots.append(weights(model))

    stopper = EarlyStopping(monitor="score", mode="min", patience=2)
    t = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05), verbose=0,
                callbacks=[LambdaCallback(on_epoch_end=fake_metric), stopper])
    hist = t.fit(train, epochs=6)
    assert len(hist) == 4 and stopper.stopped_epoch == 3 and stopper.best_epoch == 1
    assert_bit_equal(weights(model), snapshots[1])
    with pytest.raises(KeyError, match="'val_loss'.*available"):
        Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()), verbose=0,
                callbacks=[EarlyStopping()]).fit(train, 1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan():
    model, train, _ = make()
    t = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1e30), verbose=0,
                callbacks=[TerminateOnNaN()])
    hist = t.fit(train, epochs=5)
    assert len(hist) == 1 and not math.isfinite(hist["loss"][0])


def _run(tmp_path, epochs, resume=None, stop_after_batches=None, loader_generator=True, keep_going=False):
    """A run with dropout, shuffling, a per-batch OneCycle schedule, early stopping and a
    checkpoint every epoch; ``stop_after_batches`` simulates a kill (KeyboardInterrupt)."""
    model, train, val = make(loader_generator=loader_generator)
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=len(train) * 5)
    cbs = [EarlyStopping(patience=10), ModelCheckpoint(tmp_path / "last.npz")]
    if stop_after_batches:
        count = [0]

        def kill(batch, logs):
            count[0] += 1
            if count[0] == stop_after_batches:
                raise KeyboardInterrupt
        cbs.append(LambdaCallback(on_train_batch_end=kill))
    t = Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=sched, scheduler_interval="batch",
                callbacks=cbs, verbose=0)
    try:
        t.fit(train, epochs=epochs, val_loader=val, resume=resume)
    except KeyboardInterrupt:
        pass
    return model, t


@pytest.mark.parametrize("loader_generator", [True, False])
def test_resume_from_epoch_checkpoint_is_bit_exact(tmp_path, loader_generator):
    ref, ref_t = _run(tmp_path / "a", 5, loader_generator=loader_generator)
    _run(tmp_path / "b", 2, loader_generator=loader_generator)           # "killed" after epoch 2
    ck = load_checkpoint(tmp_path / "b" / "last.npz")
    assert ck["epoch"] == 2 and ck["batch"] == 0
    dg.manual_seed(1234)                                                  # a different process state
    np.random.seed(99)
    resumed, t = _run(tmp_path / "b", 5, resume=tmp_path / "b" / "last.npz", loader_generator=loader_generator)
    assert_bit_equal(weights(resumed), weights(ref))
    assert t.history.history == ref_t.history.history
    assert t.optimizer.param_groups[0]["lr"] == ref_t.optimizer.param_groups[0]["lr"]


def test_resume_after_kill_mid_epoch_is_bit_exact(tmp_path):
    ref, _ = _run(tmp_path / "a", 5)
    steps = 8                                                             # 256 samples / 32
    _run(tmp_path / "b", 5, stop_after_batches=3 * steps + 5)            # dies inside epoch 4
    assert load_checkpoint(tmp_path / "b" / "last.npz")["epoch"] == 3
    resumed, _ = _run(tmp_path / "b", 5, resume=tmp_path / "b" / "last.npz")
    assert_bit_equal(weights(resumed), weights(ref))


def test_checkpoint_errors_name_the_file(tmp_path):
    model, train, _ = make()
    dg.save(model.state_dict(), tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="weights.npz.*not a deepgrad training checkpoint"):
        load_checkpoint(tmp_path / "weights.npz")
    t = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()), verbose=0)
    t.save_checkpoint(tmp_path / "ck.npz")
    other = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3))
    with pytest.raises(dg.FileError, match="ck.npz.*model.0.weight.*shape"):
        Trainer(other, nn.CrossEntropyLoss(), optim.Adam(other.parameters()), verbose=0).load_checkpoint(tmp_path / "ck.npz")


def test_model_checkpoint_options(tmp_path):
    model, train, val = make()
    scores = iter([0.5, 0.7, 0.6, 0.9])
    cbs = [LambdaCallback(on_epoch_end=lambda e, logs: logs.__setitem__("score", next(scores))),
           ModelCheckpoint(tmp_path / "best-{epoch:02d}-{score:.1f}.npz", monitor="score", mode="max",
                           save_best_only=True),
           ModelCheckpoint(tmp_path / "w{epoch}.npz", save_weights_only=True, every_n_epochs=2)]
    Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()), callbacks=cbs, verbose=0).fit(train, 4)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best-01-0.5.npz", "best-02-0.7.npz", "best-04-0.9.npz", "w2.npz", "w4.npz"]
    assert load_checkpoint(tmp_path / "best-04-0.9.npz")["epoch"] == 4
    w = dg.load(tmp_path / "w4.npz")
    assert_bit_equal({k: v.array for k, v in w.items()}, weights(model))
