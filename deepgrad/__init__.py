"""deepgrad: a deep-learning framework in Python from first principles.

``import deepgrad as dg`` gives PyTorch's tensor API (factories, ops, autograd, grad mode) and the
packages built on it: ``nn``, ``optim``, ``data``, ``train``, ``models`` (imported on first use).
"""
from .backend import (float16, half, float32, float64, double, int32, int64, long, uint8, int8,
                      int16, bool_, device, get_default_dtype, set_default_dtype)
from .backend import bool_ as bool  # noqa: A001  (PyTorch spells it deepgrad.bool)
from .backend import float32 as float  # noqa: A001
from .backend import int32 as int  # noqa: A001
from .tensor import Tensor, Size
from .random import Generator, manual_seed, seed, initial_seed, get_rng_state, set_rng_state, default_generator
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled, inference_mode
from . import autograd
from .creation import *  # noqa: F401,F403
from .ops import *  # noqa: F401,F403
from . import nn, optim, data, train  # noqa: E402
from .nn.functional import dropout  # noqa: E402  (torch.dropout(input, p, train))
from .io import save, load  # noqa: E402
from . import linalg  # noqa: E402
from .linalg import TOP_LEVEL as _LINALG_TOP_LEVEL  # noqa: E402  (det, inverse, svd, qr, ...)
globals().update(_LINALG_TOP_LEVEL)
from .utils import data as _utils_data  # noqa: E402,F401  (deepgrad.utils.data, as torch.utils.data)
del _utils_data

from .backend import bfloat16  # noqa: E402
from ._legacy import (FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, LongTensor, IntTensor,  # noqa: E402
                      ShortTensor, CharTensor, ByteTensor, BoolTensor)
from ._numbers import finfo, iinfo  # noqa: E402
from ._config import (set_num_threads, get_num_threads, set_num_interop_threads, get_num_interop_threads,  # noqa: E402
                      set_float32_matmul_precision, get_float32_matmul_precision, set_printoptions)
from . import cuda, cpu, backends, accelerator, amp, jit, distributed  # noqa: E402
from .amp import autocast, is_autocast_enabled, get_autocast_dtype  # noqa: E402
from ._compile import compile  # noqa: E402,A001
from ._files import FileError  # noqa: E402  (every unreadable file: a ValueError and an OSError)

from ._toplevel import TOP_LEVEL as _TOP_LEVEL, OVERRIDE as _OVERRIDE  # noqa: E402  (torch.conv2d, torch.relu_, torch.pi)
globals().update({_k: _v for _k, _v in _TOP_LEVEL.items() if _k not in globals() or _k in _OVERRIDE})
del _TOP_LEVEL, _OVERRIDE

__version__ = "0.1.0"

from ._malloc import _at_import as _keep_freed_memory  # noqa: E402  (per-step temporaries reuse mapped pages)
_keep_freed_memory()
del _keep_freed_memory


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t) -> int:
    return t.numel()


def __getattr__(name):
    # The model zoo is imported on first use: it is large and most programs never touch it.
    if name == "models":
        import importlib
        return importlib.import_module(".models", __name__)
    if name in ("utils", "distributions", "special", "xpu"):  # torch.utils.checkpoint, torch.distributions
        import importlib
        return importlib.import_module("." + name, __name__)
    if name == "onnx":  # torch.onnx: the exporter (needs the optional onnx package only when called)
        import importlib
        return importlib.import_module(".onnx", __name__)
    if name in ("function", "print_graph", "theano"):  # Theano-style functions, graph printer: on first use
        import importlib
        mod = importlib.import_module(".theano", __name__)
        return mod if name == "theano" else getattr(mod, name)
    from ._torch_api import missing_module_attr  # a PyTorch name deepgrad lacks: NotImplementedError
    raise missing_module_attr("deepgrad", name)
