"""``python -m mis_pipeline`` runs the ``mis`` command line."""

import sys

from .cli import main

sys.exit(main())
