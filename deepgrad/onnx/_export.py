"""The export itself: prepare the inputs, trace one forward call, convert, assemble, check."""
from __future__ import annotations

import inspect

import numpy as np

from .. import __version__, backend
from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor
from ._graph import Builder
from ._trace import recording


def _split_args(args, kwargs):
    if isinstance(args, Tensor):
        args = (args,)
    elif not isinstance(args, (tuple, list)):
        raise TypeError(f"deepgrad.onnx.export: args must be a Tensor or a tuple of Tensors, got {type(args).__name__}")
    args = tuple(args)
    if args and isinstance(args[-1], dict) and kwargs is None:
        args, kwargs = args[:-1], args[-1]
    return args, dict(kwargs or {})


def _flatten(obj, out):
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _flatten(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _flatten(o, out)
    return out


def _rebuild(obj, it):
    """``obj`` with every Tensor replaced by the next of ``it``."""
    if isinstance(obj, Tensor):
        return next(it)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_rebuild(o, it) for o in obj)
    if isinstance(obj, dict):
        return {k: _rebuild(v, it) for k, v in obj.items()}
    return obj


def _default_input_names(model, args, n):
    names = []
    try:
        signature = inspect.signature(model.forward if hasattr(model, "forward") else model)
        params = [p for p in signature.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    for i, a in enumerate(args):
        count = len(_flatten(a, []))
        base = params[i].name if i < len(params) else f"input_{i}"
        names += [base] if count == 1 else [f"{base}_{j}" for j in range(count)]
    return names[:n] + [f"input_{i}" for i in range(len(names), n)]


def _dims(dynamic_axes, name, shape):
    """Shape entries of a graph input/output: ints, or symbolic names for its dynamic axes."""
    spec = (dynamic_axes or {}).get(name)
    dims = [int(s) for s in shape]
    if spec is None:
        return dims
    if isinstance(spec, dict):
        items = spec.items()
    else:
        items = ((a, f"{name}_dynamic_axes_{i + 1}") for i, a in enumerate(spec))
    for axis, sym in items:
        axis = int(axis)
        if not -len(dims) <= axis < len(dims):
            raise ValueError(f"deepgrad.onnx.export: dynamic_axes[{name!r}] names axis {axis}, but {name!r} has "
                             f"shape {tuple(shape)}")
        dims[axis] = str(sym)
    return dims


class _Modes:
    """Put every module in eval mode for the trace (torch's TrainingMode.EVAL) and back after."""

    def __init__(self, model, training):
        from . import TrainingMode
        self.model, self.saved = model, None
        mode = training if training is not None else TrainingMode.EVAL
        if isinstance(mode, bool):
            mode = TrainingMode.TRAINING if mode else TrainingMode.EVAL
        if int(mode) == TrainingMode.TRAINING:
            raise NotImplementedError("deepgrad.onnx.export: training=TrainingMode.TRAINING is not supported "
                                      "(dropout and batch statistics are exported in eval mode)")
        self.preserve = int(mode) == TrainingMode.PRESERVE

    def __enter__(self):
        modules = list(self.model.modules()) if hasattr(self.model, "modules") else []
        self.saved = [(m, m.training) for m in modules]
        if self.preserve and any(t for _, t in self.saved):
            raise NotImplementedError("deepgrad.onnx.export: training=TrainingMode.PRESERVE on a model in training "
                                      "mode is not supported; call model.eval() or use TrainingMode.EVAL")
        if hasattr(self.model, "eval"):
            self.model.eval()

    def __exit__(self, *exc):
        for m, t in self.saved:
            m.training = t
        return False


def _trace(model, args, kwargs, arrays):
    """Run the model once on ``arrays`` (as its Tensor inputs) recording every op; float inputs
    require grad (so every op on them records) and pass through a clone (so in-place ops on them
    are tracked like any other)."""
    from . import _exporting
    with recording() as (records, created), enable_grad():
        traced = []
        for a in arrays:
            if a.dtype.kind == "f":
                leaf = Tensor._make(a)
                leaf.requires_grad = True
                traced.append(leaf.clone())
            else:
                traced.append(Tensor._make(a))
        del records[:]                              # the clones are not part of the model
        _exporting[0] = True
        try:
            result = model(*_rebuild(args, iter(traced)), **kwargs)
        finally:
            _exporting[0] = False
    return records, created, result, traced


def _dynamic_inputs(dynamic_axes, names, arrays):
    """(input name, axis, size now, size in the second trace) for every dynamic input axis: each
    symbolic name grows by its own amount (1, 2, 3...) so that different axes stay apart."""
    grow, out = {}, []
    for name, a in zip(names, arrays):
        dims = _dims(dynamic_axes, name, a.shape)
        for axis, d in enumerate(dims):
            if isinstance(d, str):
                grow.setdefault(d, len(grow) + 1)
                if a.shape[axis] == 0:
                    raise ValueError(f"deepgrad.onnx.export: the dynamic axis {axis} of {name!r} has size 0 in args")
                out.append((name, axis, a.shape[axis], a.shape[axis] + grow[d]))
    return out


def _resized(arrays, names, dynamic):
    out = []
    for name, a in zip(names, arrays):
        for n, axis, old, new in dynamic:
            if n == name:
                xp = backend.array_module(a)
                a = xp.take(a, xp.arange(new) % old, axis=axis)
        out.append(backend.array_module(a).ascontiguousarray(a))
    return out


def _describe(dynamic):
    return ", ".join(f"{name} axis {axis}: {n1} -> {n2}" for name, axis, n1, n2 in dynamic)


def run_export(onnx, model, args, kwargs, input_names, output_names, opset, dynamic_axes, export_params,
               keep_initializers_as_inputs, training, verbose):
    helper = onnx.helper
    args, kwargs = _split_args(args, kwargs)
    flat_in = _flatten(args, [])
    for k, v in kwargs.items():
        if _flatten(v, []):
            raise NotImplementedError(f"deepgrad.onnx.export: Tensor keyword arguments ({k}=) are not graph inputs; "
                                      f"pass the Tensors in args")
    names_in = list(input_names or [])
    if len(names_in) > len(flat_in):
        raise ValueError(f"deepgrad.onnx.export: {len(names_in)} input_names for {len(flat_in)} input Tensors")
    names_in += _default_input_names(model, args, len(flat_in))[len(names_in):]

    named_params = list(model.named_parameters()) if hasattr(model, "named_parameters") else []
    named_buffers = list(model.named_buffers()) if hasattr(model, "named_buffers") else []
    arrays = [t.array for t in flat_in]
    for name, a in zip(names_in, arrays):
        _dims(dynamic_axes, name, a.shape)          # validates the axes
    with _Modes(model, training):
        records, created, result, traced = _trace(model, args, kwargs, arrays)
        twins = None
        dynamic = _dynamic_inputs(dynamic_axes, names_in, arrays)
        if dynamic:
            arrays2 = _resized(arrays, names_in, dynamic)
            try:
                twins, _, _, _ = _trace(model, args, kwargs, arrays2)
            except Exception as e:
                raise ValueError(f"deepgrad.onnx.export: the model does not run with the dynamic axes resized "
                                 f"({_describe(dynamic)}), so they cannot be dynamic: {type(e).__name__}: {e}") from e
            if [r.cls for r in twins] != [r.cls for r in records]:
                raise NotImplementedError(
                    f"deepgrad.onnx.export: the model runs other ops when the dynamic axes are resized "
                    f"({_describe(dynamic)}): Python control flow on sizes cannot be exported with dynamic_axes")
    b = Builder(onnx, opset, records, created, export_params)
    b.twins = twins
    b.dynamic = [(name, axis, n1, n2) for name, axis, n1, n2 in dynamic]
    graph_inputs = []
    for name, a, x in zip(names_in, arrays, traced):
        b.reserve(name)
        graph_inputs.append(helper.make_tensor_value_info(name, b.onnx_dtype(a.dtype),
                                                          _dims(dynamic_axes, name, a.shape)))
        if x.grad_fn is not None:
            b.values[(id(x.grad_fn), 0)] = name
        else:
            b.leaves[id(x)] = name
        b.arrays[id(a)] = name
    for pname, p in named_params + named_buffers:
        if p is not None:
            b.add_param(pname, p)
    flat_out = _flatten(result, [])
    if not flat_out:
        raise ValueError("deepgrad.onnx.export: the model returned no Tensor")
    names_out = list(output_names or [])
    if len(names_out) > len(flat_out):
        raise ValueError(f"deepgrad.onnx.export: {len(names_out)} output_names for {len(flat_out)} outputs")
    names_out += (["output"] if len(flat_out) == 1 else [f"output_{i}" for i in range(len(flat_out))])[len(names_out):]
    for name in names_out:
        b.reserve(name)
    unknown = set(dynamic_axes or {}) - set(names_in) - set(names_out)
    if unknown:
        raise ValueError(f"deepgrad.onnx.export: dynamic_axes names {sorted(unknown)}, which are neither input "
                         f"nor output names ({names_in + names_out})")

    for i in b.needed(flat_out):
        if verbose:
            print(f"deepgrad.onnx.export: {records[i]!r}")
        b.convert(i)
    graph_outputs = []
    any_dynamic = bool(dynamic_axes)
    for name, t in zip(names_out, flat_out):
        b.nodes.append(helper.make_node("Identity", [b.value(t)], [name], name=b.fresh("node_output")))
        a = t.array
        dims = _dims(dynamic_axes, name, a.shape)
        if any_dynamic and name not in (dynamic_axes or {}):
            dims = [None] * len(dims)               # unknown: may follow the inputs' dynamic axes
        graph_outputs.append(helper.make_tensor_value_info(name, b.onnx_dtype(a.dtype), dims))

    inputs = graph_inputs + b.param_inputs
    if keep_initializers_as_inputs:
        inputs += [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in b.initializers]
    graph = helper.make_graph(b.nodes, type(model).__name__, inputs, graph_outputs, initializer=b.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="deepgrad", producer_version=__version__)
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def verify_outputs(proto, model, args, kwargs, atol=1e-5, rtol=1e-5):
    """Run ``proto`` in onnxruntime on ``args`` and compare with the model's own outputs."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("deepgrad.onnx.export(verify=True) needs onnxruntime: pip install onnxruntime") from e
    args, kwargs = _split_args(args, kwargs)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: backend.to_numpy(t.array) for i, t in zip(sess.get_inputs(), _flatten(args, []))}
    got = sess.run(None, feeds)
    with _Modes(model, None), no_grad():
        want = [backend.to_numpy(t.array) for t in _flatten(model(*args, **kwargs), [])]
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape or not np.allclose(g, w, atol=atol, rtol=rtol):
            diff = np.max(np.abs(g.astype(np.float64) - w)) if g.shape == w.shape else "shape"
            raise AssertionError(f"deepgrad.onnx.export(verify=True): output {i} differs between onnxruntime and "
                                 f"deepgrad (max abs difference {diff}; shapes {g.shape} and {w.shape})")
