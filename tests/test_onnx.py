"""deepgrad.onnx.export: the zoo and a table of small op models exported with a dynamic batch axis,
checked by onnx.checker and run by onnxruntime at batch sizes other than the traced one, whose
outputs must equal deepgrad's (1e-5); unsupported ops, batch-dependent constants and a missing
onnx package raise errors that name the problem. onnx and onnxruntime are pinned in the test extra.
"""
import inspect
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import deepgrad as dg
from deepgrad import models as M
from deepgrad import nn
from deepgrad.nn import functional as F

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        yield


def _session(proto):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _randomise_norm_stats(model):
    """Running statistics away from (0, 1), so that batch norm's export is really exercised."""
    rng = np.random.default_rng(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.array[...] = rng.normal(0, 0.2, m.running_mean.shape)
            m.running_var.array[...] = rng.uniform(0.5, 1.5, m.running_var.shape)
            m.weight.array[...] = rng.uniform(0.5, 1.5, m.weight.shape)
            m.bias.array[...] = rng.normal(0, 0.2, m.bias.shape)
    return model


def _outputs(model, inputs):
    with dg.no_grad():
        out = model(*[dg.tensor(a) for a in inputs])
    flat = []

    def walk(o):
        if isinstance(o, dg.Tensor):
            flat.append(o.numpy())
        elif isinstance(o, (tuple, list)):
            for v in o:
                walk(v)
    walk(out)
    return flat


def _check(model, make, names, out_names, dynamic_axes, tmp_path, sizes=(3, 1), trace=2, opset=None):
    """Export ``model`` traced on ``make(trace)``, then compare onnxruntime with deepgrad on
    ``make(n)`` for each n of ``sizes``."""
    model.eval()
    path = tmp_path / "m.onnx"
    proto = dg.onnx.export(model, tuple(dg.tensor(a) for a in make(trace)), path, input_names=names,
                           output_names=out_names, dynamic_axes=dynamic_axes, opset_version=opset)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.SerializeToString() == proto.SerializeToString()
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]          # written atomically, no leftovers
    sess = _session(loaded)
    assert [i.name for i in sess.get_inputs()] == names
    assert [o.name for o in sess.get_outputs()] == out_names
    for n in sizes:
        inputs = make(n)
        got = sess.run(None, dict(zip(names, inputs)))
        want = _outputs(model, inputs)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, **TOL)
    return loaded


def _images(c, h, w=None):
    def make(n):
        return [np.random.default_rng(n).standard_normal((n, c, h, w or h)).astype(np.float32)]
    return make


def _ids(vocab, t):
    def make(n):
        return [np.random.default_rng(n).integers(0, vocab, (n, t)).astype(np.int64)]
    return make


def _small_vgg():
    # The zoo's VGG class and forward (features, adaptive 7x7 average pool, classifier with dropout)
    # at widths a test can afford: VGG() itself would first allocate its 25088 -> 4096 layer.
    v = M.VGG.__new__(M.VGG)
    nn.Module.__init__(v)
    v.features = M.vgg.make_vgg_layers([8, "M", 16, "M"], batch_norm=True)
    v.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    v.classifier = nn.Sequential(nn.Linear(16 * 49, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, 32),
                                 nn.ReLU(True), nn.Dropout(), nn.Linear(32, 10))
    return v


BATCH = {"x": {0: "batch"}, "y": {0: "batch"}}
ZOO = {
    "lenet5": (M.lenet5, _images(1, 28)),
    "mnist_cnn": (M.mnist_cnn, _images(1, 28)),
    "vgg_bn_small": (_small_vgg, _images(3, 16)),
    "resnet18": (lambda: M.resnet18(num_classes=10), _images(3, 16)),
    "resnet20": (M.resnet20, _images(3, 8)),
    "char_lstm": (lambda: M.CharRNN(20, embed_dim=8, hidden_size=16, num_layers=2, dropout=0.2), _ids(20, 6)),
    "mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(),
                                  nn.Linear(8, 3)), _images(1, 3, 4)),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_exports_and_matches_onnxruntime(name, tmp_path):
    factory, make = ZOO[name]
    model = _randomise_norm_stats(factory())
    proto = _check(model, make, ["x"], ["y"], BATCH, tmp_path)
    # parameters and buffers are initializers under their state-dict names
    state = model.state_dict()
    named = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if i.name in state}
    used = {k for k, v in state.items() if v.array.dtype.kind == "f" and "num_batches" not in k}
    assert set(named) == used
    for k, v in named.items():
        np.testing.assert_array_equal(v, state[k].numpy())
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("batch_first,norm_first,activation,opset", [
    (True, False, "relu", None), (False, True, "gelu", None), (True, True, "gelu", 17)])
def test_transformer_encoder_layer(batch_first, norm_first, activation, opset, tmp_path):
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, activation=activation, batch_first=batch_first,
                                       norm_first=norm_first)
    axes = {0: "batch", 1: "seq"} if batch_first else {0: "seq", 1: "batch"}

    def make(n):
        shape = (n, n + 3, 16) if batch_first else (n + 3, n, 16)
        return [np.random.default_rng(n).standard_normal(shape).astype(np.float32)]
    proto = _check(layer, make, ["x"], ["y"], {"x": axes, "y": axes}, tmp_path, opset=opset)
    ops = {n.op_type for n in proto.graph.node}
    assert {"MatMul", "Softmax", "LayerNormalization"} <= ops
    assert ("Gelu" in ops) == (activation == "gelu" and (opset or 20) >= 20)


def test_lstm_with_initial_state_bidirectional(tmp_path):
    lstm = nn.LSTM(5, 7, num_layers=2, bidirectional=True)

    def make(n):
        rng = np.random.default_rng(n)
        return [rng.standard_normal((4, n, 5)).astype(np.float32),
                rng.standard_normal((4, n, 7)).astype(np.float32),
                rng.standard_normal((4, n, 7)).astype(np.float32)]
    axes = {"x": {1: "b"}, "h0": {1: "b"}, "c0": {1: "b"}, "y": {1: "b"}, "hn": {1: "b"}, "cn": {1: "b"}}

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, x, h0, c0):
            return self.lstm(x, (h0, c0))
    proto = _check(Wrap(), make, ["x", "h0", "c0"], ["y", "hn", "cn"], axes, tmp_path)
    lstm_nodes = [n for n in proto.graph.node if n.op_type == "LSTM"]
    assert len(lstm_nodes) == 4
    # and against PyTorch's own LSTM with the same weights (the gate order is PyTorch's)
    import torch
    ref = torch.nn.LSTM(5, 7, num_layers=2, bidirectional=True)
    ref.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in lstm.state_dict().items()})
    inputs = make(3)
    got = _session(proto).run(None, dict(zip(["x", "h0", "c0"], inputs)))
    with torch.no_grad():
        y, (h, c) = ref(torch.from_numpy(inputs[0]), (torch.from_numpy(inputs[1]), torch.from_numpy(inputs[2])))
    for g, w in zip(got, (y, h, c)):
        np.testing.assert_allclose(g, w.numpy(), **TOL)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_gru_and_rnn(cell, tmp_path):
    model = M.CharRNN(11, embed_dim=6, hidden_size=9, cell=cell)
    _check(model, _ids(11, 5), ["x"], ["y"], {"x": {0: "b", 1: "t"}, "y": {0: "b", 1: "t"}}, tmp_path)


# ---------------------------------------------------------------------------------------------
# A table of small models, one family of ops each
# ---------------------------------------------------------------------------------------------

class Fn(nn.Module):
    def __init__(self, f, **mods):
        super().__init__()
        self.f = f
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.f(self, x)


OPS = {
    "conv1d_groups_dilation": (Fn(lambda m, x: m.c(x), c=nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2)),
                               lambda n: (n, 4, 11)),
    "conv_transpose2d": (Fn(lambda m, x: m.c(x), c=nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)),
                         lambda n: (n, 3, 5, 5)),
    "pools": (Fn(lambda m, x: F.avg_pool2d(x, 3, 2, 1) + F.max_pool2d(x, 3, 2, 1, ceil_mode=True)[..., :4, :4]
                 + F.adaptive_avg_pool2d(x, (4, 4)) + F.adaptive_max_pool2d(x, 4)), lambda n: (n, 2, 8, 8)),
    "adaptive_avg_uneven": (Fn(lambda m, x: F.adaptive_avg_pool2d(x, (3, 5))), lambda n: (n, 2, 7, 9)),
    "norms": (Fn(lambda m, x: m.ln(m.gn(m.bn(x))) + F.local_response_norm(x, 3, alpha=0.1, beta=0.6, k=1.5),
                 bn=nn.BatchNorm2d(4), gn=nn.GroupNorm(2, 4),
                 ln=nn.LayerNorm([5, 5], elementwise_affine=False)), lambda n: (n, 4, 5, 5)),
    "activations": (Fn(lambda m, x: m.p(F.leaky_relu(x, 0.2)) + F.elu(x) + F.softplus(x, beta=2) + F.hardtanh(x)
                       + F.gelu(x, approximate="tanh") + F.silu(x) + F.log_softmax(x, 1) + x.sigmoid() * x.tanh(),
                       p=nn.PReLU(3)), lambda n: (n, 3, 4)),
    "elementwise": (Fn(lambda m, x: (x.exp() - 1).abs().sqrt() + (x * x + 1).log() / 3 + x.pow(3) - x.clamp(-0.5, 0.5)
                       + dg.maximum(x, -x) * 0.5 + (x * x + 1).rsqrt() + x.neg()), lambda n: (n, 6)),
    "reductions": (Fn(lambda m, x: dg.cat([x.mean(1, keepdim=True), x.sum(1, keepdim=True), x.var(1, keepdim=True),
                                           x.std(1, keepdim=True), x.amax(1, keepdim=True), x.max(1, keepdim=True)[0],
                                           x.logsumexp(1, keepdim=True), x.cumsum(1), x.norm(dim=1, keepdim=True)], 1)),
                   lambda n: (n, 5)),
    "shapes": (Fn(lambda m, x: dg.stack(list(x.chunk(2, 2)), 1).permute(0, 2, 1, 3).reshape(x.shape[0], -1)[:, 1::2]
                  .unsqueeze(1).expand(-1, 3, -1).flatten(1)[:, None, :7].squeeze(1)), lambda n: (n, 3, 4)),
    "pad_flip_tile": (Fn(lambda m, x: F.pad(x, (1, 2, 0, 1), value=0.5).flip(-1).repeat(1, 2, 1).tril(1)),
                      lambda n: (n, 3, 4)),
    "slicing": (Fn(lambda m, x: x[:, 1, ..., -1:] + x[:, -1, :, ::2].sum(-1, keepdim=True) + x[:, 0, 0:1, :1]),
                lambda n: (n, 3, 4, 5)),
    "index_select": (Fn(lambda m, x: dg.index_select(x, 1, dg.tensor([2, 0, 2])) + x[[0]]
                        + x[:, :, [3, 1]].sum(-1, keepdim=True)),
                     lambda n: (n, 3, 4)),
    "upsample_pixel_shuffle": (Fn(lambda m, x: F.pixel_shuffle(F.interpolate(x, scale_factor=2, mode="bilinear")
                                                               + F.interpolate(x, size=(6, 10), mode="nearest"), 2)),
                               lambda n: (n, 4, 3, 5)),
    "attention": (Fn(lambda m, x: m.a(x, x, x, need_weights=False)[0], a=nn.MultiheadAttention(8, 2, batch_first=True)),
                  lambda n: (n, 3, 8)),
}


@pytest.mark.parametrize("name", list(OPS))
def test_op_table(name, tmp_path):
    model, shape = OPS[name]

    def make(n):
        return [np.random.default_rng(n).standard_normal(shape(n)).astype(np.float32)]
    _randomise_norm_stats(model)
    _check(model, make, ["x"], ["y"], BATCH, tmp_path)


def test_float64_and_no_dynamic_axes(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x = np.random.default_rng(0).standard_normal((5, 3))
    proto = dg.onnx.export(model, dg.tensor(x), None)
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [5, 3]
    got = _session(proto).run(None, {proto.graph.input[0].name: x})[0]
    np.testing.assert_allclose(got, _outputs(model, [x])[0], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

def test_unsupported_op_raises_naming_it(tmp_path):
    model = Fn(lambda m, x: dg.roll(m.l(x), 1, 1), l=nn.Linear(3, 3))
    with pytest.raises(NotImplementedError, match=r"op Roll\b"):
        dg.onnx.export(model, dg.randn(2, 3), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.iterdir())


def test_user_defined_function_raises_naming_it():
    class Twice(dg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2
    with pytest.raises(NotImplementedError, match="Twice"):
        dg.onnx.export(Fn(lambda m, x: Twice.apply(x) + 1), dg.randn(2, 3), None)


def test_constant_that_follows_the_batch_is_refused():
    # a value computed with NumPy from the input's size is invisible to the trace: with a dynamic
    # batch it would be wrong, so the exporter refuses it rather than bake it in
    model = Fn(lambda m, x: x + dg.tensor(np.arange(x.numel(), dtype=np.float32).reshape(tuple(x.shape))))
    with pytest.raises(NotImplementedError, match="dynamic axes"):
        dg.onnx.export(model, dg.randn(2, 3), None, input_names=["x"], dynamic_axes={"x": [0]})
    proto = dg.onnx.export(model, dg.randn(2, 3), None, input_names=["x"])      # static: fine
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


def test_argument_errors():
    model = nn.Linear(3, 2)
    x = dg.randn(2, 3)
    with pytest.raises(ValueError, match="dynamic_axes"):
        dg.onnx.export(model, x, None, input_names=["x"], dynamic_axes={"z": [0]})
    with pytest.raises(ValueError, match="opset_version"):
        dg.onnx.export(model, x, None, opset_version=9)
    with pytest.raises(NotImplementedError, match="TRAINING"):
        dg.onnx.export(model, x, None, training=dg.onnx.TrainingMode.TRAINING)
    with pytest.raises(TypeError, match="no_such_option"):
        dg.onnx.export(model, x, None, no_such_option=1)
    with pytest.raises(ValueError, match="does not run"):
        dg.onnx.export(model, x, None, input_names=["x"], dynamic_axes={"x": [0, 1]})


def test_export_params_false_makes_parameters_inputs():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    proto = dg.onnx.export(model, dg.tensor(x), None, input_names=["x"], export_params=False)
    state = model.state_dict()
    assert not proto.graph.initializer or all(i.name not in state for i in proto.graph.initializer)
    assert [i.name for i in proto.graph.input] == ["x"] + list(state)
    feeds = {"x": x, **{k: v.numpy() for k, v in state.items()}}
    np.testing.assert_allclose(_session(proto).run(None, feeds)[0], _outputs(model, [x])[0], **TOL)
    with pytest.raises(ValueError, match="state-dict name"):
        dg.onnx.export(model, dg.tensor(x), None, input_names=["0.weight"])


def test_modes_restored_and_verify(tmp_path):
    model = M.mnist_cnn()
    model.train()
    dg.onnx.export(model, dg.randn(2, 1, 28, 28), tmp_path / "m.onnx", verify=True)
    assert all(m.training for m in model.modules())
    assert not dg.onnx.is_in_onnx_export()


def test_signature_follows_torch():
    import torch
    ours = inspect.signature(dg.onnx.export).parameters
    theirs = inspect.signature(torch.onnx.export).parameters
    for name, p in ours.items():
        if p.kind is p.VAR_KEYWORD:
            continue
        assert name in theirs, name
        assert p.kind == theirs[name].kind, name
    for name in ("input_names", "output_names", "dynamic_axes", "opset_version", "export_params"):
        assert name in ours
    assert dg.onnx is sys.modules["deepgrad.onnx"]


def test_missing_onnx_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install deepgrad\[onnx\]"):
        dg.onnx.export(nn.Linear(2, 2), dg.randn(1, 2), None)


def test_deepgrad_imports_without_onnx():
    import subprocess
    code = ("import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None; import deepgrad as dg; "
            "import deepgrad.onnx; print(dg.onnx.is_in_onnx_export())")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": root}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_filled_constant_that_follows_the_batch_is_expanded(tmp_path):
    # nn.LSTMCell without a state makes zeros(B, H) from the input's size: exported as a zero expanded
    # to a shape read off the input, so the batch stays dynamic
    cell = nn.LSTMCell(4, 5)
    model = Fn(lambda m, x: m.c(x)[0] + dg.ones(x.shape[0], 1), c=cell)

    def make(n):
        return [np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)]
    _check(model, make, ["x"], ["y"], BATCH, tmp_path)
