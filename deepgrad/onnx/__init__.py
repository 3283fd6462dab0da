"""``deepgrad.onnx``: export a model to ONNX (``torch.onnx.export``'s names and arguments).

``export(model, args, "m.onnx", input_names=[...], output_names=[...], dynamic_axes={...})`` runs
the model once on ``args`` in eval mode, recording every op it applies (``_trace.py``), walks back
from the outputs to the ops they need, and writes each as ONNX nodes (``_convert.py``), parameters
and buffers as initializers under their state-dict names. The graph is built with the ``onnx``
package, checked with ``onnx.checker`` (full check, with shape inference) and written atomically.
The ``onnx`` package is an optional extra: ``pip install deepgrad[onnx]``.

What the trace cannot see is baked in as a constant: values computed by NumPy outside deepgrad's
ops, comparisons and other non-differentiable results, Python control flow (the branch taken on
the example input is the one exported). An op without a conversion raises NotImplementedError
naming it.
"""
from __future__ import annotations

import enum
import os

__all__ = ["export", "is_in_onnx_export", "TrainingMode", "OperatorExportTypes"]

DEFAULT_OPSET = 20          # torch 2.13's default
MIN_OPSET = 17              # LayerNormalization

_exporting = [False]


class TrainingMode(enum.IntEnum):
    """torch.onnx.TrainingMode: the mode the model is exported in."""
    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


class OperatorExportTypes(enum.IntEnum):
    """torch.onnx.OperatorExportTypes (only ONNX is supported)."""
    ONNX = 0
    ONNX_ATEN = 1
    ONNX_ATEN_FALLBACK = 2
    ONNX_FALLTHROUGH = 3


def is_in_onnx_export() -> bool:
    """True while ``export`` runs the model (as torch.onnx.is_in_onnx_export)."""
    return _exporting[0]


def _require_onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("deepgrad.onnx.export needs the onnx package: pip install deepgrad[onnx] "
                          "(or pip install onnx)") from e
    return onnx


# torch.onnx.export's options that change nothing here (one exporter, no optimisation passes to
# skip), and those deepgrad does not implement (NotImplementedError when given a non-default value).
_IGNORED = {"dynamo", "external_data", "do_constant_folding", "optimize", "autograd_inlining", "artifacts_dir"}
_UNSUPPORTED = {"dynamic_shapes": None, "custom_translation_table": None, "custom_opsets": None,
                "export_modules_as_functions": False, "report": False, "profile": False,
                "dump_exported_program": False}


def export(model, args=(), f=None, *, kwargs=None, verbose=None, input_names=None, output_names=None,
           opset_version=None, dynamic_axes=None, export_params=True, keep_initializers_as_inputs=False,
           training=TrainingMode.EVAL, operator_export_type=OperatorExportTypes.ONNX, verify=False,
           **options):
    """Export ``model`` run on ``args`` to the ONNX file ``f`` (a path, a binary file object, or None).

    ``args``: a Tensor or a tuple of Tensors (tuples of Tensors inside are flattened; a trailing
    dict is taken as keyword arguments, as torch does). ``input_names``/``output_names`` name the
    graph's inputs and outputs in order; ``dynamic_axes`` maps such a name to the axes that may vary
    (a list, or a dict axis -> symbolic name), e.g. ``{"x": {0: "batch"}, "logits": {0: "batch"}}``.
    ``opset_version``: 17 up to the installed onnx's newest (default 20, torch's). ``verify=True``
    runs the exported model in onnxruntime on ``args`` and checks it against deepgrad's outputs.
    Returns the ``onnx.ModelProto`` (torch returns an ONNXProgram or None).
    """
    onnx = _require_onnx()
    for name, value in options.items():
        if name in _IGNORED:
            continue
        if name in _UNSUPPORTED:
            if value != _UNSUPPORTED[name]:
                raise NotImplementedError(f"deepgrad.onnx.export: {name}= is not supported (torch.onnx.export's "
                                          f"{name}); use dynamic_axes for dynamic dimensions")
            continue
        raise TypeError(f"export() got an unexpected keyword argument {name!r}")
    if int(operator_export_type) != OperatorExportTypes.ONNX:
        raise NotImplementedError("deepgrad.onnx.export: only operator_export_type=OperatorExportTypes.ONNX "
                                  "is supported")
    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"deepgrad.onnx.export: opset_version must be between {MIN_OPSET} and {newest} "
                         f"(the installed onnx's newest), got {opset_version}")
    from ._export import run_export
    proto = run_export(onnx, model, args, kwargs, input_names, output_names, opset, dynamic_axes,
                       bool(export_params), bool(keep_initializers_as_inputs), training, bool(verbose))
    if verify:
        from ._export import verify_outputs
        verify_outputs(proto, model, args, kwargs)
    if f is not None:
        data = proto.SerializeToString()
        if hasattr(f, "write"):
            f.write(data)
        else:
            from ..io import atomic_write
            atomic_write(os.fspath(f), lambda fh: fh.write(data))
    return proto
