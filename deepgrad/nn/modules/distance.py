"""``torch.nn.modules.distance``."""
from ..distance import *  # noqa: F401,F403
from ..distance import __all__  # noqa: F401
