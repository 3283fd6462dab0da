"""Attention against PyTorch 2.13: scaled_dot_product_attention, MultiheadAttention (masks,
batch_first, kdim/vdim, bias_kv, zero_attn, unbatched), Bahdanau additive attention and the
Transformer encoder/decoder layers."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F

from opcheck import assert_close, check_op

torch.set_num_threads(1)


# ---- scaled_dot_product_attention: composed of ops (gradcheck + double backward) ---------------

@pytest.mark.parametrize("case", ["plain", "bool_mask", "float_mask", "causal", "scale"])
def test_sdpa_matches_torch(case):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s) for s in [(2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)])
    kw = {}
    if case == "causal":
        k, v = k[:, :, :3], v[:, :, :3]
        kw = dict(is_causal=True)
    elif case == "scale":
        kw = dict(scale=0.3)
    if case == "bool_mask":
        mask = rng.random((3, 5)) > 0.3
        mask[:, 0] = True
        check_op(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=dg.tensor(mask)),
                 lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, attn_mask=torch.tensor(mask)), [q, k, v])
    elif case == "float_mask":
        mask = rng.standard_normal((2, 1, 3, 5))
        check_op(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m),
                 lambda a, b, c, m: TF.scaled_dot_product_attention(a, b, c, attn_mask=m), [q, k, v, mask])
    else:
        check_op(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kw),
                 lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, **kw), [q, k, v])


def test_sdpa_float32_and_dropout():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((3, 6, 8)).astype(np.float32) for _ in range(3))
    check_op(F.scaled_dot_product_attention, TF.scaled_dot_product_attention, [q, k, v])
    dg.manual_seed(0)
    a = F.scaled_dot_product_attention(dg.tensor(q), dg.tensor(k), dg.tensor(v), dropout_p=0.5)
    b = F.scaled_dot_product_attention(dg.tensor(q), dg.tensor(k), dg.tensor(v), dropout_p=0.5)
    assert not np.allclose(a.numpy(), b.numpy())


# ---- MultiheadAttention ------------------------------------------------------------------------

E, NH, L, S, N = 8, 2, 4, 6, 3
MASKS = ["none", "bool2d", "float3d", "kpm_bool", "kpm_float", "both"]


def _masks(kind, rng):
    am = kpm = None
    if kind in ("bool2d", "both"):
        am = np.triu(np.ones((L, S), bool), 2)
    if kind == "float3d":
        am = rng.standard_normal((N * NH, L, S)).astype(np.float32)
    if kind in ("kpm_bool", "both"):
        kpm = np.zeros((N, S), bool)
        kpm[0, -2:] = True
    if kind == "kpm_float":
        kpm = rng.standard_normal((N, S)).astype(np.float32)
    return am, kpm


MHA_CASES = [dict(), dict(batch_first=True), dict(kdim=3, vdim=5), dict(bias=False),
             dict(add_bias_kv=True, add_zero_attn=True)]


@pytest.mark.parametrize("kw,mask", list(itertools.product(MHA_CASES, MASKS)),
                         ids=[f"{'-'.join(k for k in c) or 'default'}-{m}" for c, m in itertools.product(MHA_CASES, MASKS)])
@pytest.mark.parametrize("average", [True, False])
def test_mha_matches_torch(kw, mask, average):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, NH, **kw)
    m = nn.MultiheadAttention(E, NH, **kw)
    assert set(m.state_dict()) == set(tm.state_dict())
    m.load_state_dict(tm.state_dict())
    rng = np.random.default_rng(2)
    bf = kw.get("batch_first", False)
    shp = lambda ln, d: (N, ln, d) if bf else (ln, N, d)   # noqa: E731
    arrs = [rng.standard_normal(shp(L, E)), rng.standard_normal(shp(S, kw.get("kdim", E))),
            rng.standard_normal(shp(S, kw.get("vdim", E)))]
    arrs = [a.astype(np.float32) for a in arrs]
    am, kpm = _masks(mask, rng)
    T = [torch.tensor(a, requires_grad=True) for a in arrs]
    D = [dg.tensor(a, requires_grad=True) for a in arrs]
    opt = lambda mod, conv: dict(attn_mask=None if am is None else conv(am),   # noqa: E731
                                 key_padding_mask=None if kpm is None else conv(kpm),
                                 average_attn_weights=average)
    to, tw = tm(*T, **opt(tm, torch.tensor))
    do, dw = m(*D, **opt(m, dg.tensor))
    assert_close(do, to, np.float32, "attn output")
    assert_close(dw, tw, np.float32, "attn weights")
    g = rng.standard_normal(tuple(to.shape)).astype(np.float32)
    gw = rng.standard_normal(tuple(tw.shape)).astype(np.float32)
    ((to * torch.tensor(g)).sum() + (tw * torch.tensor(gw)).sum()).backward()
    ((do * dg.tensor(g)).sum() + (dw * dg.tensor(gw)).sum()).backward()
    for i, (a, b) in enumerate(zip(D, T)):
        assert_close(a.grad, b.grad, np.float32, f"grad of input {i}")
    for name, p in tm.named_parameters():
        assert_close(m.get_parameter(name).grad, p.grad, np.float32, f"grad of {name}")


def test_mha_unbatched_need_weights_and_dropout():
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, NH, dropout=0.3)
    m = nn.MultiheadAttention(E, NH, dropout=0.3)
    m.load_state_dict(tm.state_dict())
    x = np.random.default_rng(0).standard_normal((L, E)).astype(np.float32)
    tm.eval()
    m.eval()
    to, tw = tm(*(torch.tensor(x),) * 3)
    do, dw = m(*(dg.tensor(x),) * 3)
    assert_close(do, to, np.float32, "unbatched output")
    assert_close(dw, tw, np.float32, "unbatched weights")
    out, w = m(*(dg.tensor(x),) * 3, need_weights=False)
    assert w is None and out.shape == (L, E)
    m.train()                                   # dropout on the attention weights
    dg.manual_seed(0)
    a, _ = m(*(dg.tensor(x),) * 3)
    b, _ = m(*(dg.tensor(x),) * 3)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    with pytest.raises(RuntimeError, match="attn_mask"):
        m(*(dg.tensor(x),) * 3, attn_mask=dg.zeros(2, 2))
    with pytest.raises(AssertionError):
        nn.MultiheadAttention(7, 2)


def test_mha_gradcheck_float64():
    m = nn.MultiheadAttention(4, 2, dtype="float64", kdim=3, vdim=2)
    rng = np.random.default_rng(0)
    q, k, v = (dg.tensor(rng.standard_normal(s), requires_grad=True) for s in [(3, 2, 4), (5, 2, 3), (5, 2, 2)])
    kpm = dg.tensor(np.array([[False] * 5, [False, False, False, True, True]]))
    assert dg.autograd.gradcheck(lambda a, b, c: m(a, b, c, key_padding_mask=kpm), [q, k, v])


# ---- additive (Bahdanau) attention -------------------------------------------------------------

def _torch_additive(m, q, k, v, kpm):
    Wq, Wk, bk, vw = (torch.tensor(p.detach().numpy()) for p in
                      (m.query_proj.weight, m.key_proj.weight, m.key_proj.bias, m.v.weight))
    scores = (torch.tanh((q @ Wq.T).unsqueeze(2) + (k @ Wk.T + bk).unsqueeze(1)) @ vw.T).squeeze(-1)
    if kpm is not None:
        scores = scores.masked_fill(torch.tensor(kpm).unsqueeze(1), float("-inf"))
    w = torch.softmax(scores, -1)
    return w @ v, w


@pytest.mark.parametrize("single", [False, True])
def test_additive_attention(single):
    dg.manual_seed(0)
    m = nn.AdditiveAttention(4, key_dim=3, hidden_dim=5, dtype="float64")
    rng = np.random.default_rng(0)
    qs = rng.standard_normal((2, 4) if single else (2, 3, 4))
    ks, vs = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 2))
    kpm = np.zeros((2, 6), bool)
    kpm[1, 4:] = True
    ctx, w = m(dg.tensor(qs), dg.tensor(ks), dg.tensor(vs), key_padding_mask=dg.tensor(kpm))
    tq = torch.tensor(qs if not single else qs[:, None])
    tctx, tw = _torch_additive(m, tq, torch.tensor(ks), torch.tensor(vs), kpm)
    if single:
        tctx, tw = tctx[:, 0], tw[:, 0]
    assert_close(ctx, tctx, np.float64, "context")
    assert_close(w, tw, np.float64, "weights")
    np.testing.assert_allclose(w.detach().numpy().sum(-1), 1.0)
    assert np.all(w.detach().numpy()[1, ..., 4:] == 0)
    x = [dg.tensor(a, requires_grad=True) for a in (qs, ks, vs)]
    assert dg.autograd.gradcheck(lambda a, b, c: m(a, b, c, key_padding_mask=dg.tensor(kpm)), x)


# ---- Transformer layers ------------------------------------------------------------------------

@pytest.mark.parametrize("norm_first,activation,batch_first",
                         [(False, "relu", False), (True, "gelu", True), (True, "relu", False)])
def test_transformer_layers_match_torch(norm_first, activation, batch_first):
    torch.manual_seed(0)
    kw = dict(dim_feedforward=16, dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first)
    te, td = torch.nn.TransformerEncoderLayer(E, NH, **kw), torch.nn.TransformerDecoderLayer(E, NH, **kw)
    de, dd = nn.TransformerEncoderLayer(E, NH, **kw), nn.TransformerDecoderLayer(E, NH, **kw)
    de.load_state_dict(te.state_dict())
    dd.load_state_dict(td.state_dict())
    rng = np.random.default_rng(0)
    shp = lambda ln: (N, ln, E) if batch_first else (ln, N, E)   # noqa: E731
    src, tgt = rng.standard_normal(shp(S)).astype(np.float32), rng.standard_normal(shp(L)).astype(np.float32)
    kpm = np.zeros((N, S), bool)
    kpm[1, -2:] = True
    causal = np.triu(np.full((L, L), -np.inf, np.float32), 1)
    ts, tt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    ds, dt = dg.tensor(src, requires_grad=True), dg.tensor(tgt, requires_grad=True)
    tmem = te(ts, src_key_padding_mask=torch.tensor(kpm))
    dmem = de(ds, src_key_padding_mask=dg.tensor(kpm))
    assert_close(dmem, tmem, np.float32, "encoder output")
    tout = td(tt, tmem, tgt_mask=torch.tensor(causal), memory_key_padding_mask=torch.tensor(kpm))
    dout = dd(dt, dmem, tgt_mask=dg.tensor(causal), memory_key_padding_mask=dg.tensor(kpm))
    assert_close(dout, tout, np.float32, "decoder output")
    g = rng.standard_normal(tuple(tout.shape)).astype(np.float32)
    (tout * torch.tensor(g)).sum().backward()
    (dout * dg.tensor(g)).sum().backward()
    assert_close(ds.grad, ts.grad, np.float32, "src grad")
    assert_close(dt.grad, tt.grad, np.float32, "tgt grad")
    for mod, tmod in ((de, te), (dd, td)):
        for name, p in tmod.named_parameters():
            assert_close(mod.get_parameter(name).grad, p.grad, np.float32, f"grad of {name}")


def test_transformer_encoder_stack():
    layer = nn.TransformerEncoderLayer(E, NH, dim_feedforward=16, dropout=0.0)
    enc = nn.TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(E))
    assert len(enc.layers) == 2 and enc.layers[0] is not enc.layers[1]
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    out = enc(dg.randn(L, N, E))
    assert out.shape == (L, N, E)
