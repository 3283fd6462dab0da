"""Differentiable ops, grouped by kind; each op's forward sits beside its backward."""
from .shape import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .index import *  # noqa: F401,F403

# ops/norm.py (batch/layer/group norm) shares its name with the vector norm of reduce.py. Load the
# submodule here, then bind the function: a later ``from ..ops.norm import ...`` (nn) finds the
# module in sys.modules and no longer rebinds ``ops.norm`` (which Tensor.norm calls) to it.
import importlib as _importlib  # noqa: E402

_importlib.import_module(__name__ + ".norm")
from .reduce import norm  # noqa: E402,F811
