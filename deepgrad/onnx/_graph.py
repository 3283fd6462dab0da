"""The ONNX graph under construction: value names, nodes, initializers (``Builder``), and the walk
from a model's outputs back to the recorded ops they need (``Builder.needed``)."""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ._convert import converter_for

_SMALL = 64          # constants up to this many elements are shared between nodes that use them


def _float(a):
    return a.dtype.kind in "fc" or a.dtype.name == "bfloat16"


class Builder:
    def __init__(self, onnx, opset, records, created, export_params=True):
        self.onnx, self.helper, self.numpy_helper = onnx, onnx.helper, onnx.numpy_helper
        self.opset = opset
        self.records, self.created = records, created
        self.export_params = export_params
        self.nodes, self.initializers, self.param_inputs = [], [], []
        self.values = {}        # (id(node), output index) -> name: values of recorded ops
        self.leaves = {}        # id(Tensor) -> name: graph inputs and parameters
        self.arrays = {}        # id(array) -> name: the same by their arrays, and non-float op outputs
        self.params = {}        # id(Tensor or array) -> (state-dict name, array): emitted on first use
        self._emitted = set()
        self._consts = {}
        self._taken = set()
        self._count = 0
        self._producer = {}     # (id(node), nr) -> record index
        self._array_producer = {}
        self.twins = None       # the records of a second trace with the dynamic axes resized
        self.dynamic = []       # (input name, axis, size in trace 1, size in trace 2)
        self._rec = self._twin = None
        self._dims = {}

    def _index(self):
        for i, rec in enumerate(self.records):
            for nr, a in enumerate(rec.outs):
                self._producer[(id(rec.node), nr)] = i
                if not _float(np.asarray(a)):
                    self._array_producer[id(a)] = i

    # ---- names ------------------------------------------------------------------------------
    def fresh(self, hint):
        while True:
            self._count += 1
            name = f"{hint}_{self._count}"
            if name not in self._taken:
                self._taken.add(name)
                return name

    def reserve(self, name):
        if name in self._taken:
            raise ValueError(f"deepgrad.onnx.export: the name {name!r} is used twice in the graph")
        self._taken.add(name)
        return name

    def add_param(self, name, tensor):
        if name in self._taken:
            raise ValueError(f"deepgrad.onnx.export: the input name {name!r} is also a parameter's state-dict "
                             f"name; choose other input_names")
        self.params[id(tensor)] = (name, tensor.array)
        self.params.setdefault(id(tensor.array), (name, tensor.array))
        self._taken.add(name)

    # ---- nodes and constants -----------------------------------------------------------------
    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self.fresh(op_type) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=self.fresh("node_" + op_type),
                                                **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, array, hint="const"):
        a = np.asarray(backend.to_numpy(array) if not isinstance(array, np.ndarray) else array)
        key = None
        if a.size <= _SMALL:
            key = (a.dtype.str, a.shape, a.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(a), name))
        if key is not None:
            self._consts[key] = name
        return name

    def int64s(self, values):
        return self.const(np.asarray(values, dtype=np.int64))

    def onnx_dtype(self, dt):
        return self.helper.np_dtype_to_tensor_dtype(np.dtype(dt))

    def reduce(self, op_type, x, axes, keepdims):
        """``op_type`` over ``axes`` (None: all), with axes as an input where the opset wants it."""
        if axes is None:
            return self.op(op_type, [x], keepdims=int(keepdims))
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.int64s(axes)], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    # ---- resolving Tensors and arrays to value names -----------------------------------------
    def _param(self, key):
        name, array = self.params[key]
        if name not in self._emitted:
            self._emitted.add(name)
            if self.export_params:
                self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(backend.to_numpy(array)),
                                                                      name))
            else:
                self.param_inputs.append(self.helper.make_tensor_value_info(name, self.onnx_dtype(array.dtype),
                                                                            list(array.shape)))
        return name

    def _known(self, t):
        fn = t.grad_fn
        if fn is not None:
            name = self.values.get((id(fn), t._out_nr))
            if name is not None:
                return name
            if id(fn) in self.created:
                raise unsupported_node(fn)
        if id(t) in self.leaves:
            return self.leaves[id(t)]
        if id(t) in self.params:
            return self._param(id(t))
        return self._known_array(t.array)

    def _known_array(self, a):
        if id(a) in self.arrays:
            return self.arrays[id(a)]
        if id(a) in self.params:
            return self._param(id(a))
        return None

    def is_constant(self, t):
        return self._known(t) is None

    def _cast(self, name, src, dtype):
        if dtype is None or np.dtype(src) == np.dtype(dtype):
            return name
        return self.op("Cast", [name], to=self.onnx_dtype(dtype))

    def value(self, t, dtype=None):
        """The name of Tensor ``t``'s value (a constant initializer if the trace did not produce it),
        cast to ``dtype`` if given."""
        name = self._known(t)
        if name is None:
            a, other = t.array, self._twin_input(t)
            filled = self._filled(a, other)
            if filled is not None:
                return filled if dtype is None else self._cast(filled, a.dtype, dtype)
            self._check_constant(a, other)
            return self.const(a if dtype is None else np.asarray(a).astype(dtype, copy=False))
        return self._cast(name, t.array.dtype, dtype)

    def _filled(self, a, other):
        """A constant filled with one value whose shape follows the dynamic axes (``zeros(B, H)``
        made from a size read as a Python int): that value expanded to a shape read off the inputs."""
        if other is None:
            return None
        a, other = np.asarray(backend.to_numpy(a)), np.asarray(backend.to_numpy(other))
        if a.shape == other.shape or a.ndim != other.ndim or a.size == 0 or other.size == 0:
            return None
        v = a.reshape(-1)[0]
        if not (np.all(a == v) and np.all(other == v)):
            return None
        try:
            shape = self.shape_value(a.shape, other.shape)
        except NotImplementedError:
            return None
        return self.op("Expand", [self.const(np.asarray(v, dtype=a.dtype)), shape])

    # ---- the second trace: which sizes follow the dynamic axes --------------------------------
    def twin(self):
        """The current record's counterpart in the second trace (None without dynamic axes)."""
        return self._twin

    def _twin_input(self, t):
        if self._twin is None:
            return None
        for j, u in enumerate(self._rec.inputs):
            if u is t:
                return self._twin.inputs[j].array
        return None

    def _twin_attr(self, a):
        if self._twin is None:
            return None
        for k, v in self._rec.attrs.items():
            if v is a:
                return self._twin.attrs.get(k)
        return None

    def _check_constant(self, a, other):
        """A value the trace saw as a constant must not change when the dynamic axes do."""
        if other is None:
            return
        a, other = np.asarray(backend.to_numpy(a)), np.asarray(backend.to_numpy(other))
        if a.shape != other.shape or not np.array_equal(a, other, equal_nan=True):
            raise NotImplementedError(
                f"deepgrad.onnx.export: {self._rec.cls.__name__} uses a value of shape {a.shape} that the trace "
                f"cannot follow (computed outside deepgrad's differentiable ops, e.g. with NumPy, a comparison or "
                f"a size read as a Python number) and that changes with the dynamic axes (shape {other.shape} "
                f"when they are resized); export without dynamic_axes for these, or compute it with tensor ops")

    def static(self, what, v1, v2):
        """``v1`` (trace 1), refusing if the second trace gave another value."""
        if self._twin is not None and v1 != v2:
            raise NotImplementedError(f"deepgrad.onnx.export: {self._rec.cls.__name__}'s {what} depends on a dynamic "
                                      f"axis ({v1} vs {v2} when it is resized); this has no ONNX conversion yet")
        return v1

    def input_dim(self, s1, s2):
        """A 1-element int64 value: the graph input dimension that has size ``s1`` in trace 1 and
        ``s2`` in trace 2, or None."""
        for name, axis, v1, v2 in self.dynamic:
            if (v1, v2) == (s1, s2):
                key = (name, axis)
                if key not in self._dims:
                    self._dims[key] = self.op("Gather", [self.op("Shape", [name]), self.int64s([axis])])
                return self._dims[key]
        return None

    def shape_value(self, shape1, shape2, copy_from=None, keep=None):
        """An int64 shape value for ``shape1`` (trace 1) that follows the dynamic axes, ``shape2``
        being the same shape in the second trace. ``copy_from=(in1, in2)``: a Reshape's input
        shapes, whose leading equal dimensions are copied (0); ``keep=(in1, in2)``: an Expand's
        input, whose equal dimensions stay (1). One otherwise unknown dimension becomes -1 when
        ``copy_from`` is given."""
        if shape2 is None:
            shape2 = shape1
        parts, unknown = [], []
        copying = True
        for k, (a, c) in enumerate(zip(shape1, shape2)):
            if copy_from is not None:
                i1, i2 = copy_from
                copying = copying and k < len(i1) and i1[k] == a and i2[k] == c and a != 0
                if copying:
                    parts.append(0)
                    continue
            if keep is not None:
                i1, i2 = keep
                lead = len(shape1) - len(i1)
                if k >= lead and i1[k - lead] == a and i2[k - lead] == c:
                    parts.append(1)
                    continue
            if a == c:
                parts.append(int(a))
                continue
            dim = self.input_dim(a, c)
            if dim is not None:
                parts.append(dim)
            else:
                parts.append(-1)
                unknown.append(k)
        if unknown and (copy_from is None or len(unknown) > 1):
            raise NotImplementedError(
                f"deepgrad.onnx.export: {self._rec.cls.__name__}'s target shape {tuple(shape1)} has dimensions "
                f"{unknown} that follow the dynamic axes in a way the exporter cannot express (sizes "
                f"{tuple(shape1)} and {tuple(shape2)} in two traces)")
        if all(isinstance(p, int) for p in parts):
            return self.int64s(parts)
        pieces = [p if isinstance(p, str) else self.int64s([p]) for p in parts]
        return self.op("Concat", pieces, axis=0)

    def array_value(self, a, dtype=None):
        """The name of a raw array (or number) the op received as configuration."""
        if isinstance(a, numbers.Number) or isinstance(a, np.generic):
            return self.const(np.asarray(a, dtype=dtype))
        if hasattr(a, "array") and hasattr(a, "grad_fn"):
            return self.value(a, dtype)
        name = self._known_array(a)
        if name is None:
            self._check_constant(a, self._twin_attr(a))
            a = np.asarray(a)
            return self.const(a if dtype is None else a.astype(dtype, copy=False))
        return self._cast(name, a.dtype, dtype)

    # ---- the walk --------------------------------------------------------------------------
    def _deps(self, t):
        fn = t.grad_fn
        if fn is not None:
            if (id(fn), t._out_nr) in self.values:
                return None
            i = self._producer.get((id(fn), t._out_nr))
            if i is not None:
                return i
            if id(fn) in self.created:
                raise unsupported_node(fn)
            return None
        if id(t) in self.leaves or id(t) in self.params:
            return None
        return self._array_deps(t.array)

    def _array_deps(self, a):
        if id(a) in self.arrays or id(a) in self.params:
            return None
        return self._array_producer.get(id(a))

    def needed(self, outputs):
        """Indices of the records the ``outputs`` depend on, in trace order."""
        self._index()
        seen, stack = set(), []

        def push(i):
            if i is not None and i not in seen:
                seen.add(i)
                stack.append(i)
        for t in outputs:
            push(self._deps(t))
        while stack:
            rec = self.records[stack.pop()]
            for t in rec.inputs:
                push(self._deps(t))
            for v in rec.attrs.values():
                if isinstance(v, np.ndarray):
                    push(self._array_deps(v))
        return sorted(seen)

    def convert(self, i):
        rec = self.records[i]
        f = converter_for(rec.cls)
        if f is None:
            raise unsupported_op(rec.cls)
        self._rec = rec
        self._twin = None if self.twins is None else self.twins[i]
        try:
            names = f(self, rec)
        finally:
            self._rec = self._twin = None
        if len(names) != len(rec.outs):
            raise AssertionError(f"converter of {rec.cls.__name__} gave {len(names)} outputs for {len(rec.outs)}")
        for nr, (name, a) in enumerate(zip(names, rec.outs)):
            self.values[(id(rec.node), nr)] = name
            if not _float(np.asarray(a)):
                self.arrays[id(a)] = name


def unsupported_op(cls):
    return NotImplementedError(
        f"deepgrad.onnx.export: the op {cls.__name__} ({cls.__module__}.{cls.__qualname__}) has no ONNX "
        f"conversion yet; export a model without it, or compute it outside the exported model")


def unsupported_node(fn):
    name = type(fn).__name__
    if name.endswith("Backward"):
        name = name[: -len("Backward")]
    return NotImplementedError(
        f"deepgrad.onnx.export: the op {name} (a user-defined autograd Function) has no ONNX conversion; "
        f"deepgrad cannot see inside its forward")
