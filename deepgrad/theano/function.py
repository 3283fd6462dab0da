"""``theano.function`` and ``theano.shared`` on deepgrad.

``function(inputs, outputs, updates=...)`` checks the graph once (every leaf an input, a shared
variable or a constant; update types equal to their shared variables'; ``givens`` substituted)
and orders its nodes. Each call converts the arguments with Theano's rules (a float32 array into
a float64 slot is fine, a float64 array into a float32 slot needs ``allow_input_downcast``),
walks the nodes once with deepgrad's eager ops on Tensors, returns NumPy arrays, and then writes
every update, all computed from the old values.

Gradients: a ``Grad`` node (``T.grad``) is evaluated by deepgrad's autograd during the walk --
the walk runs with grad recording on only when the graph has a Grad node, gives each ``wrt``
variable a Tensor that requires grad, and calls ``deepgrad.autograd.grad`` on the cost's Tensor
(``create_graph`` only for a gradient that another Grad node differentiates again).

Compilation: ``Function._step`` (the walk) is a pure function of the Tensors of the inputs and of
the shared values, returning the outputs' and the updates' Tensors. When the capture-and-replay
compiler (``deepgrad/compiler``, issue 19) is present, ``self._stepper`` wraps ``_step`` in its
``CompiledFunction``: the first call with given shapes and dtypes runs the walk while recording
its array-level work (forward, the autograd backward of ``T.grad``), later calls replay the
recorded program; see ``_wants_compiler`` for when. Without that package every call walks.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from ..autograd import grad_mode
from ..autograd.api import grad as ag_grad
from ..tensor import Tensor
from .graph import (SharedVariable, TensorConstant, TensorType, Variable, ancestors, as_tensor_variable,
                    clone_replace, short_type, toposort)
from .gradient import Grad

__all__ = ["function", "shared", "Function", "In", "MissingInputError", "UnusedInputError"]


class MissingInputError(Exception):
    """A variable the outputs need is neither an input, a shared variable nor a constant."""


class UnusedInputError(Exception):
    """An input the outputs do not need (``on_unused_input='raise'``, Theano's default)."""


class In:
    """An input with options: ``In(x, value=1.0)`` gives it a default, ``name`` a keyword name."""

    def __init__(self, variable, name=None, value=None, borrow=False, mutable=False, strict=False,
                 allow_downcast=None):
        if not isinstance(variable, Variable):
            raise TypeError(f"In: expected a symbolic variable, got {variable!r}")
        self.variable = variable
        self.name = name or variable.name
        self.value = value
        self.strict = strict
        self.allow_downcast = allow_downcast


def shared(value, name=None, strict=False, allow_downcast=None, borrow=False, broadcastable=None):
    """A variable whose value lives between calls (Theano's ``theano.shared``): read it with
    ``get_value()``, change it with ``set_value()`` or a function's ``updates``."""
    if isinstance(value, Variable):
        raise TypeError("shared: the value must be data (a NumPy array or a number), not a symbolic variable")
    if isinstance(value, Tensor):
        value = backend.to_numpy(value.detach().array)
    arr = np.asarray(value)
    if arr.dtype == object:
        raise TypeError(f"shared: cannot make a shared variable of {type(value).__name__} {value!r}")
    if isinstance(value, float) and not isinstance(value, np.floating):
        from .config import config
        arr = np.asarray(value, dtype=config.floatX) if allow_downcast else arr
    if not borrow or arr is not value:
        arr = np.array(arr, copy=True)
    bcast = (False,) * arr.ndim if broadcastable is None else tuple(broadcastable)
    return SharedVariable(TensorType(arr.dtype, bcast), arr, name=name, allow_downcast=allow_downcast)


class _FunctionGraph:
    """What Theano users reach through ``f.maker.fgraph``: inputs, outputs, apply nodes."""

    def __init__(self, fn):
        self.inputs = list(fn.input_vars)
        self.outputs = list(fn.outputs) + [v for _, v in fn.update_pairs]
        self._order = fn.order

    def toposort(self):
        return list(self._order)

    @property
    def apply_nodes(self):
        return set(self._order)


class Function:
    """A callable made by ``function``; see the module docstring. ``f.outputs``, ``f.updates``
    and ``f.maker.fgraph`` show the graph it runs; ``debugprint(f)`` prints it."""

    def __init__(self, inputs, outputs, updates, givens, allow_input_downcast, name, on_unused_input, mode=None):
        self.name = name or "<theano function>"
        self.allow_input_downcast = allow_input_downcast
        if not isinstance(inputs, (list, tuple)):
            raise TypeError("Input variables of a Theano function should be contained in a list, even "
                            "when there is a single input.")
        self.ins = []
        for i, x in enumerate(inputs):
            spec = x if isinstance(x, In) else In(x) if isinstance(x, Variable) else None
            if spec is None:
                raise TypeError(f"function: input {i} is {x!r} ({type(x).__name__}), not a symbolic variable")
            if isinstance(spec.variable, SharedVariable):
                raise TypeError(f"Cannot use a shared variable ({spec.variable!r}) as explicit input. "
                                "Consider substituting a non-shared variable via the `givens` parameter")
            if isinstance(spec.variable, TensorConstant):
                raise TypeError(f"function: input {i} is a constant ({spec.variable!r}); inputs must be "
                                "symbolic variables such as T.dmatrix()")
            if any(spec.variable is o.variable for o in self.ins):
                raise ValueError(f"function: the variable {spec.variable!r} is given twice as an input")
            self.ins.append(spec)
        self.input_vars = [s.variable for s in self.ins]

        self.single = isinstance(outputs, Variable) or not isinstance(outputs, (list, tuple)) and outputs is not None
        outs = [] if outputs is None else [outputs] if self.single else list(outputs)
        outs = [as_tensor_variable(o, "function") for o in outs]

        pairs = []
        if updates is not None:
            items = updates.items() if isinstance(updates, dict) else updates
            for item in items:
                try:
                    k, v = item
                except (TypeError, ValueError):
                    raise TypeError(f"function: updates must be (shared_variable, new_expression) pairs, got {item!r}") from None
                if not isinstance(k, SharedVariable):
                    raise TypeError(f"function: an update target must be a shared variable, got {k!r} "
                                    f"({short_type(k) if isinstance(k, Variable) else type(k).__name__})")
                if any(k is p for p, _ in pairs):
                    raise ValueError(f"function: the shared variable {k!r} has two update expressions")
                v = as_tensor_variable(v, "updates")
                # a broadcastable dimension may become a general one, not the other way round
                compatible = v.ndim == k.ndim and not any(kb and not vb for kb, vb in
                                                          zip(k.broadcastable, v.broadcastable))
                if v.dtype != k.dtype or not compatible:
                    raise TypeError(f"An update must have the same type as the original shared variable "
                                    f"(shared_var={k!r}, shared_var.type={k.type}, update_val={v!r}, "
                                    f"update_val.type={v.type}): {short_type(k)} vs {short_type(v)}. "
                                    f"Cast the update with T.cast(update, '{k.dtype}') if the dtypes differ; for the broadcast "
                                    f"pattern, T.unbroadcast(update, axis, ...) or T.addbroadcast.")
                pairs.append((k, v))

        if givens:
            gv = dict(givens.items() if isinstance(givens, dict) else givens)
            new = clone_replace(outs + [v for _, v in pairs], gv)
            outs, pairs = new[:len(outs)], [(k, v) for (k, _), v in zip(pairs, new[len(outs):])]
        self.outputs = outs
        self.update_pairs = pairs
        roots = outs + [v for _, v in pairs]
        self.order = toposort(roots, stop=self.input_vars)

        # every leaf must be provided
        needed = _needed(roots, self.input_vars)
        provided = {id(v) for v in self.input_vars}
        for v in needed:
            if id(v) in provided or isinstance(v, (SharedVariable, TensorConstant)) or v.owner is not None:
                continue
            users = [n for n in self.order if any(i is v for i in n.inputs)]
            used_by = f", used to compute {users[0]}" if users else ""
            raise MissingInputError(f"Input 0 of the graph (indices start from 0){used_by}, was not "
                                    f"provided and not given a value: {v!r} ({short_type(v)}). Use the "
                                    f"function's inputs, or theano.shared for a value kept between calls.")
        needed_ids = {id(v) for v in needed}
        for i, v in enumerate(self.input_vars):
            if id(v) not in needed_ids and on_unused_input != "ignore":
                msg = (f"theano.function was asked to create a function computing outputs given certain "
                       f"inputs, but the provided input variable at index {i} ({v!r}) is not part of the "
                       f"computational graph needed to compute the outputs. To make this error into a "
                       f"warning, pass on_unused_input='warn'.")
                if on_unused_input == "raise":
                    raise UnusedInputError(msg)
                warnings.warn(msg, stacklevel=3)

        self.shared_vars = [v for v in needed if isinstance(v, SharedVariable)]
        self.constants = [v for v in needed if isinstance(v, TensorConstant)]
        grads = [n for n in self.order if isinstance(n.op, Grad)]
        self.has_grad = bool(grads)
        self.need_grad = {id(w) for n in grads for w in n.inputs[1:]}
        self.create_graph = set()
        for n in grads:
            above = {id(a.owner) for a in ancestors([n.inputs[0]]) if a.owner is not None}
            for m in grads:
                if m is not n and id(m) in above:
                    self.create_graph.add(id(m))
        self.maker = self
        self.fgraph = _FunctionGraph(self)
        self._stepper = self._step
        self.compiled = False
        if _wants_compiler(self, mode):
            try:
                from ..compiler import CompiledFunction
                self._stepper = CompiledFunction(self._step)
                self.compiled = True
            except (ImportError, TypeError):   # no compiler package (or another interface): walk eagerly
                pass

    # ---- calling --------------------------------------------------------------------------------
    @property
    def program(self):
        """The program the compiler recorded at the last new input signature (None when the
        function walks eagerly or has not been called): ``deepgrad.print_graph(f.program)``."""
        return getattr(self._stepper, "last_program", None) if self.compiled else None

    @property
    def updates(self):
        return list(self.update_pairs)

    def _bind(self, args, kwargs):
        n = len(self.ins)
        if len(args) > n:
            raise TypeError(f"Too many parameter passed to theano function with name \"{self.name}\": "
                            f"expected {n}, got {len(args)}")
        given = list(args) + [_UNSET] * (n - len(args))
        for key, val in kwargs.items():
            idx = next((i for i, s in enumerate(self.ins) if s.name == key), None)
            if idx is None:
                raise TypeError(f"Unknown input or state: {key}. The function has {n} named inputs "
                                f"({', '.join(str(s.name) for s in self.ins)}).")
            if given[idx] is not _UNSET:
                raise TypeError(f"Multiple values for input: {key}")
            given[idx] = val
        arrays = []
        for i, (spec, val) in enumerate(zip(self.ins, given)):
            if val is _UNSET:
                if spec.value is None:
                    raise TypeError(f"Missing required input: {spec.variable!r} (input {i} of theano "
                                    f"function with name \"{self.name}\", {short_type(spec.variable)})")
                val = spec.value
            allow = spec.allow_downcast if spec.allow_downcast is not None else self.allow_input_downcast
            try:
                arrays.append(spec.variable.type.filter(val, allow_downcast=allow))
            except TypeError as e:
                raise TypeError(f"Bad input argument with name \"{spec.variable!r}\" to theano function "
                                f"with name \"{self.name}\" at index {i} (0-based). {e}") from None
        return arrays

    def __call__(self, *args, **kwargs):
        arrays = self._bind(args, kwargs)
        outs, new_values = self._run(arrays)
        for (k, _), v in zip(self.update_pairs, new_values):
            k._value = v
        if self.single:
            return outs[0]
        return outs

    def _run(self, arrays):
        """One call: (output arrays, new shared values). The leaves become Tensors here and
        ``_step`` -- a pure function of them -- computes the results; ``self._stepper`` is
        ``_step`` itself (the eager walk) or a capture/replay wrapper of it."""
        need = self.need_grad
        leaves = []
        for v, a in zip(self.input_vars + self.shared_vars, list(arrays) + [v._value for v in self.shared_vars]):
            t = Tensor._make(a)
            if id(v) in need:
                t.requires_grad_()
            leaves.append(t)
        res = self._stepper(*leaves)
        keep = list(arrays) + [v._value for v in self.shared_vars] + [v.data for v in self.constants]
        n = len(self.outputs)
        # a replayed program may hand back memory it owns and reuses on the next call: copy
        out = [_result(t, keep, self.compiled) for t in res[:n]]
        new = [_result(t, keep, self.compiled).astype(k.dtype, copy=False)
               for (k, _), t in zip(self.update_pairs, res[n:])]
        return out, new

    def _step(self, *leaves):
        """The eager walk: Tensors of the inputs and shared values in, a tuple of the outputs'
        and the updates' Tensors out."""
        recording = grad_mode.enable_grad() if self.has_grad else grad_mode.no_grad()
        need = self.need_grad
        env = {id(v): t for v, t in zip(self.input_vars + self.shared_vars, leaves)}
        with recording:
            for v in self.constants:
                t = Tensor._make(v.data)
                if id(v) in need:
                    t.requires_grad_()
                env[id(v)] = t
            for node in self.order:
                ins = [env[id(i)] for i in node.inputs]
                if isinstance(node.op, Grad):
                    outs = _run_grad(node, ins, id(node) in self.create_graph)
                else:
                    try:
                        outs = node.op.perform(node, ins)
                    except Exception as e:  # name the node, its types and shapes, as Theano does
                        raise _node_error(e, node, ins) from e
                for o, t in zip(node.outputs, outs):
                    if id(o) in need and not t.requires_grad and t.dtype.kind in "fc":
                        t = t.detach().requires_grad_()
                    env[id(o)] = t
        res = tuple(env[id(o)] for o in self.outputs) + tuple(env[id(v)] for _, v in self.update_pairs)
        # values, not graph nodes: the results leave the graph (and a replayed program need not keep one)
        return tuple(t.detach() if t.requires_grad else t for t in res)

    def __repr__(self):
        return (f"<deepgrad.theano Function {self.name!r}: {len(self.ins)} inputs, {len(self.outputs)} "
                f"outputs, {len(self.update_pairs)} updates, {len(self.order)} nodes>")


_UNSET = object()
_MODES = ("FAST_RUN", "FAST_COMPILE", "DebugMode", "DEBUG_MODE", "NanGuardMode", "eager")
# below this many nodes the eager walk is as fast as a replay's bookkeeping (measured: a + b ran
# 144 us eager, 225 us replayed; a 5-node cost 770 -> 400 us; cost + T.grad 2120 -> 630 us)
COMPILE_MIN_NODES = 3


def _wants_compiler(fn, mode):
    """The visible rule for replaying a function with deepgrad's capture-and-replay compiler:
    Theano's default mode (FAST_RUN), a graph of at least COMPILE_MIN_NODES nodes or with a
    gradient, and no op that reads a value into Python (an index, slice bound, reshape size or
    arange bound given by a symbolic scalar: the replay would have to re-record for every value)."""
    if isinstance(mode, str) and mode != "FAST_RUN":
        return False
    if len(fn.order) < COMPILE_MIN_NODES and not fn.has_grad:
        return False
    return not any(getattr(n.op, "reads_values", _no)(n) for n in fn.order)


def _no(node):
    return False


def _needed(roots, stop):
    stop_ids = {id(v) for v in stop}
    seen, stack, out = set(), list(roots), []
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        out.append(v)
        if v.owner is not None and id(v) not in stop_ids:
            stack.extend(v.owner.inputs)
    return out


def _run_grad(node, ins, create_graph):
    cost, wrt = ins[0], ins[1:]
    if cost.requires_grad:
        gs = ag_grad([cost], list(wrt), retain_graph=True, create_graph=create_graph, allow_unused=True)
    else:
        gs = [None] * len(wrt)
    out = []
    for g, w, v in zip(gs, wrt, node.outputs):
        if g is None:
            g = Tensor._make(backend.array_module(w.array).zeros(w.shape, dtype=np.dtype(v.dtype)))
        elif str(g.dtype) != v.dtype:
            g = g.to(np.dtype(v.dtype))
        out.append(g)
    return out


def _result(t, keep, copy=False):
    a = t.array
    if type(a) is not np.ndarray:
        a = backend.to_numpy(a)
    if copy or any(np.may_share_memory(a, k) for k in keep):
        a = np.array(a, copy=True)   # never hand out an input's, a shared value's or a constant's memory
    return a


def _node_error(e, node, ins):
    lines = [str(e), f"Apply node that caused the error: {node}",
             f"Inputs types: [{', '.join(str(v.type) for v in node.inputs)}]",
             f"Inputs shapes: [{', '.join(str(tuple(t.shape)) for t in ins)}]"]
    msg = "\n".join(lines)
    try:
        err = type(e)(msg)
    except Exception:  # an exception type whose constructor wants more than a message
        err = RuntimeError(msg)
    return err


def function(inputs, outputs=None, mode=None, updates=None, givens=None, no_default_updates=False,
             accept_inplace=False, name=None, rebuild_strict=True, allow_input_downcast=None, profile=None,
             on_unused_input=None):
    """Compile ``outputs`` (a variable or a list) as a function of ``inputs`` (a list), applying
    ``updates`` (pairs ``(shared, expression)``) after each call. ``mode``: None/'FAST_RUN'
    replays the walk with deepgrad's capture-and-replay compiler where ``_wants_compiler`` says
    so (``f.compiled``), 'FAST_COMPILE' (or 'eager', 'DebugMode') always walks the graph
    eagerly. See the module docstring."""
    if on_unused_input not in (None, "raise", "warn", "ignore"):
        raise ValueError(f"function: on_unused_input must be 'raise', 'warn' or 'ignore', got {on_unused_input!r}")
    if isinstance(mode, str) and mode not in _MODES:
        raise ValueError(f"function: mode must be one of {_MODES} or None, got {mode!r}")
    return Function(inputs, outputs, updates, givens, allow_input_downcast, name, on_unused_input or "raise", mode)
