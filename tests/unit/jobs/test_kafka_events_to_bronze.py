"""The stream's ``foreachBatch`` on Delta: idempotent writes keyed by (app id, batch id).

Each test drives :class:`OrderEventBatches` directly with a hand-built micro-batch, the way
Spark calls it, against a throwaway Delta lake.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from medallion.errors import ConfigError
from medallion.jobs import kafka_events_to_bronze
from medallion.jobs.base import JobContext
from medallion.jobs.kafka_events_to_bronze import (
    OrderEventBatches,
    parse_delay,
    recorded_txn_version,
)
from medallion.lake import Lake, run_id_of, table_version

RUN_DATE = dt.date(2025, 1, 13)
DELAY = dt.timedelta(hours=24)
BATCH = "value string, _source_file string"


def event(name: str, offset: int, hour: int = 9, day: str = "2025-01-13") -> str:
    """One JSON line of the contract; ``E1`` stands for a UUID ending in 1."""
    return json.dumps(
        {
            "event_id": f"00000000-0000-4000-8000-{int(name[1:]):012d}",
            "topic": "orders",
            "partition": 0,
            "offset": offset,
            "order_id": "O000000001",
            "event_type": "order_created",
            "event_ts": f"{day}T{hour:02d}:00:00Z",
            "status": "pending",
            "metadata": {"channel": "web"},
        }
    )


# Three new events, one redelivery inside the batch, one torn line: 3 to bronze, 2 to quarantine.
LINES_0 = [event("E1", 1), event("E2", 2), event("E3", 3), event("E1", 1), '{"event_id": "E4", "to']
# The next batch: one new event and a redelivery of batch 0's E2.
LINES_1 = [event("E5", 5, hour=10), event("E2", 2)]


def context_for(spark, lake_settings, run_id: str) -> JobContext:
    return JobContext(
        spark=spark,
        settings=lake_settings,
        lake=Lake.from_root(lake_settings.lake.root),
        run_date=RUN_DATE,
        run_id=run_id,
        job="kafka_events_to_bronze",
    )


def micro_batch(spark, lines: list[str], name: str):
    return spark.createDataFrame([(line, f"file:/landing/{name}.jsonl") for line in lines], BATCH)


def counts(batches: OrderEventBatches) -> tuple[int, int, int, int]:
    s = batches.stats
    return s.rows_in, s.rows_out, s.rows_quarantined, s.duplicates


def table_rows(spark, path: str) -> int:
    return spark.read.format("delta").load(path).count()


@pytest.fixture
def first_attempt(spark, lake_settings):
    batches = OrderEventBatches(context_for(spark, lake_settings, "run-1"), DELAY, "stream:A")
    batches(micro_batch(spark, LINES_0, "batch-0"), 0)
    return batches


def test_a_batch_writes_both_tables_with_its_txn_and_the_run_in_the_commit(spark, first_attempt):
    bronze, quarantine = first_attempt.bronze_path, first_attempt.quarantine_path
    assert counts(first_attempt) == (5, 3, 2, 1)
    assert (table_rows(spark, bronze), table_rows(spark, quarantine)) == (3, 2)
    # Bronze is created (version 0, with its change data feed on) before its first append.
    assert first_attempt.stats.versions == {
        "bronze/kafka/order_events": 1,
        "quarantine/kafka/order_events": 0,
    }
    for path in (bronze, quarantine):
        assert recorded_txn_version(spark, path, "stream:A") == 0
        commit = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").first()
        assert run_id_of(commit["userMetadata"]) == "run-1"
        assert json.loads(commit["userMetadata"])["batch_id"] == 0
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{bronze}`").first()
    assert detail["partitionColumns"] == ["_run_date"]


def test_replaying_a_batch_id_with_the_same_app_id_writes_nothing(
    spark, lake_settings, first_attempt
):
    """A crash after the Delta commits, before Spark's checkpoint: the retry replays batch 0."""
    bronze, quarantine = first_attempt.bronze_path, first_attempt.quarantine_path
    retry = OrderEventBatches(context_for(spark, lake_settings, "run-2"), DELAY, "stream:A")
    retry(micro_batch(spark, LINES_0, "batch-0"), 0)
    assert (table_version(spark, bronze), table_version(spark, quarantine)) == (1, 0)
    assert (table_rows(spark, bronze), table_rows(spark, quarantine)) == (3, 2)
    # The replay reports the batch as its committed rows hold it (judged against bronze as it
    # was before the first attempt, not as duplicates of itself), and says it was a replay.
    assert counts(retry) == counts(first_attempt)
    assert (retry.stats.batches, retry.stats.replayed) == ([0], [0])

    # The stream goes on: the next batch is written and judged against batch 0's rows.
    retry(micro_batch(spark, LINES_1, "batch-1"), 1)
    assert (table_rows(spark, bronze), table_rows(spark, quarantine)) == (4, 3)
    assert retry.stats.replayed == [0]
    assert retry.stats.versions == {
        "bronze/kafka/order_events": 2,
        "quarantine/kafka/order_events": 1,
    }


def test_a_new_app_id_is_not_skipped_for_batch_ids_delta_saw_under_the_old_one(
    spark, lake_settings, first_attempt
):
    """Why a new checkpoint needs a new app id: batch ids restart at 0 and must still land."""
    quarantine = first_attempt.quarantine_path
    fresh = OrderEventBatches(context_for(spark, lake_settings, "run-2"), DELAY, "stream:B")
    fresh(micro_batch(spark, LINES_0, "batch-0"), 0)
    assert fresh.stats.replayed == []
    # Written, not skipped: bronze already holds E1-E3, so this time they are duplicates.
    assert counts(fresh) == (5, 0, 5, 4)
    assert table_rows(spark, quarantine) == 2 + 5
    assert recorded_txn_version(spark, quarantine, "stream:B") == 0


def test_a_batch_that_died_between_its_two_writes_completes_bronze_once(
    spark, lake_settings, monkeypatch, first_attempt
):
    """Quarantine is written first: a crash before bronze's commit leaves bronze without the
    batch, so the retry judges it as new, writes bronze, and Delta skips the quarantine half."""
    bronze, quarantine = first_attempt.bronze_path, first_attempt.quarantine_path
    real_append = kafka_events_to_bronze.append

    def dying_append(frame, path, **kwargs):
        if path == bronze:
            raise RuntimeError("killed between the quarantine and bronze commits")
        return real_append(frame, path, **kwargs)

    monkeypatch.setattr(kafka_events_to_bronze, "append", dying_append)
    with pytest.raises(RuntimeError):
        first_attempt(micro_batch(spark, LINES_1, "batch-1"), 1)
    monkeypatch.setattr(kafka_events_to_bronze, "append", real_append)
    assert (table_rows(spark, bronze), table_rows(spark, quarantine)) == (3, 3)

    retry = OrderEventBatches(context_for(spark, lake_settings, "run-2"), DELAY, "stream:A")
    retry(micro_batch(spark, LINES_1, "batch-1"), 1)
    assert (table_rows(spark, bronze), table_rows(spark, quarantine)) == (4, 3)
    assert counts(retry) == (2, 1, 1, 1)
    assert retry.stats.replayed == []
    assert (table_version(spark, bronze), table_version(spark, quarantine)) == (2, 1)


def test_one_event_dated_2035_is_quarantined_and_the_next_days_events_are_on_time(
    spark, lake_settings
):
    """A device clock ten years ahead among a day's events used to move the watermark to 2034,
    so every later real event went to quarantine as late while the runs reported success."""
    batches = OrderEventBatches(context_for(spark, lake_settings, "run-1"), DELAY, "stream:A")
    day_one = [event("E1", 1), event("E2", 2, hour=10), event("E9", 9, day="2035-01-01")]
    batches(micro_batch(spark, day_one, "batch-0"), 0)
    batches(micro_batch(spark, [event("E3", 3, hour=11, day="2025-01-14")], "batch-1"), 1)
    stats = batches.stats
    assert (stats.rows_in, stats.rows_out, stats.rows_quarantined) == (4, 3, 1)
    assert (stats.future, stats.late) == (1, 0)
    (rejected,) = spark.read.format("delta").load(batches.quarantine_path).collect()
    assert rejected["_reasons"] == ["event_ts:future"] and "2035-01-01" in rejected["_raw_record"]
    assert stats.max_event_ts == dt.datetime(2025, 1, 14, 11)  # the watermark's basis


def test_parse_delay():
    assert parse_delay("24 hours") == dt.timedelta(hours=24)
    assert parse_delay("30 minutes") == dt.timedelta(minutes=30)
    assert parse_delay("2 days") == dt.timedelta(days=2)
    with pytest.raises(ConfigError, match="not a duration"):
        parse_delay("soon")
