"""The Spark floor: one Spark process that reads a day's landing files and writes them as Parquet.

No contract, no dedup, no joins: what any Spark job over the same bytes must pay (JVM start,
file listing, CSV/JSON parsing, Parquet encoding). The pipeline's ratio to this floor is the cost
of its logic. CSV is read by header as strings and JSON lines as text, as the pipeline reads them.

The output is plain Parquet on purpose, though the lake is Delta: the floor is the reference
for "chain / floor", what any Spark job pays to move the bytes, not a lake table, and a Delta
commit (its log, its checkpoint) is part of the pipeline's cost that the floor must not hide.
It starts the pipeline's own session (``build_spark``, the Delta extension and jars on), so the
JVM start it pays is the chain's.

    python -m bench.floor --config bench.yaml --run-date 2025-01-13 --out /tmp/floor
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--run-date", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from medallion.config import load_settings
    from medallion.spark import build_spark

    settings = load_settings("local", args.config)
    started = time.perf_counter()
    spark = build_spark(settings.spark, "floor")
    startup = time.perf_counter() - started
    landing = Path(settings.lake.root) / "landing"
    tables = {}
    for folder in sorted(landing.glob(f"*/*/dt={args.run_date}")):
        source, table = folder.parent.parent.name, folder.parent.name
        files = sorted(str(f) for f in folder.iterdir() if f.is_file() and f.name[0] not in "_.")
        began = time.perf_counter()
        if files[0].endswith(".csv"):
            frame = spark.read.option("header", "true").csv(files)
        else:
            frame = spark.read.text(files)
        frame.write.mode("overwrite").parquet(f"{args.out}/{source}/{table}")
        tables[f"{source}/{table}"] = round(time.perf_counter() - began, 2)
    spark.stop()
    json.dump({"startup_s": round(startup, 2), "tables": tables}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
