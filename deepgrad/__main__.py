"""``python -m deepgrad``: the ``deepgrad`` command line (see ``deepgrad.cli``)."""
import sys

from .cli import main

sys.exit(main())
