"""``torch.nn.modules.dropout``."""
from ..dropout import *  # noqa: F401,F403
from ..dropout import __all__, _DropoutNd  # noqa: F401
