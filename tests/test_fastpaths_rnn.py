"""Property tests of the fused recurrent layer's fast paths (issue 14) against the plain path.

The fused op (``ops/recurrent.RNNLayer``) keeps the LSTM's gates gate-major, records the backward
coefficients in place in the gate array and turns them into the gradient in place; the plain path
is the same layer composed cell by cell of ordinary ops (what ``create_graph=True`` runs). Both
are compared on random shapes, directions, ragged batches, with and without biases and initial
states, in float32 and float64; the modules (multi-layer, bidirectional, batch_first, dropout
between layers) are compared with PyTorch and with a loop over the cell functions.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F
from deepgrad.ops.recurrent import gru_cell, lstm_cell, rnn_layer, rnn_relu_cell, rnn_tanh_cell

torch.set_num_threads(1)

SETTINGS = dict(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NG = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
CELL = {"RNN_TANH": rnn_tanh_cell, "RNN_RELU": rnn_relu_cell, "GRU": gru_cell}
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def _plain_forward(mode, x, h, c, w, batch_sizes, reverse):
    """The layer as a loop over the cell functions (ordinary ops), ragged batches included."""
    T, B = x.shape[0], x.shape[1]
    ns = [B] * T if batch_sizes is None else list(batch_sizes)
    outs = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        n = ns[t]
        if mode == "LSTM":
            hn, cn = lstm_cell(x[t, :n], h[:n], c[:n], *w)
            c = cn if n == B else dg.cat([cn, c[n:]], 0)
        else:
            hn = CELL[mode](x[t, :n], h[:n], *w)
        outs[t] = hn if n == B else dg.cat([hn, dg.zeros((B - n,) + tuple(hn.shape[1:]), dtype=hn.dtype)], 0)
        h = hn if n == B else dg.cat([hn, h[n:]], 0)
    out = dg.stack(outs, 0)
    return (out, h, c) if mode == "LSTM" else (out, h)


@settings(**SETTINGS)
@given(mode=st.sampled_from(["LSTM", "LSTM", "GRU", "RNN_TANH", "RNN_RELU"]),
       T=st.integers(1, 6), B=st.integers(1, 4), I=st.integers(1, 5), H=st.integers(1, 7),
       reverse=st.booleans(), bias=st.booleans(), ragged=st.booleans(), states=st.booleans(),
       grads_given=st.sampled_from(["all", "out", "last"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
def test_fused_layer_equals_cell_loop(mode, T, B, I, H, reverse, bias, ragged, states, grads_given,
                                      dtype, seed):
    rng = np.random.default_rng(seed)
    G = NG[mode] * H
    lstm = mode == "LSTM"
    arrays = [rng.standard_normal((T, B, I)), rng.standard_normal((B, H)) * 0.5,
              rng.standard_normal((B, H)) * 0.5, rng.standard_normal((G, I)) * 0.6,
              rng.standard_normal((G, H)) * 0.6, rng.standard_normal(G) * 0.3, rng.standard_normal(G) * 0.3]
    arrays = [a.astype(dtype) for a in arrays]
    bs = None
    if ragged:
        bs = np.sort(rng.integers(1, B + 1, size=T))[::-1].copy()
        bs[0] = B
    gout = [rng.standard_normal(s).astype(dtype) for s in ((T, B, H), (B, H), (B, H))]

    def run(fused):
        ts = [dg.tensor(a, requires_grad=True) for a in arrays]
        x, h0, c0, wi, wh, bi, bh = ts
        w = [wi, wh] + ([bi, bh] if bias else [None, None])
        hx = h0 if states else None
        cx = c0 if states else None
        if fused:
            res = rnn_layer(mode, x, hx, cx if lstm else None, *w, batch_sizes=bs, reverse=reverse)
        else:
            zeros = dg.zeros((B, H), dtype=x.dtype)
            res = _plain_forward(mode, x, h0 if states else zeros, (c0 if states else zeros) if lstm else None,
                                 w, None if bs is None or bs[-1] == B else bs, reverse)
        loss = (res[0] * dg.tensor(gout[0])).sum()
        if grads_given != "out":
            loss = loss + (res[1] * dg.tensor(gout[1])).sum()
            if lstm and grads_given == "all":
                loss = loss + (res[2] * dg.tensor(gout[2])).sum()
        wanted = [x, wi, wh] + ([bi, bh] if bias else []) + ([h0] + ([c0] if lstm else []) if states else [])
        grads = dg.autograd.grad(loss, wanted, allow_unused=True)
        vals = [r.detach().numpy() for r in res]
        return vals + [None if g is None else g.numpy() for g in grads]

    fused, plain = run(True), run(False)
    assert len(fused) == len(plain)
    for a, b in zip(fused, plain):
        if a is None or b is None:
            assert a is None or not np.any(a), "a gradient the plain path does not have"
            continue
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, **TOL[dtype])


@settings(**SETTINGS)
@given(layers=st.integers(1, 2), bidir=st.booleans(), batch_first=st.booleans(), states=st.booleans(),
       T=st.integers(1, 5), B=st.integers(1, 3), I=st.integers(1, 4), H=st.integers(1, 5),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**31 - 1))
def test_lstm_module_matches_torch_on_random_shapes(layers, bidir, batch_first, states, T, B, I, H, dtype,
                                                    seed):
    torch.manual_seed(seed % 10000)
    tm = torch.nn.LSTM(I, H, layers, bidirectional=bidir, batch_first=batch_first)
    tm = tm.double() if dtype == "float64" else tm
    m = nn.LSTM(I, H, layers, bidirectional=bidir, batch_first=batch_first, dtype=dtype)
    m.load_state_dict(tm.state_dict())
    rng = np.random.default_rng(seed)
    D = 2 if bidir else 1
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    h0 = rng.standard_normal((layers * D, B, H)).astype(dtype)
    c0 = rng.standard_normal((layers * D, B, H)).astype(dtype)
    g = [rng.standard_normal(s).astype(dtype) for s in (x.shape[:2] + (D * H,), h0.shape, c0.shape)]

    xd, hd, cd = (dg.tensor(a, requires_grad=True) for a in (x, h0, c0))
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    od, (hnd, cnd) = m(xd, (hd, cd)) if states else m(xd)
    ot, (hnt, cnt) = tm(xt, (ht, ct)) if states else tm(xt)
    ((od * dg.tensor(g[0])).sum() + (hnd * dg.tensor(g[1])).sum() + (cnd * dg.tensor(g[2])).sum()).backward()
    ((ot * torch.tensor(g[0])).sum() + (hnt * torch.tensor(g[1])).sum() + (cnt * torch.tensor(g[2])).sum()).backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    for a, b in ((od, ot), (hnd, hnt), (cnd, cnt)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
    pairs = [(xd, xt)] + ([(hd, ht), (cd, ct)] if states else [])
    pairs += [(p, tp) for (_, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters())]
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)


def test_lstm_dropout_between_layers_equals_cell_loop():
    """Dropout between layers: the fused module and a loop over lstm_cell with F.dropout draw
    the same masks from the same seed and give the same outputs and gradients."""
    I, H, T, B, L = 3, 5, 4, 2, 3
    m = nn.LSTM(I, H, L, dropout=0.5, dtype="float64")
    m.train()
    x = np.random.default_rng(0).standard_normal((T, B, I))

    def fused():
        dg.manual_seed(7)
        xt = dg.tensor(x, requires_grad=True)
        out, (h, c) = m(xt)
        (out.sum() + (h * h).sum() + c.sum()).backward()
        return [out.detach().numpy(), h.detach().numpy(), c.detach().numpy(), xt.grad.numpy()] + \
            [p.grad.numpy().copy() for p in m.parameters()]

    def plain():
        dg.manual_seed(7)
        xt = dg.tensor(x, requires_grad=True)
        inp, hs, cs = xt, [], []
        for layer in range(L):
            w = [getattr(m, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            zeros = dg.zeros((B, H), dtype=xt.dtype)
            out, h, c = _plain_forward("LSTM", inp, zeros, zeros, w, None, False)
            hs.append(h)
            cs.append(c)
            inp = F.dropout(out, 0.5, True) if layer < L - 1 else out
        h, c = dg.stack(hs, 0), dg.stack(cs, 0)
        (inp.sum() + (h * h).sum() + c.sum()).backward()
        return [inp.detach().numpy(), h.detach().numpy(), c.detach().numpy(), xt.grad.numpy()] + \
            [p.grad.numpy().copy() for p in m.parameters()]

    a = fused()
    m.zero_grad()
    b = plain()
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ragged", [False, True])
def test_lstm_retained_graph_second_backward_same_gradient(ragged):
    """The LSTM's backward turns its records into the gradient in place; a second backward through
    a retained graph rebuilds them (runs forward again) and gets the same gradients; after a
    backward without retain_graph a further one raises as for any node."""
    rng = np.random.default_rng(3)
    T, B, I, H = 5, 4, 3, 6
    ts = [dg.tensor(rng.standard_normal(s) * 0.5, requires_grad=True)
          for s in ((T, B, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    out, h, c = rnn_layer("LSTM", *ts, batch_sizes=[4, 4, 3, 3, 1] if ragged else None)
    loss = (out * out).sum() + h.sum() + (c * c).sum()
    first = dg.autograd.grad(loss, ts, retain_graph=True)
    second = dg.autograd.grad(loss, ts, retain_graph=False)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(RuntimeError, match="second time"):
        dg.autograd.grad(loss, ts)


def test_lstm_proj_size_is_refused():
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
