"""The legacy hook-based ``weight_norm`` / ``remove_weight_norm`` (parameters ``<name>_g`` and
``<name>_v``; the weight is recomputed by a forward pre-hook), as ``torch.nn.utils.weight_norm``."""
from __future__ import annotations

import warnings

from ...tensor import Tensor
from ..parameter import Parameter
from ._norms import norm_except_dim, weight_norm_fn

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


class WeightNorm:
    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        return weight_norm_fn(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    @staticmethod
    def apply(module, name, dim):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        fn = WeightNorm(name, dim)
        weight = module._parameters.get(name)
        if weight is None:
            raise AttributeError(f"weight_norm: module {type(module).__name__} has no parameter '{name}'")
        del module._parameters[name]
        g = norm_except_dim(weight.detach(), 2, fn.dim)
        module.register_parameter(name + "_g", Parameter(Tensor._make(g.array.copy())))
        module.register_parameter(name + "_v", Parameter(Tensor._make(weight.array)))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(Tensor._make(weight.detach().array.copy())))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """``module.<name> = g * v / ||v||`` recomputed before every forward (deprecated in PyTorch in
    favour of ``nn.utils.parametrizations.weight_norm``, which deepgrad has too)."""
    warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                  "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name="weight"):
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
