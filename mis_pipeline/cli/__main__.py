"""``python -m mis_pipeline.cli`` runs the ``mis`` command line."""

import sys

from . import main

sys.exit(main())
