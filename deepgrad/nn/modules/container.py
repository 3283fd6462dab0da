"""``torch.nn.modules.container``."""
from ..containers import *  # noqa: F401,F403
from ..containers import __all__  # noqa: F401
