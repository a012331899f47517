"""The Spark entry point for spark-submit and EMR Serverless: the unified CLI, nothing else.

spark-submit runs a ``.py`` file, not a wheel: this file is that ``.py``. The pipeline itself
comes from the ``medallion`` package installed in the Python environment Spark runs (on EMR
Serverless, the packed environment shipped with ``spark.archives``), so this file never changes
between releases. Its arguments are the CLI's:

    spark-submit medallion_entry.py run --job bronze_to_silver --run-date 2025-01-13 --env prod
"""

import sys

from medallion.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
