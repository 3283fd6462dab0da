"""``deepgrad.utils.tensorboard``: PyTorch's ``torch.utils.tensorboard`` for deepgrad.

``SummaryWriter`` has torch's constructor and ``add_*`` methods and writes event files that
TensorBoard reads (``tensorboard --logdir runs``). The protocol buffers, the record framing and
the background flushing come from the ``tensorboardX`` package (an optional dependency:
``pip install deepgrad[tensorboard]``); deepgrad converts its Tensors to NumPy arrays, follows
torch's conventions where the two packages differ (the ``add_scalars`` folders, image scaling,
``add_hparams``' ``hparam_domain_discrete``), and builds ``add_graph``'s graph from the autograd
graph of one forward pass. The training-loop side is :class:`deepgrad.train.TensorBoard`.
"""
from .writer import SummaryWriter

__all__ = ["SummaryWriter"]
