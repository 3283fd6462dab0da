"""``deepgrad.utils``: PyTorch's ``torch.utils`` import paths (``deepgrad.utils.data``, ...)."""
