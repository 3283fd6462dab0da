"""``Optimizer``: the machinery every optimiser shares.

An optimiser owns ``param_groups`` (dicts of per-group options plus ``"params"``), ``defaults`` and
``state`` (per-parameter dict, created lazily on the first step that sees a gradient). ``step``
walks the groups once, and for every parameter with a gradient calls the subclass's
``_update(p, g, state, group)`` on **raw arrays**: no Tensor graph is built, every update is done
in place on ``p.array`` with ufuncs writing into preallocated buffers.

The base also handles what all of PyTorch's optimisers do the same way before their own rule:
``maximize`` (negate the gradient), L2 ``weight_decay`` (``g + wd * p``) and decoupled weight
decay (``p *= 1 - lr * wd``, AdamW/NAdam's ``decoupled_weight_decay``), so subclasses only state
their own recurrences.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from itertools import chain

import numpy as np

from .. import backend
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton marking an option a param group must give (e.g. SGD's lr in old PyTorch)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj):
    if isinstance(obj, Tensor):
        return "deepgrad.Tensor"
    return type(obj).__module__ + "." + type(obj).__qualname__ if type(obj).__module__ != "builtins" \
        else type(obj).__qualname__


def _check(ok, message):
    if not ok:
        raise ValueError(message)


def _check_common(lr=None, eps=None, weight_decay=None, betas=None):
    """The argument checks shared by the optimiser constructors, with PyTorch's messages."""
    if lr is not None:
        lr = _scalar(lr)
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
    if eps is not None:
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
    if betas is not None:
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
    if weight_decay is not None:
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")


def _scalar(x):
    """A learning rate / option given as a 1-element Tensor -> Python float."""
    if isinstance(x, Tensor):
        if x.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        return float(x.item())
    return x


class Optimizer:
    """Base class of all optimisers (PyTorch's ``torch.optim.Optimizer`` API)."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got " + _typename(params))
        self.state = defaultdict(dict)
        self.param_groups = []
        self._buffers = {}
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ---- groups -----------------------------------------------------------------------------
    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        param_group = dict(param_group)
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but "
                            "the ordering of tensors in sets will change between runs. Please use a "
                            "list instead.")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. "
                                 "Some param names are missing")
            param_group["param_names"] = names
        param_group["params"] = params
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + _typename(p))
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        self._check_group(param_group)
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                txt = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {txt} to the optimizer")
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def _check_group(self, group):
        """Hook: validate/normalise one param group's options (subclasses may override)."""

    # ---- gradients --------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad = False
                    g.array[...] = 0
                    g._version[0] += 1

    # ---- the step ---------------------------------------------------------------------------
    def step(self, closure=None):
        """One optimisation step over every parameter that has a gradient.

        ``closure`` (optional) re-evaluates the model under grad mode and returns the loss,
        which ``step`` returns.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        states = self.state
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                param = p.array
                if param.dtype.char in "eE":      # float16/bfloat16: update in float32 (optim/_lowp.py)
                    self._lowp_step(p, param, grad, states, group)
                    continue
                state = states.get(p)
                if not state:          # lazily created; left out of ``state`` if it stays empty
                    state = {}
                    self._init_state(param, state, group)
                    if state:
                        states[p] = state
                g = self._effective_grad(param, grad.array, group)
                self._update(param, g, state, group)
                p._version[0] += 1
        return loss

    def _lowp_step(self, p, param, grad, states, group):
        from ._lowp import lowp_update, set_shadow
        state = states.get(p)
        if state is None:
            state = {}
        p32 = lowp_update(self, p, grad.array, state, group)
        if state:
            states[p] = state
        p._version[0] += 1
        set_shadow(p, p32)

    def _init_state(self, param, state, group):
        """Fill an empty ``state`` dict for ``param`` (raw array) before its first update."""

    def _update(self, param, grad, state, group):
        """Update raw array ``param`` in place from ``grad`` (maximize/weight decay applied)."""
        raise NotImplementedError

    def _buf(self, like, slot):
        """A scratch array shaped like ``like``, shared by all same-shaped parameters (updates run
        one parameter at a time, so one set of scratch buffers per shape/dtype suffices)."""
        key = (like.shape, like.dtype.str, slot, type(like))
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = backend.array_module(like).empty_like(like)
        return buf

    def _effective_grad(self, param, grad, group):
        """Apply ``maximize`` and weight decay as PyTorch does, without touching ``p.grad``.

        Returns ``grad`` itself when nothing applies, else a scratch buffer (slot 0)."""
        maximize = group.get("maximize", False)
        wd = group.get("weight_decay", 0)
        if wd != 0 and group.get("decoupled_weight_decay", False):
            param *= 1 - _scalar(group["lr"]) * wd
            wd = 0
        if wd == 0:
            if not maximize:
                return grad
            return backend.array_module(grad).negative(grad, out=self._buf(grad, 0))
        out = backend.array_module(param).multiply(param, wd, out=self._buf(grad, 0))
        if maximize:
            out -= grad
        else:
            out += grad
        return out

    # ---- (de)serialisation --------------------------------------------------------------------
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}`` as in
        PyTorch: parameters are referred to by their position across all groups."""
        mapping = {}
        start = 0
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def cast(param, value, key=None):
            if isinstance(value, Tensor):
                arr = value.array
                if key != "step" and param.is_floating_point() and arr.dtype.kind in "fcV":
                    arr = arr.astype(param.array.dtype)
                arr = backend.to_device(arr, param.device)
                out = Tensor._make(backend.array_module(arr).array(arr, copy=True))
                return out
            if isinstance(value, np.ndarray):
                return value.copy()
            if isinstance(value, dict):
                return {k: cast(param, v, k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(cast(param, v) for v in value)
            return value

        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = cast(param, v)
            else:
                state[k] = copy.deepcopy(v)
        new_groups = []
        for g, ng in zip(groups, saved_groups):
            ng["params"] = g["params"]
            if "param_names" in g and "param_names" not in ng:
                ng["param_names"] = g["param_names"]
            for name, default in self.defaults.items():   # options added since the save
                ng.setdefault(name, default)
            self._check_group(ng)
            new_groups.append(ng)
        self.state = state
        self.param_groups = new_groups

    # ---- printing ---------------------------------------------------------------------------
    def __repr__(self):
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for key in sorted(group):
                if key != "params":
                    s += f"\n    {key}: {group[key]}"
        return s + "\n)"

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._buffers = {}


def _zeros_like(param):
    return Tensor._make(backend.array_module(param).zeros_like(param))


def _full_like(param, value):
    return Tensor._make(backend.array_module(param).full_like(param, value))


def _bias_correction(beta, step):
    return 1 - beta ** step

