"""``torch.nn.modules.fold``."""
from ..fold import *  # noqa: F401,F403
from ..fold import __all__  # noqa: F401
