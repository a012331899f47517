"""Order events and customer behaviour in silver: deduplicated across runs, orphans flagged.

Both are partitioned by the month of their business date (``event_month``, the first day of the
``event_date``'s month) so a daily run reads only the months it touches, in files large enough
to read efficiently (a day partition would be a few rows per file).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import MONEY_TYPE, clean_string, latest_per_key, month_of

PARTITION = "event_month"
EVENT_BASE_COLUMNS = [
    "event_id",
    "topic",
    "partition",
    "offset",
    "order_id",
    "event_type",
    "event_ts",
    "status",
    "metadata",
    "_run_date",
    "_record_hash",
    "event_date",
]
BEHAVIOR_BASE_COLUMNS = [
    "customer_id",
    "login_count",
    "page_views",
    "session_duration_minutes",
    "purchases",
    "revenue",
    "_run_date",
    "_record_hash",
    "event_date",
]


def first_delivery() -> list:
    """A redelivered event is the same fact: the earliest delivery is the original."""
    return [F.col("_run_date").asc_nulls_last(), F.col("_record_hash").asc_nulls_last()]


def latest_delivery() -> list:
    """For behaviour, the latest delivery for a (customer, day) is the corrected figure."""
    return [F.col("_run_date").desc_nulls_last(), F.col("_record_hash").desc_nulls_last()]


def events_from_bronze(bronze: DataFrame) -> DataFrame:
    return bronze.select(
        clean_string("event_id").alias("event_id"),
        clean_string("topic").alias("topic"),
        F.col("partition").cast(T.IntegerType()).alias("partition"),
        F.col("offset").cast(T.LongType()).alias("offset"),
        clean_string("order_id").alias("order_id"),
        F.lower(clean_string("event_type")).alias("event_type"),
        F.col("event_ts"),
        F.lower(clean_string("status")).alias("status"),
        F.col("metadata"),
        F.col("_run_date").cast(T.DateType()).alias("_run_date"),
        F.col("_record_hash"),
        F.to_date(F.col("event_ts")).alias("event_date"),
    )


def current_events(versions: DataFrame, orders: DataFrame) -> DataFrame:
    """One row per event id, flagged when its order is unknown to silver."""
    known = orders.select(F.col("order_id").alias("_known_order"))
    return (
        versions.transform(latest_per_key(["event_id"], first_delivery()))
        .join(known, on=F.col("order_id") == F.col("_known_order"), how="left")
        .withColumn("has_unknown_order", F.col("_known_order").isNull())
        .withColumn(PARTITION, month_of("event_date"))
        .select(*EVENT_BASE_COLUMNS[:-1], "has_unknown_order", "event_date", PARTITION)
    )


def behavior_from_bronze(bronze: DataFrame) -> DataFrame:
    return bronze.select(
        clean_string("customer_id").alias("customer_id"),
        F.col("login_count").cast(T.IntegerType()).alias("login_count"),
        F.col("page_views").cast(T.IntegerType()).alias("page_views"),
        F.col("session_duration_minutes")
        .cast(T.DecimalType(10, 2))
        .alias("session_duration_minutes"),
        F.col("purchases").cast(T.IntegerType()).alias("purchases"),
        F.col("revenue").cast(MONEY_TYPE).alias("revenue"),
        F.col("_run_date").cast(T.DateType()).alias("_run_date"),
        F.col("_record_hash"),
        F.col("event_date"),
    )


def current_behavior(versions: DataFrame, customers: DataFrame) -> DataFrame:
    """One row per customer and day, flagged when the customer is unknown."""
    known = customers.select(F.col("customer_id").alias("_known_customer"))
    return (
        versions.transform(latest_per_key(["customer_id", "event_date"], latest_delivery()))
        .join(known, on=F.col("customer_id") == F.col("_known_customer"), how="left")
        .withColumn("has_unknown_customer", F.col("_known_customer").isNull())
        .withColumn(PARTITION, month_of("event_date"))
        .select(*BEHAVIOR_BASE_COLUMNS[:-1], "has_unknown_customer", "event_date", PARTITION)
    )
