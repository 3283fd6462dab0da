"""``torch.nn.modules.transformer``."""
from ..transformer import *  # noqa: F401,F403
from ..transformer import __all__  # noqa: F401
