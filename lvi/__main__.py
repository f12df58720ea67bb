import sys

from lvi.cli import main

sys.exit(main())
