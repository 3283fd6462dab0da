"""``low_precision``: train any model with emulated number formats (Courbariaux et al. 2014).

::

    from deepgrad.amp import FixedPoint, DynamicFixedPoint, low_precision
    with low_precision(model, propagation=FixedPoint(5, 15), update=FixedPoint(2, 18), optimizer=opt):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()

Inside the block:

* **propagations**: the output of every Linear, Bilinear, convolution and Maxout layer (or of the
  module types given in ``modules``) is rounded by ``propagation`` on the forward pass, and the
  gradient arriving at that output is rounded by it on the backward pass (:func:`quantize`: identity
  with rounding). The gradients of the parameters are rounded by it too
  (``parameter_gradients=True``), as the paper's "gradients" groups are.
* **parameter updates**: the parameters are stored in ``update``: rounded once on entry and again
  after every ``optimizer.step()`` (the optimiser computes the update in the parameters' own
  precision, float32, and only the stored result is rounded, as the paper does). Without an
  ``optimizer`` they are rounded before each forward pass of ``model`` instead (the same values
  reach every forward pass).

A :class:`DynamicFixedPoint` format gets one shared exponent per group, as in the paper: each
layer's output, output gradient, and each parameter and parameter gradient is its own group
(``self.formats`` maps ``"fc1.output"``, ``"fc1.output.grad"``, ``"fc1.weight"``,
``"fc1.weight.grad"`` ... to them). Leaving the block removes every hook; the parameters keep
their last (rounded) values. ``attach()``/``remove()`` do the same without ``with``.
"""
from __future__ import annotations

from .formats import NumberFormat, quantize

__all__ = ["low_precision"]


def _default_modules():
    from .. import nn
    names = ("Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
             "ConvTranspose3d", "Maxout")
    return tuple(getattr(nn, n) for n in names if hasattr(nn, n))


class low_precision:
    """Context manager (and plain object with ``attach``/``remove``) that applies ``propagation``
    to a model's layer outputs and gradients and ``update`` to its stored parameters; see the
    module docstring. Either format may be None (that part stays in the model's dtype)."""

    def __init__(self, model, propagation=None, update=None, *, optimizer=None, modules=None,
                 parameter_gradients=True, generator=None):
        from ..nn.module import Module
        if not isinstance(model, Module):
            raise TypeError(f"low_precision: expected an nn.Module, got {type(model).__name__}")
        for name, f in (("propagation", propagation), ("update", update)):
            if f is not None and not isinstance(f, NumberFormat):
                raise TypeError(f"low_precision: {name} must be a NumberFormat (FixedPoint, DynamicFixedPoint, "
                                f"Float16) or None, got {type(f).__name__}")
        if optimizer is not None and not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"low_precision: optimizer has no step(): {type(optimizer).__name__}")
        self.model, self.propagation, self.update = model, propagation, update
        self.optimizer, self.generator = optimizer, generator
        self.modules = tuple(modules) if modules is not None else _default_modules()
        self.parameter_gradients = bool(parameter_gradients)
        self.formats = {}
        self._handles = []
        self._step = None
        self.attached = False

    # ---- groups ------------------------------------------------------------------------------
    def _group(self, fmt, name):
        g = self.formats.get(name)
        if g is None:
            g = self.formats[name] = fmt.group()
        return g

    def _params(self):
        seen = set()
        for name, p in self.model.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def round_parameters(self):
        """Round every parameter in place to the ``update`` format (a no-op without one)."""
        if self.update is None:
            return
        for name, p in self._params():
            if p.array.dtype.kind == "f":
                p.array[...] = self._group(self.update, name).quantize(p.array, self.generator)

    # ---- attach / remove -------------------------------------------------------------------------
    def attach(self):
        if self.attached:
            raise RuntimeError("low_precision: already attached to the model")
        self.attached = True
        if self.propagation is not None:
            for name, m in self.model.named_modules():
                if isinstance(m, self.modules):
                    self._handles.append(m.register_forward_hook(self._output_hook(name or type(m).__name__)))
            if self.parameter_gradients:
                for name, p in self._params():
                    if p.requires_grad:
                        self._handles.append(p.register_hook(self._grad_hook(name)))
        if self.update is not None:
            self.round_parameters()
            if self.optimizer is not None:
                self._own_step = "step" in vars(self.optimizer)
                step = self._step = self.optimizer.step

                def rounded_step(*args, **kwargs):
                    out = step(*args, **kwargs)
                    self.round_parameters()
                    return out
                self.optimizer.step = rounded_step
            else:
                self._handles.append(self.model.register_forward_pre_hook(lambda m, args: self.round_parameters()))
        return self

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []
        if self._step is not None:
            if self._own_step:
                self.optimizer.step = self._step
            else:
                del self.optimizer.step      # the instance attribute set by attach(): the class's again
            self._step = None
        self.attached = False

    def __enter__(self):
        return self.attach()

    def __exit__(self, *exc):
        self.remove()
        return False

    def _output_hook(self, name):
        fmt = self.propagation

        def hook(module, args, out):
            from ..tensor import Tensor
            if isinstance(out, Tensor) and out.array.dtype.kind == "f":
                return quantize(out, self._group(fmt, name + ".output"), self._group(fmt, name + ".output.grad"),
                                self.generator)
            return None
        return hook

    def _grad_hook(self, name):
        fmt = self.propagation

        def hook(g):
            from ..tensor import Tensor
            return Tensor._make(self._group(fmt, name + ".grad").quantize(g.array, self.generator))
        return hook

    def exponents(self):
        """``{group: integer_bits}`` of the dynamic fixed-point groups (the shared exponents)."""
        return {k: f.integer_bits for k, f in self.formats.items() if hasattr(f, "history")}

    def __repr__(self):
        return (f"low_precision(propagation={self.propagation!r}, update={self.update!r}, "
                f"attached={self.attached})")
