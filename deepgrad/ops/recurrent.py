"""Recurrent layers: one fused op per layer and direction, and the cells built from ordinary ops.

``rnn_layer(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh)`` runs one direction of one layer of an
Elman RNN (tanh/relu), an LSTM or a GRU over a whole time-major sequence ``x`` (T, B, I) as ONE
node of the graph (``array_backward = True``):

* forward: the input projection of all time steps is one GEMM ``(T*B, I) @ (I, G*H)``; the loop
  over time then does one GEMM per step for the recurrent part and a handful of in-place ufuncs
  on preallocated buffers for the gate nonlinearities.
* backward: back-propagation through time written by hand. The per-step work is one GEMM
  (``dh_{t-1} = dgates_t @ W_hh``) plus a few in-place multiplies by coefficients that were
  precomputed for all steps at once; the weight gradients are then one GEMM each over all steps
  (``dW_hh = dgates^T @ h_prev``, ``dW_ih = dgates^T @ x``) and the input gradient is one GEMM.

Internal layout. The op works on private copies of the weights whose gate rows are reordered and
scaled so that every nonlinearity becomes ``s = 1 / (1 + exp(a))`` on one contiguous block:
``sigmoid(x) = 1/(1+exp(-x))`` (scale -1) and ``tanh(x) = 2/(1+exp(-2x)) - 1`` (scale -2). The
LSTM's gates are kept in the order (o, i, f, g) so that sigmoid covers one block, and in backward
the gates multiplied by ``dh`` (o) and by ``dc`` (i, f, g) are contiguous. The gradients are
computed with respect to the scaled pre-activations and mapped back (scale, un-permute) at the
end, so parameters keep PyTorch's layout (LSTM gates i, f, g, o; GRU r, z, n).

The LSTM (the char-LSTM benchmark's layer) goes further: its gates are gate-major, ``A[k, t]``
a contiguous (B, H) block (NumPy's ufuncs are ~5x slower per element on a (B, H) slice of a
(B, 4H) row), the recurrent product is one batched matmul ``h @ W_hh,k^T`` per gate, the
backward coefficients are written over the gates in place and backward turns them into the
gradient in place, copying each step's blocks into a batch-major gradient for the GEMMs (see
``RNNLayer``); with more than one thread the batch rows are split between threads.

Variable-length batches: ``batch_sizes[t]`` (non-increasing, as in a PackedSequence) is the
number of sequences still running at step ``t``; the batch must be sorted by decreasing length.
Finished sequences keep their state (so ``h_n`` is taken at each sequence's true end) and get
zero outputs; in the reverse direction a sequence starts at its own last step.
"""
from __future__ import annotations


import numpy as np

from .. import backend
from ..autograd.function import Function
from ..tensor import Tensor
from .elementwise import sigmoid, tanh, relu
from .linalg import matmul
from .shape import chunk
from ._graph import reference_grads
from . import _cuda_kernels as _ck

__all__ = ["rnn_layer", "rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell"]

_NGATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _layout(mode, H, xp, dtype):
    """(row permutation or None, per-row scale) of the internal weight layout."""
    if mode == "LSTM":
        perm = np.concatenate([np.arange(3 * H, 4 * H), np.arange(0, 3 * H)])  # i f g o -> o i f g
        scale = np.concatenate([np.full(3 * H, -1.0), np.full(H, -2.0)])
    elif mode == "GRU":
        perm = None
        scale = np.concatenate([np.full(2 * H, -1.0), np.full(H, -2.0)])
    elif mode == "RNN_TANH":
        perm, scale = None, np.full(H, -2.0)
    else:
        perm, scale = None, None
    if scale is not None:
        scale = xp.asarray(scale.astype(dtype))
    if perm is not None:
        perm = xp.asarray(perm)
    return perm, scale


def _internal(a, perm, scale):
    if perm is not None:
        a = a[perm]
    if scale is not None:
        a = a * (scale[:, None] if a.ndim == 2 else scale)
    elif perm is None:
        a = a.copy()
    return a


def _external(g, perm, scale, xp):
    """Map a gradient in the internal layout back to PyTorch's layout."""
    if scale is not None:
        g = g * (scale[:, None] if g.ndim == 2 else scale)
    if perm is not None:
        out = xp.empty_like(g)
        out[perm] = g
        g = out
    return g


_blas_warm = [False]


def _warm_blas(xp, dtype):
    """Run one GEMM with a wide right operand, once per process.

    On the machines this was tuned on, OpenBLAS runs the skinny GEMMs of a recurrent layer
    (``(1024, 256) @ (256, 32)``, K=2048 weight-gradient products) about 2-3x slower until the
    process has done one GEMM whose output has many columns; after that they stay fast. The
    warm-up costs about a millisecond, once.
    """
    if _blas_warm[0] or xp is not np:
        return
    _blas_warm[0] = True
    for dt in (np.float32, np.float64):
        np.matmul(np.ones((32, 512), dt), np.ones((512, 1024), dt))


def _sigmoid_inplace(a, xp):
    """``a <- 1 / (1 + exp(a))`` (the pre-activation was scaled by -1 or -2 beforehand)."""
    xp.exp(a, out=a)
    a += 1
    xp.reciprocal(a, out=a)


# ---- the LSTM's time loops, on a range of batch rows ------------------------------------------
# The sequences of a batch never interact, so each loop can run on any subset of the rows. With
# more than one thread (``deepgrad.get_num_threads()``: NumPy's BLAS thread count) the rows are split
# between Python threads, each running the WHOLE time loop on its rows with single-threaded BLAS:
# NumPy's ufuncs and the GEMMs release the GIL, and the threads meet once per loop instead of
# twice per time step inside every threaded GEMM (a per-step meeting is what makes a multi-threaded
# recurrent step crawl on a machine whose cores are busy with other work).

_MIN_ROWS = 8          # fewer rows per thread than this: not worth a thread


def _row_workers(xp, B):
    """How many threads to split ``B`` rows between (1: run in the calling thread). The count,
    the thread pool and OpenBLAS's pinning to one thread are deepgrad/_parallel.py's, shared with
    the convolutions: no split inside a pool thread or while deepgrad.compile records."""
    if xp is not np or B < 2 * _MIN_ROWS:
        return 1
    from .. import _parallel
    return max(1, _parallel.workers_for(B // _MIN_ROWS))


def _run_rows(xp, B, splittable, fn):
    """Call ``fn((b0, b1))`` on row ranges covering ``range(B)``: once, or from several threads."""
    k = _row_workers(xp, B) if splittable else 1
    if k <= 1:
        fn((0, B))
        return
    from .. import _parallel
    bounds = [B * i // k for i in range(k + 1)]
    err_state = np.geterr()            # (NumPy's error state is per thread)

    def work(rows, slot):
        with np.errstate(**err_state):
            fn(rows)
    _parallel.run_chunks(work, [(bounds[i], bounds[i + 1]) for i in range(k)], nthreads=k)


def _lstm_forward_rows(xp, A, Hs, WhhT4, c0, c_out, Kc, F, rows, ns, order, reverse, rec):
    """The LSTM's forward time loop on batch rows ``rows = (b0, b1)`` (see ``RNNLayer``): writes
    the states ``Hs``, the final cell state ``c_out`` and, when recording, the coefficients in
    place in ``A`` and ``Kc``, ``F``."""
    b0, b1 = rows
    Bc, H, dt = b1 - b0, A.shape[3], A.dtype
    A, Hs = A[:, :, b0:b1], Hs[:, b0:b1]
    if rec:
        Kc, F = Kc[:, b0:b1], F[:, b0:b1]
    cp = xp.empty((Bc, H), dt)
    cp[...] = c0[b0:b1]
    c = xp.empty((Bc, H), dt)
    tc_buf = xp.empty((Bc, H), dt)
    tmpH = xp.empty((Bc, H), dt)
    tmp4 = xp.empty((4, Bc, H), dt)
    fused = _ck.enabled(xp)        # GPU: one fused kernel per step (_cuda_kernels.py)
    for t in order:
        n = min(max(ns[t] - b0, 0), Bc)
        pi, ni = (t + 1, t) if reverse else (t, t + 1)
        g = A[:, t, :n]                             # (4, n, H): o, i, f, g
        z = tmp4[:, :n]
        xp.matmul(Hs[pi, :n], WhhT4, out=z)
        if fused:                  # the same record, written in place by one kernel
            args = (g[0], g[1], g[2], g[3], z[0], z[1], z[2], z[3], cp[:n], c[:n], Hs[ni, :n])
            if rec:
                _ck.lstm_forward_record(xp, *args, Kc[t, :n], F[t, :n])
            else:
                _ck.lstm_forward(xp, *args)
        else:
            # The gates are activated out of place, in the contiguous scratch z
            # (S = 1 / (1 + exp(z + a))); the record is then built in A's block.
            z += g
            xp.exp(z, out=z)
            z += 1
            xp.divide(1, z, out=z)                      # (faster than reciprocal here)
            so, si, sf, sg = z[0], z[1], z[2], z[3]
            if rec:
                xp.subtract(z, 1, out=g)                # s (s - 1) = -sigmoid', all four
                g *= z
            sg *= 2                                     # tanh(x) = 2 sigmoid(2x) - 1
            sg -= 1
            cn, cpn = c[:n], cp[:n]
            xp.multiply(sf, cpn, out=cn)
            tmp = tmpH[:n]
            xp.multiply(si, sg, out=tmp)
            cn += tmp
            tc = tc_buf[:n]
            xp.tanh(cn, out=tc)
            hn = Hs[ni, :n]
            xp.multiply(so, tc, out=hn)
            if rec:
                kc = Kc[t, :n]
                xp.multiply(hn, tc, out=kc)             # o tc^2
                xp.subtract(so, kc, out=kc)             # o (1 - tc^2)
                F[t, :n] = sf
                g[1::2] *= z[3:0:-2]                    # i: * g;  g: * i
                g[3] *= 2                               # i s(s-1) 2 = i (g^2 - 1) / 2
                g[2] *= cpn
                g[0] *= tc
        if n < Bc:
            Hs[ni, n:] = Hs[pi, n:]
            c[n:] = cp[n:]
        c, cp = cp, c
    c_out[b0:b1] = cp


def _lstm_backward_rows(xp, A, Kc, F, D, Whh, dh, dc, dout, rows, ns, order):
    """The LSTM's backward time loop on batch rows ``rows = (b0, b1)``: turns the record into the
    pre-activation gradient ``D`` (batch-major) and ``dh``, ``dc`` (updated in place) into the
    gradients of the initial states."""
    b0, b1 = rows
    Bc, H, dt = b1 - b0, A.shape[3], A.dtype
    A, Kc, F, D = A[:, :, b0:b1], Kc[:, b0:b1], F[:, b0:b1], D[:, b0:b1]
    dh, dc = dh[b0:b1], dc[b0:b1]
    if dout is not None:
        dout = dout[:, b0:b1]
    tmpH = xp.empty((Bc, H), dt)
    fused = _ck.enabled(xp)        # GPU: one fused kernel per step (_cuda_kernels.py)
    if fused and dout is None:
        dout0 = xp.zeros((Bc, H), dt)
    for t in order:
        n = min(max(ns[t] - b0, 0), Bc)
        d2 = D[t, :n]
        Dt, dhn_, dcn_ = A[:, t, :n], dh[:n], dc[:n]
        if fused:                  # D_t (batch-major) and dc in one kernel
            d4 = d2.reshape(n, 4, H)
            _ck.lstm_backward(xp, dhn_, dout0[:n] if dout is None else dout[t, :n], dcn_,
                              Dt[0], Dt[1], Dt[2], Dt[3], Kc[t, :n], F[t, :n],
                              d4[:, 0], d4[:, 1], d4[:, 2], d4[:, 3])
        else:
            if dout is not None:
                dhn_ += dout[t, :n]
            Dt[0] *= dhn_
            tmp = tmpH[:n]
            xp.multiply(dhn_, Kc[t, :n], out=tmp)
            dcn_ += tmp
            Dt[1:] *= dcn_
            dcn_ *= F[t, :n]
            xp.copyto(d2.reshape(n, 4, H).transpose(1, 0, 2), Dt)   # one GEMM for dh,
        xp.matmul(d2, Whh, out=dhn_)                                # not four and three adds
        if n < Bc:
            D[t, n:] = 0


class RNNLayer(Function):
    """One direction of one recurrent layer over a whole sequence (see the module docstring).

    Inputs: x (T, B, I), h0 (B, H), [c0 (B, H) for LSTM], w_ih, w_hh, [b_ih, b_hh].
    Outputs: output (T, B, H), h_n (B, H), [c_n (B, H) for LSTM].

    Layout: batch-major, time-major. ``A = [x | 1] @ [W_ih | b]^T`` (T*B, G) is the input
    projection of all steps with the bias folded into the GEMM; the loop activates the gates of
    step t in place in ``A[t]``. The states ``Hs`` (T+1, B, H) and, in backward, the
    pre-activation gradients ``D`` (T*B, G) are stored so that ``dW_hh = D^T @ h_prev``,
    ``[dW_ih | db] = D^T @ [x | 1]`` and ``dx = D @ W_ih`` are single GEMMs on free reshapes.
    With ``batch_sizes`` only the first ``n`` rows (the sequences still running) are computed at
    each step; the others keep their state and get zero gradient.

    LSTM: ``A`` is gate-major (4, T, B, H) (the input projection is one GEMM per gate block).
    While recording, forward overwrites each step's activated gates with the coefficients that
    backward multiplies by ``dh`` (o) or ``dc`` (i, f, g), and keeps ``Kc`` and the forget gate
    ``F`` (T, B, H); the cell states live in two alternating (B, H) buffers. Backward multiplies
    the records in place by ``dh``/``dc`` and copies step t's four blocks into row block t of
    the batch-major ``D`` (T, B, 4H), the operand of the single GEMM ``dh = D_t @ W_hh`` and,
    after the loop, of the weight and input gradients (as for the other modes). Because that
    consumes the records, a second backward through a retained graph first runs forward again
    from the saved inputs (``_recompute``); ``release`` drops the buffers when the engine frees
    the node. Both time loops run on batch-row ranges (``_lstm_forward_rows``,
    ``_lstm_backward_rows``), split between threads when NumPy's BLAS has more than one
    (``_run_rows``).
    """

    array_backward = True
    save_output = True

    def forward(self, x, h0, *rest, mode, reverse=False, batch_sizes=None, has_bias=True):
        xp = backend.array_module(x)
        _warm_blas(xp, x.dtype)
        lstm = mode == "LSTM"
        if lstm:
            c0, rest = rest[0], rest[1:]
        w_ih, w_hh = rest[0], rest[1]
        T, B, I = x.shape
        H = w_hh.shape[1]
        G = w_hh.shape[0]
        dt = x.dtype
        perm, scale = _layout(mode, H, xp, dt)
        Wih = _internal(w_ih, perm, scale)
        Whh = _internal(w_hh, perm, scale)
        WhhT = None if lstm else xp.ascontiguousarray(Whh.T)   # (H, G): h @ W_hh^T as a plain GEMM
        ns = [B] * T if batch_sizes is None else [int(v) for v in batch_sizes]
        order = range(T - 1, -1, -1) if reverse else range(T)
        H2, H3 = 2 * H, 3 * H
        bhn = None
        if has_bias:                                    # fold the bias into the input GEMM
            b_ih, b_hh = rest[2], rest[3]
            xa = xp.empty((T * B, I + 1), dt)
            xa[:, :I] = x.reshape(T * B, I)
            xa[:, I] = 1
            if mode == "GRU":
                bias = _internal(b_ih, perm, scale)
                bhh = _internal(b_hh, perm, scale)
                bias[:H2] += bhh[:H2]
                bhn = bhh[H2:]
            else:
                bias = _internal(b_ih + b_hh, perm, scale)
            Wa = xp.concatenate([Wih, bias[:, None]], axis=1)
        else:
            xa = xp.ascontiguousarray(x.reshape(T * B, I))
            Wa = Wih
        if lstm:
            # gate-major: A[k, t] is gate k of step t, a contiguous (B, H) block, so every
            # pointwise operation of the loop runs on whole contiguous blocks (a (B, H) slice of
            # a (B, 4H) row is ~5x slower per element in NumPy's ufuncs at this size).
            A = xp.matmul(xa, Wa.reshape(4, H, -1).transpose(0, 2, 1)).reshape(4, T, B, H)
        else:
            A = xp.matmul(xa, Wa.T).reshape(T, B, G)    # all input projections: one GEMM
        Hs = xp.empty((T + 1, B, H), dt)
        first = T if reverse else 0
        Hs[first] = h0
        tmpH = xp.empty((B, H), dt)
        extra = {}
        with np.errstate(over="ignore"):
            if lstm:
                # In-place recording: while step t's gates are hot in cache, each gate block of
                # A is overwritten by the coefficient backward multiplies it by (w.r.t. the
                # scaled pre-activations, gates o, i, f, g):
                #   A[:, t] <- [tc * -o(1-o), g * -i(1-i), c_prev * -f(1-f), i (1-g^2) / -2]
                # and two more (T, B, H) arrays keep Kc = o (1 - tc^2) (dc += dh * Kc) and the
                # forget gate F (dc_prev = dc * f). Backward then turns A into the gradient
                # w.r.t. the pre-activations in place. Nothing else per step is stored (the cell
                # states live in two alternating buffers): memory the size of the gates is
                # written once per step instead of three times.
                rec = self._record
                WhhT4 = xp.ascontiguousarray(Whh.reshape(4, H, H).transpose(0, 2, 1))  # (4, H, H)
                cn = xp.empty((B, H), dt)
                Kc = F = None
                if rec:
                    Kc = xp.empty((T, B, H), dt)
                    F = xp.empty((T, B, H), dt)
                # The sequences of a batch are independent: with more than one thread the rows
                # are split between threads, each running the whole time loop on its rows.
                _run_rows(xp, B, True,
                          lambda rows: _lstm_forward_rows(xp, A, Hs, WhhT4, c0, cn, Kc, F, rows,
                                                          ns, order, reverse, rec))
                extra = dict(Kc=Kc, F=F, cn=cn) if rec else dict(cn=cn)
            elif mode == "GRU":
                GH = xp.zeros((T, B, H), dt) if ns[-1] < B else xp.empty((T, B, H), dt)
                tmpG = xp.empty((B, G), dt)
                for t in order:
                    n = ns[t]
                    pi, ni = (t + 1, t) if reverse else (t, t + 1)
                    hp = Hs[pi, :n]
                    gh = tmpG[:n]
                    xp.matmul(hp, WhhT, out=gh)
                    a = A[t, :n]
                    rz = a[:, :H2]
                    rz += gh[:, :H2]
                    _sigmoid_inplace(rz, xp)
                    ghn = GH[t, :n]                      # W_hn h + b_hn (needed by backward)
                    if bhn is not None:
                        xp.add(gh[:, H2:], bhn, out=ghn)
                    else:
                        ghn[...] = gh[:, H2:]
                    nn_ = a[:, H2:]
                    tmp = tmpH[:n]
                    xp.multiply(rz[:, :H], ghn, out=tmp)
                    nn_ += tmp
                    _sigmoid_inplace(nn_, xp)
                    nn_ *= 2
                    nn_ -= 1
                    xp.subtract(hp, nn_, out=tmp)
                    tmp *= rz[:, H:]
                    xp.add(nn_, tmp, out=Hs[ni, :n])
                    if n < B:
                        Hs[ni, n:] = Hs[pi, n:]
                extra = dict(GH=GH)
            else:
                tanh_mode = mode == "RNN_TANH"
                for t in order:
                    n = ns[t]
                    pi, ni = (t + 1, t) if reverse else (t, t + 1)
                    h = Hs[ni, :n]
                    xp.matmul(Hs[pi, :n], WhhT, out=h)
                    h += A[t, :n]
                    if tanh_mode:
                        _sigmoid_inplace(h, xp)
                        h *= 2
                        h -= 1
                    else:
                        xp.maximum(h, 0, out=h)
                    if n < B:
                        Hs[ni, n:] = Hs[pi, n:]
        out = Hs[:T] if reverse else Hs[1:]
        if ns[-1] < B:
            out = out.copy()
            for t in range(T):
                if ns[t] < B:
                    out[t, ns[t]:] = 0
        last = 0 if reverse else T
        hn = Hs[last].copy()
        if self._record:
            self._attrs = dict(mode=mode, reverse=reverse, batch_sizes=batch_sizes, has_bias=has_bias)
            self._consumed = False
            self.mode, self.reverse, self.ns = mode, reverse, ns
            self.has_bias, self.perm, self.scale = has_bias, perm, scale
            self.xa, self.Wih, self.Whh, self.A, self.Hs = xa, Wih, Whh, A, Hs
            self.shape = (T, B, I, H, G)
            if self.inputs is not None:              # (None when _recompute runs forward again)
                self.save_for_backward(*self.inputs)  # for graph_backward and _recompute
            for k, v in extra.items():
                setattr(self, k, v)
        if lstm:
            return out, hn, extra["cn"].copy()
        return out, hn

    def _recompute(self):
        """Run forward again from the saved inputs: the LSTM's backward overwrites its records in
        place, so a second backward through a retained graph needs them rebuilt."""
        self.forward(*[t.array for t in self.saved_tensors], **self._attrs)

    _BUFFERS = ("xa", "Wih", "Whh", "A", "Hs", "Kc", "F", "GH")

    def release(self):
        for k in self._BUFFERS:
            self.__dict__.pop(k, None)

    # -------------------------------------------------------------------------------------------
    def backward(self, dout, dhn, dcn=None):
        self.output(0)  # raises if the output (a view of the saved states) was modified in place
        if self._consumed:                      # a second backward through a retained graph
            self._recompute()
        xp = backend.array_module(self.Hs)
        mode, reverse, ns = self.mode, self.reverse, self.ns
        T, B, I, H, G = self.shape
        A, Hs, Whh = self.A, self.Hs, self.Whh
        dt = Hs.dtype
        Hprev = Hs[1:] if reverse else Hs[:T]
        order = range(T) if reverse else range(T - 1, -1, -1)
        dh = xp.zeros((B, H), dt) if dhn is None else dhn.astype(dt, copy=True)
        tmpH = xp.empty((B, H), dt)
        H2, H3 = 2 * H, 3 * H
        D = None if mode == "LSTM" else xp.empty((T, B, G), dt)   # grad w.r.t. the scaled pre-activations
        DH = None                               # GRU: the part that flows through W_hh
        with np.errstate(all="ignore"):
            if mode == "LSTM":
                # A holds the coefficients recorded by forward (gate-major (4, T, B, H)); each
                # step multiplies them by dh or dc in place, leaving the pre-activation gradient.
                Kc, F = self.Kc, self.F
                dc = xp.zeros((B, H), dt) if dcn is None else dcn.astype(dt, copy=True)
                # D batch-major (T, B, 4H): step t's row block is the left operand of the one GEMM
                # dh = D_t @ W_hh, and the weight gradients are single GEMMs over all steps.
                D = xp.empty((T, B, G), dt)
                self._consumed = True
                _run_rows(xp, B, True, lambda rows: _lstm_backward_rows(xp, A, Kc, F, D, Whh, dh, dc,
                                                                        dout, rows, ns, order))
                for k in ("A", "Kc", "F"):     # consumed (a second backward runs forward again)
                    self.__dict__.pop(k, None)
                del A, Kc, F
            elif mode == "GRU":
                GH = self.GH
                r, z, nv = A[..., :H], A[..., H:H2], A[..., H2:]
                K = xp.empty((T, B, G), dt)
                Kn = K[..., H2:]
                xp.multiply(nv, nv, out=Kn)
                Kn -= 1
                tmp_big = xp.subtract(1, z)
                tmp_big *= 0.5
                Kn *= tmp_big                                                # (1-z)(n^2-1)/2
                xp.subtract(Hprev, nv, out=K[..., H:H2])
                xp.multiply(z, z, out=tmp_big)
                tmp_big -= z
                K[..., H:H2] *= tmp_big                                      # (h-n) * -z(1-z)
                xp.multiply(r, r, out=tmp_big)
                tmp_big -= r                                                 # -r(1-r)
                tmp_big *= GH
                xp.multiply(Kn, tmp_big, out=K[..., :H])                     # Kn * ghn' * -r(1-r)
                del tmp_big
                DH = xp.empty((T, B, G), dt)
                D3 = D.reshape(T, B, 3, H)
                K3 = K.reshape(T, B, 3, H)
                for t in order:
                    n = ns[t]
                    if dout is not None:
                        dh[:n] += dout[t, :n]
                    dhn_ = dh[:n]
                    xp.multiply(K3[t, :n], dhn_[:, None, :], out=D3[t, :n])
                    DH[t, :n, :H2] = D[t, :n, :H2]
                    xp.multiply(D[t, :n, H2:], r[t, :n], out=DH[t, :n, H2:])
                    tmp = tmpH[:n]
                    xp.multiply(dhn_, z[t, :n], out=tmp)
                    xp.matmul(DH[t, :n], Whh, out=dhn_)
                    dhn_ += tmp
                    if n < B:
                        D[t, n:] = 0
                        DH[t, n:] = 0
            else:
                Hout = Hs[:T] if reverse else Hs[1:]
                if mode == "RNN_TANH":
                    K = xp.multiply(Hout, Hout)
                    K -= 1
                    K *= 0.5                                                 # (1 - h^2) / -2
                else:
                    K = (Hout > 0).astype(dt)
                for t in order:
                    n = ns[t]
                    if dout is not None:
                        dh[:n] += dout[t, :n]
                    xp.multiply(dh[:n], K[t, :n], out=D[t, :n])
                    xp.matmul(D[t, :n], Whh, out=dh[:n])
                    if n < B:
                        D[t, n:] = 0
        need = self.needs_input_grad
        lstm = mode == "LSTM"
        k = 3 if lstm else 2          # index of w_ih among the inputs
        perm, scale = self.perm, self.scale
        has_bias = self.has_bias
        want_wa = need[k] or (has_bias and (need[k + 2] or need[k + 3]))
        Hp2 = Hprev.reshape(T * B, H)
        D2 = D.reshape(T * B, G)
        DH2 = D2 if DH is None else DH.reshape(T * B, G)
        dx = xp.matmul(D2, self.Wih).reshape(T, B, I) if need[0] else None
        dWa = xp.matmul(D2.T, self.xa) if want_wa else None
        dWhh = xp.matmul(DH2.T, Hp2) if need[k + 1] else None
        grads = [dx, dh if need[1] else None]
        if lstm:
            grads.append(dc if need[2] else None)
        grads.append(_external(dWa[:, :I], perm, scale, xp) if need[k] else None)
        grads.append(_external(dWhh, perm, scale, xp) if need[k + 1] else None)
        if has_bias:
            if need[k + 2] or need[k + 3]:
                dbi = _external(dWa[:, I], perm, scale, xp)
                dbh = dbi.copy() if DH is None else _external(DH2.sum(axis=0), perm, scale, xp)
                grads.append(dbi if need[k + 2] else None)
                grads.append(dbh if need[k + 3] else None)
            else:
                grads += [None, None]
        return tuple(grads)


    def graph_backward(self, dout, dhn, dcn=None):
        """create_graph=True: differentiate the layer composed cell by cell (ordinary ops)."""
        grads = [dout, dhn] + ([dcn] if self.mode == "LSTM" else [])
        return reference_grads(self._reference, self.saved_tensors, grads, self.needs_input_grad)

    def _reference(self, x, h, *rest):
        from .shape import cat, stack
        mode, ns = self.mode, self.ns
        T, B, _, H, _ = self.shape
        lstm = mode == "LSTM"
        c = None
        if lstm:
            c, rest = rest[0], rest[1:]
        w_ih, w_hh = rest[0], rest[1]
        b_ih, b_hh = (rest[2], rest[3]) if self.has_bias else (None, None)
        cell = {"RNN_TANH": rnn_tanh_cell, "RNN_RELU": rnn_relu_cell, "GRU": gru_cell}.get(mode)
        outs = [None] * T
        zeros = None
        for t in (range(T - 1, -1, -1) if self.reverse else range(T)):
            n = ns[t]
            xt, hp = (x[t], h) if n == B else (x[t, :n], h[:n])
            if lstm:
                hn, cn = lstm_cell(xt, hp, c if n == B else c[:n], w_ih, w_hh, b_ih, b_hh)
                c = cn if n == B else cat([cn, c[n:]], 0)
            else:
                hn = cell(xt, hp, w_ih, w_hh, b_ih, b_hh)
            if n == B:
                h = outs[t] = hn
            else:
                if zeros is None:
                    zeros = Tensor._make(backend.array_module(x.array).zeros((B, H), x.dtype))
                h = cat([hn, h[n:]], 0)
                outs[t] = cat([hn, zeros[n:]], 0)
        out = stack(outs, 0)
        return (out, h, c) if lstm else (out, h)


def _check(cond, msg):
    if not cond:
        raise RuntimeError(msg)


def rnn_layer(mode, input, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None, batch_sizes=None, reverse=False):
    """One direction of one recurrent layer over a time-major sequence (one fused op).

    ``mode``: 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU'. ``input`` (T, B, I); ``hx`` (B, H) or None
    (zeros); ``cx`` (B, H) or None for LSTM (ignored otherwise); weights in PyTorch's layout.
    ``batch_sizes``: per-step count of running sequences (batch sorted by decreasing length).
    Returns ``(output, h_n)``, or ``(output, h_n, c_n)`` for LSTM.
    """
    name = f"rnn_layer({mode})"
    _check(mode in _NGATES, f"rnn_layer: unknown mode {mode!r}; expected one of {sorted(_NGATES)}")
    _check(isinstance(input, Tensor) and input.ndim == 3,
           f"{name}: expected a 3-D (T, B, I) input Tensor, got "
           f"{tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__}")
    T, B, I = input.shape
    _check(T > 0, f"{name}: the sequence is empty (input shape {tuple(input.shape)})")
    ng = _NGATES[mode]
    H = w_hh.shape[1] if w_hh.ndim == 2 else -1
    _check(w_hh.ndim == 2 and w_hh.shape[0] == ng * H,
           f"{name}: weight_hh must have shape ({ng}*H, H), got {tuple(w_hh.shape)}")
    _check(w_ih.ndim == 2 and tuple(w_ih.shape) == (ng * H, I),
           f"{name}: weight_ih must have shape ({ng * H}, {I}) for input of shape {tuple(input.shape)}, "
           f"got {tuple(w_ih.shape)}")
    dt = input.dtype
    if dt.kind not in "fV":        # (messages are formatted only on failure: a dtype's str is slow)
        raise RuntimeError(f"{name}: expected a floating point input, got dtype {dt}")
    xp = backend.array_module(input.array)
    tensors = [input]

    def state(s, what):
        if s is None:
            return Tensor._make(xp.zeros((B, H), dt))
        _check(tuple(s.shape) == (B, H), f"{name}: expected {what} of shape {(B, H)}, got {tuple(s.shape)}")
        return s
    tensors.append(state(hx, "hidden state"))
    if mode == "LSTM":
        tensors.append(state(cx, "cell state"))
    tensors += [w_ih, w_hh]
    has_bias = b_ih is not None
    _check(has_bias == (b_hh is not None), f"{name}: pass both biases or neither")
    if has_bias:
        for b, nm in ((b_ih, "bias_ih"), (b_hh, "bias_hh")):
            _check(tuple(b.shape) == (ng * H,), f"{name}: {nm} must have shape ({ng * H},), got {tuple(b.shape)}")
        tensors += [b_ih, b_hh]
    for t in tensors[1:]:
        if t.dtype != dt:
            raise RuntimeError(f"{name}: all tensors must have the input's dtype {dt}; got {t.dtype} "
                               f"for a tensor of shape {tuple(t.shape)}")
    if batch_sizes is not None:
        bs = np.asarray(batch_sizes.array if isinstance(batch_sizes, Tensor) else batch_sizes).astype(np.int64)
        _check(bs.shape == (T,), f"{name}: batch_sizes must have one entry per step ({T}), got shape {bs.shape}")
        _check(bool((bs >= 1).all() and (bs <= B).all() and (np.diff(bs) <= 0).all()),
               f"{name}: batch_sizes must be non-increasing and within [1, {B}], got {bs.tolist()}")
        batch_sizes = None if bs[-1] == B else bs
    return RNNLayer.apply(*tensors, mode=mode, reverse=bool(reverse), batch_sizes=batch_sizes,
                          has_bias=has_bias)


# ---------------------------------------------------------------------------------------------
# Cells: one time step, composed of ordinary (twice-differentiable) ops
# ---------------------------------------------------------------------------------------------

def _gates(input, hx, w_ih, w_hh, b_ih, b_hh):
    gi = matmul(input, w_ih.t())
    gh = matmul(hx, w_hh.t())
    if b_ih is not None:
        gi = gi + b_ih
    if b_hh is not None:
        gh = gh + b_hh
    return gi, gh


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    gi, gh = _gates(input, hx, w_ih, w_hh, b_ih, b_hh)
    return tanh(gi + gh)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    gi, gh = _gates(input, hx, w_ih, w_hh, b_ih, b_hh)
    return relu(gi + gh)


def lstm_cell(input, hx, cx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step; returns ``(h', c')``. Gates in PyTorch's order i, f, g, o."""
    gi, gh = _gates(input, hx, w_ih, w_hh, b_ih, b_hh)
    i, f, g, o = chunk(gi + gh, 4, -1)
    c = sigmoid(f) * cx + sigmoid(i) * tanh(g)
    h = sigmoid(o) * tanh(c)
    return h, c


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step (PyTorch's formulation: r multiplies ``W_hn h + b_hn``)."""
    gi, gh = _gates(input, hx, w_ih, w_hh, b_ih, b_hh)
    ir, iz, in_ = chunk(gi, 3, -1)
    hr, hz, hn = chunk(gh, 3, -1)
    r = sigmoid(ir + hr)
    z = sigmoid(iz + hz)
    n = tanh(in_ + r * hn)
    return n + z * (hx - n)
