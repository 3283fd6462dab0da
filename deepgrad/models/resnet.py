"""Residual networks (He et al. 2016).

* ImageNet layout as torchvision: ``resnet18/34`` (BasicBlock) and ``resnet50/101/152``
  (Bottleneck), projection shortcuts (1x1 conv + BN) where the shape changes.
* CIFAR layout of the paper's section 4.2: a 3x3 conv with 16 channels, three stages of ``n``
  basic blocks with 16/32/64 channels (stride 2 at the start of stages 2 and 3), global average
  pooling and a linear classifier; 6n+2 weighted layers. Shortcuts are option A (identity, with
  stride-2 subsampling and zero-padded extra channels: no parameters), so ``resnet20`` has
  269,722 parameters. ``plain20/32/44/56/110`` are the same networks without shortcuts, for the
  degradation experiment (deeper plain nets train worse; residual ones do not).
"""
from __future__ import annotations

from .. import nn, ops
from ..nn import functional as F
from . import _weights as W
from ._weights import with_weights

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "resnet101",
           "resnet152", "CifarResNet", "CifarBasicBlock", "resnet20", "resnet32", "resnet44",
           "resnet56", "resnet110", "plain20", "plain32", "plain44", "plain56", "plain110"]


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride, as torchvision's "ResNet v1.5") -> 1x1 expand (x4)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                last = getattr(m, "bn3", None) if isinstance(m, Bottleneck) else getattr(m, "bn2", None)
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(last.weight)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


@with_weights(W.ResNet18_Weights)
def resnet18(**kwargs): return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)
@with_weights(W.ResNet34_Weights)
def resnet34(**kwargs): return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)
@with_weights(W.ResNet50_Weights)
def resnet50(**kwargs): return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)
@with_weights(W.ResNet101_Weights)
def resnet101(**kwargs): return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)
@with_weights(W.ResNet152_Weights)
def resnet152(**kwargs): return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


# ---------------------------------------------------------------------------------------------
# CIFAR-10 networks of section 4.2
# ---------------------------------------------------------------------------------------------

class ShortcutA(nn.Module):
    """Option A: identity, subsampled by the stride, extra channels zero-padded (no parameters)."""

    def __init__(self, stride, extra_channels):
        super().__init__()
        self.stride, self.extra = stride, extra_channels

    def forward(self, x):
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra:
            half = self.extra // 2
            x = F.pad(x, (0, 0, 0, 0, half, self.extra - half))
        return x

    def extra_repr(self):
        return f"stride={self.stride}, extra_channels={self.extra}"


class CifarBasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1, residual=True):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.residual = residual
        if residual and (stride != 1 or in_planes != planes):
            self.shortcut = ShortcutA(stride, planes - in_planes)
        else:
            self.shortcut = None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out)


class CifarResNet(nn.Module):
    """6n+2 layers: ``depth`` in {20, 32, 44, 56, 110}; ``residual=False`` gives the plain net.
    ``zero_init_residual=True`` starts each residual block's last batch-norm scale at zero, so every
    block begins as the identity (Goyal et al. 2017; torchvision's argument of the same name)."""

    def __init__(self, depth=20, num_classes=10, residual=True, zero_init_residual=False):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CifarResNet: depth must be 6n+2 (20, 32, 44, 56, 110...), got {depth}")
        n = (depth - 2) // 6
        self.conv1 = conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, in_planes = [], 16
        for stage, planes in enumerate((16, 32, 64)):
            layer = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layer.append(CifarBasicBlock(in_planes, planes, stride, residual))
                in_planes = planes
            blocks.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3 = blocks
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            if not residual:
                raise ValueError("CifarResNet: zero_init_residual=True needs residual=True (a plain "
                                 "block with a zero scale outputs zeros)")
            for m in self.modules():
                if isinstance(m, CifarBasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


def resnet20(**kw): return CifarResNet(20, **kw)
def resnet32(**kw): return CifarResNet(32, **kw)
def resnet44(**kw): return CifarResNet(44, **kw)
def resnet56(**kw): return CifarResNet(56, **kw)
def resnet110(**kw): return CifarResNet(110, **kw)
def plain20(**kw): return CifarResNet(20, residual=False, **kw)
def plain32(**kw): return CifarResNet(32, residual=False, **kw)
def plain44(**kw): return CifarResNet(44, residual=False, **kw)
def plain56(**kw): return CifarResNet(56, residual=False, **kw)
def plain110(**kw): return CifarResNet(110, residual=False, **kw)
