"""Orders in silver: the bronze projection, the latest version per order, the USD conversion and
the orphan flags."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import fx, orders

D = dt.date
TS = dt.datetime


FX_SCHEMA = "rate_date date, quote_ccy string, rate decimal(18,8)"


def test_orders_flag_orphans_and_convert(spark):
    schema = (
        "order_id string, customer_id string, product_id string, order_ts timestamp, quantity int, "
        "unit_price decimal(18,2), amount decimal(18,2), currency string, status string, "
        "updated_at timestamp, _run_date date, _record_hash string"
    )
    o1 = (
        "O1",
        "C1",
        "P1",
        TS(2025, 1, 10, 9),
        2,
        Decimal("5.00"),
        Decimal("10.00"),
        "EUR",
        "paid",
        TS(2025, 1, 10, 9),
        D(2025, 1, 13),
        "h1",
    )
    o2 = (
        "O2",
        "C9",
        "P9",
        TS(2025, 1, 10, 9),
        1,
        Decimal("5.00"),
        Decimal("5.00"),
        "USD",
        "paid",
        TS(2025, 1, 10, 9),
        D(2025, 1, 13),
        "h2",
    )
    base = spark.createDataFrame([(*o1, D(2025, 1, 10)), (*o2, D(2025, 1, 10))], schema + ", order_date date")  # fmt: skip
    asof = spark.createDataFrame(
        [(D(2025, 1, 10), "EUR", Decimal("0.50000000"))], FX_SCHEMA
    ).transform(fx.fx_asof_calendar())
    known_c = spark.createDataFrame([("C1",)], "customer_id string")
    known_p = spark.createDataFrame([("P1",)], "product_id string")

    result = base.transform(orders.enrich_orders(asof, known_c, known_p))

    expected = spark.createDataFrame(
        [(*o1, Decimal("0.50000000"), D(2025, 1, 10), Decimal("20.00"), True, False, False, D(2025, 1, 10), D(2025, 1, 1)),
         (*o2, Decimal("1.00000000"), D(2025, 1, 10), Decimal("5.00"), True, True, True, D(2025, 1, 10), D(2025, 1, 1))],
        schema + ", fx_rate decimal(18,8), fx_rate_date date, amount_usd decimal(18,2), "
        "has_fx_rate boolean, has_unknown_customer boolean, has_unknown_product boolean, "
        "order_date date, order_month date",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


BRONZE_ORDERS = (
    "order_id string, customer_id string, product_id string, order_ts timestamp, quantity int, "
    "unit_price decimal(18,2), amount decimal(18,2), currency string, status string, "
    "updated_at timestamp, _run_id string, _run_date date, _ingest_ts timestamp, "
    "_source_file string, _record_hash string"
)
SILVER_ORDERS = (
    "order_id string, customer_id string, product_id string, order_ts timestamp, quantity int, "
    "unit_price decimal(18,2), amount decimal(18,2), currency string, status string, "
    "updated_at timestamp, _run_date date, _record_hash string, order_date date"
)
UTC = dt.UTC


def test_orders_from_bronze_cleans_codes_drops_bronze_metadata_and_dates_the_order_in_utc(spark):
    late = TS(2025, 1, 10, 23, 30, tzinfo=UTC)  # the UTC date, whatever the machine's zone
    ingested = TS(2025, 1, 13, 6, tzinfo=UTC)
    bronze = spark.createDataFrame(
        [("O1", "C1", "P1", late, 2, Decimal("5.00"), Decimal("10.00"), "EUR", "paid", late, "r1", D(2025, 1, 13), ingested, "orders.csv", "h1"),
         (" O2 ", "  ", " P2", late, 1, Decimal("7.50"), Decimal("7.50"), " eur ", " PAID ", late, "r1", D(2025, 1, 13), ingested, "orders.csv", "h2")],
        BRONZE_ORDERS,
    )  # fmt: skip

    result = orders.orders_from_bronze(bronze)

    expected = spark.createDataFrame(
        [("O1", "C1", "P1", late, 2, Decimal("5.00"), Decimal("10.00"), "EUR", "paid", late, D(2025, 1, 13), "h1", D(2025, 1, 10)),
         ("O2", None, "P2", late, 1, Decimal("7.50"), Decimal("7.50"), "EUR", "paid", late, D(2025, 1, 13), "h2", D(2025, 1, 10))],
        SILVER_ORDERS,
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


def _order(order_id, status, updated_at, run_date, record_hash):
    placed = TS(2025, 1, 5, 9, tzinfo=UTC)
    return (order_id, "C1", "P1", placed, 1, Decimal("5.00"), Decimal("5.00"), "USD", status,
            updated_at, run_date, record_hash, D(2025, 1, 5))  # fmt: skip


def test_current_orders_keeps_the_latest_version_and_ties_go_to_the_later_delivery(spark):
    t1, t2 = TS(2025, 1, 10, tzinfo=UTC), TS(2025, 1, 11, tzinfo=UTC)
    newest = _order("O1", "shipped", t2, D(2025, 1, 12), "a")
    # An older version delivered late (a rerun of an old extract) does not win over a newer one.
    stale = _order("O1", "paid", t1, D(2025, 1, 13), "b")
    first_delivery = _order("O2", "paid", t1, D(2025, 1, 13), "z")
    later_delivery = _order("O2", "cancelled", t1, D(2025, 1, 14), "a")  # same updated_at
    smaller_hash = _order("O3", "paid", t1, D(2025, 1, 13), "1")
    larger_hash = _order("O3", "returned", t1, D(2025, 1, 13), "2")  # full tie: the hash decides
    undated = _order("O4", "paid", None, D(2025, 1, 14), "x")  # no updated_at sorts last
    dated = _order("O4", "delivered", t1, D(2025, 1, 13), "y")
    rows = [
        newest,
        stale,
        first_delivery,
        later_delivery,
        smaller_hash,
        larger_hash,
        undated,
        dated,
    ]
    # Versions read back from silver carry its derived columns too: current_orders drops them.
    versions = spark.createDataFrame(
        [(*row, True) for row in rows], SILVER_ORDERS + ", has_fx_rate boolean"
    ).repartition(3)

    result = orders.current_orders(versions)

    expected = spark.createDataFrame([newest, later_delivery, larger_hash, dated], SILVER_ORDERS)
    assertDataFrameEqual(result, expected)
