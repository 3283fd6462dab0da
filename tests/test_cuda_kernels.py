"""The fused GPU kernels (deepgrad/ops/_cuda_kernels.py), checked without a GPU.

Each kernel is one Python function of array-module operations; on a real GPU ``cupy.fuse`` turns
it into one kernel, everywhere else it runs as written. Here ``_ck.FORCE`` makes the ops take
their kernel paths on the strict CuPy stand-in, and every result is compared with the ordinary
CPU op (itself checked against PyTorch elsewhere): the LSTM layer (forward, BPTT, packed
batches, no-grad), training-mode batch norm, softmax + cross-entropy and the SGD/Adam updates.
So the math of every kernel and the code that feeds it views of its buffers are tested here; the
same functions run fused on the H200 (tests/gpu)."""
import numpy as np
import pytest

import deepgrad as dg
from deepgrad.ops import _cuda_kernels as _ck
from deepgrad.testing import strict_cuda

TOL = dict(rtol=2e-5, atol=2e-6)


@pytest.fixture
def forced():
    with strict_cuda():
        _ck.FORCE[0] = True
        try:
            yield
        finally:
            _ck.FORCE[0] = False


def _np(t):
    return None if t is None else np.asarray(t.detach().cpu().numpy())


def _run_module(make, inputs, loss_fn, device):
    dg.manual_seed(0)
    mod = make()
    mod.to(device)
    xs = [x.detach().to(device).requires_grad_(x.is_floating_point()) for x in inputs]
    outs = mod(*xs)
    loss = loss_fn(outs)
    loss.backward()
    return ([_np(o) for o in (outs if isinstance(outs, (tuple, list)) else (outs,)) if isinstance(o, dg.Tensor)],
            [_np(x.grad) for x in xs], [_np(p.grad) for p in mod.parameters()],
            {k: _np(v) for k, v in mod.state_dict().items()})


def _compare(make, inputs, loss_fn):
    cpu = _run_module(make, inputs, loss_fn, "cpu")
    with strict_cuda():
        _ck.FORCE[0] = True
        try:
            gpu = _run_module(make, inputs, loss_fn, "cuda")
        finally:
            _ck.FORCE[0] = False
    for a, b in zip(cpu[0], gpu[0]):
        np.testing.assert_allclose(b, a, **TOL)
    for a, b in zip(cpu[1] + cpu[2], gpu[1] + gpu[2]):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(b, a, **TOL)
    for k in cpu[3]:
        np.testing.assert_allclose(gpu[3][k], cpu[3][k], **TOL)


LSTM_KERNELS = ("lstm_forward", "lstm_forward_record", "lstm_backward")


@pytest.fixture
def lstm_calls(monkeypatch):
    """Count the LSTM kernels' calls (the layer calls them as ``_ck.<name>``), so a test can
    assert that the kernel path really ran, not the CPU loop."""
    calls = dict.fromkeys(LSTM_KERNELS, 0)
    for name in LSTM_KERNELS:
        k = getattr(_ck, name)

        def counted(xp, *args, _k=k, _name=name):
            calls[_name] += 1
            return _k(xp, *args)
        monkeypatch.setattr(_ck, name, counted)
    return calls


def _lstm_loss(outs):
    out, (h, c) = outs
    return (out * out).sum() + (h * 3).sum() + (c * c).sum()


@pytest.mark.parametrize("bidirectional,layers", [(False, 1), (True, 2)])
def test_lstm_layer_kernels_match_cpu(bidirectional, layers, lstm_calls):
    x = dg.randn(6, 3, 5)
    _compare(lambda: dg.nn.LSTM(5, 7, num_layers=layers, bidirectional=bidirectional), [x],
             lambda o: _lstm_loss(o))
    steps = 6 * layers * (2 if bidirectional else 1)
    assert lstm_calls == dict(lstm_forward=0, lstm_forward_record=steps, lstm_backward=steps)


def test_lstm_kernels_packed_batch_match_cpu(lstm_calls):
    from deepgrad.nn.utils.rnn import pack_padded_sequence
    x = dg.randn(5, 3, 4)
    lengths = [5, 3, 2]

    class Packed(dg.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = dg.nn.LSTM(4, 6, num_layers=2, bidirectional=True)

        def forward(self, x):
            out, (h, c) = self.rnn(pack_padded_sequence(x, lengths))
            return out.data, h, c

    _compare(Packed, [x], lambda o: (o[0] ** 2).sum() + o[1].sum() * 2 + (o[2] * o[2]).sum())
    assert lstm_calls == dict(lstm_forward=0, lstm_forward_record=20, lstm_backward=20)


def test_lstm_kernel_without_grad_matches_cpu(forced, lstm_calls):
    dg.manual_seed(1)
    lstm = dg.nn.LSTM(4, 5, num_layers=2)
    x = dg.randn(3, 2, 4)
    want = [a.detach().numpy() for a in lstm(x)[1]]   # CPU arrays: the kernel path is not taken
    assert sum(lstm_calls.values()) == 0
    lstm.to("cuda")
    with dg.no_grad():
        got = lstm(x.to("cuda"))[1]
    for a, b in zip(want, got):
        np.testing.assert_allclose(_np(b), a, **TOL)
    assert lstm_calls == dict(lstm_forward=6, lstm_forward_record=0, lstm_backward=0)


# ---- the LSTM op itself (ops/recurrent.py RNNLayer), kernel path vs the CPU loop ---------------------
# float64 to 1e-13: the kernels group each product as the CPU loop does, so the two agree to the
# last bits on the stand-in (NumPy underneath); a wrong coefficient is off by far more.
OP_TOL = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-14)}
T_, B_, I_, H_ = 5, 4, 3, 6
RAGGED = [4, 4, 3, 1, 1]


def _lstm_op_run(device, dtype, reverse, ragged, bias, grad, given, seed=0):
    """rnn_layer('LSTM', ...) on ``device``: its outputs and, when ``grad``, the input gradients
    of a weighted sum of the outputs ``given`` ('all', or 'last' = h_n and c_n only: no output
    gradient reaches the layer's backward)."""
    from deepgrad.ops.recurrent import rnn_layer
    rng = np.random.default_rng(seed)
    shapes = [(T_, B_, I_), (B_, H_), (B_, H_), (4 * H_, I_), (4 * H_, H_)] + ([(4 * H_,)] * 2 if bias else [])
    ins = [dg.tensor(rng.standard_normal(s).astype(dtype)).to(device).requires_grad_(grad) for s in shapes]
    ws = [dg.tensor(rng.standard_normal(s).astype(dtype)).to(device) for s in [(T_, B_, H_), (B_, H_), (B_, H_)]]
    with dg.set_grad_enabled(grad):
        outs = rnn_layer("LSTM", *ins[:5], *(ins[5:] if bias else [None, None]),
                         batch_sizes=RAGGED if ragged else None, reverse=reverse)
    grads = []
    if grad:
        parts = [(o * w).sum() for o, w in zip(outs, ws)]
        loss = sum(parts[1:], parts[0]) if given == "all" else parts[1] + parts[2]
        loss.backward()
        grads = [_np(t.grad) for t in ins]
    return [_np(o) for o in outs], grads


def _lstm_op_compare(dtype, reverse, ragged, bias, grad, given):
    want = _lstm_op_run("cpu", dtype, reverse, ragged, bias, grad, given)
    with strict_cuda():
        _ck.FORCE[0] = True
        try:
            got = _lstm_op_run("cuda", dtype, reverse, ragged, bias, grad, given)
        finally:
            _ck.FORCE[0] = False
    for a, b in zip(want[0] + want[1], got[0] + got[1]):
        assert b.dtype == a.dtype
        np.testing.assert_allclose(b, a, **OP_TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("grad,given,bias", [(True, "all", True), (True, "last", False), (False, "all", True)])
def test_lstm_op_kernels_match_cpu(dtype, reverse, ragged, grad, given, bias, lstm_calls):
    _lstm_op_compare(dtype, reverse, ragged, bias, grad, given)
    assert lstm_calls == dict(lstm_forward=0 if grad else T_, lstm_forward_record=T_ if grad else 0,
                              lstm_backward=T_ if grad else 0)


# Each output of each kernel, spoiled a little after the kernel ran: the comparison must notice
# (so the tests above really check every value the kernels write: the forward record gate-major,
# backward's gradient batch-major).
_SPOIL = [("lstm_forward", i) for i in (9, 10)] + \
         [("lstm_forward_record", i) for i in (0, 1, 2, 3, 9, 10, 11, 12)] + \
         [("lstm_backward", i) for i in (2, 9, 10, 11, 12)]


@pytest.mark.parametrize("name,arg", _SPOIL, ids=[f"{n}-{i}" for n, i in _SPOIL])
def test_lstm_op_comparison_catches_a_wrong_kernel_output(name, arg, monkeypatch):
    k = getattr(_ck, name)

    def spoiled(xp, *args):
        k(xp, *args)
        out = args[arg]
        out[...] = out * 1.001 + 1e-3
    monkeypatch.setattr(_ck, name, spoiled)
    grad = name != "lstm_forward"
    with pytest.raises(AssertionError):
        _lstm_op_compare(np.float64, False, True, True, grad, "all")


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5)])
def test_batch_norm_kernels_match_cpu(affine, shape):
    x = dg.randn(*shape) * 2 + 1
    make = (lambda: dg.nn.BatchNorm1d(3, affine=affine)) if len(shape) == 2 else \
        (lambda: dg.nn.BatchNorm2d(3, affine=affine))
    w = dg.randn(*shape)
    _compare(make, [x], lambda o: (o * w.to(o.device)).sum())


def test_batch_norm_kernel_after_conv_channels_last_matches_cpu():
    x = dg.randn(2, 3, 6, 6)

    def make():
        return dg.nn.Sequential(dg.nn.Conv2d(3, 4, 3), dg.nn.BatchNorm2d(4), dg.nn.ReLU())

    _compare(make, [x], lambda o: (o * o).sum())


class _CE(dg.nn.Module):
    def __init__(self, target, **kw):
        super().__init__()
        self.target, self.kw = target, kw

    def forward(self, x):
        return dg.nn.functional.cross_entropy(x, self.target.to(x.device), **self.kw)


@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"}, {"reduction": "none"}, {"ignore_index": 2}])
def test_cross_entropy_kernels_match_cpu(kw):
    x = dg.randn(7, 5) * 3
    t = dg.tensor([0, 2, 4, 1, 2, 3, 2])
    loss = (lambda o: (o * dg.arange(7.0).to(o.device)).sum()) if kw.get("reduction") == "none" else (lambda o: o * 2)
    _compare(lambda: _CE(t, **kw), [x], loss)


def test_cross_entropy_kernel_nd_matches_cpu():
    x = dg.randn(2, 4, 3, 3)
    t = dg.randint(0, 4, (2, 3, 3))
    _compare(lambda: _CE(t), [x], lambda o: o)


def test_cross_entropy_kernel_not_taken_for_weights_and_smoothing(forced):
    x = dg.randn(3, 4).to("cuda").requires_grad_()
    t = dg.tensor([0, 1, 3]).to("cuda")
    out = dg.nn.functional.cross_entropy(x, t, label_smoothing=0.1)
    assert out.grad_fn.fused is False
    out = dg.nn.functional.cross_entropy(x, t)
    assert out.grad_fn.fused is True


OPTIMS = [
    (dg.optim.SGD, dict(lr=0.1)),
    (dg.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (dg.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    (dg.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    (dg.optim.Adam, dict(lr=0.01)),
    (dg.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    (dg.optim.AdamW, dict(lr=0.01, betas=(0.8, 0.99))),
    (dg.optim.Adam, dict(lr=0.01, weight_decay=0.05, maximize=True, decoupled_weight_decay=True)),
]


def _optim_run(cls, kw, device):
    dg.manual_seed(3)
    p = dg.nn.Parameter(dg.randn(4, 3).to(device))
    q = dg.nn.Parameter(dg.randn(5).to(device))
    opt = cls([p, q], **kw)
    for step in range(5):
        opt.zero_grad()
        loss = (p * p * (step + 1)).sum() + (q.sin()).sum() + (p.sum() * q.sum())
        loss.backward()
        opt.step()
    return _np(p), _np(q), {k: _np(v) for k, v in opt.state[p].items() if isinstance(v, dg.Tensor)}


@pytest.mark.parametrize("i", range(len(OPTIMS)))
def test_optimizer_kernels_match_cpu(i, forced):
    cls, kw = OPTIMS[i]
    _ck.FORCE[0] = False
    want = _optim_run(cls, kw, "cpu")
    _ck.FORCE[0] = True
    got = _optim_run(cls, kw, "cuda")
    for a, b in zip(want[:2], got[:2]):
        np.testing.assert_allclose(b, a, **TOL)
    for k in want[2]:
        np.testing.assert_allclose(got[2][k], want[2][k], **TOL)


def test_kernel_paths_are_off_on_numpy_and_stand_in_by_default():
    assert not _ck.enabled(np)
    with strict_cuda() as xp:
        assert not _ck.enabled(xp)        # only the real CuPy takes them
        _ck.FORCE[0] = True
        try:
            assert _ck.enabled(xp)
        finally:
            _ck.FORCE[0] = False


@pytest.mark.parametrize("k", _ck.ALL, ids=lambda k: k.name)
def test_every_kernel_runs_plain_on_numpy(k):
    """Each kernel's function is a plain NumPy program off the GPU (a smoke check of every one;
    the comparisons above check their values through the ops)."""
    rng = np.random.default_rng(0)
    a = lambda *s: rng.standard_normal(s).astype(np.float32)   # noqa: E731
    args = {
        "lstm_forward": lambda: [a(2, 3) for _ in range(11)],
        "lstm_forward_record": lambda: [a(2, 3) for _ in range(13)],
        "lstm_backward": lambda: [a(2, 3) for _ in range(13)],
        "bn_forward": lambda: [a(4, 2), a(1, 2), a(1, 2), a(1, 2), a(1, 2), a(4, 2), a(4, 2)],
        "bn_backward": lambda: [a(4, 2), a(4, 2), a(1, 2), a(1, 2), a(1, 2), a(4, 2)],
        "ce_sumexp": lambda: [a(3, 4), a(3, 1)],
        "ce_backward": lambda: [a(3, 4), a(3, 1), np.array([[0], [3], [1]]), np.arange(4)[None], a(3, 1), a(3, 4)],
        "sgd": lambda: [a(5), a(5), 0.1, 1.0, 0.0, 1.0],
        "sgd_momentum": lambda: [a(5), a(5), a(5), 0.1, 0.9, 1.0, 1.0, 0.0, 1.0],
        "sgd_nesterov": lambda: [a(5), a(5), a(5), 0.1, 0.9, 1.0, 0.9, 1.0, 0.0, 1.0],
        "adam": lambda: [a(5), a(5), a(5), np.abs(a(5)), 0.1, 0.999, 0.001, 0.01, 0.5, 1e-8, 1.0, 0.0, 1.0],
        "adam_amsgrad": lambda: [a(5), a(5), a(5), np.abs(a(5)), np.abs(a(5)), 0.1, 0.999, 0.001, 0.01, 0.5,
                                 1e-8, 1.0, 0.0, 1.0],
    }[k.name]()
    out = k(np, *args)
    if k.name == "ce_sumexp":
        np.testing.assert_allclose(out, np.exp(args[0] - args[1]).sum(1), rtol=1e-6)
    else:
        assert out is None
        assert all(np.isfinite(x).all() for x in args if isinstance(x, np.ndarray))
