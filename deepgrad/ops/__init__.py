"""Differentiable ops, grouped by kind; each op's forward sits beside its backward."""
from .shape import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
