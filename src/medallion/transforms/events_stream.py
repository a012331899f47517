"""Stream-level judgement of order events: redeliveries, events from the future, late events.

A micro-batch of events is first checked against its contract (``_reasons`` per row). Rows that
pass the contract are then judged against the stream:

* ``duplicate_event``: the event was already delivered: its ``event_id`` (or its topic,
  partition and offset) is in bronze already, or appears earlier in this batch (first in file
  and offset order wins). Kafka redelivers; bronze keeps one copy, quarantine keeps the rest.
* ``event_ts:future``: the event's time is after the batch's ingest time plus a tolerance for
  clock skew: a device clock years ahead. Such an event is not a fact yet, and it must never
  move the watermark (one event dated 2035 would make every real event "late").
* ``late_event``: the event's time is older than the watermark: the latest event time of the
  earlier batches (what bronze holds) minus the allowed delay. As in Spark's own watermarking,
  a batch's own events never move the watermark it is judged by, so the result does not depend
  on which events share a batch with an event that happens to be newer. Late events go to
  quarantine with this reason rather than being dropped, so a late fact is never lost from sight.

A row carries at most one stream reason, and only when it broke no contract rule, so each
rejected row has one clear reason.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion.transforms.common import interval, utc_timestamp

DUPLICATE_EVENT = "duplicate_event"
FUTURE_EVENT = "event_ts:future"
LATE_EVENT = "late_event"
EVENT_KEY = "event_id"
DELIVERY_KEY = ("topic", "partition", "offset")


def flag_stream_reasons(
    seen: DataFrame,
    previous_max_event_ts: dt.datetime | None,
    delay: dt.timedelta,
    not_after: dt.datetime | None = None,
):
    """Add ``duplicate_event`` / ``event_ts:future`` / ``late_event`` to the ``_reasons`` of
    contract-valid rows (in that order of precedence).

    ``seen`` holds ``event_id``, ``topic``, ``partition``, ``offset`` of the events bronze
    already holds. ``previous_max_event_ts`` is the latest event time in bronze (None at first):
    the watermark is it minus ``delay``. ``not_after`` is the latest believable event time
    (ingest time plus the clock-skew tolerance; None: no upper bound).
    """

    def transform(checked: DataFrame) -> DataFrame:
        # Only contract-valid rows compete for "first delivery"; the rest keep their reasons.
        valid = F.col("_is_valid")
        first_in_batch = Window.partitionBy("_is_valid", EVENT_KEY).orderBy(
            F.col("_source_file").asc_nulls_last(),
            F.col("offset").asc_nulls_last(),
            F.col("_record_hash"),
        )
        first_delivery = Window.partitionBy("_is_valid", *DELIVERY_KEY).orderBy(
            F.col("_source_file").asc_nulls_last(), F.col("_record_hash")
        )
        seen_ids = seen.select(F.col(EVENT_KEY).alias("_seen_id")).distinct()
        seen_offsets = seen.select(*[F.col(c).alias(f"_seen_{c}") for c in DELIVERY_KEY]).distinct()
        with_validity = checked.withColumn("_is_valid", F.size("_reasons") == 0)
        if previous_max_event_ts is None:
            watermark = F.lit(None).cast("timestamp")  # nothing seen yet: nothing is late
        else:
            watermark = utc_timestamp(previous_max_event_ts) - interval(delay)
        ranked = (
            with_validity.withColumn("_rank_id", F.row_number().over(first_in_batch))
            .withColumn("_rank_offset", F.row_number().over(first_delivery))
            .withColumn("_watermark", watermark)
        )
        joined = ranked.join(seen_ids, on=F.col(EVENT_KEY) == F.col("_seen_id"), how="left").join(
            seen_offsets,
            on=[F.col(c) == F.col(f"_seen_{c}") for c in DELIVERY_KEY],
            how="left",
        )
        is_duplicate = (
            F.col("_seen_id").isNotNull()
            | F.col(f"_seen_{DELIVERY_KEY[0]}").isNotNull()
            | (F.col("_rank_id") > 1)
            | (F.col("_rank_offset") > 1)
        )
        is_future = (
            F.col("event_ts") > utc_timestamp(not_after) if not_after is not None else F.lit(False)
        )
        is_late = F.coalesce(F.col("event_ts") < F.col("_watermark"), F.lit(False))
        reasons = (
            F.when(~valid, F.col("_reasons"))
            .when(is_duplicate, F.array(F.lit(DUPLICATE_EVENT)))
            .when(is_future, F.array(F.lit(FUTURE_EVENT)))
            .when(is_late, F.array(F.lit(LATE_EVENT)))
            .otherwise(F.col("_reasons"))
        )
        return joined.withColumn("_reasons", reasons).select(*checked.columns)

    return transform


def delivery_keys(bronze: DataFrame) -> DataFrame:
    """What the judgement needs of bronze: the identity of every event already delivered."""
    return bronze.select(EVENT_KEY, *DELIVERY_KEY)


def tally_batch(judged: DataFrame) -> DataFrame:
    """One row of counts for a judged micro-batch: the audit record's numbers.

    ``valid`` rows go to bronze, the rest to quarantine; ``max_event_ts`` is the latest valid
    event time, from which the run reports its watermark.
    """
    is_valid = F.size("_reasons") == 0

    def rows_with(reason: str):
        return F.coalesce(F.sum(F.array_contains("_reasons", reason).cast("long")), F.lit(0))

    return judged.agg(
        F.count(F.lit(1)).alias("rows"),
        F.coalesce(F.sum(is_valid.cast("long")), F.lit(0)).alias("valid"),
        rows_with(DUPLICATE_EVENT).alias("duplicates"),
        rows_with(FUTURE_EVENT).alias("future"),
        rows_with(LATE_EVENT).alias("late"),
        F.countDistinct("_source_file").alias("files"),
        # As epoch microseconds: a collected timestamp would be in local time.
        F.unix_micros(F.max(F.when(is_valid, F.col("event_ts")))).alias("max_event_ts"),
    )
