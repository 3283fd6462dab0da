"""Small wrong answers of issue 10, each against PyTorch 2.13 as the oracle: convolution layers
with a zero/negative kernel, stride, dilation or padding; BCE with input/target outside [0, 1];
the dtype of a gradient passed to ``backward``; unknown device strings."""
import warnings

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as dnn
import deepgrad.nn.functional as DF

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402


def _outcome(fn):
    """The exception type ``fn`` raises, or the shape of what it returns."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
    except Exception as e:  # noqa: BLE001 (compared below)
        return type(e)
    return tuple(out.shape)


CONV_CASES = [
    ("Conv2d", (3, 8, 0), {}, (1, 3, 8, 8)),
    ("Conv2d", (3, 8, (3, 0)), {}, (1, 3, 8, 8)),
    ("Conv2d", (3, 8, -1), {}, (1, 3, 8, 8)),
    ("Conv2d", (3, 8, 3), dict(stride=0), (1, 3, 8, 8)),
    ("Conv2d", (3, 8, 3), dict(stride=-1), (1, 3, 8, 8)),
    ("Conv2d", (3, 8, 3), dict(padding=-1), (1, 3, 8, 8)),
    ("Conv2d", (3, 8, 3), dict(padding=(1, -1)), (1, 3, 8, 8)),
    ("Conv2d", (3, 8, 3), dict(dilation=0), (1, 3, 8, 8)),
    ("Conv2d", (3, 8, 3), dict(stride=2, padding=1), (1, 3, 8, 8)),      # valid: a shape
    ("Conv1d", (3, 8, 0), {}, (1, 3, 8)),
    ("Conv1d", (3, 8, 3), dict(stride=0), (1, 3, 8)),
    ("Conv1d", (3, 8, 3), dict(dilation=0), (1, 3, 8)),
    ("Conv1d", (3, 8, 3), dict(padding=-2), (1, 3, 8)),
    ("ConvTranspose2d", (3, 8, 0), {}, (1, 3, 8, 8)),
    ("ConvTranspose2d", (3, 8, 3), dict(stride=0), (1, 3, 8, 8)),
    ("ConvTranspose2d", (3, 8, 3), dict(padding=-1), (1, 3, 8, 8)),
    ("ConvTranspose2d", (3, 8, 3), dict(dilation=0), (1, 3, 8, 8)),
    ("ConvTranspose2d", (3, 8, 3), dict(stride=2), (1, 3, 8, 8)),          # valid
    ("ConvTranspose1d", (3, 8, 0), {}, (1, 3, 8)),
    ("ConvTranspose1d", (3, 8, 3), dict(stride=0), (1, 3, 8)),
]


@pytest.mark.parametrize("layer,args,kwargs,xshape", CONV_CASES)
def test_conv_layer_arguments_like_torch(layer, args, kwargs, xshape):
    x = np.random.default_rng(0).standard_normal(xshape).astype(np.float32)
    want = _outcome(lambda: getattr(torch.nn, layer)(*args, **kwargs)(torch.from_numpy(x)))
    got = _outcome(lambda: getattr(dnn, layer)(*args, **kwargs)(dg.tensor(x)))
    assert got == want, f"{layer}{args} {kwargs}: deepgrad {got}, torch {want}"


def test_conv2d_kernel_zero_no_longer_grows_the_input():
    """The reproduction: nn.Conv2d(3, 8, 0) turned an 8x8 input into 9x9."""
    with pytest.raises(RuntimeError, match="kernel size"):
        dnn.Conv2d(3, 8, 0)(dg.randn(1, 3, 8, 8))


@pytest.mark.parametrize("fn,wshape", [("conv2d", (8, 3, 0, 3)), ("conv1d", (8, 3, 0)),
                                       ("conv_transpose2d", (3, 8, 3, 0)), ("conv_transpose1d", (3, 8, 0))])
def test_functional_conv_with_empty_kernel(fn, wshape):
    nd = len(wshape) - 2
    x = np.ones((1, 3) + (8,) * nd, np.float32)
    w = np.ones(wshape, np.float32)
    want = _outcome(lambda: getattr(TF, fn)(torch.from_numpy(x), torch.from_numpy(w)))
    got = _outcome(lambda: getattr(DF, fn)(dg.tensor(x), dg.tensor(w)))
    assert want is RuntimeError and got is RuntimeError


BCE_CASES = [([0.5, 0.2], [2.0, 1.0]), ([0.5], [-0.1]), ([1.5], [1.0]), ([-0.5], [0.0]), ([np.nan], [1.0]),
             ([0.5], [np.nan]), ([0.5, 0.9], [0.3, 1.0]), ([0.0, 1.0], [0.0, 1.0])]


@pytest.mark.parametrize("inp,tgt", BCE_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("how", ["functional", "module", "none"])
def test_bce_range_checks_like_torch(inp, tgt, dtype, how):
    x, y = np.array(inp, dtype), np.array(tgt, dtype)

    def run(lib, F, nn, t):
        if how == "module":
            return nn.BCELoss()(t(x), t(y))
        return F.binary_cross_entropy(t(x), t(y), reduction="none" if how == "none" else "mean")
    want = _outcome(lambda: run(torch, TF, torch.nn, torch.from_numpy))
    got = _outcome(lambda: run(dg, DF, dnn, dg.tensor))
    assert got == want
    if want is not RuntimeError:
        np.testing.assert_allclose(run(dg, DF, dnn, dg.tensor).numpy(),
                                   run(torch, TF, torch.nn, torch.from_numpy).numpy(), rtol=1e-6)


def test_bce_target_two_raises():
    """The reproduction: BCELoss with a target of 2.0 returned 0.6931."""
    with pytest.raises(RuntimeError, match="target should be between 0 and 1"):
        dnn.BCELoss()(dg.tensor([0.5]), dg.tensor([2.0]))


GRAD_DTYPES = ["float64", "float16", "int64", "float32"]


@pytest.mark.parametrize("gdtype", GRAD_DTYPES)
@pytest.mark.parametrize("leaf", [True, False])
def test_backward_gradient_dtype_is_cast_like_torch(gdtype, leaf):
    res = {}
    for name, lib in (("torch", torch), ("dg", dg)):
        x = lib.ones(3, requires_grad=True)
        y = x if leaf else x * 2
        y.backward(lib.tensor([1.0, 2.0, 3.0]).to(getattr(lib, gdtype)))
        res[name] = (str(x.grad.dtype).split(".")[-1], x.grad.numpy())
    assert res["dg"][0] == res["torch"][0] == "float32"
    np.testing.assert_array_equal(res["dg"][1], res["torch"][1])


def test_autograd_grad_gradient_dtype_is_cast_like_torch():
    x = dg.ones(3, requires_grad=True)
    g, = dg.autograd.grad(x * 2, x, dg.ones(3, dtype=dg.float64))
    tx = torch.ones(3, requires_grad=True)
    tg, = torch.autograd.grad(tx * 2, tx, torch.ones(3, dtype=torch.float64))
    assert str(g.dtype) == str(tg.dtype).split(".")[-1] == "float32"
    # accumulation keeps the parameter's dtype over several backward calls
    p = dnn.Parameter(dg.ones(2))
    for _ in range(2):
        (p * 3).backward(dg.ones(2, dtype=dg.float64))
    assert p.grad.dtype == dg.float32
    np.testing.assert_array_equal(p.grad.numpy(), [6.0, 6.0])


@pytest.mark.parametrize("spec", ["tpu", "foo", "cuda:x", "cpu:-1", ""])
def test_unknown_device_like_torch(spec):
    want = _outcome(lambda: torch.device(spec))
    got = _outcome(lambda: dg.device(spec))
    assert got == want == RuntimeError
    assert _outcome(lambda: dg.ones(2).to(spec)) is RuntimeError
    assert _outcome(lambda: torch.ones(2).to(spec)) is RuntimeError


def test_to_tpu_message_says_device():
    with pytest.raises(RuntimeError, match="unknown device 'tpu'"):
        dg.ones(2).to("tpu")
    with pytest.raises(RuntimeError, match="unknown device"):
        dg.device("tpu")
    assert dg.ones(2).to("cpu:0").device == dg.device("cpu")
    assert dg.ones(2).to("float64").dtype == dg.float64      # deepgrad's dtype names still work
