"""``Tensor``: an array of its device's array module plus what autograd needs.

``t.array`` is the raw NumPy (or CuPy) array. ``t.data`` is, as in PyTorch, a Tensor sharing that
memory but detached from the graph. Every method below is a thin call into ``deepgrad.ops``, where
each op's forward and backward live side by side.
"""
from __future__ import annotations

import numbers

import weakref

import numpy as np

from . import backend
from .autograd import function as _function
from .autograd.function import run_backward
from .autograd.grad_mode import _enabled


class Tensor:
    __slots__ = ("array", "requires_grad", "grad", "grad_fn", "_out_nr", "_version", "_hooks",
                 "_retains_grad", "_isview", "__weakref__")

    # Let Tensor win over ndarray in mixed expressions (ndarray + Tensor -> Tensor.__radd__).
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        array = _to_array(data, dtype, device)
        self.array = array
        self.requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._out_nr = 0
        self._version = [0]
        self._hooks = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, array):
        """Wrap a raw array without copying or checking (the hot path of every op)."""
        t = object.__new__(cls)
        t.array = array
        t.requires_grad = False
        t.grad = None
        t.grad_fn = None
        t._out_nr = 0
        t._version = [0]
        t._hooks = None
        t._retains_grad = False
        return t

    def _edge(self):
        if self.grad_fn is not None:
            return (self.grad_fn, self._out_nr)
        return self if self.requires_grad else None

    # ---- basic properties -------------------------------------------------------------------
    @property
    def shape(self):
        return Size(self.array.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self.array.shape)
        return self.array.shape[_wrap_dim(dim, self.array.ndim, "size")]

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self):
        return self.array.ndim

    def dim(self):
        return self.array.ndim

    def numel(self):
        return int(self.array.size)

    def nelement(self):
        return int(self.array.size)

    def element_size(self):
        return self.array.itemsize

    @property
    def itemsize(self):
        return self.array.itemsize

    @property
    def nbytes(self):
        return self.array.nbytes

    # Pinned (page-locked) memory exists only with a GPU. deepgrad's DataLoader workers are threads,
    # which share every buffer already, so share_memory_() has nothing to move (PyTorch moves the
    # storage into shared memory for worker processes); is_shared() says what PyTorch would.
    def is_pinned(self, device=None):
        return self.device.type == "cpu" and backend.is_pinned(self.array)

    def pin_memory(self, device=None):
        """A copy in page-locked host memory (CuPy's pinned pool), from which ``.to("cuda",
        non_blocking=True)`` copies asynchronously; ``self`` if already pinned."""
        if self.device.type == "cuda":
            raise RuntimeError(f"cannot pin '{self.device}' memory: only dense CPU tensors can be pinned")
        if not backend.cuda_available():
            raise RuntimeError("Cannot access accelerator device when none is available.")
        if backend.is_pinned(self.array):
            return self
        return Tensor._make(backend.pin(self.array))

    def share_memory_(self):
        _shared_buffers[id(self.array)] = self.array
        return self

    def is_shared(self):
        return _shared_buffers.get(id(self.array)) is self.array

    @property
    def device(self):
        return backend.device_of(self.array)

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def is_cpu(self):
        return self.device.type == "cpu"

    @property
    def is_xpu(self):
        return False

    @property
    def is_mps(self):
        return False

    @property
    def is_meta(self):
        return False

    @property
    def _version_value(self):
        return self._version[0]

    @property
    def data(self):
        t = Tensor._make(self.array)
        t._version = self._version
        t._isview = True
        return t

    @data.setter
    def data(self, value):
        value = value.array if isinstance(value, Tensor) else _to_array(value, None, None)
        self.array = value

    def is_floating_point(self):
        return backend.is_floating(self.array.dtype)

    def __len__(self):
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self):
        if self.array.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.array.size} elements is ambiguous")
        return bool(self.array)

    def __float__(self):
        if self.array.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return float(self.item())

    def __int__(self):
        if self.array.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return int(self.item())

    def __format__(self, format_spec):
        # f"{loss:.4f}": a 0-d tensor formats as its Python number; others only with an empty spec.
        if self.array.ndim == 0:
            return self.item().__format__(format_spec)
        if format_spec:
            raise TypeError("unsupported format string passed to Tensor.__format__")
        return str(self)

    def __index__(self):
        if self.array.dtype.kind not in "iub" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.array)
        return a if dtype is None else a.astype(dtype)

    # ---- conversion ---------------------------------------------------------------------------
    def item(self):
        if self.array.size != 1:
            raise RuntimeError(f"item(): a Tensor with {self.array.size} elements cannot be converted to a Python scalar")
        v = self.array.reshape(()).item()
        return float(v) if self.array.dtype == backend.bfloat16 else v

    def numpy(self, *, force=False):
        if force:                       # PyTorch: detach, copy to the host, whatever the tensor is
            return backend.to_numpy(self.array)
        if self.device.type != "cpu":
            raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy "
                            "the tensor to host memory first.")
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on a Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self.array

    def tolist(self):
        return backend.to_numpy(self.array).tolist()

    def detach(self):
        t = Tensor._make(self.array)
        t._version = self._version
        t._isview = True
        return t

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self):
        from .ops.elementwise import clone
        return clone(self)

    def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False, memory_format=None):
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, (str, backend.device)) and (isinstance(a, backend.device) or a.split(":")[0] in ("cpu", "cuda")):
                device = a
            elif isinstance(a, str) and a not in backend._DTYPE_ALIASES:
                backend.device(a)       # neither a dtype nor a device: "unknown device", as PyTorch says
                dtype = a
            else:
                dtype = a
        from .ops.elementwise import to_dtype_device
        return to_dtype_device(self, None if dtype is None else backend.as_dtype(dtype), device, copy,
                               non_blocking=non_blocking)

    def type(self, dtype=None, non_blocking=False):
        """With no argument, PyTorch's type name ('torch.FloatTensor'); else a cast to ``dtype``
        (a dtype, a legacy type such as ``deepgrad.LongTensor`` or its name)."""
        from . import _legacy
        if dtype is None:
            return _legacy.type_name(self)
        return self.to(_legacy.dtype_of_type(dtype))

    def float(self):
        return self.to(backend.float32)

    def double(self):
        return self.to(backend.float64)

    def half(self):
        return self.to(backend.float16)

    def long(self):
        return self.to(backend.int64)

    def int(self):
        return self.to(backend.int32)

    def bool(self):
        return self.to(backend.bool_)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        if device is None:
            return self.to("cuda", non_blocking=non_blocking)
        return self.to(device if isinstance(device, (str, backend.device)) else f"cuda:{device}",
                       non_blocking=non_blocking)

    # ---- autograd -----------------------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.array.dtype.kind not in "fcV":   # V: bfloat16
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients (got {self.dtype})")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        if self.grad_fn is None:
            return
        if not self._retains_grad:
            self._retains_grad = True
            ref = self

            def _keep(g):
                ref.grad = g.detach() if ref.grad is None else ref.grad + g.detach()
            self.grad_fn.register_hook(self._out_nr, _keep)

    @property
    def retains_grad(self):
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            self.grad_fn.register_hook(self._out_nr, hook)
        else:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
        return _HookHandle(self, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.array.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; backward() on a tensor "
                    f"of shape {tuple(self.shape)} needs a gradient= argument of that shape")
            gradient = Tensor._make(backend.array_module(self.array).ones_like(self.array))
        else:
            gradient = gradient if isinstance(gradient, Tensor) else Tensor(gradient, dtype=self.dtype)
            if gradient.shape != self.shape:
                raise RuntimeError(f"backward: gradient has shape {tuple(gradient.shape)} but the tensor has shape {tuple(self.shape)}")
            if gradient.dtype != self.dtype:    # PyTorch casts grad_output to the output's dtype
                gradient = gradient.to(self.dtype)
        if retain_graph is None:
            retain_graph = create_graph
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        run_backward([self], [gradient], retain_graph=retain_graph, create_graph=create_graph,
                     inputs=inputs, accumulate=True, allow_unused=True)

    # ---- in-place helpers (no graph; they bump the version counter) -------------------------
    def _bump(self):
        self._version[0] += 1

    def _check_inplace(self, opname):
        if _enabled[0] and self.requires_grad and self.grad_fn is None:
            raise RuntimeError(f"{opname}: a leaf Variable that requires grad is being used in an in-place operation")

    def zero_(self):
        self._check_inplace("zero_")
        self.array[...] = 0
        self._bump()
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self.array[...] = value.item() if isinstance(value, Tensor) else value
        self._bump()
        return self

    def copy_(self, src):
        self._check_inplace("copy_")
        src = src.array if isinstance(src, Tensor) else src
        xp = backend.array_module(self.array)
        self.array[...] = xp.broadcast_to(backend.to_device(xp.asarray(src) if xp is np else src, self.device), self.array.shape)
        self._bump()
        return self

    def _inplace(self, opname, compute, alias=False):
        """Apply ``compute(self)`` in place. When autograd tracks it, ``compute`` runs on a copy
        of the old value (the op may save it for backward) and self is rebased onto the result's
        node, as PyTorch does; the version bump exposes older saves of self. ``alias=True``: the
        op never keeps its input for backward, so ``compute`` gets self's own array (no copy) and
        may write its result there (e.g. ``relu_``); a result that is self's array is not copied."""
        tracked = _enabled[0] and self.requires_grad
        if tracked and self.grad_fn is None:
            raise RuntimeError(f"{opname}: a leaf Variable that requires grad is being used in an in-place operation")
        old = self
        if tracked:
            old = Tensor._make(self.array if alias else self.array.copy())
            old.grad_fn, old._out_nr, old.requires_grad = self.grad_fn, self._out_nr, self.requires_grad
        result = compute(old)
        if result.shape != self.shape:
            raise RuntimeError(f"{opname}: output with shape {tuple(self.shape)} doesn't match the broadcast shape {tuple(result.shape)}")
        if not (alias and result.array is self.array):
            self.array[...] = result.array
        self._bump()
        if result.requires_grad:
            self.grad_fn, self._out_nr, self.requires_grad = result.grad_fn, result._out_nr, True
            if getattr(self.grad_fn, "save_output", False):
                outs = self.grad_fn._out_versions
                self.grad_fn._out_versions = tuple((self._version, self._version[0]) if i == self._out_nr else v
                                                   for i, v in enumerate(outs))
        return self

    def add_(self, other, alpha=1):
        return self._inplace("add_", lambda s: ops.add(s, other, alpha=alpha))

    def sub_(self, other, alpha=1):
        return self._inplace("sub_", lambda s: ops.sub(s, other, alpha=alpha))

    def mul_(self, other):
        return self._inplace("mul_", lambda s: s * other)

    def div_(self, other):
        return self._inplace("div_", lambda s: s / other)

    def clamp_(self, min=None, max=None):
        return self._inplace("clamp_", lambda s: s.clamp(min, max))

    def masked_fill_(self, mask, value):
        return self._inplace("masked_fill_", lambda s: s.masked_fill(mask, value))

    def uniform_(self, a=0.0, b=1.0, generator=None):
        from .random import rng
        return self._fill_random("uniform_", rng(generator).uniform(a, b, self.array.shape))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        from .random import rng
        return self._fill_random("normal_", rng(generator).normal(mean, std, self.array.shape))

    def bernoulli_(self, p=0.5, generator=None):
        from .random import rng
        p = backend.to_numpy(p.array) if isinstance(p, Tensor) else p
        return self._fill_random("bernoulli_", rng(generator).random(self.array.shape) < p)

    def _fill_random(self, opname, values):
        self._check_inplace(opname)
        self.array[...] = backend.to_device(values.astype(self.array.dtype, copy=False), self.device)
        self._bump()
        return self

    # ---- printing -----------------------------------------------------------------------------
    def __repr__(self):
        from ._config import PRINT_OPTIONS as po
        from ._format import format_values, add_suffixes
        a = backend.to_numpy(self.array)
        floating = backend.is_floating(a.dtype)
        shown = a.astype(np.float32) if a.dtype == backend.bfloat16 else a
        prefix, suffixes = "tensor(", []
        if self.device.type != "cpu":
            suffixes.append(f"device='{self.device}'")
        if a.size == 0:
            if a.ndim != 1:
                suffixes.append(f"size={tuple(a.shape)}")
            if a.dtype != backend.get_default_dtype():
                suffixes.append(f"dtype=deepgrad.{a.dtype}")
        else:
            if not po["edgeitems"]:
                suffixes.append(f"size={tuple(a.shape)}")
            if a.dtype not in (backend.get_default_dtype(), np.int64, np.bool_):
                suffixes.append(f"dtype=deepgrad.{a.dtype}")
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            suffixes.append("requires_grad=True")
        return add_suffixes(prefix + format_values(shown, floating, len(prefix)), suffixes, len(prefix))

    __str__ = __repr__

    # ---- arithmetic operators -----------------------------------------------------------------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __floordiv__(self, other):
        return ops.floor_divide(self, other)

    def __mod__(self, other):
        return ops.remainder(self, other)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # comparisons and logic: no gradient
    def __eq__(self, other):
        return ops.eq(self, other)

    def __ne__(self, other):
        return ops.ne(self, other)

    def __lt__(self, other):
        return ops.lt(self, other)

    def __le__(self, other):
        return ops.le(self, other)

    def __gt__(self, other):
        return ops.gt(self, other)

    def __ge__(self, other):
        return ops.ge(self, other)

    def __and__(self, other):
        return ops.logical_and(self, other) if self.dtype == np.bool_ else ops.bitwise_and(self, other)

    def __or__(self, other):
        return ops.logical_or(self, other) if self.dtype == np.bool_ else ops.bitwise_or(self, other)

    def __xor__(self, other):
        return ops.logical_xor(self, other) if self.dtype == np.bool_ else ops.bitwise_xor(self, other)

    def __invert__(self):
        return ops.logical_not(self) if self.dtype == np.bool_ else ops.bitwise_not(self)

    def __rand__(self, other):
        return self.__and__(other)

    def __ror__(self, other):
        return self.__or__(other)

    def __rxor__(self, other):
        return self.__xor__(other)

    def __lshift__(self, other):
        return ops.bitwise_left_shift(self, other)

    def __rshift__(self, other):
        return ops.bitwise_right_shift(self, other)

    def __rfloordiv__(self, other):
        return ops.floor_divide(other, self)

    def __rmod__(self, other):
        return ops.remainder(other, self)

    def __ifloordiv__(self, other):
        return self.floor_divide_(other)

    def __imod__(self, other):
        return self.remainder_(other)

    def __ipow__(self, other):
        return self.pow_(other)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def __setitem__(self, index, value):
        ops.setitem(self, index, value)

    # ---- methods (each a one-line call into deepgrad.ops) -------------------------------------
    def add(self, other, alpha=1): return ops.add(self, other, alpha=alpha)
    def sub(self, other, alpha=1): return ops.sub(self, other, alpha=alpha)
    def mul(self, other): return ops.mul(self, other)
    def div(self, other): return ops.div(self, other)
    def pow(self, exponent): return ops.pow(self, exponent)
    def neg(self): return ops.neg(self)
    def abs(self): return ops.abs(self)
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def log1p(self): return ops.log1p(self)
    def expm1(self): return ops.expm1(self)
    def sqrt(self): return ops.sqrt(self)
    def rsqrt(self): return ops.rsqrt(self)
    def square(self): return ops.square(self)
    def sin(self): return ops.sin(self)
    def cos(self): return ops.cos(self)
    def tanh(self): return ops.tanh(self)
    def sigmoid(self): return ops.sigmoid(self)
    def relu(self): return ops.relu(self)
    def relu_(self): return ops.elementwise.relu_(self)   # float32/64: no copy of self (see there)
    def sign(self): return ops.sign(self)
    def reciprocal(self): return ops.reciprocal(self)
    def floor(self): return ops.floor(self)
    def ceil(self): return ops.ceil(self)
    def round(self): return ops.round(self)
    def clamp(self, min=None, max=None): return ops.clamp(self, min, max)
    clip = clamp
    def maximum(self, other): return ops.maximum(self, other)
    def minimum(self, other): return ops.minimum(self, other)
    def isnan(self): return ops.isnan(self)
    def isinf(self): return ops.isinf(self)
    def isfinite(self): return ops.isfinite(self)
    def eq(self, other): return ops.eq(self, other)
    def ne(self, other): return ops.ne(self, other)
    def lt(self, other): return ops.lt(self, other)
    def le(self, other): return ops.le(self, other)
    def gt(self, other): return ops.gt(self, other)
    def ge(self, other): return ops.ge(self, other)
    def logical_not(self): return ops.logical_not(self)
    def logical_and(self, other): return ops.logical_and(self, other)
    def logical_or(self, other): return ops.logical_or(self, other)
    def sum(self, dim=None, keepdim=False, dtype=None): return ops.sum(self, dim, keepdim, dtype=dtype)
    def mean(self, dim=None, keepdim=False, dtype=None): return ops.mean(self, dim, keepdim, dtype=dtype)
    def var(self, dim=None, unbiased=None, keepdim=False, correction=None): return ops.var(self, dim, unbiased, keepdim, correction=correction)
    def std(self, dim=None, unbiased=None, keepdim=False, correction=None): return ops.std(self, dim, unbiased, keepdim, correction=correction)
    def max(self, dim=None, keepdim=False): return ops.max(self, dim, keepdim)
    def min(self, dim=None, keepdim=False): return ops.min(self, dim, keepdim)
    def amax(self, dim=None, keepdim=False): return ops.amax(self, dim, keepdim)
    def amin(self, dim=None, keepdim=False): return ops.amin(self, dim, keepdim)
    def argmax(self, dim=None, keepdim=False): return ops.argmax(self, dim, keepdim)
    def argmin(self, dim=None, keepdim=False): return ops.argmin(self, dim, keepdim)
    def logsumexp(self, dim, keepdim=False): return ops.logsumexp(self, dim, keepdim)
    def softmax(self, dim): return ops.softmax(self, dim)
    def log_softmax(self, dim): return ops.log_softmax(self, dim)
    def prod(self, dim=None, keepdim=False): return ops.prod(self, dim, keepdim)
    def cumsum(self, dim): return ops.cumsum(self, dim)
    def norm(self, p="fro", dim=None, keepdim=False): return ops.norm(self, p, dim, keepdim)
    def all(self, dim=None, keepdim=False): return ops.all(self, dim, keepdim)
    def any(self, dim=None, keepdim=False): return ops.any(self, dim, keepdim)
    def matmul(self, other): return ops.matmul(self, other)
    def mm(self, other): return ops.mm(self, other)
    def bmm(self, other): return ops.bmm(self, other)
    def dot(self, other): return ops.dot(self, other)
    def outer(self, other): return ops.outer(self, other)
    def reshape(self, *shape): return ops.reshape(self, *shape)
    def view(self, *shape): return ops.view(self, *shape)
    def view_as(self, other): return ops.view(self, other.shape)
    def reshape_as(self, other): return ops.reshape(self, other.shape)
    def flatten(self, start_dim=0, end_dim=-1): return ops.flatten(self, start_dim, end_dim)
    def unflatten(self, dim, sizes): return ops.unflatten(self, dim, sizes)
    def transpose(self, dim0, dim1): return ops.transpose(self, dim0, dim1)
    def swapaxes(self, dim0, dim1): return ops.transpose(self, dim0, dim1)
    def permute(self, *dims): return ops.permute(self, *dims)
    def t(self): return ops.t(self)
    @property
    def T(self): return ops.permute(self, *reversed(range(self.ndim)))
    @property
    def mT(self): return ops.transpose(self, -2, -1)
    def squeeze(self, dim=None): return ops.squeeze(self, dim)
    def unsqueeze(self, dim): return ops.unsqueeze(self, dim)
    def expand(self, *sizes): return ops.expand(self, *sizes)
    def expand_as(self, other): return ops.expand(self, *other.shape)
    def broadcast_to(self, shape): return ops.broadcast_to(self, shape)
    def repeat(self, *sizes): return ops.repeat(self, *sizes)
    def split(self, split_size_or_sections, dim=0): return ops.split(self, split_size_or_sections, dim)
    def chunk(self, chunks, dim=0): return ops.chunk(self, chunks, dim)
    def unbind(self, dim=0): return ops.unbind(self, dim)
    def flip(self, dims): return ops.flip(self, dims)
    def roll(self, shifts, dims=None): return ops.roll(self, shifts, dims)
    def tril(self, diagonal=0): return ops.tril(self, diagonal)
    def triu(self, diagonal=0): return ops.triu(self, diagonal)
    def gather(self, dim, index): return ops.gather(self, dim, index)
    def scatter(self, dim, index, src=None, value=None): return ops.scatter(self, dim, index, src, value=value)
    def scatter_add(self, dim, index, src): return ops.scatter_add(self, dim, index, src)
    def index_select(self, dim, index): return ops.index_select(self, dim, index)
    def masked_fill(self, mask, value): return ops.masked_fill(self, mask, value)
    def where(self, condition, other): return ops.where(condition, self, other)
    def contiguous(self, memory_format=None): return self if self.array.flags.c_contiguous else ops.clone(self)
    def is_contiguous(self): return bool(self.array.flags.c_contiguous)
    def nonzero(self, *, as_tuple=False): return ops.nonzero(self, as_tuple=as_tuple)
    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None): return ops.unique(self, sorted, return_inverse, return_counts, dim)
    def sort(self, dim=-1, descending=False): return ops.sort(self, dim, descending)
    def argsort(self, dim=-1, descending=False): return ops.argsort(self, dim, descending)
    def topk(self, k, dim=-1, largest=True, sorted=True): return ops.topk(self, k, dim, largest, sorted)
    # linear algebra (deepgrad.linalg and the diagonal/product ops of ops/linalg.py)
    def inverse(self): return _linalg().inv(self)
    def det(self): return _linalg().det(self)
    def logdet(self): return _linalg().logdet(self)
    def slogdet(self): return _linalg().TOP_LEVEL["slogdet"](self)
    def pinverse(self, rcond=1e-15): return _linalg().pinv(self, rtol=rcond)
    def cholesky(self, upper=False): return _linalg().cholesky(self, upper=upper)
    def cholesky_solve(self, input2, upper=False): return _linalg().TOP_LEVEL["cholesky_solve"](self, input2, upper)
    def cholesky_inverse(self, upper=False): return _linalg().TOP_LEVEL["cholesky_inverse"](self, upper)
    def svd(self, some=True, compute_uv=True): return _linalg().TOP_LEVEL["svd"](self, some, compute_uv)
    def qr(self, some=True): return _linalg().TOP_LEVEL["qr"](self, some)
    def matrix_power(self, n): return _linalg().matrix_power(self, n)
    def cross(self, other, dim=None): return _linalg().TOP_LEVEL["cross"](self, other, dim)
    def diag(self, diagonal=0): return ops.diag(self, diagonal)
    def diag_embed(self, offset=0, dim1=-2, dim2=-1): return ops.diag_embed(self, offset, dim1, dim2)
    def diagflat(self, offset=0): return ops.diagflat(self, offset)
    def diagonal(self, offset=0, dim1=0, dim2=1): return ops.diagonal(self, offset, dim1, dim2)
    def trace(self): return ops.trace(self)
    def mv(self, vec): return ops.mv(self, vec)
    def ger(self, vec2): return ops.outer(self, vec2)
    def addmm(self, mat1, mat2, *, beta=1, alpha=1): return ops.addmm(self, mat1, mat2, beta=beta, alpha=alpha)
    def addmv(self, mat, vec, *, beta=1, alpha=1): return ops.addmv(self, mat, vec, beta=beta, alpha=alpha)
    def addbmm(self, batch1, batch2, *, beta=1, alpha=1): return ops.addbmm(self, batch1, batch2, beta=beta, alpha=alpha)
    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1): return ops.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)
    def addr(self, vec1, vec2, *, beta=1, alpha=1): return ops.addr(self, vec1, vec2, beta=beta, alpha=alpha)
    def dist(self, other, p=2): return ops.dist(self, other, p)

    # ---- new_* factories (dtype and device of self unless given) -------------------------------
    def _new(self, array, dtype, device, requires_grad):
        from .creation import _finish
        dt = self.array.dtype if dtype is None else backend.as_dtype(dtype)
        return _finish(array.astype(dt, copy=False), dt, self.device if device is None else device, requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new(np.zeros(_shape_of(size)), dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new(np.ones(_shape_of(size)), dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new(np.empty(_shape_of(size), dtype=self.array.dtype if dtype is None else backend.as_dtype(dtype)),
                         dtype, device, requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        dt = self.array.dtype if dtype is None else backend.as_dtype(dtype)
        return self._new(np.full(_shape_of((size,)), fill_value).astype(dt), dtype, device, requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        data = backend.to_numpy(data.array) if isinstance(data, Tensor) else np.asarray(data)
        return self._new(np.array(data, copy=True), dtype, device, requires_grad)

    # ---- more ops (each a one-line call into deepgrad.ops) ------------------------------------
    def narrow(self, dim, start, length): return ops.narrow(self, dim, start, length)
    def scatter_(self, dim, index, src=None, value=None, *, reduce=None): return ops.index.scatter_(self, dim, index, src, value, reduce=reduce)
    def scatter_add_(self, dim, index, src): return ops.index.scatter_add_(self, dim, index, src)
    def index_add(self, dim, index, source, *, alpha=1): return ops.index_add(self, dim, index, source, alpha=alpha)
    def index_add_(self, dim, index, source, *, alpha=1): return ops.index.index_add_(self, dim, index, source, alpha=alpha)
    def index_fill(self, dim, index, value): return ops.index_fill(self, dim, index, value)
    def index_fill_(self, dim, index, value): return ops.index.index_fill_(self, dim, index, value)
    def index_copy(self, dim, index, source): return ops.index_copy(self, dim, index, source)
    def index_copy_(self, dim, index, source): return ops.index.index_copy_(self, dim, index, source)
    def masked_scatter(self, mask, source): return ops.masked_scatter(self, mask, source)
    def masked_scatter_(self, mask, source): return ops.index.masked_scatter_(self, mask, source)
    def masked_select(self, mask): return ops.masked_select(self, mask)
    def argwhere(self): return ops.argwhere(self)
    def count_nonzero(self, dim=None): return ops.count_nonzero(self, dim)
    def repeat_interleave(self, repeats, dim=None, *, output_size=None): return ops.repeat_interleave(self, repeats, dim, output_size=output_size)
    def erf(self): return ops.erf(self)
    def erfc(self): return ops.erfc(self)
    def erfinv(self): return ops.erfinv(self)
    def log2(self): return ops.log2(self)
    def log10(self): return ops.log10(self)
    def frac(self): return ops.frac(self)
    def atan2(self, other): return ops.atan2(self, other)
    arctan2 = atan2
    def lerp(self, end, weight): return ops.lerp(self, end, weight)
    def addcmul(self, tensor1, tensor2, *, value=1): return ops.addcmul(self, tensor1, tensor2, value=value)
    def addcdiv(self, tensor1, tensor2, *, value=1): return ops.addcdiv(self, tensor1, tensor2, value=value)
    def lerp_(self, end, weight): return self._inplace("lerp_", lambda s: ops.lerp(s, end, weight))
    def addcmul_(self, tensor1, tensor2, *, value=1): return self._inplace("addcmul_", lambda s: ops.addcmul(s, tensor1, tensor2, value=value))
    def addcdiv_(self, tensor1, tensor2, *, value=1): return self._inplace("addcdiv_", lambda s: ops.addcdiv(s, tensor1, tensor2, value=value))
    def nan_to_num(self, nan=0.0, posinf=None, neginf=None): return ops.nan_to_num(self, nan, posinf, neginf)
    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None): return self._inplace("nan_to_num_", lambda s: ops.nan_to_num(s, nan, posinf, neginf))
    def cumprod(self, dim, dtype=None): return ops.cumprod(self, dim, dtype=dtype)
    def cummax(self, dim): return ops.cummax(self, dim)
    def cummin(self, dim): return ops.cummin(self, dim)
    def diff(self, n=1, dim=-1, prepend=None, append=None): return ops.diff(self, n, dim, prepend, append)
    def median(self, dim=None, keepdim=False): return ops.median(self, dim, keepdim)
    def nanmedian(self, dim=None, keepdim=False): return ops.nanmedian(self, dim, keepdim)
    def kthvalue(self, k, dim=-1, keepdim=False): return ops.kthvalue(self, k, dim, keepdim)
    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"): return ops.quantile(self, q, dim, keepdim, interpolation=interpolation)
    def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"): return ops.nanquantile(self, q, dim, keepdim, interpolation=interpolation)
    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None): return ops.unique_consecutive(self, return_inverse, return_counts, dim)
    def bincount(self, weights=None, minlength=0): return ops.bincount(self, weights, minlength)
    def histc(self, bins=100, min=0, max=0): return ops.histc(self, bins, min, max)

    # ---- the rest of PyTorch's everyday surface (issue 9); in-place `_` forms are generated below
    def tan(self): return ops.tan(self)
    def asin(self): return ops.asin(self)
    def acos(self): return ops.acos(self)
    def atan(self): return ops.atan(self)
    def sinh(self): return ops.sinh(self)
    def cosh(self): return ops.cosh(self)
    def asinh(self): return ops.asinh(self)
    def acosh(self): return ops.acosh(self)
    def atanh(self): return ops.atanh(self)
    arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh
    def exp2(self): return ops.exp2(self)
    def sinc(self): return ops.sinc(self)
    def deg2rad(self): return ops.deg2rad(self)
    def rad2deg(self): return ops.rad2deg(self)
    def lgamma(self): return ops.lgamma(self)
    def digamma(self): return ops.digamma(self)
    def polygamma(self, n): return ops.polygamma(n, self)
    def mvlgamma(self, p): return ops.mvlgamma(self, p)
    def logit(self, eps=None): return ops.logit(self, eps)
    def sgn(self): return ops.sgn(self)
    def trunc(self): return ops.trunc(self)
    fix = trunc
    def absolute(self): return ops.abs(self)
    def negative(self): return ops.neg(self)
    def positive(self): return ops.positive(self)
    def copysign(self, other): return ops.copysign(self, other)
    def hypot(self, other): return ops.hypot(self, other)
    def logaddexp(self, other): return ops.logaddexp(self, other)
    def logaddexp2(self, other): return ops.logaddexp2(self, other)
    def xlogy(self, other): return ops.xlogy(self, other)
    def remainder(self, other): return ops.remainder(self, other)
    def fmod(self, other): return ops.fmod(self, other)
    def floor_divide(self, other): return ops.floor_divide(self, other)
    def divide(self, other, *, rounding_mode=None): return ops.div(self, other, rounding_mode=rounding_mode)
    def true_divide(self, other): return ops.div(self, other)
    def multiply(self, other): return ops.mul(self, other)
    def subtract(self, other, *, alpha=1): return ops.sub(self, other, alpha=alpha)
    def float_power(self, exponent): return ops.float_power(self, exponent)
    def ldexp(self, other): return ops.ldexp(self, other)
    def fmax(self, other): return ops.fmax(self, other)
    def fmin(self, other): return ops.fmin(self, other)
    def clamp_min(self, min): return ops.clamp_min(self, min)
    def clamp_max(self, max): return ops.clamp_max(self, max)
    def heaviside(self, values): return ops.heaviside(self, values)
    def signbit(self): return ops.signbit(self)
    def isposinf(self): return ops.isposinf(self)
    def isneginf(self): return ops.isneginf(self)
    def isreal(self): return ops.isreal(self)
    def frexp(self): return ops.frexp(self)
    def nextafter(self, other): return ops.nextafter(self, other)
    def bitwise_and(self, other): return ops.bitwise_and(self, other)
    def bitwise_or(self, other): return ops.bitwise_or(self, other)
    def bitwise_xor(self, other): return ops.bitwise_xor(self, other)
    def bitwise_not(self): return ops.bitwise_not(self)
    def bitwise_left_shift(self, other): return ops.bitwise_left_shift(self, other)
    def bitwise_right_shift(self, other): return ops.bitwise_right_shift(self, other)
    def gcd(self, other): return ops.gcd(self, other)
    def lcm(self, other): return ops.lcm(self, other)
    def logical_xor(self, other): return ops.logical_xor(self, other)
    def greater(self, other): return ops.gt(self, other)
    def greater_equal(self, other): return ops.ge(self, other)
    def less(self, other): return ops.lt(self, other)
    def less_equal(self, other): return ops.le(self, other)
    def not_equal(self, other): return ops.ne(self, other)
    def equal(self, other): return ops.equal(self, other)
    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False): return ops.allclose(self, other, rtol, atol, equal_nan)
    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False): return ops.isclose(self, other, rtol, atol, equal_nan)
    def is_nonzero(self): return ops.is_nonzero(self)
    def is_same_size(self, other): return ops.is_same_size(self, other)
    def is_signed(self): return ops.is_signed(self)
    def is_complex(self): return False
    def is_inference(self): return False
    def get_device(self): return self.device.index if self.device.type == "cuda" and self.device.index is not None else (0 if self.device.type == "cuda" else -1)
    def type_as(self, other): return self.to(other.dtype)
    def ndimension(self): return self.array.ndim
    def byte(self): return self.to(backend.uint8)
    def char(self): return self.to(backend.int8)
    def short(self): return self.to(backend.int16)
    def bfloat16(self): return self.to(backend.bfloat16)
    @property
    def real(self): return ops.real(self)
    @property
    def imag(self): return ops.imag(self)
    @property
    def H(self):
        if self.ndim not in (0, 2):
            raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {self.ndim}-D tensor.")
        return ops.t(self)
    @property
    def mH(self):
        if self.ndim < 2:
            raise RuntimeError(f"tensor.mH is only supported on matrices or batches of matrices. Got {self.ndim}-D tensor.")
        return ops.transpose(self, -2, -1)
    def adjoint(self):
        if self.ndim < 2:
            raise RuntimeError(f"tensor.adjoint() is only supported on matrices or batches of matrices. Got {self.ndim}-D tensor.")
        return ops.transpose(self, -2, -1)
    def stride(self, dim=None):
        st = tuple(s // self.array.itemsize for s in self.array.strides)
        return st if dim is None else st[_wrap_dim(dim, self.array.ndim, "stride")]
    def storage_offset(self):
        a, base = self.array, self.array
        while getattr(base, "base", None) is not None and hasattr(base.base, "__array_interface__"):
            base = base.base
        if base is a or not hasattr(a, "__array_interface__"):
            return 0
        return (a.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // a.itemsize
    def data_ptr(self):
        a = self.array
        return a.__array_interface__["data"][0] if hasattr(a, "__array_interface__") else int(a.data.ptr)
    def tile(self, *dims): return ops.tile(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)
    def movedim(self, source, destination): return ops.movedim(self, source, destination)
    moveaxis = movedim
    def swapdims(self, dim0, dim1): return ops.transpose(self, dim0, dim1)
    def take(self, index): return ops.take(self, index)
    def take_along_dim(self, indices, dim=None): return ops.take_along_dim(self, indices, dim)
    def tensor_split(self, indices_or_sections, dim=0): return ops.tensor_split(self, indices_or_sections, dim)
    def hsplit(self, sections): return ops.hsplit(self, sections)
    def vsplit(self, sections): return ops.vsplit(self, sections)
    def dsplit(self, sections): return ops.dsplit(self, sections)
    def split_with_sizes(self, split_sizes, dim=0): return ops.split_with_sizes(self, split_sizes, dim)
    def rot90(self, k=1, dims=(0, 1)): return ops.rot90(self, k, dims)
    def fliplr(self): return ops.fliplr(self)
    def flipud(self): return ops.flipud(self)
    def kron(self, other): return ops.kron(self, other)
    def inner(self, other): return ops.inner(self, other)
    def vdot(self, other): return ops.vdot(self, other)
    def select(self, dim, index): return ops.select(self, dim, index)
    def select_scatter(self, src, dim, index): return ops.select_scatter(self, src, dim, index)
    def slice_scatter(self, src, dim=0, start=None, end=None, step=1): return ops.slice_scatter(self, src, dim, start, end, step)
    def diagonal_scatter(self, src, offset=0, dim1=0, dim2=1): return ops.diagonal_scatter(self, src, offset, dim1, dim2)
    def index_put(self, indices, values, accumulate=False): return ops.index_put(self, indices, values, accumulate)
    def index_put_(self, indices, values, accumulate=False): return self._inplace("index_put_", lambda s: ops.index_put(s, indices, values, accumulate))
    def put(self, index, source, accumulate=False): return ops.put(self, index, source, accumulate)
    def put_(self, index, source, accumulate=False): return self._inplace("put_", lambda s: ops.put(s, index, source, accumulate))
    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True): return ops.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)
    def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True): return self._inplace("scatter_reduce_", lambda s: ops.scatter_reduce(s, dim, index, src, reduce, include_self=include_self))
    def sum_to_size(self, *size): return ops.sum_to_size(self, *size)
    def ravel(self): return ops.ravel(self)
    def unfold(self, dimension, size, step): return ops.tensor_unfold(self, dimension, size, step)
    def nansum(self, dim=None, keepdim=False, *, dtype=None): return ops.nansum(self, dim, keepdim, dtype=dtype)
    def nanmean(self, dim=None, keepdim=False, *, dtype=None): return ops.nanmean(self, dim, keepdim, dtype=dtype)
    def logcumsumexp(self, dim): return ops.logcumsumexp(self, dim)
    def aminmax(self, *, dim=None, keepdim=False): return ops.aminmax(self, dim=dim, keepdim=keepdim)
    def mode(self, dim=-1, keepdim=False): return ops.mode(self, dim, keepdim)
    def msort(self): return ops.msort(self)
    def cov(self, *, correction=1, fweights=None, aweights=None): return ops.cov(self, correction=correction, fweights=fweights, aweights=aweights)
    def corrcoef(self): return ops.corrcoef(self)
    def nonzero_static(self, *, size, fill_value=-1): return ops.nonzero_static(self, size=size, fill_value=fill_value)
    def multinomial(self, num_samples, replacement=False, *, generator=None): return _creation().multinomial(self, num_samples, replacement, generator=generator)
    def bernoulli(self, p=None, *, generator=None): return _creation().bernoulli(self, p, generator=generator)
    def fill_diagonal_(self, fill_value, wrap=False):
        return self._inplace("fill_diagonal_", lambda s: ops.where(Tensor._make(_diagonal_mask(s.shape, wrap)), fill_value, s).to(s.dtype))

    # random fills (deepgrad's generator; no graph)
    def random_(self, from_=0, to=None, *, generator=None):
        from .random import rng
        if to is None:
            if from_ != 0 and to is None:
                from_, to = 0, from_
            else:
                kind = self.array.dtype
                to = (2 ** (np.finfo(kind).nmant + 1) if kind.kind == "f" else
                      (2 if kind.kind == "b" else int(np.iinfo(kind).max) + 1))
        return self._fill_random("random_", rng(generator).integers(from_, to, self.array.shape))
    def exponential_(self, lambd=1.0, *, generator=None):
        from .random import rng
        return self._fill_random("exponential_", rng(generator).exponential(1.0 / lambd, self.array.shape))
    def geometric_(self, p, *, generator=None):
        from .random import rng
        return self._fill_random("geometric_", rng(generator).geometric(p, self.array.shape))
    def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
        from .random import rng
        return self._fill_random("log_normal_", rng(generator).lognormal(mean, std, self.array.shape))
    def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
        from .random import rng
        return self._fill_random("cauchy_", median + sigma * rng(generator).standard_cauchy(self.array.shape))

    # in-place shape changes: self becomes the view (its node, when autograd tracks it)
    def _inplace_view(self, opname, fn):
        self._check_inplace(opname)
        r = fn(self)
        self.array = r.array
        if r.grad_fn is not None:
            self.grad_fn, self._out_nr = r.grad_fn, r._out_nr
        return self
    def unsqueeze_(self, dim): return self._inplace_view("unsqueeze_", lambda s: ops.unsqueeze(s, dim))
    def squeeze_(self, dim=None): return self._inplace_view("squeeze_", lambda s: ops.squeeze(s, dim))
    def t_(self): return self._inplace_view("t_", lambda s: ops.t(s))
    def transpose_(self, dim0, dim1): return self._inplace_view("transpose_", lambda s: ops.transpose(s, dim0, dim1))
    swapdims_ = swapaxes_ = transpose_
    def renorm(self, p, dim, maxnorm): return _toplevel().renorm(self, p, dim, maxnorm)
    def renorm_(self, p, dim, maxnorm): return self._inplace("renorm_", lambda s: _toplevel().renorm(s, p, dim, maxnorm))
    def hardshrink(self, lambd=0.5): return _toplevel().hardshrink(self, lambd)
    def prelu(self, weight): return ops.prelu(self, weight)
    def unsafe_chunk(self, chunks, dim=0): return ops.chunk(self, chunks, dim)
    def unsafe_split(self, split_size, dim=0): return ops.split(self, split_size, dim)
    def unsafe_split_with_sizes(self, split_sizes, dim=0): return ops.split_with_sizes(self, split_sizes, dim)
    def is_distributed(self): return False
    @property
    def output_nr(self): return self._out_nr
    @property
    def layout(self): return _toplevel().strided
    def new(self, *args, device=None):
        """Legacy ``x.new(...)``: ``new(2, 3)`` an uninitialised tensor of that shape, ``new(data)``
        a tensor of that data, ``new()`` an empty one; dtype and device of self."""
        if not args:
            return self.new_empty(0, device=device)
        if len(args) == 1 and not isinstance(args[0], int) and not isinstance(args[0], Size):
            return self.new_tensor(args[0], device=device)
        return self.new_empty(*args, device=device)
    def narrow_copy(self, dim, start, length): return ops.narrow(self, dim, start, length).clone()
    def apply_(self, callable):
        """Apply a Python function to each element in place (CPU, no gradient; slow, as in PyTorch)."""
        if self.requires_grad:
            raise RuntimeError("apply_ is only implemented for tensors that do not require grad")
        if self.device.type != "cpu":
            raise TypeError("apply_ is only implemented on CPU tensors")
        flat = self.array.reshape(-1)
        for i in range(flat.size):
            flat[i] = callable(flat[i].item())
        if not np.shares_memory(flat, self.array):
            self.array[...] = flat.reshape(self.array.shape)
        self._bump()
        return self
    def map_(self, tensor, callable):
        """``self[i] = callable(self[i], tensor[i])`` in place, ``tensor`` broadcast to self (CPU, no gradient)."""
        if self.requires_grad:
            raise RuntimeError("map_ is only implemented for tensors that do not require grad")
        if self.device.type != "cpu":
            raise TypeError("map_ is only implemented on CPU tensors")
        other = np.broadcast_to(tensor.array if isinstance(tensor, Tensor) else np.asarray(tensor), self.array.shape)
        out = np.empty_like(self.array)
        for idx in np.ndindex(*self.array.shape):
            out[idx] = callable(self.array[idx].item(), other[idx].item())
        self.array[...] = out
        self._bump()
        return self
    def resize_(self, *sizes, memory_format=None):
        """Give the tensor shape ``sizes`` in place, keeping its first elements (new ones uninitialised)."""
        if self.requires_grad:
            raise RuntimeError("cannot resize variables that require grad")
        shape = _shape_of(sizes)
        n = int(np.prod(shape))
        if n == self.array.size:
            self.array = self.array.reshape(shape)
        else:
            xp = backend.array_module(self.array)
            new = xp.empty(n, dtype=self.array.dtype)
            k = min(n, self.array.size)
            new[:k] = self.array.reshape(-1)[:k]
            self.array = new.reshape(shape)
        self._bump()
        return self
    def resize_as_(self, other, memory_format=None): return self.resize_(*other.shape)
    # layout and kind predicates answer as PyTorch does for a dense, real, strided tensor
    is_sparse = is_sparse_csr = is_quantized = is_nested = is_mkldnn = False
    is_xla = is_ipu = is_mtia = is_maia = is_vulkan = False
    def is_conj(self): return False
    def is_neg(self): return False
    def conj(self): return self
    def resolve_conj(self): return self
    def resolve_neg(self): return self
    def conj_physical(self): return ops.clone(self)
    def to_dense(self, dtype=None, *, masked_grad=None): return self if dtype is None else self.to(dtype)
    def dense_dim(self): return self.array.ndim
    def sparse_dim(self): return 0
    def is_set_to(self, tensor): return self.array is tensor.array or (
        self.array.__array_interface__ == tensor.array.__array_interface__ if hasattr(self.array, "__array_interface__") else False)
    def as_subclass(self, cls):
        raise NotImplementedError("Tensor.as_subclass is not implemented in deepgrad; subclass deepgrad.Tensor "
                                  "and wrap with Tensor._make-style construction instead")


_shared_buffers = weakref.WeakValueDictionary()   # arrays marked by share_memory_() (see is_shared)


def _linalg():
    from . import linalg
    return linalg


class Size(tuple):
    """A shape, printed the way PyTorch prints one."""

    def __repr__(self):
        return f"deepgrad.Size({list(self)})"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


class _HookHandle:
    def __init__(self, tensor, hook):
        self._tensor, self._hook = tensor, hook

    def remove(self):
        t = self._tensor
        if t.grad_fn is not None and t.grad_fn._hooks:
            lst = t.grad_fn._hooks.get(t._out_nr, [])
        else:
            lst = t._hooks or []
        if self._hook in lst:
            lst.remove(self._hook)


def _shape_of(size):
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` as a shape tuple."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        return tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"expected a shape of ints, got {size!r}") from None


def _wrap_dim(dim, ndim, opname="op"):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{opname}: dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim


def _to_array(data, dtype, device):
    """Build a raw array for ``Tensor(data)``: PyTorch's dtype inference, a copy of the input."""
    if device is None:
        device = backend._DEFAULT_DEVICE[0]       # set_default_device
    dev = backend.device(device) if device is not None else None
    if isinstance(data, Tensor):
        a = data.array
        a = a.astype(backend.as_dtype(dtype)) if dtype is not None else a.copy()
    else:
        dt = backend.as_dtype(dtype) if dtype is not None else None
        if dt is None:
            a = np.asarray(data) if backend.array_module(data) is np else data
            if a.dtype == object:
                raise TypeError(f"can't build a Tensor from {type(data).__name__} containing non-numeric values")
            if a.dtype.kind == "f" and not isinstance(data, np.ndarray):
                a = a.astype(backend.get_default_dtype())
            elif a.dtype.kind in "iu" and not isinstance(data, np.ndarray) and a.dtype != np.uint8:
                a = a.astype(np.int64)
            elif isinstance(data, numbers.Number) and not isinstance(data, bool) and a.dtype.kind == "f":
                a = a.astype(backend.get_default_dtype())
            a = np.array(a, copy=True) if isinstance(data, np.ndarray) else a
        else:
            xp = backend.array_module(data)
            a = xp.array(data, dtype=dt, copy=True)
    if dev is not None:
        a = backend.to_device(a, dev)
    elif backend.array_module(a) is np:
        a = np.ascontiguousarray(a) if a.ndim else np.asarray(a)
    if a.dtype.char in "eE" and backend.LOWP_HOOK:   # a float16/bfloat16 array (see ops/_lowp.py)
        backend.LOWP_HOOK.pop()()
    return a


from . import ops  # noqa: E402  (ops import Tensor from this module)

_function._Tensor = Tensor
_function._ndarray = np.ndarray


def _creation():
    from . import creation
    return creation


def _toplevel():
    from . import _toplevel as top
    return top


def _diagonal_mask(shape, wrap):
    if len(shape) < 2:
        raise RuntimeError("fill_diagonal_: dimensions must larger than 1")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise RuntimeError("fill_diagonal_: all dimensions of input must be of equal length")
    m = np.zeros(shape, dtype=np.bool_)
    if len(shape) > 2:
        m[tuple(np.arange(shape[0]) for _ in shape)] = True
        return m
    r, c = shape
    step = c + 1
    flat = m.reshape(-1)
    end = r * c if wrap else min(r, c) * c
    flat[0:end:step] = True
    return m


# In-place `_` variants, generated: ``x.op_(*args)`` computes ``x.op(*args)`` through the tracked
# in-place machinery (``Tensor._inplace``) and casts the result to x's dtype as PyTorch does
# (a floating result into an integer tensor is an error, as there).
_INPLACE_OF = (
    "abs absolute acos acosh arccos arccosh arcsin arcsinh arctan arctanh asin asinh atan atanh "
    "ceil cos cosh deg2rad digamma erf erfc erfinv exp exp2 expm1 fix floor frac lgamma log log10 "
    "log1p log2 logit neg negative rad2deg reciprocal relu round rsqrt sgn sigmoid sign sin sinc "
    "sinh sqrt square tan tanh trunc logical_not bitwise_not mvlgamma polygamma "
    "atan2 arctan2 bitwise_and bitwise_or bitwise_xor bitwise_left_shift bitwise_right_shift "
    "clamp_min clamp_max clip copysign divide true_divide floor_divide fmod remainder hypot ldexp "
    "logical_and logical_or logical_xor multiply subtract nextafter pow xlogy float_power "
    "heaviside eq ne lt le gt ge greater less greater_equal less_equal not_equal gcd lcm "
    "cumsum cumprod tril triu addmm addmv addr baddbmm addbmm"
).split()


def _make_inplace(name):
    def method(self, *args, **kwargs):
        opname = name + "_"

        def compute(s):
            r = getattr(s, name)(*args, **kwargs)
            if r.dtype != s.dtype:
                if r.dtype.kind == "f" and s.dtype.kind in "iub" or (opname == "float_power_" and s.dtype != np.float64):
                    raise RuntimeError(f"{opname}: result type {r.dtype} can't be cast to the desired output "
                                       f"type {s.dtype}")
                r = r.to(s.dtype)
            return r
        return self._inplace(opname, compute)
    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"In-place ``{name}`` (tracked by autograd)."
    return method


for _name in _INPLACE_OF:
    if _name + "_" not in Tensor.__dict__:
        setattr(Tensor, _name + "_", _make_inplace(_name))
del _name


def _install_missing_torch_names():
    """Each public PyTorch Tensor name deepgrad lacks becomes a descriptor that raises
    NotImplementedError (also an AttributeError, so hasattr stays False) naming it. Descriptors
    rather than ``Tensor.__getattr__``: a class with ``__getattr__`` loses CPython's fast slot
    access, and attribute hits are the hot path."""
    from ._torch_api import TENSOR, missing_tensor_attr

    class _MissingTorchAttr:
        __slots__ = ("name",)

        def __init__(self, name):
            self.name = name

        def __get__(self, obj, cls=None):
            raise missing_tensor_attr(self.name)

    for name in TENSOR:
        if name not in dir(Tensor):
            setattr(Tensor, name, _MissingTorchAttr(name))


_install_missing_torch_names()
