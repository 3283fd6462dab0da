"""``torch.nn.modules.sparse``."""
from ..sparse import *  # noqa: F401,F403
from ..sparse import __all__  # noqa: F401
