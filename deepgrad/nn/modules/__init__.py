"""``deepgrad.nn.modules``: PyTorch's ``torch.nn.modules.*`` import paths (``from torch.nn.modules.loss
import _Loss``, ``nn.modules.conv._ConvNd``, ``nn.modules.utils._pair``, ...), each a thin module
that re-exports deepgrad's own classes (the same objects as ``deepgrad.nn.X``)."""
from . import (module, linear, flatten, conv, batchnorm, activation, container, rnn, dropout,  # noqa: F401
               pooling, padding, upsampling, pixelshuffle, normalization, sparse, transformer, loss,
               distance, fold, utils, adaptive, channelshuffle, instancenorm, lazy)
from .module import Module  # noqa: F401
from .linear import *  # noqa: F401,F403
from .flatten import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .container import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .padding import *  # noqa: F401,F403
from .upsampling import *  # noqa: F401,F403
from .pixelshuffle import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .distance import *  # noqa: F401,F403
from .fold import *  # noqa: F401,F403
