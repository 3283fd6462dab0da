"""``torch.nn.modules.pooling``."""
from ..pooling import (MaxPool1d, MaxPool2d, MaxUnpool1d, MaxUnpool2d, AvgPool1d, AvgPool2d,  # noqa: F401
                       AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, LPPool1d,
                       LPPool2d, _MaxPoolNd, _MaxUnpoolNd, _LPPoolNd)

__all__ = ["MaxPool1d", "MaxPool2d", "MaxUnpool1d", "MaxUnpool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "LPPool1d", "LPPool2d"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
