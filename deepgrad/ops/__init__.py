"""Differentiable ops, grouped by kind; each op's forward sits beside its backward."""
from .shape import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .index import *  # noqa: F401,F403
from .composite import *  # noqa: F401,F403
