"""Capture, cache, guard and replay: what ``deepgrad.compile`` returns.

``capture(fn, args, kwargs)`` runs ``fn`` eagerly once with recording on and returns its result
and a ``Program`` (or the reason there is none). ``CompiledFunction`` keeps programs per input
signature (shapes, dtypes, strides of the tensors; values of Python scalars; grad mode; the
modules' training flags), replays them, and records again when a signature is new or a guard
fails, up to ``cache_size_limit`` recordings; past it, it warns once and runs eagerly.
"""
from __future__ import annotations

import sys
import threading
import types
import warnings

import numpy as np

from . import _record
from ..autograd.function import Function as _Function
from ._program import GuardFailed, Program, StateChanged, node_outs, node_reads
from ._record import GraphBreak, Node, Patches, Rec, Slot, Tracer, plain

cache_size_limit = 8
unstable_guard_limit = 3    # calls of one signature on which every program failed a guard
# the memory plan (Program._plan_memory): temporaries in buffers allocated once per program and
# shared by lifetime. Off by default: measured no faster (glibc already recycles the freed
# blocks of the previous step: no page faults per replayed step either way) and it holds the
# pool (ResNet-20 b32: 32 MiB per program) for as long as the program is cached
memory_plan = False
# the optimiser step of a replay over flat parameter/momentum buffers (_flatopt.py: plain SGD)
flat_optimizer = True
_ND = np.ndarray
_lock = threading.RLock()


# ---- finding the state a function touches ------------------------------------------------------
def _classes():
    from ..nn.module import Module
    from ..optim.optimizer import Optimizer
    from ..optim import lr_scheduler
    from ..tensor import Tensor
    return Module, Optimizer, lr_scheduler.LRScheduler, Tensor


def discover(fn, args, kwargs):
    """Modules, optimizers, schedulers and tensors reachable from ``fn`` (a Module itself, a bound
    method's object, its closure cells and the globals its code names, recursively through
    nested functions) and from the arguments."""
    Module, Optimizer, Sched, Tensor = _classes()
    mods, opts, tens = {}, {}, {}
    seen = set()
    refs = []           # (globals dict, name, object) and (cell, object) the search went through

    def visit(obj, depth=0):
        if id(obj) in seen or depth > 3:
            return
        seen.add(id(obj))
        if isinstance(obj, Module):
            for m in obj.modules():
                mods[id(m)] = m
            return
        if isinstance(obj, Optimizer):
            opts[id(obj)] = obj
            return
        if isinstance(obj, Sched):
            visit(getattr(obj, "optimizer", None), depth + 1)
            return
        if isinstance(obj, Tensor):
            tens[id(obj)] = obj
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            for e in obj:
                visit(e, depth + 1)
            return
        if isinstance(obj, dict):
            for e in obj.values():
                visit(e, depth + 1)
            return
        if isinstance(obj, types.MethodType):
            visit(obj.__self__, depth)
            visit(obj.__func__, depth)
            return
        if isinstance(obj, types.FunctionType):
            code_names(obj.__code__, obj.__globals__, depth)
            for c in obj.__closure__ or ():
                try:
                    v = c.cell_contents
                except ValueError:
                    continue
                refs.append((c, None, v))
                visit(v, depth + 1)
            return
        if isinstance(obj, functools_partial):
            visit(obj.func, depth)
            visit(obj.args, depth + 1)

    def code_names(code, glb, depth):
        for name in code.co_names:
            if name in glb:
                v = glb[name]
                if not isinstance(v, types.ModuleType) and not isinstance(v, type):
                    refs.append((glb, name, v))
                    visit(v, depth + 1)
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                code_names(c, glb, depth)

    visit(fn)
    visit(args)
    visit(kwargs)
    for o in opts.values():
        for g in o.param_groups:
            for p in g["params"]:
                tens[id(p)] = p
    for m in mods.values():
        for p in m._parameters.values():
            if p is not None:
                tens[id(p)] = p
        for b in m._buffers.values():
            if b is not None:
                tens[id(b)] = b
    return list(mods.values()), list(opts.values()), list(tens.values()), refs


def _refs_changed(refs):
    """Has a global or closure variable the function reads been rebound since discovery?"""
    for holder, name, obj in refs:
        if name is None:
            try:
                if holder.cell_contents is not obj:
                    return True
            except ValueError:
                return True
        elif holder.get(name, _MISSING) is not obj:
            return True
    return False


_MISSING = object()


try:
    from functools import partial as functools_partial
except ImportError:  # pragma: no cover
    functools_partial = ()


def flatten(x, Tensor, acc, index=None):
    """Leaves of an argument structure (each tensor once); returns the structure with Tensors
    replaced by their indices in ``acc``."""
    if index is None:
        index = {}
    t = type(x)
    if isinstance(x, Tensor):
        i = index.get(id(x))
        if i is None:
            i = index[id(x)] = len(acc)
            acc.append(x)
        return Slot(i)
    if t is tuple or t is list:
        return t(flatten(e, Tensor, acc, index) for e in x)
    if t is dict:
        return {k: flatten(v, Tensor, acc, index) for k, v in x.items()}
    return x


_SCALARS = (int, float, bool, str, type(None))


def _module_config(m):
    """A module's plain Python attributes (training, p, eps, momentum, ...): the program bakes the
    values it read in, so a change records again."""
    out = []
    for k, v in m.__dict__.items():
        t = type(v)
        if t in _SCALARS or (t is tuple and all(type(e) in _SCALARS for e in v)):
            out.append((k, v))
    return tuple(out)


def _spec(x, Tensor):
    t = type(x)
    if isinstance(x, Tensor):
        a = x.array
        return ("T", a.shape, a.dtype.str, a.strides, x.requires_grad, type(a) is _ND)
    if t is tuple or t is list:
        return (t.__name__,) + tuple(_spec(e, Tensor) for e in x)
    if t is dict:
        return ("d",) + tuple((k, _spec(v, Tensor)) for k, v in x.items())
    if t in (int, float, bool, str, type(None)):
        return (t.__name__, x)
    if isinstance(x, _ND):
        return ("A", x.shape, x.dtype.str, id(x))
    return ("id", id(x))


# ---- the capture -------------------------------------------------------------------------------
class _Capture:
    def __init__(self, tracer, tensors):
        self.tr = tracer
        self.tensors = list(tensors)
        self.known = {id(t): t for t in self.tensors}
        self.last = {}
        self.extra_leaves = []

    def snapshot(self, t):
        g = t.grad
        self.last[id(t)] = (t.array, g, g.array if g is not None else None)

    def add_leaf(self, t):
        if id(t) in self.known:
            return
        self.known[id(t)] = t
        self.tensors.append(t)
        if t.grad is not None:
            self.tr.graph_break("a backward that accumulates into the .grad of a tensor the "
                                "compiled function does not reach")
        self.snapshot(t)

    def sync(self):
        """Emit bind nodes for every tensor whose array or gradient was rebound since last time."""
        tr = self.tr
        for t in self.tensors:
            a0, g0, ga0 = self.last[id(t)]
            if t.array is not a0:
                tr._add(Node("bind", None, (self._ref(t.array),), {}, None, "bind", value=(t, "array")))
            g = t.grad
            if g is not g0:
                if g is None:
                    tr._add(Node("bind", None, (None,), {}, None, "bind", value=(t, "grad")))
                else:
                    tr._add(Node("bind", None, (self._ref(g.array),), {}, None, "bind", value=(t, "grad")))
            elif g is not None and g.array is not ga0:
                tr._add(Node("bind", None, (self._ref(g.array),), {}, None, "bind", value=(t, "grad.array")))
            self.snapshot(t)

    def _ref(self, a):
        return self.tr.template(a)


def _leaves(roots, Tensor, hooks=None):
    """The leaf tensors a backward from ``roots`` reaches; ``hooks`` (a list) collects a
    description of every tensor hook on the way (``register_hook``, ``retain_grad``)."""
    out, seen, stack = [], set(), []
    for r in roots:
        if isinstance(r, Tensor):
            if r.grad_fn is not None:
                stack.append(r.grad_fn)
            elif r.requires_grad:
                out.append(r)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if hooks is not None and getattr(n, "_hooks", None):
            hooks.append(f"a hook on an output of {type(n).__name__}")
        for e in getattr(n, "next_edges", None) or ():
            if e is None:
                continue
            if isinstance(e, tuple):
                stack.append(e[0])
            elif isinstance(e, Tensor):
                out.append(e)
    return out


class _Hooks:
    """While capturing: optimizer and scheduler steps run as opaque calls, backward reports the
    leaves it will write."""

    def __init__(self, cap):
        self.cap = cap

    def __enter__(self):
        from ..optim.optimizer import Optimizer
        from ..optim import lr_scheduler
        import sys
        tensor_mod = sys.modules["deepgrad.tensor"]
        api = sys.modules["deepgrad.autograd.api"]
        function = sys.modules["deepgrad.autograd.function"]
        Tensor = tensor_mod.Tensor
        cap = self.cap
        self.saved = []
        thread = threading.get_ident()

        def all_subclasses(c):
            out = [c]
            for s in c.__subclasses__():
                out.extend(all_subclasses(s))
            return out

        for base in (Optimizer, lr_scheduler.LRScheduler, getattr(lr_scheduler, "ReduceLROnPlateau", None)):
            if base is None:
                continue
            for cls in all_subclasses(base):
                if "step" in cls.__dict__:
                    orig = cls.__dict__["step"]
                    self.saved.append((cls, "step", orig))
                    setattr(cls, "step", _opaque_step(orig, cap, thread))
        orig_rb = function.run_backward

        def run_backward(roots, *a, **k):
            if threading.get_ident() == thread and _record.active() is cap.tr:
                cap.sync()
                hooks = []
                leaves = _leaves(roots, Tensor, hooks)
                hooks += [f"a hook on a leaf of shape {tuple(t.shape)}" for t in leaves if t._hooks]
                if hooks:
                    # a hook is Python: the replay would run its array work but never call it
                    # (no logging, no list appends, no retain_grad); torch.compile breaks too
                    cap.tr.graph_break(f"tensor hooks in the backward ({hooks[0]}; register_hook / "
                                       f"retain_grad are not replayed)")
                for leaf in leaves:
                    cap.add_leaf(leaf)
            return orig_rb(roots, *a, **k)
        for mod in (tensor_mod, api, function):
            self.saved.append((mod, "run_backward", getattr(mod, "run_backward")))
            setattr(mod, "run_backward", run_backward)
        return self

    def __exit__(self, *exc):
        for obj, name, orig in reversed(self.saved):
            setattr(obj, name, orig)
        return False


def _opaque_step(orig, cap, thread):
    def step(self, *args, **kwargs):
        tr = _record.active()
        if tr is None or tr is not cap.tr or threading.get_ident() != thread or tr.paused:
            return orig(self, *args, **kwargs)
        if args or kwargs:
            Optim = _classes()[1]
            if isinstance(self, Optim):
                tr.graph_break(f"{type(self).__name__}.step with arguments (a closure)")
            else:
                tr.graph_break(f"{type(self).__name__}.step with arguments")
        cap.sync()
        tr.paused += 1
        try:
            out = orig(self, *args, **kwargs)
        finally:
            tr.paused -= 1
        if out is not None and not isinstance(out, (int, float)):
            tr.graph_break(f"{type(self).__name__}.step returning a value")
        from ._flatopt import for_optimizer
        flat = for_optimizer(self, orig)
        tr._add(Node("opaque", flat if flat is not None else types.MethodType(orig, self), (), {}, None,
                     f"{type(self).__name__}.step"))
        for t in cap.tensors:      # the step rebinds nothing we track; re-read in case
            cap.snapshot(t)
        return out
    step.__wrapped__ = orig
    return step


def capture(fn, args=(), kwargs=None, fullgraph=False, state=None, memory_plan=None):
    """Run ``fn(*args, **kwargs)`` eagerly, recording it. Returns ``(result, program, reason)``:
    ``program`` is None when the call cannot be replayed (``reason`` says why). ``memory_plan``:
    True/False overrides ``config.memory_plan`` for this program."""
    kwargs = kwargs or {}
    Module, Optimizer, Sched, Tensor = _classes()
    if state is None:
        state = discover(fn, args, kwargs)
    mods, opts, tensors = state[:3]
    tr = Tracer(fullgraph)
    leaves = []
    argtree = flatten((args, kwargs), Tensor, leaves)
    reads, meta = [], {}
    installed = []          # (tensor, attr, original, rec)
    done = {}

    def install(t, kind, k=None):
        a = t.array if kind != "grad" else t.grad.array
        if isinstance(a, Rec):
            a = plain(a)
        key = (id(t), kind)
        if key in done:
            return
        r, s = tr.input_slot(a)
        r._dg_gen = tr
        done[key] = s
        meta[s.i] = (a.shape, a.strides, a.dtype)
        if kind == "grad":
            installed.append((t.grad, "array", a, r))
            t.grad.array = r
            reads.append((s.i, ("state", t, "grad")))
        else:
            installed.append((t, "array", a, r))
            t.array = r
            reads.append((s.i, ("in", k) if k is not None else ("state", t, "array")))

    arrays = [t.array for t in leaves] + [t.array for t in tensors] + [t.grad.array for t in tensors
                                                                    if t.grad is not None]
    if any(not isinstance(a, _ND) for a in arrays):
        return fn(*args, **kwargs), None, "not NumPy arrays (CuPy arrays are not recorded yet)"
    in_ids = set()
    for k, t in enumerate(leaves):
        in_ids.add(id(t))
        install(t, "array", k)
    state_t = [t for t in tensors if id(t) not in in_ids]
    grad_none = []
    for t in state_t:
        install(t, "array")
        if t.grad is not None:
            install(t, "grad")
        else:
            grad_none.append((t, False))
    cap = _Capture(tr, list(leaves) + state_t)
    for t in cap.tensors:
        cap.snapshot(t)
    prev = _record.active()
    result = None
    err = None
    aot = None
    orig_rb = sys.modules["deepgrad.autograd.function"].run_backward
    with _lock:
        _record._local.tracer = tr
        try:
            with Patches(_user_globals(fn)), _Hooks(cap):
                try:
                    result = fn(*args, **kwargs)
                    from ..autograd.grad_mode import _enabled
                    if _enabled[0] and tr.broken is None and not _backward_called(tr):
                        boundary = ([("in", k, t) for k, t in enumerate(leaves) if t.requires_grad]
                                    + [("state", t, t) for t in state_t if t.requires_grad])
                        aot = _aot_backward(tr, result, boundary, Tensor, orig_rb)
                finally:
                    if tr.broken is None:
                        try:
                            cap.sync()
                        except Exception as e:    # pragma: no cover
                            tr.graph_break(f"write-back: {e}")
        except GraphBreak as e:
            err = e
        finally:
            _record._local.tracer = prev
            # the live objects get plain arrays back
            for t, attr, orig, r in installed:
                if getattr(t, attr) is r:
                    setattr(t, attr, orig)
            for t in cap.tensors:
                if isinstance(t.array, Rec):
                    t.array = plain(t.array)
                if t.grad is not None and isinstance(t.grad.array, Rec):
                    t.grad.array = plain(t.grad.array)
    if err is not None:
        raise err
    # ``return loss.item()``: a number read from data that only leaves as (part of) the result
    # is recomputed by the replay and returned, instead of a value guard that fails every call
    result, rec_result = _returned_numbers(result, tr)
    tr.finish_numbers()
    # the result: tensors by slot, their arrays plain
    res_leaves = []
    restree = flatten(rec_result, Tensor, res_leaves)
    outs = []
    reason = tr.broken
    for t in res_leaves:
        if id(t) in cap.known and t not in leaves:
            outs.append(("same", t))
            continue
        a = t.array
        if isinstance(a, Rec):
            s = tr.slot_of.get(id(a))
            t.array = plain(a)
            if s is None:
                reason = reason or "a returned tensor whose array was not recorded"
                outs.append(("const", t))
            else:
                outs.append(("slot", Slot(s), t.requires_grad))
        else:
            outs.append(("const", t))
        if t.requires_grad and t.grad_fn is not None and not _backward_called(tr) and not isinstance(aot, tuple):
            reason = reason or (aot if isinstance(aot, str) else None) or ("the result requires grad (a forward under grad mode: replaying "
                                "it would lose the graph); run it under no_grad or include backward")
    if reason is None:
        restree = _number_slots(restree, outs)
    if reason is not None:
        return result, None, reason
    if any(n.kind == "opaque" for n in tr.nodes):
        last_guard = max((i for i, n in enumerate(tr.nodes) if n.kind == "guard"), default=-1)
        first_opaque = min(i for i, n in enumerate(tr.nodes) if n.kind == "opaque")
        if last_guard > first_opaque:
            return result, None, "a value read from data after an optimizer step (cannot be undone)"
    prog_result = (restree, outs)
    slots_out = [o[1] for o in outs if o[0] in ("slot", "num")]
    meta["grad_none"] = grad_none
    tset = {}
    for t in cap.tensors:
        tset[id(t)] = t
    bwd = None
    nodes = tr.nodes
    if isinstance(aot, tuple):
        start, gslots, gouts, boundary = aot
        nodes, bwd_nodes = tr.nodes[:start], tr.nodes[start:]
        nodes, bwd_nodes = _hoist_guards(nodes, bwd_nodes, {g.i for g in gslots})
        bad = [n for n in bwd_nodes if n.kind not in ("call", "const")]
        if bad:
            return result, None, ("a guard or state change inside the backward of a compiled forward: "
                                  + ", ".join(f"{n.kind} {n.label}" for n in bad[:3]))
        made = set()
        saved = []
        gset = {g.i for g in gslots}
        for n in bwd_nodes:
            for i in node_reads(n) + [w.i for w in n.writes]:
                if i not in made and i not in gset and i not in saved:
                    saved.append(i)
            made.update(node_outs(n))
        bwd = Program(bwd_nodes, [(i, ("in", k)) for k, i in enumerate(saved + [g.i for g in gslots])],
                      tuple(gouts), [], {})
        bwd.optimise(tr.values, tr.const, memory_plan)
        bwd.generate()
        bwd.boundary = [b[:2] for b in boundary]
        bwd.n_saved = len(saved)
        rg_pos = [k for k, o in enumerate(outs) if o[0] == "slot" and o[2]]
        bwd.out_meta = rg_pos
        slots_out = slots_out + [Slot(i) for i in saved]
    prog = Program(nodes, reads, tuple(slots_out), list(tset.values()), meta)
    prog.out_spec = prog_result
    prog.bwd = bwd
    prog.optimise(tr.values, tr.const, memory_plan)
    prog.generate()
    prog.guards = sum(1 for n in prog.nodes if n.kind == "guard")
    _rollback_plan(prog, tr)
    prog._values = None
    return result, prog, None


def _outside_deepgrad():
    """The ``stacklevel`` of the first caller outside the deepgrad package (for warnings)."""
    import os
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    f, level = sys._getframe(1), 1
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(pkg + os.sep):
        f, level = f.f_back, level + 1
    return level


class _NumRef:
    """In the recorded result: a number read from data (``.item()``) that the replay recomputes."""
    __slots__ = ("slot",)

    def __init__(self, slot):
        self.slot = slot


def _returned_numbers(result, tr):
    """``(result for the caller, result for the program)``: GInt/GFloat numbers of this capture
    found in the returned structure and used by nothing but the return become plain numbers for
    the caller and ``_NumRef`` s for the program; their value-guard nodes become value nodes
    (``v = item(loss)``) whose slot the replay returns."""
    found = {}           # id(number) -> (its node, its slot, its plain value)

    def walk(x, rec):
        t = type(x)
        if t is _record.GFloat or t is _record.GInt:
            e = found.get(id(x))
            if e is None:
                d = x.__dict__.get("_dg")
                if d is None or d[0] is not tr or d[1].used or d[1].kind != "guard":
                    return x
                i = tr.n
                tr.n += 1
                v = float.__float__(x) if t is _record.GFloat else int.__int__(x)
                tr.values[i] = v
                e = found[id(x)] = (d[1], Slot(i), v)
            return _NumRef(e[1]) if rec else e[2]
        if t is tuple or t is list:
            return t(walk(e, rec) for e in x)
        if t is dict:
            return {k: walk(v, rec) for k, v in x.items()}
        return x
    if tr.broken is not None:
        return result, result
    rec = walk(result, True)
    if not found:
        return result, result
    user = walk(result, False)
    nodes = {}
    for node, slot, _v in found.values():
        nodes[id(node)] = (node, slot)
    for node, slot in nodes.values():
        node.kind = "call"            # the guard becomes a value node: ``v = item(a)``
        node.outs = slot
        node.pure = True
        node.used = True              # kept by finish_numbers
        tr.guards -= 1
    return user, rec


def _number_slots(restree, outs):
    """Turn the ``_NumRef`` s of a flattened result into indices of ``("num", slot)`` outs."""
    def walk(x):
        t = type(x)
        if t is _NumRef:
            outs.append(("num", x.slot))
            return Slot(len(outs) - 1)
        if t is tuple or t is list:
            return t(walk(e) for e in x)
        if t is dict:
            return {k: walk(v) for k, v in x.items()}
        return x
    return walk(restree)


def _hoist_guards(fwd, bwd, gslots):
    """Guards met while recording the backward of a compiled forward (the bound checks of an
    embedding's backward: ``int(idx.min()) >= 0``) cannot fail there -- the forward has returned.
    One that reads nothing derived from the output gradients moves, with the pure calls computing
    its inputs, to the end of the forward program (copies; the backward keeps what it needs)."""
    import copy
    made_by = {}
    tainted = set(gslots)
    wrote_fwd_memory = False
    hoisted = []
    keep = []
    for n in bwd:
        reads = node_reads(n)
        if n.kind == "guard" and not wrote_fwd_memory and not any(r in tainted for r in reads):
            need, stack, ok = [], list(reads), True
            seen = set()
            while stack:
                r = stack.pop()
                if r in seen:
                    continue
                seen.add(r)
                p = made_by.get(r)
                if p is None:
                    continue
                if p.kind not in ("call", "const") or not p.pure:
                    ok = False
                    break
                need.append(p)
                stack.extend(node_reads(p))
            if ok:
                for p in sorted(set(need), key=lambda q: bwd.index(q)):
                    if all(p is not h for h in hoisted):
                        hoisted.append(p)
                hoisted.append(n)
                continue
        keep.append(n)
        outs = node_outs(n)
        for o in outs:
            made_by[o] = n
        if any(r in tainted for r in reads):
            tainted.update(outs)
            tainted.update(w.i for w in n.writes)
        for w in n.writes:
            if w.i not in made_by:
                wrote_fwd_memory = True
    if not hoisted:
        return fwd, bwd
    moved = [copy.copy(h) for h in hoisted]
    return list(fwd) + moved, keep


def _aot_backward(tr, result, boundary, Tensor, orig_rb):
    """A forward under grad mode: record its backward too, from placeholder output gradients to
    the gradients of the boundary tensors (the inputs and state that require grad), so that a
    replay can hand autograd one node that runs the recorded backward. Returns
    (first backward node, gradient slots, result slots, boundary) or a reason string."""
    res_leaves = []
    flatten(result, Tensor, res_leaves)
    outs = [t for t in res_leaves if t.requires_grad and t.grad_fn is not None]
    if not outs:
        return None
    if len(outs) != len([t for t in res_leaves if t.requires_grad]):
        return "a result that requires grad without a graph"
    if any(b[2]._hooks for b in boundary):
        return "a tensor hook on an input of a compiled forward (register_hook is not replayed)"
    bset = {id(b[2]) for b in boundary}
    stop = {b[2].grad_fn for b in boundary if b[2].grad_fn is not None}
    stop_ids = {id(n) for n in stop}
    seen, stack = set(), [t.grad_fn for t in outs]
    while stack:
        n = stack.pop()
        if id(n) in seen or id(n) in stop_ids:
            continue
        seen.add(id(n))
        if getattr(n, "_hooks", None):
            return (f"a tensor hook on an output of {type(n).__name__} in a compiled forward's graph "
                    f"(register_hook / retain_grad are not replayed)")
        for e in getattr(n, "next_edges", None) or ():
            if isinstance(e, tuple):
                stack.append(e[0])
            elif e is not None and id(e) not in bset:
                return "the result's graph reaches a tensor requiring grad that the compiled function does not know"
    gslots, groots = [], []
    for t in outs:
        r, s = tr.input_slot(np.ones_like(plain(t.array)))
        r._dg_gen = tr
        gslots.append(s)
        groots.append(Tensor._make(r))
    start = len(tr.nodes)
    grads = orig_rb(outs, groots, retain_graph=True, create_graph=False,
                    inputs=[b[2] for b in boundary], allow_unused=True, accumulate=False,
                    stop=stop or None)
    gouts = []
    for g in grads:
        if g is None:
            gouts.append(None)
        else:
            t = tr.template(g.array)
            if type(t) is not Slot:
                return "a gradient that was not recorded"
            gouts.append(t)
    return start, gslots, gouts, boundary


def _user_globals(fn):
    out = []
    f = getattr(fn, "__func__", fn)
    if isinstance(f, types.FunctionType):
        out.append(f.__globals__)
    else:
        fwd = getattr(type(fn), "forward", None)
        if isinstance(fwd, types.FunctionType):
            out.append(fwd.__globals__)
    return out


def _backward_called(tr):
    return any(n.kind in ("bind", "opaque") for n in tr.nodes)


def _rollback_plan(prog, tr):
    """What to save before a replay so that a failed guard can be undone: state arrays written
    before the last guard (by memory), generators drawn from before it, the tensors' bindings."""
    prog.saves, prog.gens = [], []
    if not prog.guards:
        return
    last = max(i for i, n in enumerate(prog.nodes) if n.kind == "guard")
    roots = {}
    for s, r in prog.reads:
        if r[0] == "state":
            roots.setdefault(id(_record._root(plain(tr.values[s]))), []).append(r)
    written = set()
    for n in prog.nodes[:last]:
        for w in n.writes:
            v = tr.values.get(w.i)
            if isinstance(v, _ND):
                written.add(id(_record._root(plain(v))))
        if n.kind == "rng" and n.fn.gen not in prog.gens:
            prog.gens.append(n.fn.gen)
    for rid in written:
        for r in roots.get(rid, ()):
            prog.saves.append((r[1], r[2]))


# ---- the compiled callable -----------------------------------------------------------------------
_EAGER = object()
_GPU_MODES = ("reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class CompiledFunction:
    """``fn`` with capture and replay. ``programs``: signature -> list of Programs."""

    def __init__(self, fn, fullgraph=False, dynamic=None, mode=None):
        self.fn = fn
        self.fullgraph = fullgraph
        self.mode = mode
        self.dynamic = dynamic
        # mode=: PyTorch's modes choose CUDA graphs and kernel autotuning, neither of which this
        # NumPy replay has; every mode replays the same program (said once, not silently ignored).
        # The memory plan (static buffers, CUDA graphs' analogue) measured no faster here, so it
        # stays behind compiler.config.memory_plan rather than behind a mode.
        self.memory_plan = None
        if mode in _GPU_MODES:
            warnings.warn(f"deepgrad.compile(mode={mode!r}): CUDA graphs and kernel autotuning do not "
                          "apply to deepgrad's replay of NumPy arrays; every mode replays the same "
                          "recorded program (compiler.config.memory_plan = True preallocates its "
                          "temporaries, measured no faster on CPU)", UserWarning, stacklevel=_outside_deepgrad())
        if dynamic:
            warnings.warn("deepgrad.compile(dynamic=True): deepgrad has no symbolic shapes; it records "
                          "one program per input shape signature (each new batch size records again, up "
                          f"to compiler.config.cache_size_limit = {cache_size_limit} recordings), as "
                          "dynamic=False would", UserWarning, stacklevel=_outside_deepgrad())
        self.programs = {}
        self.recordings = 0
        self.eager_reasons = {}
        self._state = None
        self._warned = False
        self._warned_unstable = False
        self.misses = {}
        self.last_program = None

    def _key(self, args, kwargs):
        from ..autograd.grad_mode import _enabled
        from ..tensor import Tensor
        mods = self._state[0]
        leaves = []
        alias = flatten((args, kwargs), Tensor, leaves)
        return (_spec(args, Tensor), _spec(kwargs, Tensor), bool(_enabled[0]),
                tuple(_module_config(m) for m in mods), repr(alias) if len(leaves) > 1 else None)

    def __call__(self, *args, **kwargs):
        if _record.active() is not None:           # a compiled function inside a capture: inline
            return self.fn(*args, **kwargs)
        if self._state is None:
            self._state = discover(self.fn, args, kwargs)
        elif self._state[3] and _refs_changed(self._state[3]):
            # a global/closure variable now names another object: programs read the old one
            self._state = discover(self.fn, args, kwargs)
            self.programs.clear()
        key = self._key(args, kwargs)
        progs = self.programs.get(key)
        if progs is _EAGER:
            return self.fn(*args, **kwargs)
        if progs:
            for prog in progs:
                ok, res = self._replay(prog, args, kwargs)
                if ok:
                    return res
            # every program of this signature failed a guard: a value that changes on every call
            # (a norm computed in Python floats, a logged loss) would record forever
            n = self.misses[key] = self.misses.get(key, 0) + 1
            if n >= unstable_guard_limit:
                self.programs[key] = _EAGER
                self.eager_reasons[key] = (f"guards failed on {n} calls of the same signature (a value "
                                           f"read from data that changes every call)")
                if not self._warned_unstable:
                    self._warned_unstable = True
                    warnings.warn(f"deepgrad.compile: {getattr(self.fn, '__name__', self.fn)!r} reads a "
                                  f"value from data that changes on every call (see "
                                  f".eager_reasons); running this signature eagerly",
                                  RuntimeWarning, stacklevel=2)
                return self.fn(*args, **kwargs)
        return self._record(key, args, kwargs)

    def _record(self, key, args, kwargs):
        if self.recordings >= cache_size_limit:
            if not self._warned:
                self._warned = True
                warnings.warn(f"deepgrad.compile: {getattr(self.fn, '__name__', self.fn)!r} was recorded "
                              f"{cache_size_limit} times (cache_size_limit; new input shapes, dtypes, "
                              f"modes or guard values each record again); running it eagerly from now on",
                              RuntimeWarning, stacklevel=3)
            self.programs[key] = _EAGER
            return self.fn(*args, **kwargs)
        self.recordings += 1
        self._state = discover(self.fn, args, kwargs)
        key = self._key(args, kwargs)
        res, prog, reason = capture(self.fn, args, kwargs, self.fullgraph, self._state, self.memory_plan)
        if prog is None:
            if self.fullgraph and not reason.startswith("the result requires grad"):
                raise GraphBreak(f"deepgrad.compile(fullgraph=True): {reason}")
            self.eager_reasons[key] = reason
            self.programs[key] = _EAGER
        else:
            lst = self.programs.get(key)
            if not isinstance(lst, list):
                lst = self.programs[key] = []
            lst.insert(0, prog)
            self.last_program = prog
        return res

    def _replay(self, prog, args, kwargs):
        from ..tensor import Tensor
        leaves = []
        flatten((args, kwargs), Tensor, leaves)
        arrays = [t.array for t in leaves]
        saved = None
        if prog.guards:
            saved = ([(t, w, (t.array if w == "array" else t.grad.array).copy()) for t, w in prog.saves],
                     [(g, g.np.bit_generator.state) for g in prog.gens],
                     [(t, t.array, t.grad, t.grad.array if t.grad is not None else None)
                      for t in prog.tensors])
        try:
            out = prog.fn(arrays)
        except StateChanged:
            return False, None
        except GuardFailed:
            _undo(saved)
            return False, None
        restree, outs = prog.out_spec
        vals = []
        k = 0
        made = []
        for o in outs:
            if o[0] == "slot":
                a = out[k]
                k += 1
                t = Tensor._make(a if type(a) is _ND else np.asarray(a))
                vals.append(t)
                made.append(t)
            elif o[0] == "num":        # a Python number read from data, recomputed
                vals.append(out[k])
                k += 1
                made.append(None)
            else:
                vals.append(o[1])
                made.append(None)
        bwd = prog.bwd
        if bwd is not None:
            node = _CompiledBackward.make(bwd, out[k:], leaves, [made[i] for i in bwd.out_meta])
        return True, _unflatten(restree, vals)


class _CompiledBackward(_Function):
    """The autograd node of a replayed forward: its backward runs the recorded backward program
    on the arrays the forward program saved (first order only)."""
    array_backward = True
    first_order_only = "a deepgrad.compile'd forward records only the first-order backward"

    @classmethod
    def make(cls, bwd, saved, leaves, outs):
        node = object.__new__(cls)
        node.bwd = bwd
        node.saved_arrays = list(saved)
        node.shapes = [(t.array.shape, t.array.dtype) for t in outs]
        boundary = [leaves[b[1]] if b[0] == "in" else b[1] for b in bwd.boundary]
        node._record_edges(boundary, len(outs))
        for nr, t in enumerate(outs):
            t.grad_fn, t._out_nr, t.requires_grad = node, nr, True
        return node

    def backward(self, *grads):
        if self.saved_arrays is None:
            raise RuntimeError("Trying to backward through the graph a second time (or directly access "
                               "saved tensors after they have already been freed); specify "
                               "retain_graph=True the first time")
        gs = [g if g is not None else np.zeros(s, d) for g, (s, d) in zip(grads, self.shapes)]
        out = self.bwd.fn(self.saved_arrays + gs)
        return tuple(out)

    def release(self):
        self.saved_arrays = None

    def name(self):
        return "CompiledFunctionBackward"


def _undo(saved):
    if saved is None:
        return
    arrays, gens, binds = saved
    for t, a, g, ga in binds:
        t.array = a
        t.grad = g
        if g is not None:
            g.array = ga
    for t, w, copy in arrays:
        np.copyto(t.array if w == "array" else t.grad.array, copy)
    for g, st in gens:
        g.np.bit_generator.state = st


def _unflatten(x, vals):
    t = type(x)
    if t is Slot:
        return vals[x.i]
    if t is tuple or t is list:
        return t(_unflatten(e, vals) for e in x)
    if t is dict:
        return {k: _unflatten(v, vals) for k, v in x.items()}
    return x
