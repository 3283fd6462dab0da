"""``torch.nn.modules.upsampling``."""
from ..pooling import Upsample, UpsamplingNearest2d, UpsamplingBilinear2d  # noqa: F401

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]

from ._fallback import fallback as _fallback  # noqa: E402

__getattr__ = _fallback(__name__)
