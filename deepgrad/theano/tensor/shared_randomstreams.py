"""``theano.tensor.shared_randomstreams.RandomStreams``: random tensors in a graph, drawn afresh
at every call of a function (dropout masks, the corruption of a denoising autoencoder).

    srng = RandomStreams(seed=234)
    mask = srng.binomial(size=x.shape, n=1, p=0.7, dtype=theano.config.floatX)
    corrupted = mask * x

Draws come from a deepgrad ``Generator`` owned by the stream (seeded by ``seed``; ``srng.seed(n)``
reseeds it), so a program is reproducible from its seed. ``size`` is a tuple of ints, a tuple
mixing ints and symbolic integer scalars, or a symbolic shape such as ``x.shape``.
"""
from __future__ import annotations

import numpy as np

from ..config import config
from ..graph import Apply, Op, TensorType, Variable, as_tensor_variable, short_type

__all__ = ["RandomStreams"]


class RandomFunction(Op):
    """A draw of ``kind`` ('uniform', 'normal', 'binomial') from ``stream``'s generator."""

    def __init__(self, stream, kind, params, dtype, ndim, template):
        self.stream, self.kind, self.params, self.dtype = stream, kind, params, dtype
        self.ndim, self.template = ndim, template

    def __str__(self):
        return f"RandomFunction{{{self.kind}}}"

    def reads_values(self, node):
        return bool(node.inputs)      # a symbolic size is read into Python

    def make_node(self, *size_inputs):
        return Apply(self, list(size_inputs), [TensorType(self.dtype, (False,) * self.ndim)])

    def perform(self, node, values):
        import deepgrad as dg
        if self.template is None:                       # one symbolic shape vector
            shape = tuple(int(s) for s in values[0].array)
        else:
            it = iter(values)
            shape = tuple(int(next(it).item()) if t is None else t for t in self.template)
        g = self.stream.generator
        if self.kind == "uniform":
            low, high = self.params
            r = dg.rand(*shape, generator=g, dtype=dg.float64) * (high - low) + low
        elif self.kind == "normal":
            avg, std = self.params
            r = dg.randn(*shape, generator=g, dtype=dg.float64) * std + avg
        else:
            (p,) = self.params
            r = dg.rand(*shape, generator=g, dtype=dg.float64) < p
        return [r.to(np.dtype(self.dtype))]


class RandomStreams:
    """Theano's RandomStreams on a deepgrad Generator (see the module docstring)."""

    def __init__(self, seed=None):
        import deepgrad as dg
        self.generator = dg.Generator()
        self.seed(seed if seed is not None else 0)

    def seed(self, seed=None):
        self.generator.manual_seed(int(seed) if seed is not None else 0)

    def _draw(self, kind, size, params, dtype, ndim):
        name = kind
        if size is None:
            raise TypeError(f"RandomStreams.{name}: give size (a tuple or a symbolic shape such as x.shape)")
        if isinstance(size, Variable):
            if size.ndim != 1 or np.dtype(size.dtype).kind not in "iu":
                raise TypeError(f"RandomStreams.{name}: a symbolic size must be an integer vector such as "
                                f"x.shape, got {short_type(size)}")
            if ndim is None:
                raise TypeError(f"RandomStreams.{name}: with a symbolic size, give ndim (or use x.shape of "
                                "a variable x, whose ndim is known)")
            return RandomFunction(self, kind, params, dtype, ndim, None)(size)
        if isinstance(size, (int, np.integer)):
            size = (size,)
        template, ins = [], []
        for s in size:
            if isinstance(s, Variable):
                s = as_tensor_variable(s, f"RandomStreams.{name}")
                if s.ndim != 0 or np.dtype(s.dtype).kind not in "iu":
                    raise TypeError(f"RandomStreams.{name}: a symbolic size entry must be an integer scalar, "
                                    f"got {short_type(s)}")
                template.append(None)
                ins.append(s)
            else:
                template.append(int(s))
        return RandomFunction(self, kind, params, dtype, len(template), tuple(template))(*ins)

    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None):
        return self._draw("uniform", size, (float(low), float(high)), dtype or config.floatX, _ndim(size, ndim))

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None):
        return self._draw("normal", size, (float(avg), float(std)), dtype or config.floatX, _ndim(size, ndim))

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64"):
        if n != 1:
            raise NotImplementedError("RandomStreams.binomial: only n=1 (Bernoulli draws) is supported; sum "
                                      "n of them for more")
        return self._draw("binomial", size, (float(p),), dtype, _ndim(size, ndim))


def _ndim(size, ndim):
    if ndim is not None:
        return ndim
    if isinstance(size, Variable) and size.owner is not None and type(size.owner.op).__name__ == "Shape":
        return size.owner.inputs[0].ndim
    return None
