"""Small transformations shared by the silver and gold layers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

Transform = Callable[[DataFrame], DataFrame]

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


def clean_string(column: str) -> Column:
    """Trimmed, with empty strings as null."""
    trimmed = F.trim(F.col(column))
    return F.when(trimmed == "", F.lit(None)).otherwise(trimmed)


def upper_code(column: str) -> Column:
    return F.upper(clean_string(column))


def lower_email(column: str) -> Column:
    return F.lower(clean_string(column))


def union_versions(existing: DataFrame | None, new: DataFrame) -> DataFrame:
    """The versions to choose from: what silver already holds plus the run's new rows."""
    if existing is None:
        return new
    return existing.select(*new.columns).unionByName(new)


def month_of(date_column: str) -> Column:
    """The first day of the date's month: the partition key of the large silver tables."""
    return F.trunc(F.col(date_column), "month")
