"""deepgrad.compile: captured-and-replayed training steps give eager's parameters (bit for bit:
the replay runs the same NumPy calls in the same order), guards re-record instead of replaying
a wrong branch, graph breaks fall back to eager (or raise under fullgraph=True)."""
import warnings

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F
from deepgrad.compiler import GraphBreak, config


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(8, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.1, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.layer(self.emb(x)).mean(1))


class CharLSTM(nn.Module):
    def __init__(self, V=11, H=16):
        super().__init__()
        self.emb = nn.Embedding(V, 8)
        self.lstm = nn.LSTM(8, H, batch_first=True)
        self.out = nn.Linear(H, V)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.out(h).reshape(-1, 11)


def _models():
    from deepgrad.models import lenet, resnet
    return {
        "mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3),
                                      nn.Linear(32, 10)),
                lambda rs, b: rs.randn(b, 1, 8, 8), 10),
        "autoencoder": (lambda: nn.Sequential(nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 8),
                                              nn.Linear(8, 32), nn.Sigmoid(), nn.Linear(32, 64)),
                        lambda rs, b: rs.rand(b, 64), None),
        "lenet5": (lambda: lenet.lenet5(), lambda rs, b: rs.randn(b, 1, 28, 28), 10),
        "mnist_cnn": (lambda: lenet.mnist_cnn(), lambda rs, b: rs.randn(b, 1, 28, 28), 10),
        "resnet20": (lambda: resnet.resnet20(), lambda rs, b: rs.randn(b, 3, 32, 32), 10),
        "char_lstm": (CharLSTM, lambda rs, b: rs.randint(0, 11, (b, 7)), 11),
        "transformer": (TinyTransformer, lambda rs, b: rs.randn(b, 6, 8), 5),
    }


def _train(name, compiled, steps=3, batch=4, sched=False, adam=False):
    make, data, C = _models()[name]
    dg.manual_seed(0)
    model = make()
    opt = (dg.optim.Adam(model.parameters(), lr=1e-3) if adam else
           dg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    sch = dg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5) if sched else None

    def step(x, y):
        opt.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y) if C else F.mse_loss(out, y)
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = dg.compile(step, fullgraph=True)     # no graph break anywhere in these steps
    rs = np.random.RandomState(1)
    dg.manual_seed(7)
    losses = []
    for _ in range(steps):
        xa = data(rs, batch)
        x = dg.tensor(xa.astype(np.float32) if xa.dtype.kind == "f" else xa)
        if C is None:
            y = x
        else:
            n = x.shape[0] * (7 if name == "char_lstm" else 1)
            y = dg.tensor(rs.randint(0, C, n))
        losses.append(step(x, y).item())
        if sch:
            sch.step()
    return model, losses, step


def _same(m1, m2, rtol=1e-6):
    sd1, sd2 = m1.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys()
    for k in sd1:
        a, b = sd1[k].array, sd2[k].array
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("name", ["mlp", "autoencoder", "lenet5", "mnist_cnn", "resnet20", "char_lstm",
                                  "transformer"])
def test_compiled_training_matches_eager(name):
    steps = 2 if name == "resnet20" else 4
    m1, l1, _ = _train(name, False, steps=steps, batch=2 if name == "resnet20" else 4)
    m2, l2, st = _train(name, True, steps=steps, batch=2 if name == "resnet20" else 4)
    cf = st._compiled
    assert not cf.eager_reasons, cf.eager_reasons
    assert cf.last_program is not None
    assert l1 == l2
    _same(m1, m2, rtol=0)       # the same NumPy calls in the same order: bit-identical


def test_adam_and_lr_scheduler_between_steps():
    # the optimizer step runs as an opaque call at replay, so lr changes and Adam's step count
    # are honoured
    m1, l1, _ = _train("mlp", False, steps=5, sched=True, adam=True)
    m2, l2, st = _train("mlp", True, steps=5, sched=True, adam=True)
    assert st._compiled.recordings == 2          # grads absent, then present
    assert l1 == l2
    _same(m1, m2, rtol=0)


def _net():
    dg.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))


def test_compiled_forward_no_grad_and_with_grad():
    model = _net()
    ref = _net()
    cm = dg.compile(model)
    assert cm._orig_mod is model and getattr(cm, "0") is model[0] and cm.training
    assert all(k.startswith("_orig_mod.") for k in cm.state_dict())
    rs = np.random.RandomState(0)
    for i in range(3):
        x = dg.tensor(rs.randn(5, 6).astype(np.float32))
        with dg.no_grad():
            dg.manual_seed(10 + i)
            a = cm(x)
            dg.manual_seed(10 + i)
            b = ref(x)
        np.testing.assert_array_equal(a.array, b.array)
    assert cm.compiled.recordings == 1 and cm.compiled.last_program is not None
    _same(model, ref, rtol=0)            # running statistics too
    cm.eval()
    ref.eval()
    with dg.no_grad():
        np.testing.assert_array_equal(cm(x).array, ref(x).array)
    assert cm.compiled.recordings == 2  # the training flag is part of the signature
    cm.train()
    ref.train()
    # under grad mode the replayed forward hands autograd one node running the recorded backward
    opt = dg.optim.SGD(model.parameters(), lr=0.1)
    ropt = dg.optim.SGD(ref.parameters(), lr=0.1)
    for i in range(4):
        x = dg.tensor(rs.randn(5, 6).astype(np.float32))
        y = dg.tensor(rs.randint(0, 3, 5))
        for m, o in ((cm, opt), (ref, ropt)):
            o.zero_grad()
            dg.manual_seed(i)
            out = m(x)
            assert out.requires_grad and out.grad_fn is not None
            if m is cm:
                node = out.grad_fn
            F.cross_entropy(out, y).backward()
            o.step()
        _same(model, ref, rtol=0)
    assert cm.compiled.recordings == 3
    assert node.name() == "CompiledFunctionBackward"
    # a compiled function of a tensor that requires grad: gradient flows to the input
    f = dg.compile(lambda a: (a * a).sin().sum())
    for _ in range(2):
        a = dg.tensor(rs.randn(4).astype(np.float32), requires_grad=True)
        f(a).backward()
        np.testing.assert_allclose(a.grad.array, 2 * a.array * np.cos(a.array * a.array), rtol=1e-6)


def test_batch_size_change_rerecords():
    def run(compiled):
        dg.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        f = dg.compile(step) if compiled else step
        rs = np.random.RandomState(0)
        losses = []
        for b in (4, 4, 6, 6, 4, 6, 2):
            x = dg.tensor(rs.randn(b, 5).astype(np.float32))
            losses.append(f(x, dg.tensor(rs.randint(0, 3, b))).item())
        return model, losses, f
    m1, l1, _ = run(False)
    m2, l2, f = run(True)
    assert l1 == l2
    _same(m1, m2, rtol=0)
    # (4, no .grad yet), (4), (6), (2): one recording per signature, replays otherwise
    assert f._compiled.recordings == 4


def test_item_branch_is_guarded():
    @dg.compile
    def f(x):
        loss = (x * x).sum()
        if loss.item() > 1:
            return x * 2
        return x * 3

    small = dg.tensor(np.full(3, 0.1, np.float32))
    big = dg.tensor(np.full(3, 2.0, np.float32))
    other_small = dg.tensor(np.full(3, 0.2, np.float32))
    np.testing.assert_array_equal(f(small).array, small.array * 3)
    np.testing.assert_array_equal(f(other_small).array, other_small.array * 3)   # replayed
    assert f._compiled.recordings == 1
    np.testing.assert_array_equal(f(big).array, big.array * 2)                   # guard fails
    assert f._compiled.recordings == 2
    np.testing.assert_array_equal(f(small).array, small.array * 3)
    np.testing.assert_array_equal(f(big * 3).array, big.array * 6)
    assert f._compiled.recordings == 2


def test_all_branch_and_state_untouched_by_failed_guard():
    model = _net()
    ref = _net()
    opt = dg.optim.SGD(model.parameters(), lr=0.1)
    ropt = dg.optim.SGD(ref.parameters(), lr=0.1)

    def make(m, o):
        def step(x):
            o.zero_grad()
            out = m(x)                       # batch norm updates running stats in place
            if (x > 0).all():
                loss = out.sum()
            else:
                loss = (out * out).mean()
            loss.backward()
            o.step()
            return loss
        return step
    f, g = dg.compile(make(model, opt)), make(ref, ropt)
    rs = np.random.RandomState(3)
    for i in range(6):
        a = rs.rand(5, 6).astype(np.float32) + 0.1
        if i in (3, 4):
            a[0, 0] = -1
        dg.manual_seed(i)
        l1 = f(dg.tensor(a))
        dg.manual_seed(i)
        l2 = g(dg.tensor(a))
        assert l1.item() == l2.item()
    _same(model, ref, rtol=0)


def test_float_value_used_in_arithmetic_and_cap_warning(monkeypatch):
    @dg.compile
    def f(x):
        s = float(x.sum())            # the value itself is used: guarded exactly
        return x * s

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for k in range(6):
            x = dg.tensor(np.full(2, k + 1.0, np.float32))
            np.testing.assert_array_equal(f(x).array, x.array * x.array.sum())
    msgs = [str(m.message) for m in w if issubclass(m.category, RuntimeWarning)]
    assert len(msgs) == 1 and "changes on every call" in msgs[0]
    assert f._compiled.recordings == config.unstable_guard_limit   # then eager for that signature

    monkeypatch.setattr(config, "cache_size_limit", 3)

    @dg.compile
    def g(x):
        return x * 2

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for n in range(1, 7):             # a new shape every call
            x = dg.tensor(np.ones(n, np.float32))
            np.testing.assert_array_equal(g(x).array, x.array * 2)
    msgs = [str(m.message) for m in w if issubclass(m.category, RuntimeWarning)]
    assert len(msgs) == 1 and "cache_size_limit" in msgs[0] and "eagerly" in msgs[0]
    assert g._compiled.recordings == 3


def test_int_shape_from_data_is_guarded():
    @dg.compile
    def f(x):
        n = int((x > 0).sum())
        return x[:n] * 2

    for vals in ([1, 2, -1], [1, -2, -1], [3, 4, -1], [1, 1, 1]):
        x = dg.tensor(np.array(vals, np.float32))
        n = int((x.array > 0).sum())
        np.testing.assert_array_equal(f(x).array, x.array[:n] * 2)


def test_graph_break_falls_back_and_fullgraph_raises(capsys):
    def f(x):
        y = x * 2
        print(y)
        return y + 1

    cf = dg.compile(f)
    x = dg.tensor(np.ones(2, np.float32))
    for _ in range(2):
        np.testing.assert_array_equal(cf(x).array, np.full(2, 3.0, np.float32))
    assert "test_compile.py" in next(iter(cf._compiled.eager_reasons.values()))
    assert capsys.readouterr().out.count("tensor") == 2          # printed on every call
    with pytest.raises(GraphBreak, match=r"cannot capture .* at .*test_compile\.py:\d+: print\(y\)"):
        dg.compile(f, fullgraph=True)(x)

    def g(x):
        return dg.tensor((x * 2).tolist())
    with pytest.raises(GraphBreak, match="tolist"):
        dg.compile(g, fullgraph=True)(x)
    np.testing.assert_array_equal(dg.compile(g)(x).array, [2.0, 2.0])


def test_dropout_replay_follows_the_generator():
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5))
    cm = dg.compile(model)
    x = dg.tensor(np.ones((3, 4), np.float32))
    with dg.no_grad():
        outs = []
        for seed in (1, 2, 1):
            dg.manual_seed(seed)
            outs.append(cm(x).array)
            dg.manual_seed(seed)
            np.testing.assert_array_equal(outs[-1], model(x).array)
    assert not np.array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_print_graph_and_dot():
    model = _net()
    cm = dg.compile(model)
    with dg.no_grad():
        cm(dg.tensor(np.ones((4, 6), np.float32)))
    prog = cm.compiled.last_program
    import io
    buf = io.StringIO()
    prog.print(file=buf)
    text = buf.getvalue()
    # "matmul": np.matmul, or at more than one thread the one-BLAS-thread product (deepgrad/_parallel.py)
    assert "def replay" in text and "matmul" in text and "rng_random" in text
    dot = prog.to_dot()
    assert dot.startswith("digraph") and "->" in dot


def test_number_kept_by_python_code_is_not_replayed():
    log = []

    @dg.compile
    def f(x):
        log.append((x * x).sum().item())       # a Python side effect on a value from data
        return x + 1

    x = dg.tensor(np.ones(3, np.float32))
    for _ in range(3):
        np.testing.assert_array_equal(f(x).array, x.array + 1)
    assert log == [3.0, 3.0, 3.0]
    assert "outlives" in next(iter(f._compiled.eager_reasons.values()))


def test_module_attribute_change_records_again():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    cm = dg.compile(model)
    x = dg.tensor(np.ones((2, 4), np.float32))
    with dg.no_grad():
        cm(x)
        cm(x)
        assert cm.compiled.recordings == 1
        model[1].p = 0.0                    # a plain attribute the program baked in
        np.testing.assert_array_equal(cm(x).array, model[0](x).array)
    assert cm.compiled.recordings == 2


def test_compiled_module_in_an_eager_training_loop():
    # dg.compile(model) used as torch.compile(model) is: forward replayed, backward through the
    # recorded backward (the embedding's bound-check guards move into the forward program)
    def run(compiled):
        dg.manual_seed(0)
        model = CharLSTM()
        m = dg.compile(model) if compiled else model
        opt = dg.optim.Adam(model.parameters(), lr=1e-2)
        rs = np.random.RandomState(0)
        for _ in range(4):
            x = dg.tensor(rs.randint(0, 11, (3, 7)))
            y = dg.tensor(rs.randint(0, 11, 21))
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            dg.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
        return model, m
    ref, _ = run(False)
    model, cm = run(True)
    assert cm.compiled.recordings == 1 and not cm.compiled.eager_reasons
    _same(ref, model, rtol=0)


W_GLOBAL = dg.tensor(np.ones(3, np.float32))


def test_rebinding_between_calls_is_seen():
    global W_GLOBAL

    @dg.compile
    def f(x):
        return x * W_GLOBAL

    x = dg.tensor(np.arange(3, dtype=np.float32))
    with dg.no_grad():
        np.testing.assert_array_equal(f(x).array, x.array)
        W_GLOBAL.array = np.full(3, 2.0, np.float32)          # p.data = ... : state read at the start
        np.testing.assert_array_equal(f(x).array, x.array * 2)
        W_GLOBAL = dg.tensor(np.full(3, 5.0, np.float32))      # the global names another tensor
        np.testing.assert_array_equal(f(x).array, x.array * 5)
        xt = dg.tensor(np.arange(6, dtype=np.float32).reshape(3, 2)).t()[0]   # strided input
        np.testing.assert_array_equal(f(xt).array, xt.array * 5)
        x.add_(1)                                               # in place between calls
        np.testing.assert_array_equal(f(x).array, x.array * 5)

    k = [2.0]

    def make(scale):
        @dg.compile
        def g(x, s):
            return x * s * scale
        return g
    g = make(3.0)
    with dg.no_grad():
        for s in (1.0, 2.0, 2.0):
            np.testing.assert_array_equal(g(x, s).array, x.array * s * 3.0)
    assert g._compiled.recordings == 2 and k


@pytest.mark.parametrize("max_norm", [0.05, 1e3])      # clipping active, and a no-op factor of 1
def test_clip_grad_norm_is_captured(max_norm):
    """clip_grad_norm_ works on arrays only (no Python float read from the gradients), so a step
    that clips is captured whole (fullgraph) and replays eager's parameters bit for bit."""
    def run(compiled):
        dg.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            opt.step()
            return loss, norm

        f = dg.compile(step, fullgraph=True) if compiled else step
        rs = np.random.RandomState(3)
        norms = []
        for _ in range(5):
            x = dg.tensor(rs.randn(5, 6).astype(np.float32))
            y = dg.tensor(rs.randint(0, 3, 5))
            norms.append(float(f(x, y)[1]))
        return [p.detach().numpy().copy() for p in model.parameters()], norms, f

    (pe, ne, _), (pc, nc, f) = run(False), run(True)
    assert ne == nc
    for a, b in zip(pe, pc):
        np.testing.assert_array_equal(a, b)
    assert f._compiled.recordings == 2          # grads absent, then present; replays afterwards
    assert not f._compiled.eager_reasons
