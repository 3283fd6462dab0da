"""PyTorch-style custom Functions: ``@staticmethod forward(ctx, ...)`` / ``backward(ctx, ...)``.

deepgrad's own ops subclass ``Function`` with *instance* methods on raw arrays (see function.py).
A subclass whose ``forward`` is a ``staticmethod`` (or that defines ``setup_context``) is a
PyTorch-style Function instead: ``Function.__init_subclass__`` gives it the ``apply`` below, which

* runs ``forward(ctx, *args, **kwargs)`` on Tensors with grad mode off (any non-Tensor arguments
  are passed through; their gradient must be ``None``), or, in the newer style,
  ``forward(*args)`` followed by ``setup_context(ctx, inputs, output)``;
* records one graph node, a ``BackwardCFunction`` that holds ``ctx`` and, in backward, calls
  ``backward(ctx, *grads)``, checks the number, shapes and dtypes of the gradients it returns
  (summing broadcast gradients down to the input's shape, as PyTorch does) and hands them to the
  engine.

``backward`` runs with grad mode on when the caller asked for ``create_graph=True``, so a backward
written with deepgrad ops is differentiable again; ``@once_differentiable`` marks one that is not.
``ctx`` is a ``FunctionCtx`` of its own, not the graph node, so any attribute name is free for
the user's bookkeeping.
"""
from __future__ import annotations

import functools
import inspect

from . import function as _fn
from .function import Function, _raise_freed, unpack_saved
from .grad_mode import _enabled, no_grad
from .. import backend


class FunctionCtx:
    """The ``ctx`` of a PyTorch-style Function: what forward leaves for backward."""

    def __init__(self):
        self._saved = ()
        self._freed = False
        self._dirty = ()
        self._non_differentiable = ()
        self.materialize_grads = True
        self.needs_input_grad = ()
        self.to_save = ()

    def save_for_backward(self, *tensors):
        """Keep Tensors (or ``None``) for backward; read them back with ``ctx.saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, _fn._Tensor):
                raise TypeError(f"save_for_backward can only save tensors, but argument "
                                f"{i} is of type {type(t).__name__}")
        self._saved = tuple(None if t is None else (t, t._version[0]) for t in tensors)
        self.to_save = tensors

    def save_for_forward(self, *tensors):
        self._saved_for_forward = tensors

    @property
    def saved_tensors(self):
        if self._freed:
            _raise_freed(self)
        return unpack_saved(self._saved, "a custom Function's save_for_backward")

    saved_variables = saved_tensors

    def mark_dirty(self, *tensors):
        """Declare input Tensors that forward modified in place (they must be returned as outputs)."""
        self._dirty = tensors

    def _finish_forward(self):
        """After forward: count the in-place write on each dirty tensor (as PyTorch does), then
        take the saved tensors' versions, so later in-place writes are caught in backward."""
        for t in self._dirty:
            t._version[0] += 1
        self._saved = tuple(None if item is None else (item[0], item[0]._version[0])
                            for item in self._saved)

    def mark_non_differentiable(self, *tensors):
        """Declare outputs that carry no gradient (integer indices, masks, ...)."""
        self._non_differentiable = tensors

    def set_materialize_grads(self, value: bool):
        """With ``True`` (the default) backward receives zeros, not ``None``, for outputs that got
        no gradient."""
        self.materialize_grads = bool(value)

    def name(self):
        return getattr(self, "_node_name", "FunctionCtx")


class BackwardCFunction(Function):
    """The graph node of one call of a PyTorch-style Function (``y.grad_fn``)."""

    # The engine frees a node by setting ``node.saved = None``: forward that to the ctx.
    @property
    def saved(self):
        return self.ctx._saved

    @saved.setter
    def saved(self, value):
        if value is None:
            self.ctx._saved = None
            self.ctx._freed = True

    @property
    def saved_tensors(self):
        return self.ctx.saved_tensors

    def name(self):
        return self._cls.__name__ + "Backward"

    def __getattr__(self, item):
        # PyTorch's grad_fn is the ctx itself; let ``y.grad_fn.<attr>`` read the user's attributes.
        ctx = self.__dict__.get("ctx")
        if ctx is None or item.startswith("__"):
            raise AttributeError(item)
        return getattr(ctx, item)

    def backward(self, *grads):
        ctx, cls = self.ctx, self._cls
        if ctx.materialize_grads:
            grads = tuple(_zeros(meta) if g is None and meta is not None else g
                          for g, meta in zip(grads, self._out_meta))
        user_backward = _user_backward(cls)
        result = user_backward(ctx, *grads)
        return self._check_grads(result)

    def _check_grads(self, result):
        if not isinstance(result, tuple):
            result = (result,)
        n = len(self.next_edges)
        if len(result) != n:
            if len(result) < n or any(g is not None for g in result[n:]):
                raise RuntimeError(f"function {self.name()} returned an incorrect number of gradients "
                                   f"(expected {n}, got {len(result)})")
            result = result[:n]
        out = []
        for i, (g, meta, needed) in enumerate(zip(result, self._in_meta, self.needs_input_grad)):
            if g is None:
                out.append(None)
                continue
            if meta is None:
                raise RuntimeError(f"function {self.name()} returned a gradient different than None at "
                                   f"position {i + 1}, but the corresponding forward input was not a Variable")
            if not isinstance(g, _fn._Tensor):
                raise TypeError(f"function {self.name()} returned a gradient of type {type(g).__name__} "
                                f"at position {i + 1}; expected a Tensor or None")
            if not needed:
                out.append(None)
                continue
            shape, dtype = meta
            if tuple(g.shape) != shape:
                if not _expandable(shape, tuple(g.shape)):
                    raise RuntimeError(f"Function {self.name()} returned an invalid gradient at index {i} - "
                                       f"got {list(g.shape)} but expected shape compatible with {list(shape)}")
                from ..ops.shape import sum_to
                g = sum_to(g, shape)
            if g.dtype != dtype:
                g = g.to(dtype)
            out.append(g)
        return tuple(out)


def _user_backward(cls):
    fn = cls.backward
    if getattr(fn, "__func__", fn) is Function.backward:  # never overridden: maybe a vjp
        vjp = cls.__dict__.get("vjp") or getattr(cls, "vjp", None)
        if vjp is None:
            raise NotImplementedError(
                "You must implement either the backward or vjp method for your custom "
                "autograd.Function to use it with backward mode AD.")
        return vjp
    return fn


def _expandable(shape, gshape):
    """True when ``shape`` broadcasts to ``gshape`` (the gradient can be summed down to it)."""
    if len(shape) > len(gshape):
        return False
    for s, gs in zip(reversed(shape), reversed(gshape)):
        if s != gs and s != 1:
            return False
    return True


def _zeros(meta):
    shape, dtype, xp = meta
    return _fn._Tensor._make(xp.zeros(shape, dtype=dtype))


def _has_setup_context(cls):
    sc = getattr(cls, "setup_context", None)
    return sc is not None and getattr(sc, "__func__", sc) is not _base_setup_context


def _base_setup_context(ctx, inputs, output):
    raise NotImplementedError("setup_context is not defined for this Function")


def _bound_args(cls, args, kwargs, with_ctx):
    """Positional arguments of ``forward`` with keywords and defaults filled in (PyTorch binds
    them this way, so ``setup_context`` sees every input)."""
    sig = cls.__dict__.get("_dg_forward_signature")
    if sig is None:
        sig = inspect.signature(cls.forward)
        type.__setattr__(cls, "_dg_forward_signature", sig)
    bound = sig.bind(None, *args, **kwargs) if with_ctx else sig.bind(*args, **kwargs)
    bound.apply_defaults()
    pos = bound.args[1:] if with_ctx else bound.args
    return tuple(pos), dict(bound.kwargs)


def _custom_apply(cls, *args, **kwargs):
    """``Function.apply`` of a PyTorch-style Function (see the module docstring)."""
    Tensor = _fn._Tensor
    setup = _has_setup_context(cls)
    if setup or kwargs:
        args, kwargs = _bound_args(cls, args, kwargs, with_ctx=not setup)
    grad_on = _enabled[0]
    needs = tuple(grad_on and isinstance(a, Tensor) and a.requires_grad for a in args)
    ctx = FunctionCtx()
    ctx.needs_input_grad = needs
    ctx._node_name = cls.__name__ + "Backward"
    with no_grad():
        if setup:
            out = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, out)
        else:
            out = cls.forward(ctx, *args, **kwargs)
    ctx._finish_forward()
    is_tuple = isinstance(out, tuple)
    outs = list(out) if is_tuple else [out]
    if _fn._anomaly[0] and not _fn._in_backward[0]:
        _fn._check_finite(cls.__name__, "forward", [o for o in outs if isinstance(o, Tensor)])
    if not any(needs):
        return out

    node = _fn._new(cls._backward_cls)
    node.ctx, node._cls = ctx, cls
    node.next_edges = [a._edge() if n else None for a, n in zip(args, needs)]
    node.needs_input_grad = list(needs)
    node._in_meta = [(tuple(a.shape), a.dtype) if isinstance(a, Tensor) else None for a in args]
    node._freed = False
    node._hooks = None
    node._record = True
    node._n_out = len(outs)
    node._out_meta = [(tuple(o.shape), o.dtype, backend.array_module(o.array)) if isinstance(o, Tensor)
                      else None for o in outs]

    dirty = {id(t) for t in ctx._dirty}
    for t in ctx._dirty:
        if t.grad_fn is None and t.requires_grad:
            raise RuntimeError("a leaf Variable that requires grad has been used in an in-place operation.")
    non_diff = {id(t) for t in ctx._non_differentiable}
    inputs = {id(a) for a in args if isinstance(a, Tensor)}
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            continue
        if id(o) in dirty:
            t = o                            # modified in place: the input itself moves onto this node
        elif id(o) in inputs or o.grad_fn is not None or o.requires_grad:
            t = Tensor._make(o.array)        # an input returned as is: an alias with its own history
            t._version = o._version
            t._isview = True
        else:
            t = o
        if id(o) in non_diff or o.array.dtype.kind not in "fcV":
            if t is o and id(o) in dirty:
                t.grad_fn, t.requires_grad = None, False
        else:
            t.grad_fn, t._out_nr, t.requires_grad = node, i, True
        outs[i] = t
    return tuple(outs) if is_tuple else outs[0]


def install(cls):
    """Make ``cls`` (a PyTorch-style subclass of Function) use the custom-Function ``apply``."""
    cls.apply = classmethod(_custom_apply)
    # Its nodes are of a class named after it, as in PyTorch (type(y.grad_fn).__name__).
    cls._backward_cls = type(cls.__name__ + "Backward", (BackwardCFunction,),
                             {"__module__": cls.__module__, "__qualname__": cls.__name__ + "Backward"})
    if "setup_context" not in cls.__dict__ and not _has_setup_context(cls):
        cls.setup_context = staticmethod(_base_setup_context)


class _DelayedError(Function):
    """Stands in for the graph of a ``@once_differentiable`` backward: differentiating it raises."""

    def forward(self, a, *others, msg=""):
        self.msg = msg
        return a

    def backward(self, g):
        raise RuntimeError(self.msg)


def once_differentiable(fn):
    """Decorator for a ``backward(ctx, *grads)`` that cannot itself be differentiated: it runs
    with grad mode off, and a later attempt to differentiate its result raises."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            outputs = fn(ctx, *args)
        if not _enabled[0]:
            return outputs
        grads_needing = [a for a in args if isinstance(a, _fn._Tensor) and a.requires_grad]
        if not grads_needing:
            return outputs
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        msg = "trying to differentiate twice a function that was marked with @once_differentiable"
        wrapped = tuple(_DelayedError.apply(o, *grads_needing, msg=msg) if isinstance(o, _fn._Tensor)
                        else o for o in outs)
        return wrapped[0] if single else wrapped
    return wrapper


class _VariableMeta(type):
    def __instancecheck__(cls, other):
        return isinstance(other, _fn._Tensor)


class Variable(metaclass=_VariableMeta):
    """Deprecated in PyTorch: ``Variable(t, requires_grad=...)`` is a Tensor."""

    def __new__(cls, data, requires_grad=False, volatile=False):
        from ..creation import tensor
        t = data.detach() if isinstance(data, _fn._Tensor) else tensor(data)
        if requires_grad:
            t.requires_grad_(True)
        return t
