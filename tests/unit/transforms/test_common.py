"""The shared transformations: the latest version per key and the rows a MERGE must write."""

from __future__ import annotations

import datetime as dt

from pyspark.testing import assertDataFrameEqual

from medallion.transforms.common import changed_rows, latest_per_key, version_order

D = dt.date
TS = dt.datetime
EVENT_SCHEMA = "event_id string, metadata map<string,string>, note string"


def test_latest_version_wins_and_ties_break_on_run_date_then_hash(spark):
    schema = "id string, v string, updated_at timestamp, _run_date date, _record_hash string"
    rows = [
        ("C1", "old", TS(2025, 1, 1), D(2025, 1, 13), "aaa"),
        ("C1", "new", TS(2025, 1, 2), D(2025, 1, 13), "bbb"),
        ("C2", "day1", TS(2025, 1, 5), D(2025, 1, 13), "zzz"),
        ("C2", "day2", TS(2025, 1, 5), D(2025, 1, 14), "aaa"),  # same updated_at: later run wins
        ("C3", "h1", TS(2025, 1, 5), D(2025, 1, 13), "111"),
        ("C3", "h2", TS(2025, 1, 5), D(2025, 1, 13), "222"),  # full tie: larger hash wins, always
    ]
    df = spark.createDataFrame(rows, schema)
    result = df.transform(latest_per_key(["id"], version_order("updated_at")))
    expected = spark.createDataFrame([rows[1], rows[3], rows[5]], schema)
    assertDataFrameEqual(result, expected)
    # The survivor does not depend on input order or partitioning.
    shuffled = df.repartition(3).orderBy("_record_hash")
    assertDataFrameEqual(
        shuffled.transform(latest_per_key(["id"], version_order("updated_at"))), expected
    )


def test_changed_rows_keeps_new_and_changed_rows_nulls_and_maps_compared_by_value(spark):
    existing = spark.createDataFrame(
        [
            ("E1", {"a": "1", "b": "2"}, None),  # unchanged (null note, same map)
            ("E2", {"a": "1"}, "x"),  # map changes
            ("E3", None, "y"),  # note changes from y to null
        ],
        EVENT_SCHEMA,
    )
    current = spark.createDataFrame(
        [
            ("E1", {"b": "2", "a": "1"}, None),
            ("E2", {"a": "2"}, "x"),
            ("E3", None, None),
            ("E4", {}, "new"),
        ],
        EVENT_SCHEMA,
    )
    expected = spark.createDataFrame(
        [("E2", {"a": "2"}, "x"), ("E3", None, None), ("E4", {}, "new")], EVENT_SCHEMA
    )
    result = current.transform(changed_rows(existing))
    assertDataFrameEqual(result, expected)
    assert current.transform(changed_rows(None)) is current
