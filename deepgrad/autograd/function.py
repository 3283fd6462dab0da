"""``Function``: the node type of the graph, and the engine that walks it backwards.

An op is a subclass of ``Function`` with

* ``forward(self, *arrays, **attrs)`` on raw arrays (NumPy or CuPy), returning an array or a
  tuple of arrays. ``self`` is the context: ``self.save_for_backward(*tensors)`` keeps input
  Tensors (``self.inputs`` holds them during forward), ``save_output = True`` on the class keeps
  the outputs; anything else backward needs goes on ``self`` as plain attributes.
* ``backward(self, grad)`` returning one gradient per input (``None`` where there is none).

By default backward receives and returns *Tensors* and is written with deepgrad ops, so that
running it with grad mode on records a graph of the gradient itself (``create_graph=True``:
double backward, Hessian-vector products). Fused hot-path ops set ``array_backward = True``:
their backward takes and returns raw arrays and is first-order only; such an op may also define
``graph_backward(self, *grads)`` (Tensors in and out, written with differentiable ops), which the
engine calls instead when ``create_graph=True``. Without one it says so when asked for more. ``self.needs_input_grad[i]`` tells backward which gradients anybody wants.

Graph edges point at ``(node, output_index)`` for non-leaf inputs and at the Tensor itself for
leaves that require grad, so in-place ops that rebase a tensor never re-route older edges.

PyTorch's user-facing style (``@staticmethod forward(ctx, ...)``, ``backward(ctx, ...)``) is the
same class: a subclass with a static ``forward`` (or a ``setup_context``) is detected when it is
defined and gets the ``apply`` of custom.py, which records one node around the user's code.
"""
from __future__ import annotations

import sys

from .grad_mode import _enabled
from .. import backend

_new = object.__new__
_getrefcount = sys.getrefcount
_anomaly = [False]      # set by detect_anomaly(); read on the hot path as one index
_in_backward = [False]  # anomaly mode blames a backward's result on its node, not on its inner ops


class Function:
    """Base class of every differentiable op (see the module docstring)."""

    array_backward = False   # True: backward works on raw arrays and is first-order only
    save_output = False      # True: keep the outputs; backward reads them with self.output(i)
    is_view = False          # True: the output shares the input's memory and version counter

    # Instance attributes (kept out of __slots__ so subclasses can add their own freely).
    #   next_edges, needs_input_grad, saved, _out_arrays, _out_versions, _freed, _hooks

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("forward"), staticmethod) or "setup_context" in cls.__dict__:
            from .custom import install   # PyTorch-style custom Function (see custom.py)
            install(cls)

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run the op on Tensors ``inputs`` (config in ``attrs``); record it if grad is needed."""
        node = _new(cls)
        node.inputs = inputs
        record = False
        if _enabled[0]:
            for t in inputs:
                if t.requires_grad:
                    record = True
                    break
        node._record = record
        try:
            n = len(inputs)
            if n == 2:
                a, b = inputs[0].array, inputs[1].array
                if type(a) is not type(b):          # a CPU and a device array: see _same_device
                    a, b = _same_device(cls, inputs)
                out = node.forward(a, b, **attrs)
            elif n == 1:
                out = node.forward(inputs[0].array, **attrs)
            else:
                arrays = [t.array for t in inputs]
                if n and any(type(a) is not type(arrays[0]) for a in arrays):
                    arrays = _same_device(cls, inputs)
                out = node.forward(*arrays, **attrs)
        except (ValueError, IndexError) as e:  # NumPy's own complaint: name the op and the shapes
            shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
            raise RuntimeError(f"{cls.__name__.lower()}: invalid input shapes ({shapes}): {e}") from e
        except MemoryError as e:               # CuPy's device allocator: deepgrad.cuda.OutOfMemoryError
            err = backend.convert_oom(e)
            if err is e:
                raise
            raise err from e
        node.inputs = None
        if type(out) is tuple:
            return node._wrap_many(out, inputs, record)
        if type(out) is not _ndarray:
            out = backend.array_module(out).asarray(out)
        t = _Tensor._make(out)
        if node.is_view:
            t._version = inputs[0]._version
            t._isview = True
        if _anomaly[0] and not _in_backward[0]:
            _check_finite(cls.__name__, "forward", (out,))
        if record:
            node._record_edges(inputs, 1)
            if node.save_output:
                node._out_arrays = (out,)
                node._out_versions = ((t._version, t._version[0]),)
            if out.dtype.kind in "fcV":     # V: ml_dtypes' bfloat16
                t.grad_fn = node
                t.requires_grad = True
        return t

    def _record_edges(self, inputs, n_out):
        edges = []
        for x in inputs:
            fn = x.grad_fn
            if fn is not None:
                edges.append((fn, x._out_nr))
            else:
                edges.append(x if x.requires_grad else None)
        self.next_edges = edges
        self.needs_input_grad = [e is not None for e in edges]
        self._freed = False
        self._hooks = None
        self._n_out = n_out

    def _wrap_many(self, outs, inputs, record):
        tensors = []
        for nr, a in enumerate(outs):
            if type(a) is not _ndarray:
                a = backend.array_module(a).asarray(a)
            t = _Tensor._make(a)
            if self.is_view and nr == 0:
                t._version = inputs[0]._version
                t._isview = True
            t._isview = True
            tensors.append(t)
        if _anomaly[0] and not _in_backward[0]:
            _check_finite(type(self).__name__, "forward", outs)
        if record:
            self._record_edges(inputs, len(outs))
            if self.save_output:
                self._out_arrays = outs
                self._out_versions = tuple((t._version, t._version[0]) for t in tensors)
            for nr, t in enumerate(tensors):
                if t.array.dtype.kind in "fcV":
                    t.grad_fn = self
                    t._out_nr = nr
                    t.requires_grad = True
        return tuple(tensors)

    # ---- context helpers used inside forward/backward ---------------------------------------
    def save_for_backward(self, *tensors):
        if self._record:
            self.saved = tuple((t, t._version[0]) if t is not None else None for t in tensors)

    @property
    def saved_tensors(self):
        if self._freed:
            _raise_freed(self)
        return unpack_saved(self.saved, type(self).__name__)

    def output(self, i: int = 0):
        """Output ``i`` of this node as a Tensor attached to the graph (for backward formulas)."""
        if self._freed:
            _raise_freed(self)
        counter, version = self._out_versions[i]
        if counter[0] != version:
            raise RuntimeError(
                f"an output of {type(self).__name__} needed for gradient computation has been "
                f"modified by an inplace operation (version {counter[0]}, expected {version}).")
        t = _Tensor._make(self._out_arrays[i])
        if _enabled[0]:  # building a graph of the gradient: the output depends on this node
            t.grad_fn, t._out_nr, t.requires_grad = self, i, True
        return t

    def register_hook(self, nr, fn):
        if self._hooks is None:
            self._hooks = {}
        self._hooks.setdefault(nr, []).append(fn)

    def release(self):
        """Drop the raw arrays a fused op kept for its backward (the engine calls this once the
        node has run without ``retain_graph``; the backward itself leaves them in place, so a
        retained graph can run it again)."""

    def name(self) -> str:
        return type(self).__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"

    def forward(self, *arrays, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grads):  # pragma: no cover - abstract
        raise RuntimeError(f"{type(self).__name__} is not differentiable")


def _same_device(cls, inputs, scalars=True):
    """The input arrays of an op whose inputs are not all of one array type: a 0-d CPU tensor
    that needs no gradient joins the others' device (a number, as PyTorch treats it); any other
    mix of devices raises PyTorch's RuntimeError naming both devices and the op."""
    devs = [backend.device_of(t.array) for t in inputs]
    main = next((d for d in devs if d.type != "cpu"), devs[0])
    arrays = []
    for t, d in zip(inputs, devs):
        a = t.array
        if d != main:
            if scalars and d.type == "cpu" and a.ndim == 0 and not t.requires_grad:
                a = backend.to_device(a, main)
            else:
                raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two "
                                   f"devices, {main} and {d}! (when checking the arguments of "
                                   f"{cls if isinstance(cls, str) else cls.__name__.lower()})")
        arrays.append(a)
    return arrays


def check_same_device(opname, tensors, scalars=True):
    """Raise PyTorch's "Expected all tensors to be on the same device" error for ``opname`` unless
    all ``tensors`` are on one device (for ops that reach the arrays without ``Function.apply``);
    with ``scalars``, 0-d CPU tensors that need no gradient pass (``Function.apply`` moves them)."""
    if tensors and any(type(t.array) is not type(tensors[0].array) for t in tensors):
        _same_device(opname, tensors, scalars=scalars)


def unpack_saved(saved, who):
    """The tensors of ``saved`` (pairs of a Tensor and its version when saved, or None), refusing
    any that an in-place operation has modified since; ``who`` names the saver in the error."""
    out = []
    for item in saved:
        if item is None:
            out.append(None)
            continue
        t, version = item
        if t._version[0] != version:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: a Tensor of shape {tuple(t.shape)} is at version "
                f"{t._version[0]}; expected version {version} instead (saved by {who}). "
                f"Use .clone() before modifying it in place.")
        out.append(t)
    return tuple(out)


def _raise_freed(node):
    raise RuntimeError(
        f"Trying to backward through the graph a second time (or to read saved values of "
        f"{node.name()} after they were freed). Pass retain_graph=True to the first "
        f"backward() or autograd.grad() call if you need to backward through it again.")


def _check_finite(opname, phase, arrays):
    for a in arrays:
        if a is None:
            continue
        if hasattr(a, "array"):
            a = a.array
        if a.dtype.kind in "fc":
            xp = backend.array_module(a)
            if not bool(xp.isfinite(a).all()):
                bad = "NaN" if bool(xp.isnan(a).any()) else "Inf"
                raise RuntimeError(f"anomaly detected: {opname} {phase} produced {bad} "
                                   f"(array of shape {tuple(a.shape)})")


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------

def run_backward(roots, grad_roots, retain_graph=False, create_graph=False, inputs=None,
                 allow_unused=False, accumulate=True, stop=None):
    """Propagate ``grad_roots`` from ``roots`` back through the graph.

    With ``accumulate=True`` (``Tensor.backward``) leaf gradients are added into ``.grad``
    (only for ``inputs`` when given). With ``accumulate=False`` (``autograd.grad``) the gradients
    of ``inputs`` are returned and nothing is written to ``.grad``.

    ``stop`` (a set of nodes; used by utils.checkpoint for a backward inside a backward) makes
    the walk end at those nodes: their gradients are captured for ``inputs`` but they do not run,
    and leaf hooks are left to the outer backward.
    """
    prev_mode = _enabled[0]
    _enabled[0] = bool(create_graph)
    _depth[0] += 1
    try:
        out = _run(roots, grad_roots, retain_graph, create_graph, inputs, allow_unused, accumulate,
                   stop)
    except BaseException:
        if _depth[0] == 1:
            _callbacks.clear()
        raise
    finally:
        _enabled[0] = prev_mode
        _depth[0] -= 1
    if _callbacks and _depth[0] == 0:
        _run_callbacks()
    return out


_depth = [0]        # backward calls in progress (a fused op's graph_backward runs one inside another)


_callbacks = []     # run once at the end of the current backward (queue_callback)


def queue_callback(fn):
    """Run ``fn()`` when the backward now running has finished (leaf gradients written); used
    by DistributedDataParallel to wait for its gradient all-reduces."""
    _callbacks.append(fn)


def _run_callbacks():
    try:
        while _callbacks:
            _callbacks.pop(0)()
    finally:
        _callbacks.clear()          # a callback that raised does not leak the rest into the next backward


def _run(roots, grad_roots, retain_graph, create_graph, inputs, allow_unused, accumulate, stop=None):
    # Where to capture gradients for autograd.grad / backward(inputs=...)
    capture_leaf = {}   # id(leaf tensor) -> slot index
    capture_node = {}   # (node, nr) -> slot index
    captured = None
    if inputs is not None:
        captured = [None] * len(inputs)
        for i, t in enumerate(inputs):
            if t.grad_fn is None:
                if not t.requires_grad:
                    raise RuntimeError(f"autograd: input {i} (shape {tuple(t.shape)}) does not require grad")
                capture_leaf[id(t)] = i
            else:
                capture_node[(t.grad_fn, t._out_nr)] = i

    # Collect the nodes reachable from the roots and count the edges into each.
    deps = {}
    stack = []
    for r in roots:
        fn = r.grad_fn
        if fn is not None and fn not in deps:
            deps[fn] = 0
            stack.append(fn)
    while stack:
        fn = stack.pop()
        if stop is not None and fn in stop:
            continue
        if fn._freed:
            _raise_freed(fn)
        for e in fn.next_edges:
            if e is None or type(e) is not tuple:
                continue
            child = e[0]
            if child in deps:
                deps[child] += 1
            else:
                deps[child] = 1
                stack.append(child)

    buffers = {}        # node -> list of accumulated output grads
    leaf_grads = {}     # id(leaf) -> [leaf, grad]   (summed before writing into .grad)

    def add_to(edge, g):
        if type(edge) is tuple:
            node, nr = edge
            buf = buffers.get(node)
            if buf is None:
                buf = buffers[node] = [None] * node._n_out
            old = buf[nr]
            if old is None:
                buf[nr] = g
            else:
                buf[nr] = None             # the local name is now the only holder besides callers
                buf[nr] = old if _add_into(old, g, create_graph) else old + g
        else:
            slot = leaf_grads.get(id(edge))
            if slot is None:
                leaf_grads[id(edge)] = [edge, g]
            else:
                old = slot[1]
                slot[1] = None
                slot[1] = old if _add_into(old, g, create_graph) else old + g

    for r, g in zip(roots, grad_roots):
        if r.grad_fn is None:
            if r.requires_grad:
                add_to(r, g)
        else:
            add_to((r.grad_fn, r._out_nr), g)

    ready = [fn for fn in (r.grad_fn for r in roots) if fn is not None and deps.get(fn) == 0]
    seen_ready = set()
    while ready:
        fn = ready.pop()
        if fn in seen_ready:
            continue
        seen_ready.add(fn)
        grads = buffers.pop(fn, None)
        if grads is None:
            grads = [None] * fn._n_out
        if stop is not None and fn in stop:   # a boundary of an inner backward: capture, don't run
            for nr in range(fn._n_out):
                slot = capture_node.get((fn, nr))
                if slot is not None:
                    captured[slot] = grads[nr]
            continue
        if fn._hooks:
            for nr, hooks in fn._hooks.items():
                for h in hooks:
                    if grads[nr] is not None:
                        new = h(grads[nr])
                        if new is not None:
                            grads[nr] = new
        if capture_node:
            for nr in range(fn._n_out):
                slot = capture_node.get((fn, nr))
                if slot is not None:
                    captured[slot] = grads[nr]
        if all(g is None for g in grads):   # reached only through edges that carried no gradient
            in_grads = (None,) * len(fn.next_edges)
        else:
            in_grads = _call_backward(fn, grads, create_graph)
        if not retain_graph:
            fn._freed = True
            fn.saved = None
            fn._out_arrays = None
            if fn.array_backward:
                fn.release()
        for e, g in zip(fn.next_edges, in_grads):
            if e is None:
                continue
            if g is not None:
                add_to(e, g)
            if type(e) is tuple:
                child = e[0]
                deps[child] -= 1
                if deps[child] == 0:
                    ready.append(child)
        # Drop this frame's references to the gradients just handed on, so that their
        # holders (a buffer, a leaf slot) own them alone and can accumulate or keep them
        # without a copy (see _sole_owner / _add_into).
        in_grads = grads = g = None

    # Leaves: hooks, then accumulate (backward) or capture (grad).
    for key, (leaf, g) in leaf_grads.items():
        if leaf._hooks and stop is None:
            for h in leaf._hooks:
                new = h(g)
                if new is not None:
                    g = new
        slot = capture_leaf.get(key)
        if slot is not None:
            captured[slot] = g
        if accumulate and (inputs is None or slot is not None):
            if not create_graph:
                g = g.detach() if g.grad_fn is not None else g
            if leaf.grad is None:
                # Own the memory: a gradient may alias an upstream buffer or a saved array.
                if create_graph:  # keep the graph, but never hand out a read-only broadcast view
                    leaf.grad = g if g.array.flags.writeable else g.clone()
                elif _sole_owner(g):     # nobody else holds it: keep it, as PyTorch does
                    leaf.grad = g
                else:
                    leaf.grad = _Tensor._make(g.array.copy())
            else:
                leaf.grad = leaf.grad + g if create_graph else _inplace_add(leaf.grad, g)
    if captured is not None and not accumulate:
        for i, g in enumerate(captured):
            if g is None and not allow_unused:
                raise RuntimeError(
                    f"autograd.grad: input {i} (shape {tuple(inputs[i].shape)}) was not used in "
                    f"the graph of the outputs; pass allow_unused=True to get None for it")
    return captured


def _sole_owner(g):
    """True when the engine holds the only references to gradient ``g`` and to its array, which
    owns its memory; then it can become a leaf's ``.grad`` without a copy. References counted:
    the engine's slot, the caller's and this frame's names, getrefcount's own argument."""
    a = g.array
    return (type(a) is _ndarray and a.base is None and a.flags.writeable
            and _getrefcount(a) <= 3 and _getrefcount(g) <= 4)


def _add_into(old, g, create_graph):
    """Add gradient ``g`` into ``old`` in place when nothing else can see ``old``: first order
    only, same shape and dtype, ``old``'s array owns its memory (or is a whole view of an array
    nothing else holds: ``_sole_full_view``), is writeable and is referenced
    only by ``old`` (counted: the Tensor's attribute, this frame's name, getrefcount's argument),
    and ``old`` only by the engine (the caller's name, this frame's, getrefcount's argument).
    Returns False (and changes nothing) otherwise; the caller then adds out of place."""
    if create_graph:
        return False
    a = old.array
    b = g.array
    if a.base is not None:
        if not _sole_full_view(a):
            return False
    elif type(a) is not _ndarray or not a.flags.owndata:
        return False
    if (not a.flags.writeable or a.shape != b.shape or a.dtype != b.dtype
            or a is b or old.grad_fn is not None
            or _getrefcount(a) > 3 or _getrefcount(old) > 3):
        return False
    a += b
    old._version[0] += 1       # an in-place write (a float16 gradient's float32 shadow is now stale)
    return True


def _sole_full_view(a):
    """True when ndarray ``a`` is a view (a transpose or reshape: convolution's NCHW-shaped view
    of its channels-last result) that covers the whole of a base array which owns its memory and
    which nothing but ``a`` references (counted: ``a.base``, this frame's name, getrefcount's
    argument). Then adding into ``a`` in place changes nothing anyone else can see."""
    base = a.base
    if (type(a) is not _ndarray or type(base) is not _ndarray or base.base is not None
            or not base.flags.owndata or base.nbytes != a.nbytes or _getrefcount(base) > 3):
        return False
    # the same bytes exactly once: the strides, sorted, are those of a dense array
    step = a.itemsize
    for st, n in sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1):
        if st != step:
            return False
        step *= n
    return True


def _inplace_add(acc, g):
    acc.array += g.array
    acc._version[0] += 1       # an in-place write (a float16 gradient's float32 shadow is now stale)
    return acc


def _call_backward(fn, grads, create_graph):
    try:
        return _call_backward_inner(fn, grads, create_graph)
    except MemoryError as e:                   # CuPy's device allocator: deepgrad.cuda.OutOfMemoryError
        err = backend.convert_oom(e)
        if err is e:
            raise
        raise err from e


def _call_backward_inner(fn, grads, create_graph):
    if _anomaly[0]:
        _in_backward[0] = True
        try:
            out = _dispatch_backward(fn, grads, create_graph)
        finally:
            _in_backward[0] = False
        _check_finite(type(fn).__name__, "backward", out)
        return out
    return _dispatch_backward(fn, grads, create_graph)


def _dispatch_backward(fn, grads, create_graph):
    if fn.array_backward:
        if create_graph:
            gb = getattr(fn, "graph_backward", None)
            if gb is None:
                why = getattr(fn, "first_order_only", None)
                raise RuntimeError(
                    f"{type(fn).__name__} has a first-order-only backward; it cannot be differentiated "
                    f"twice (create_graph=True)" + (f": {why}" if why else ""))
            out = gb(*grads)                 # Tensors in and out, written with differentiable ops
            out = out if isinstance(out, tuple) else (out,)
            if len(out) != len(fn.next_edges):
                raise RuntimeError(f"{fn.name()} returned {len(out)} gradients for {len(fn.next_edges)} inputs")
            return out
        arrays = [None if g is None else g.array for g in grads]
        out = fn.backward(*arrays)
        out = out if isinstance(out, tuple) else (out,)
        out = tuple(None if a is None else _Tensor._make(a) for a in out)
    else:
        out = fn.backward(*grads)
        out = out if isinstance(out, tuple) else (out,)
    if len(out) != len(fn.next_edges):
        raise RuntimeError(f"{fn.name()} returned {len(out)} gradients for {len(fn.next_edges)} inputs")
    return out


class record_nodes:
    """``with record_nodes() as nodes:`` adds every graph node created inside to the set ``nodes``
    (utils.checkpoint uses it to tell a region's own nodes from older ones). It swaps the
    module's node allocator, so ops pay nothing when no recording is on."""

    def __enter__(self):
        global _new
        self._prev = prev = _new
        nodes = self.nodes = set()

        def new(cls):
            node = prev(cls)
            nodes.add(node)
            return node
        _new = new
        return nodes

    def __exit__(self, *exc):
        global _new
        _new = self._prev
        return False


# Set by tensor.py once Tensor exists (it imports this module first).
_Tensor = None
_ndarray = None

# PyTorch's names in torch.autograd.function (import last: custom.py builds on this module).
from .custom import FunctionCtx, BackwardCFunction, once_differentiable  # noqa: E402
