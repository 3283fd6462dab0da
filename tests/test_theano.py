"""deepgrad.theano (issue 19): the deck's three Theano snippets run as written, values checked
against NumPy formulas and gradients against torch autograd; shared variables and updates; type
errors at graph-build time and bad arguments at call time; the printers (debugprint, pp,
print_graph) and the Graphviz .dot export of symbolic and eager graphs."""
import re

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.theano as theano
import deepgrad.theano.tensor as T
from deepgrad.theano import tensor
from deepgrad.utils import graphviz


# many small matmuls: on a busy 2-core box OpenBLAS's spinning threads make them 10-30x slower
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---------------------------------------------------------------------------------------------
# The deck's snippets
# ---------------------------------------------------------------------------------------------

def test_snippet_1_scalar_add():
    a = tensor.dscalar()
    b = tensor.dscalar()
    c = a + b
    f = theano.function([a, b], c)
    assert 4.0 == f(1.5, 2.5)
    r = f(1.5, 2.5)
    assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.float64   # Theano returns 0-d arrays
    assert f(-3, 0.25) == -2.75
    assert dg.function is theano.function


def test_snippet_2_linear_regression_as_written():
    from numpy.random import randn
    np.random.seed(3)
    # define computational graph:
    W = T.dmatrix()
    inputs = T.dmatrix()
    targets = T.dmatrix()
    outputs = T.dot(W.T, inputs)
    cost_theano = ((outputs - targets) ** 2).mean()
    grad_theano = T.grad(cost_theano, W)
    # compile functions:
    cost = theano.function([W, inputs, targets], cost_theano)
    grad = theano.function([W, inputs, targets], grad_theano)
    # try on some _random_ data:
    my_w = 0.01 * randn(10, 1).astype("float32")
    my_inputs = randn(100, 10).T.astype("float32")
    my_targets = randn(1, 100).astype("float32")
    c0 = cost(my_w, my_inputs, my_targets)
    g = grad(my_w, my_inputs, my_targets)
    w_before = my_w.copy()
    my_w -= 0.1 * grad(my_w, my_inputs, my_targets)
    c1 = cost(my_w, my_inputs, my_targets)

    # NumPy's formula (the float32 data are upcast to float64, as the dmatrix slots say)
    w64, x64, y64 = (a.astype(np.float64) for a in (w_before, my_inputs, my_targets))
    resid = w64.T @ x64 - y64
    np.testing.assert_allclose(c0, np.mean(resid ** 2), rtol=1e-12)
    assert g.dtype == np.float64 and g.shape == (10, 1)
    np.testing.assert_allclose(g, 2.0 / resid.size * x64 @ resid.T, rtol=1e-10)
    # torch autograd on the same numbers
    tw = _t(w64, True)
    ((tw.T @ _t(x64) - _t(y64)) ** 2).mean().backward()
    np.testing.assert_allclose(g, tw.grad.numpy(), rtol=1e-10)
    assert my_w.dtype == np.float32 and c1 < c0      # one gradient step lowers the cost


def _autoencoder(nvis=12, nhid=5, threshold=0.1, lr=0.05, seed=0, mode=None):
    rng = np.random.default_rng(seed)
    W0, bh0, bv0 = 0.3 * rng.standard_normal((nvis, nhid)), 0.1 * rng.standard_normal(nhid), 0.1 * rng.standard_normal(nvis)
    W = theano.shared(W0, name="W")
    bhid = theano.shared(bh0, name="bhid")
    bvis = theano.shared(bv0, name="bvis")
    params = [W, bhid, bvis]
    inputs = T.dmatrix("inputs")
    selectionthreshold = threshold
    prehiddens = T.dot(inputs, W) + bhid
    hiddens = (prehiddens > selectionthreshold) * prehiddens
    outputs = T.dot(hiddens, W.T) + bvis
    cost = T.mean(T.sum(0.5 * ((inputs - outputs) ** 2), axis=1))
    grad = T.grad(cost, params)
    train = theano.function([inputs], cost, updates=[(p, p - lr * g) for p, g in zip(params, grad)], mode=mode)
    return train, params, (W0, bh0, bv0), cost, grad, inputs


def test_snippet_3_autoencoder_updates_match_torch():
    train, params, (W0, bh0, bv0), _, _, _ = _autoencoder()
    x = np.random.default_rng(1).standard_normal((20, 12))
    tw, tbh, tbv = _t(W0, True), _t(bh0, True), _t(bv0, True)
    for step in range(3):
        c = train(x)
        pre = _t(x) @ tw + tbh
        out = ((pre > 0.1) * pre) @ tw.T + tbv
        tc = (0.5 * (_t(x) - out) ** 2).sum(1).mean()
        np.testing.assert_allclose(c, tc.item(), rtol=1e-10)      # the cost is computed from the old values
        tc.backward()
        with torch.no_grad():
            for p in (tw, tbh, tbv):
                p -= 0.05 * p.grad
                p.grad = None
        for sv, tp in zip(params, (tw, tbh, tbv)):
            np.testing.assert_allclose(sv.get_value(), tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_autoencoder_learns():
    train, *_ = _autoencoder(nvis=16, nhid=8, threshold=0.0, lr=0.02)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 3)) @ rng.standard_normal((3, 16))
    first = train(x)
    for _ in range(60):
        last = train(x)
    assert last < 0.5 * first


def test_deeplearning_net_logistic_regression_with_givens():
    """The deeplearning.net tutorial's minibatch SGD: data in shared variables, the minibatch
    chosen by ``givens`` with symbolic slice bounds, the NLL by advanced indexing."""
    rng = np.random.default_rng(0)
    n, d, k, bs = 300, 10, 3, 50
    X = rng.standard_normal((n, d))
    Y = (X @ rng.standard_normal((d, k))).argmax(1)
    train_set_x = theano.shared(X, borrow=True)
    train_set_y = T.cast(theano.shared(Y.astype(np.float64)), "int32")
    index = T.lscalar()
    x = T.matrix("x")
    y = T.ivector("y")
    W = theano.shared(np.zeros((d, k)), name="W", borrow=True)
    b = theano.shared(np.zeros((k,)), name="b", borrow=True)
    p_y_given_x = T.nnet.softmax(T.dot(x, W) + b)
    y_pred = T.argmax(p_y_given_x, axis=1)
    nll = -T.mean(T.log(p_y_given_x)[T.arange(y.shape[0]), y])
    errors = T.mean(T.neq(y_pred, y))
    g_W, g_b = T.grad(cost=nll, wrt=W), T.grad(cost=nll, wrt=b)
    batch = {x: train_set_x[index * bs: (index + 1) * bs], y: train_set_y[index * bs: (index + 1) * bs]}
    train_model = theano.function([index], nll, updates=[(W, W - 0.5 * g_W), (b, b - 0.5 * g_b)], givens=batch)
    test_model = theano.function([index], errors, givens=batch)
    # the first step against torch
    tw = torch.zeros(d, k, dtype=torch.float64, requires_grad=True)
    tb = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(_t(X[bs:2 * bs]) @ tw + tb, torch.tensor(Y[bs:2 * bs]))
    tl.backward()
    np.testing.assert_allclose(train_model(1), tl.item(), rtol=1e-12)
    np.testing.assert_allclose(W.get_value(), -0.5 * tw.grad.numpy(), rtol=1e-10, atol=1e-15)
    for _ in range(5):
        for i in range(n // bs):
            train_model(i)
    err = np.mean([test_model(i) for i in range(n // bs)])
    assert test_model(0).dtype == np.float64 and err < 0.1
    assert theano.pp(nll).startswith("-mean(log(nnet.softmax((dot(x, W) + b)))[arange(0, y.shape[0]), y]")


def test_conv2d_is_a_true_convolution_and_pool_2d_matches_torch():
    from deepgrad.theano.tensor.signal import pool
    rng = np.random.default_rng(5)
    x, w = T.dtensor4("x"), T.dtensor4("w")
    xv, wv = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    valid = theano.function([x, w], T.nnet.conv2d(x, w))(xv, wv)
    # NumPy: y[n, o, i, j] = sum_c,a,b x[n, c, i + a, j + b] * w[o, c, kh - 1 - a, kw - 1 - b]
    expect = np.zeros((2, 4, 5, 5))
    for a in range(3):
        for b in range(2):
            expect += np.einsum("ncij,oc->noij", xv[:, :, a:a + 5, b:b + 5], wv[:, :, 2 - a, 1 - b])
    np.testing.assert_allclose(valid, expect, rtol=1e-12, atol=1e-12)
    cases = [("full", (2, 1), True, "max", False), ("half", (1, 1), False, "average_exc_pad", True),
             ((1, 0), (1, 2), True, "sum", True), ("valid", (1, 1), True, "average_inc_pad", False)]
    for border, sub, flip, mode, ib in cases:
        y = T.nnet.conv2d(x, w, border_mode=border, subsample=sub, filter_flip=flip)
        p = pool.pool_2d(T.tanh(y), ws=(2, 2), ignore_border=ib, mode=mode)
        yv, pv, gw = theano.function([x, w], [y, p, T.grad(T.sum(p ** 2), w)])(xv, wv)
        tw = _t(wv, True)
        pad = {"full": (2, 1), "half": (1, 1), "valid": (0, 0)}.get(border, border)
        ty = torch.nn.functional.conv2d(_t(xv), tw.flip(2, 3) if flip else tw, stride=sub, padding=pad)
        F = torch.nn.functional
        tp = (F.max_pool2d(torch.tanh(ty), 2, ceil_mode=not ib) if mode == "max" else
              4 * F.avg_pool2d(torch.tanh(ty), 2, ceil_mode=not ib) if mode == "sum" else
              F.avg_pool2d(torch.tanh(ty), 2, ceil_mode=not ib, count_include_pad=mode == "average_inc_pad"))
        (tp ** 2).sum().backward()
        np.testing.assert_allclose(yv, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(pv, tp.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-9, atol=1e-12)
    with pytest.raises(TypeError, match=r"conv2d: input and filters must be 4-d.*dmatrix"):
        T.nnet.conv2d(T.dmatrix(), w)


# ---------------------------------------------------------------------------------------------
# Shared variables and updates
# ---------------------------------------------------------------------------------------------

def test_updates_use_old_values_and_shared_value_semantics():
    a = theano.shared(np.array([1.0, 2.0]), name="a")
    b = theano.shared(np.array([10.0, 20.0]), name="b")
    x = T.dvector("x")
    f = theano.function([x], a + b, updates=[(a, b + x), (b, a)])     # a swap: both read old values
    out = f(np.array([0.5, 0.5]))
    np.testing.assert_array_equal(out, [11.0, 22.0])
    np.testing.assert_array_equal(a.get_value(), [10.5, 20.5])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    # get_value copies unless borrow; set_value copies unless borrow
    v = a.get_value()
    v[0] = -1
    assert a.get_value()[0] == 10.5
    src = np.array([7.0, 8.0])
    a.set_value(src)
    src[0] = 0
    assert a.get_value()[0] == 7.0
    assert a.get_value(borrow=True) is a.get_value(borrow=True)
    # an output is never the shared value's memory
    g = theano.function([], a)
    r = g()
    r[0] = 99
    assert a.get_value()[0] == 7.0
    # a dict of updates works too, and a counter is the classic example
    state = theano.shared(0, name="state")
    inc = T.lscalar("inc")
    acc = theano.function([inc], state, updates={state: state + inc})
    assert acc(1) == 0 and acc(10) == 1 and state.get_value() == 11


def test_shared_float32_training_keeps_dtype():
    w = theano.shared(np.zeros(3, dtype=np.float32), name="w")
    x = T.fmatrix("x")
    y = T.fvector("y")
    cost = T.mean((T.dot(x, w) - y) ** 2)
    step = theano.function([x, y], cost, updates=[(w, w - 0.1 * T.grad(cost, w))])
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((30, 3)).astype(np.float32)
    yv = xv @ np.array([1.0, -2.0, 0.5], dtype=np.float32)
    for _ in range(200):
        c = step(xv, yv)
    assert c.dtype == np.float32 and w.get_value().dtype == np.float32
    np.testing.assert_allclose(w.get_value(), [1.0, -2.0, 0.5], atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Ops against NumPy (values) and torch (gradients)
# ---------------------------------------------------------------------------------------------

_UNARY = [
    ("exp", T.exp, torch.exp), ("log", lambda x: T.log(T.abs_(x) + 1), lambda x: torch.log(x.abs() + 1)),
    ("tanh", T.tanh, torch.tanh), ("sigmoid", T.nnet.sigmoid, torch.sigmoid),
    ("softplus", T.nnet.softplus, torch.nn.functional.softplus), ("relu", T.nnet.relu, torch.relu),
    ("sqr", T.sqr, torch.square), ("sqrt", lambda x: T.sqrt(x * x + 1), lambda x: torch.sqrt(x * x + 1)),
    ("neg", lambda x: -x, torch.neg), ("pow3", lambda x: x ** 3, lambda x: x ** 3),
    ("switch", lambda x: T.switch(x > 0.2, x, 2 * x), lambda x: torch.where(x > 0.2, x, 2 * x)),
    ("clip", lambda x: T.clip(x, -0.5, 0.5), lambda x: torch.clamp(x, -0.5, 0.5)),
    ("maximum", lambda x: T.maximum(x, 0.1), lambda x: torch.maximum(x, torch.tensor(0.1, dtype=x.dtype))),
    ("softmax", T.nnet.softmax, lambda x: torch.softmax(x, 1)),
    ("sum1", lambda x: x.sum(axis=1), lambda x: x.sum(1)), ("mean0k", lambda x: x.mean(axis=0, keepdims=True),
                                                            lambda x: x.mean(0, keepdim=True)),
    ("max1", lambda x: T.max(x, axis=1), lambda x: x.amax(1)), ("var", T.var, lambda x: x.var(unbiased=False)),
    ("T", lambda x: x.T, lambda x: x.T), ("index", lambda x: x[1:, ::2], lambda x: x[1:, ::2]),
    ("dimshuffle", lambda x: x.dimshuffle(1, "x", 0), lambda x: x.T.unsqueeze(1)),
    ("reshape", lambda x: x.reshape((2, -1)), lambda x: x.reshape(2, -1)),
    ("concat", lambda x: T.concatenate([x, 2 * x], axis=1), lambda x: torch.cat([x, 2 * x], 1)),
    ("set_subtensor", lambda x: T.set_subtensor(x[0], 0.0), lambda x: torch.cat([torch.zeros_like(x[:1]), x[1:]])),
    ("xent", lambda x: T.nnet.categorical_crossentropy(T.nnet.softmax(x), np.array([0, 2, 1, 3], dtype=np.int64)),
     lambda x: torch.nn.functional.cross_entropy(x, torch.tensor([0, 2, 1, 3]), reduction="none")),
]


@pytest.mark.parametrize("name,th,tf", _UNARY, ids=[c[0] for c in _UNARY])
def test_ops_values_and_gradients_match_torch(name, th, tf):
    xv = np.random.default_rng(abs(hash(name)) % 1000).standard_normal((4, 4))
    x = T.dmatrix("x")
    y = th(x)
    cost = T.sum(y * y) if y.ndim else y * y       # a non-trivial upstream gradient
    f = theano.function([x], [y, T.grad(cost, x)])
    yv, gv = f(xv)
    tx = _t(xv, True)
    ty = tf(tx)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(yv, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gv, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_second_order_and_intermediate_gradients_match_torch():
    w, v = T.dvectors("w", "v")
    h = T.tanh(w)
    c = T.sum(h ** 3)
    gw = T.grad(c, w)
    hv = T.grad(T.sum(gw * v), w)                 # Hessian-vector product: a Grad of a Grad
    gh = T.grad(c, h)                             # with respect to an intermediate variable
    f = theano.function([w, v], [gw, hv, gh])
    wv, vv = np.array([0.3, -1.2, 0.7]), np.array([1.0, 0.5, -2.0])
    r_gw, r_hv, r_gh = f(wv, vv)
    tw = _t(wv, True)
    tc = (torch.tanh(tw) ** 3).sum()
    (tg,) = torch.autograd.grad(tc, tw, create_graph=True)
    (thv,) = torch.autograd.grad((tg * _t(vv)).sum(), tw)
    np.testing.assert_allclose(r_gw, tg.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(r_hv, thv.numpy(), rtol=1e-10)
    np.testing.assert_allclose(r_gh, 3 * np.tanh(wv) ** 2, rtol=1e-12)


def test_indexing_and_inc_subtensor_match_numpy():
    x = T.dmatrix("x")
    i = T.lscalar("i")
    iv = T.lvector("iv")
    f = theano.function([x, i, iv], [x[i], x[1:, i], x[iv], x[-1, ::-1], x.shape[0] * 2,
                                     T.inc_subtensor(x[iv], 1.0), T.set_subtensor(x[:, i], -1.0)])
    xv = np.arange(12.0).reshape(3, 4)
    idx = np.array([0, 2, 2])
    r = f(xv, 1, idx)
    np.testing.assert_array_equal(r[0], xv[1])
    np.testing.assert_array_equal(r[1], xv[1:, 1])
    np.testing.assert_array_equal(r[2], xv[idx])
    np.testing.assert_array_equal(r[3], xv[-1, ::-1])
    assert r[4] == 6
    expect = xv.copy()
    np.add.at(expect, idx, 1.0)                   # repeated indices accumulate
    np.testing.assert_array_equal(r[5], expect)
    expect = xv.copy()
    expect[:, 1] = -1
    np.testing.assert_array_equal(r[6], expect)
    np.testing.assert_array_equal(xv, np.arange(12.0).reshape(3, 4))   # inputs untouched


@pytest.mark.parametrize("make,dtype", [
    (lambda: T.fmatrix() * 0.5, "float32"),           # a Python float does not widen float32
    (lambda: T.fmatrix() * T.dscalar(), "float64"),   # a float64 variable does
    (lambda: T.ivector() / 2, "float64"),             # true division of integers
    (lambda: T.ivector() // 2, "int32"),
    (lambda: T.bvector() + T.ivector(), "int32"),
    (lambda: T.fvector() > 0, "bool"),
    (lambda: (T.dvector() > 0) * T.fvector(), "float32"),
    (lambda: T.sum(T.bvector()), "int64"),
    (lambda: T.mean(T.ivector()), "float64"),
    (lambda: T.mean(T.fvector() > 0), "float64"),
    (lambda: T.exp(T.bvector()), "float32"),
    (lambda: T.dot(T.fmatrix(), T.dmatrix()), "float64"),
    (lambda: T.scalar(), "float64"),
    (lambda: T.bvector() + 300, "int16"),             # a Python int that does not fit widens
    (lambda: T.bvector() * 2, "int8"),
])
def test_dtype_rules_and_runtime_dtype(make, dtype):
    y = make()
    assert y.dtype == dtype
    ins = [v for v in theano.graph.ancestors([y]) if v.owner is None and not isinstance(v, T.TensorConstant)]
    f = theano.function(ins, y)
    vals = [np.ones((3,) * v.ndim, dtype=v.dtype) for v in ins]
    assert f(*vals).dtype == dtype                 # the function returns what the graph promised


def test_theano_broadcasting_rules():
    x, r, c = T.dmatrix("x"), T.drow("r"), T.dcol("c")
    f = theano.function([x, r, c], x + r + c)
    xv = np.zeros((2, 3))
    np.testing.assert_array_equal(f(xv, [[1.0, 2.0, 3.0]], [[10.0], [20.0]]),
                                  np.array([[11.0, 12, 13], [21, 22, 23]]))
    y = T.dmatrix("y")
    g = theano.function([x, y], x + y)
    with pytest.raises(ValueError, match=r"(?s)Input dimension mis-match.*Apply node that caused the error"):
        g(np.zeros((2, 3)), np.zeros((1, 3)))       # a matrix does not broadcast unless its type says so
    g2 = theano.function([x, y], x + T.addbroadcast(y, 0))
    np.testing.assert_array_equal(g2(np.zeros((2, 3)), np.ones((1, 3))), np.ones((2, 3)))
    with pytest.raises(TypeError, match="Non-unit value on shape on a broadcastable dimension"):
        f(xv, np.zeros((2, 3)), np.zeros((2, 1)))


# ---------------------------------------------------------------------------------------------
# Errors: at graph-build time (types) and at call time (arguments)
# ---------------------------------------------------------------------------------------------

_BUILD_ERRORS = [
    (lambda: T.dot(T.dmatrix(), T.bvector() > 0), TypeError, r"dot: cannot multiply dmatrix by bool vector"),
    (lambda: T.sum(T.dmatrix(), axis=2), ValueError, r"sum: axis 2 is out of range for dmatrix"),
    (lambda: T.grad(T.dmatrix() * 2, T.dmatrix()), TypeError, r"cost must be a scalar.*dmatrix"),
    (lambda: T.grad(T.dscalar() * 2, T.dscalar("z")), theano.DisconnectedInputError, r"z \(dscalar\)"),
    (lambda: T.grad(T.sum(T.ivector("k") * 1.5), T.ivector("k")), TypeError, r"integer or bool"),
    (lambda: T.dmatrix() & T.dmatrix(), TypeError, r"and_: bitwise operations need integer or bool inputs, got dmatrix"),
    (lambda: T.nnet.softmax(T.dtensor3()), ValueError, r"softmax: x must be 1-d or 2-d tensor of floats. Got dtensor3"),
    (lambda: bool(T.dscalar() > 0), TypeError, r"boolean operations"),
    (lambda: T.dmatrix()[1.5], TypeError, r"Subtensor: cannot index dmatrix"),
    (lambda: T.dmatrix()[T.dvector()], TypeError, r"indices must be integers.*dvector"),
    (lambda: T.dmatrix()[1, 2, 3], IndexError, r"too many indices"),
    (lambda: T.dmatrix().dimshuffle(1), ValueError, r"cannot drop the non-broadcastable dimension 0 of dmatrix"),
    (lambda: T.switch(T.dvector(), 1, 0), TypeError, r"switch: the condition must be bool or integer, got dvector"),
    (lambda: T.concatenate([T.dmatrix(), T.dvector()]), TypeError, r"concatenate: .*same number of dimensions"),
    (lambda: T.dvector() + "abc", TypeError, r"add: cannot convert 'abc'"),
    (lambda: theano.function(T.dscalar(), T.dscalar()), TypeError, r"should be contained in a list"),
    (lambda: theano.scan(lambda x: x, sequences=[T.dvector()]), NotImplementedError, r"theano.scan .*Python loop"),
    (lambda: theano.function([T.dmatrix("x")], T.dmatrix("x2") + 1), theano.MissingInputError, r"x2 \(dmatrix\)"),
    (lambda: theano.function([T.dmatrix("x"), T.dvector("u")], T.dmatrix("x2") * 0 + 1,
                             on_unused_input="ignore"), theano.MissingInputError, "x2"),
]


@pytest.mark.parametrize("make,exc,match", _BUILD_ERRORS, ids=range(len(_BUILD_ERRORS)))
def test_graph_build_errors_name_op_and_types(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_update_and_input_errors():
    W = theano.shared(np.zeros((3, 2), dtype=np.float32), name="W")
    x = T.dmatrix("x")
    with pytest.raises(TypeError, match=r"An update must have the same type as the original shared variable.*fmatrix vs dmatrix"):
        theano.function([x], W.sum(), updates=[(W, W + x)])
    with pytest.raises(TypeError, match=r"Cannot use a shared variable \(W\) as explicit input"):
        theano.function([W], W.sum())
    with pytest.raises(TypeError, match="update target must be a shared variable"):
        theano.function([x], x.sum(), updates=[(x, x + 1)])
    with pytest.raises(Exception, match="not part of the computational graph"):
        theano.function([x, T.dvector("unused")], x.sum())
    with pytest.raises(TypeError, match="cannot store a value of dtype float64"):
        W.set_value(np.ones((3, 2)))
    fm = T.fmatrix("fm")
    v = T.dvector("v")
    f = theano.function([fm, v], fm.sum() + v.sum(), name="f")
    ok = np.ones((2, 2), dtype=np.float32)
    with pytest.raises(TypeError, match=r'Bad input argument with name "fm" to theano function with name "f" at '
                                        r'index 0 \(0-based\).*float32.*float64.*allow_input_downcast'):
        f(np.ones((2, 2)), np.ones(2))
    with pytest.raises(TypeError, match=r"index 1 \(0-based\).*Wrong number of dimensions: expected 1, got 2"):
        f(ok, np.ones((2, 2)))
    with pytest.raises(TypeError, match="Missing required input: v"):
        f(ok)
    with pytest.raises(TypeError, match="Too many parameter"):
        f(ok, np.ones(2), 3)
    assert f(ok, v=np.ones(2)) == 6.0                 # inputs by name
    g = theano.function([fm], fm * 2, allow_input_downcast=True)
    assert g(np.ones((1, 1))).dtype == np.float32
    d, e = T.dmatrix("d"), T.dmatrix("e")
    h = theano.function([d, e], T.dot(d, e))
    with pytest.raises(ValueError, match=r"Shape mismatch.*\nApply node that caused the error: dot"):
        h(np.ones((2, 3)), np.ones((2, 3)))


def test_givens_defaults_and_eval():
    s, y = T.dscalars("s", "y")
    f = theano.function([y], s * 2, givens={s: y + 1})
    assert f(3.0) == 8.0
    g = theano.function([theano.In(y, value=2.0)], y * 3)
    assert g() == 6.0 and g(1.0) == 3.0
    assert (s * 2).eval({s: 4.0}) == 8.0
    with pytest.raises(TypeError, match="givens: cannot replace s"):
        theano.function([y], s * 2, givens={s: T.dvector()})


# ---------------------------------------------------------------------------------------------
# Printers and Graphviz
# ---------------------------------------------------------------------------------------------

def _linreg():
    W = T.dmatrix("W")
    inputs = T.dmatrix("inputs")
    targets = T.dmatrix("targets")
    cost = ((T.dot(W.T, inputs) - targets) ** 2).mean()
    return W, inputs, targets, cost


def test_debugprint_structure():
    W, inputs, targets, cost = _linreg()
    text = theano.printing.debugprint(cost, file="str")
    lines = text.splitlines()
    assert lines[0].startswith("Mean [id A]")
    depth = {re.sub(r" \[id.*", "", ln.lstrip(" |")): ln.count("|") for ln in lines}
    assert depth["Elemwise{pow}"] == 1 and depth["dot"] == 3 and depth["W"] == 5 and depth["targets"] == 3
    ids = re.findall(r"\[id ([A-Z]+)\]", text)
    assert len(ids) == len(set(ids)) == len(lines)       # every node once: no shared subtree here
    # a function: evaluation positions, and each update as a tree of its own
    Ws = theano.shared(np.zeros((3, 1)), name="Ws")
    c2 = T.sum((T.dot(inputs, Ws) - targets) ** 2)
    f = theano.function([inputs, targets], c2, updates=[(Ws, Ws - 0.1 * T.grad(c2, Ws))])
    text = theano.printing.debugprint(f, file="str")
    assert "update of Ws:" in text and "Grad" in text
    positions = [int(m) for m in re.findall(r"'[^']*' (\d+)$", text, flags=re.M)]
    assert sorted(set(positions)) == list(range(len(f.maker.fgraph.toposort())))
    # the Sum node is shared by the output and the gradient: expanded once, referenced again
    sum_lines = [ln for ln in text.splitlines() if ln.lstrip(" |").startswith("Sum")]
    assert len(sum_lines) == 2 and len(set(re.findall(r"Sum \[id (\w+)\]", text))) == 1
    assert theano.pp(cost) == "mean(((dot(W.T, inputs) - targets) ** 2))"
    out = dg.print_graph(cost, file="str")
    assert out == theano.printing.debugprint(cost, file="str")


def _parse_dot(text):
    """Check the dot text's syntax (balanced braces outside quoted strings, closed strings, every
    edge between declared nodes); returns {node id: label}, [(from, to)]."""
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    depth, in_str, esc = 0, False, False
    for ch in text:
        if in_str:
            esc, in_str = (not esc and ch == "\\"), in_str and not (ch == '"' and not esc)
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            assert depth >= 0
    assert depth == 0 and not in_str
    body = text[text.index("{") + 1:text.rstrip().rindex("}")]
    nodes = dict(re.findall(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', body, flags=re.M))
    edges = re.findall(r"^\s*(\w+) -> (\w+)", body, flags=re.M)
    for a, b in edges:
        assert a in nodes and b in nodes, (a, b)
    return nodes, edges


def test_to_dot_symbolic_graph_and_function(tmp_path):
    W, inputs, targets, cost = _linreg()
    f = theano.function([W, inputs, targets], cost)
    text = graphviz.to_dot(f, path=tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == text
    nodes, edges = _parse_dot(text)
    labels = list(nodes.values())
    for want in ("dot", "Mean", "Elemwise{sub}", "Elemwise{pow}", "DimShuffle{1,0}", "W\\ndmatrix"):
        assert want in labels, want
    # one edge per input of every node, one per output
    assert len(edges) == sum(len(n.inputs) for n in f.maker.fgraph.toposort()) + len(f.outputs)
    Ws = theano.shared(np.zeros((3, 1)), name="Ws")
    c2 = T.sum((T.dot(inputs, Ws) - targets) ** 2)
    train = theano.function([inputs, targets], c2, updates=[(Ws, Ws - 0.1 * T.grad(c2, Ws))])
    text = graphviz.to_dot(train)
    nodes, edges = _parse_dot(text)
    assert any(v.startswith("Grad wrt Ws") for v in nodes.values())
    assert "style=dashed" in text and 'label="update"' in text
    if graphviz.dot_available():                       # render only where Graphviz is installed
        graphviz.to_dot(train, path=tmp_path / "g.png")
        assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_to_dot_and_print_graph_of_eager_autograd_graph():
    model = dg.nn.Sequential(dg.nn.Linear(3, 4), dg.nn.Tanh(), dg.nn.Linear(4, 1))
    y = model(dg.randn(5, 3)).pow(2).mean()
    params = dict(model.named_parameters())
    nodes, edges = _parse_dot(graphviz.to_dot(y, params=params))
    labels = list(nodes.values())
    for name, p in params.items():
        assert f"{name}\\n({', '.join(map(str, p.shape))})" in labels
    assert "TanhBackward" in labels and "MeanBackward" in labels
    # every parameter reaches the output
    succ = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    root = next(k for k, v in nodes.items() if v.startswith("output"))
    for k, v in nodes.items():
        if v.split("\\n")[0] in params:
            seen, stack = set(), [k]
            while stack:
                n = stack.pop()
                seen.add(n)
                stack.extend(m for m in succ.get(n, ()) if m not in seen)
            assert root in seen
    tree = dg.print_graph(y, file="str", params=params)
    assert tree.splitlines()[0].startswith("MeanBackward")
    assert "0.weight (4, 3)" in tree and "TanhBackward" in tree
    with pytest.raises(TypeError, match="to_dot: expected"):
        graphviz.to_dot(42)


def test_demo_theano_quick(tmp_path, capsys):
    import deepgrad.demos as demos
    r = demos.run("theano", quick=True, out=tmp_path)
    assert r["snippet1"] == 4.0
    assert r["linreg_cost_after"] < r["linreg_cost_before"]
    assert r["linreg_trained_vs_lstsq"] < 1e-4
    assert r["ae_cost_last"] < 0.5 * r["ae_cost_first"]
    _parse_dot((tmp_path / "linear_regression.dot").read_text())
    assert "update of W:" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Replay by the capture-and-replay compiler (deepgrad/compiler, branch h-compile)
# ---------------------------------------------------------------------------------------------

def test_which_functions_the_compiler_would_replay():
    from deepgrad.theano.function import _wants_compiler
    a, b = T.dscalars("a", "b")
    assert not _wants_compiler(theano.function([a, b], a + b), None)            # one node: the walk is cheaper
    W, X, Y = T.dmatrices("W", "X", "Y")
    c = ((T.dot(W.T, X) - Y) ** 2).mean()
    assert _wants_compiler(theano.function([W, X, Y], c), None)
    assert _wants_compiler(theano.function([W, X, Y], T.grad(c, W)), "FAST_RUN")
    assert not _wants_compiler(theano.function([W, X, Y], c, mode="FAST_COMPILE"), "FAST_COMPILE")
    i = T.lscalar("i")
    assert not _wants_compiler(theano.function([X, i], T.sum(X[i:] ** 2) * 2), None)   # a value read into Python
    assert _wants_compiler(theano.function([X], T.sum(X[np.array([0, 1])] ** 2) * 2), None)   # an index array is data
    with pytest.raises(ValueError, match="mode must be one of"):
        theano.function([a], a, mode="FAST")


def test_compiled_training_matches_eager_and_rerecords_on_new_shapes():
    # the compiler package comes with issue 19's other half; without it every function walks eagerly
    pytest.importorskip("deepgrad.compiler")
    runs = {}
    for mode in (None, "FAST_COMPILE"):
        train, params, *_ = _autoencoder(nvis=12, nhid=5, lr=0.05, seed=4, mode=mode)
        assert train.compiled == (mode is None)
        rng = np.random.default_rng(7)
        costs = [train(rng.standard_normal((n, 12))) for n in (16, 16, 16, 9, 9, 16)]   # the batch size changes
        runs[mode] = costs, [p.get_value() for p in params]
        if mode is None:
            assert train.compiled and train._stepper.recordings == 2     # once per input shape
    (c1, p1), (c2, p2) = runs[None], runs["FAST_COMPILE"]
    np.testing.assert_array_equal(np.array(c1), np.array(c2))          # the same operations in the same order
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)


def test_printers_dispatch_to_a_captured_program():
    class FakeProgram:            # what deepgrad.compiler's Program offers the printers
        def print(self, file=None):
            file.write("# program: 2 nodes\n")

        def to_dot(self):
            return 'digraph deepgrad_program {\n  n0 [label="add"];\n}\n'

    class FakeCompiled:
        last_program = FakeProgram()

    assert dg.print_graph(FakeCompiled(), file="str") == "# program: 2 nodes\n"
    nodes, _ = _parse_dot(graphviz.to_dot(FakeProgram()))
    assert list(nodes.values()) == ["add"]


def test_floatX_float32():
    old = theano.config.floatX
    theano.config.floatX = "float32"
    try:
        x = T.matrix("x")
        assert x.dtype == "float32" and T.scalar().dtype == "float32"
        y = x * 0.5 + 1
        f = theano.function([x], y)
        assert f([[1.0, 2.0]]).dtype == np.float32          # a Python list of floats fits float32 here
        assert (T.ivector() / 2).dtype == "float64"         # int32 / int: float64, as Theano
        with pytest.raises(ValueError, match="floatX must be"):
            theano.config.floatX = "float128"
    finally:
        theano.config.floatX = old
    assert T.matrix().dtype == "float64"


def test_example_script_runs(capsys):
    import pathlib
    import runpy
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "theano_snippets.py"
    ns = runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "epoch 150" in out and "Mean [id A]" in out
    assert ns["c"] < 0.2 * float(out.split("epoch 0: reconstruction cost ")[1].split()[0])


def test_random_streams_denoising_autoencoder():
    from deepgrad.theano.tensor.shared_randomstreams import RandomStreams
    srng = RandomStreams(seed=234)
    x = T.dmatrix("x")
    mask = srng.binomial(size=x.shape, n=1, p=0.7, dtype=theano.config.floatX)
    noise = srng.uniform((2, 3), low=-1.0, high=1.0)
    W = theano.shared(np.full((5, 5), 0.1), name="W")
    cost = T.mean(T.sum((T.dot(mask * x, W) - x) ** 2, axis=1))
    f = theano.function([x], [mask * x, noise, T.grad(cost, W)])
    xv = np.random.default_rng(0).standard_normal((400, 5))
    m1, u1, g1 = f(xv)
    m2, u2, _ = f(xv)
    assert not np.array_equal(m1, m2) and not np.array_equal(u1, u2)      # fresh draws at every call
    keep = (m1 != 0)
    assert 0.65 < keep.mean() < 0.75 and np.array_equal(m1[keep], xv[keep])
    assert u1.min() >= -1 and u1.max() < 1 and u1.shape == (2, 3)
    # the gradient uses the same mask as the output of that call: torch on the drawn mask
    tw = _t(np.full((5, 5), 0.1), True)
    ((_t(m1) @ tw - _t(xv)) ** 2).sum(1).mean().backward()
    np.testing.assert_allclose(g1, tw.grad.numpy(), rtol=1e-10)
    srng.seed(234)
    m3, u3, _ = f(xv)
    assert np.array_equal(m3, m1) and np.array_equal(u3, u1)               # reseeding replays the stream
    with pytest.raises(NotImplementedError, match="only n=1"):
        srng.binomial(size=(2,), n=3)


def test_compiled_random_draws_match_eager():
    pytest.importorskip("deepgrad.compiler")       # see test_compiled_training_matches_eager_...
    from deepgrad.theano.tensor.shared_randomstreams import RandomStreams
    runs = []
    for mode in (None, "FAST_COMPILE"):
        srng = RandomStreams(seed=1)
        x = T.dmatrix("x")
        W = theano.shared(np.full((5, 5), 0.1), name="W")
        cost = T.mean(T.sum((T.dot(x + srng.normal((8, 5), std=0.3), W) - x) ** 2, axis=1))
        f = theano.function([x], cost, updates=[(W, W - 0.1 * T.grad(cost, W))], mode=mode)
        assert f.compiled == (mode is None)
        xv = np.random.default_rng(0).standard_normal((8, 5))
        runs.append(([f(xv) for _ in range(5)], W.get_value()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])    # a fresh draw at every replayed call
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_alloc_zeros_ones_and_padding():
    x = T.dmatrix("x")
    a = T.alloc(x[0], 3, x.shape[1])
    s, r = T.shape_padleft(x.sum(axis=0)), T.shape_padright(x.sum(axis=1))
    assert s.type == T.drow().type and r.type == T.dcol().type and T.unbroadcast(s, 0).type == T.dmatrix().type
    f = theano.function([x], [T.zeros((2, x.shape[1])), T.ones(3, dtype="int32"), a, s + x, r + x,
                              T.grad(T.sum(a * 2), x)])
    xv = np.arange(6.0).reshape(2, 3)
    z, o, av, sv, rv, g = f(xv)
    np.testing.assert_array_equal(z, np.zeros((2, 3)))
    assert o.dtype == np.int32 and o.tolist() == [1, 1, 1]
    np.testing.assert_array_equal(av, np.broadcast_to(xv[0], (3, 3)))
    np.testing.assert_array_equal(sv, xv.sum(0)[None] + xv)
    np.testing.assert_array_equal(rv, xv.sum(1)[:, None] + xv)
    np.testing.assert_array_equal(g, np.array([[6.0, 6, 6], [0, 0, 0]]))


_DTYPES = ["bool", "int8", "int32", "int64", "float32", "float64"]


@pytest.mark.parametrize("op,npop", [(T.add, np.add), (T.mul, np.multiply), (T.maximum, np.maximum), (T.lt, np.less)],
                         ids=["add", "mul", "maximum", "lt"])
def test_binary_dtype_promotion_matches_numpy(op, npop):
    rng = np.random.default_rng(0)
    for da in _DTYPES:
        for db in _DTYPES:
            a = (rng.standard_normal((3, 4)) * 5).astype(da)
            b = (rng.standard_normal((4,)) * 5).astype(db)
            x, y = T.TensorType(da, (False, False))("x"), T.TensorType(db, (False,))("y")
            z = op(x, y)
            want = npop(a, b)
            assert z.dtype == str(want.dtype), (da, db)
            got = theano.function([x, y], z)(a, b)
            assert got.dtype == want.dtype and np.array_equal(got, want), (da, db)
