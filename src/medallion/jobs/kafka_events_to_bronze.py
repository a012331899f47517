"""Job ``kafka_events_to_bronze``: the landed Kafka micro-batch files, as a Structured Stream.

Each run starts the query with ``trigger(availableNow=True)`` over
``landing/kafka/order_events/dt=*/`` and a checkpoint in ``_checkpoints/kafka_order_events``:
it processes exactly the files that arrived since the last run, in micro-batches of at most
``streaming.max_files_per_trigger`` files, then stops. A run with no new files is a quick no-op.

Inside each micro-batch (``foreachBatch``) the order-events contract is applied, then the
stream-level judgement (``transforms.events_stream``): redeliveries become ``duplicate_event``
and events older than the watermark ``late_event``, both quarantined with their raw text.

``foreachBatch`` is at-least-once: after a crash Spark replays the batch it had not committed.
Bronze and quarantine are Delta tables (partitioned by ``_run_date``; ``_batch_id`` is a plain
column) and every write of a batch is idempotent: it carries ``txnAppId`` = the stream's app id
and ``txnVersion`` = the batch id, and Delta skips a write whose version is at or below the one
it recorded for the app id. A replayed batch therefore writes nothing new. The app id is the
checkpoint's query id, which a new checkpoint (``--reset-checkpoint``) renews: batch ids
restart at 0 there, and under the old app id Delta would skip every one of them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.contracts import load_contract
from medallion.contracts.compiler import INGEST_TS, check_records, quarantined_rows, valid_rows
from medallion.contracts.readers import json_line_records
from medallion.durations import parse_duration
from medallion.errors import ConfigError, JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult, check_conservation
from medallion.lake import (
    CHANGE_FEED,
    DELTA,
    RUN_DATE,
    Commit,
    append,
    delete_path,
    delta_errors,
    is_delta_table,
    list_dir,
    path_exists,
    read_delta,
    table_label,
)
from medallion.transforms.common import interval, utc_datetime
from medallion.transforms.events_stream import delivery_keys, flag_stream_reasons, tally_batch

log = logging.getLogger(__name__)

STREAM = "kafka_order_events"
CONTRACT = "kafka/order_events"
BATCH_COLUMN = "_batch_id"
PARTITIONS = [RUN_DATE]
SEEN_SCHEMA = "event_id string, topic string, partition int, offset long"


def parse_delay(text: str, setting: str = "streaming.watermark_delay") -> dt.timedelta:
    """``"24 hours"`` -> timedelta(hours=24); the units Spark's watermark delays use."""
    delay = parse_duration(text)
    if delay is None:
        raise ConfigError(f"{setting} '{text}' is not a duration like '24 hours' or '30 minutes'")
    return delay


# --- the stream's identity in Delta's idempotent writes --------------------------------------


def stream_app_id(spark: SparkSession, checkpoint: str) -> str:
    """The ``txnAppId`` of the stream's writes: its name and the checkpoint's query id.

    Spark writes the query id (``{"id": "<uuid>"}`` in ``<checkpoint>/metadata``) when a query
    first starts on a checkpoint and keeps it for the checkpoint's life, so it is stable across
    restarts and crashes (a replayed batch keeps its app id, and Delta recognises it) and new
    after ``--reset-checkpoint`` or a lost checkpoint (batch ids restart at 0; under the old app
    id Delta would silently skip every batch up to the last one it recorded).
    """
    metadata = f"{checkpoint}/metadata"
    if not path_exists(spark, metadata):
        raise JobError(f"{metadata} is missing: the stream's query id cannot be read")
    query_id = json.loads(spark.read.text(metadata).first()[0])["id"]
    return f"{STREAM}:{query_id}"


def recorded_txn_version(spark: SparkSession, path: str, app_id: str) -> int | None:
    """The last ``txnVersion`` the table at ``path`` recorded for ``app_id`` (None: none).

    This is the state Delta consults to skip an idempotent write; the Python API does not expose
    it, so it is read from the table's latest snapshot through the JVM.
    """
    if not is_delta_table(spark, path):
        return None
    jvm = spark.sparkContext._jvm
    with delta_errors(path):
        pair = jvm.org.apache.spark.sql.delta.DeltaLog.forTableWithSnapshot(
            spark._jsparkSession, path
        )
        recorded = pair._2().transactions().get(app_id)
    return int(recorded.get()) if recorded.isDefined() else None


def batch_commit_version(spark: SparkSession, path: str, app_id: str, batch_id: int) -> int | None:
    """The version of the table's commit of batch ``batch_id`` of ``app_id`` (None: not found).

    Found through the commit metadata every stream commit carries (``stream_app_id``,
    ``batch_id``); None when that commit has left the table's history (log retention).
    """
    from delta.tables import DeltaTable

    meta = F.col("userMetadata")
    with delta_errors(path):
        row = (
            DeltaTable.forPath(spark, path)
            .history()
            .where(
                (F.get_json_object(meta, "$.stream_app_id") == F.lit(app_id))
                & (F.get_json_object(meta, "$.batch_id") == F.lit(str(batch_id)))
            )
            .agg(F.min("version").alias("version"))
            .first()
        )
    return None if row["version"] is None else int(row["version"])


@dataclass
class StreamStats:
    batches: list[int] = field(default_factory=list)
    replayed: list[int] = field(default_factory=list)
    files: int = 0
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0
    future: int = 0
    late: int = 0
    max_event_ts: dt.datetime | None = None
    versions: dict[str, int] = field(default_factory=dict)


def latest_event_ts(bronze: DataFrame, tolerance: dt.timedelta) -> dt.datetime | None:
    """The latest believable event time in bronze, as a naive UTC datetime (collected as epoch
    micros): events later than their own ingest time plus ``tolerance`` are left out, so an
    event from the future that reached bronze before the future rule existed cannot hold the
    watermark years ahead."""
    believable = F.col("event_ts") <= F.col(INGEST_TS) + interval(tolerance)
    latest = F.max(F.when(believable, F.col("event_ts")))
    return utc_datetime(bronze.agg(F.unix_micros(latest)).first()[0])


class OrderEventBatches:
    """The ``foreachBatch`` function: contract + stream judgement + idempotent Delta writes.

    ``app_id`` is the stream's app id for Delta's idempotent writes; by default it is read from
    the checkpoint on the first batch (:func:`stream_app_id`), once the query has written it.
    """

    def __init__(
        self,
        context: JobContext,
        delay: dt.timedelta,
        app_id: str | None = None,
        tolerance: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        self.context = context
        self.contract = load_contract(CONTRACT)
        self.bronze_path = context.lake.bronze("kafka", "order_events")
        self.quarantine_path = context.lake.quarantine("kafka", "order_events")
        self.delay = delay
        self.tolerance = tolerance
        self.stats = StreamStats()
        self._app_id = app_id

    @property
    def app_id(self) -> str:
        if self._app_id is None:
            self._app_id = stream_app_id(self.context.spark, self.context.lake.checkpoint(STREAM))
        return self._app_id

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        txn = (self.app_id, batch_id)
        # A batch whose bronze write Delta has recorded was committed to the lake by an earlier
        # attempt that died before Spark checkpointed it. Its writes below will be skipped; it
        # is judged again, against bronze as it was before that attempt, only to report it.
        recorded = recorded_txn_version(self.context.spark, self.bronze_path, txn[0])
        replayed = recorded is not None and recorded >= batch_id
        judged = self._judge(batch, self._bronze_before(batch_id) if replayed else self._bronze())
        self._write(judged, txn)
        self._count(judged, batch_id, replayed)
        # Written but not yet committed: Spark records the batch when this function returns.
        crash_point("stream.before_commit")

    def _bronze(self) -> DataFrame | None:
        return read_delta(self.context.spark, self.bronze_path)

    def _bronze_before(self, batch_id: int) -> DataFrame | None:
        """Bronze as the first attempt of ``batch_id`` judged it: the version before its commit."""
        spark = self.context.spark
        version = batch_commit_version(spark, self.bronze_path, self.app_id, batch_id)
        if version == 0:
            return None  # the batch's commit created bronze: nothing was there before it
        if version is not None:
            with delta_errors(self.bronze_path):
                reader = spark.read.format(DELTA).option("versionAsOf", version - 1)
                return reader.load(self.bronze_path)
        log.warning(
            "kafka batch %d: its commit is no longer in bronze's history; judging the replay "
            "against bronze without the rows whose %s is %d",
            batch_id,
            BATCH_COLUMN,
            batch_id,
        )
        return self._bronze().where(F.col(BATCH_COLUMN) != F.lit(batch_id))

    def _judge(self, batch: DataFrame, bronze: DataFrame | None) -> DataFrame:
        spark = self.context.spark
        if bronze is None:
            seen, previous_max = spark.createDataFrame([], SEEN_SCHEMA), None
        else:
            seen = delivery_keys(bronze)
            previous_max = latest_event_ts(bronze, self.tolerance)
        lines = batch.select(
            "value", "_source_file", F.monotonically_increasing_id().alias("_ordinal")
        )
        ingest_ts = dt.datetime.now(dt.UTC)
        judged = (
            lines.transform(json_line_records(self.contract))
            .transform(
                check_records(
                    self.contract,
                    run_id=self.context.run_id,
                    run_date=self.context.run_date,
                    ingest_ts=ingest_ts,
                )
            )
            .transform(
                flag_stream_reasons(seen, previous_max, self.delay, ingest_ts + self.tolerance)
            )
        )
        # Materialise the judgement once: it reads bronze, which the writes below change, so a
        # lazy recomputation would see the batch's own rows and call them duplicates.
        return judged.localCheckpoint(eager=True)

    def _metadata(self, batch_id: int) -> str:
        """The run's commit metadata plus the stream app id and batch id (to find the commit)."""
        return self.context.commit_metadata_with(stream_app_id=self.app_id, batch_id=batch_id)

    def _write(self, judged: DataFrame, txn: tuple[str, int]) -> None:
        """Quarantine first, bronze last, each with the batch's (app id, batch id).

        Bronze is what the judgement reads and what tells a replay (above) from a first attempt,
        so it is written last: when bronze has recorded the batch, quarantine has too, and a
        batch that died between the two is judged again against a bronze without its rows,
        writes the bronze half and has its quarantine half skipped.
        """
        batch = F.lit(txn[1]).cast("long").alias(BATCH_COLUMN)
        metadata = self._metadata(txn[1])
        valid = judged.transform(valid_rows(self.contract)).select("*", batch)
        rejected = judged.transform(quarantined_rows).select("*", batch)
        for frame, path, properties in (
            (rejected, self.quarantine_path, None),
            (valid, self.bronze_path, CHANGE_FEED),  # silver reads which events changed
        ):
            commit: Commit = append(
                frame,
                path,
                metadata=metadata,
                partition_by=PARTITIONS,
                txn=txn,
                properties=properties,
            )
            self.stats.versions[table_label(path)] = commit.version

    def _count(self, judged: DataFrame, batch_id: int, replayed: bool) -> None:
        row = judged.transform(tally_batch).first()
        rows, valid = int(row["rows"]), int(row["valid"])
        stats = self.stats
        stats.batches.append(batch_id)
        if replayed:
            stats.replayed.append(batch_id)
        stats.files += int(row["files"])
        stats.rows_in += rows
        stats.rows_out += valid
        stats.rows_quarantined += rows - valid
        stats.duplicates += int(row["duplicates"])
        stats.future += int(row["future"])
        stats.late += int(row["late"])
        batch_max = utc_datetime(row["max_event_ts"])
        if batch_max and (stats.max_event_ts is None or batch_max > stats.max_event_ts):
            stats.max_event_ts = batch_max
        log.info(
            "kafka batch %d%s: %d files, %d events -> %d bronze, %d quarantined "
            "(%d duplicate, %d from the future, %d late)",
            batch_id,
            " (replayed: already committed by an earlier attempt, Delta skipped its writes)"
            if replayed
            else "",
            int(row["files"]),
            rows,
            valid,
            rows - valid,
            int(row["duplicates"]),
            int(row["future"]),
            int(row["late"]),
        )


def reset_stream(context: JobContext) -> None:
    """Forget everything the stream did: its checkpoint and its bronze and quarantine output.

    The checkpoint goes, so the next query starts with a new query id and therefore a new app id
    for Delta's idempotent writes (:func:`stream_app_id`); the tables go with it, or the replay
    would be judged as duplicates of itself.
    """
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
    streaming = context.settings.streaming
    delay = parse_delay(streaming.watermark_delay)
    tolerance = parse_delay(streaming.future_tolerance, "streaming.future_tolerance")
    batches = OrderEventBatches(context, delay, tolerance=tolerance)
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
    table = TableCount(
        "kafka/order_events",
        stats.rows_in,
        stats.rows_out,
        stats.rows_quarantined,
        versions=dict(stats.versions),
    )
    check_conservation(table)
    last_batch = last_committed_batch(context)
    watermark = (stats.max_event_ts - delay) if stats.max_event_ts else None
    if watermark is None:
        bronze = read_delta(spark, batches.bronze_path)
        latest = latest_event_ts(bronze, tolerance) if bronze is not None else None
        watermark = latest - delay if latest else None
    details = {
        "stream_app_id": batches.app_id,
        "files_consumed": stats.files,
        "batches": stats.batches,
        "replayed_batches": stats.replayed,
        "last_committed_batch_id": last_batch,
        "watermark": watermark.isoformat() if watermark else None,
        "duplicate_events": stats.duplicates,
        "future_events": stats.future,
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
    landing=("kafka/order_events",),
    streaming=True,
)
