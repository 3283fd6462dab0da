"""PyTorch-style custom autograd Functions (``@staticmethod forward(ctx, ...)``), run side by side
with torch 2.13: values, gradients, double backward, ctx features and errors."""
import numpy as np
import pytest
import torch

import deepgrad as dg

# The custom-Function tutorial's program, written from its description: fit sin(x) with
# a + b * P3(c + d x) where P3 is a hand-written autograd Function. deepgrad runs the same text
# with only the import line changed.
LEGENDRE_PROGRAM = '''
import math
import torch


class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


dtype = torch.float
device = torch.device("cpu")
x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x)
a = torch.full((), 0.0, device=device, dtype=dtype, requires_grad=True)
b = torch.full((), -1.0, device=device, dtype=dtype, requires_grad=True)
c = torch.full((), 0.0, device=device, dtype=dtype, requires_grad=True)
d = torch.full((), 0.3, device=device, dtype=dtype, requires_grad=True)
learning_rate = 5e-6
losses = []
for t in range(2000):
    P3 = LegendrePolynomial3.apply
    y_pred = a + b * P3(c + d * x)
    loss = (y_pred - y).pow(2).sum()
    if t % 100 == 99:
        losses.append(loss.item())
    loss.backward()
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None
result = (a.item(), b.item(), c.item(), d.item())
'''


def test_legendre_tutorial_matches_torch():
    ns_t, ns_d = {}, {}
    exec(compile(LEGENDRE_PROGRAM, "legendre_torch", "exec"), ns_t)
    exec(compile(LEGENDRE_PROGRAM.replace("import torch\n", "import deepgrad as torch\n"),
                 "legendre_deepgrad", "exec"), ns_d)
    assert ns_d["losses"][0] != ns_d["losses"][-1]          # it trained
    np.testing.assert_allclose(ns_d["losses"], ns_t["losses"], rtol=1e-5)
    np.testing.assert_allclose(ns_d["result"][1::2], ns_t["result"][1::2], rtol=1e-5)  # b and d
    assert isinstance(ns_d["y_pred"].grad_fn, dg.autograd.function.BackwardCFunction) or \
        ns_d["y_pred"].grad_fn is not None


# ---- a table of Functions, each written once against a module ``M`` (torch or deepgrad) --------

def make_functions(M):
    F = {}

    class ScaledMul(M.autograd.Function):         # non-tensor arg, keyword, ctx attribute
        @staticmethod
        def forward(ctx, x, y, scale, shift=0.0):
            ctx.save_for_backward(x, y)
            ctx.scale = scale
            ctx.flags = ctx.needs_input_grad
            return x * y * scale + shift

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            assert ctx.flags == ctx.needs_input_grad
            gx = g * y * ctx.scale if ctx.needs_input_grad[0] else None
            gy = g * x * ctx.scale if ctx.needs_input_grad[1] else None
            return gx, gy, None, None
    F["scaled_mul"] = ScaledMul

    class Cube(M.autograd.Function):                # twice differentiable backward
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 3 * g * x ** 2
    F["cube"] = Cube

    class MyExp(M.autograd.Function):               # saves its output (double backward through it)
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            y, = ctx.saved_tensors
            return g * y
    F["exp"] = MyExp

    class SortLike(M.autograd.Function):            # two outputs, one non-differentiable
        @staticmethod
        def forward(ctx, x):
            idx = x.argsort(dim=-1)
            vals = x.gather(-1, idx)
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(idx)
            ctx.in_shape = x.shape
            return vals, idx

        @staticmethod
        def backward(ctx, gvals, gidx):
            idx, = ctx.saved_tensors
            assert gidx is None or float(gidx.abs().sum()) == 0.0
            out = M.zeros(ctx.in_shape, dtype=gvals.dtype)
            return out.scatter(-1, idx, gvals)
    F["sort"] = SortLike

    class Split2(M.autograd.Function):              # materialized zeros for an unused output
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            assert g1 is not None and g2 is not None
            return g1 * 2 + g2 * 3
    F["split2"] = Split2

    class Split2NoMat(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            out = 0
            if g1 is not None:
                out = out + g1 * 2
            if g2 is not None:
                out = out + g2 * 3
            return out
    F["split2_nomat"] = Split2NoMat

    class AddOneInPlace(M.autograd.Function):       # mark_dirty
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g
    F["inplace"] = AddOneInPlace

    class Linear(M.autograd.Function):              # setup_context style, default argument
        @staticmethod
        def forward(x, w, b=None):
            out = x.mm(w.t())
            return out if b is None else out + b

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, w, b = inputs
            ctx.save_for_backward(x, w)
            ctx.has_bias = b is not None

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            gb = g.sum(0) if ctx.has_bias else None
            return g.mm(w), g.t().mm(x), gb
    F["linear"] = Linear

    class BroadcastGrad(M.autograd.Function):       # returns a gradient to be summed down
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g, g                             # x is (3,), y is (2, 3): g is (2, 3) for both
    F["bcast"] = BroadcastGrad

    class Identity(M.autograd.Function):            # returns an input as is
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return 2 * g
    F["identity"] = Identity

    class OnceCube(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        @M.autograd.function.once_differentiable
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 3 * g * x ** 2
    F["once"] = OnceCube
    return F


FD, FT = make_functions(dg), make_functions(torch)


def pair(a, requires_grad=True):
    a = np.asarray(a, dtype=np.float64)
    return (dg.tensor(a.copy(), requires_grad=requires_grad),
            torch.tensor(a.copy(), requires_grad=requires_grad))


def close(d, t, rtol=1e-10):
    if t is None:
        assert d is None
        return
    np.testing.assert_allclose(np.asarray(d.detach().numpy()), t.detach().numpy(), rtol=rtol, atol=1e-12)


RNG = np.random.default_rng(0)
X23 = RNG.standard_normal((2, 3))
Y23 = RNG.standard_normal((2, 3))
W43 = RNG.standard_normal((4, 3))
B4 = RNG.standard_normal(4)

# name, inputs (arrays; None = pass as non-tensor), call(Function, tensors) -> output(s) -> scalar
CASES = [
    ("scaled_mul", [X23, Y23], lambda F, x, y: F.apply(x, y, 2.5, shift=1.0)),
    ("scaled_mul_one_grad", [X23, ("nograd", Y23)], lambda F, x, y: F.apply(x, y, -1.5)),
    ("cube", [X23], lambda F, x: F.apply(x)),
    ("exp", [X23], lambda F, x: F.apply(x)),
    ("sort", [X23], lambda F, x: F.apply(x)[0] * F.apply(x)[1].to(x.dtype)),
    ("split2", [X23], lambda F, x: F.apply(x)[0]),
    ("split2_nomat", [X23], lambda F, x: F.apply(x)[1]),
    ("linear", [X23, W43, B4], lambda F, x, w, b: F.apply(x, w, b)),
    ("linear_nobias", [X23, W43], lambda F, x, w: F.apply(x, w)),
    ("bcast", [X23[0], Y23], lambda F, x, y: F.apply(x, y)),
    ("identity", [X23], lambda F, x: F.apply(x) * 3),
    ("once", [X23], lambda F, x: F.apply(x)),
]


def _inputs(arrs):
    ds, ts = [], []
    for a in arrs:
        rg = True
        if isinstance(a, tuple):
            rg, a = False, a[1]
        d, t = pair(a, requires_grad=rg)
        ds.append(d)
        ts.append(t)
    return ds, ts


@pytest.mark.parametrize("name,arrs,call", CASES, ids=[c[0] for c in CASES])
def test_custom_function_values_and_grads(name, arrs, call):
    key = name.replace("_one_grad", "").replace("_nobias", "")
    ds, ts = _inputs(arrs)
    od, ot = call(FD[key], *ds), call(FT[key], *ts)
    close(od, ot)
    assert od.requires_grad and od.grad_fn is not None
    w = RNG.standard_normal(tuple(ot.shape))
    (od * dg.tensor(w)).sum().backward()
    (ot * torch.tensor(w)).sum().backward()
    for d, t in zip(ds, ts):
        close(d.grad, t.grad)


@pytest.mark.parametrize("name", ["cube", "exp"])
def test_double_backward_matches_torch(name):
    (xd,), (xt,) = _inputs([X23])
    gd, = dg.autograd.grad(FD[name].apply(xd).sum(), xd, create_graph=True)
    gt, = torch.autograd.grad(FT[name].apply(xt).sum(), xt, create_graph=True)
    close(gd, gt)
    hd, = dg.autograd.grad((gd * gd).sum(), xd)
    ht, = torch.autograd.grad((gt * gt).sum(), xt)
    close(hd, ht)
    x = dg.tensor(X23.copy(), requires_grad=True)
    assert dg.autograd.gradcheck(FD[name].apply, [x])
    assert dg.autograd.gradgradcheck(FD[name].apply, [x])


def test_once_differentiable_refuses_double_backward():
    for M, F in ((dg, FD), (torch, FT)):
        x = M.tensor(X23.copy(), requires_grad=True)
        g, = M.autograd.grad((F["once"].apply(x) * x).sum(), x, create_graph=True)
        with pytest.raises(RuntimeError, match="once_differentiable"):
            g.sum().backward()


def _version(t):
    return t._version if isinstance(t._version, int) else t._version[0]


def test_mark_dirty_in_place():
    for M, F in ((dg, FD), (torch, FT)):
        x = M.tensor(X23.copy(), requires_grad=True)
        h = x * 2
        v0 = _version(h)
        y = F["inplace"].apply(h)
        assert y is h and _version(h) > v0
        assert h.grad_fn is not None and type(h.grad_fn).__name__ == "AddOneInPlaceBackward"
        np.testing.assert_allclose(np.asarray(h.detach().numpy()), X23 * 2 + 1)
        (h * 3).sum().backward()
        np.testing.assert_allclose(np.asarray(x.grad.numpy()), np.full((2, 3), 6.0))
        leaf = M.tensor(X23.copy(), requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable"):
            F["inplace"].apply(leaf)


def test_non_differentiable_output_and_no_grad_call():
    for M, F in ((dg, FD), (torch, FT)):
        x = M.tensor(X23.copy(), requires_grad=True)
        vals, idx = F["sort"].apply(x)
        assert vals.requires_grad and not idx.requires_grad
        with M.no_grad():
            out = F["cube"].apply(x)
        assert not out.requires_grad and out.grad_fn is None
        out = F["cube"].apply(M.tensor(X23.copy()))
        assert not out.requires_grad


def test_saved_tensor_modified_in_place_is_an_error():
    for M, F in ((dg, FD), (torch, FT)):
        x = M.tensor(X23.copy(), requires_grad=True)
        h = x * 1
        y = F["cube"].apply(h)
        with M.no_grad():
            h.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_backward_twice_needs_retain_graph():
    for M, F in ((dg, FD), (torch, FT)):
        x = M.tensor(X23.copy(), requires_grad=True)
        y = F["cube"].apply(x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="(?i)backward through the graph a second time"):
            y.backward()
        z = F["cube"].apply(x).sum()
        z.backward(retain_graph=True)
        z.backward()
        np.testing.assert_allclose(np.asarray(x.grad.numpy()), 3 * 3 * X23 ** 2)


def _bad_functions(M):
    class TooFew(M.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return (g,)

    class TooMany(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g, g

    class GradForNonTensor(M.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, g

    class BadShape(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    class NoBackward(M.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

    def mk(x):
        return x
    return [(lambda x: TooFew.apply(x, x * 1), RuntimeError, "incorrect number of gradients"),
            (lambda x: TooMany.apply(x), RuntimeError, "incorrect number of gradients"),
            (lambda x: GradForNonTensor.apply(x, 2.0), RuntimeError, "not a Variable"),
            (lambda x: BadShape.apply(x), RuntimeError, "invalid gradient at index 0"),
            (lambda x: NoBackward.apply(x), NotImplementedError, "backward or vjp")]


@pytest.mark.parametrize("k", range(5))
def test_errors_match_torch(k):
    for M in (dg, torch):
        fn, exc, msg = _bad_functions(M)[k]
        x = M.tensor(X23.copy(), requires_grad=True)
        with pytest.raises(exc, match=msg):
            fn(x).sum().backward()


def test_extra_trailing_none_gradients_are_allowed():
    class F(dg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2, None, None
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    F.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_names_and_aliases():
    from deepgrad.autograd.function import FunctionCtx, once_differentiable  # noqa: F401
    x = dg.tensor([1.0, 2.0])
    v = dg.autograd.Variable(x, requires_grad=True)
    vt = torch.autograd.Variable(torch.tensor([1.0, 2.0]), requires_grad=True)
    assert v.requires_grad == vt.requires_grad and v is not x and not x.requires_grad
    assert isinstance(x, dg.autograd.Variable)
    xd = dg.tensor(X23.copy(), requires_grad=True)
    y = FD["scaled_mul"].apply(xd, xd, 2.0)
    assert y.grad_fn.name() == "ScaledMulBackward" and y.grad_fn.scale == 2.0


def test_internal_ops_keep_their_array_style():
    # deepgrad's own op base (instance forward on raw arrays) is the same class, unaffected.
    from deepgrad.autograd.function import Function

    class Twice(Function):
        def forward(self, a):
            return a * 2

        def backward(self, g):
            return g * 2
    x = dg.tensor([1.0, 3.0], requires_grad=True)
    Twice.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    assert Twice.apply.__func__ is Function.apply.__func__


def test_vjp_alias_and_setup_context_keywords():
    for M in (dg, torch):
        class Scale(M.autograd.Function):
            @staticmethod
            def forward(x, k=2.0):
                return x * k

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.k = inputs[1]
                ctx.n_inputs = len(inputs)

            @staticmethod
            def vjp(ctx, g):
                assert ctx.n_inputs == 2            # defaults are bound into inputs
                return g * ctx.k, None
        x = M.tensor([1.0, 2.0], requires_grad=True)
        Scale.apply(x).sum().backward()
        Scale.apply(x, k=5.0).sum().backward()
        np.testing.assert_allclose(np.asarray(x.grad.numpy()), [7.0, 7.0])


def test_anomaly_mode_names_the_custom_function():
    class Bad(dg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")
    x = dg.tensor([1.0], requires_grad=True)
    with dg.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="BadBackward|Bad"):
            Bad.apply(x).sum().backward()


def test_mark_dirty_with_saved_tensor():
    # PyTorch takes saved tensors' versions when forward returns, after the in-place write.
    res = []
    for M in (dg, torch):
        class SquareInPlace(M.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                x.mul_(x)
                ctx.mark_dirty(x)
                return x

            @staticmethod
            def backward(ctx, g):
                y, = ctx.saved_tensors
                return g * 2 * y.sqrt()
        a = M.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = a * 1
        assert SquareInPlace.apply(h) is h
        (h * 1).sum().backward()
        res.append(np.asarray(a.grad.numpy()))
        b = M.tensor([1.0, 2.0], requires_grad=True)
        y = FD["cube"].apply(b * 1) if M is dg else FT["cube"].apply(b * 1)
        y.sum().backward()
    np.testing.assert_allclose(res[0], res[1])


def test_save_for_backward_rejects_non_tensors():
    for M in (dg, torch):
        class F(M.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x, 3)
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return g
        with pytest.raises(TypeError, match="save_for_backward can only save"):
            F.apply(M.ones(2, requires_grad=True)).sum().backward()
