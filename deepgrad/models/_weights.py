"""torchvision's ``weights=`` / ``pretrained=`` arguments for the zoo's ImageNet constructors.

``resnet18(weights=None)`` (and the legacy ``pretrained=False``) build a freshly initialised
network, as torchvision does. deepgrad ships no pretrained weights and never downloads any, so a
request for them (``weights="IMAGENET1K_V1"``, ``"DEFAULT"``, ``ResNet18_Weights.DEFAULT``,
``pretrained=True``) raises a ``RuntimeError`` that names the weights and says what to do instead:
build with ``weights=None`` and ``load_state_dict`` parameters obtained elsewhere (the zoo uses
torchvision's parameter names). A name no torchvision weights enum has is a ``ValueError``, and
another model's enum a ``TypeError``, as in torchvision.
"""
from __future__ import annotations

import enum
import functools
import warnings

__all__ = ["WeightsEnum", "AlexNet_Weights", "GoogLeNet_Weights", "ResNet18_Weights",
           "ResNet34_Weights", "ResNet50_Weights", "ResNet101_Weights", "ResNet152_Weights",
           "VGG11_Weights", "VGG11_BN_Weights", "VGG13_Weights", "VGG13_BN_Weights",
           "VGG16_Weights", "VGG16_BN_Weights", "VGG19_Weights", "VGG19_BN_Weights"]


class WeightsEnum(enum.Enum):
    """The names of torchvision's pretrained weights (``DEFAULT`` is an alias of the
    recommended one). They identify weights; deepgrad holds none of their values."""

    @classmethod
    def verify(cls, obj):
        if obj is None or isinstance(obj, cls):
            return obj
        if isinstance(obj, str):
            key = obj.replace(cls.__name__ + ".", "")
            try:
                return cls[key]
            except KeyError:
                raise ValueError(f"Failed to find Weights {obj} in {cls.__name__}. Try one of "
                                 f"{list(cls.__members__)}") from None
        raise TypeError(f"Invalid Weight class provided; expected {cls.__name__} but received "
                        f"{type(obj).__name__}.")

    def __repr__(self):
        return f"{type(self).__name__}.{self.name}"

    def __str__(self):
        return repr(self)


def _weights_enum(name, members, default):
    table = {m: f"{name}.{m}" for m in members}
    table["DEFAULT"] = table[default]             # an alias, as in torchvision
    return WeightsEnum(name, table, module=__name__)


AlexNet_Weights = _weights_enum("AlexNet_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
GoogLeNet_Weights = _weights_enum("GoogLeNet_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
ResNet18_Weights = _weights_enum("ResNet18_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
ResNet34_Weights = _weights_enum("ResNet34_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
ResNet50_Weights = _weights_enum("ResNet50_Weights", ["IMAGENET1K_V1", "IMAGENET1K_V2"], "IMAGENET1K_V2")
ResNet101_Weights = _weights_enum("ResNet101_Weights", ["IMAGENET1K_V1", "IMAGENET1K_V2"], "IMAGENET1K_V2")
ResNet152_Weights = _weights_enum("ResNet152_Weights", ["IMAGENET1K_V1", "IMAGENET1K_V2"], "IMAGENET1K_V2")
VGG11_Weights = _weights_enum("VGG11_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
VGG11_BN_Weights = _weights_enum("VGG11_BN_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
VGG13_Weights = _weights_enum("VGG13_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
VGG13_BN_Weights = _weights_enum("VGG13_BN_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
VGG16_Weights = _weights_enum("VGG16_Weights", ["IMAGENET1K_V1", "IMAGENET1K_FEATURES"], "IMAGENET1K_V1")
VGG16_BN_Weights = _weights_enum("VGG16_BN_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
VGG19_Weights = _weights_enum("VGG19_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")
VGG19_BN_Weights = _weights_enum("VGG19_BN_Weights", ["IMAGENET1K_V1"], "IMAGENET1K_V1")

_SENTINEL = object()


def with_weights(weights_enum):
    """Give a zoo constructor torchvision's keyword arguments ``weights`` (``None`` or a
    ``weights_enum`` member or name), ``progress`` (ignored) and the legacy ``pretrained``."""

    def decorate(build):
        @functools.wraps(build)
        def constructor(*args, weights=None, progress=True, pretrained=_SENTINEL, **kwargs):
            name = build.__name__
            if pretrained is not _SENTINEL:
                warnings.warn(f"The parameter 'pretrained' is deprecated since torchvision 0.13; "
                              f"use 'weights' instead ({name}(weights=None) for an untrained "
                              "network).", UserWarning, stacklevel=2)
                if weights is None and pretrained:
                    weights = weights_enum.DEFAULT
            weights = weights_enum.verify(weights)
            if weights is not None:
                raise RuntimeError(
                    f"{name}(weights={weights!r}): no pretrained weights ship with deepgrad and it "
                    "never downloads any. Build the network with weights=None and load "
                    "parameters you have with model.load_state_dict(state_dict) (the zoo uses "
                    "torchvision's parameter names).")
            return build(*args, **kwargs)

        constructor.weights_enum = weights_enum
        return constructor

    return decorate
