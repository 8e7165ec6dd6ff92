"""``python -m hfprune``: the same as the ``hfprune`` command."""

import sys

from .cli import main

sys.exit(main())
