"""The model zoo: classes and torchvision-style factory functions.

Each prints like its PyTorch/torchvision counterpart, has the same parameter count for the same
configuration and accepts torchvision-style state dicts by name.
"""
from .lenet import *  # noqa: F401,F403
from .alexnet import *  # noqa: F401,F403
from .vgg import *  # noqa: F401,F403
from .googlenet import *  # noqa: F401,F403
from .resnet import *  # noqa: F401,F403
from .transfer import *  # noqa: F401,F403
from ._weights import *  # noqa: F401,F403  (ResNet18_Weights, ...: names only)
from .charrnn import CharRNN  # noqa: F401
from .seq2seq import Seq2Seq  # noqa: F401
from .word2vec import WordVectors, SkipGram  # noqa: F401
from .autoencoder import AutoEncoder, DeepAutoEncoder, SparseAutoEncoder, DenoisingAutoEncoder, TiedLinear  # noqa: F401
from .rbm import RBM, DBN  # noqa: F401
from .pca import PCA  # noqa: F401
from .pretrain import pretrain, fine_tune, greedy_layerwise  # noqa: F401
