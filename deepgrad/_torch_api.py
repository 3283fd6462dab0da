"""What deepgrad says about a PyTorch name it lacks.

``deepgrad.X`` and ``tensor.X`` for a public PyTorch name X that deepgrad does not have raise
``TorchAPIMissing``: a ``NotImplementedError`` (the project's rule for missing APIs) that is also an
``AttributeError`` (so ``hasattr``/``getattr(obj, name, default)`` keep working), naming
``torch.X`` / ``Tensor.X`` and, where there is one, what to use instead. Any other unknown name is a
plain ``AttributeError``. The list of PyTorch names is data (``_torch_api_names.py``, generated from
torch 2.13 by tools/gen_torch_api.py); torch is never imported.
"""
from __future__ import annotations

from ._torch_api_names import TENSOR, TOP_LEVEL, TORCH_VERSION


class TorchAPIMissing(NotImplementedError, AttributeError):
    """A public PyTorch API that deepgrad does not implement (NotImplementedError and AttributeError)."""


_COMPLEX = "deepgrad has no complex dtypes; keep real and imaginary parts as two real tensors"
_SPARSE = "deepgrad has only dense tensors; use a dense tensor (e.g. scatter/index_add to build one)"
_QUANT = "deepgrad has no quantized tensors; keep float32 (or float16/bfloat16) weights"
_JIT = "deepgrad has no TorchScript/IR; run the Python code directly (deepgrad.jit.script returns it)"
_STORAGE = "deepgrad tensors have no separate storage object; use t.array (the NumPy array) or t.numpy()"
_STRIDED = "deepgrad has no arbitrary-stride views; use view/reshape, narrow, unfold or index_select"
_FFT = "deepgrad has no FFT; use numpy.fft on t.detach().numpy() (no gradient)"
_CUDNN = "this is a backend-specific kernel; use the deepgrad.nn.functional op of the same name"

# Exact alternatives for names users meet; categories by prefix below.
_ALTERNATIVES = {
    "stft": _FFT, "istft": _FFT, "fft": _FFT,
    "as_strided": _STRIDED, "as_strided_": _STRIDED, "as_strided_scatter": _STRIDED,
    "as_strided_copy": _STRIDED, "empty_strided": "use deepgrad.empty (contiguous)",
    "new_empty_strided": "use t.new_empty (contiguous)",
    "storage": _STORAGE, "untyped_storage": _STORAGE, "storage_type": _STORAGE, "set_": _STORAGE,
    "resize_": "use reshape/view, or new_empty for a fresh buffer",
    "resize_as_": "use reshape_as, or new_empty for a fresh buffer",
    "resize": "use reshape", "resize_as": "use reshape_as",
    "vmap": "loop over the batch or write the function for batched input",
    "func": "use deepgrad.autograd.functional (vjp, jvp, hvp, jacobian, hessian)",
    "lu": "use deepgrad.linalg.solve / inv / det", "lu_solve": "use deepgrad.linalg.solve",
    "lu_unpack": "use deepgrad.linalg.solve / inv / det",
    "eig": "use deepgrad.linalg.eigh for symmetric matrices (no complex eigenvalues)",
    "symeig": "use deepgrad.linalg.eigh", "lstsq": "use deepgrad.linalg.lstsq",
    "solve": "use deepgrad.linalg.solve", "triangular_solve": "use deepgrad.linalg.solve",
    "matrix_exp": "use deepgrad.linalg.eigh for symmetric matrices, or a truncated series",
    "geqrf": "use deepgrad.linalg.qr", "orgqr": "use deepgrad.linalg.qr", "ormqr": "use deepgrad.linalg.qr",
    "pca_lowrank": "use deepgrad.linalg.svd", "svd_lowrank": "use deepgrad.linalg.svd",
    "lobpcg": "use deepgrad.linalg.eigh",
    "histogram": "use deepgrad.histc", "histogramdd": "use deepgrad.histc per dimension",
    "index_reduce": "use scatter_reduce", "index_reduce_": "use scatter_reduce_",
    "cudnn_is_acceptable": _CUDNN,
    "to_dlpack": "use t.numpy() (NumPy shares the memory)",
    "from_dlpack": "use deepgrad.from_numpy / deepgrad.as_tensor",
    "frombuffer": "use deepgrad.from_numpy(numpy.frombuffer(...))",
    "from_file": "use deepgrad.from_numpy(numpy.fromfile(...))",
    "export": ("deepgrad has no torch.export programs; deepgrad.onnx.export writes an ONNX graph, "
               "deepgrad.save a state_dict"),
    "hub": "download weights yourself and load them with deepgrad.load",
    "fx": _JIT, "package": "save the state_dict with deepgrad.save",
    "record_stream": "deepgrad has no CUDA streams", "Stream": "deepgrad has no CUDA streams",
    "Event": "deepgrad has no CUDA streams",
    "apply_": "use t.array (NumPy) and write the result back with copy_",
    "map_": "use ops on tensors, or t.array with NumPy", "map2_": "use ops on tensors, or t.array with NumPy",
    "profiler": "use Python's cProfile", "monitor": "use Python logging",
    "name": "deepgrad has no named tensors", "names": "deepgrad has no named tensors",
    "refine_names": "deepgrad has no named tensors", "rename": "deepgrad has no named tensors",
    "align_to": "deepgrad has no named tensors", "align_as": "deepgrad has no named tensors",
    "nested": "deepgrad has no nested tensors; pad the sequences (nn.utils.rnn.pad_sequence)",
    "is_nested": "deepgrad has no nested tensors",
}

_PREFIXES = (
    ("sparse", _SPARSE), ("to_sparse", _SPARSE), ("is_sparse", _SPARSE), ("_sparse", _SPARSE),
    ("crow_", _SPARSE), ("ccol_", _SPARSE), ("col_indices", _SPARSE), ("row_indices", _SPARSE),
    ("coalesce", _SPARSE), ("is_coalesced", _SPARSE), ("indices", _SPARSE), ("values", _SPARSE),
    ("smm", _SPARSE), ("sspaddmm", _SPARSE), ("hspmm", _SPARSE), ("spmm", _SPARSE), ("dsmm", _SPARSE),
    ("hsmm", _SPARSE), ("saddmm", _SPARSE), ("dense_dim", _SPARSE), ("sparse_dim", _SPARSE),
    ("to_dense", "deepgrad tensors are always dense: the tensor itself is the answer"),
    ("q_", _QUANT), ("quantiz", _QUANT), ("qint", _QUANT), ("quint", _QUANT), ("qscheme", _QUANT),
    ("dequantize", _QUANT), ("int_repr", _QUANT), ("fake_quantize", _QUANT), ("fbgemm", _QUANT),
    ("per_channel", _QUANT), ("per_tensor", _QUANT), ("is_quantized", _QUANT), ("choose_qparams", _QUANT),
    ("complex", _COMPLEX), ("cfloat", _COMPLEX), ("cdouble", _COMPLEX), ("chalf", _COMPLEX),
    ("conj", _COMPLEX), ("is_conj", _COMPLEX), ("resolve_conj", _COMPLEX), ("resolve_neg", _COMPLEX),
    ("is_neg", _COMPLEX), ("view_as_complex", _COMPLEX), ("view_as_real", _COMPLEX), ("polar", _COMPLEX),
    ("angle", _COMPLEX),
    ("Script", _JIT), ("script", _JIT), ("jit", _JIT), ("Graph", _JIT), ("parse_ir", _JIT),
    ("import_ir", _JIT), ("Type", _JIT), ("FileCheck", _JIT), ("CompilationUnit", _JIT),
    ("cudnn_", _CUDNN), ("miopen_", _CUDNN), ("mkldnn", _CUDNN), ("native_", _CUDNN),
    ("Storage", _STORAGE), ("is_storage", _STORAGE),
    ("sym_", "deepgrad has no symbolic shapes; use Python ints"), ("Sym", "deepgrad has no symbolic shapes"),
)

_COPY_SUFFIX = "_copy"


_AUTOCAST = "use deepgrad.autocast(device_type=..., dtype=...) / deepgrad.amp"
_JIT_NAMES = frozenset("""AliasDb Argument ArgumentSpec Block CallStack Capsule Code CompleteArgumentSpec
ConcreteModuleType ConcreteModuleTypeBuilder DeepCopyMemoTable ErrorReport ExecutionPlan FunctionSchema
Gradient GraphExecutorState IODescriptor InferredType JITException LiteScriptModule Node OperatorInfo
StaticModule TracingState Use Value parse_schema parse_type_comment merge_type_from_type_comment
unify_type_list classes fork wait Future futures library cond while_loop""".split())
_KERNELS = ("batch_norm_", "grid_sampler", "affine_grid_generator", "conv_tbc", "convolution",
            "embedding_renorm_", "norm_except_dim", "max_pool1d_with_indices", "rnn_", "gru", "lstm",
            "segment_reduce", "fused_", "slice_inverse")


def alternative(name):
    """What to use instead of PyTorch's ``name`` (a phrase), or None when there is no obvious one."""
    if name in _ALTERNATIVES:
        return _ALTERNATIVES[name]
    for prefix, text in _PREFIXES:
        if name.startswith(prefix):
            return text
    if name.endswith("Storage"):
        return _STORAGE
    if name in _JIT_NAMES or (name.endswith("Type") and name[:1].isupper()):
        return _JIT
    if "autocast" in name:
        return _AUTOCAST
    if name.startswith(_KERNELS):
        return ("this is an internal kernel entry point; use the deepgrad.nn layer or nn.functional op "
                "(nn.LSTM/GRU/RNN, F.batch_norm, F.grid_sample, F.conv2d ...)")
    if name in ("gru_cell", "lstm_cell", "rnn_tanh_cell", "rnn_relu_cell"):
        return "use deepgrad.nn.LSTMCell / GRUCell / RNNCell"
    if name in ("i0", "i0_", "igamma", "igamma_", "igammac", "igammac_"):
        return "deepgrad has lgamma/digamma/polygamma/erf; no Bessel or incomplete-gamma functions yet"
    if name in ("xpu", "ipu", "mtia", "is_vulkan_available", "mps"):
        return "deepgrad runs on the CPU (NumPy) or a CUDA GPU (CuPy); see deepgrad.cuda / deepgrad.accelerator"
    if name.endswith(_COPY_SUFFIX):
        base = name[: -len(_COPY_SUFFIX)]
        return f"use deepgrad.{base}(...).clone()"
    if name.startswith(("float8", "float4", "uint", "int", "bits", "bit")) and name[-1:].isdigit() or name in ("bit", "bits16"):
        return "deepgrad supports float16/bfloat16/float32/float64, int8/16/32/64, uint8 and bool"
    return None


def _message(qualified, name):
    alt = alternative(name)
    text = (f"{qualified} (a public API of PyTorch {TORCH_VERSION}) is not implemented in deepgrad")
    return text + (f"; {alt}" if alt else "")


def missing_module_attr(module_name, name):
    """The exception for ``deepgrad.name`` (module ``module_name``) when normal lookup failed."""
    if name in TOP_LEVEL:
        return TorchAPIMissing(_message(f"torch.{name}", name))
    return AttributeError(f"module {module_name!r} has no attribute {name!r}")


def missing_tensor_attr(name):
    """The exception for ``tensor.name`` when normal lookup failed."""
    if name in TENSOR:
        return TorchAPIMissing(_message(f"Tensor.{name}", name))
    return AttributeError(f"'Tensor' object has no attribute {name!r}")
