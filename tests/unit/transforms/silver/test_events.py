"""Order events and customer behaviour in silver: the bronze projection, one row per event (first
delivery) and per customer and day (latest delivery), orphans flagged."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import events

D = dt.date
TS = dt.datetime


def test_redelivered_event_keeps_first_delivery_and_flags_unknown_order(spark):
    versions = spark.createDataFrame(
        [
            ("E1", "O1", D(2025, 1, 13), "h1"),
            ("E1", "O1", D(2025, 1, 14), "h1"),
            ("E2", "O404", D(2025, 1, 14), "h2"),
        ],
        "event_id string, order_id string, _run_date date, _record_hash string",
    )
    for column in events.EVENT_BASE_COLUMNS:
        if column not in versions.columns:
            versions = versions.selectExpr("*", f"cast(null as string) as `{column}`")
    known = spark.createDataFrame([("O1",)], "order_id string")
    result = events.current_events(versions, known).select(
        "event_id", "_run_date", "has_unknown_order"
    )
    assertDataFrameEqual(
        result,
        [Row(event_id="E1", _run_date=D(2025, 1, 13), has_unknown_order=False),
         Row(event_id="E2", _run_date=D(2025, 1, 14), has_unknown_order=True)],
    )  # fmt: skip
