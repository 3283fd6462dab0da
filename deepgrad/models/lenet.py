"""LeNet-5 (LeCun et al. 1998) as the lecture notes print it, and the notes' MNIST CNN."""
from __future__ import annotations

from .. import nn
from ..nn import functional as F

__all__ = ["LeNet5", "lenet5", "MnistCNN", "mnist_cnn"]


class LeNet5(nn.Module):
    """conv 6@5x5 (padding 2, so a 28x28 digit is seen as 32x32), max-pool, conv 16@5x5, max-pool,
    then 400 -> 120 -> 84 -> classes. 61,706 parameters at 10 classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(400, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class MnistCNN(nn.Module):
    """The lecture notes' network: conv-BN-conv-BN-pool-dropout-FC-BN-FC (log-softmax output)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv1_bn = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.conv2_bn = nn.BatchNorm2d(64)
        self.dropout1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(9216, 128)
        self.fc1_bn = nn.BatchNorm1d(128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = F.relu(self.conv1_bn(self.conv1(x)))
        x = F.relu(self.conv2_bn(self.conv2(x)))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = F.relu(self.fc1_bn(self.fc1(x.flatten(1))))
        return F.log_softmax(self.fc2(x), dim=1)


def lenet5(num_classes: int = 10, **kwargs) -> LeNet5:
    return LeNet5(num_classes=num_classes, **kwargs)


def mnist_cnn(num_classes: int = 10) -> MnistCNN:
    return MnistCNN(num_classes=num_classes)
