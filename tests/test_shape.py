"""Shape and movement ops against PyTorch: forward, gradients, gradcheck, double backward."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import deepgrad as dg
from opcheck import check_op, noncontig, rand

DTYPES = [np.float64, np.float32]


def sq(f):
    """f(x)**2: makes the op's backward appear inside a differentiated graph (double backward)."""
    return lambda *xs: f(*xs) ** 2


def both(f, inputs, **kw):
    """Check ``f`` and ``f(...)**2`` (which runs the op's backward under create_graph)."""
    check_op(f, f, inputs, **kw)
    check_op(sq(f), sq(f), inputs, **kw)


# ---------------------------------------------------------------------------------------------
# reshape / view / flatten / unflatten
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,new", [((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1, 2)),
                                       ((1, 5), (5, 1, 1)), ((0, 3), (3, 0)), ((0, 3), (-1, 3)),
                                       ((), (1, 1)), ((1,), ())])
def test_reshape(shape, new, dtype):
    if new:
        both(lambda x: x.reshape(*new), [rand(*shape, dtype=dtype)])
    both(lambda x: x.reshape(new), [rand(*shape, dtype=dtype)])


def test_reshape_noncontiguous_copies():
    a = noncontig(rand(3, 4))
    check_op(lambda x: x.reshape(-1), lambda x: x.reshape(-1), [a])
    x = dg.Tensor._make(a)         # keeps the column-major layout (dg.tensor would copy)
    y = x.t().reshape(-1)          # x.t() of a column-major copy is C-contiguous: a view
    assert np.shares_memory(y.array, x.array)
    z = x.reshape(-1)              # F-ordered: must copy
    assert not np.shares_memory(z.array, x.array)


@pytest.mark.parametrize("dtype", DTYPES)
def test_view(dtype):
    both(lambda x: x.view(3, 2, 2), [rand(2, 6, dtype=dtype)])
    both(lambda x: x.view(-1), [rand(2, 6, dtype=dtype)])
    x = dg.randn(2, 6)
    v = x.view(12)
    assert np.shares_memory(v.array, x.array) and v._version is x._version
    with pytest.raises(RuntimeError, match=r"view.*\[5, 3\].*\(2, 6\)"):
        x.view(5, 3)
    with pytest.raises(RuntimeError, match=r"view.*compatible.*reshape"):
        x.t().view(12)


def test_contiguous_then_view():
    f = lambda x: x.transpose(1, 2).contiguous().view(2, 12)
    check_op(f, f, [rand(2, 3, 4)])
    x = dg.randn(2, 3)
    assert x.contiguous() is x and x.t().contiguous().is_contiguous()


def test_reshape_errors():
    x = dg.randn(2, 3)
    with pytest.raises(RuntimeError, match=r"reshape: shape \[4, 2\] is invalid for input of shape \(2, 3\)"):
        x.reshape(4, 2)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        x.reshape(-1, -1)
    with pytest.raises(RuntimeError, match="ambiguous"):
        dg.zeros(0, 3).reshape(-1, 0)
    with pytest.raises(RuntimeError, match="invalid"):
        x.reshape(4, -1)


@pytest.mark.parametrize("s,e", [(0, -1), (1, 2), (-2, -1), (0, 0), (2, 1)])
def test_flatten(s, e):
    a = rand(2, 3, 2)
    if s == 2 and e == 1:
        with pytest.raises(RuntimeError, match="flatten"):
            dg.tensor(a).flatten(s, e)
        return
    both(lambda x: x.flatten(s, e), [a])
    both(lambda x: x.transpose(0, 2).flatten(s, e), [a])      # non-contiguous input
    check_op(lambda x: x.flatten(), lambda x: x.flatten(), [np.array(2.0)])


@pytest.mark.parametrize("dim,sizes", [(1, (2, 3)), (-1, (3, -1)), (0, (1, 2)), (1, (6,))])
def test_unflatten(dim, sizes):
    both(lambda x: x.unflatten(dim, sizes), [rand(2, 6) if dim != -1 else rand(2, 6)])
    with pytest.raises(RuntimeError, match="unflatten"):
        dg.randn(2, 6).unflatten(1, (4, 2))


# ---------------------------------------------------------------------------------------------
# transpose / permute / t / movedim
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,d0,d1", [((2, 3), 0, 1), ((2, 3, 4), -1, 0), ((2, 1, 0), 1, 2), ((3,), 0, 0), ((), 0, -1)])
def test_transpose(shape, d0, d1, dtype):
    both(lambda x: x.transpose(d0, d1), [rand(*shape, dtype=dtype)])


@pytest.mark.parametrize("dims", [(2, 0, 1), (-1, -2, -3), (0, 1, 2)])
def test_permute(dims):
    both(lambda x: x.permute(*dims), [rand(2, 3, 4)])
    both(lambda x: x.transpose(0, 1).permute(dims), [rand(3, 2, 4)])


def test_permute_errors():
    x = dg.randn(2, 3)
    with pytest.raises(RuntimeError, match="permute"):
        x.permute(0)
    with pytest.raises(RuntimeError, match="repeated"):
        x.permute(0, 0)
    with pytest.raises(IndexError, match="permute"):
        x.permute(0, 2)


@pytest.mark.parametrize("shape", [(2, 3), (3,), ()])
def test_t(shape):
    both(lambda x: x.t(), [rand(*shape)])


def test_T_mT():
    both(lambda x: x.T, [rand(3, 4)])
    both(lambda x: x.mT, [rand(2, 3, 4)])


@pytest.mark.parametrize("src,dst", [(0, 2), (-1, 0), ((0, 1), (2, 0)), ((1,), (1,))])
def test_movedim(src, dst):
    both(lambda x: torch.movedim(x, src, dst) if isinstance(x, torch.Tensor) else dg.movedim(x, src, dst),
         [rand(2, 3, 4)])


# ---------------------------------------------------------------------------------------------
# squeeze / unsqueeze / expand / broadcast_to / repeat
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [None, 0, -1, 1, (0, 2), (0, 1, 3)])
def test_squeeze(dim):
    a = rand(1, 3, 1, 1)
    if dim is None:
        both(lambda x: x.squeeze(), [a])
    else:
        both(lambda x: x.squeeze(dim), [a])


def test_squeeze_zero_dim_and_view():
    check_op(lambda x: x.squeeze(), lambda x: x.squeeze(), [np.array(3.0)])
    check_op(lambda x: x.squeeze(0), lambda x: x.squeeze(0), [np.array(3.0)])
    x = dg.randn(1, 3)
    assert x.squeeze(0)._version is x._version
    assert dg.randn(0, 1).squeeze().shape == (0,)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_unsqueeze(dim):
    both(lambda x: x.unsqueeze(dim), [rand(2, 3)])
    with pytest.raises(IndexError, match="unsqueeze"):
        dg.randn(2, 3).unsqueeze(3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,sizes", [((3, 1), (3, 4)), ((3, 1), (2, -1, 4)), ((1,), (0,)),
                                         ((), (2, 3)), ((2, 1, 3), (2, 5, 3)), ((1, 1), (-1, -1))])
def test_expand(shape, sizes, dtype):
    both(lambda x: x.expand(*sizes), [rand(*shape, dtype=dtype)])


def test_expand_errors_and_view():
    x = dg.randn(2, 3)
    with pytest.raises(RuntimeError, match=r"expand.*\(4\).*existing size \(3\)"):
        x.expand(2, 4)
    with pytest.raises(RuntimeError, match="expand"):
        x.expand(3)
    with pytest.raises(RuntimeError, match="expand"):
        x.expand(-1, 2, 3)
    assert x.expand(4, 2, 3)._version is x._version
    assert x.expand_as(dg.zeros(5, 2, 3)).shape == (5, 2, 3)


def test_broadcast_to():
    both(lambda x: x.broadcast_to((2, 3, 4)), [rand(3, 1)])
    with pytest.raises(RuntimeError, match="broadcast_to"):
        dg.randn(2, 3).broadcast_to((3, 3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,reps", [((2, 3), (2, 1)), ((2, 3), (1, 2, 3)), ((3,), (0,)), ((), (2, 2)),
                                        ((2, 1), (1, 3))])
def test_repeat(shape, reps, dtype):
    both(lambda x: x.repeat(*reps), [rand(*shape, dtype=dtype)])


def test_repeat_errors():
    with pytest.raises(RuntimeError, match="repeat"):
        dg.randn(2, 3).repeat(2)


# ---------------------------------------------------------------------------------------------
# cat / stack / split / chunk / unbind / narrow / select
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim, dtype):
    def f(a, b, c):
        return (torch.cat if isinstance(a, torch.Tensor) else dg.cat)([a, b, c], dim)
    shapes = {0: [(1, 3), (2, 3), (0, 3)], 1: [(2, 1), (2, 3), (2, 0)], -1: [(2, 2), (2, 1), (2, 3)]}[dim]
    both(f, [rand(*s, dtype=dtype, seed=i) for i, s in enumerate(shapes)])


def test_cat_misc():
    check_op(lambda a, b: (torch.cat if isinstance(a, torch.Tensor) else dg.cat)((a.t(), b)),
             lambda a, b: torch.cat((a.t(), b)), [rand(2, 3), rand(1, 2)])
    # dtype promotion and legacy empty tensors
    out = dg.cat([dg.ones(2, dtype=dg.float32), dg.ones(1, dtype=dg.float64)])
    assert out.dtype == np.float64
    out = dg.cat([dg.ones(2, 3), dg.zeros(0)])
    assert out.shape == (2, 3)
    assert dg.concat([dg.ones(1), dg.ones(2)]).shape == (3,)
    x = dg.ones(2, requires_grad=True)
    y = dg.cat([x])
    assert y.requires_grad and not np.shares_memory(y.array, x.array)


def test_cat_errors():
    with pytest.raises(RuntimeError, match=r"cat.*\(2, 3\).*\(2, 4\)"):
        dg.cat([dg.ones(2, 3), dg.ones(2, 4)], 0)
    with pytest.raises(RuntimeError, match="zero-dimensional"):
        dg.cat([dg.tensor(1.0), dg.tensor(2.0)])
    with pytest.raises(RuntimeError, match="non-empty"):
        dg.cat([])
    with pytest.raises(TypeError, match="cat"):
        dg.cat(dg.ones(2, 3))
    with pytest.raises(IndexError, match="cat"):
        dg.cat([dg.ones(2, 3), dg.ones(2, 3)], 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack(dim, dtype):
    def f(a, b):
        return (torch.stack if isinstance(a, torch.Tensor) else dg.stack)([a, b], dim)
    both(lambda a, b: f(a, b.t()), [rand(2, 3, dtype=dtype), rand(3, 2, dtype=dtype, seed=1)])


def test_stack_errors():
    with pytest.raises(RuntimeError, match=r"stack.*\(2, 3\).*\(3, 2\)"):
        dg.stack([dg.ones(2, 3), dg.ones(3, 2)])
    with pytest.raises(IndexError, match="stack"):
        dg.stack([dg.ones(2), dg.ones(2)], 2)


def _multi(name, *args):
    def f(x):
        mod = torch if isinstance(x, torch.Tensor) else dg
        return tuple(getattr(mod, name)(x, *args))
    return f


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arg,dim", [(2, 0), (3, 1), ([1, 0, 4], 1), (1, -1), (5, 1)])
def test_split(arg, dim, dtype):
    check_op(_multi("split", arg, dim), _multi("split", arg, dim), [rand(3, 5, dtype=dtype)])


def test_split_partial_use_and_views():
    a = rand(4, 3)
    def f(x):
        mod = torch if isinstance(x, torch.Tensor) else dg
        p = mod.split(x, 1, 0)
        return p[1] * p[3] + p[1]
    both(f, [a])
    x = dg.randn(4, 3)
    parts = x.split(2)
    assert all(p._version is x._version for p in parts)
    assert all(np.shares_memory(p.array, x.array) for p in parts)
    assert len(dg.empty(0).split(2)) == 1
    with pytest.raises(RuntimeError, match="split"):
        x.split([1, 2])


@pytest.mark.parametrize("chunks,dim", [(2, 0), (3, 1), (4, 0), (1, -1), (6, 1)])
def test_chunk(chunks, dim):
    check_op(_multi("chunk", chunks, dim), _multi("chunk", chunks, dim), [rand(3, 5)])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unbind(dim):
    check_op(_multi("unbind", dim), _multi("unbind", dim), [rand(3, 2, 4)])

    def f(x):
        mod = torch if isinstance(x, torch.Tensor) else dg
        p = mod.unbind(x, dim)
        return p[0] * p[-1]
    both(f, [rand(3, 2, 4)])
    x = dg.randn(3, 2)
    assert [tuple(p.shape) for p in x] == [(2,)] * 3


def test_narrow_select():
    both(lambda x: x.narrow(1, 1, 2) if isinstance(x, torch.Tensor) else dg.narrow(x, 1, 1, 2), [rand(3, 4)])
    both(lambda x: x.select(0, -1) if isinstance(x, torch.Tensor) else dg.select(x, 0, -1), [rand(3, 4)])
    with pytest.raises(IndexError, match="narrow"):
        dg.narrow(dg.randn(3, 4), 1, 3, 2)
    with pytest.raises(IndexError, match="select"):
        dg.select(dg.randn(3, 4), 0, 3)


# ---------------------------------------------------------------------------------------------
# flip / roll / tril / triu / pad
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dims", [0, (1,), (0, 1), (-1, 0)])
def test_flip(dims):
    d = (dims,) if isinstance(dims, int) else dims
    both(lambda x: x.t().flip(d), [rand(4, 3)])
    x = dg.randn(2, 3)
    y = x.flip(0)
    assert not np.shares_memory(y.array, x.array)


@pytest.mark.parametrize("shifts,dims", [(1, 0), (-2, 1), ((1, 2), (0, 1)), (3, None), (7, -1)])
def test_roll(shifts, dims):
    both(lambda x: x.roll(shifts, dims), [rand(3, 4)])


@pytest.mark.parametrize("fn", ["tril", "triu"])
@pytest.mark.parametrize("k", [0, 1, -1, 5])
def test_tril_triu(fn, k):
    both(lambda x: getattr(x, fn)(k), [rand(3, 4)])
    both(lambda x: getattr(x, fn)(k), [rand(2, 2, 3)])
    with pytest.raises(RuntimeError, match=fn):
        getattr(dg.randn(3), fn)()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [(1, 2), (0, 1, 2, 0), (2, 2, 1, 1), (-1, 1), (1, -2, 0, 0), (0, 0, 0, 0, 1, 1)])
def test_pad_constant(p, dtype):
    both(lambda x: (F.pad if isinstance(x, torch.Tensor) else dg.pad)(x, p), [rand(2, 3, 4, dtype=dtype)])
    both(lambda x: (F.pad if isinstance(x, torch.Tensor) else dg.pad)(x, p, value=1.5), [rand(2, 3, 4, dtype=dtype)])


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("p", [(1, 2), (2, 0, 1, 1), (0, 0)])
def test_pad_modes(mode, p):
    shape = (1, 2, 3, 4) if len(p) == 4 else (1, 2, 4)
    both(lambda x: (F.pad if isinstance(x, torch.Tensor) else dg.pad)(x, p, mode=mode), [rand(*shape)])


def test_pad_errors():
    x = dg.randn(1, 2, 3)
    with pytest.raises(RuntimeError, match="divisible by 2"):
        dg.pad(x, (1,))
    with pytest.raises(RuntimeError, match="reflect"):
        dg.pad(x, (3, 3), mode="reflect")
    with pytest.raises(NotImplementedError, match="mode"):
        dg.pad(x, (1, 1), mode="bogus")
    with pytest.raises(RuntimeError, match="too large"):
        dg.pad(x, (1,) * 8)


# ---------------------------------------------------------------------------------------------
# views share the version counter; no-grad fast paths still give views
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [lambda x: x.view(6), lambda x: x.reshape(3, 2), lambda x: x.t(),
                                lambda x: x.permute(1, 0), lambda x: x.unsqueeze(0), lambda x: x[0],
                                lambda x: x.expand(2, 2, 3), lambda x: x[:, 1:], lambda x: x.transpose(0, 1),
                                lambda x: x.squeeze(), lambda x: x.flatten()])
@pytest.mark.parametrize("grad", [False, True])
def test_views_share_version(op, grad):
    base = dg.randn(2, 3, requires_grad=grad) * 1.0
    v = op(base)
    assert v._version is base._version
    assert np.shares_memory(v.array, base.array)
    if grad:
        assert v.requires_grad and v.grad_fn is not None


def test_view_write_through_is_detected():
    a = dg.randn(2, 3, requires_grad=True)
    b = a * 1.0
    e = b * b              # Mul saves b
    v = b.view(6)
    v.mul_(2.0)            # in place through a view: bumps b's (shared) version counter
    assert b._version[0] == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        dg.autograd.grad([e], [a], grad_outputs=[dg.ones(2, 3)])


@pytest.mark.parametrize("op", [lambda x: x.flip((0,)), lambda x: x.roll(1, 1), lambda x: x.tril(), lambda x: x.triu(1),
                                lambda x: x.repeat(2, 1), lambda x: x.t(), lambda x: x.reshape(-1, 3),
                                lambda x: x.unsqueeze(1).expand(0, 2, 3), lambda x: x[:, 1:],
                                lambda x: (torch if isinstance(x, torch.Tensor) else dg).stack([x, x], 1),
                                lambda x: (F.pad if isinstance(x, torch.Tensor) else dg.pad)(x, (1, 1))])
def test_size_zero_inputs(op):
    check_op(op, op, [rand(0, 3)])
