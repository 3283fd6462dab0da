"""The optimiser step of a replayed training step over flat buffers.

Eager ``SGD.step`` walks the parameters one by one: per parameter a handful of attribute reads,
``_effective_grad`` and 2-4 ufunc calls. Inside a compiled step (only there) the opaque
``SGD.step`` node instead calls a ``FlatSGD``: on its first replay it copies every parameter, and
every momentum buffer, into one flat buffer per optimiser and rebinds ``p.array`` (and the
buffer Tensor's ``array``) to a view of it, so the whole update is the same 2-4 ufunc calls once
per parameter group, over all of its parameters at once. The gradients stay the engine's own
arrays (a user keeping ``p.grad`` after the step sees what eager gives) and are gathered into a
flat scratch with one ``np.concatenate(out=)``.

The parameters stay ordinary Tensors with ordinary (view) arrays: ``state_dict``, ``p.data``,
in-place edits and an eager call all keep working. Each replayed step first checks that the
layout still holds (the same parameters in the same groups, each ``p.array`` still its view,
every gradient present with the parameter's shape and dtype, every momentum buffer still its
view); anything else (``p.data = new``, ``load_state_dict``, a missing gradient, the first step,
whose momentum buffers do not exist yet) runs the real ``step`` -- and the next step flattens again
(at most ``max_rebuilds`` times; then the optimiser keeps the real step). Elementwise the update is
the same operations on the same values as eager's, so the parameters are bit-identical.

Only ``SGD`` itself (not a subclass), NumPy float32/float64 parameters of one dtype, none
shared-memory or pinned, and small on average (``max_mean_size``): for big parameters the
update is memory-bound and the gather is two more passes over the gradients, measured slower.
``compiler.config.flat_optimizer = False`` turns it off.
"""
from __future__ import annotations

import weakref

import numpy as np

max_rebuilds = 4
# flatten only when the parameters are small on average (elements): ResNet-20's 59 tensors
# average 4.6k, the MLP's 6 average 112k
max_mean_size = 8192
_FLAT = weakref.WeakKeyDictionary()


def for_optimizer(opt, orig):
    """The callable an opaque ``step`` node replays: a ``FlatSGD`` for a plain SGD, else None."""
    from . import _runtime
    if not getattr(_runtime, "flat_optimizer", True):
        return None
    from ..optim.sgd import SGD
    from ..optim.optimizer import Optimizer
    cur = Optimizer.__dict__["step"]          # patched while a capture runs
    if type(opt) is not SGD or orig is not getattr(cur, "__wrapped__", cur) or "step" in vars(opt):
        return None
    params = [p for g in opt.param_groups for p in g["params"]]
    if not params or sum(p.array.size for p in params) > max_mean_size * len(params):
        return None                  # big parameters: the real step (see _build)
    f = _FLAT.get(opt)
    if f is None or f.orig is not orig:
        try:
            f = _FLAT[opt] = FlatSGD(opt, orig)
        except TypeError:        # pragma: no cover - not weak-referenceable
            return None
    return f


class FlatSGD:
    """``SGD.step`` over one flat buffer of all the optimiser's parameters (see the module)."""

    def __init__(self, opt, orig):
        self._opt = weakref.ref(opt)
        self.orig = orig
        self.layout = None       # per group: (params, param views, buffer views, start, stop, momentum?)
        self.rebuilds = 0
        self.flat_steps = 0
        self.__name__ = "FlatSGD"

    def __repr__(self):
        return f"FlatSGD({self.flat_steps} flat steps, {self.rebuilds} layouts)"

    # ---- layout --------------------------------------------------------------------------------
    def _ready(self, opt):
        lay = self.layout
        groups = opt.param_groups
        if lay is None or len(groups) != len(lay):
            return False
        state = opt.state
        dt = self.dtype
        for grp, (params, pviews, bviews, _a, _b, mom) in zip(groups, lay):
            ps = grp["params"]
            if len(ps) != len(params) or (grp["momentum"] != 0) != mom:
                return False
            for p, q, pv in zip(ps, params, pviews):
                g = p.grad
                if p is not q or p.array is not pv or g is None:
                    return False
                ga = g.array
                if type(ga) is not np.ndarray or ga.dtype != dt or ga.shape != pv.shape:
                    return False
            if mom:
                for p, bv in zip(ps, bviews):
                    st = state.get(p)
                    mb = st.get("momentum_buffer") if st else None
                    if mb is None or mb.array is not bv:
                        return False
        return True

    def _build(self, opt):
        """Lay the parameters (and momentum buffers) out in flat buffers; False if this
        optimiser's state cannot be flattened now (the real step runs)."""
        if self.rebuilds >= max_rebuilds:
            return False
        from ..tensor import _shared_buffers
        from .. import backend
        params = [p for g in opt.param_groups for p in g["params"]]
        if not params:
            return False
        dt = params[0].array.dtype
        if dt not in (np.float32, np.float64):
            return False
        state = opt.state
        for g in opt.param_groups:
            for p in g["params"]:
                a = p.array
                if (type(a) is not np.ndarray or a.dtype != dt or p.grad is None
                        or id(a) in _shared_buffers or backend.is_pinned(a)):
                    return False
                if g["momentum"] != 0:
                    st = state.get(p)
                    mb = st.get("momentum_buffer") if st else None
                    if mb is None or type(mb.array) is not np.ndarray or mb.array.shape != a.shape \
                            or mb.array.dtype != dt:
                        return False
        # parameters sharing memory would be torn apart by the copy
        arrs = [p.array for p in params]
        for i in range(len(arrs)):
            for j in range(i + 1, len(arrs)):
                if np.may_share_memory(arrs[i], arrs[j]):
                    return False
        n = sum(a.size for a in arrs)
        if n > max_mean_size * len(arrs):
            # big parameters: the update is memory-bound and the per-parameter Python is noise,
            # while the gather is two more passes over the gradients (measured slower: MLP b16
            # 784-512-512-10, 3.07 -> 3.49 ms per step); the real step runs
            self.rebuilds = max_rebuilds
            return False
        P = np.empty(n, dt)
        B = np.empty(n, dt) if any(g["momentum"] != 0 for g in opt.param_groups) else None
        lay = []
        off = 0
        for g in opt.param_groups:
            mom = g["momentum"] != 0
            a0 = off
            ps, pvs, bvs = list(g["params"]), [], []
            for p in ps:
                a = p.array
                sz = a.size
                pv = P[off:off + sz].reshape(a.shape)
                pv[...] = a
                pvs.append(pv)
                if mom:
                    mb = state[p]["momentum_buffer"]
                    bv = B[off:off + sz].reshape(a.shape)
                    bv[...] = mb.array
                    bvs.append(bv)
                else:
                    bvs.append(None)
                off += sz
            lay.append((ps, pvs, bvs, a0, off, mom))
        # rebind only once everything is copied
        for ps, pvs, bvs, _a, _b, mom in lay:
            for p, pv, bv in zip(ps, pvs, bvs):
                p.array = pv
                if mom:
                    state[p]["momentum_buffer"].array = bv
        self.P, self.B, self.dtype = P, B, dt
        self.G = np.empty(n, dt)
        self.T = {}
        self.params = params
        self.layout = lay
        self.rebuilds += 1
        return True

    def _tmp(self, k):
        t = self.T.get(k)
        if t is None:
            t = self.T[k] = np.empty_like(self.P)
        return t

    # ---- the step ------------------------------------------------------------------------------
    def __call__(self):
        opt = self._opt()
        if not self._ready(opt) and not self._build(opt):
            return self.orig(opt)
        from ..optim.optimizer import _scalar
        G = self.G
        np.concatenate([p.grad.array.reshape(-1) for p in self.params], out=G)
        P, B = self.P, self.B
        for grp, (_ps, _pv, _bv, a, b, mom) in zip(opt.param_groups, self.layout):
            if a == b:
                continue
            g = G[a:b]
            p = P[a:b]
            wd = grp.get("weight_decay", 0)
            maximize = grp.get("maximize", False)
            if wd != 0:                    # as Optimizer._effective_grad: p * wd, then -/+ g
                out = np.multiply(p, wd, out=self._tmp(0)[a:b])
                if maximize:
                    out -= g
                else:
                    out += g
                g = out
            elif maximize:
                np.negative(g, out=g)
            momentum = grp["momentum"]
            d = g
            if mom:
                buf = B[a:b]
                buf *= momentum
                damp = 1 - grp["dampening"]
                if damp == 1:
                    buf += g
                else:
                    buf += np.multiply(g, damp, out=self._tmp(1)[a:b])
                if grp["nesterov"]:
                    d = np.multiply(buf, momentum, out=self._tmp(1)[a:b])
                    d += g
                else:
                    d = buf
            p -= np.multiply(d, _scalar(grp["lr"]), out=self._tmp(2)[a:b])
        for q in self.params:
            q._version[0] += 1
        self.flat_steps += 1
