"""Job ``kafka_events_to_bronze``: the landed Kafka micro-batch files, as a Structured Stream.

Each run starts the query with ``trigger(availableNow=True)`` over
``landing/kafka/order_events/dt=*/`` and a checkpoint in ``_checkpoints/kafka_order_events``:
it processes exactly the files that arrived since the last run, in micro-batches of at most
``streaming.max_files_per_trigger`` files, then stops. A run with no new files is a quick no-op.

Inside each micro-batch (``foreachBatch``) the order-events contract is applied, then the
stream-level judgement (``transforms.events_stream``): redeliveries become ``duplicate_event``
and events older than the watermark ``late_event``, both quarantined with their raw text.

``foreachBatch`` is at-least-once: after a crash Spark replays the batch that was not
committed. Bronze and quarantine are therefore partitioned by ``_run_date`` and ``_batch_id``,
and a batch first removes whatever an earlier attempt of the same batch id wrote (under any
run date), then writes its rows: a replayed batch never duplicates anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.contracts import load_contract
from medallion.contracts.compiler import check_records, quarantined_rows, valid_rows
from medallion.contracts.readers import json_line_records
from medallion.errors import ConfigError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult, check_conservation
from medallion.lake import delete_path, list_dir, path_exists, read_parquet, write_partitions
from medallion.transforms.events_stream import DUPLICATE_EVENT, LATE_EVENT, flag_stream_reasons

log = logging.getLogger(__name__)

STREAM = "kafka_order_events"
CONTRACT = "kafka/order_events"
BATCH_COLUMN = "_batch_id"
PARTITIONS = ["_run_date", BATCH_COLUMN]
_DURATION = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


def parse_delay(text: str) -> dt.timedelta:
    """``"24 hours"`` -> timedelta(hours=24); the units Spark's watermark delays use."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(
            f"streaming.watermark_delay '{text}' is not a duration like '24 hours' or '30 minutes'"
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    return dt.timedelta(**{f"{unit}s": amount})


@dataclass
class StreamStats:
    batches: list[int] = field(default_factory=list)
    files: int = 0
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0
    late: int = 0
    max_event_ts: dt.datetime | None = None


class OrderEventBatches:
    """The ``foreachBatch`` function: contract + stream judgement + idempotent writes."""

    def __init__(self, context: JobContext, delay: dt.timedelta) -> None:
        self.context = context
        self.contract = load_contract(CONTRACT)
        self.bronze_path = context.lake.bronze("kafka", "order_events")
        self.quarantine_path = context.lake.quarantine("kafka", "order_events")
        self.delay = delay
        self.stats = StreamStats()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        spark = self.context.spark
        self._forget_earlier_attempt(batch_id)
        existing = read_parquet(spark, self.bronze_path)
        if existing is None:
            seen = spark.createDataFrame(
                [], "event_id string, topic string, partition int, offset long"
            )
            previous_max = None
        else:
            seen = existing.select("event_id", "topic", "partition", "offset")
            previous_max = existing.agg(F.max("event_ts")).first()[0]
        lines = batch.select(
            "value", "_source_file", F.monotonically_increasing_id().alias("_ordinal")
        )
        judged = (
            lines.transform(json_line_records(self.contract))
            .transform(
                check_records(
                    self.contract,
                    run_id=self.context.run_id,
                    run_date=self.context.run_date,
                    ingest_ts=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                )
            )
            .transform(flag_stream_reasons(seen, previous_max, self.delay))
        )
        # Materialise the judgement once: it reads bronze, which the writes below change, so a
        # lazy recomputation would see the batch's own rows and call them duplicates.
        judged = judged.localCheckpoint(eager=True)
        self._write(judged, batch_id)
        self._count(judged, batch_id)
        # Written but not yet committed: Spark records the batch when this function returns.
        crash_point("stream.before_commit")

    def _forget_earlier_attempt(self, batch_id: int) -> None:
        for root in (self.bronze_path, self.quarantine_path):
            for run_dir in list_dir(self.context.spark, root):
                if run_dir.startswith("_run_date="):
                    delete_path(self.context.spark, f"{root}/{run_dir}/{BATCH_COLUMN}={batch_id}")

    def _write(self, judged: DataFrame, batch_id: int) -> None:
        batch = F.lit(batch_id).cast("long").alias(BATCH_COLUMN)
        valid = judged.transform(valid_rows(self.contract)).select("*", batch)
        rejected = judged.transform(quarantined_rows).select("*", batch)
        write_partitions(valid, self.bronze_path, PARTITIONS)
        write_partitions(rejected, self.quarantine_path, PARTITIONS)

    def _count(self, judged: DataFrame, batch_id: int) -> None:
        is_valid = F.size("_reasons") == 0
        row = judged.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(is_valid.cast("long")).alias("valid"),
            F.sum(F.array_contains("_reasons", DUPLICATE_EVENT).cast("long")).alias("duplicates"),
            F.sum(F.array_contains("_reasons", LATE_EVENT).cast("long")).alias("late"),
            F.countDistinct("_source_file").alias("files"),
            F.max(F.when(is_valid, F.col("event_ts"))).alias("max_event_ts"),
        ).first()
        rows, valid = int(row["rows"]), int(row["valid"] or 0)
        stats = self.stats
        stats.batches.append(batch_id)
        stats.files += int(row["files"])
        stats.rows_in += rows
        stats.rows_out += valid
        stats.rows_quarantined += rows - valid
        stats.duplicates += int(row["duplicates"] or 0)
        stats.late += int(row["late"] or 0)
        if row["max_event_ts"] and (
            stats.max_event_ts is None or row["max_event_ts"] > stats.max_event_ts
        ):
            stats.max_event_ts = row["max_event_ts"]
        log.info(
            "kafka batch %d: %d files, %d events -> %d bronze, %d quarantined (%d duplicate, %d late)",
            batch_id,
            int(row["files"]),
            rows,
            valid,
            rows - valid,
            int(row["duplicates"] or 0),
            int(row["late"] or 0),
        )


def reset_stream(context: JobContext) -> None:
    """Forget everything the stream did: its checkpoint and its bronze and quarantine output."""
    lake = context.lake
    for path in (
        lake.checkpoint(STREAM),
        lake.bronze("kafka", "order_events"),
        lake.quarantine("kafka", "order_events"),
    ):
        delete_path(context.spark, path)
    log.warning("kafka stream reset: checkpoint, bronze and quarantine order events removed")


def last_committed_batch(context: JobContext) -> int | None:
    commits = [
        name
        for name in list_dir(context.spark, f"{context.lake.checkpoint(STREAM)}/commits")
        if name.isdigit()
    ]
    return max(int(name) for name in commits) if commits else None


def landed_days(context: JobContext, landing: str) -> list[str]:
    """The landing days up to the run date. The stream only looks there, so a run for day D
    never consumes files that landed for a later day; files that arrive late for an earlier
    day are picked up by the next run (the checkpoint remembers which files it has seen)."""
    days = [name[3:] for name in list_dir(context.spark, landing) if name.startswith("dt=")]
    return sorted(day for day in days if day <= context.run_date.isoformat())


def run(context: JobContext) -> JobResult:
    spark, lake = context.spark, context.lake
    if context.options.get("reset_checkpoint"):
        reset_stream(context)
    landing = lake.landing("kafka", "order_events")
    table = TableCount("kafka/order_events")
    if not path_exists(spark, landing):
        return JobResult(tables=[table], message=f"no landing folder {landing}: nothing to stream")
    delay = parse_delay(context.settings.streaming.watermark_delay)
    batches = OrderEventBatches(context, delay)
    days = landed_days(context, landing)
    if not days:
        return JobResult(
            tables=[table],
            message=f"no landing day on or before {context.run_date}: nothing to stream",
        )
    stream = (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", context.settings.streaming.max_files_per_trigger)
        .load(f"{landing}/dt={{{','.join(days)}}}/")
        .select("value", F.col("_metadata.file_path").alias("_source_file"))
    )
    query = (
        stream.writeStream.queryName(f"{STREAM}_{context.run_id[:8]}")
        .foreachBatch(batches)
        .option("checkpointLocation", lake.checkpoint(STREAM))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    stats = batches.stats
    table = TableCount("kafka/order_events", stats.rows_in, stats.rows_out, stats.rows_quarantined)
    check_conservation(table)
    last_batch = last_committed_batch(context)
    watermark = (stats.max_event_ts - delay) if stats.max_event_ts else None
    if watermark is None and path_exists(spark, batches.bronze_path):
        latest = read_parquet(spark, batches.bronze_path).agg(F.max("event_ts")).first()[0]
        watermark = latest - delay if latest else None
    details = {
        "files_consumed": stats.files,
        "batches": stats.batches,
        "last_committed_batch_id": last_batch,
        "watermark": watermark.isoformat() if watermark else None,
        "duplicate_events": stats.duplicates,
        "late_events": stats.late,
    }
    message = (
        f"no new files since batch {last_batch}; nothing to do"
        if not stats.batches
        else f"{stats.files} files in {len(stats.batches)} micro-batches, watermark {details['watermark']}"
    )
    return JobResult(tables=[table], details=details, message=message)


KAFKA_JOB = Job(
    "kafka_events_to_bronze",
    "stream new Kafka order-event files into bronze (checkpointed, deduplicated, late events quarantined)",
    run,
    ingest=True,
)
