"""``deepgrad.utils.summary``: a model summary in the manner of ``torchinfo.summary``.

One forward pass on made-up inputs (in eval mode, without grad; the model's mode is restored after)
with a forward hook on every module records each layer's output shape; the table lists the layers
by depth with their output shape, parameter count and mult-adds, then the totals.

Mult-adds (multiply-accumulates) are counted, as torchinfo counts them, for the layers whose cost is
a product with their weights:

* ``Linear``: ``(weight.numel() + bias.numel()) * (output.numel() / out_features)`` -- one MAC per
  weight per output position, plus the bias additions;
* ``ConvNd``: ``(weight.numel() + bias.numel()) * N * prod(output spatial size)``;
* ``ConvTransposeNd``: the same with the *input* spatial size (each input pixel is spread over the
  kernel);

other layers count 0 (shown as ``--``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["summary", "ModelStatistics", "LayerInfo"]


class LayerInfo:
    """One row of the summary: a module, where it sits, what it produced and cost."""

    def __init__(self, name, module, depth, depth_index, parent):
        self.name = name                  # the attribute path ("layer1.0.conv1"; "" for the model)
        self.module = module
        self.class_name = type(module).__name__
        self.depth = depth
        self.depth_index = depth_index
        self.parent = parent
        self.children = []
        self.output_size = None           # a list of ints, or a list of lists for several outputs
        self.calls = 0
        self.own_params = sum(p.numel() for p in module.parameters(recurse=False))
        self.own_trainable = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
        self.macs = 0

    def subtree(self):
        out, stack = [], [self]
        while stack:
            r = stack.pop()
            out.append(r)
            stack.extend(reversed(r.children))
        return out

    @property
    def num_params(self):
        return self.own_params

    def total_params(self):
        return sum(r.own_params for r in self.subtree())

    def total_macs(self):
        return sum(r.macs for r in self.subtree())


def _shapes(out):
    from ..tensor import Tensor
    if isinstance(out, Tensor):
        return list(out.shape)
    if isinstance(out, (list, tuple)):
        shapes = [s for s in (_shapes(o) for o in out) if s is not None]
        return shapes if shapes else None
    if isinstance(out, dict):
        return _shapes(list(out.values()))
    return None


def _first_tensor(out):
    from ..tensor import Tensor
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (list, tuple)):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _macs(module, inputs, output):
    from .. import nn
    out = _first_tensor(output)
    if out is None:
        return 0
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    per = (weight.numel() if weight is not None else 0) + (bias.numel() if bias is not None else 0)
    if isinstance(module, nn.Linear):
        positions = out.numel() // max(module.out_features, 1)
        return per * positions
    from ..nn.conv import _ConvNd, _ConvTransposeNd
    if isinstance(module, _ConvTransposeNd):
        x = _first_tensor(inputs)
        if x is None:
            return 0
        spatial = tuple(x.shape[-(len(module.kernel_size)):])
        batch = x.numel() // max(math.prod(spatial) * module.in_channels, 1)
        return per * batch * math.prod(spatial)
    if isinstance(module, _ConvNd):
        nd = len(module.kernel_size)
        spatial = tuple(out.shape[-nd:])
        batch = out.numel() // max(math.prod(spatial) * module.out_channels, 1)
        return per * batch * math.prod(spatial)
    return 0


def _fmt_int(n):
    return f"{n:,}"


def _units(n):
    if n >= 1e12:
        return "T", n / 1e12
    if n >= 1e9:
        return "G", n / 1e9
    if n >= 1e6:
        return "M", n / 1e6
    return "M", n / 1e6


class ModelStatistics:
    """What :func:`summary` returns: ``str()`` is the table; the numbers are attributes
    (``total_params``, ``trainable_params``, ``total_mult_adds``, ``summary_list``, ...)."""

    def __init__(self, rows, depth, col_names, col_width, input_bytes, param_bytes, total_params,
                 trainable_params, pass_bytes):
        self.summary_list = rows
        self.max_depth = depth
        self.col_names = tuple(col_names)
        self.col_width = col_width
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.non_trainable_params = total_params - trainable_params
        self.total_mult_adds = sum(r.macs for r in rows)
        self.total_input = input_bytes
        self.total_param_bytes = param_bytes
        self.total_output_bytes = pass_bytes

    def _row(self, cells, first_width):
        return cells[0].ljust(first_width) + "".join(c.ljust(self.col_width) for c in cells[1:])

    def __str__(self):
        headers = {"output_size": "Output Shape", "num_params": "Param #", "mult_adds": "Mult-Adds",
                   "trainable": "Trainable"}
        first = 40
        shown = [r for r in self.summary_list if r.depth <= self.max_depth]
        names = []
        for r in shown:
            if r.depth == 0:
                label = r.class_name
            elif r.depth == 1:
                label = f"├─{r.class_name}: {r.depth}-{r.depth_index}"
            else:
                label = "│    " * (r.depth - 1) + f"└─{r.class_name}: {r.depth}-{r.depth_index}"
            names.append(label)
        first = max(first, max((len(n) for n in names), default=0) + 2)
        width = first + self.col_width * len(self.col_names)
        bar = "=" * width
        lines = [bar, self._row(["Layer (type:depth-idx)"] + [headers[c] for c in self.col_names], first), bar]
        for r, label in zip(shown, names):
            collapsed = r.depth == self.max_depth and r.children
            params = r.total_params() if collapsed else r.own_params
            macs = r.total_macs() if collapsed else r.macs
            cells = [label]
            for c in self.col_names:
                if c == "output_size":
                    cells.append(str(r.output_size) if r.output_size is not None else "--")
                elif c == "num_params":
                    cells.append(_fmt_int(params) if params else "--")
                elif c == "mult_adds":
                    cells.append(_fmt_int(macs) if macs else "--")
                elif c == "trainable":
                    trainable = sum(x.own_trainable for x in (r.subtree() if collapsed else [r]))
                    cells.append("--" if not params else "True" if trainable == params else
                                 "False" if trainable == 0 else "Partial")
            lines.append(self._row(cells, first).rstrip())
        unit, val = _units(self.total_mult_adds)
        lines += [bar,
                  f"Total params: {_fmt_int(self.total_params)}",
                  f"Trainable params: {_fmt_int(self.trainable_params)}",
                  f"Non-trainable params: {_fmt_int(self.non_trainable_params)}",
                  f"Total mult-adds ({unit}): {val:.2f}",
                  bar,
                  f"Input size (MB): {self.total_input / 1e6:.2f}",
                  f"Forward/backward pass size (MB): {self.total_output_bytes / 1e6:.2f}",
                  f"Params size (MB): {self.total_param_bytes / 1e6:.2f}",
                  f"Estimated Total Size (MB): "
                  f"{(self.total_input + self.total_output_bytes + self.total_param_bytes) / 1e6:.2f}",
                  bar]
        return "\n".join(lines)

    __repr__ = __str__


_COLUMNS = ("output_size", "num_params", "mult_adds", "trainable")


def summary(model, input_size=None, input_data=None, batch_dim=None, dtypes=None, depth=3,
            col_names=("output_size", "num_params", "mult_adds"), col_width=25, verbose=1, device=None):
    """Summarise ``model`` like ``torchinfo.summary``: run it once on inputs of ``input_size``
    (a shape, or a list of shapes for several inputs; ``batch_dim`` inserts a batch of 1 at that
    position) of ``dtypes`` (a list, one per input; float32 by default), or on ``input_data``, and
    return a :class:`ModelStatistics` whose ``str()`` is the table (printed when ``verbose`` is 1).
    """
    from .. import backend, nn
    from ..autograd.grad_mode import no_grad
    from ..tensor import Tensor

    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: model must be a deepgrad.nn.Module, got {type(model).__name__}")
    if isinstance(col_names, str):
        col_names = (col_names,)
    bad = [c for c in col_names if c not in _COLUMNS]
    if bad:
        raise ValueError(f"summary: unknown column(s) {bad}; choose from {_COLUMNS}")
    if depth < 0:
        raise ValueError(f"summary: depth must be >= 0, got {depth}")

    # the inputs
    if input_data is None:
        if input_size is None:
            raise ValueError("summary: give input_size (a shape or a list of shapes) or input_data")
        sizes = [input_size] if (isinstance(input_size, (tuple, list)) and all(
            isinstance(s, int) for s in input_size)) else list(input_size)
        for s in sizes:
            if not isinstance(s, (tuple, list)) or not all(isinstance(d, int) and d >= 0 for d in s):
                raise ValueError(f"summary: input_size entries must be shapes (tuples of ints), got {s!r}")
        if dtypes is None:
            dtypes = [None] * len(sizes)
        if len(dtypes) != len(sizes):
            raise ValueError(f"summary: {len(dtypes)} dtypes for {len(sizes)} inputs")
        rng = np.random.default_rng(0)
        inputs = []
        for s, dt in zip(sizes, dtypes):
            s = tuple(s)
            if batch_dim is not None:
                s = s[:batch_dim] + (1,) + s[batch_dim:]
            npdt = backend.as_dtype(dt) if dt is not None else np.dtype(np.float32)
            if backend.is_floating(npdt):
                a = rng.random(s).astype(npdt)
            else:
                a = np.zeros(s, dtype=npdt)
            t = Tensor._make(a)
            if device is None:          # made-up inputs go where the model's parameters are
                device = next((p.device for p in model.parameters()), None)
            inputs.append(t.to(device) if device is not None else t)
        args, kwargs = inputs, {}
    else:
        if isinstance(input_data, dict):
            args, kwargs = [], dict(input_data)
        elif isinstance(input_data, (list, tuple)):
            args, kwargs = list(input_data), {}
        else:
            args, kwargs = [input_data], {}

    # the rows, in module order
    rows, by_module, counters = [], {}, {}
    for name, mod in model.named_modules():
        d = 0 if name == "" else name.count(".") + 1
        parent = None
        if d:
            pname = name.rsplit(".", 1)[0] if "." in name else ""
            parent = by_module.get(("name", pname))
        counters[d] = counters.get(d, 0) + 1
        r = LayerInfo(name, mod, d, counters[d], parent)
        if parent is not None:
            parent.children.append(r)
        rows.append(r)
        by_module[("name", name)] = r
        by_module.setdefault(id(mod), r)

    handles = []
    pass_bytes = [0]

    def make_hook(r):
        def hook(module, inp, out):
            r.calls += 1
            if r.output_size is None:
                r.output_size = _shapes(out)
            r.macs += _macs(module, inp, out)
            if not r.children:
                t = _first_tensor(out)
                if t is not None:
                    pass_bytes[0] += 2 * t.numel() * t.element_size()
        return hook

    for r in rows:
        handles.append(r.module.register_forward_hook(make_hook(r)))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(*args, **kwargs)
    except Exception as e:
        raise RuntimeError(f"summary: the forward pass of {type(model).__name__} failed on inputs of shape "
                           f"{[list(a.shape) for a in args if isinstance(a, Tensor)]}: {type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    seen, total, trainable, pbytes = set(), 0, 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        pbytes += p.numel() * p.element_size()
        if p.requires_grad:
            trainable += p.numel()
    in_bytes = sum(a.numel() * a.element_size() for a in list(args) + list(kwargs.values()) if isinstance(a, Tensor))
    stats = ModelStatistics(rows, depth, col_names, col_width, in_bytes, pbytes, total, trainable, pass_bytes[0])
    if verbose:
        print(stats)
    return stats
