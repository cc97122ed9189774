"""``python -m edgemoe``: the same command line as ``edgemoe``."""

import sys

from edgemoe.cli import main

sys.exit(main())
