"""PyTorch-compatibility surface of ``deepgrad.nn`` (issue 9, ``nn:``), each group table-driven
against torch 2.13 on the same inputs and weights:

* ``nn.Transformer`` / ``TransformerEncoder(enable_nested_tensor, mask_check)``: state-dict keys,
  outputs (eval, with masks; PyTorch's nested-tensor inference path), gradients;
* ``torch.nn.modules.*`` import paths;
* ``F.unfold/fold``, ``F.affine_grid``, ``F.grid_sample`` (values, gradients, float64 gradcheck);
* ``F.pairwise_distance``, ``cosine_similarity``, the triplet losses and their modules;
* ``Dropout2d/3d`` on inputs of other ranks (warn, and drop what PyTorch drops);
* ``nn.utils.parametrize`` / ``parametrizations`` and the legacy ``weight_norm``/``spectral_norm``;
* error types for misuse.
"""
import math
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad import nn
from nnutil import close, randn
from opcheck import check_op, rand

TF = torch.nn.functional


def state(m):
    return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}


def npy(t):
    return t.detach().numpy()


# ---- torch.nn.modules.* import paths ---------------------------------------------------------------

MODULE_PATHS = [
    ("module", "Module", nn.Module), ("linear", "Linear", nn.Linear), ("linear", "Identity", nn.Identity),
    ("conv", "Conv2d", nn.Conv2d), ("conv", "_ConvNd", nn.conv._ConvNd),
    ("batchnorm", "BatchNorm2d", nn.BatchNorm2d), ("batchnorm", "_BatchNorm", nn.normalization._BatchNorm),
    ("batchnorm", "_NormBase", nn.normalization._BatchNorm), ("activation", "ReLU", nn.ReLU),
    ("activation", "MultiheadAttention", nn.MultiheadAttention), ("container", "Sequential", nn.Sequential),
    ("container", "ModuleList", nn.ModuleList), ("rnn", "LSTM", nn.LSTM), ("rnn", "GRU", nn.GRU),
    ("dropout", "Dropout", nn.Dropout), ("dropout", "Dropout2d", nn.Dropout2d), ("pooling", "MaxPool2d", nn.MaxPool2d),
    ("pooling", "AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d), ("normalization", "LayerNorm", nn.LayerNorm),
    ("normalization", "GroupNorm", nn.GroupNorm), ("sparse", "Embedding", nn.Embedding),
    ("transformer", "Transformer", nn.Transformer),
    ("transformer", "TransformerEncoderLayer", nn.TransformerEncoderLayer),
    ("loss", "_Loss", nn.loss._Loss), ("loss", "_WeightedLoss", nn.loss._WeightedLoss),
    ("loss", "CrossEntropyLoss", nn.CrossEntropyLoss), ("flatten", "Flatten", nn.Flatten),
    ("padding", "ZeroPad2d", nn.ZeroPad2d), ("upsampling", "Upsample", nn.Upsample),
    ("pixelshuffle", "PixelShuffle", nn.PixelShuffle), ("distance", "PairwiseDistance", nn.PairwiseDistance),
    ("fold", "Unfold", nn.Unfold), ("utils", "_pair", None),
]


@pytest.mark.parametrize("mod,name,expected", MODULE_PATHS, ids=[f"{m}.{n}" for m, n, _ in MODULE_PATHS])
def test_nn_modules_import_paths(mod, name, expected):
    import importlib
    ours = getattr(importlib.import_module(f"deepgrad.nn.modules.{mod}"), name)
    assert hasattr(importlib.import_module(f"torch.nn.modules.{mod}"), name), "the path must be PyTorch's"
    if expected is not None:
        assert ours is expected
    assert getattr(getattr(nn.modules, mod), name) is ours


@pytest.mark.parametrize("fn,arg", [("_single", 3), ("_pair", 3), ("_triple", (1, 2, 3)), ("_quadruple", 0),
                                    ("_pair", [4, 5])])
def test_nn_modules_utils_tuples(fn, arg):
    from deepgrad.nn.modules import utils as ours
    from torch.nn.modules import utils as theirs
    assert getattr(ours, fn)(arg) == getattr(theirs, fn)(arg)
    assert ours._reverse_repeat_tuple((1, 2), 2) == theirs._reverse_repeat_tuple((1, 2), 2)


def test_subclassing_torch_base_names():
    from deepgrad.nn.modules.loss import _Loss, _WeightedLoss

    class MyLoss(_Loss):
        def forward(self, a, b):
            d = (a - b).abs()
            return d.sum() if self.reduction == "sum" else d.mean()

    assert MyLoss(reduction="sum").reduction == "sum" and MyLoss(size_average=False).reduction == "sum"
    a, b = dg.randn(3, 4), dg.randn(3, 4)
    close(MyLoss()(a, b), torch.nn.L1Loss()(torch.tensor(a.numpy()), torch.tensor(b.numpy())))
    w = _WeightedLoss(weight=dg.ones(3))
    assert "weight" in dict(w.named_buffers())

    from deepgrad.nn.modules.batchnorm import _BatchNorm

    class MyBN(_BatchNorm):
        def _check_input_dim(self, input):
            if input.ndim != 2:
                raise ValueError("expected 2D input")

    m, tm = MyBN(4), torch.nn.BatchNorm1d(4)
    x = randn(6, 4)
    close(m(dg.tensor(x)), tm(torch.tensor(x)))
    close(m.running_var, tm.running_var)


# ---- Transformer --------------------------------------------------------------------------------------

D, NH, FF = 8, 2, 16
TRANSFORMER_CASES = [
    dict(batch_first=False, norm_first=False, activation="relu"),
    dict(batch_first=True, norm_first=False, activation="gelu"),
    dict(batch_first=True, norm_first=True, activation="relu"),
]


def _pair_transformers(**kw):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.nn.Transformer(D, NH, 2, 2, FF, **kw)
        dm = nn.Transformer(D, NH, 2, 2, FF, **kw)
    assert list(dm.state_dict()) == list(tm.state_dict())
    for k, v in dm.state_dict().items():
        assert tuple(v.shape) == tuple(tm.state_dict()[k].shape), k
    dm.load_state_dict(state(tm))
    return dm, tm


@pytest.mark.parametrize("kw", TRANSFORMER_CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("no_grad", [False, True])
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_transformer_eval_matches_torch(kw, no_grad):
    dm, tm = _pair_transformers(dropout=0.1, **kw)
    dm.eval(), tm.eval()
    rng = np.random.default_rng(1)
    S, T, N = 5, 4, 3
    shp = (lambda L: (N, L, D)) if kw["batch_first"] else (lambda L: (L, N, D))
    src, tgt = rng.standard_normal(shp(S)).astype(np.float32), rng.standard_normal(shp(T)).astype(np.float32)
    kpm = np.zeros((N, S), bool)
    kpm[1, -2:] = True
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(T)
    dmask = nn.Transformer.generate_square_subsequent_mask(T)
    np.testing.assert_array_equal(dmask.numpy(), tmask.numpy())
    args = dict(src_key_padding_mask=kpm, memory_key_padding_mask=kpm)
    with (torch.no_grad() if no_grad else torch.enable_grad()):
        out = tm(torch.tensor(src), torch.tensor(tgt), tgt_mask=tmask, **{k: torch.tensor(v) for k, v in args.items()})
        enc = tm.encoder(torch.tensor(src), src_key_padding_mask=torch.tensor(kpm))
    with (dg.no_grad() if no_grad else dg.enable_grad()):
        dout = dm(dg.tensor(src), dg.tensor(tgt), tgt_mask=dmask, **{k: dg.tensor(v) for k, v in args.items()})
        denc = dm.encoder(dg.tensor(src), src_key_padding_mask=dg.tensor(kpm))
    close(dout, out, "transformer output")
    # with batch_first, post-norm and no gradient, PyTorch's encoder takes its nested-tensor path
    close(denc, enc, "encoder output")


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("mask_check", [True, False])
def test_transformer_encoder_inference_padding_like_torch(mask_check):
    """Eval + no_grad + batch_first + a key padding mask: PyTorch pads the output with zeros (before
    the final norm), even for a sequence that is all padding (NaN on its slow path)."""
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(D, NH, FF, batch_first=True)
    dl = nn.TransformerEncoderLayer(D, NH, FF, batch_first=True)
    te = torch.nn.TransformerEncoder(tl, 2, norm=torch.nn.LayerNorm(D), mask_check=mask_check).eval()
    de = nn.TransformerEncoder(dl, 2, norm=nn.LayerNorm(D), mask_check=mask_check).eval()
    de.load_state_dict(state(te))
    src = randn(3, 5, D)
    kpm = np.zeros((3, 5), bool)
    kpm[1, 2:] = True
    kpm[2, :] = True
    with torch.no_grad():
        out = te(torch.tensor(src), src_key_padding_mask=torch.tensor(kpm))
    with dg.no_grad():
        dout = de(dg.tensor(src), src_key_padding_mask=dg.tensor(kpm))
    close(dout, out)


def test_transformer_train_gradients_match_torch():
    dm, tm = _pair_transformers(dropout=0.0, batch_first=True)
    rng = np.random.default_rng(2)
    src, tgt = rng.standard_normal((2, 5, D)).astype(np.float32), rng.standard_normal((2, 3, D)).astype(np.float32)
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    dout = dm(dg.tensor(src), dg.tensor(tgt), tgt_mask=mask, tgt_is_causal=True)
    tout = tm(torch.tensor(src), torch.tensor(tgt), tgt_mask=torch.tensor(mask.numpy()), tgt_is_causal=True)
    close(dout, tout)
    w = rng.standard_normal(tout.shape).astype(np.float32)
    (dout * dg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    tp = dict(tm.named_parameters())
    for name, p in dm.named_parameters():
        close(p.grad, tp[name].grad, f"grad of {name}", atol=2e-5)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
@pytest.mark.parametrize("act", ["gelu", "module"])
def test_transformer_unbatched_and_module_activation(act):
    """An activation given as a Module: PyTorch's deep-copied decoder layers fall back to ReLU
    (their ``__setstate__``); deepgrad does the same, so the outputs agree."""
    torch.manual_seed(0)
    tm = torch.nn.Transformer(D, NH, 1, 2, FF, activation=torch.nn.GELU() if act == "module" else act).eval()
    dm = nn.Transformer(D, NH, 1, 2, FF, activation=nn.GELU() if act == "module" else act).eval()
    dm.load_state_dict(state(tm))
    src, tgt = randn(5, D), randn(3, D, seed=1)
    close(dm(dg.tensor(src), dg.tensor(tgt)), tm(torch.tensor(src), torch.tensor(tgt)))


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_transformer_init_custom_and_errors():
    m = nn.Transformer(D, NH, 1, 1, FF)
    for name, p in m.named_parameters():   # xavier-uniform for every matrix, as PyTorch
        if p.ndim > 1:
            bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))
            assert np.abs(p.detach().numpy()).max() <= bound, name
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NH, FF, batch_first=True), 1)
    custom = nn.Transformer(D, NH, custom_encoder=enc)
    assert custom.encoder is enc
    for mod, lib in ((m, dg), (torch.nn.Transformer(D, NH, 1, 1, FF), torch)):
        with pytest.raises(RuntimeError, match="batch number"):
            mod(lib.zeros(5, 2, D), lib.zeros(4, 3, D))
        with pytest.raises(RuntimeError, match="d_model"):
            mod(lib.zeros(5, 2, D), lib.zeros(4, 2, D + 1))


@pytest.mark.parametrize("kw", [dict(batch_first=False), dict(batch_first=True, norm_first=True),
                                dict(batch_first=True), dict(batch_first=True, nhead=1)])
@pytest.mark.parametrize("enable", [True, False])
def test_transformer_encoder_nested_tensor_flag_warns_as_torch(kw, enable):
    kw = dict(kw)
    nhead = kw.pop("nhead", NH)

    def build(lib):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            enc = lib.nn.TransformerEncoder(lib.nn.TransformerEncoderLayer(D, nhead, FF, **kw), 2,
                                            enable_nested_tensor=enable, mask_check=False)
        return enc, [str(x.message) for x in w if "nested" in str(x.message)]

    (dm, ours), (tm, theirs) = build(dg), build(torch)
    assert ours == theirs
    assert dm.use_nested_tensor == tm.use_nested_tensor and dm.mask_check is False


# ---- unfold / fold ------------------------------------------------------------------------------------

BLOCKS = [
    dict(kernel_size=2), dict(kernel_size=(2, 3), stride=2), dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 2), dilation=(2, 1), padding=(1, 2), stride=(1, 2)),
]


@pytest.mark.parametrize("kw", BLOCKS, ids=str)
@pytest.mark.parametrize("batched", [True, False])
def test_unfold_fold_match_torch(kw, batched):
    shape = (2, 3, 6, 7) if batched else (2, 5, 6)
    x = rand(*shape, seed=len(str(kw)))
    cols = check_op(lambda a: F.unfold(a, **kw), lambda a: TF.unfold(a, **kw), [x])[0]
    c = rand(*cols.shape, seed=3)
    size = shape[-2:]
    check_op(lambda a: F.fold(a, size, **kw), lambda a: TF.fold(a, size, **kw), [c])
    # the modules and their reprs
    assert repr(nn.Unfold(**kw)) == repr(torch.nn.Unfold(**kw))
    assert repr(nn.Fold(size, **kw)) == repr(torch.nn.Fold(size, **kw))
    close(nn.Fold(size, **kw)(dg.tensor(c)), torch.nn.Fold(size, **kw)(torch.tensor(c)), rtol=1e-10, atol=1e-12)


def test_unfold_float32_and_patch_matmul_is_conv():
    x, w = randn(2, 3, 8, 8), randn(4, 3, 3, 3, seed=1)
    cols = F.unfold(dg.tensor(x), 3, padding=1)
    y = (dg.tensor(w.reshape(4, -1)) @ cols).reshape(2, 4, 8, 8)
    close(y, TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1))
    assert cols.dtype == dg.float32


FOLD_ERRORS = [
    ("unfold 2-D input", lambda lib: lib.nn.functional.unfold(lib.zeros(5, 6), 2)),
    ("unfold 5-D input", lambda lib: lib.nn.functional.unfold(lib.zeros(1, 2, 3, 4, 5), 2)),
    ("unfold kernel too big", lambda lib: lib.nn.functional.unfold(lib.zeros(1, 2, 5, 6), 7)),
    ("unfold stride 0", lambda lib: lib.nn.functional.unfold(lib.zeros(1, 2, 5, 6), 2, stride=0)),
    ("fold wrong L", lambda lib: lib.nn.functional.fold(lib.zeros(2, 12, 5), (4, 4), 2)),
    ("fold channels not divisible", lambda lib: lib.nn.functional.fold(lib.zeros(2, 11, 9), (4, 4), 2)),
    ("fold 4-D input", lambda lib: lib.nn.functional.fold(lib.zeros(1, 2, 12, 9), (4, 4), 2)),
]


@pytest.mark.parametrize("what,call", FOLD_ERRORS, ids=[e[0] for e in FOLD_ERRORS])
def test_unfold_fold_errors_match_torch(what, call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(Exception) as ours:
        call(dg)
    if theirs.type is IndexError:    # torch's 2-D unfold fails deep inside; ours says what is wrong
        assert ours.type is RuntimeError and "unfold" in str(ours.value)
    else:
        assert ours.type is theirs.type, (ours.value, theirs.value)


# ---- affine_grid / grid_sample ------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 3), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(size, align_corners):
    theta = rand(2, *((2, 3) if len(size) == 4 else (3, 4)), seed=len(size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_op(lambda t: F.affine_grid(t, size, align_corners=align_corners),
                 lambda t: TF.affine_grid(t, size, align_corners=align_corners), [theta])


GRID_CASES = [(mode, pad, ac) for mode in ("bilinear", "nearest", "bicubic") for pad in ("zeros", "border", "reflection")
              for ac in (False, True)]


@pytest.mark.parametrize("mode,padding_mode,align_corners", GRID_CASES, ids=["-".join(map(str, c)) for c in GRID_CASES])
def test_grid_sample_matches_torch(mode, padding_mode, align_corners):
    x = rand(2, 3, 5, 4, seed=7)
    grid = rand(2, 3, 4, 2, seed=8, low=-1.4, high=1.4)     # some positions fall outside the image
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    check_op(lambda a, g: F.grid_sample(a, g, **kw), lambda a, g: TF.grid_sample(a, g, **kw), [x, grid],
             double=False)
    # float32 too
    check_op(lambda a, g: F.grid_sample(a, g, **kw), lambda a, g: TF.grid_sample(a, g, **kw),
             [x.astype(np.float32), grid.astype(np.float32)], double=False, gradcheck=False)


GRID_CASES_3D = [(mode, pad, ac) for mode in ("bilinear", "nearest") for pad in ("zeros", "border", "reflection")
                 for ac in (False, True)]


@pytest.mark.parametrize("mode,padding_mode,align_corners", GRID_CASES_3D,
                         ids=["-".join(map(str, c)) for c in GRID_CASES_3D])
def test_grid_sample_volumetric_matches_torch(mode, padding_mode, align_corners):
    x = rand(1, 2, 3, 4, 3, seed=17)
    grid = rand(1, 2, 2, 3, 3, seed=18, low=-1.4, high=1.4)
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    check_op(lambda a, g: F.grid_sample(a, g, **kw), lambda a, g: TF.grid_sample(a, g, **kw), [x, grid],
             double=False)


def test_spatial_transformer_affine_then_sample_gradients():
    """The lectures' spatial transformer: theta -> affine_grid -> grid_sample, gradients w.r.t. theta."""
    x = rand(2, 1, 6, 6, seed=1)
    # near-identity maps, perturbed so that no sampling point sits exactly on a pixel (a kink)
    theta = np.array([[[0.9, 0.1, 0.05], [-0.1, 0.8, 0.1]], [[1.1, 0.0, -0.1], [0.2, 0.9, 0.0]]])
    theta = theta + rand(2, 2, 3, seed=5, low=-0.03, high=0.03)

    def ours(a, t):
        return F.grid_sample(a, F.affine_grid(t, (2, 1, 5, 5), align_corners=False), align_corners=False)

    def theirs(a, t):
        return TF.grid_sample(a, TF.affine_grid(t, (2, 1, 5, 5), align_corners=False), align_corners=False)
    check_op(ours, theirs, [x, theta], double=False)


def test_grid_sample_and_affine_grid_warn_without_align_corners():
    x, g = dg.zeros(1, 1, 3, 3), dg.zeros(1, 2, 2, 2)
    with pytest.warns(UserWarning, match="align_corners=False"):
        F.grid_sample(x, g)
    with pytest.warns(UserWarning, match="align_corners=False"):
        F.affine_grid(dg.zeros(1, 2, 3), (1, 1, 3, 3))


GRID_ERRORS = [
    ("batch mismatch", lambda lib: lib.nn.functional.grid_sample(lib.zeros(2, 3, 4, 4), lib.zeros(3, 2, 2, 2),
                                                                  align_corners=False)),
    ("grid last dim", lambda lib: lib.nn.functional.grid_sample(lib.zeros(2, 3, 4, 4), lib.zeros(2, 2, 2, 3),
                                                                 align_corners=False)),
    ("grid rank", lambda lib: lib.nn.functional.grid_sample(lib.zeros(2, 3, 4, 4), lib.zeros(2, 2, 2),
                                                             align_corners=False)),
    ("dtype mismatch", lambda lib: lib.nn.functional.grid_sample(lib.zeros(1, 1, 4, 4),
                                                                  lib.zeros(1, 2, 2, 2, dtype=lib.float64),
                                                                  align_corners=False)),
    ("bicubic 5-D", lambda lib: lib.nn.functional.grid_sample(lib.zeros(1, 1, 2, 4, 4), lib.zeros(1, 2, 2, 2, 3),
                                                               mode="bicubic", align_corners=False)),
    ("bad mode", lambda lib: lib.nn.functional.grid_sample(lib.zeros(1, 1, 4, 4), lib.zeros(1, 2, 2, 2),
                                                            mode="cubic", align_corners=False)),
    ("bad padding", lambda lib: lib.nn.functional.grid_sample(lib.zeros(1, 1, 4, 4), lib.zeros(1, 2, 2, 2),
                                                               padding_mode="wrap", align_corners=False)),
    ("theta shape", lambda lib: lib.nn.functional.affine_grid(lib.zeros(2, 3, 3), (2, 3, 4, 4),
                                                               align_corners=False)),
    ("size rank", lambda lib: lib.nn.functional.affine_grid(lib.zeros(2, 2, 3), (2, 3, 4), align_corners=False)),
    ("integer theta", lambda lib: lib.nn.functional.affine_grid(lib.zeros(2, 2, 3, dtype=lib.int64), (2, 3, 4, 4),
                                                                 align_corners=False)),
]


@pytest.mark.parametrize("what,call", GRID_ERRORS, ids=[e[0] for e in GRID_ERRORS])
def test_grid_errors_match_torch(what, call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(theirs.type):
        call(dg)


def test_grid_sample_is_first_order():
    with pytest.raises(RuntimeError, match="first-order|create_graph|double"):
        x = dg.tensor(rand(1, 1, 3, 3), requires_grad=True)
        y = F.grid_sample(x, dg.tensor(rand(1, 2, 2, 2, low=-0.9, high=0.9)), align_corners=True)
        (g,) = dg.autograd.grad(y.sum(), [x], create_graph=True)
        g.sum().backward()


# ---- distances and triplet losses ---------------------------------------------------------------------

PAIRWISE = [
    ((4, 5), (4, 5), {}), ((4, 5), (1, 5), dict(p=1.0)), ((3, 4, 5), (3, 4, 5), dict(p=3.0, keepdim=True)),
    ((5,), (5,), dict(eps=1e-3)), ((4, 5), (4, 5), dict(p=math.inf)), ((2, 5), (5,), dict(p=2.0, keepdim=True)),
]


@pytest.mark.parametrize("s1,s2,kw", PAIRWISE, ids=str)
def test_pairwise_distance_matches_torch(s1, s2, kw):
    check_op(lambda a, b: F.pairwise_distance(a, b, **kw), lambda a, b: TF.pairwise_distance(a, b, **kw),
             [rand(*s1, seed=1), rand(*s2, seed=2)], double=not math.isinf(kw.get("p", 2)))
    m, tm = nn.PairwiseDistance(**kw), torch.nn.PairwiseDistance(**kw)
    x1, x2 = randn(*s1), randn(*s2, seed=1)
    close(m(dg.tensor(x1), dg.tensor(x2)), tm(torch.tensor(x1), torch.tensor(x2)))


@pytest.mark.parametrize("s1,s2,dim", [((4, 5), (4, 5), 1), ((3, 4, 5), (3, 4, 5), -1), ((4, 5), (1, 5), 1)])
def test_cosine_similarity_matches_torch(s1, s2, dim):
    check_op(lambda a, b: F.cosine_similarity(a, b, dim), lambda a, b: TF.cosine_similarity(a, b, dim),
             [rand(*s1, seed=3), rand(*s2, seed=4)])
    x1, x2 = randn(*s1), randn(*s2, seed=1)
    close(nn.CosineSimilarity(dim)(dg.tensor(x1), dg.tensor(x2)),
          torch.nn.CosineSimilarity(dim)(torch.tensor(x1), torch.tensor(x2)))


def test_cosine_similarity_small_norms_and_broadcast_like_torch():
    """PyTorch divides each input by its own norm clamped at eps (the clamp invisible to autograd)."""
    a, b = rand(3, 4, seed=5), rand(3, 4, seed=6)
    a[0] = 0.0
    a[1] *= 1e-5
    # (no second derivatives here: PyTorch's are NaN at the zero vector)
    check_op(lambda x, y: F.cosine_similarity(x, y, 1, 1e-3), lambda x, y: TF.cosine_similarity(x, y, 1, 1e-3),
             [a, b], gradcheck=False, double=False)
    check_op(lambda x, y: F.cosine_similarity(x, y, 1, 1e-3), lambda x, y: TF.cosine_similarity(x, y, 1, 1e-3),
             [a[1:], b[1:]], gradcheck=False)
    check_op(lambda x, y: F.cosine_similarity(x, y, 1), lambda x, y: TF.cosine_similarity(x, y, 1),
             [rand(4, seed=1), rand(2, 4, seed=2)])
    with pytest.raises(RuntimeError):
        F.cosine_similarity(dg.zeros(3, 4), dg.zeros(2, 4))


TRIPLET = [dict(), dict(margin=0.5, p=1.0), dict(swap=True), dict(reduction="sum", p=3.0), dict(reduction="none"),
           dict(margin=2.0, swap=True, reduction="none")]


@pytest.mark.parametrize("kw", TRIPLET, ids=str)
@pytest.mark.parametrize("shape", [(6, 4), (4,)])
def test_triplet_margin_loss_matches_torch(kw, shape):
    a, p, n = (rand(*shape, seed=s) for s in (10, 11, 12))
    check_op(lambda x, y, z: F.triplet_margin_loss(x, y, z, **kw),
             lambda x, y, z: TF.triplet_margin_loss(x, y, z, **kw), [a, p, n])
    m, tm = nn.TripletMarginLoss(**kw), torch.nn.TripletMarginLoss(**kw)
    close(m(*(dg.tensor(v) for v in (a, p, n))), tm(*(torch.tensor(v) for v in (a, p, n))), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("custom", [False, True])
def test_triplet_margin_with_distance_loss_matches_torch(swap, custom):
    a, p, n = (rand(5, 4, seed=s) for s in (20, 21, 22))

    def dist(lib):
        if not custom:
            return None
        return lambda x, y: 1.0 - lib.nn.functional.cosine_similarity(x, y)
    check_op(lambda x, y, z: F.triplet_margin_with_distance_loss(x, y, z, distance_function=dist(dg), swap=swap),
             lambda x, y, z: TF.triplet_margin_with_distance_loss(x, y, z, distance_function=dist(torch), swap=swap),
             [a, p, n])
    m = nn.TripletMarginWithDistanceLoss(distance_function=dist(dg), margin=0.3, swap=swap, reduction="sum")
    tm = torch.nn.TripletMarginWithDistanceLoss(distance_function=dist(torch), margin=0.3, swap=swap, reduction="sum")
    close(m(*(dg.tensor(v) for v in (a, p, n))), tm(*(torch.tensor(v) for v in (a, p, n))), rtol=1e-10, atol=1e-12)


DIST_ERRORS = [
    ("triplet dims", lambda lib: lib.nn.functional.triplet_margin_loss(lib.zeros(3, 4), lib.zeros(4), lib.zeros(3, 4))),
    ("triplet margin 0", lambda lib: lib.nn.TripletMarginLoss(margin=0)),
    ("distance margin", lambda lib: lib.nn.functional.triplet_margin_with_distance_loss(
        lib.zeros(3, 4), lib.zeros(3, 4), lib.zeros(3, 4), margin=0)),
    ("pairwise shapes", lambda lib: lib.nn.functional.pairwise_distance(lib.zeros(3, 4), lib.zeros(2, 4))),
    ("bad reduction", lambda lib: lib.nn.functional.triplet_margin_loss(lib.zeros(3, 4), lib.zeros(3, 4),
                                                                         lib.zeros(3, 4), reduction="avg")),
]


@pytest.mark.parametrize("what,call", DIST_ERRORS, ids=[e[0] for e in DIST_ERRORS])
def test_distance_errors_match_torch(what, call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(theirs.type):
        call(dg)


# ---- Dropout2d / Dropout3d on inputs of other ranks -----------------------------------------------------

DROPOUT_RANKS = [("Dropout2d", s) for s in [(40, 30), (20, 30, 8), (6, 20, 3, 4), (4, 20, 3, 2, 2)]] + \
                [("Dropout3d", s) for s in [(40, 30), (20, 30, 8), (20, 6, 3, 2), (4, 20, 3, 2, 2),
                                            (20, 2, 2, 2, 2, 2)]]


def _shared_dims(y):
    """Dimensions along which every slice of ``y`` is identical (the mask was broadcast over them)."""
    return [d for d in range(y.ndim) if np.all(y == y.take([0], axis=d))]


@pytest.mark.parametrize("name,shape", DROPOUT_RANKS, ids=[f"{n}{s}" for n, s in DROPOUT_RANKS])
def test_feature_dropout_other_ranks_warn_and_drop_like_torch(name, shape):
    def run(lib):
        lib.manual_seed(0)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            y = getattr(lib.nn, name)(0.5)(lib.ones(*shape))
        return y.numpy(), sorted(str(x.message)[:60] for x in w if issubclass(x.category, UserWarning))
    (y, ours), (ty, theirs) = run(dg), run(torch)
    assert ours == theirs                        # warns exactly when (and what) PyTorch warns
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.0 in y and 2.0 in y
    assert _shared_dims(y) == _shared_dims(ty)   # drops the same kind of slices


def test_dropout2d_1d_input_raises_like_torch():
    with pytest.raises(RuntimeError), pytest.warns(UserWarning):
        torch.nn.Dropout2d()(torch.ones(5))
    with pytest.raises(RuntimeError), pytest.warns(UserWarning):
        nn.Dropout2d()(dg.ones(5))
    m = nn.Dropout2d().eval()
    with pytest.warns(UserWarning):
        assert m(dg.ones(4, 5)).numpy().sum() == 20


# ---- parametrizations ------------------------------------------------------------------------------------

def _layers(lib):
    return {"linear": lambda: lib.nn.Linear(4, 3), "conv": lambda: lib.nn.Conv2d(2, 3, 3),
            "convT": lambda: lib.nn.ConvTranspose2d(2, 3, 3)}


def _input(kind):
    return randn(5, 4) if kind == "linear" else randn(2, 2, 5, 5)


PARAM_CASES = [("weight_norm", kind, kw) for kind in ("linear", "conv")
               for kw in (dict(), dict(dim=1), dict(dim=None))] + \
              [("spectral_norm", kind, kw) for kind in ("linear", "conv", "convT")
               for kw in (dict(), dict(n_power_iterations=2))]


def _apply(lib, fn, kind, kw, legacy):
    torch.manual_seed(0)
    m = _layers(lib)[kind]()
    utils = lib.nn.utils
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(utils if legacy else utils.parametrizations, fn)(m, **kw)


@pytest.mark.parametrize("fn,kind,kw", PARAM_CASES, ids=[f"{f}-{k}-{kw}" for f, k, kw in PARAM_CASES])
@pytest.mark.parametrize("legacy", [False, True])
def test_weight_and_spectral_norm_match_torch(fn, kind, kw, legacy):
    tm, dm = _apply(torch, fn, kind, kw, legacy), _apply(dg, fn, kind, kw, legacy)
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert type(dm).__name__ == type(tm).__name__
    dm.load_state_dict(state(tm))            # same u, v start for the power iteration
    x = _input(kind)
    for step in range(2):                    # each training forward runs the power iteration
        y, ty = dm(dg.tensor(x)), tm(torch.tensor(x))
        close(y, ty, f"output at step {step}")
    w = np.random.default_rng(0).standard_normal(tuple(ty.shape)).astype(np.float32)
    (y * dg.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    tp = dict(tm.named_parameters())
    for name, p in dm.named_parameters():
        close(p.grad, tp[name].grad, f"grad of {name}", atol=1e-4)
    for k, v in dm.state_dict().items():     # buffers (u, v) advanced the same way
        close(v, tm.state_dict()[k], k)
    dm.eval(), tm.eval()
    close(dm(dg.tensor(x)), tm(torch.tensor(x)), "eval output")
    # removal leaves a plain Parameter named weight holding the current value
    if legacy:
        getattr(dg.nn.utils, "remove_" + fn)(dm)
        getattr(torch.nn.utils, "remove_" + fn)(tm)
    else:
        dg.nn.utils.parametrize.remove_parametrizations(dm, "weight")
        torch.nn.utils.parametrize.remove_parametrizations(tm, "weight")
    assert list(dm.state_dict()) == list(tm.state_dict())
    assert type(dm).__name__ == type(tm).__name__ and isinstance(dm.weight, nn.Parameter)
    close(dm.weight, tm.weight, "weight after removal")


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu()


class TSymmetric(torch.nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu()


class Scale(nn.Module):
    def forward(self, X):
        return X * 2.0


class TScale(torch.nn.Module):
    def forward(self, X):
        return X * 2.0


def test_register_parametrization_custom_matches_torch():
    P = dg.nn.utils.parametrize
    TP = torch.nn.utils.parametrize
    torch.manual_seed(0)
    tm = torch.nn.Linear(3, 3)
    dm = nn.Linear(3, 3)
    dm.load_state_dict(state(tm))
    weight_obj = dm.weight
    P.register_parametrization(dm, "weight", Symmetric())
    TP.register_parametrization(tm, "weight", TSymmetric())
    assert dm.parametrizations.weight.original is weight_obj    # the same Parameter (optimisers keep working)
    assert P.is_parametrized(dm) and P.is_parametrized(dm, "weight") and not P.is_parametrized(dm, "bias")
    P.register_parametrization(dm, "weight", Scale())
    TP.register_parametrization(tm, "weight", TScale())
    assert list(dm.state_dict()) == list(tm.state_dict())
    close(dm.weight, tm.weight)
    np.testing.assert_allclose(dm.weight.detach().numpy(), dm.weight.detach().numpy().T)
    x = randn(4, 3)
    y, ty = dm(dg.tensor(x)), tm(torch.tensor(x))
    close(y, ty)
    y.sum().backward()
    ty.sum().backward()
    close(dm.parametrizations.weight.original.grad, tm.parametrizations.weight.original.grad)
    # assignment goes through right_inverse: Scale has none in either library
    with pytest.raises(RuntimeError, match="right_inverse"):
        dm.weight = dg.zeros(3, 3)
    with P.cached():
        assert dm.weight is dm.weight
    assert dm.weight is not dm.weight
    P.remove_parametrizations(dm, "weight", leave_parametrized=False)
    TP.remove_parametrizations(tm, "weight", leave_parametrized=False)
    close(dm.weight, tm.weight)
    assert type(dm) is nn.Linear and not P.is_parametrized(dm)


def test_parametrization_setter_uses_right_inverse():
    P = dg.nn.utils.parametrize
    m = P.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
    a = dg.tensor(np.arange(9.0, dtype=np.float32).reshape(3, 3))
    m.weight = a
    np.testing.assert_array_equal(npy(m.parametrizations.weight.original), np.triu(a.numpy()))


PARAM_ERRORS = [
    ("no such tensor", lambda lib, S: lib.nn.utils.parametrize.register_parametrization(lib.nn.Linear(3, 3), "w", S())),
    ("remove unparametrized", lambda lib, S: lib.nn.utils.parametrize.remove_parametrizations(lib.nn.Linear(3, 3),
                                                                                               "weight")),
    ("changes shape", lambda lib, S: lib.nn.utils.parametrize.register_parametrization(
        lib.nn.Linear(3, 2), "weight", S())),
    ("two legacy weight norms", lambda lib, S: lib.nn.utils.weight_norm(lib.nn.utils.weight_norm(lib.nn.Linear(3, 2)))),
    ("spectral dim", lambda lib, S: lib.nn.utils.parametrizations.spectral_norm(lib.nn.Linear(3, 2), dim=3)),
]


class _Transposer(nn.Module):
    def forward(self, X):
        return X.transpose(0, 1)


class _TTransposer(torch.nn.Module):
    def forward(self, X):
        return X.transpose(0, 1)


@pytest.mark.parametrize("what,call", PARAM_ERRORS, ids=[e[0] for e in PARAM_ERRORS])
def test_parametrize_errors_match_torch(what, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as theirs:
            call(torch, _TTransposer)
        with pytest.raises(theirs.type):
            call(dg, _Transposer)


ORTHO = [(shape, omap, triv) for shape in [(4, 4), (5, 3), (3, 5)] for omap in (None, "householder", "matrix_exp")
         for triv in (True, False)]


@pytest.mark.parametrize("shape,omap,triv", ORTHO, ids=[f"{s}-{m}-{t}" for s, m, t in ORTHO])
def test_orthogonal_matches_torch(shape, omap, triv):
    torch.manual_seed(0)
    tl = torch.nn.Linear(shape[1], shape[0], bias=False)
    dl = nn.Linear(shape[1], shape[0], bias=False)
    dl.load_state_dict(state(tl))
    tm = torch.nn.utils.parametrizations.orthogonal(tl, orthogonal_map=omap, use_trivialization=triv)
    dm = nn.utils.parametrizations.orthogonal(dl, orthogonal_map=omap, use_trivialization=triv)
    assert list(dm.state_dict()) == list(tm.state_dict())
    if shape[0] == shape[1] or not triv:     # registration is deterministic (QR): same state as torch
        for k, v in dm.state_dict().items():
            close(v, tm.state_dict()[k], k)
    # move the parameter away from its start, as training would, and compare the map and its gradient
    s = state(tm)
    key = "parametrizations.weight.original"
    delta = 0.3 * randn(*s[key].shape, seed=3)
    np.fill_diagonal(delta, 0.0)    # gradients never reach the diagonal (householder reads it as signs)
    s[key] = s[key] + delta
    tm.load_state_dict({k: torch.tensor(v) for k, v in s.items()})
    dm.load_state_dict(s)
    w = dm.weight.detach().numpy()
    close(w, tm.weight)
    small = min(shape)
    gram = w @ w.T if shape[0] < shape[1] else w.T @ w
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)
    x = randn(2, shape[1])
    y, ty = dm(dg.tensor(x)), tm(torch.tensor(x))
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    close(dm.parametrizations.weight.original.grad, tm.parametrizations.weight.original.grad, atol=1e-5)


def test_orthogonal_matrix_exp_float64_gradcheck():
    from deepgrad.nn.utils._orthogonal import matrix_exp
    a = rand(4, 4, seed=9)
    check_op(matrix_exp, torch.linalg.matrix_exp, [a])
    check_op(matrix_exp, torch.linalg.matrix_exp, [a * 0.05])


ORTHO_ERRORS = [
    ("vector", lambda lib: lib.nn.utils.parametrizations.orthogonal(lib.nn.LayerNorm(3))),
    ("bad map", lambda lib: lib.nn.utils.parametrizations.orthogonal(lib.nn.Linear(3, 3), orthogonal_map="qr")),
    ("no tensor", lambda lib: lib.nn.utils.parametrizations.orthogonal(lib.nn.Linear(3, 3), name="w")),
]


@pytest.mark.parametrize("what,call", ORTHO_ERRORS, ids=[e[0] for e in ORTHO_ERRORS])
def test_orthogonal_errors_match_torch(what, call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(theirs.type):
        call(dg)


def test_orthogonal_cayley_says_not_implemented():
    with pytest.raises(NotImplementedError, match="cayley"):
        nn.utils.parametrizations.orthogonal(nn.Linear(3, 3), orthogonal_map="cayley")


def test_parametrized_module_deepcopies_and_trains():
    import copy
    m = nn.utils.parametrizations.weight_norm(nn.Linear(3, 2))
    m2 = copy.deepcopy(m)
    assert type(m2).__name__ == "ParametrizedLinear"
    assert m2.parametrizations.weight.original0 is not m.parametrizations.weight.original0
    close(m2.weight, npy(m.weight))
    opt = dg.optim.SGD(m.parameters(), lr=0.1)
    before = npy(m.weight).copy()
    m(dg.randn(4, 3)).pow(2).sum().backward()
    opt.step()
    assert not np.allclose(npy(m.weight), before)


def test_nn_modules_missing_names_say_so():
    assert not hasattr(nn.modules.conv, "Conv9d")
    with pytest.raises(NotImplementedError, match="torch.nn.modules.conv.Conv9d"):
        nn.modules.conv.Conv9d
    with pytest.raises(ImportError):
        from deepgrad.nn.modules.lazy import LazyModuleMixin  # noqa: F401
    import deepgrad.nn.modules.instancenorm  # noqa: F401  (the path exists, as in PyTorch)
    assert nn.modules.pooling.MaxPool2d is nn.MaxPool2d
