"""The ``__getattr__`` of each ``deepgrad.nn.modules.*`` file: a name it does not list is looked
up in ``deepgrad.nn`` (so layers added there appear under PyTorch's path too); a name deepgrad
lacks raises an error that says so (a NotImplementedError that is also an AttributeError, so that
``hasattr`` and ``from ... import`` still behave)."""
from __future__ import annotations


class NotInDeepgrad(NotImplementedError, AttributeError):
    pass


def fallback(modname):
    short = modname.rsplit(".", 1)[-1]

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(f"module {modname!r} has no attribute {name!r}")
        from ... import nn
        if not name.startswith("_") and name in vars(nn):
            return vars(nn)[name]
        raise NotInDeepgrad(f"torch.nn.modules.{short}.{name} is not implemented in deepgrad (module {modname!r} "
                            f"has no attribute {name!r}); see deepgrad.nn for the layers it has")
    return __getattr__
