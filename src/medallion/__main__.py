"""``python -m medallion`` is the same program as the ``medallion`` console script."""

import sys

from medallion.cli import main

sys.exit(main())
