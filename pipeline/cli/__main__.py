"""``python -m pipeline.cli``: the same command line as ``extract``."""

import sys

from pipeline.cli import main

sys.exit(main())
