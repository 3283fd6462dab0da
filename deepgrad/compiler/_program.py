"""A captured program: nodes over slots, the passes that shrink it, and the generated replay.

The replay is one straight-line Python function over raw arrays (no Tensor, no Function): its
source is generated from the nodes and compiled with ``compile()``; ``Program.print()`` shows it.
"""
from __future__ import annotations

import numpy as np

from ._record import Node, Slot


_CSE = [True]
# the second round's replay rewrites, switchable for A/B measurements (benchmarks, tests)
PASSES = {"mask_casts": True, "fast_calls": True, "dtype_consts": True, "pad_zeros": True}


def _pad_empty(shape, dtype, box):
    """``np.zeros(shape)`` whose ``box`` (a tuple of slices) the very next call overwrites:
    an empty buffer with only what lies outside the box zeroed (a convolution's padding)."""
    z = np.empty(shape, dtype)
    for a, sl in enumerate(box):
        n = shape[a]
        start, stop, _ = sl.indices(n)
        pre = (slice(None),) * a
        if start > 0:
            z[pre + (slice(0, start),)] = 0
        if stop < n:
            z[pre + (slice(stop, None),)] = 0
    return z


# calls whose result is new memory (or their ``out=``), never a view of an argument
_FRESH = frozenset({".sum", ".mean", ".prod", ".max", ".min", ".var", ".std", ".argmax", ".argmin",
                    ".any", ".all", ".copy", "np.dot", "np.einsum", "np.tensordot", "np.concatenate",
                    "np.stack", "np.empty_like", "np.zeros_like", "np.ones_like", "np.full_like"})


# creation calls a pooled buffer replaces: the buffer as it is (``empty``) or filled
def _pool_empty(b):
    return b


def _pool_fill(b, v):
    b.fill(v)
    return b


_CREATE_POOL = {"np.empty": None, "np.empty_like": None, "np.zeros": 0, "np.zeros_like": 0,
                "np.ones": 1, "np.ones_like": 1}


# NumPy functions written in Python that the replay calls in a faster form (same values):
# ``np.tile`` of a vector 11 -> 1.1 us, ``as_strided`` 12.7 -> 1.1 us (ResNet-20's batch norm
# and im2col call them 114 and 54 times a step)
_as_strided = np.lib.stride_tricks.as_strided


def _tile_fast(a, reps):
    if type(reps) is int and reps >= 1 and type(a) is np.ndarray and a.ndim == 1:
        out = np.empty(reps * a.shape[0], a.dtype)
        out.reshape(reps, a.shape[0])[...] = a
        return out
    return np.tile(a, reps)


def _as_strided_fast(x, shape=None, strides=None, subok=False, writeable=True):
    if (type(x) is np.ndarray and shape is not None and strides is not None and x.flags.c_contiguous
            and len(shape) == len(strides)):
        try:
            v = np.ndarray(shape, x.dtype, x, 0, strides)
        except (ValueError, TypeError, BufferError):   # outside the buffer: as_strided allows it
            return _as_strided(x, shape, strides, subok, writeable)
        if not writeable:
            v.flags.writeable = False
        return v
    return _as_strided(x, shape, strides, subok, writeable)


_FAST = {id(np.tile): ("tile_fast", _tile_fast), id(_as_strided): ("as_strided_fast", _as_strided_fast)}


class _Buf:
    """A pooled buffer in a node's ``out=``: ``b{j}`` in the generated replay."""
    __slots__ = ("j",)

    def __init__(self, j):
        self.j = j


class GuardFailed(Exception):
    """A value the capture saw (a branch, an ``.item()``) came out differently at replay."""


class StateChanged(Exception):
    """The state tensors' arrays are not shaped as when the program was captured."""


def _walk_slots(x, acc):
    t = type(x)
    if t is Slot:
        acc.append(x.i)
    elif t is tuple or t is list:
        for e in x:
            _walk_slots(e, acc)
    elif t is dict:
        for e in x.values():
            _walk_slots(e, acc)
    return acc


def node_reads(n):
    return _walk_slots((n.args, n.kwargs), [])


def node_outs(n):
    return _walk_slots(n.outs, []) if n.outs is not None else []


_SIMPLE = (int, float, bool, str, type(None), type(Ellipsis))


def _literal(x):
    """Source text for ``x`` when it is an exact literal, else None."""
    t = type(x)
    if t in _SIMPLE:
        if t is float and (x != x or x in (float("inf"), float("-inf"))):
            return None
        return repr(x)
    if t is tuple:
        parts = [_literal(e) for e in x]
        if any(p is None for p in parts):
            return None
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if t is slice:
        parts = [_literal(e) for e in (x.start, x.stop, x.step)]
        if any(p is None for p in parts):
            return None
        return f"slice({', '.join(parts)})"
    return None


class Program:
    """The recorded work of one call. ``reads``: (slot, source) pairs bound at the start
    (source ``("in", k)``: the k-th input tensor's array; ``("state", tensor, "array"|"grad")``);
    ``nodes``; ``result``: the function's return value with Slots in place of tensors' arrays."""

    def __init__(self, nodes, reads, result, tensors, meta):
        self.nodes = nodes
        self.reads = reads
        self.result = result
        self.tensors = tensors          # state tensors read or bound (namespace t0, t1, ...)
        self.meta = meta                # shapes etc. of the reads, for the prologue checks
        self.stats = {}
        self.source = None
        self.fn = None

    # ---- passes ---------------------------------------------------------------------------
    def optimise(self, values=None, const=None, memory_plan=None):
        self._values = values or {}
        n0 = len(self.nodes)
        self._fold(const or set())
        self._dce()
        self.stats.update(nodes_recorded=n0, nodes_after_dce=len(self.nodes))
        if _CSE[0]:
            self._cse()
        self._dce()
        if PASSES["mask_casts"]:
            self._fuse_mask_casts()
        if PASSES["pad_zeros"]:
            self._pad_zeros()
        self._elide_copies()
        self._inplace_chains()
        self.pool = []
        from . import _runtime
        if _runtime.memory_plan if memory_plan is None else memory_plan:   # config.memory_plan / mode=
            self._plan_memory()
        self.stats.update(nodes_after_cse=len(self.nodes))
        return self

    def _live_out(self):
        live = set(_walk_slots(self.result, []))
        return live

    def _dce(self):
        """Drop pure calls whose results nothing reads (walking backwards)."""
        live = self._live_out()
        keep = []
        for n in reversed(self.nodes):
            outs = node_outs(n)
            if (n.kind == "const" or n.kind == "call" and n.pure) and not any(o in live for o in outs):
                continue
            keep.append(n)
            live.update(node_reads(n))
            live.update(w.i for w in n.writes)
        keep.reverse()
        # a slot that is written later must not lose its producer even if unread: kept above
        self.nodes = keep

    def _fold(self, const):
        """Constant folding: a pure call whose results depend on constants only (index vectors,
        the LSTM's gate permutation and scales, ``ones`` for the GEMV sums) and whose memory is
        never written becomes its capture-time value."""
        from ._record import _root, plain
        vals = self._values
        self.folded = set()
        if not vals or not const:
            return
        written = set()
        for n in self.nodes:
            for w in n.writes:
                v = vals.get(w.i)
                if isinstance(v, np.ndarray):
                    written.add(id(_root(plain(v))))
        results = set(_walk_slots(self.result, []))
        out = []
        nf = 0
        for n in self.nodes:
            outs = node_outs(n)
            if (n.kind == "call" and n.pure and outs and all(i in const for i in outs)
                    and not any(i in results for i in outs)
                    and all(isinstance(vals.get(i), np.ndarray)
                            and id(_root(plain(vals[i]))) not in written for i in outs)):
                for i in outs:
                    c = Node("const", None, (), {}, Slot(i), "const", value=plain(vals[i]))
                    out.append(c)
                    self.folded.add(i)
                nf += 1
                continue
            out.append(n)
        self.nodes = out
        self.stats["folded"] = nf

    def _lifetimes(self):
        """For the in-place passes: ``root(slot)`` (the identity of the memory a slot's array lives
        in), the roots that must survive (inputs, state, results, folded constants) and, per root,
        the index of the last node that touches it."""
        from ._record import _root, plain
        vals = self._values

        def root(i):
            v = vals.get(i)
            return id(_root(plain(v))) if isinstance(v, np.ndarray) else None
        pinned = {root(s_) for s_, _ in self.reads}
        pinned.update(root(i) for i in _walk_slots(self.result, []))
        pinned.update(root(i) for i in getattr(self, "folded", ()))
        last = {}
        for k, n in enumerate(self.nodes):
            for i in node_reads(n) + node_outs(n) + [w.i for w in n.writes]:
                r = root(i)
                if r is not None:
                    last[r] = k
        return root, pinned, last

    def _pad_zeros(self):
        """``z = np.zeros(S); z[box] = x`` (an im2col's zero padding, 37 per ResNet-20 step): the
        zero fill of the box is dead -- the next call touching ``z`` overwrites it. ``z`` becomes
        ``_pad_empty(S, dtype, box)``: empty memory with only the border zeroed. The same values."""
        vals = self._values
        if not vals:
            return
        nodes = self.nodes
        n_done = 0
        for k, n in enumerate(nodes):
            if not (n.kind == "call" and n.label == "np.zeros" and type(n.outs) is Slot and not n.writes):
                continue
            z = vals.get(n.outs.i)
            if not isinstance(z, np.ndarray) or z.ndim == 0 or z.dtype.hasobject:
                continue
            zi = n.outs.i
            nxt = None
            for m in nodes[k + 1:k + 40]:
                if zi in node_reads(m) or any(w.i == zi for w in m.writes) or zi in node_outs(m):
                    nxt = m
                    break
            if (nxt is None or nxt.kind != "call" or nxt.label != ".__setitem__" or len(nxt.args) != 3
                    or type(nxt.args[0]) is not Slot or nxt.args[0].i != zi or nxt.kwargs):
                continue
            box = nxt.args[1]
            if type(box) is slice:
                box = (box,)
            if (type(box) is not tuple or not box or len(box) > z.ndim
                    or not all(type(b) is slice and b.step in (None, 1)
                               and all(type(e) in (int, type(None)) for e in (b.start, b.stop))
                               for b in box)
                    or zi in _walk_slots(nxt.args[2], [])):
                continue
            shape = tuple(z.shape)
            n.fn, n.label, n.args, n.kwargs = _pad_empty, "pad_empty", (shape, z.dtype, box), {}
            n_done += 1
        if n_done:
            self.stats["pad_zeros"] = n_done

    def _fuse_mask_casts(self):
        """``m = mask.astype(float32); np.multiply(g, m, out=...)`` with ``mask`` boolean and ``m``
        read only there (ReLU's / dropout's backward): the multiply takes the mask itself (the
        ufunc casts each bool to exactly 0.0 / 1.0 in its loop) -- one allocation and one pass
        over the array fewer, the same values."""
        from ._record import _root, plain
        vals = self._values
        if not vals:
            return
        written = set()
        uses = {}
        for n in self.nodes:
            for w in n.writes:
                v = vals.get(w.i)
                if isinstance(v, np.ndarray):
                    written.add(id(_root(plain(v))))
            for i in node_reads(n):
                uses[i] = uses.get(i, 0) + 1
        for i in _walk_slots(self.result, []):
            uses[i] = uses.get(i, 0) + 2
        casts = {}
        for k, n in enumerate(self.nodes):
            if (n.kind == "call" and n.label == ".astype" and type(n.outs) is Slot and not n.writes
                    and len(n.args) == 2 and type(n.args[0]) is Slot and isinstance(n.args[1], np.dtype)
                    and set(n.kwargs) <= {"copy"} and uses.get(n.outs.i) == 1):
                src, dst = vals.get(n.args[0].i), vals.get(n.outs.i)
                if (isinstance(src, np.ndarray) and isinstance(dst, np.ndarray) and src.dtype == np.bool_
                        and dst.dtype.kind == "f" and src.shape == dst.shape
                        and id(_root(plain(src))) not in written):
                    casts[n.outs.i] = (k, n.args[0])
        if not casts:
            return
        drop = set()
        for n in self.nodes:
            if not (n.kind == "call" and n.fn is np.multiply and n.label == "np.multiply"
                    and len(n.args) == 2 and set(n.kwargs) <= {"out"}):
                continue
            for pos, x in enumerate(n.args):
                if type(x) is Slot and x.i in casts:
                    other = n.args[1 - pos]
                    vo = vals.get(other.i) if type(other) is Slot else None
                    vr = vals.get(node_outs(n)[0]) if node_outs(n) else None
                    vm = vals.get(x.i)
                    if (isinstance(vo, np.ndarray) and isinstance(vr, np.ndarray) and vo.dtype == vm.dtype
                            and vr.dtype == vm.dtype and vr.shape == vm.shape):
                        k, src = casts.pop(x.i)
                        args = list(n.args)
                        args[pos] = src
                        n.args = tuple(args)
                        drop.add(k)
                    break
        if drop:
            self.nodes = [n for k, n in enumerate(self.nodes) if k not in drop]
            self.stats["mask_casts_fused"] = len(drop)

    def _elide_copies(self):
        """``b = a.copy()`` where ``a`` owns its memory, nothing touches that memory afterwards and
        it is neither an input, state nor a result: ``b`` is ``a`` itself. (The autograd engine
        copies a leaf's gradient unless it can prove the array is its own: during a capture it
        cannot, so every parameter gradient would be copied once more.)"""
        from ._record import plain
        if not self._values:
            return
        vals = self._values
        root, pinned, last = self._lifetimes()
        rename = {}
        out = []
        for k, n in enumerate(self.nodes):
            if rename:
                n.args = _rename(n.args, rename)
                n.kwargs = _rename(n.kwargs, rename)
                n.writes = tuple(_rename(w, rename) for w in n.writes)
            if (n.kind == "call" and n.label == ".copy" and len(n.args) == 1 and not n.kwargs
                    and type(n.args[0]) is Slot and type(n.outs) is Slot):
                a = n.args[0].i
                va = vals.get(a)
                ra = root(a)
                if (isinstance(va, np.ndarray) and ra is not None and ra not in pinned
                        and last.get(ra) == k and plain(va).flags.c_contiguous
                        and _owns(plain(va))):
                    rename[n.outs.i] = a
                    continue
            out.append(n)
        if rename:
            self.result = _rename(self.result, rename)
            self.stats["copies_elided"] = len(rename)
        self.nodes = out

    def _inplace_chains(self):
        """Elementwise chains in place: ``b = ufunc(a, x)`` where ``a`` is a temporary that owns its
        memory, has ``b``'s shape and dtype, and is dead afterwards becomes
        ``ufunc(a, x, out=a)`` (``b`` is ``a``): no allocation, one buffer walked by the whole
        chain (activation, normalisation and optimiser-like sequences), identical results."""
        from ._record import plain
        if not self._values:
            return
        vals = self._values
        root, pinned, last = self._lifetimes()
        rename = {}
        alias = {}               # root of a renamed result -> the root it now lives in
        n_done = 0
        for k, n in enumerate(self.nodes):
            if rename:
                n.args = _rename(n.args, rename)
                n.kwargs = _rename(n.kwargs, rename)
                n.writes = tuple(_rename(w, rename) for w in n.writes)
            fn = n.fn
            if (n.kind != "call" or not isinstance(fn, np.ufunc) or fn.nout != 1 or n.kwargs
                    or type(n.outs) is not Slot or not n.label.startswith("np.") or "." in n.label[3:]):
                continue
            vb = vals.get(n.outs.i)
            if not isinstance(vb, np.ndarray):
                continue
            pb = plain(vb)
            for x in n.args:
                if type(x) is not Slot:
                    continue
                va = vals.get(x.i)
                ra = root(x.i)
                if not isinstance(va, np.ndarray) or ra is None or ra in pinned:
                    continue
                pa = plain(va)
                if (pa.shape != pb.shape or pa.dtype != pb.dtype or not pa.flags.c_contiguous
                        or not pb.flags.c_contiguous or last.get(ra) != k or not _owns(pa)):
                    continue
                rb = root(n.outs.i)
                rename[n.outs.i] = x.i
                n.kwargs = {"out": (Slot(x.i),)}
                n.writes = (Slot(x.i),)
                n.outs = Slot(x.i)
                last[ra] = max(last.get(rb, k), k)
                if rb in pinned:
                    pinned.add(ra)
                alias[rb] = ra
                n_done += 1
                break
        if rename:
            self.result = _rename(self.result, rename)
        self.stats["inplace"] = n_done

    def _plan_memory(self):
        """Preallocated buffers for temporaries: a node ``b = ufunc(x, y)`` or ``b = np.matmul(x, y)``
        whose result owns fresh memory that never escapes (not a result, not bound to state, not
        handed to an optimiser step, no view of it outliving the replay: lifetimes are per memory
        root, so a view extends its temporary's life) gets ``out=b{j}``, one buffer of a pool
        allocated once per program. Buffers go to temporaries by lifetime interval, greedily per
        (shape, dtype) class: two temporaries share one when the first's last use comes strictly
        before the second is made, so an ``out=`` never aliases any operand of its call (matmul
        forbids that; for ufuncs it would need an overlap copy). The loop and the order of
        operations are those of the call without ``out=``: results are bit-identical."""
        from ._record import _root, plain
        if not self._values:
            return
        vals = self._values
        # alias classes over slots, conservatively: capture-time memory roots are not enough (a
        # call that copied at capture -- ``np.ascontiguousarray`` of a Rec -- may return its
        # argument itself at replay), so every call other than a ufunc joins its outputs to all
        # its array arguments
        parent = {}

        def find(i):
            while parent.get(i, i) != i:
                parent[i] = parent.get(parent[i], parent[i])
                i = parent[i]
            return i

        def union(a, b):
            a, b = find(a), find(b)
            if a != b:
                parent[a] = b
        byroot = {}
        for s_ in list(vals):
            v = vals.get(s_)
            if isinstance(v, np.ndarray):
                r = id(_root(plain(v)))
                if r in byroot:
                    union(s_, byroot[r])
                else:
                    byroot[r] = s_

        for n in self.nodes:
            if n.kind == "call" and (isinstance(n.fn, np.ufunc) or n.label in _FRESH):
                # a ufunc's (a reduction's ...) result is fresh memory or its ``out=``
                ids = node_outs(n) + _walk_slots(n.kwargs.get("out"), []) + [w.i for w in n.writes]
            else:
                ids = node_reads(n) + node_outs(n) + [w.i for w in n.writes]
            for i in ids[1:]:
                union(ids[0], i)
        pinned = {find(s_) for s_, _ in self.reads}
        pinned.update(find(i) for i in _walk_slots(self.result, []))
        pinned.update(find(i) for i in getattr(self, "folded", ()))
        first, last = {}, {}
        for k, n in enumerate(self.nodes):
            ids = node_reads(n) + node_outs(n) + [w.i for w in n.writes]
            if n.kind in ("bind", "opaque"):     # escapes into state or an optimiser's hands
                pinned.update(find(i) for i in ids)
            for i in ids:
                r = find(i)
                first.setdefault(r, k)
                last[r] = k
        root = find
        free = {}                # (shape, dtype) -> [(last use, buffer index)]
        nbytes = 0
        n_done = 0
        for k, n in enumerate(self.nodes):
            fn = n.fn
            create = n.label in _CREATE_POOL
            if n.kind != "call" or type(n.outs) is not Slot or n.writes or n.value == "scalar":
                continue
            if create:
                pass
            elif isinstance(fn, np.ufunc) and not n.kwargs:
                if fn.nout != 1 or n.label != f"np.{fn.__name__}" or len(n.args) != fn.nin:
                    continue
            else:
                continue
            vb = vals.get(n.outs.i)
            if not isinstance(vb, np.ndarray):
                continue
            pb = plain(vb)
            r = root(n.outs.i)
            if (pb.ndim == 0 or pb.dtype.hasobject or r is None or r in pinned or first.get(r) != k
                    or not pb.flags.c_contiguous or not _owns(pb)):
                continue
            key = (pb.shape, pb.dtype.str)
            lst = free.setdefault(key, [])
            j = None          # the buffer freed last: the one most likely still in cache
            best = -1
            for q, (end, jj) in enumerate(lst):
                if end < k and (best < 0 or end > lst[best][0]):
                    best = q
            if best >= 0:
                j = lst.pop(best)[1]
            if j is None:
                j = len(self.pool)
                self.pool.append((pb.shape, pb.dtype))
            lst.append((last.get(r, k), j))
            if create:
                fill = _CREATE_POOL[n.label]
                if fill is None:
                    n.fn, n.label, n.args, n.kwargs = _pool_empty, "pool_empty", (_Buf(j),), {}
                else:
                    n.fn, n.label, n.args, n.kwargs = _pool_fill, "pool_fill", (_Buf(j), fill), {}
            else:
                n.kwargs = {"out": _Buf(j)}
            nbytes += pb.nbytes
            n_done += 1
        self.stats.update(pooled=n_done, pooled_bytes=nbytes, pool_buffers=len(self.pool),
                          pool_bytes=sum(int(np.prod(sh)) * dt.itemsize for sh, dt in self.pool))

    def _cse(self):
        """Merge repeated pure calls with the same function and arguments, as long as no write
        happens between them (writes may change what the arguments hold)."""
        seen = {}
        rename = {}
        out = []
        # memory written anywhere in the program (by root): results living there are not merged
        from ._record import _root, plain
        vals = self._values
        written = set()
        for n in self.nodes:
            for w in n.writes:
                v = vals.get(w.i)
                if isinstance(v, np.ndarray):
                    written.add(id(_root(plain(v))))

        def stable(slot):
            v = vals.get(slot.i)
            return isinstance(v, np.ndarray) and id(_root(plain(v))) not in written

        for n in self.nodes:
            if rename:
                n.args = _rename(n.args, rename)
                n.kwargs = _rename(n.kwargs, rename)
                n.writes = tuple(_rename(w, rename) for w in n.writes)
            if n.kind != "call" or not n.pure:
                if n.writes or n.kind in ("opaque", "bind", "rng"):
                    seen.clear()
                out.append(n)
                continue
            key = _key(n) if type(n.outs) is Slot and stable(n.outs) else None
            if key is not None and key in seen:
                prev = seen[key]
                rename[n.outs.i] = prev.i
                continue
            if key is not None:
                seen[key] = n.outs
            out.append(n)
        if rename:
            self.result = _rename(self.result, rename)
        self.nodes = out

    # ---- code generation ----------------------------------------------------------------
    def generate(self):
        ns = {"np": np, "GuardFailed": GuardFailed, "StateChanged": StateChanged}
        consts = {}
        lines = []

        def const(x):
            lit = _literal(x)
            if lit is not None:
                return lit
            if isinstance(x, np.dtype) and hasattr(np, str(x)) and not PASSES["dtype_consts"]:
                return f"np.dtype({str(x)!r})"
            if isinstance(x, np.dtype) and hasattr(np, str(x)):
                # a namespace constant named after it (``np.dtype('float32')`` in the source
                # would build the dtype again on every replayed call)
                nm = f"dt_{x.str[1:]}" if x.str[0] in "<>|=" else f"dt_{x.str}"
                nm = "".join(ch if ch.isalnum() else "_" for ch in nm)
                ns.setdefault(nm, x)
                if ns[nm] == x:
                    return nm
            key = id(x)
            if key not in consts:
                consts[key] = (f"c{len(consts)}", x)
                ns[consts[key][0]] = x
            return consts[key][0]

        def src(x):
            t = type(x)
            if t is Slot:
                return f"v{x.i}"
            if t is tuple:
                if any(type(e) in (Slot, tuple, list, dict) for e in x):
                    return "(" + ", ".join(src(e) for e in x) + ("," if len(x) == 1 else "") + ")"
                return const(x)
            if t is list:
                return "[" + ", ".join(src(e) for e in x) + "]"
            if t is dict:
                return "{" + ", ".join(f"{k!r}: {src(v)}" for k, v in x.items()) + "}"
            if t is slice:
                return f"slice({src(x.start)}, {src(x.stop)}, {src(x.step)})"
            if t is _Buf:
                return f"b{x.j}"
            return const(x)

        fns = {}

        def fname(fn, label):
            fast = _FAST.get(id(fn)) if PASSES["fast_calls"] else None
            if fast is not None and fn in (np.tile, _as_strided):
                ns[fast[0]] = fast[1]
                return fast[0]
            if label.startswith("np.") and "." not in label[3:]:
                if getattr(np, label[3:], None) is fn:
                    return label
            if label.startswith("np.") and label.count(".") == 2:
                head, meth = label[3:].split(".")
                u = getattr(np, head, None)
                if isinstance(u, np.ufunc) and getattr(u, meth, None) == fn:
                    return label
            key = id(fn)
            if key not in fns:
                ops = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
                lab = label.strip(".")
                for k2, v2 in sorted(ops.items(), key=lambda kv: -len(kv[0])):
                    lab = lab.replace(k2, v2)
                nm = "%s_%d" % ("".join(ch if ch.isalnum() else "_" for ch in lab).strip("_"), len(fns))
                fns[key] = nm
                ns[nm] = fn
            return fns[key]

        tnames = {id(t): f"t{k}" for k, t in enumerate(self.tensors)}
        for k, t in enumerate(self.tensors):
            ns[f"t{k}"] = t
        from ..tensor import Tensor
        ns["_mk"] = Tensor._make
        ns["_asarr"] = np.asarray
        for j, (sh, dt) in enumerate(getattr(self, "pool", ())):
            ns[f"b{j}"] = np.empty(sh, dt)   # the memory plan's buffers, held by the program

        # prologue: bind the reads, check the state arrays are shaped as captured
        ins = [s for s, r in self.reads if r[0] == "in"]
        lines.append("def replay(I):")
        if ins:
            lines.append("    " + ", ".join(f"v{s}" for s in ins) + (", = I" if len(ins) == 1 else " = I"))
        for s, r in self.reads:
            if r[0] != "state":
                continue
            tn = tnames[id(r[1])]
            expr = f"{tn}.array" if r[2] == "array" else f"{tn}.grad.array"
            lines.append(f"    v{s} = {expr}")
            lines.append(f"    if v{s}.shape != {self.meta[s][0]!r} or v{s}.strides != {self.meta[s][1]!r} "
                         f"or v{s}.dtype != {const(self.meta[s][2])}: raise StateChanged({tn!r})")
        for t, has_grad in self.meta.get("grad_none", ()):
            tn = tnames[id(t)]
            lines.append(f"    if {tn}.grad is not None: raise StateChanged({tn!r})")
        # free each slot right after its last use (as eager code drops its temporaries), so that
        # memory is reused by the allocator instead of every intermediate living to the end
        keep = set(_walk_slots(self.result, []))
        last = {}
        for k, n in enumerate(self.nodes):
            for i in node_reads(n) + node_outs(n) + [w.i for w in n.writes]:
                last[i] = k
        for s_, r in self.reads:
            last.setdefault(s_, -1)
        dels = {}
        for i, k in last.items():
            if i not in keep:
                dels.setdefault(k, []).append(i)
        if dels.get(-1):
            lines.append("    del " + ", ".join(f"v{i}" for i in sorted(dels[-1])))
        for k, n in enumerate(self.nodes):
            self._emit(k, n, lines, src, const, fname, tnames)
            if k in dels:
                lines.append("    del " + ", ".join(f"v{i}" for i in sorted(dels[k])))
        lines.append(f"    return {src(self.result) if self.result is not None else 'None'}")
        self.source = "\n".join(lines) + "\n"
        self.namespace = ns
        code = compile(self.source, "<deepgrad.compile replay>", "exec")
        exec(code, ns)
        self.fn = ns["replay"]
        return self

    def _emit(self, k, n, lines, src, const, fname, tnames):
        if True:
            a = ", ".join([src(x) for x in n.args] + [f"{kk}={src(vv)}" for kk, vv in n.kwargs.items()])
            if n.kind == "guard":
                g = const(n.value)
                lines.append(f"    if {fname(n.fn, n.label)}({a}) != {g}: raise GuardFailed({k})")
                return
            if n.kind == "opaque":
                lines.append(f"    {fname(n.fn, n.label)}({a})")
                return
            if n.kind == "const":
                lines.append(f"    {src(n.outs)} = {const(n.value)}")
                return
            if n.kind == "bind":
                t, what = n.value
                tn = tnames[id(t)]
                v = src(n.args[0]) if n.args[0] is not None else "None"
                if what == "array":
                    lines.append(f"    {tn}.array = {v}")
                elif what == "grad":
                    lines.append(f"    {tn}.grad = None" if n.args[0] is None else f"    {tn}.grad = _mk({v})")
                else:
                    lines.append(f"    {tn}.grad.array = {v}")
                return
            call = self._call_src(n, a, src, fname)
            if n.outs is None or (type(n.outs) is Slot and any(w.i == n.outs.i for w in n.writes)):
                lines.append(f"    {call}")
            else:
                lhs = src(n.outs) if type(n.outs) is Slot else ", ".join(src(o) for o in n.outs)
                if n.value == "scalar":
                    call = f"_asarr({call})"
                lines.append(f"    {lhs} = {call}")

    def _call_src(self, n, a, src, fname):
        lab = n.label
        if lab == ".__getitem__" and len(n.args) == 2:
            return f"{src(n.args[0])}[{src(n.args[1])}]"
        if lab == ".__setitem__" and len(n.args) == 3:
            return f"{src(n.args[0])}[{src(n.args[1])}] = {src(n.args[2])}"
        if lab.startswith(".") and n.args and type(n.args[0]) is Slot and lab[1:].isidentifier():
            rest = ", ".join([src(x) for x in n.args[1:]] + [f"{kk}={src(vv)}" for kk, vv in n.kwargs.items()])
            return f"{src(n.args[0])}.{lab[1:]}({rest})"
        return f"{fname(n.fn, lab)}({a})"

    # ---- showing ------------------------------------------------------------------------
    def print(self, file=None):
        import sys
        f = file or sys.stdout
        s = self.stats
        f.write(f"# deepgrad.compile program: {len(self.nodes)} nodes"
                + (f" ({s.get('nodes_recorded')} recorded)" if s else "") + "\n")
        f.write(self.source or "")

    def to_dot(self):
        """Graphviz source of the data flow: one box per node, slots as edges."""
        out = ["digraph deepgrad_program {", "  rankdir=TB;", '  node [shape=box, fontsize=10];']
        producer = {}
        for s, r in self.reads:
            nm = f"r{s}"
            lab = f"input {r[1]}" if r[0] == "in" else f"state {r[2]}"
            out.append(f'  {nm} [label="{lab}\\nv{s}", shape=ellipse];')
            producer[s] = nm
        for k, n in enumerate(self.nodes):
            nm = f"n{k}"
            lab = n.label.replace('"', "'")
            shape = {"guard": "diamond", "opaque": "component", "bind": "note", "rng": "hexagon"}.get(n.kind, "box")
            outs = ",".join(f"v{o}" for o in node_outs(n))
            out.append(f'  {nm} [label="{lab}{(chr(92) + "n" + outs) if outs else ""}", shape={shape}];')
            for r in dict.fromkeys(node_reads(n)):
                if r in producer:
                    out.append(f"  {producer[r]} -> {nm};")
            for o in node_outs(n):
                producer[o] = nm
            for w in n.writes:
                producer[w.i] = nm
        out.append("}")
        return "\n".join(out) + "\n"


def _owns(a):
    """``a`` (a plain view made for a Rec) sees the whole of its owner's memory."""
    r = a
    while isinstance(r.base, np.ndarray):
        r = r.base
    return r.base is None and r.ctypes.data == a.ctypes.data and r.nbytes == a.nbytes


def _rename(x, m):
    t = type(x)
    if t is Slot:
        return Slot(m[x.i]) if x.i in m else x
    if t is tuple or t is list:
        return t(_rename(e, m) for e in x)
    if t is dict:
        return {k: _rename(v, m) for k, v in x.items()}
    return x


def _key(n):
    def k(x):
        t = type(x)
        if t is Slot:
            return ("S", x.i)
        if t is tuple or t is list:
            return (t.__name__,) + tuple(k(e) for e in x)
        if t is dict:
            return ("d",) + tuple((kk, k(v)) for kk, v in sorted(x.items()))
        if t is slice:
            return ("sl", x.start, x.stop, x.step)
        if isinstance(x, (np.ndarray, np.generic)):
            return ("id", id(x))
        try:
            hash(x)
        except TypeError:
            return ("id", id(x))
        return (type(x).__name__, x)
    try:
        return (id(n.fn), n.label, k(n.args), k(n.kwargs))
    except Exception:
        return None
