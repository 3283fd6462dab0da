"""torchvision.models on deepgrad: the model zoo of :mod:`deepgrad.models`."""
from ..models import *  # noqa: F401,F403
