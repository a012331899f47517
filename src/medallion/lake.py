"""The lake's pinned layout and the partition-atomic Parquet read/write helpers.

Layout (relative to ``lake.root``)::

    landing/<source>/<table>/dt=YYYY-MM-DD/<files>
    bronze/<source>/<table>/_run_date=YYYY-MM-DD/
    quarantine/<source>/<table>/_run_date=YYYY-MM-DD/
    silver/<table>/            gold/<table>/
    _audit/run_date=YYYY-MM-DD/<run_id>.json
    _checkpoints/<stream>/     _quality/run_date=YYYY-MM-DD/    _reports/    _locks/

Writes never leave a half-written table or partition where a reader would find it:

* partitioned tables use Spark's dynamic partition overwrite: tasks write into a hidden staging
  folder and the commit swaps in exactly the partitions the run produced;
* whole tables are written beside the target under a hidden name and swapped in with two
  renames; a crash between the renames is repaired by the next read or write.

File-system work goes through Hadoop's FileSystem API, so the same code runs on a local folder
and on S3 (EMRFS) on a cluster.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

_STAGING = ".__staging__"
_RETIRED = ".__retired__"


@dataclass(frozen=True)
class Lake:
    """Paths in the lake. ``root`` is a local folder (made absolute) or a URI such as ``s3://b/p``."""

    root: str

    @classmethod
    def from_root(cls, root: str) -> Lake:
        if "://" in root:
            return cls(root.rstrip("/"))
        return cls(os.path.abspath(root))

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file:")

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def landing(self, source: str, table: str, run_date: dt.date | None = None) -> str:
        base = self.path("landing", source, table)
        return f"{base}/dt={run_date.isoformat()}" if run_date else base

    def bronze(self, source: str, table: str) -> str:
        return self.path("bronze", source, table)

    def quarantine(self, source: str, table: str) -> str:
        return self.path("quarantine", source, table)

    def silver(self, table: str) -> str:
        return self.path("silver", table)

    def gold(self, table: str) -> str:
        return self.path("gold", table)

    def audit_dir(self, run_date: dt.date | None = None) -> str:
        base = self.path("_audit")
        return f"{base}/run_date={run_date.isoformat()}" if run_date else base

    def checkpoint(self, stream: str) -> str:
        return self.path("_checkpoints", stream)

    def quality_dir(self, run_date: dt.date) -> str:
        return self.path("_quality", f"run_date={run_date.isoformat()}")

    def reports_dir(self) -> str:
        return self.path("_reports")

    def locks_dir(self) -> str:
        return self.path("_locks")


# --- Hadoop FileSystem access (local and S3 alike) -------------------------------------------


def _hadoop_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    return jvm.org.apache.hadoop.fs.Path(path)


def _fs(spark: SparkSession, path: str):
    hpath = _hadoop_path(spark, path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, hpath = _fs(spark, path)
    return bool(fs.exists(hpath))


def delete_path(spark: SparkSession, path: str) -> None:
    fs, hpath = _fs(spark, path)
    if fs.exists(hpath):
        fs.delete(hpath, True)


def list_dir(spark: SparkSession, path: str) -> list[str]:
    """Names of the entries directly under ``path`` (empty when it does not exist)."""
    fs, hpath = _fs(spark, path)
    if not fs.exists(hpath):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(hpath))


def has_data_files(spark: SparkSession, path: str) -> bool:
    """True when ``path`` holds at least one visible file (hidden ``_``/``.`` names ignored)."""
    fs, hpath = _fs(spark, path)
    if not fs.exists(hpath):
        return False
    files = fs.listFiles(hpath, True)
    while files.hasNext():
        name = files.next().getPath().getName()
        if not name.startswith(("_", ".")):
            return True
    return False


def _rename(spark: SparkSession, source: str, target: str) -> None:
    fs, src = _fs(spark, source)
    if not fs.rename(src, _hadoop_path(spark, target)):
        raise OSError(f"could not rename {source} to {target}")


def _sibling(path: str, marker: str, token: str) -> str:
    parent, name = path.rstrip("/").rsplit("/", 1)
    return f"{parent}/{marker}{name}.{token}"


def repair_table(spark: SparkSession, path: str) -> None:
    """Finish or undo a swap that a crash interrupted, and drop abandoned staging folders.

    If the target is missing but a retired copy exists, the crash hit between the two renames:
    put the retired copy back (the new write is redone by the rerun).
    """
    parent, name = path.rstrip("/").rsplit("/", 1)
    entries = list_dir(spark, parent)
    retired = sorted(e for e in entries if e.startswith(f"{_RETIRED}{name}."))
    if retired and not path_exists(spark, path):
        _rename(spark, f"{parent}/{retired[-1]}", path)
        retired = retired[:-1]
    for leftover in retired + [e for e in entries if e.startswith(f"{_STAGING}{name}.")]:
        delete_path(spark, f"{parent}/{leftover}")


# --- Parquet IO -------------------------------------------------------------------------------


def read_parquet(
    spark: SparkSession, path: str, schema: T.StructType | None = None
) -> DataFrame | None:
    """Read a Parquet table, or None when nothing has been written there yet."""
    if "://" not in path or path.startswith("file:"):
        repair_table(spark, path)
    if not has_data_files(spark, path):
        if schema is not None:
            return spark.createDataFrame([], schema)
        return None
    reader = spark.read.option("mergeSchema", "false")
    if schema is not None:
        reader = reader.schema(schema)
    return reader.parquet(path)


def write_partitions(
    df: DataFrame, path: str, partition_by: str | list[str], file_per_partition: bool = False
) -> None:
    """Replace exactly the partitions present in ``df`` (dynamic partition overwrite).

    With ``file_per_partition`` the rows are first shuffled by the partition columns, so each
    partition is written by one task as one file instead of one small file per task: worth a
    shuffle when a write spans many partitions (silver months), not for one (a bronze run date,
    which keeps every task writing in parallel).
    """
    columns = [partition_by] if isinstance(partition_by, str) else list(partition_by)
    if file_per_partition:
        df = df.repartition(*columns)
    (
        df.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(*columns)
        .parquet(path)
    )


def write_table(df: DataFrame, path: str, partition_by: str | None = None) -> None:
    """Replace a whole table atomically: write beside it, then swap it in."""
    spark = df.sparkSession
    repair_table(spark, path)
    token = uuid.uuid4().hex[:12]
    staging = _sibling(path, _STAGING, token)
    if partition_by:
        writer = df.repartition(partition_by).write.mode("overwrite").partitionBy(partition_by)
    else:
        writer = df.write.mode("overwrite")
    writer.parquet(staging)
    retired = _sibling(path, _RETIRED, token)
    had_target = path_exists(spark, path)
    if had_target:
        _rename(spark, path, retired)
    _rename(spark, staging, path)
    if had_target:
        delete_path(spark, retired)
