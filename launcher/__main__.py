"""``python -m launcher ...``: the ``lvi`` command, where the console script is not installed."""

import sys

from launcher.cli import main

sys.exit(main())
