"""torchvision.transforms on deepgrad: the transforms of :mod:`deepgrad.data.transforms`."""
from ..data.transforms import *  # noqa: F401,F403
from ..data.transforms import functional  # noqa: F401
