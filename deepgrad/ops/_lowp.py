"""float16 and bfloat16 at close to float32 speed: compute in float32, round the result once.

NumPy has no float16/bfloat16 BLAS (a float16 matmul runs a scalar loop), its float16 ufuncs
convert every element to float32 and back one at a time, and ml_dtypes' bfloat16 ufuncs are
scalar loops too. PyTorch's CPU kernels for these dtypes compute in float32 ("opmath") and round
each op's result to the low dtype. deepgrad does the same, vectorised: an op whose inputs are
float16/bfloat16 runs its float32 kernel on upcast copies and its outputs are rounded back to the
inputs' dtype (round to nearest, ties to even, as PyTorch rounds). So a matrix product accumulates
in float32 (as PyTorch's CPU GEMM does) and an elementwise op rounds once.

Conversions (the cost of this scheme, measured per element on one core):

* bfloat16 <-> float32: ml_dtypes' casts are vectorised bit operations (well under 1 ns).
* float16 -> float32: NumPy's cast is a scalar loop (3-12 ns, slowest on subnormals); shifting
  the bits into float32's place and multiplying by 2**112 is exact and ~1.7 ns.
* float32 -> float16: NumPy's cast is a scalar loop (3-20 ns). ``_f32_to_f16`` lets the float32
  unit round: x + 1.5 * 2**(e + 13) - 1.5 * 2**(e + 13) (e: x's exponent, at least -14) is x
  rounded to float16's spacing, ties to even; times 2**-112 its bits shifted right by 13 are the
  float16's (subnormals included). 11 whole-array operations on 64K-element blocks, ~1.8-2.5 ns
  an element (the previous integer-rounding version took ~15 operations, two of them NumPy's
  unvectorised maximum/minimum with a scalar, ~3.6-4.6 ns). Bit-identical to NumPy's cast
  (tests/test_lowp.py checks every float16, the midpoints between them and their neighbours,
  random bit patterns, overflow, inf and NaN); a block with a value from 2**16 up, inf or NaN
  takes NumPy's cast.

Where ops/_f16c.py's compiled kernel is available (x86-64 with F16C and a C compiler) these
conversions take one instruction per 8 elements (~0.1-0.25 ns an element, float32 -> bfloat16
too); the NumPy versions below remain the general path and the tests hold the two bit-identical.

``install(cls)`` wraps a Function's ``forward`` (and an ``array_backward`` op's ``backward``) so
that this happens; a float32/float64 call goes straight through after one dtype test per input.
``install_all`` runs the first time a float16/bfloat16 dtype or array appears (``backend.LOWP_HOOK``),
so a float32 program never pays even that. Optimisers do the same per parameter (optim/_lowp.py)
and leave the exact float32 value of what they wrote as the tensor's *shadow* (below), which the
next forward and update use instead of an upcast.
"""
from __future__ import annotations

import functools
import weakref

import numpy as np

from .. import backend
from . import _f16c

_F16 = np.dtype(np.float16)
_BF16 = backend.bfloat16
_F32 = np.dtype(np.float32)
LOWP_CHARS = "eE"          # dtype.char of float16 ('e') and of ml_dtypes' bfloat16 ('E')
_U32 = np.uint32


def is_lowp(dtype) -> bool:
    """True for float16 and bfloat16."""
    return dtype.char in LOWP_CHARS and (dtype == _F16 or dtype == _BF16)


def _dense_order(a):
    """``(b, inverse)`` where ``b`` is a C-contiguous permutation of ``a`` (a channels-last
    activation behind its NCHW view, a transpose) and ``b.transpose(inverse)`` is ``a``; None
    when ``a`` is no such permutation (a strided slice: it will be copied)."""
    if a.flags.c_contiguous:
        return a, None
    perm = sorted(range(a.ndim), key=lambda i: -a.strides[i])
    b = a.transpose(perm)
    if not b.flags.c_contiguous:
        return None
    inv = [0] * a.ndim
    for i, p in enumerate(perm):
        inv[p] = i
    return b, inv


def _elementwise_in_layout(fn, a):
    """``fn`` (an elementwise map of flat contiguous arrays) applied to ``a`` keeping its memory
    layout."""
    d = _dense_order(a)
    if d is None:
        return fn(np.ascontiguousarray(a)).reshape(a.shape)
    b, inv = d
    out = fn(b).reshape(b.shape)
    return out if inv is None else out.transpose(inv)


def _f16_to_f32(a):
    """float16 -> float32 (exact; ``a`` C-contiguous): the 15 magnitude bits moved to float32's
    place and scaled by 2**112 (exact for normal and subnormal halves alike), inf/NaN fixed up.
    With the F16C kernel (``_f16c.available()``) one instruction per 8 elements instead."""
    if a.flags.c_contiguous:
        f = np.empty(a.shape, np.float32)
        if _f16c.f16_to_f32(a, f):
            return f
    w = a.view(np.uint16).astype(_U32)
    s = w & _U32(0x8000)
    w ^= s
    w <<= _U32(13)
    special = w.max(initial=0) >= (0x7C00 << 13)
    if special:
        big = w >= _U32(0x7C00 << 13)
        fix = (w & _U32(0x007FE000)) | _U32(0x7F800000)
    f = w.view(np.float32)
    f *= np.float32(2.0 ** 112)
    if special:
        np.putmask(w, big, fix)
    s <<= _U32(16)
    w |= s
    return f


_BLOCK = 1 << 16           # elements per block: the temporaries stay in the L2 cache, and NumPy's
                           # per-call overhead (~1 us a ufunc) is small against 64K elements
_EXP = _U32(0x7F800000)
_SIGN = _U32(0x80000000)
# exponent bits from which a block takes NumPy's cast: 2**16 (where the bits below go wrong; a value
# between 65520 and 65536 rounds to 65536, whose bits are inf's) or, when the rounded float32 value is
# wanted, 2**15 (65536 would have to become inf)
_SPECIAL_BITS, _SPECIAL_VALUE = 0x47800000, 0x47000000
# The exponent bits of 2**-14 (float16's smallest normal), as an array: NumPy 2.4's maximum with a
# scalar operand is not vectorised (~1 ns an element against ~0.25 ns with a contiguous array).
_SUBNORMAL_EXP = np.full(_BLOCK, (127 - 14) << 23, np.uint32)
_MAGIC = _U32((13 << 23) + 0x400000)   # added to x's exponent bits: 1.5 * 2**(e + 13)
_TO_HALF_BITS = np.float32(2.0 ** -112)


def _f32_to_f16(x, keep=False, out=None):
    """float32 -> float16, round to nearest even, bit-identical to ``x.astype(np.float16)``
    (``x`` C-contiguous). ``keep=True`` also overwrites ``x`` with the rounded values (the float16
    result, exactly, as float32: what an upcast of the result gives). ``out``: a C-contiguous
    float16 array of ``x``'s size to write into. With the F16C kernel (``_f16c.available()``)
    one instruction per 8 elements instead (the NumPy passes below take an array with a NaN)."""
    res = np.empty(x.shape, np.float16) if out is None else out     # (owns its memory: base is None)
    if x.flags.c_contiguous and (x.flags.writeable or not keep) and _f16c.f32_to_f16(x, res, keep):
        return res
    u = x.reshape(-1).view(_U32)
    n = u.size
    out = res.reshape(-1).view(np.uint16)
    m = min(n, _BLOCK)
    e, s = np.empty(m, _U32), np.empty(m, _U32)
    r = None if keep else np.empty(m, _U32)
    for i in range(0, n, _BLOCK):
        j = min(i + _BLOCK, n)
        k = j - i
        _f32_to_f16_block(u[i:j], out[i:j], e[:k], s[:k], None if keep else r[:k])
    return res


def round_f16(x):
    """float32 array -> a new float32 array of ``x`` rounded to the nearest float16 (ties to even;
    overflow to inf, as ``x.astype(np.float16).astype(np.float32)``) without making the float16
    array."""
    y = np.array(x, dtype=np.float32, order="C", copy=True)
    if _f16c.f32_to_f16(y, None, True):
        return y
    u = y.reshape(-1).view(_U32)
    n = u.size
    m = min(n, _BLOCK)
    e, s = np.empty(m, _U32), np.empty(m, _U32)
    for i in range(0, n, _BLOCK):
        j = min(i + _BLOCK, n)
        k = j - i
        _f32_to_f16_block(u[i:j], None, e[:k], s[:k], None)
    return y


def _f32_to_f16_block(u, out, e, s, r):
    """One block: ``out`` (uint16) gets the float16 bits of the float32 bits ``u``; ``e``, ``s``
    and ``r`` are uint32 scratch arrays of the same length. ``r=None`` rounds ``u`` itself (to the
    float16 value as float32); ``out=None`` only does that.

    The float32 unit rounds for us: with e the exponent of |x| (at least float16's -14) and
    M = 1.5 * 2**(e + 13), x + M lies in [2**(e+13), 2**(e+14)) whatever x's sign, where float32's
    spacing is 2**(e-10), float16's spacing at x (2**-24 below 2**-14); so (x + M) - M is x rounded
    to float16 to nearest even, exactly. Then times 2**-112 float16's exponent bias is float32's
    (float16 subnormals become float32 subnormals with the same significand), and the bits shifted
    right by 13 are the float16's. A block holding a value from 2**16 up (2**15 when the rounded
    value is kept), inf or NaN takes NumPy's cast (rare)."""
    np.bitwise_and(u, _EXP, out=e)
    if e.max() >= (_SPECIAL_VALUE if r is None else _SPECIAL_BITS):
        return _f32_to_f16_special(u, out, r is None)
    np.maximum(e, _SUBNORMAL_EXP[:e.size], out=e)
    e += _MAGIC
    np.bitwise_and(u, _SIGN, out=s)
    xf, ef = u.view(np.float32), e.view(np.float32)
    rf = xf if r is None else r.view(np.float32)
    np.add(xf, ef, out=rf)
    rf -= ef                                        # x rounded (a zero lost its sign)
    if r is None:
        u |= s
        if out is None:
            return
    np.multiply(rf, _TO_HALF_BITS, out=ef)
    e >>= _U32(13)                                  # |x|'s float16 bits (and the sign at bit 18)
    s >>= _U32(16)
    e |= s
    np.copyto(out, e, casting="unsafe")             # (drops bit 18)


def _f32_to_f16_special(u, out, keep):
    with np.errstate(all="ignore"):
        h = u.view(np.float32).astype(np.float16)
    if out is not None:
        out[...] = h.view(np.uint16)
    if keep:
        u[...] = h.astype(np.float32).view(_U32)


def up(a):
    """float16/bfloat16 array -> float32 array (exact); anything else unchanged."""
    dt = a.dtype
    if dt.char == "e" and type(a) is np.ndarray:
        return _elementwise_in_layout(_f16_to_f32, a)
    if dt.char in LOWP_CHARS:
        return a.astype(np.float32)
    return a


def down(a, dtype):
    """float32 array -> ``dtype`` (float16/bfloat16) rounded to nearest even; other float arrays
    are cast with NumPy; integer and boolean arrays are left alone."""
    if a.dtype == dtype or a.dtype.kind not in "f":
        return a
    if dtype.char == "e" and type(a) is np.ndarray:
        if a.dtype != _F32:
            a = a.astype(np.float32)
        if a.ndim == 0:
            return np.asarray(a.astype(np.float16))
        return _elementwise_in_layout(_f32_to_f16, a)
    if a.dtype == _F32 and dtype == _BF16 and type(a) is np.ndarray and a.ndim and a.flags.c_contiguous:
        h = np.empty(a.shape, _BF16)
        if _f16c.f32_to_bf16(a, h, False):      # ml_dtypes' bits, ~5x faster (ops/_f16c.py)
            return h
    return a.astype(dtype)


def down_keep(x, dtype, out=None):
    """``down(x, dtype)`` for a float32 C-contiguous array ``x`` this code owns, which is
    overwritten with the result's exact float32 value (for a shadow, below). ``out``: a float16
    array of ``x``'s shape to write the result into (returned; for float16 a C-contiguous one is
    written directly)."""
    if dtype.char == "e" and type(x) is np.ndarray and x.ndim:
        if out is not None and out.flags.c_contiguous and out.dtype == _F16 and out.shape == x.shape:
            _f32_to_f16(x, keep=True, out=out)
            return out
        h = _f32_to_f16(x, keep=True)
        if out is not None:
            out[...] = h
            return out
        return h
    if dtype == _BF16 and type(x) is np.ndarray and x.ndim and x.dtype == _F32 and x.flags.c_contiguous:
        res = out if (out is not None and out.flags.c_contiguous and out.dtype == _BF16
                      and out.shape == x.shape) else np.empty(x.shape, _BF16)
        if _f16c.f32_to_bf16(x, res, True):
            if out is not None and res is not out:
                out[...] = res
                return out
            return res
    h = down(x, dtype)
    x[...] = h                           # the cast on assignment: one pass, no temporary
    if out is not None:
        out[...] = h
        return out
    return h


# Float32 shadows: the exact float32 value of a float16/bfloat16 tensor that an optimiser has just
# written (it computed it anyway), so that the next forward and the next update need no upcast.
# A shadow is valid while the tensor keeps the same array and version (every deepgrad in-place
# write bumps it, load_state_dict too) and four sampled elements still agree (a raw write through
# ``.array`` or ``.numpy()`` is caught there in practice).
_SHADOW = {}


def shadow_of(t):
    e = _SHADOW.get(id(t))
    if e is None:
        return None
    ref, aref, ver, f = e
    arr = t.array
    if ref() is not t or aref() is not arr or t._version[0] != ver or not _spot_check(arr, f):
        _SHADOW.pop(id(t), None)
        return None
    return f


def set_shadow(t, f):
    key = id(t)
    # the array is held weakly: the autograd engine hands a gradient over without a copy only when
    # nothing else references its array
    _SHADOW[key] = (weakref.ref(t, lambda _r, k=key: _SHADOW.pop(k, None)), weakref.ref(t.array), t._version[0], f)


def _spot_check(arr, f):
    n = arr.size
    if n == 0 or not arr.flags.c_contiguous:
        return arr.flags.c_contiguous
    for i in (0, n // 3, (2 * n) // 3, n - 1):
        x, y = arr.item(i), f.item(i)            # (item: flat index, a Python float)
        if x != y and not (x != x and y != y):
            return False
    return True


def _lowp_dtype(arrays):
    """The low-precision dtype among ``arrays`` (None when there is none)."""
    for a in arrays:
        dt = getattr(a, "dtype", None)
        if dt is not None and dt.char in LOWP_CHARS:
            return dt
    return None


def _down_all(out, dt):
    if type(out) is tuple:
        return tuple(None if o is None else down(o, dt) for o in out)
    return down(out, dt)


def install(cls, keep_up=False):
    """Make Function ``cls`` compute in float32 on float16/bfloat16 inputs and round its outputs
    (and, for an ``array_backward`` op, its input gradients) back. Idempotent."""
    if cls.__dict__.get("_lowp_installed"):
        return cls
    fwd = cls.forward

    @functools.wraps(fwd)
    def forward(self, *arrays, **attrs):
        for a in arrays:
            if a.dtype.char in LOWP_CHARS:
                break
        else:
            return fwd(self, *arrays, **attrs)
        dt = _lowp_dtype(arrays)
        self._lowp = dt
        self._lowp_in = tuple(a.dtype for a in arrays)
        if _SHADOW:
            ins = self.inputs
            ups = []
            for i, a in enumerate(arrays):
                f = shadow_of(ins[i]) if a.dtype.char in LOWP_CHARS else None
                ups.append(f if f is not None else up(a))
        else:
            ups = [up(a) for a in arrays]
        if keep_up and self._record:     # backward reuses the float32 copies (no second upcast)
            self._lowp_up = ups
        out = fwd(self, *ups, **attrs)
        d = self.__dict__
        for k, v in d.items():           # dtypes forward noted for backward: the inputs' own
            if v is _F32:
                d[k] = dt
        if attrs.get("dtype") is not None:   # an explicit result dtype (sum(x, dtype=...)) stays
            return out
        return _down_all(out, dt)

    cls.forward = forward
    cls._lowp = None                     # set per node by a low-precision forward
    if cls.array_backward:
        bwd = cls.backward

        @functools.wraps(bwd)
        def backward(self, *grads):
            if self._lowp is None:
                return bwd(self, *grads)
            out = bwd(self, *[None if g is None else up(g) for g in grads])
            dts = self._lowp_in
            if type(out) is not tuple:
                return down(out, dts[0]) if out is not None else None
            return tuple(None if o is None else down(o, dts[i]) if i < len(dts) else o
                         for i, o in enumerate(out))

        cls.backward = backward
    cls._lowp_installed = True
    return cls


# Ops that only move or pick elements (exact in any dtype, and as fast natively), casts, and
# helpers whose forward is a closure over other code: these run on the low-precision arrays
# themselves. Views (``is_view``) always do (an upcast copy would not be a view).
_NATIVE = {
    "Convert", "Clone", "Reshape", "Permute", "Transpose", "Cat", "Stack", "Split", "Unbind", "Flip",
    "Roll", "Gather", "GatherView", "Scatter", "Repeat", "PadConstant", "Tril", "Triu", "_Tri", "Masked",
    "IndexPut", "SetItem", "EmbeddingFn", "_Proxy", "LinearMap", "PixelShuffle", "Where", "_TakeAlong",
    "_PutAlong", "_Reshape", "_SwapLast", "_EvenlyPicked", "_Unreduce", "MaxUnpool", "Squeeze",
    "Unsqueeze", "View", "BroadcastTo", "_Diagonal", "_DiagonalScatter", "_FloorValue",
}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def install_all():
    """Install the float32-compute path on every op of deepgrad.ops except the native ones."""
    import importlib
    from ..autograd.function import Function
    for mod in ("elementwise", "reduce", "linalg", "shape", "index", "composite", "conv", "pool",
                "normalization", "loss", "recurrent", "attention", "sampling", "distance"):
        importlib.import_module(f"deepgrad.ops.{mod}")
    for cls in list(_subclasses(Function)):
        if not cls.__module__.startswith("deepgrad.ops.") or cls.__module__ == __name__:
            continue
        if cls.is_view or cls.__name__ in _NATIVE or "forward" not in cls.__dict__:
            continue
        if cls.__name__ == "LinearFn":
            _install_linear(cls)
        elif cls.__name__ == "Relu" and cls.__module__ == "deepgrad.ops.elementwise":
            _install_relu(cls)
        elif cls.__name__ == "Convert" and cls.__module__ == "deepgrad.ops.elementwise":
            _install_convert(cls)
        else:
            install(cls)


def _linear_backward(self, g):
    """LinearFn's first-order backward on float16/bfloat16: three float32 GEMMs on the upcast
    arrays kept from forward, each result rounded once."""
    self.saved_tensors                   # the in-place-modification check
    xa, wa = self._lowp_up[0], self._lowp_up[1]
    need = self.needs_input_grad
    has_b = len(need) == 3
    ga = up(g.array)
    dts = self._lowp_in
    gx = gw = gb = None
    if need[0]:
        gx = _Tensor()._make(down(ga @ wa, dts[0]))
    if ga.ndim != 2:
        ga = ga.reshape(-1, ga.shape[-1])
        xa = xa.reshape(-1, xa.shape[-1])
    if need[1]:
        gw = _grad_with_shadow(ga.T @ xa, dts[1])
    if has_b and need[2]:
        gb = _grad_with_shadow(ga.sum(axis=0), dts[2])
    return (gx, gw, gb) if has_b else (gx, gw)


def _grad_with_shadow(f, dtype):
    """A parameter's gradient Tensor rounded from the fresh float32 array ``f``; for float16, ``f``
    becomes its exact value and the Tensor's shadow, so the optimiser needs no upcast (it becomes
    ``p.grad`` itself when it is the only contribution)."""
    if dtype.char == "e" and f.flags.c_contiguous and f.ndim:
        t = _Tensor()._make(_f32_to_f16(f, keep=True))
        set_shadow(t, f)
        return t
    if dtype == _BF16 and f.dtype == _F32 and f.flags.c_contiguous and f.ndim:
        h = np.empty(f.shape, _BF16)
        if _f16c.f32_to_bf16(f, h, True):
            t = _Tensor()._make(h)
            set_shadow(t, f)
            return t
    return _Tensor()._make(down(f, dtype))


def _Tensor():
    from ..tensor import Tensor
    return Tensor


def _install_linear(cls):
    install(cls, keep_up=True)
    bwd = cls.backward
    from ..autograd.grad_mode import _enabled

    @functools.wraps(bwd)
    def backward(self, g):
        if self._lowp is not None and not _enabled[0]:
            return _linear_backward(self, g)
        return bwd(self, g)
    cls.backward = backward


def _install_convert(cls):
    """Casts between float32 and float16 through the fast conversions above (NumPy's float16
    casts are scalar loops); the same bits."""
    if cls.__dict__.get("_lowp_installed"):
        return
    fwd = cls.forward

    @functools.wraps(fwd)
    def forward(self, x, dtype=None, device=None):
        if dtype is not None and device is None and type(x) is np.ndarray:
            if dtype == _F16 and x.dtype == _F32:
                self.src = (x.dtype, backend.device_of(x))
                return down(x, dtype)
            if x.dtype == _F16 and dtype == _F32:
                self.src = (x.dtype, backend.device_of(x))
                return up(x)
        return fwd(self, x, dtype=dtype, device=device)
    cls.forward = forward
    cls._lowp_installed = True


# ReLU on the bits: its output is one of its inputs (or zero), so float16/bfloat16 need no float32
# pass. On the uint16 bits u, u - 0x8001 (wrapping) puts the negative numbers from the smallest
# subnormal to -inf at 0 .. NEG_END - 1 and everything kept (positives, +-0, NaN: PyTorch's relu
# keeps -0 and NaN) from NEG_END up.
_RELU_NEG_END = {"e": np.uint16(0xFC00 - 0x8000), "E": np.uint16(0xFF80 - 0x8000)}
_U16_ONE_ABOVE_SIGN = np.uint16(0x8001)
_U16_MAG = np.uint16(0x7FFF)


def _install_relu(cls):
    """Relu on float16/bfloat16 arrays, computed on their bits: the forward keeps x where x is not
    negative (as PyTorch's relu: -0 and NaN pass), the first-order backward passes g where x > 0 or
    x is NaN (PyTorch's threshold_backward) and writes +0 elsewhere. A higher-order backward takes
    the op's own (composed) backward."""
    if cls.__dict__.get("_lowp_installed"):
        return
    fwd, bwd = cls.forward, cls.backward
    from ..autograd.grad_mode import _enabled

    @functools.wraps(fwd)
    def forward(self, x):
        c = x.dtype.char
        if c not in LOWP_CHARS or type(x) is not np.ndarray or not is_lowp(x.dtype):
            self._lowp = None
            return fwd(self, x)
        u = x.view(np.uint16)
        keep = (u - _U16_ONE_ABOVE_SIGN) >= _RELU_NEG_END[c]
        out = u * keep
        self._lowp = x.dtype
        self.mask = (out & _U16_MAG) != 0        # x > 0 or NaN
        return out.view(x.dtype)

    @functools.wraps(bwd)
    def backward(self, g):
        if self._lowp is not None and not _enabled[0] and g.array.dtype == self._lowp:
            return _Tensor()._make((g.array.view(np.uint16) * self.mask).view(self._lowp))
        return bwd(self, g)

    cls.forward, cls.backward = forward, backward
    cls._lowp = None
    cls._lowp_installed = True
