"""Recurrent layers against PyTorch 2.13: RNN/LSTM/GRU over all option combinations, the cells,
packed sequences, gradcheck of the fused BPTT op, and gradient clipping on a long sequence."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn

import deepgrad as dg
import deepgrad.nn as nn
from deepgrad.nn import rnn as drnn
from deepgrad.ops.recurrent import rnn_layer, lstm_cell, gru_cell, rnn_tanh_cell, rnn_relu_cell

from opcheck import assert_close, check_op

torch.set_num_threads(1)

I, H, T, B = 5, 6, 7, 4
LENGTHS = [5, 7, 2, 4]          # unsorted on purpose; the longest equals T

DG = {"RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
TORCH = {"RNN_TANH": torch.nn.RNN, "RNN_RELU": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}


def make_pair(mode, dtype="float32", **kw):
    extra = {"nonlinearity": "relu"} if mode == "RNN_RELU" else {}
    tm = TORCH[mode](I, H, **kw, **extra)
    tm = tm.double() if dtype == "float64" else tm
    m = DG[mode](I, H, **kw, **extra, dtype=dtype)
    m.load_state_dict(tm.state_dict())
    return m, tm


def _states(out, mode):
    return list(out) if mode == "LSTM" else [out]


COMBOS = list(itertools.product(["RNN_TANH", "RNN_RELU", "LSTM", "GRU"], [1, 2], [False, True], [False, True]))


@pytest.mark.parametrize("mode,layers,bidir,batch_first", COMBOS)
@pytest.mark.parametrize("variant", ["plain", "nobias+h0", "lengths+h0", "packed"])
def test_matches_torch(mode, layers, bidir, batch_first, variant):
    torch.manual_seed(0)
    bias = variant != "nobias+h0"
    m, tm = make_pair(mode, num_layers=layers, bidirectional=bidir, batch_first=batch_first, bias=bias)
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)
    D = 2 if bidir else 1
    tx, dx = torch.tensor(xs, requires_grad=True), dg.tensor(xs, requires_grad=True)
    th = dh = None
    if variant != "plain" and variant != "packed":
        hs = [rng.standard_normal((layers * D, B, H)).astype(np.float32) for _ in range(2 if mode == "LSTM" else 1)]
        ths = [torch.tensor(h, requires_grad=True) for h in hs]
        dhs = [dg.tensor(h, requires_grad=True) for h in hs]
        th = tuple(ths) if mode == "LSTM" else ths[0]
        dh = tuple(dhs) if mode == "LSTM" else dhs[0]
    else:
        ths = dhs = []
    if variant == "packed":
        tin = trnn.pack_padded_sequence(tx, LENGTHS, batch_first=batch_first, enforce_sorted=False)
        din = nn.pack_padded_sequence(dx, LENGTHS, batch_first=batch_first, enforce_sorted=False)
        tout, tst = tm(tin, th)
        dout, dst = m(din, dh)
        assert np.array_equal(dout.batch_sizes.numpy(), tout.batch_sizes.numpy())
        tout, _ = trnn.pad_packed_sequence(tout, batch_first=batch_first)
        dout, _ = nn.pad_packed_sequence(dout, batch_first=batch_first)
    elif variant == "lengths+h0":
        tin = trnn.pack_padded_sequence(tx, LENGTHS, batch_first=batch_first, enforce_sorted=False)
        tout, tst = tm(tin, th)
        tout, _ = trnn.pad_packed_sequence(tout, batch_first=batch_first, total_length=T)
        dout, dst = m(dx, dh, lengths=LENGTHS)
    else:
        tout, tst = tm(tx, th)
        dout, dst = m(dx, dh)
    assert_close(dout, tout, np.float32, "output")
    tst, dst = _states(tst, mode), _states(dst, mode)
    for a, b in zip(dst, tst):
        assert_close(a, b, np.float32, "final state")
    # one backward through the output and every final state
    w = rng.standard_normal(tuple(tout.shape)).astype(np.float32)
    ws = [rng.standard_normal(tuple(s.shape)).astype(np.float32) for s in tst]
    tl = (tout * torch.tensor(w)).sum() + sum((s * torch.tensor(v)).sum() for s, v in zip(tst, ws))
    dl = (dout * dg.tensor(w)).sum() + sum((s * dg.tensor(v)).sum() for s, v in zip(dst, ws))
    tl.backward()
    dl.backward()
    assert_close(dx.grad, tx.grad, np.float32, "input grad")
    for a, b in zip(dhs, ths):
        assert_close(a.grad, b.grad, np.float32, "initial state grad")
    for name, p in tm.named_parameters():
        assert_close(m.get_parameter(name).grad, p.grad, np.float32, f"grad of {name}")


@pytest.mark.parametrize("mode", ["RNN_TANH", "LSTM", "GRU"])
def test_unbatched_and_state_dict_names(mode):
    torch.manual_seed(0)
    m, tm = make_pair(mode, num_layers=2, bidirectional=True)
    assert list(m.state_dict().keys()) == list(tm.state_dict().keys())
    x = np.random.default_rng(0).standard_normal((T, I)).astype(np.float32)
    o, s = m(dg.tensor(x))
    to, ts = tm(torch.tensor(x))
    assert_close(o, to, np.float32, "unbatched output")
    for a, b in zip(_states(s, mode), _states(ts, mode)):
        assert_close(a, b, np.float32, "unbatched state")


def test_default_init_and_errors():
    m = nn.LSTM(3, 16, num_layers=2, bidirectional=True)
    bound = 1 / math.sqrt(16)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_hh_l1_reverse" in names and m.weight_ih_l1.shape == (64, 32)
    for p in m.parameters():
        assert p.array.min() >= -bound and p.array.max() <= bound and p.array.std() > bound / 3
    with pytest.raises(RuntimeError, match="input_size"):
        m(dg.randn(4, 2, 5))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        m(dg.randn(4, 2, 3), (dg.zeros(1, 2, 16), dg.zeros(1, 2, 16)))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


def test_dropout_between_layers():
    dg.manual_seed(0)
    m = nn.GRU(I, H, num_layers=2, dropout=0.5)
    x = dg.randn(T, B, I)
    a, _ = m(x)
    b, _ = m(x)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())   # a fresh mask each call
    m.eval()
    c, _ = m(x)
    d, _ = m(x)
    c, d = c.detach(), d.detach()
    np.testing.assert_array_equal(c.numpy(), d.numpy())
    m2 = nn.GRU(I, H, num_layers=2)
    m2.load_state_dict(m.state_dict())
    np.testing.assert_allclose(c.numpy(), m2(x)[0].detach().numpy(), rtol=1e-6)


def test_pack_pad_roundtrip_matches_torch():
    x = np.random.default_rng(0).standard_normal((T, B, 3)).astype(np.float32)
    tp = trnn.pack_padded_sequence(torch.tensor(x), LENGTHS, enforce_sorted=False)
    dp = nn.pack_padded_sequence(dg.tensor(x), LENGTHS, enforce_sorted=False)
    np.testing.assert_array_equal(dp.data.numpy(), tp.data.numpy())
    np.testing.assert_array_equal(dp.batch_sizes.numpy(), tp.batch_sizes.numpy())
    np.testing.assert_array_equal(dp.sorted_indices.numpy(), tp.sorted_indices.numpy())
    padded, lengths = nn.pad_packed_sequence(dp, batch_first=True)
    tpadded, tlengths = trnn.pad_packed_sequence(tp, batch_first=True)
    np.testing.assert_array_equal(padded.numpy(), tpadded.numpy())
    np.testing.assert_array_equal(lengths.numpy(), tlengths.numpy())
    seqs = [dg.tensor(x[:L, i]) for i, L in enumerate(LENGTHS)]
    packed = nn.pack_sequence(seqs, enforce_sorted=False)
    np.testing.assert_array_equal(packed.data.numpy(), tp.data.numpy())
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        nn.pack_padded_sequence(dg.tensor(x), LENGTHS)


# ---- cells: composed of ops, so double backward works -----------------------------------------

CELLS = {
    "rnn_tanh": (1, rnn_tanh_cell, torch.rnn_tanh_cell),
    "rnn_relu": (1, rnn_relu_cell, torch.rnn_relu_cell),
    "gru": (3, gru_cell, torch.gru_cell),
}


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cell_functions(name, dtype):
    g, fn, tfn = CELLS[name]
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal(s).astype(dtype) * 0.7 for s in [(3, 4), (3, 5), (g * 5, 4), (g * 5, 5), (g * 5,), (g * 5,)]]
    check_op(fn, tfn, arrs, gradcheck=dtype == np.float64, double=dtype == np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_cell_function(dtype):
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal(s).astype(dtype) * 0.7 for s in [(3, 4), (3, 5), (3, 5), (20, 4), (20, 5), (20,), (20,)]]
    check_op(lambda x, h, c, *w: lstm_cell(x, h, c, *w),
             lambda x, h, c, *w: torch.lstm_cell(x, (h, c), *w), arrs,
             gradcheck=dtype == np.float64, double=dtype == np.float64)


@pytest.mark.parametrize("cls,tcls,kw", [(nn.RNNCell, torch.nn.RNNCell, {}),
                                         (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
                                         (nn.LSTMCell, torch.nn.LSTMCell, {}),
                                         (nn.GRUCell, torch.nn.GRUCell, {"bias": False})])
def test_cell_modules(cls, tcls, kw):
    torch.manual_seed(0)
    tm = tcls(4, 5, **kw)
    m = cls(4, 5, **kw)
    m.load_state_dict(tm.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    tx, dx = torch.tensor(x, requires_grad=True), dg.tensor(x, requires_grad=True)
    to, do = tm(tx), m(dx)
    to2, do2 = tm(tx, to), m(dx, do)           # feed the state back in
    ts, ds = (list(to2), list(do2)) if cls is nn.LSTMCell else ([to2], [do2])
    for a, b in zip(ds, ts):
        assert_close(a, b, np.float32, "cell output")
    sum(s.sum() * (k + 1) for k, s in enumerate(ts)).backward()
    sum(s.sum() * (k + 1) for k, s in enumerate(ds)).backward()
    assert_close(dx.grad, tx.grad, np.float32, "cell input grad")
    for n, p in tm.named_parameters():
        assert_close(m.get_parameter(n).grad, p.grad, np.float32, f"cell grad {n}")
    one = m(dg.tensor(x[0]))                    # unbatched
    assert (one[0] if isinstance(one, tuple) else one).shape == (5,)


# ---- the fused layer op in float64: central differences -----------------------------------------

@pytest.mark.parametrize("mode", ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("ragged", [False, True])
def test_fused_layer_gradcheck(mode, reverse, ragged):
    g = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    rng = np.random.default_rng(3)
    Tn, Bn, In, Hn = 4, 3, 2, 3
    arrays = [rng.standard_normal((Tn, Bn, In)), rng.standard_normal((Bn, Hn)), rng.standard_normal((Bn, Hn)),
              rng.standard_normal((g * Hn, In)) * 0.6, rng.standard_normal((g * Hn, Hn)) * 0.6,
              rng.standard_normal(g * Hn) * 0.3, rng.standard_normal(g * Hn) * 0.3]
    ts = [dg.tensor(a, requires_grad=True) for a in arrays]
    bs = [3, 3, 2, 1] if ragged else None

    def fn(x, h, c, wi, wh, bi, bh):
        out = rnn_layer(mode, x, h, c if mode == "LSTM" else None, wi, wh, bi, bh, batch_sizes=bs, reverse=reverse)
        return out
    if mode != "LSTM":
        ts[2].requires_grad = False
    assert dg.autograd.gradcheck(fn, ts)


def test_fused_layer_is_one_node_and_differentiates_twice():
    x = dg.randn(5, 2, 3, requires_grad=True)
    m = nn.LSTM(3, 4)
    out, (h, c) = m(x)
    assert type(out.grad_fn).__name__ == "RNNLayer"
    g, = dg.autograd.grad(out.sum(), [x], create_graph=False)
    assert g.shape == x.shape
    # create_graph=True takes the composed cell-by-cell route (tests/test_second_order.py)
    g2, = dg.autograd.grad(m(x)[0].sum(), [x], create_graph=True)
    assert g2.requires_grad and np.allclose(g2.detach().numpy(), g.numpy(), atol=1e-5)


# ---- gradient clipping keeps a long-sequence RNN finite -----------------------------------------

def _train_long_rnn(clip, steps=8):
    """A relu RNN over 120 steps whose recurrent matrix has spectral radius 1.12 > 1."""
    dg.manual_seed(0)
    m = nn.RNN(3, 8, nonlinearity="relu")
    with dg.no_grad():
        m.weight_hh_l0.array[...] = 1.12 * np.eye(8, dtype=np.float32)
    x = dg.tensor(np.abs(np.random.default_rng(0).standard_normal((120, 4, 3))).astype(np.float32))
    opt = dg.optim.SGD(m.parameters(), lr=0.05)
    losses, norms = [], []
    for _ in range(steps):
        opt.zero_grad()
        out, h = m(x)
        loss = ((out[-1] - 1) ** 2).mean()
        loss.backward()
        total = nn.utils.clip_grad_norm_(m.parameters(), max_norm=1.0 if clip else float("inf"))
        norms.append(float(total))
        opt.step()
        losses.append(float(loss))
    return losses, norms, m


def test_gradient_clipping_keeps_long_sequence_training_finite():
    with np.errstate(all="ignore"):
        unclipped, norms_u, m_bad = _train_long_rnn(clip=False)
        clipped, norms_c, m_good = _train_long_rnn(clip=True)
    big = lambda m: max(float(np.abs(p.array).max()) for p in m.parameters())   # noqa: E731
    # both runs start from the same exploding gradient (BPTT through 120 steps of gain 1.12)
    assert norms_u[0] == norms_c[0] and norms_u[0] > 1e12 and unclipped[0] > 1e10
    # unclipped: one SGD step with that gradient blows the weights up (|w| > 1e10) and kills
    # the network (every relu unit dead: the loss is stuck at target^2 = 1, gradients zero)
    assert big(m_bad) > 1e10
    assert unclipped[1:] == [1.0] * (len(unclipped) - 1) and norms_u[-1] == 0.0
    # clipped: the weights stay O(1), every loss is finite and training makes progress
    assert big(m_good) < 10
    assert np.all(np.isfinite(clipped)) and np.all(np.isfinite(norms_c))
    assert clipped[-1] < 1e-6 * clipped[0]
