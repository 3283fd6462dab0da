"""Transfer learning helpers: freeze a backbone, swap the classifier head, per-layer learning rates."""
from __future__ import annotations

from .. import nn

__all__ = ["freeze", "unfreeze", "replace_head", "param_groups"]


def freeze(module: nn.Module, except_: tuple[str, ...] = ()) -> nn.Module:
    """Stop gradients for every parameter of ``module`` except those under the named sub-modules."""
    for name, p in module.named_parameters():
        keep = any(name == e or name.startswith(e + ".") for e in except_)
        p.requires_grad_(keep)
    return module


def unfreeze(module: nn.Module, names: tuple[str, ...] = ()) -> nn.Module:
    """Re-enable gradients for the named sub-modules (all parameters when ``names`` is empty)."""
    for name, p in module.named_parameters():
        if not names or any(name == n or name.startswith(n + ".") for n in names):
            p.requires_grad_(True)
    return module


def _head_path(model):
    for path in ("fc", "classifier", "head"):
        if hasattr(model, path):
            return path
    raise ValueError(f"replace_head: {type(model).__name__} has no 'fc', 'classifier' or 'head' module")


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the final Linear layer (``fc``, or the last Linear of ``classifier``) with a freshly
    initialised one producing ``num_classes`` outputs."""
    path = _head_path(model)
    head = getattr(model, path)
    if isinstance(head, nn.Linear):
        setattr(model, path, nn.Linear(head.in_features, num_classes))
        return model
    if isinstance(head, nn.Sequential):
        for i in reversed(range(len(head))):
            if isinstance(head[i], nn.Linear):
                head[i] = nn.Linear(head[i].in_features, num_classes)
                return model
    raise ValueError(f"replace_head: found no Linear layer in {path!r} of {type(model).__name__}")


def param_groups(model: nn.Module, lrs: dict[str, float], default_lr: float | None = None):
    """Optimizer parameter groups with a learning rate per named sub-module, e.g.
    ``param_groups(model, {"layer4": 1e-3, "fc": 1e-2})``; frozen parameters are skipped and the
    rest go to a group with ``default_lr`` (dropped when it is None)."""
    groups = {prefix: [] for prefix in lrs}
    rest = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        for prefix in lrs:
            if name == prefix or name.startswith(prefix + "."):
                groups[prefix].append(p)
                break
        else:
            rest.append(p)
    out = [{"params": ps, "lr": lrs[prefix]} for prefix, ps in groups.items() if ps]
    if rest and default_lr is not None:
        out.append({"params": rest, "lr": default_lr})
    return out
