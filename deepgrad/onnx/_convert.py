"""One converter per deepgrad op: a recorded op application -> ONNX nodes.

A converter is ``f(b, rec)`` with ``b`` the graph builder (``_graph.Builder``) and ``rec`` the
``Record`` (op class, input Tensors, the keyword configuration the op's forward received, output
arrays); it returns the ONNX value names of the op's outputs, one per output array. Shapes that
the batch size enters are never baked in: reshapes copy the leading dimensions they keep (0) and
infer one (-1), expands broadcast with 1 where the input already has the size, slices run to the
end with open bounds.

Converters are registered on the op's class; a subclass that keeps the forward finds its base's
converter (``View`` -> ``Reshape``), one that overrides forward does not.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..ops import conv as _conv, elementwise as _el, index as _index, linalg as _la, normalization as _norm
from ..ops import pool as _pool, recurrent as _rnn, reduce as _red, shape as _shape

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

CONVERTERS = {}


def _register(*classes):
    def deco(f):
        for c in classes:
            if c is not None:
                CONVERTERS[c] = f
        return f
    return deco


def converter_for(cls):
    """The converter of op class ``cls`` (None when there is none)."""
    for c in cls.__mro__:
        f = CONVERTERS.get(c)
        if f is not None:
            return f if cls.forward is c.forward else None
    return None


def _cls(module, name):
    return getattr(module, name, None)


def _out_dtype(rec, i=0):
    return rec.outs[i].dtype


def _twin_shapes(b, rec, j=None):
    """(shape in trace 1, shape in trace 2) of output 0, or of input ``j``."""
    tw = b.twin()
    if j is None:
        return tuple(rec.outs[0].shape), (tuple(tw.outs[0].shape) if tw is not None else None)
    return tuple(rec.inputs[j].shape), (tuple(tw.inputs[j].shape) if tw is not None else tuple(rec.inputs[j].shape))


# ---------------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------------

_UNARY = {"Neg": "Neg", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Sin": "Sin", "Cos": "Cos",
          "Tanh": "Tanh", "Sigmoid": "Sigmoid", "Abs": "Abs", "Relu": "Relu", "Erf": "Erf",
          "Clone": "Identity", "ReluInplace": "Relu"}
_BINARY = {"Mul": "Mul", "Div": "Div", "Pow": "Pow", "Maximum": "Max", "Minimum": "Min"}


def _unary(op_type):
    def f(b, rec):
        return [b.op(op_type, [b.value(rec.inputs[0])])]
    return f


def _binary(op_type):
    def f(b, rec):
        dt = _out_dtype(rec)
        x, y = (b.value(t, dt) for t in rec.inputs[:2])
        return [b.op(op_type, [x, y])]
    return f


for _name, _op in _UNARY.items():
    _register(_cls(_el, _name))(_unary(_op))
for _name, _op in _BINARY.items():
    _register(_cls(_el, _name))(_binary(_op))


@_register(_el.Add, _el.Sub)
def _add_sub(b, rec):
    dt = _out_dtype(rec)
    x, y = (b.value(t, dt) for t in rec.inputs[:2])
    alpha = rec.attrs.get("alpha", 1)
    if alpha != 1:
        y = b.op("Mul", [y, b.const(np.asarray(alpha, dtype=dt))])
    return [b.op("Add" if issubclass(rec.cls, _el.Add) else "Sub", [x, y])]


@_register(_el.PowScalar)
def _pow_scalar(b, rec):
    x = b.value(rec.inputs[0])
    p = rec.attrs.get("p")
    if p == 2:
        return [b.op("Mul", [x, x])]
    if p == 0.5:
        return [b.op("Sqrt", [x])]
    return [b.op("Pow", [x, b.const(np.asarray(p, dtype=_out_dtype(rec)))])]


@_register(_cls(_el, "Rsqrt"))
def _rsqrt(b, rec):
    return [b.op("Reciprocal", [b.op("Sqrt", [b.value(rec.inputs[0])])])]


@_register(_cls(_el, "Log1p"))
def _log1p(b, rec):
    x = b.value(rec.inputs[0])
    return [b.op("Log", [b.op("Add", [x, b.const(np.asarray(1, dtype=_out_dtype(rec)))])])]


@_register(_cls(_el, "Expm1"))
def _expm1(b, rec):
    x = b.value(rec.inputs[0])
    return [b.op("Sub", [b.op("Exp", [x]), b.const(np.asarray(1, dtype=_out_dtype(rec)))])]


@_register(_el.LeakyRelu)
def _leaky_relu(b, rec):
    return [b.op("LeakyRelu", [b.value(rec.inputs[0])], alpha=float(rec.attrs.get("negative_slope", 0.01)))]


@_register(_el.Elu)
def _elu(b, rec):
    return [b.op("Elu", [b.value(rec.inputs[0])], alpha=float(rec.attrs.get("alpha", 1.0)))]


@_register(_el.Gelu)
def _gelu(b, rec):
    x = b.value(rec.inputs[0])
    approx = rec.attrs.get("approximate", "none")
    if b.opset >= 20:
        return [b.op("Gelu", [x], approximate=approx)]
    dt = _out_dtype(rec)
    c = lambda v: b.const(np.asarray(v, dtype=dt))     # noqa: E731
    if approx == "tanh":
        inner = b.op("Mul", [b.op("Add", [x, b.op("Mul", [b.op("Mul", [b.op("Mul", [x, x]), x]), c(0.044715)])]),
                             c(math.sqrt(2.0 / math.pi))])
        cdf = b.op("Add", [c(1.0), b.op("Tanh", [inner])])
    else:
        cdf = b.op("Add", [c(1.0), b.op("Erf", [b.op("Mul", [x, c(1.0 / math.sqrt(2.0))])])])
    return [b.op("Mul", [b.op("Mul", [x, cdf]), c(0.5)])]


@_register(_el.Softplus)
def _softplus(b, rec):
    x = b.value(rec.inputs[0])
    dt = _out_dtype(rec)
    beta, threshold = float(rec.attrs.get("beta", 1.0)), float(rec.attrs.get("threshold", 20.0))
    bx = x if beta == 1 else b.op("Mul", [x, b.const(np.asarray(beta, dtype=dt))])
    sp = b.op("Softplus", [bx])
    if beta != 1:
        sp = b.op("Div", [sp, b.const(np.asarray(beta, dtype=dt))])
    linear = b.op("Greater", [bx, b.const(np.asarray(threshold, dtype=dt))])
    return [b.op("Where", [linear, x, sp])]


@_register(_el.Clamp)
def _clamp(b, rec):
    x = b.value(rec.inputs[0])
    dt = _out_dtype(rec)
    lo, hi = rec.attrs.get("min"), rec.attrs.get("max")
    y = x
    if lo is not None:
        y = b.op("Max", [y, b.array_value(lo, dt)])
    if hi is not None:
        y = b.op("Min", [y, b.array_value(hi, dt)])
    return [y if y != x else b.op("Identity", [x])]


@_register(_el.Where)
def _where(b, rec):
    dt = _out_dtype(rec)
    x, y = (b.value(t, dt) for t in rec.inputs[:2])
    cond = b.array_value(rec.attrs["cond"], np.dtype(bool))
    return [b.op("Where", [cond, x, y])]


@_register(_el.Convert)
def _convert(b, rec):
    x = b.value(rec.inputs[0])
    dt = _out_dtype(rec)
    if rec.inputs[0].dtype == dt:
        return [b.op("Identity", [x])]
    return [b.op("Cast", [x], to=b.onnx_dtype(dt))]


@_register(_el.PReluFn)
def _prelu(b, rec):
    x, w = rec.inputs[:2]
    wn = b.value(w, _out_dtype(rec))
    if w.numel() > 1 and x.ndim > 2:
        wn = b.op("Reshape", [wn, b.int64s([-1] + [1] * (x.ndim - 2))])
    return [b.op("PRelu", [b.value(x), wn])]


# ---------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------

def _axes(attrs, key="axes"):
    a = attrs.get(key)
    if a is None:
        return None
    return [int(a)] if isinstance(a, (int, np.integer)) else [int(v) for v in a]


def _simple_reduce(op_type):
    def f(b, rec):
        y = b.reduce(op_type, b.value(rec.inputs[0]), _axes(rec.attrs), bool(rec.attrs.get("keepdim", False)))
        if rec.inputs[0].dtype != _out_dtype(rec):
            y = b.op("Cast", [y], to=b.onnx_dtype(_out_dtype(rec)))
        return [y]
    return f


_register(_red.Sum)(_simple_reduce("ReduceSum"))
_register(_red.Mean)(_simple_reduce("ReduceMean"))
_register(_cls(_red, "Amax"))(_simple_reduce("ReduceMax"))
_register(_cls(_red, "Amin"))(_simple_reduce("ReduceMin"))
_register(_red.LogSumExp)(_simple_reduce("ReduceLogSumExp"))
_register(_red.Prod)(_simple_reduce("ReduceProd"))


@_register(_red.Var, _red.Std)
def _var_std(b, rec):
    t = rec.inputs[0]
    x = b.value(t)
    axes = _axes(rec.attrs)
    keep = bool(rec.attrs.get("keepdim", False))
    dt = _out_dtype(rec)
    axes_all = list(range(t.ndim)) if axes is None else axes
    d = b.op("Sub", [x, b.reduce("ReduceMean", x, axes, True)])
    ss = b.reduce("ReduceSum", b.op("Mul", [d, d]), axes, keep)
    # n - correction, the element count read from the input's shape (it may follow a dynamic axis)
    n = b.op("Cast", [b.reduce("ReduceProd", b.op("Gather", [b.op("Shape", [x]), b.int64s(axes_all)]), None, False)],
             to=b.onnx_dtype(dt))
    denom = b.op("Max", [b.op("Sub", [n, b.const(np.asarray(rec.attrs.get("correction", 1), dtype=dt))]),
                         b.const(np.asarray(0, dtype=dt))])
    v = b.op("Div", [ss, denom])
    return [b.op("Sqrt", [v]) if issubclass(rec.cls, _red.Std) else v]


@_register(_cls(_red, "MaxDim"), _cls(_red, "MinDim"))
def _max_dim(b, rec):
    x = b.value(rec.inputs[0])
    if rec.inputs[0].ndim == 0:
        return [b.op("Identity", [x]), b.const(np.zeros((), np.int64))]
    dim, keep = int(rec.attrs.get("dim", 0)), int(bool(rec.attrs.get("keepdim", False)))
    is_max = rec.cls.pick_max
    vals = b.reduce("ReduceMax" if is_max else "ReduceMin", x, [dim], bool(keep))
    idx = b.op("ArgMax" if is_max else "ArgMin", [x], axis=dim, keepdims=keep)
    return [vals, idx]


@_register(_red.Softmax, _red.LogSoftmax)
def _softmax(b, rec):
    op = "Softmax" if issubclass(rec.cls, _red.Softmax) else "LogSoftmax"
    return [b.op(op, [b.value(rec.inputs[0])], axis=int(rec.attrs.get("dim", -1)))]


@_register(_red.Cumsum)
def _cumsum(b, rec):
    if rec.attrs.get("dtype") is not None and np.dtype(rec.attrs["dtype"]) != rec.inputs[0].dtype:
        x = b.op("Cast", [b.value(rec.inputs[0])], to=b.onnx_dtype(_out_dtype(rec)))
    else:
        x = b.value(rec.inputs[0])
    return [b.op("CumSum", [x, b.const(np.asarray(int(rec.attrs.get("dim", 0)), np.int64))],
                 reverse=int(bool(rec.attrs.get("reverse", False))))]


@_register(_red.Norm)
def _norm_op(b, rec):
    p = rec.attrs.get("p", 2.0)
    axes, keep = _axes(rec.attrs), bool(rec.attrs.get("keepdim", False))
    x = b.value(rec.inputs[0])
    if p == 2:
        return [b.reduce("ReduceL2", x, axes, keep)]
    if p == 1:
        return [b.reduce("ReduceL1", x, axes, keep)]
    if p == math.inf:
        return [b.reduce("ReduceMax", b.op("Abs", [x]), axes, keep)]
    raise NotImplementedError(f"deepgrad.onnx.export: norm with p={p} has no ONNX conversion (p = 1, 2, inf have)")


# ---------------------------------------------------------------------------------------------
# linear algebra
# ---------------------------------------------------------------------------------------------

@_register(_la.Matmul)
def _matmul(b, rec):
    dt = _out_dtype(rec)
    return [b.op("MatMul", [b.value(t, dt) for t in rec.inputs[:2]])]


@_register(_la.LinearFn)
def _linear(b, rec):
    x, w = rec.inputs[0], rec.inputs[1]
    xs, ws = b.value(x), b.value(w)
    bs = [b.value(rec.inputs[2])] if len(rec.inputs) > 2 else []
    if x.ndim == 2:
        return [b.op("Gemm", [xs, ws] + bs, transB=1)]
    y = b.op("MatMul", [xs, b.op("Transpose", [ws], perm=[1, 0])])
    return [b.op("Add", [y, bs[0]]) if bs else y]


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------

@_register(_shape.Reshape)
def _reshape(b, rec):
    x = rec.inputs[0]
    out1, out2 = _twin_shapes(b, rec)
    in1, in2 = _twin_shapes(b, rec, 0)
    if in1 == out1 and (out2 is None or in2 == out2):
        return [b.op("Identity", [b.value(x)])]
    return [b.op("Reshape", [b.value(x), b.shape_value(out1, out2, copy_from=(in1, in2))])]


@_register(_shape.Permute)
def _permute(b, rec):
    return [b.op("Transpose", [b.value(rec.inputs[0])], perm=[int(d) for d in rec.attrs["dims"]])]


@_register(_shape.BroadcastTo)
def _broadcast_to(b, rec):
    out1, out2 = _twin_shapes(b, rec)
    return [b.op("Expand", [b.value(rec.inputs[0]), b.shape_value(out1, out2, keep=_twin_shapes(b, rec, 0))])]


@_register(_shape.SumTo)
def _sum_to(b, rec):
    x = rec.inputs[0]
    shape = tuple(rec.outs[0].shape)
    lead = x.ndim - len(shape)
    axes = list(range(lead)) + [lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1]
    y = b.value(x)
    if not axes:
        return [b.op("Identity", [y])]
    y = b.reduce("ReduceSum", y, axes, True)
    return [b.op("Squeeze", [y, b.int64s(list(range(lead)))]) if lead else y]


def _basic_index(b, x, key, ndim):
    """``x[key]`` for a basic NumPy index (ints, slices, None, Ellipsis) as Slice/Squeeze/Unsqueeze."""
    key = key if isinstance(key, tuple) else (key,)
    explicit = sum(1 for k in key if k is not None and k is not Ellipsis)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - explicit) + key[i + 1:]
    else:
        key = key + (slice(None),) * (ndim - explicit)
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = pos = 0
    for k in key:
        if k is None:
            unsqueeze.append(pos)
            pos += 1
            continue
        if isinstance(k, (int, np.integer)):
            k = int(k)
            starts.append(k)
            ends.append(k + 1 if k != -1 else INT64_MAX)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        elif isinstance(k, slice):
            pos += 1
            if k != slice(None):
                step = 1 if k.step is None else int(k.step)
                starts.append((0 if step > 0 else -1) if k.start is None else int(k.start))
                ends.append((INT64_MAX if step > 0 else INT64_MIN) if k.stop is None else int(k.stop))
                axes.append(axis)
                steps.append(step)
        else:
            raise NotImplementedError(f"deepgrad.onnx.export: indexing with {type(k).__name__} has no ONNX conversion")
        axis += 1
    y = x
    if axes:
        y = b.op("Slice", [y, b.int64s(starts), b.int64s(ends), b.int64s(axes), b.int64s(steps)])
    if squeeze:
        y = b.op("Squeeze", [y, b.int64s(squeeze)])
    if unsqueeze:
        y = b.op("Unsqueeze", [y, b.int64s(unsqueeze)])
    return y if y != x else b.op("Identity", [x])


def _one_array_index(ix):
    """The axis of ``x[:, ..., idx]`` (one stage: full slices then one integer array), or None."""
    if not isinstance(ix, _shape._Staged) or len(ix.stages) != 1 or not isinstance(ix.stages[0], tuple):
        return None
    key = ix.stages[0]
    if not key or not all(k == slice(None) for k in key[:-1] if isinstance(k, slice)):
        return None
    last = key[-1]
    if any(not isinstance(k, slice) for k in key[:-1]):
        return None
    if isinstance(last, np.ndarray) and last.dtype.kind in "iu":
        return len(key) - 1
    return None


@_register(_shape.Gather)
def _gather(b, rec):
    ix = rec.attrs.get("ix")
    if isinstance(ix, _shape._Basic):
        return [_basic_index(b, b.value(rec.inputs[0]), ix.key, rec.inputs[0].ndim)]
    axis = _one_array_index(ix)
    if axis is not None:                     # x[:, ..., idx] with one integer array: ONNX Gather
        idx = ix.stages[0][axis]
        tw = b.twin()
        if tw is not None and b._known_array(idx) is None:    # a constant index must not follow the sizes
            tix = tw.attrs["ix"]
            b._check_constant(idx, tix.stages[0][axis] if _one_array_index(tix) == axis else np.empty(0))
        return [b.op("Gather", [b.value(rec.inputs[0]), b.array_value(idx)], axis=axis)]
    raise NotImplementedError("deepgrad.onnx.export: indexing with integer or boolean arrays (advanced indexing, "
                              "index_select, gather) has no ONNX conversion yet; use slices, or nn.Embedding "
                              "for a row lookup")


@_register(_shape.Cat)
def _cat(b, rec):
    dt = _out_dtype(rec)
    return [b.op("Concat", [b.value(t, dt) for t in rec.inputs], axis=int(rec.attrs.get("axis", 0)))]


@_register(_shape.Stack)
def _stack(b, rec):
    dt = _out_dtype(rec)
    axis = int(rec.attrs.get("axis", 0))
    parts = [b.op("Unsqueeze", [b.value(t, dt), b.int64s([axis])]) for t in rec.inputs]
    return [b.op("Concat", parts, axis=axis)]


@_register(_shape.Split)
def _split(b, rec):
    x = b.value(rec.inputs[0])
    axis = int(rec.attrs.get("axis", 0))
    tw = b.twin()
    bounds = b.static("split sizes", tuple(rec.attrs["bounds"]), tuple(tw.attrs["bounds"]) if tw else None)
    return [b.op("Slice", [x, b.int64s([lo]), b.int64s([hi]), b.int64s([axis])]) for lo, hi in bounds]


@_register(_shape.Unbind)
def _unbind(b, rec):
    x = b.value(rec.inputs[0])
    axis = int(rec.attrs.get("axis", 0))
    tw = b.twin()
    b.static("number of pieces", len(rec.outs), len(tw.outs) if tw else None)
    return [b.op("Squeeze", [b.op("Slice", [x, b.int64s([i]), b.int64s([i + 1]), b.int64s([axis])]),
                             b.int64s([axis])]) for i in range(len(rec.outs))]


@_register(_shape.Repeat)
def _repeat(b, rec):
    x, reps = rec.inputs[0], [int(r) for r in rec.attrs["reps"]]
    y = b.value(x)
    extra = len(reps) - x.ndim
    if extra > 0:
        y = b.op("Unsqueeze", [y, b.int64s(list(range(extra)))])
    return [b.op("Tile", [y, b.int64s(reps)])]


@_register(_shape.Flip)
def _flip(b, rec):
    axes = [int(a) for a in rec.attrs["axes"]]
    n = len(axes)
    return [b.op("Slice", [b.value(rec.inputs[0]), b.int64s([-1] * n), b.int64s([INT64_MIN] * n),
                           b.int64s(axes), b.int64s([-1] * n)])]


@_register(_shape.Tril, _shape.Triu)
def _tri(b, rec):
    return [b.op("Trilu", [b.value(rec.inputs[0]), b.const(np.asarray(int(rec.attrs.get("k", 0)), np.int64))],
                 upper=int(issubclass(rec.cls, _shape.Triu)))]


@_register(_shape.PadConstant)
def _pad(b, rec):
    pads = rec.attrs["pads"]
    flat = [int(lo) for lo, _ in pads] + [int(hi) for _, hi in pads]
    dt = _out_dtype(rec)
    value = b.const(np.asarray(rec.attrs.get("value", 0), dtype=dt))
    return [b.op("Pad", [b.value(rec.inputs[0]), b.int64s(flat), value], mode="constant")]


@_register(_index.EmbeddingFn)
def _embedding(b, rec):
    return [b.op("Gather", [b.value(rec.inputs[0]), b.array_value(rec.attrs["idx"])], axis=0)]


# ---------------------------------------------------------------------------------------------
# convolution and pooling
# ---------------------------------------------------------------------------------------------

def _batched(b, rec, nd, body):
    """Run ``body(x_name)`` on an NC... input, adding and removing the batch axis if unbatched."""
    x = rec.inputs[0]
    xs = b.value(x)
    if x.ndim == nd + 2:
        return body(xs)
    y = body(b.op("Unsqueeze", [xs, b.int64s([0])]))
    return b.op("Squeeze", [y, b.int64s([0])])


@_register(_conv.Conv)
def _conv2(b, rec):
    a = rec.attrs
    nd = a.get("nd", 2)
    stride, dilation = list(a["stride"]), list(a["dilation"])
    pt, pb, pl, pr = a["pads"]
    if nd == 1:
        stride, dilation, pads = stride[1:], dilation[1:], [pl, pr]
    else:
        pads = [pt, pl, pb, pr]
    rest = [b.value(t) for t in rec.inputs[1:]]
    return [_batched(b, rec, nd, lambda x: b.op("Conv", [x] + rest, strides=stride, pads=pads, dilations=dilation,
                                                 group=int(a.get("groups", 1)),
                                                 kernel_shape=list(rec.inputs[1].shape[2:])))]


@_register(_conv.ConvTranspose)
def _conv_transpose(b, rec):
    a = rec.attrs
    nd = a.get("nd", 2)
    stride, padding, opad, dilation = (list(a[k]) for k in ("stride", "padding", "output_padding", "dilation"))
    if nd == 1:
        stride, padding, opad, dilation = stride[1:], padding[1:], opad[1:], dilation[1:]
    rest = [b.value(t) for t in rec.inputs[1:]]
    return [_batched(b, rec, nd, lambda x: b.op("ConvTranspose", [x] + rest, strides=stride, pads=padding + padding,
                                                 output_padding=opad, dilations=dilation,
                                                 group=int(a.get("groups", 1)),
                                                 kernel_shape=list(rec.inputs[1].shape[2:])))]


def _pool_geometry(b, rec):
    a = rec.attrs
    nd = a.get("nd", 2)
    k, s, p = (list(a[n]) for n in ("k", "s", "p"))
    d = list(a.get("d", (1,) * len(k)))
    if nd == 1:
        k, s, p, d = k[1:], s[1:], p[1:], d[1:]
    ceil_mode = 0
    tw = b.twin()
    for r in (rec, tw) if tw is not None else (rec,):
        spatial = r.inputs[0].shape[-nd:]
        floor = [(n + 2 * pv - dv * (kv - 1) - 1) // sv + 1 for n, kv, sv, pv, dv in zip(spatial, k, s, p, d)]
        out = list(r.attrs["out"])[-nd:]
        ceil_mode |= int(out != floor)
    return nd, k, s, p, d, ceil_mode


@_register(_pool.MaxPool)
def _max_pool(b, rec):
    if rec.attrs.get("return_indices"):
        raise NotImplementedError("deepgrad.onnx.export: max pooling with return_indices=True has no ONNX "
                                  "conversion (ONNX's indices count differently)")
    nd, k, s, p, d, ceil_mode = _pool_geometry(b, rec)
    return [_batched(b, rec, nd, lambda x: b.op("MaxPool", [x], kernel_shape=k, strides=s, pads=p + p,
                                                 dilations=d, ceil_mode=ceil_mode))]


@_register(_pool.AvgPool)
def _avg_pool(b, rec):
    if rec.attrs.get("divisor_override") is not None:
        raise NotImplementedError("deepgrad.onnx.export: avg_pool with divisor_override has no ONNX conversion")
    nd, k, s, p, d, ceil_mode = _pool_geometry(b, rec)
    if ceil_mode:
        raise NotImplementedError("deepgrad.onnx.export: avg_pool with ceil_mode=True (a partial last window) "
                                  "has no exact ONNX conversion")
    include = int(bool(rec.attrs.get("count_include_pad", True)))
    return [_batched(b, rec, nd, lambda x: b.op("AveragePool", [x], kernel_shape=k, strides=s, pads=p + p,
                                                 count_include_pad=include))]


def _adaptive(b, rec, kind):
    a = rec.attrs
    nd = a.get("nd", 2)
    out = list(a["out"])[-nd:]
    spatial = list(rec.inputs[0].shape[-nd:])
    tw = b.twin()
    if not all(o == 1 for o in out):
        b.static("input size", spatial, list(tw.inputs[0].shape[-nd:]) if tw else None)

    def body(x):
        if all(o == 1 for o in out):
            return b.op("Global" + kind + "Pool", [x])
        if all(n % o == 0 for n, o in zip(spatial, out)):
            k = [n // o for n, o in zip(spatial, out)]
            return b.op(kind + "Pool", [x], kernel_shape=k, strides=k)
        if kind == "Max":
            raise NotImplementedError("deepgrad.onnx.export: adaptive_max_pool with an output size that does not "
                                      "divide the input size has no ONNX conversion")
        dt = rec.outs[0].dtype
        y = x
        for i, (n, o) in enumerate(zip(spatial, out)):      # average = a product with a fixed matrix
            m = _pool._adaptive_matrix(n, o, dt)              # (o, n)
            axis = nd + 2 - len(spatial) + i                  # the spatial axis i of the NC... input
            perm = list(range(nd + 2))
            perm[axis], perm[-1] = perm[-1], perm[axis]
            t = b.op("Transpose", [y], perm=perm) if axis != nd + 1 else y
            t = b.op("MatMul", [t, b.const(np.ascontiguousarray(m.T))])
            y = b.op("Transpose", [t], perm=perm) if axis != nd + 1 else t
        return y
    return [_batched(b, rec, nd, body)]


@_register(_pool.AdaptiveAvgPool)
def _adaptive_avg(b, rec):
    return _adaptive(b, rec, "Average")


@_register(_pool.AdaptiveMaxPool)
def _adaptive_max(b, rec):
    if rec.attrs.get("return_indices"):
        raise NotImplementedError("deepgrad.onnx.export: adaptive_max_pool with return_indices=True has no ONNX "
                                  "conversion")
    return _adaptive(b, rec, "Max")


@_register(_pool.LocalResponseNorm)
def _lrn(b, rec):
    a = rec.attrs
    size = int(a.get("size", 1))
    if size % 2 == 0:
        raise NotImplementedError(f"deepgrad.onnx.export: local_response_norm with an even size ({size}) has no ONNX "
                                  f"conversion (ONNX's LRN centres an even window the other way)")
    return [b.op("LRN", [b.value(rec.inputs[0])], size=size, alpha=float(a.get("alpha", 1e-4)),
                 beta=float(a.get("beta", 0.75)), bias=float(a.get("k", 1.0)))]


@_register(_pool.Interpolate)
def _interpolate(b, rec):
    """Upsampling is linear along each spatial axis: products with the op's own fixed matrices."""
    mats = rec.attrs.get("mats", ())
    tw = b.twin()
    b.static("input size", [np.shape(m) for _, m in mats], [np.shape(m) for _, m in tw.attrs["mats"]] if tw else None)
    y = b.value(rec.inputs[0])
    for ax, m in mats:
        m = np.asarray(backend.to_numpy(m))
        y = b.op("MatMul", [y, b.const(np.ascontiguousarray(m.T))] if ax == -1 else [b.const(m), y])
    return [y]


@_register(_pool.PixelShuffle)
def _pixel_shuffle(b, rec):
    if rec.attrs.get("inverse"):
        raise NotImplementedError("deepgrad.onnx.export: pixel_unshuffle has no ONNX conversion yet")
    return [b.op("DepthToSpace", [b.value(rec.inputs[0])], blocksize=int(rec.attrs["r"]), mode="CRD")]


# ---------------------------------------------------------------------------------------------
# normalization
# ---------------------------------------------------------------------------------------------

def _affine_params(b, rec, n_features, has_weight, has_bias, dt):
    params = list(rec.inputs[1:])
    w = b.value(params[0], dt) if has_weight else b.const(np.ones(n_features, dt))
    bias = b.value(params[-1], dt) if has_bias else b.const(np.zeros(n_features, dt))
    return w, bias


@_register(_norm.BatchNorm)
def _batch_norm(b, rec):
    a = rec.attrs
    x = rec.inputs[0]
    C, dt = x.shape[1], _out_dtype(rec)
    w, bias = _affine_params(b, rec, (C,), a.get("has_weight", True), a.get("has_bias", True), dt)
    xs = b.value(x)
    if not a.get("training", True):
        mean = b.array_value(a["running_mean"], dt)
        var = b.array_value(a["running_var"], dt)
        return [b.op("BatchNormalization", [xs, w, bias, mean, var], epsilon=float(a.get("eps", 1e-5)))]
    # batch statistics (no running statistics kept): normalise by the batch's own mean and variance
    axes = [0] + list(range(2, x.ndim))
    mean = b.reduce("ReduceMean", xs, axes, True)
    d = b.op("Sub", [xs, mean])
    var = b.reduce("ReduceMean", b.op("Mul", [d, d]), axes, True)
    xhat = b.op("Div", [d, b.op("Sqrt", [b.op("Add", [var, b.const(np.asarray(a.get("eps", 1e-5), dt))])])])
    bshape = b.int64s([-1] + [1] * (x.ndim - 2))
    return [b.op("Add", [b.op("Mul", [xhat, b.op("Reshape", [w, bshape])]), b.op("Reshape", [bias, bshape])])]


@_register(_norm.LayerNorm)
def _layer_norm(b, rec):
    a = rec.attrs
    x = rec.inputs[0]
    nd, dt = int(a.get("ndims", 1)), _out_dtype(rec)
    shape = tuple(x.shape[-nd:])
    w, bias = _affine_params(b, rec, shape, a.get("has_weight", True), a.get("has_bias", True), dt)
    return [b.op("LayerNormalization", [b.value(x), w, bias], axis=-nd, epsilon=float(a.get("eps", 1e-5)))]


@_register(_norm.GroupNorm)
def _group_norm(b, rec):
    a = rec.attrs
    x = rec.inputs[0]
    G, C, dt = int(a.get("num_groups", 1)), x.shape[1], _out_dtype(rec)
    w, bias = _affine_params(b, rec, (C,), a.get("has_weight", True), a.get("has_bias", True), dt)
    xs = b.value(x)
    g = b.op("Reshape", [xs, b.int64s([0, G, -1])])
    mean = b.reduce("ReduceMean", g, [2], True)
    d = b.op("Sub", [g, mean])
    var = b.reduce("ReduceMean", b.op("Mul", [d, d]), [2], True)
    xhat = b.op("Div", [d, b.op("Sqrt", [b.op("Add", [var, b.const(np.asarray(a.get("eps", 1e-5), dt))])])])
    y = b.op("Reshape", [xhat, b.op("Shape", [xs])])
    bshape = b.int64s([-1] + [1] * (x.ndim - 2))
    return [b.op("Add", [b.op("Mul", [y, b.op("Reshape", [w, bshape])]), b.op("Reshape", [bias, bshape])])]


# ---------------------------------------------------------------------------------------------
# recurrent layers: one direction of one layer -> ONNX LSTM / GRU / RNN
# ---------------------------------------------------------------------------------------------

# PyTorch's gate blocks in ONNX's order: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN_TANH": (0,), "RNN_RELU": (0,)}


@_register(_rnn.RNNLayer)
def _rnn_layer(b, rec):
    a = rec.attrs
    mode = a["mode"]
    if a.get("batch_sizes") is not None:
        raise NotImplementedError("deepgrad.onnx.export: recurrent layers over packed or length-masked batches "
                                  "(PackedSequence, lengths=) have no ONNX conversion yet; export on padded input")
    lstm = mode == "LSTM"
    ins = list(rec.inputs)
    x, h0 = ins[0], ins[1]
    c0 = ins[2] if lstm else None
    rest = ins[3:] if lstm else ins[2:]
    w_ih, w_hh = rest[0], rest[1]
    H = w_hh.shape[1]
    order = np.concatenate([np.arange(g * H, (g + 1) * H) for g in _GATE_ORDER[mode]]).astype(np.int64)
    perm = b.const(order)

    def reorder(t):
        return b.op("Gather", [b.value(t), perm], axis=0)
    W = b.op("Unsqueeze", [reorder(w_ih), b.int64s([0])])
    R = b.op("Unsqueeze", [reorder(w_hh), b.int64s([0])])
    inputs = [b.value(x), W, R]
    if a.get("has_bias", True):
        inputs.append(b.op("Unsqueeze", [b.op("Concat", [reorder(rest[2]), reorder(rest[3])], axis=0), b.int64s([0])]))
    else:
        inputs.append("")
    inputs.append("")                                             # sequence_lens: every step runs

    def state(s):
        if b.is_constant(s) and not np.any(backend.to_numpy(s.array)):
            return ""                                             # zeros: ONNX's default initial state
        return b.op("Unsqueeze", [b.value(s), b.int64s([0])])
    inputs.append(state(h0))
    if lstm:
        inputs.append(state(c0))
    while inputs and inputs[-1] == "":
        inputs.pop()
    attrs = dict(hidden_size=int(H), direction="reverse" if a.get("reverse") else "forward")
    if mode == "GRU":
        attrs["linear_before_reset"] = 1
    elif mode in ("RNN_TANH", "RNN_RELU"):
        attrs["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"]
    op_type = "LSTM" if lstm else ("GRU" if mode == "GRU" else "RNN")
    outs = b.op(op_type, inputs, n_out=3 if lstm else 2, **attrs)
    y = b.op("Squeeze", [outs[0], b.int64s([1])])
    result = [y] + [b.op("Squeeze", [o, b.int64s([0])]) for o in outs[1:]]
    return result
