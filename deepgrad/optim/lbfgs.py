"""L-BFGS (limited-memory BFGS) with PyTorch's ``torch.optim.LBFGS`` API and iterates.

The algorithm, following Nocedal & Wright, *Numerical Optimization* (2nd ed.):

* Direction (Algorithm 7.4, the two-loop recursion). With the last ``m`` curvature pairs
  ``s_k = x_{k+1} - x_k``, ``y_k = g_{k+1} - g_k`` and ``rho_k = 1 / (y_k . s_k)``, the product
  ``H g`` of the inverse-Hessian approximation with the gradient is computed without forming
  ``H``: a backward pass ``a_k = rho_k s_k . q; q -= a_k y_k`` from ``q = g``, a scaling by
  ``gamma = (s . y) / (y . y)`` of the newest pair (eq. 7.20), and a forward pass
  ``b = rho_k y_k . r; r += (a_k - b) s_k``. A pair is kept only when ``y . s > 1e-10`` (the
  curvature condition; otherwise ``H`` would stop being positive definite).
* Step length: either the fixed step ``lr`` (the very first iteration uses
  ``min(1, 1 / |g|_1) * lr``, since nothing is known of the scale yet), or a line search for the
  strong Wolfe conditions (Algorithms 3.5 and 3.6): *bracket* by growing the step (each new trial
  the minimiser of the cubic through the last two points, kept within ``[t + 0.01 (t - t_prev),
  10 t]``) until sufficient decrease fails or the slope turns non-negative, then *zoom* by cubic
  interpolation inside the bracket, moved away from its ends when progress stalls.

Iteration order, stopping tests and evaluation counts are those of PyTorch, so for the same
closure the two produce the same iterates (float64: equal to rounding). Like PyTorch, the whole
state lives under the first parameter (``state_dict`` round-trips it) and only one parameter
group is allowed. Scalars are kept as NumPy scalars of the parameters' dtype, so float32 runs
round as PyTorch's 0-d float32 tensors do.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor
from .optimizer import Optimizer, _scalar

__all__ = ["LBFGS"]


def _cubic_min(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic with values ``f1, f2`` and slopes ``g1, g2`` at ``x1, x2``
    (N&W eq. 3.59), clipped to ``bounds`` (default: the interval between the two points); the
    interval's midpoint when the cubic has no real stationary point."""
    if bounds is None:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    else:
        lo, hi = bounds
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 ** 2 - g1 * g2
    if not disc >= 0:            # no real stationary point (or NaN): bisect
        return (lo + hi) / 2.0
    d2 = np.sqrt(disc)
    if x1 <= x2:
        t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        t = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(t, lo), hi)


def _strong_wolfe(evaluate, t, d, f0, g0, slope0, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """Search along ``d`` from the current point (loss ``f0``, gradient ``g0``, slope
    ``slope0 = g0 . d < 0``) for a step satisfying the strong Wolfe conditions
    ``f(t) <= f0 + c1 t slope0`` and ``|f'(t)| <= c2 |slope0|``.

    ``evaluate(t)`` returns ``(loss, flat gradient)`` at ``x + t d`` and leaves ``x`` unchanged.
    Returns ``(loss, gradient, t, evaluations)`` of the accepted step."""
    d_inf = backend.array_module(d).abs(d).max()
    g0 = g0.copy()

    def armijo_fails(t, f):
        return f > f0 + c1 * t * slope0

    def curvature_holds(slope):
        return abs(slope) <= -c2 * slope0

    f, g = evaluate(t)
    evals = 1
    slope = g.dot(d)
    # Phase 1 (N&W Algorithm 3.5): find an interval that brackets an acceptable step.
    t_prev, f_prev, g_prev, slope_prev = 0, f0, g0, slope0
    found = False
    it = 0
    pts = None
    while it < max_ls:
        if armijo_fails(t, f) or (it > 1 and f >= f_prev):
            pts = [[t_prev, f_prev, g_prev, slope_prev], [t, f, g.copy(), slope]]
            break
        if curvature_holds(slope):
            pts = [[t, f, g, slope]]
            found = True
            break
        if slope >= 0:
            pts = [[t_prev, f_prev, g_prev, slope_prev], [t, f, g.copy(), slope]]
            break
        t_new = _cubic_min(t_prev, f_prev, slope_prev, t, f, slope,
                           bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, slope_prev = t, f, g.copy(), slope
        t = t_new
        f, g = evaluate(t)
        evals += 1
        slope = g.dot(d)
        it += 1
    if it == max_ls:        # ran out of evaluations while still growing the step
        pts = [[0, f0, g0, None], [t, f, g, None]]

    # Phase 2 (N&W Algorithm 3.6): shrink the bracket around an acceptable step.
    stalled = False
    low, high = (0, 1) if pts[0][1] <= pts[-1][1] else (1, 0)
    while not found and it < max_ls:
        a, b = pts[0][0], pts[1][0]
        if abs(b - a) * d_inf < tolerance_change:
            break
        t = _cubic_min(a, pts[0][1], pts[0][3], b, pts[1][1], pts[1][3])
        left, right = min(a, b), max(a, b)
        margin = 0.1 * (right - left)
        if min(right - t, t - left) < margin:
            # Too close to an end: after one such step (or when t lies on an end), move the
            # trial a tenth of the bracket inside from the nearer end.
            if stalled or t >= right or t <= left:
                t = right - margin if abs(t - right) < abs(t - left) else left + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f, g = evaluate(t)
        evals += 1
        slope = g.dot(d)
        it += 1
        if armijo_fails(t, f) or f >= pts[low][1]:
            pts[high] = [t, f, g.copy(), slope]
            low, high = (0, 1) if pts[0][1] <= pts[1][1] else (1, 0)
        else:
            if curvature_holds(slope):
                found = True
            elif slope * (pts[high][0] - pts[low][0]) >= 0:
                pts[high] = pts[low]
            pts[low] = [t, f, g.copy(), slope]
    t, f, g, _ = pts[low]
    return f, g, t, evals


def _to_state(value):
    """Scalars computed here are NumPy scalars; keep them in ``state`` as 0-d Tensors (as
    PyTorch does) so that ``state_dict``/``load_state_dict`` treat them like any tensor."""
    if isinstance(value, np.generic) or (hasattr(value, "ndim") and not isinstance(value, Tensor)):
        return Tensor._make(backend.array_module(value).asarray(value))
    return value


def _from_state(value):
    if isinstance(value, Tensor):
        arr = value.array
        return arr[()] if arr.ndim == 0 else arr
    return value


class LBFGS(Optimizer):
    """L-BFGS (PyTorch's ``torch.optim.LBFGS``). ``step(closure)`` runs up to ``max_iter``
    iterations; ``closure`` must zero the gradients, compute the loss, call ``backward`` and
    return the loss. ``line_search_fn``: ``None`` (fixed step ``lr``) or ``"strong_wolfe"``."""

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= _scalar(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    @property
    def _params(self):
        return self.param_groups[0]["params"]

    # ---- flat views of the parameters -----------------------------------------------------------
    def _flat_grad(self):
        parts = []
        for p in self._params:
            if p.grad is None:
                parts.append(backend.array_module(p.array).zeros(p.numel(), dtype=p.array.dtype))
            else:
                parts.append(p.grad.array.reshape(-1))
        xp = backend.array_module(parts[0])
        return xp.concatenate(parts)

    def _move(self, t, d):
        """``x <- x + t d`` on every parameter, in place."""
        offset = 0
        for p in self._params:
            n = p.numel()
            p.array += t * d[offset:offset + n].reshape(p.array.shape)
            p._version[0] += 1
            offset += n

    def _copy_params(self):
        return [p.array.copy() for p in self._params]

    def _restore(self, saved):
        for p, a in zip(self._params, saved):
            p.array[...] = a
            p._version[0] += 1

    # ---- the step ---------------------------------------------------------------------------------
    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss of the first evaluation."""
        if closure is None or not callable(closure):
            raise TypeError("LBFGS.step requires a closure that re-evaluates the model and "
                            "returns the loss: optimizer.step(closure)")
        if len(self.param_groups) != 1:
            raise ValueError(f"Expected exactly one param_group, but got {len(self.param_groups)}")
        with no_grad():
            return self._step(closure)

    def _evaluate(self, closure):
        with enable_grad():
            return closure()

    def _step(self, closure):
        group = self.param_groups[0]
        lr = _scalar(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        line_search, history = group["line_search_fn"], group["history_size"]
        if line_search is not None and line_search != "strong_wolfe":
            raise RuntimeError("only 'strong_wolfe' is supported")

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = self._evaluate(closure)
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        if backend.array_module(g).abs(g).max() <= tol_grad:
            return orig_loss

        d = _from_state(state.get("d"))
        t = _from_state(state.get("t"))
        dirs = [_from_state(v) for v in state.get("old_dirs") or []]
        steps = [_from_state(v) for v in state.get("old_stps") or []]
        rho = [_from_state(v) for v in state.get("ro") or []]
        h_diag = _from_state(state.get("H_diag"))
        g_prev = _from_state(state.get("prev_flat_grad"))
        loss_prev = state.get("prev_loss")
        alpha = [_from_state(v) for v in state["al"]] if "al" in state else None

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # -- direction ------------------------------------------------------------------
            if state["n_iter"] == 1:
                d = -g
                dirs, steps, rho = [], [], []
                h_diag = 1
            else:
                y = g - g_prev
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:                      # curvature condition: keep the pair
                    if len(dirs) == history:
                        del dirs[0], steps[0], rho[0]
                    dirs.append(y)
                    steps.append(s)
                    rho.append(1.0 / ys)
                    h_diag = ys / y.dot(y)
                if alpha is None:
                    alpha = [None] * history
                q = -g
                for i in reversed(range(len(dirs))):
                    alpha[i] = steps[i].dot(q) * rho[i]
                    q -= alpha[i] * dirs[i]
                d = r = q * h_diag
                for i in range(len(dirs)):
                    beta = dirs[i].dot(r) * rho[i]
                    r += (alpha[i] - beta) * steps[i]

            g_prev = g.copy()
            loss_prev = loss

            # -- step length --------------------------------------------------------------------
            t = min(1.0, 1.0 / backend.array_module(g).abs(g).sum()) * lr if state["n_iter"] == 1 else lr
            slope = g.dot(d)
            if slope > -tol_change:                 # not a descent direction any more
                break

            new_evals = 0
            if line_search is not None:
                x0 = self._copy_params()

                def along(step):
                    self._move(step, d)
                    f = float(self._evaluate(closure))
                    grad = self._flat_grad()
                    self._restore(x0)
                    return f, grad

                loss, g, t, new_evals = _strong_wolfe(along, t, d, loss, g, slope,
                                                      max_ls=max_eval - evals)
                self._move(t, d)
                converged = backend.array_module(g).abs(g).max() <= tol_grad
            else:
                self._move(t, d)
                converged = False
                if n_iter != max_iter:              # the last iteration's loss is not needed
                    loss = float(self._evaluate(closure))
                    g = self._flat_grad()
                    converged = backend.array_module(g).abs(g).max() <= tol_grad
                    new_evals = 1
            evals += new_evals
            state["func_evals"] += new_evals

            # -- stopping tests -------------------------------------------------------------
            if n_iter == max_iter or evals >= max_eval or converged:
                break
            if backend.array_module(d).abs(d * t).max() <= tol_change:   # the step no longer moves the parameters
                break
            if abs(loss - loss_prev) < tol_change:  # the loss no longer changes
                break

        state["d"] = _to_state(d)
        state["t"] = _to_state(t)
        state["old_dirs"] = [_to_state(v) for v in dirs]
        state["old_stps"] = [_to_state(v) for v in steps]
        state["ro"] = [_to_state(v) for v in rho]
        state["H_diag"] = _to_state(h_diag)
        state["prev_flat_grad"] = _to_state(g_prev)
        state["prev_loss"] = loss_prev
        if alpha is not None:
            state["al"] = [_to_state(v) for v in alpha]
        return orig_loss
