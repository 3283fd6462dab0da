"""``deepgrad.nn``: modules, layers, losses, initialisers (PyTorch's ``torch.nn`` API)."""
from .parameter import Parameter
from .module import Module
from .containers import Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict
from .linear import Identity, Linear, Bilinear, Flatten, Unflatten
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, GroupNorm
from .sparse import Embedding
from .activation import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403  (Conv1d, Conv2d, ...: the conv engineer's file)
from .pooling import *  # noqa: F401,F403  (MaxPool2d, AvgPool2d, ...: the pooling engineer's file)
from .rnn import *  # noqa: F401,F403  (RNN, LSTM, GRU, cells, packed sequences)
from .attention import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403
from . import functional, init, utils
from .distance import *  # noqa: F401,F403,E402  (PairwiseDistance, CosineSimilarity)
from .fold import *  # noqa: F401,F403,E402  (Fold, Unfold)
from . import modules  # noqa: E402,F401  (torch.nn.modules.* import paths)
from . import parallel  # noqa: E402
from .parallel import DataParallel  # noqa: E402
from .sync_batchnorm import SyncBatchNorm  # noqa: E402,F401  (data-parallel batch norm over MPI)

from .maxout import Maxout  # noqa: E402,F401  (deepgrad's own: torch.nn has no Maxout)
