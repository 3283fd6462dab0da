"""Run unchanged PyTorch programs on deepgrad: ``torch.*`` names registered as deepgrad's modules.

From the shell::

    python -m deepgrad.torch_compat train.py --epochs 3      # the script runs as __main__
    python -m deepgrad.torch_compat -m mypackage.train ...   # or a module, as python -m does

From a notebook or a program, before anything imports torch::

    import deepgrad.torch_compat
    deepgrad.torch_compat.install()
    import torch                        # this is deepgrad

``install()`` puts deepgrad's own module objects into ``sys.modules`` under PyTorch's names
(``torch`` is ``deepgrad``, ``torch.nn`` is ``deepgrad.nn``, ``torch.utils.data`` is
``deepgrad.data``, ``torchvision`` is ``deepgrad.vision`` ...), and adds an import hook that
maps any other ``torch.X.Y`` to ``deepgrad.X.Y`` (``torchvision.X`` to ``deepgrad.vision.X``) when
deepgrad has such a module.
Nothing is copied or wrapped: ``torch.nn.Linear is deepgrad.nn.Linear``. A ``torch`` module that
deepgrad lacks raises ModuleNotFoundError naming it; the real PyTorch is never imported, and if it
was imported already ``install()`` refuses (two frameworks under one name would mix silently).

What it cannot do: run C++/CUDA extensions or custom CUDA kernels, load whole pickled models or
any pickle beyond tensors and containers (``torch.load`` reads ``torch.save`` checkpoints of
tensors, state dicts and checkpoint dicts through deepgrad's allow-listed unpickler and refuses
anything else), or provide APIs deepgrad does not have.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import runpy
import sys
import types

__all__ = ["install", "uninstall", "is_installed", "main", "MAPPED"]

# PyTorch module name -> deepgrad module name where it is not simply torch.X -> deepgrad.X. An exact
# entry names the module itself; a prefix entry renames everything below it (longest prefix wins).
_EXACT = {
    "torch": "deepgrad",
    "torch.utils.data": "deepgrad.data",         # a package, so torch.utils.data.X imports work
    "torchvision": "deepgrad.vision",
}
_PREFIX = {
    "torch": "deepgrad",
    "torch.utils.data": "deepgrad.data",         # torch.utils.data.dataloader -> deepgrad.data.dataloader
    "torchvision": "deepgrad.vision",            # torchvision.transforms -> deepgrad.vision.transforms
}
# The modules real programs import first; each is registered by install() if deepgrad has it.
MAPPED = (
    "torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.nn.utils", "torch.nn.utils.rnn",
    "torch.nn.utils.clip_grad", "torch.nn.utils.parametrizations", "torch.nn.utils.parametrize",
    "torch.nn.modules", "torch.nn.parameter", "torch.nn.parallel", "torch.optim", "torch.optim.lr_scheduler",
    "torch.optim.optimizer", "torch.utils", "torch.utils.data", "torch.utils.checkpoint", "torch.autograd",
    "torch.autograd.functional", "torch.linalg", "torch.distributions", "torch.cuda", "torch.cuda.amp",
    "torch.cpu", "torch.cpu.amp", "torch.backends", "torch.backends.cudnn", "torch.backends.cuda",
    "torch.backends.mps", "torch.backends.mkldnn", "torch.amp", "torch.distributed", "torch.jit",
    "torch.accelerator", "torch.random", "torchvision", "torchvision.datasets", "torchvision.transforms",
    "torchvision.models", "torchvision.utils",
)
_ROOTS = ("torch", "torchvision")

_installed = {"on": False, "names": [], "attrs": [], "finder": None}


def _target(name):
    """The deepgrad module name for a torch/torchvision module name, or None."""
    if name in _EXACT:
        return _EXACT[name]
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):       # longest renamed prefix: torch.utils.data.x -> deepgrad.data.x
        head = ".".join(parts[:i])
        if head in _PREFIX:
            return _PREFIX[head] + "." + ".".join(parts[i:])
    return None


def _deepgrad_module(name):
    """Import deepgrad's module for ``name`` (a torch name), or None when deepgrad has none."""
    target = _target(name)
    if target is None or any(p.startswith("_") for p in name.split(".")):
        return None
    try:
        if importlib.util.find_spec(target) is None:
            return None
    except ModuleNotFoundError:
        return None
    return importlib.import_module(target)


def _namespace(name, attrs):
    """A plain package standing in for a torch name deepgrad keeps elsewhere (torchvision, torch.utils)."""
    mod = types.ModuleType(name, f"deepgrad.torch_compat stand-in for {name}")
    mod.__path__ = []   # a package, so that submodule imports reach the hook below
    mod.__deepgrad_compat__ = True
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


class _AliasLoader(importlib.abc.Loader):
    """Hands the import system an already-imported deepgrad module under a torch name."""

    def __init__(self, module):
        self.module = module
        self.spec = getattr(module, "__spec__", None)

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        # The import system stamped our spec onto deepgrad's module; give it its own back.
        if self.spec is not None:
            module.__spec__ = self.spec


class _TorchFinder(importlib.abc.MetaPathFinder):
    """Resolves any torch.* / torchvision.* import to deepgrad, or fails with a clear error."""

    def find_spec(self, fullname, path=None, target=None):
        root = fullname.partition(".")[0]
        if root not in _ROOTS:
            return None
        mod = _deepgrad_module(fullname)
        if mod is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: deepgrad.torch_compat maps PyTorch's modules onto deepgrad's, and "
                f"deepgrad has no counterpart of {fullname} (C++/CUDA extensions and private torch modules cannot "
                "be provided). Change the program to avoid it, or run it with the real PyTorch.", name=fullname)
        parent, _, child = fullname.rpartition(".")
        if parent and parent in sys.modules and not hasattr(sys.modules[parent], child):
            _installed["attrs"].append((sys.modules[parent], child))
        _installed["names"].append(fullname)
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(mod), is_package=hasattr(mod, "__path__"))


def _real_torch_loaded():
    for name in _ROOTS:
        m = sys.modules.get(name)
        if m is not None and not (getattr(m, "__name__", "").startswith("deepgrad")
                                  or getattr(m, "__deepgrad_compat__", False)):
            return name, m
    return None


def is_installed() -> bool:
    return _installed["on"]


def install() -> None:
    """Register deepgrad under PyTorch's module names in ``sys.modules`` (see the module docstring)."""
    if _installed["on"]:
        return
    found = _real_torch_loaded()
    if found is not None:
        name, m = found
        raise RuntimeError(
            f"deepgrad.torch_compat.install(): the real {name} is already imported ({getattr(m, '__file__', m)}); "
            "install the shim before anything imports torch (first cell of the notebook, or run the program with "
            "python -m deepgrad.torch_compat script.py), so that one framework answers to the name")
    import deepgrad  # noqa: F401
    finder = _TorchFinder()
    sys.meta_path.insert(0, finder)
    _installed.update(on=True, finder=finder, names=[], attrs=[])
    for name in MAPPED:
        if name in sys.modules:
            continue
        mod = _deepgrad_module(name)
        if mod is None and name in ("torch.utils", "torchvision"):
            mod = _namespace(name, {})
        if mod is None:
            continue
        sys.modules[name] = mod
        _installed["names"].append(name)
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:
            pmod = sys.modules[parent]
            if getattr(pmod, child, None) is not mod and not hasattr(pmod, child):
                setattr(pmod, child, mod)
                _installed["attrs"].append((pmod, child))


def uninstall() -> None:
    """Undo ``install()``: remove the torch names and the import hook (for tests)."""
    if not _installed["on"]:
        return
    for name in _installed["names"]:
        sys.modules.pop(name, None)
    for name in [n for n in sys.modules if n.partition(".")[0] in _ROOTS]:
        m = sys.modules[name]
        if getattr(m, "__name__", "").startswith("deepgrad") or getattr(m, "__deepgrad_compat__", False):
            del sys.modules[name]
    for pmod, child in _installed["attrs"]:
        try:
            delattr(pmod, child)
        except AttributeError:
            pass
    if _installed["finder"] in sys.meta_path:
        sys.meta_path.remove(_installed["finder"])
    _installed.update(on=False, finder=None, names=[], attrs=[])


_USAGE = ("usage: python -m deepgrad.torch_compat SCRIPT.py [ARGS...]\n"
          "       python -m deepgrad.torch_compat -m MODULE [ARGS...]\n"
          "Runs an unchanged PyTorch program with `torch` (and torchvision's datasets/transforms/models) "
          "provided by deepgrad.")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr if not argv else sys.stdout)
        return 0 if argv else 2
    if argv[0] == "-m":
        if len(argv) < 2:
            print(_USAGE, file=sys.stderr)
            return 2
        install()
        sys.argv = [argv[1], *argv[2:]]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    script = argv[0]
    if not os.path.exists(script):
        print(f"deepgrad.torch_compat: no such file: {script}", file=sys.stderr)
        return 2
    install()
    sys.argv = [script, *argv[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
