"""torchvision's names on deepgrad: ``deepgrad.vision`` is to deepgrad what ``torchvision`` is to
PyTorch, so ``from torchvision import datasets, transforms, models, utils`` becomes
``from deepgrad.vision import datasets, transforms, models, utils``.

Nothing here is new machinery: ``datasets`` and ``transforms`` are deepgrad's data modules (plus
``FakeData`` and ``ImageFolder``), ``models`` is the model zoo, and ``utils`` holds
``make_grid``/``save_image``.
"""
import importlib

__all__ = ["datasets", "transforms", "models", "utils", "io"]


def __getattr__(name):
    if name in ("datasets", "transforms", "models", "utils"):
        return importlib.import_module(f".{name}", __name__)
    if name == "io":
        raise AttributeError("deepgrad.vision has no io module (torchvision.io reads video and image "
                             "files through C++ codecs); read images with PIL and transforms.ToTensor")
    raise AttributeError(f"module 'deepgrad.vision' has no attribute {name!r}")
