"""Small transformations shared by the silver and gold layers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

Transform = Callable[[DataFrame], DataFrame]

# The type of every money column (amounts, prices, USD figures) in silver and gold.
MONEY_TYPE = T.DecimalType(18, 2)
# The surrogate key, and the business id, of the member a fact points at when its customer or
# product is unknown (each gold dimension holds one such row).
UNKNOWN_SK = -1
UNKNOWN_ID = "UNKNOWN"

# Lineage carried from bronze into silver; the tie-break that makes "latest version" total.
LINEAGE_COLUMNS = ("_run_date", "_record_hash")


def latest_per_key(keys: Sequence[str], version_order: Sequence[Column]) -> Transform:
    """Keep one row per key: the first by ``version_order`` (give descending columns for latest).

    The ordering should end in a column that tells any two distinct records apart (the record
    hash does) so that the survivor never depends on how Spark happened to partition the data.
    """

    def transform(df: DataFrame) -> DataFrame:
        window = Window.partitionBy(*keys).orderBy(*version_order)
        return (
            df.withColumn("_version_rank", F.row_number().over(window))
            .where(F.col("_version_rank") == 1)
            .drop("_version_rank")
        )

    return transform


def version_order(updated_at: str) -> list[Column]:
    """Latest business timestamp first, then the later bronze run, then the record hash."""
    return [
        F.col(updated_at).desc_nulls_last(),
        F.col("_run_date").desc_nulls_last(),
        F.col("_record_hash").desc_nulls_last(),
    ]


def utc_timestamp(value: dt.datetime) -> Column:
    """A timestamp literal for ``value`` (naive meaning UTC, or aware) that does not depend on
    the machine's time zone. PySpark turns a naive ``datetime`` into an instant with the
    process's *local* zone, so the value goes in as text, cast in the session zone (UTC, see
    :mod:`medallion.spark`)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return F.lit(value.strftime("%Y-%m-%d %H:%M:%S.%f")).cast(T.TimestampType())


def interval(span: dt.timedelta) -> Column:
    """``span`` as a Spark interval literal (whole seconds), to add to or subtract from a
    timestamp column."""
    return F.expr(f"INTERVAL {int(span.total_seconds())} SECONDS")


def utc_datetime(epoch_micros: int | None) -> dt.datetime | None:
    """A timestamp collected as ``unix_micros`` (see :func:`utc_timestamp`) as a naive UTC
    ``datetime``: collecting a timestamp itself would give the machine's local time."""
    if epoch_micros is None:
        return None
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(epoch_micros))


def clean_string(column: str) -> Column:
    """Trimmed, with empty strings as null."""
    trimmed = F.trim(F.col(column))
    return F.when(trimmed == "", F.lit(None)).otherwise(trimmed)


def upper_code(column: str) -> Column:
    return F.upper(clean_string(column))


def lower_email(column: str) -> Column:
    return F.lower(clean_string(column))


def month_of(date_column: str) -> Column:
    """The first day of the date's month: the partition key of the large silver tables."""
    return F.trunc(F.col(date_column), "month")


def _comparable(frame: DataFrame, columns: Sequence[str], prefix: str) -> list[Column]:
    """``columns`` of ``frame`` renamed with ``prefix``; maps as their sorted entries in JSON,
    because Spark cannot compare (or join on) a map."""
    types = {f.name: f.dataType for f in frame.schema.fields}

    def value(column: str) -> Column:
        if isinstance(types[column], T.MapType):
            return F.to_json(F.array_sort(F.map_entries(F.col(column))))
        return F.col(column)

    return [value(c).alias(f"{prefix}{c}") for c in columns]


def changed_rows(existing: DataFrame | None) -> Transform:
    """The recomputed rows that ``existing`` does not already hold exactly as they are.

    A row is unchanged when an existing row equals it in every column, nulls equal to nulls
    (``<=>``). Only the changed and new rows go into a silver MERGE: Delta rewrites every file
    in which a source row matches a target row, even when the update's condition then leaves the
    row as it was, so an unchanged row left in the source would still cost a rewrite of its file.
    """

    def transform(current: DataFrame) -> DataFrame:
        if existing is None:
            return current
        columns = current.columns
        ours = current.select(*columns, *_comparable(current, columns, "_s_"))
        theirs = existing.select(*_comparable(existing, columns, "_t_"))
        same = [F.col(f"_s_{c}").eqNullSafe(F.col(f"_t_{c}")) for c in columns]
        return ours.join(theirs, on=same, how="left_anti").select(*columns)

    return transform


# The column of a table diff that says what a row does to the table (see ``table_diff``).
DIFF_OP = "_diff_op"
UPSERT, DELETE = "upsert", "delete"


def table_diff(existing: DataFrame, keys: Sequence[str]) -> Transform:
    """What turns ``existing`` into the desired table (one row per key): the desired rows that
    ``existing`` does not hold exactly (``DIFF_OP`` = ``upsert``), and the existing rows whose
    key the desired table no longer has (``delete``). At most one row per key.

    Applied by one MERGE (:func:`medallion.lake.merge_diff`), this makes the table equal to the
    desired one while rewriting only the files that hold a changed or removed key: a table can
    be specified as a pure function of its inputs and still be maintained incrementally.
    """

    def transform(desired: DataFrame) -> DataFrame:
        upserts = desired.transform(changed_rows(existing)).withColumn(DIFF_OP, F.lit(UPSERT))
        same_key = [F.col(f"_old.{k}").eqNullSafe(F.col(f"_new.{k}")) for k in keys]
        gone = (
            existing.alias("_old")
            .join(desired.select(*keys).alias("_new"), on=same_key, how="left_anti")
            .select(*desired.columns)
            .withColumn(DIFF_OP, F.lit(DELETE))
        )
        return upserts.unionByName(gone)

    return transform
