"""VGG-11/13/16/19 (Simonyan & Zisserman 2014), with and without batch norm, torchvision layout."""
from __future__ import annotations

from .. import nn
from . import _weights as W
from ._weights import with_weights

__all__ = ["VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
           "make_vgg_layers"]

# Numbers are conv widths (3x3, padding 1); "M" is a 2x2 max-pool.
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_vgg_layers(cfg, batch_norm=False, in_channels=3):
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features, num_classes: int = 1000, init_weights: bool = True, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def _vgg(cfg, batch_norm, **kwargs):
    return VGG(make_vgg_layers(CONFIGS[cfg], batch_norm=batch_norm), **kwargs)


@with_weights(W.VGG11_Weights)
def vgg11(**kwargs): return _vgg("A", False, **kwargs)
@with_weights(W.VGG11_BN_Weights)
def vgg11_bn(**kwargs): return _vgg("A", True, **kwargs)
@with_weights(W.VGG13_Weights)
def vgg13(**kwargs): return _vgg("B", False, **kwargs)
@with_weights(W.VGG13_BN_Weights)
def vgg13_bn(**kwargs): return _vgg("B", True, **kwargs)
@with_weights(W.VGG16_Weights)
def vgg16(**kwargs): return _vgg("D", False, **kwargs)
@with_weights(W.VGG16_BN_Weights)
def vgg16_bn(**kwargs): return _vgg("D", True, **kwargs)
@with_weights(W.VGG19_Weights)
def vgg19(**kwargs): return _vgg("E", False, **kwargs)
@with_weights(W.VGG19_BN_Weights)
def vgg19_bn(**kwargs): return _vgg("E", True, **kwargs)
