"""Fused pointwise kernels for the GPU hot paths, each written ONCE as a Python function.

PyTorch runs the pointwise part of an LSTM cell, of batch norm, of softmax + cross-entropy and of
an optimiser step as one CUDA kernel each (``_thnn_fused_lstm_cell``, cuDNN/native batch norm,
fused ``log_softmax`` backward, ``_fused_adam``). On CuPy every ufunc is a kernel launch (5-10 us
of CPU each), so a chain of ten ufuncs costs ten launches and ten trips through memory. Here each
such chain is one function of array-module operations in *destination-passing style*: results
are written with ``out[...] = expression`` into arrays the caller owns (views of its buffers,
so nothing is copied afterwards), and nothing is returned, or a reduction is.

* On NumPy (and the strict stand-in of the CPU test suite) the function runs as written: a
  sequence of ufuncs. Tests compare it with the existing CPU op, so the math of every kernel is
  checked on every machine (tests/test_cuda_kernels.py).
* On the real CuPy the same function is wrapped by ``cupy.fuse``, which traces it once per
  argument dtype/ndim signature into one elementwise (or reduction) kernel; in-place assignment
  to an argument is supported by both of CuPy's fusion tracers. Should fusion fail for a kernel
  (a CuPy version that cannot trace it), the plain function runs on the CuPy arrays instead:
  correct, only unfused, and recorded in ``FALLBACKS`` (the GPU script reports it).

The ops use these kernels only when ``enabled(xp)``: the real CuPy (``backend.is_real_cupy``),
so the CPU paths are untouched. ``FORCE[0] = True`` (tests only) also takes the kernel paths on
the stand-in, so the code around the kernels (buffers, views, the order of steps) is tested here.

Every kernel is a factory ``name(xp)`` returning the function, so that the function calls the
module's ufuncs (``xp.exp``) and ``cupy.fuse`` can trace them.
"""
from __future__ import annotations

import numpy as np

from .. import backend

FORCE = [False]        # tests: take the kernel paths on a non-CuPy device module too
FALLBACKS = {}         # kernel name -> why cupy.fuse could not be used (the plain function ran)


def enabled(xp) -> bool:
    """Whether the ops should take their fused-kernel path for arrays of module ``xp``."""
    if xp is np:
        return False
    return backend.is_real_cupy(xp) or FORCE[0]


class _Kernel:
    __slots__ = ("name", "factory", "plain", "fused")

    def __init__(self, factory):
        self.name = factory.__name__
        self.factory = factory
        self.plain = {}       # id(xp) -> the plain function for that module
        self.fused = {}       # id(xp) -> cupy.fuse of it (None once fusion failed)

    def __call__(self, xp, *args):
        if backend.is_real_cupy(xp):
            f = self.fused.get(id(xp), False)
            if f is False:
                f = self.fused[id(xp)] = xp.fuse(kernel_name="deepgrad_" + self.name)(self.factory(xp))
            if f is not None:
                try:
                    return f(*args)
                except MemoryError:
                    raise
                except Exception as e:  # noqa: BLE001 - tracing/compiling failed: run it unfused
                    FALLBACKS[self.name] = f"{type(e).__name__}: {e}"
                    self.fused[id(xp)] = None
        f = self.plain.get(id(xp))
        if f is None:
            f = self.plain[id(xp)] = self.factory(xp)
        return f(*args)


def kernel(factory):
    return _Kernel(factory)


# ---- LSTM cell (ops/recurrent.py) -----------------------------------------------------------------
# The layer keeps the gate pre-activations scaled so that each nonlinearity is 1 / (1 + exp(z)):
# gates (o, i, f) scaled by -1 (sigmoid), g by -2 (tanh(x) = 2 sigmoid(2x) - 1).

@kernel
def lstm_forward(xp):
    """One time step without recording: the gate pre-activations are ``z = a + r`` (``a``: the
    input projection, ``r``: the recurrent GEMM's result); write the new cell ``c`` and hidden
    state ``h`` (nothing else is kept, so the gates are not stored)."""
    def f(zo, zi, zf, zg, ro, ri, rf, rg, cp, c, h):
        so = 1 / (1 + xp.exp(zo + ro))
        si = 1 / (1 + xp.exp(zi + ri))
        sf = 1 / (1 + xp.exp(zf + rf))
        gg = 2 / (1 + xp.exp(zg + rg)) - 1
        cn = sf * cp + si * gg
        c[...] = cn
        h[...] = so * xp.tanh(cn)
    return f


@kernel
def lstm_forward_record(xp):
    """``lstm_forward`` that also stores backward's coefficients (w.r.t. the scaled
    pre-activations) IN PLACE of the gates, as the layer's gate-major record:
    ``zo, zi, zf, zg <- tc o(o - 1), g i(i - 1), c_prev f(f - 1), 2 i s(s - 1)`` (s = (g + 1) / 2,
    so the last is (g^2 - 1) i / 2), plus ``kc = o (1 - tc^2)`` (computed as ``o - h tc``) and
    ``fg = f`` (tc = tanh(c)). Every value is computed from the inputs before any output is
    written, so the outputs may alias the inputs element for element (the gate blocks
    ``zo..zg``): as plain ufuncs, and fused, where each element's inputs are read before its
    outputs are stored. The products are grouped as the CPU loop groups them."""
    def f(zo, zi, zf, zg, ro, ri, rf, rg, cp, c, h, kc, fg):
        so = 1 / (1 + xp.exp(zo + ro))
        si = 1 / (1 + xp.exp(zi + ri))
        sf = 1 / (1 + xp.exp(zf + rf))
        sg = 1 / (1 + xp.exp(zg + rg))
        gg = sg * 2 - 1
        cn = sf * cp + si * gg
        tc = xp.tanh(cn)
        hn = so * tc
        ko = so * (so - 1) * tc
        ki = si * (si - 1) * gg
        kf = sf * (sf - 1) * cp
        kg = sg * (sg - 1) * si * 2
        kcv = so - hn * tc
        c[...] = cn
        h[...] = hn
        kc[...] = kcv
        fg[...] = sf
        zo[...] = ko
        zi[...] = ki
        zf[...] = kf
        zg[...] = kg
    return f


@kernel
def lstm_backward(xp):
    """One step of backward through time, pointwise part, on the forward's in-place record: ``dh``
    (incoming) plus the output's gradient ``dout`` and ``dc`` turn the coefficients ``ko..kg``
    into the four pre-activation gradients, written to ``eo..eg`` (the step's row block of the
    batch-major (T, B, 4H) gradient: the left operand of the one GEMM ``dh = D_t @ W_hh`` the
    caller does next, and of the weight-gradient GEMMs after the loop); ``dc`` becomes the
    gradient for the previous step's cell (``dc * f``). Inputs are read before the aliased
    output ``dc`` is written."""
    def f(dh, dout, dc, ko, ki, kf, kg, kc, fg, eo, ei, ef, eg):
        dhv = dh + dout
        dcv = dc + dhv * kc
        do_ = ko * dhv
        di = ki * dcv
        df = kf * dcv
        dg = kg * dcv
        dcp = dcv * fg
        eo[...] = do_
        ei[...] = di
        ef[...] = df
        eg[...] = dg
        dc[...] = dcp
    return f


# ---- batch norm (ops/normalization.py) --------------------------------------------------------------
@kernel
def bn_forward(xp):
    """Normalise and apply the affine map in one pass: ``xhat = (x - mean) rstd``,
    ``out = xhat w + b`` (w, b: per-channel arrays shaped to broadcast, or 1.0 / 0.0)."""
    def f(x, mean, rstd, w, b, xhat, out):
        xh = (x - mean) * rstd
        xhat[...] = xh
        out[...] = xh * w + b
    return f


@kernel
def bn_backward(xp):
    """The input gradient of training-mode batch norm from the two channel sums:
    ``gx = k (g - mg - xhat mgx)`` with ``mg = sum(g)/n``, ``mgx = sum(g xhat)/n``,
    ``k = rstd w``."""
    def f(g, xhat, mg, mgx, k, gx):
        gx[...] = k * (g - mg - xhat * mgx)
    return f


# ---- softmax + cross-entropy (ops/loss.py) ----------------------------------------------------------
@kernel
def ce_sumexp(xp):
    """Row sums of ``exp(z - m)`` (the softmax denominator), one fused map-reduce."""
    def f(z, m):
        return xp.exp(z - m).sum(axis=1)     # the method form: cupy.fuse's tracer has it too
    return f


@kernel
def ce_backward(xp):
    """``gx = (softmax(z) - onehot(t)) * scale`` from the saved log-sum-exp of each row: no
    softmax array is kept between forward and backward. ``cols`` is ``arange(C)`` (1, C),
    ``t`` the targets (M, 1), ``scale`` the per-row factor (M, 1) (0 for ignored rows)."""
    def f(z, lse, t, cols, scale, gx):
        gx[...] = (xp.exp(z - lse) - (cols == t)) * scale
    return f


# ---- optimiser steps (optim/sgd.py, optim/adam.py): one kernel per parameter tensor -------------
# Each folds in what the Optimizer base does before the rule: decoupled weight decay
# (``p *= decay``, decay = 1 - lr wd, else 1), ``maximize`` (sign = -1) and L2 weight decay
# (``g + wd p``): ``ge = g sign + p wd`` is exactly the base's ``p wd + g`` / ``p wd - g`` / ``-g``.

@kernel
def sgd(xp):
    def f(p, g, lr, decay, wd, sign):
        p0 = p * decay
        ge = g * sign + p0 * wd
        p[...] = p0 - ge * lr
    return f


@kernel
def sgd_momentum(xp):
    """``b = mb b + damp ge``; ``p -= lr b`` (first step: b is zeros and mb = 0, damp = 1)."""
    def f(p, g, b, lr, mb, damp, decay, wd, sign):
        p0 = p * decay
        ge = g * sign + p0 * wd
        bn = b * mb + ge * damp
        b[...] = bn
        p[...] = p0 - bn * lr
    return f


@kernel
def sgd_nesterov(xp):
    """``b = mb b + damp ge``; ``p -= lr (ge + momentum b)``."""
    def f(p, g, b, lr, mb, damp, momentum, decay, wd, sign):
        p0 = p * decay
        ge = g * sign + p0 * wd
        bn = b * mb + ge * damp
        b[...] = bn
        p[...] = p0 - (ge + bn * momentum) * lr
    return f


@kernel
def adam(xp):
    """``m = lerp(m, ge, 1 - b1)``, ``v = b2 v + (1 - b2) ge^2``,
    ``p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)``."""
    def f(p, g, m, v, one_minus_b1, b2, one_minus_b2, step_size, bc2_sqrt, eps, decay, wd, sign):
        p0 = p * decay
        ge = g * sign + p0 * wd
        mn = m + (ge - m) * one_minus_b1
        vn = v * b2 + (ge * ge) * one_minus_b2
        m[...] = mn
        v[...] = vn
        p[...] = p0 - (mn / (xp.sqrt(vn) / bc2_sqrt + eps)) * step_size
    return f


@kernel
def adam_amsgrad(xp):
    """``adam`` with ``vmax = max(vmax, v)`` in the denominator."""
    def f(p, g, m, v, vmax, one_minus_b1, b2, one_minus_b2, step_size, bc2_sqrt, eps, decay, wd, sign):
        p0 = p * decay
        ge = g * sign + p0 * wd
        mn = m + (ge - m) * one_minus_b1
        vn = v * b2 + (ge * ge) * one_minus_b2
        vm = xp.maximum(vmax, vn)
        m[...] = mn
        v[...] = vn
        vmax[...] = vm
        p[...] = p0 - (mn / (xp.sqrt(vm) / bc2_sqrt + eps)) * step_size
    return f


def decay_terms(group):
    """(decay, wd, sign) of a parameter group, as the Optimizer base applies them."""
    from ..optim.optimizer import _scalar
    wd = float(group.get("weight_decay", 0) or 0)
    sign = -1.0 if group.get("maximize", False) else 1.0
    if wd != 0 and group.get("decoupled_weight_decay", False):
        return 1.0 - _scalar(group["lr"]) * wd, 0.0, sign
    return 1.0, wd, sign


ALL = [lstm_forward, lstm_forward_record, lstm_backward, bn_forward, bn_backward, ce_sumexp,
       ce_backward, sgd, sgd_momentum, sgd_nesterov, adam, adam_amsgrad]
