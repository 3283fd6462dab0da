"""Optimisers and learning-rate schedulers with PyTorch's ``torch.optim`` API.

Every optimiser updates its parameters' raw arrays in place (no graph is built) and reproduces
PyTorch 2.13's update rules, defaults and argument checks.
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .adamax import Adamax
from .nadam import NAdam
from .adagrad import Adagrad
from .rmsprop import RMSprop
from .adadelta import Adadelta
from .lbfgs import LBFGS
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adamax", "NAdam", "Adagrad", "RMSprop",
           "Adadelta", "LBFGS", "lr_scheduler"]
