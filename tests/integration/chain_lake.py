"""Helpers of the chain tests: a throwaway lake's settings, its tables read with Spark, and a
comparable form of a table (maps as their sorted entries, which EXCEPT can compare)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.audit import AuditRecord
from medallion.config import parse_settings

START = dt.date(2025, 1, 13)
DAYS = [START + dt.timedelta(days=i) for i in range(3)]
SCALE, SEED = 0.02, 42


@dataclass(frozen=True)
class ChainLake:
    root: Path
    manifest: dict
    settings: object
    records: list[AuditRecord]  # the audit records of the three-day chain, in run order

    def records_of(self, day: dt.date) -> dict[str, AuditRecord]:
        """The chain's record of each job for ``day``, by job name."""
        return {r.job: r for r in self.records if r.run_date == day.isoformat()}


def settings_for(root: Path, files_per_trigger: int = 50):
    text = f"""
env: local
spark: {{master: "local[2]", shuffle_partitions: 1}}
lake: {{root: "{root}"}}
warehouse: {{type: duckdb, duckdb: {{path: "{root / "warehouse.duckdb"}"}}}}
streaming: {{max_files_per_trigger: {files_per_trigger}}}
"""
    return parse_settings(text, "test")


def silver(spark, root: Path, table: str):
    return spark.read.format("delta").load(str(root / "silver" / table))


def gold(spark, root: Path, table: str):
    return spark.read.format("delta").load(str(root / "gold" / table))


def quarantine_reasons(spark, root: Path, table: str, day: dt.date) -> dict[str, int]:
    """How many of ``day``'s quarantined rows of ``table`` carry each rule id (a row may carry
    several), as the manifest's ``expected.quarantine`` counts them."""
    quarantine = spark.read.format("delta").load(str(root / "quarantine" / table))
    reasons = (
        quarantine.where(F.col("_source_file").contains(f"/dt={day}/"))
        .select(F.explode("_reasons").alias("reason"))
        .groupBy("reason")
        .count()
    )
    return {row["reason"]: row["count"] for row in reasons.collect()}


def comparable(frame):
    """Maps cannot take part in EXCEPT: compare them as their sorted entries in JSON."""
    return frame.select(
        *[
            F.to_json(F.array_sort(F.map_entries(f.name))).alias(f.name)
            if isinstance(f.dataType, T.MapType)
            else F.col(f.name)
            for f in frame.schema.fields
        ]
    )


def same_content(first, second) -> bool:
    """Equal as multisets of rows, whatever the order (columns matched by name)."""
    a = comparable(first)
    b = comparable(second).select(*a.columns)
    return a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0
