"""deepgrad.utils.tensorboard.SummaryWriter and the TensorBoard callback (issue 16).

Every call is made twice, once on deepgrad's writer with deepgrad Tensors and once on
torch.utils.tensorboard's with torch tensors built from the same NumPy arrays; both runs are read
back with TensorBoard's own reader (event_accumulator) and must hold the same values, steps,
folders and tags. tensorboardX, tensorboard and torch are pinned in the test extra.
"""
import dataclasses
import io
import os
import subprocess
import sys

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.train import TensorBoard, fit
from deepgrad.utils.tensorboard import SummaryWriter

torch = pytest.importorskip("torch")
from torch.utils.tensorboard import SummaryWriter as TorchWriter  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator as ea  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402
from google.protobuf.json_format import MessageToDict  # noqa: E402

G = np.random.default_rng(0)
IMG_F = G.random((3, 6, 5), dtype=np.float32) * 1.2 - 0.1        # out of [0, 1]: clipping is tested
IMG_U8 = G.integers(0, 256, (6, 5, 3)).astype(np.uint8)
IMGS = G.random((11, 1, 4, 3), dtype=np.float32)                 # 11 images: a grid of 8 a row
VALUES = G.normal(0, 2, (7, 9)).astype(np.float32)

# (name, calls): each call is (method, args, kwargs); NumPy arrays become the framework's tensors
CASES = [
    ("scalar", [("add_scalar", ("loss", 0.25), {"global_step": 3}),
                ("add_scalar", ("loss", np.float32(0.125)), {"global_step": 4}),
                ("add_scalar", ("tensor", np.array(2.5, np.float32)), {"global_step": 0}),
                ("add_scalar", ("nested/tag name", -1.0), {})]),
    ("new_style", [("add_scalar", ("n", np.array(1.0 / 3.0)), {"global_step": 1, "new_style": True}),
                   ("add_scalar", ("d", np.array(1.0 / 3.0)),
                    {"global_step": 2, "new_style": True, "double_precision": True})]),
    ("scalars", [("add_scalars", ("run/loss", {"train": 1.0, "val": np.float32(2.0)}), {"global_step": 5}),
                 ("add_scalars", ("run/loss", {"train": 0.5, "val": 1.5}), {"global_step": 6})]),
    ("histogram", [("add_histogram", ("w", VALUES), {"global_step": 1}),
                   ("add_histogram", ("w_auto", VALUES), {"global_step": 1, "bins": "auto"}),
                   ("add_histogram", ("w_10", VALUES), {"global_step": 2, "bins": 10}),
                   ("add_histogram", ("w_max", VALUES), {"global_step": 3, "max_bins": 7}),
                   ("add_histogram_raw", ("raw", -1.0, 2.0, 6, 3.0, 9.0, [0.0, 1.0, 2.0], [1, 2, 3]),
                    {"global_step": 4})]),
    ("image", [("add_image", ("chw", IMG_F), {"global_step": 0}),
               ("add_image", ("hwc", IMG_U8), {"dataformats": "HWC"}),
               ("add_image", ("hw", IMG_F[0]), {"dataformats": "HW"}),
               ("add_images", ("batch", IMGS), {"global_step": 2}),
               ("add_images", ("nhwc", IMGS.transpose(0, 2, 3, 1)), {"dataformats": "NHWC"})]),
    ("text", [("add_text", ("note", "**lr** = 0.1"), {"global_step": 7})]),
    ("hparams", [("add_hparams", ({"lr": 0.1, "opt": "adam", "layers": 3, "bn": True},
                                  {"hp/acc": 0.9, "hp/loss": np.float32(0.2)}),
                  {"hparam_domain_discrete": {"opt": ["adam", "sgd"], "layers": [2, 3]},
                   "run_name": "trial", "global_step": 1})]),
]


def _convert(v, to_tensor):
    if isinstance(v, np.ndarray):
        return to_tensor(v)
    if isinstance(v, dict):
        return {k: _convert(x, to_tensor) for k, x in v.items()}
    return v


def _write(writer_cls, to_tensor, log_dir, calls):
    with writer_cls(log_dir) as w:
        for method, args, kwargs in calls:
            getattr(w, method)(*[_convert(a, to_tensor) for a in args], **kwargs)


def _read(log_dir):
    """{run (sub-folder): {kind: {tag: [(step, value), ...]}}} through event_accumulator."""
    out = {}
    for root, _, files in os.walk(log_dir):
        if not any(f.startswith("events.out.tfevents") for f in files):
            continue
        acc = ea.EventAccumulator(root, size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0,
                                                       ea.TENSORS: 0})
        acc.Reload()
        tags = acc.Tags()
        run = {"scalars": {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]},
               "histograms": {t: [(e.step, dataclasses.asdict(e.histogram_value)) for e in acc.Histograms(t)]
                              for t in tags["histograms"]},
               "images": {t: [(e.step, e.width, e.height, _pixels(e.encoded_image_string))
                              for e in acc.Images(t)] for t in tags["images"]},
               "tensors": {t: [(e.step, MessageToDict(e.tensor_proto)) for e in acc.Tensors(t)]
                           for t in tags["tensors"]},
               "plugins": {}}
        for t in tags["tensors"]:
            meta = acc.SummaryMetadata(t)
            data = meta.plugin_data
            if data.plugin_name == "hparams":
                run["plugins"][t] = MessageToDict(plugin_data_pb2.HParamsPluginData.FromString(data.content))
            else:
                run["plugins"][t] = data.plugin_name
        out[os.path.relpath(root, log_dir)] = run
    return out


def _pixels(png):
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png))).tolist()


@pytest.mark.parametrize("name,calls", CASES, ids=[c[0] for c in CASES])
def test_same_events_as_torch(tmp_path, name, calls):
    _write(SummaryWriter, dg.tensor, tmp_path / "dg", calls)
    _write(TorchWriter, torch.from_numpy, tmp_path / "torch", calls)
    ours, theirs = _read(tmp_path / "dg"), _read(tmp_path / "torch")
    assert ours.keys() == theirs.keys()          # the same run folders (add_scalars, add_hparams)
    assert ours and any(any(kind.values()) for run in ours.values() for kind in run.values())
    assert ours == theirs


def test_purge_step_and_walltime_like_torch(tmp_path):
    """A restarted run with purge_step hides the old events at steps >= purge_step."""
    for name, cls in (("dg", SummaryWriter), ("torch", TorchWriter)):
        with cls(tmp_path / name) as w:
            for step in range(10):
                w.add_scalar("x", float(step), step, walltime=1000.0 + step)
        with cls(tmp_path / name, purge_step=5) as w:
            for step in range(5, 8):
                w.add_scalar("x", -float(step), step, walltime=2000.0 + step)
    ours, theirs = _read(tmp_path / "dg"), _read(tmp_path / "torch")
    assert ours == theirs
    assert ours["."]["scalars"]["x"] == [(s, float(s)) for s in range(5)] + [(s, -float(s)) for s in range(5, 8)]
    acc = ea.EventAccumulator(str(tmp_path / "dg"))
    acc.Reload()
    assert [e.wall_time for e in acc.Scalars("x")] == [1000.0 + s for s in range(5)] + [2000.0 + s for s in range(5, 8)]


def test_values_read_back(tmp_path):
    """Independently of torch: what was written is what TensorBoard reads."""
    with SummaryWriter(tmp_path) as w:
        for step in range(5):
            w.add_scalar("loss", dg.tensor(1.0 / (step + 1)), step)
        w.add_histogram("h", dg.tensor(VALUES), 9)
        w.add_image("im", dg.tensor(IMG_U8), 1, dataformats="HWC")
    run = _read(tmp_path)["."]
    assert [s for s, _ in run["scalars"]["loss"]] == list(range(5))
    np.testing.assert_allclose([v for _, v in run["scalars"]["loss"]], 1.0 / np.arange(1, 6), rtol=1e-7)
    (step, h), = run["histograms"]["h"]
    assert step == 9 and h["num"] == VALUES.size
    assert h["min"] == pytest.approx(VALUES.min()) and h["max"] == pytest.approx(VALUES.max())
    assert sum(h["bucket"]) == VALUES.size
    (step, width, height, pixels), = run["images"]["im"]
    assert (width, height) == (5, 6) and np.array_equal(np.asarray(pixels), IMG_U8)


def test_default_log_dir_reopen_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_c")
    assert w.get_logdir().startswith(os.path.join("runs", "")) and w.get_logdir().endswith("_c")
    w.add_scalar("a", 1.0, 0)
    w.close()
    w.add_scalar("a", 2.0, 1)           # after close, a new event file (as in torch)
    w.close()
    assert len(list((tmp_path / w.get_logdir()).glob("events.out.tfevents*"))) == 2
    assert [v for _, v in _read(tmp_path / w.get_logdir())["."]["scalars"]["a"]] == [1.0, 2.0]
    tw = TorchWriter(tmp_path / "t")
    for writer in (w, tw):              # the same error types as torch for the same misuse
        with pytest.raises(AssertionError):
            writer.add_scalar("v", np.ones(3, np.float32))
        with pytest.raises(TypeError):
            writer.add_hparams([("lr", 1)], {})
        with pytest.raises(TypeError):
            writer.add_hparams({"lr": 0.1}, {"a": 1.0}, hparam_domain_discrete={"lr": ["x"]})
        with pytest.raises(ValueError):
            writer.add_histogram("empty", np.zeros(0, np.float32))
    tw.close()
    w.close()
    with pytest.raises(NotImplementedError, match="add_embedding"):
        w.add_embedding(np.zeros((3, 2)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.body(x)) * 2.0


def test_add_graph(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_graph(Net(), dg.randn(2, 4))
    acc = ea.EventAccumulator(str(tmp_path))
    acc.Reload()
    nodes = {n.name: n for n in acc.Graph().node}
    assert nodes["input/input.0"].op == "IO Node"
    lin = [n for n in nodes if n.startswith("Net/Sequential[body]/Linear[0]/")]
    assert "Net/Sequential[body]/Linear[0]/weight" in lin and "Net/Linear[head]/bias" in nodes
    op0 = next(nodes[n] for n in lin if nodes[n].op not in ("Parameter",))
    assert set(op0.input) == {"input/input.0", "Net/Sequential[body]/Linear[0]/weight",
                              "Net/Sequential[body]/Linear[0]/bias"}
    assert [d.size for d in op0.attr["_output_shapes"].list.shape[0].dim] == [2, 8]
    assert any(n.startswith("Net/Sequential[body]/Tanh[1]/") for n in nodes)
    out = nodes["output/output.0"]
    assert len(out.input) == 1 and nodes[out.input[0]].name.startswith("Net/")   # the * 2.0 at top level
    for n in nodes.values():                 # every edge points at a node of the graph
        assert all(i.split(":")[0] in nodes for i in n.input), n.name


def test_callback_logs_fit(tmp_path):
    dg.manual_seed(0)
    g = np.random.default_rng(1)
    x = g.normal(size=(96, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    train = DataLoader(TensorDataset(x, y), batch_size=16)
    val = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=32)
    model = Net()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    cb = TensorBoard(tmp_path, update_freq=4, histogram_freq=2, example_input=dg.tensor(x[:2]))
    hist = fit(model, "cross_entropy", opt, train, epochs=3, val_loader=val, scheduler=sched,
               callbacks=[cb], verbose=0)
    run = _read(tmp_path)["."]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        steps, values = zip(*run["scalars"][f"epoch/{key}"])
        assert steps == (1, 2, 3)
        np.testing.assert_allclose(values, hist[key], rtol=1e-6)
    steps, lrs = zip(*run["scalars"]["batch/lr"])
    assert steps == (4, 8, 12, 16)                  # 6 batches an epoch, lr halved each epoch
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.05, 0.025], rtol=1e-7)
    assert [s for s, _ in run["scalars"]["batch/loss"]] == [4, 8, 12, 16]
    assert {t for t in run["histograms"]} == {f"{k}/{n}" for k in ("weights", "grads")
                                              for n, _ in model.named_parameters()}
    (step, h), = run["histograms"]["weights/head.weight"]
    assert step == 2 and h["num"] == 24
    acc = ea.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert acc.Tags()["graph"]
    assert cb.state_dict() == {"step": 18}
    with pytest.raises(ValueError, match="update_freq"):
        TensorBoard(tmp_path, update_freq=0)


def test_missing_tensorboardx_names_the_extra(monkeypatch):
    from deepgrad.utils.tensorboard import writer
    monkeypatch.setattr(writer, "_TBX", None)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install deepgrad\[tensorboard\]"):
        SummaryWriter("unused")
    # and deepgrad itself imports without it
    code = ("import sys; sys.modules['tensorboardX'] = None; import deepgrad, deepgrad.train, "
            "deepgrad.utils.tensorboard; from deepgrad.train import TensorBoard; print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert res.stdout.strip() == "ok", res.stderr
