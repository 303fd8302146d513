"""``python -m fittracker`` is the ``fittracker`` command."""

import sys

from fittracker.cli import main

sys.exit(main())
