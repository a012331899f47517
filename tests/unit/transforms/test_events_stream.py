"""Stream-level judgement of order events on tiny hand-built batches."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.events_stream import flag_stream_reasons

TS = dt.datetime
CHECKED = (
    "event_id string, topic string, partition int, offset long, event_ts timestamp, "
    "_source_file string, _record_hash string, _reasons array<string>"
)
SEEN = "event_id string, topic string, partition int, offset long"


def judge(spark, rows, seen_rows=(), previous=None, delay=dt.timedelta(hours=24), not_after=None):
    checked = spark.createDataFrame(rows, CHECKED)
    seen = spark.createDataFrame(list(seen_rows), SEEN)
    return checked.transform(flag_stream_reasons(seen, previous, delay, not_after)).select(
        "event_id", "_source_file", "_reasons"
    )


def test_redelivery_in_batch_keeps_first_copy(spark):
    rows = [
        ("E1", "orders", 0, 10, TS(2025, 1, 13, 9), "b-2.jsonl", "h1", []),
        ("E1", "orders", 0, 10, TS(2025, 1, 13, 9), "b-1.jsonl", "h1", []),
        ("E2", "orders", 0, 11, TS(2025, 1, 13, 10), "b-1.jsonl", "h2", []),
    ]
    assertDataFrameEqual(
        judge(spark, rows),
        [Row(event_id="E1", _source_file="b-1.jsonl", _reasons=[]),
         Row(event_id="E1", _source_file="b-2.jsonl", _reasons=["duplicate_event"]),
         Row(event_id="E2", _source_file="b-1.jsonl", _reasons=[])],
    )  # fmt: skip


def test_event_already_in_bronze_by_id_or_by_offset_is_a_duplicate(spark):
    rows = [
        ("E1", "orders", 0, 10, TS(2025, 1, 14, 9), "b-9.jsonl", "h1", []),
        (
            "E9",
            "orders",
            3,
            77,
            TS(2025, 1, 14, 9),
            "b-9.jsonl",
            "h9",
            [],
        ),  # same topic/partition/offset
        ("E3", "orders", 0, 12, TS(2025, 1, 14, 9), "b-9.jsonl", "h3", []),
    ]
    seen = [("E1", "orders", 0, 10), ("E7", "orders", 3, 77)]
    result = {r.event_id: r._reasons for r in judge(spark, rows, seen).collect()}
    assert result == {"E1": ["duplicate_event"], "E9": ["duplicate_event"], "E3": []}


def test_late_event_is_older_than_the_earlier_batches_latest_minus_delay(spark):
    rows = [
        ("E1", "orders", 0, 1, TS(2025, 1, 14, 12), "b.jsonl", "h1", []),
        ("E2", "orders", 0, 2, TS(2025, 1, 13, 12), "b.jsonl", "h2", []),
        ("E3", "orders", 0, 3, TS(2025, 1, 13, 11, 59), "b.jsonl", "h3", []),
    ]
    # The watermark is what earlier batches saw (bronze's latest, 14 Jan 12:00) minus 24 h.
    judged = {
        r.event_id: r._reasons for r in judge(spark, rows, previous=TS(2025, 1, 14, 12)).collect()
    }
    assert judged == {"E1": [], "E2": [], "E3": ["late_event"]}  # E2: exactly 24 h, on time
    later = {
        r.event_id: r._reasons for r in judge(spark, rows, previous=TS(2025, 1, 15, 12)).collect()
    }
    assert later == {"E1": [], "E2": ["late_event"], "E3": ["late_event"]}


def test_a_batch_never_makes_its_own_events_late(spark):
    """As in Spark, the watermark comes from earlier batches only: the first batch has none,
    and an event 30 hours older than another of its own batch is on time."""
    rows = [
        ("E1", "orders", 0, 1, TS(2025, 1, 14, 18), "b.jsonl", "h1", []),
        ("E2", "orders", 0, 2, TS(2025, 1, 13, 12), "b.jsonl", "h2", []),
    ]
    assert {r.event_id: r._reasons for r in judge(spark, rows).collect()} == {"E1": [], "E2": []}
    previous = TS(2025, 1, 14)  # bronze's latest: the watermark is 13 Jan 00:00
    judged = {r.event_id: r._reasons for r in judge(spark, rows, previous=previous).collect()}
    assert judged == {"E1": [], "E2": []}


def test_an_event_from_the_future_is_quarantined_and_moves_no_watermark(spark):
    """A device clock ten years ahead: the 2035 event is ``event_ts:future``; the batch's real
    events, judged against the earlier batches' watermark, are all on time."""
    ingested = TS(2025, 1, 15, 1)
    rows = [
        ("E1", "orders", 0, 1, TS(2035, 1, 1), "b.jsonl", "h1", []),
        ("E2", "orders", 0, 2, TS(2025, 1, 14, 9), "b.jsonl", "h2", []),
        ("E3", "orders", 0, 3, TS(2025, 1, 15, 1, 30), "b.jsonl", "h3", []),  # within tolerance
        ("E4", "orders", 0, 4, TS(2025, 1, 15, 2, 1), "b.jsonl", "h4", []),  # 1 h 1 min ahead
        ("E5", "orders", 0, 5, TS(2036, 1, 1), "b.jsonl", "h5", ["event_type:allowed_values"]),
    ]
    not_after = ingested + dt.timedelta(hours=1)
    judged = {
        r.event_id: r._reasons
        for r in judge(spark, rows, previous=TS(2025, 1, 14), not_after=not_after).collect()
    }
    assert judged == {
        "E1": ["event_ts:future"],
        "E2": [],
        "E3": [],
        "E4": ["event_ts:future"],
        "E5": ["event_type:allowed_values"],  # a contract failure keeps its own reason
    }


def test_contract_failures_keep_their_reason_only(spark):
    rows = [
        ("E1", "orders", 0, 1, TS(2025, 1, 14, 12), "b.jsonl", "h1", []),
        ("E1", "orders", 0, 1, None, "b.jsonl", "h0", ["event_ts:required"]),
        ("E5", "orders", 0, 5, TS(2020, 1, 1), "b.jsonl", "h5", ["event_type:allowed_values"]),
    ]
    result = sorted((r.event_id, r._reasons) for r in judge(spark, rows).collect())
    assert result == [
        ("E1", []),
        ("E1", ["event_ts:required"]),
        ("E5", ["event_type:allowed_values"]),
    ]
