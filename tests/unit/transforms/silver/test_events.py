"""Order events and customer behaviour in silver: the bronze projection, one row per event (first
delivery) and per customer and day (latest delivery), orphans flagged."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import events

D = dt.date
TS = dt.datetime


EVENTS = (
    "event_id string, topic string, partition int, offset bigint, order_id string, "
    "event_type string, event_ts timestamp, status string, metadata map<string,string>, "
    "_run_date date, _record_hash string"
)


def _event(event_id, order_id, offset, run_date, record_hash):
    return (event_id, "orders", 0, offset, order_id, "order_created", TS(2025, 1, 12, 9), "created",
            {"channel": "web"}, run_date, record_hash)  # fmt: skip


def test_redelivered_event_keeps_first_delivery_and_flags_unknown_order(spark):
    original = _event("E1", "O1", 1, D(2025, 1, 13), "h1")
    redelivered = _event("E1", "O1", 9, D(2025, 1, 14), "h9")  # the same event again, later
    orphan = _event("E2", "O404", 2, D(2025, 1, 14), "h2")
    versions = spark.createDataFrame(
        [(*row, D(2025, 1, 12)) for row in (redelivered, original, orphan)],
        EVENTS + ", event_date date",
    )
    known = spark.createDataFrame([("O1",)], "order_id string")

    result = events.current_events(versions, known)

    expected = spark.createDataFrame(
        [(*original, False, D(2025, 1, 12), D(2025, 1, 1)),
         (*orphan, True, D(2025, 1, 12), D(2025, 1, 1))],
        EVENTS + ", has_unknown_order boolean, event_date date, event_month date",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


UTC = dt.UTC
BRONZE_METADATA = (
    "_run_id string, _run_date date, _ingest_ts timestamp, _source_file string, _record_hash string"
)
INGESTED = TS(2025, 1, 14, 6, tzinfo=UTC)


def test_events_from_bronze_cleans_codes_drops_bronze_metadata_and_dates_the_event_in_utc(spark):
    late = TS(2025, 1, 13, 23, 30, tzinfo=UTC)  # the UTC date, whatever the machine's zone
    early = TS(2025, 2, 1, 0, 0, tzinfo=UTC)
    bronze = spark.createDataFrame(
        [("E1", "orders", 0, 41, "O1", "order_created", late, "created", {"channel": "web"}, "r1", D(2025, 1, 14), INGESTED, "e.jsonl", "h1"),
         (" E2 ", " ", 1, 7, " O2", " Order_Paid ", early, " PAID ", None, "r1", D(2025, 1, 14), INGESTED, "e.jsonl", "h2")],
        "event_id string, topic string, partition int, offset bigint, order_id string, event_type string, "
        "event_ts timestamp, status string, metadata map<string,string>, " + BRONZE_METADATA,
    )  # fmt: skip

    result = events.events_from_bronze(bronze)

    expected = spark.createDataFrame(
        [("E1", "orders", 0, 41, "O1", "order_created", late, "created", {"channel": "web"}, D(2025, 1, 14), "h1", D(2025, 1, 13)),
         ("E2", None, 1, 7, "O2", "order_paid", early, "paid", None, D(2025, 1, 14), "h2", D(2025, 2, 1))],
        "event_id string, topic string, partition int, offset bigint, order_id string, event_type string, "
        "event_ts timestamp, status string, metadata map<string,string>, _run_date date, "
        "_record_hash string, event_date date",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


BEHAVIOR = (
    "customer_id string, login_count int, page_views int, session_duration_minutes decimal(10,2), "
    "purchases int, revenue decimal(18,2), _run_date date, _record_hash string, event_date date"
)


def test_behavior_from_bronze_trims_the_customer_and_drops_bronze_metadata(spark):
    bronze = spark.createDataFrame(
        [("C1", D(2025, 1, 13), 3, 10, Decimal("5.50"), 1, Decimal("20.00"), "r1", D(2025, 1, 14), INGESTED, "b.csv", "h1"),
         (" C2 ", D(2025, 1, 12), 0, 0, Decimal("0.00"), 0, Decimal("0.00"), "r1", D(2025, 1, 14), INGESTED, "b.csv", "h2")],
        "customer_id string, event_date date, login_count int, page_views int, "
        "session_duration_minutes decimal(10,2), purchases int, revenue decimal(18,2), " + BRONZE_METADATA,
    )  # fmt: skip

    result = events.behavior_from_bronze(bronze)

    expected = spark.createDataFrame(
        [("C1", 3, 10, Decimal("5.50"), 1, Decimal("20.00"), D(2025, 1, 14), "h1", D(2025, 1, 13)),
         ("C2", 0, 0, Decimal("0.00"), 0, Decimal("0.00"), D(2025, 1, 14), "h2", D(2025, 1, 12))],
        BEHAVIOR,
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


def _behavior(customer_id, event_date, logins, run_date, record_hash):
    return (customer_id, logins, 4 * logins, Decimal("2.50"), 0, Decimal("0.00"), run_date,
            record_hash, event_date)  # fmt: skip


def test_current_behavior_keeps_the_latest_delivery_per_customer_and_day_and_flags_unknowns(spark):
    first = _behavior("C1", D(2025, 1, 13), 3, D(2025, 1, 14), "z")
    corrected = _behavior("C1", D(2025, 1, 13), 5, D(2025, 1, 15), "a")  # later delivery wins
    next_day = _behavior("C1", D(2025, 1, 14), 1, D(2025, 1, 15), "b")
    smaller_hash = _behavior("C404", D(2025, 2, 3), 1, D(2025, 2, 4), "1")
    larger_hash = _behavior("C404", D(2025, 2, 3), 2, D(2025, 2, 4), "2")  # same run: the hash
    versions = spark.createDataFrame(
        [first, corrected, next_day, smaller_hash, larger_hash], BEHAVIOR
    ).repartition(2)
    customers = spark.createDataFrame([("C1",), ("C2",)], "customer_id string")

    result = events.current_behavior(versions, customers)

    def out(row, has_unknown_customer, event_month):
        *columns, event_date = row
        return (*columns, has_unknown_customer, event_date, event_month)

    expected = spark.createDataFrame(
        [out(corrected, False, D(2025, 1, 1)),
         out(next_day, False, D(2025, 1, 1)),
         out(larger_hash, True, D(2025, 2, 1))],
        "customer_id string, login_count int, page_views int, "
        "session_duration_minutes decimal(10,2), purchases int, revenue decimal(18,2), "
        "_run_date date, _record_hash string, has_unknown_customer boolean, event_date date, "
        "event_month date",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)
