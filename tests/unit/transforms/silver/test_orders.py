"""Orders in silver: the bronze projection, the latest version per order, the USD conversion and
the orphan flags."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import fx, orders

D = dt.date
TS = dt.datetime


FX_SCHEMA = "rate_date date, quote_ccy string, rate decimal(18,8)"


def test_orders_flag_orphans_and_convert(spark):
    base = spark.createDataFrame(
        [
            ("O1", "C1", "P1", TS(2025, 1, 10, 9), 2, Decimal("5.00"), Decimal("10.00"), "EUR", "paid", TS(2025, 1, 10, 9), D(2025, 1, 13), "h1", D(2025, 1, 10)),
            ("O2", "C9", "P9", TS(2025, 1, 10, 9), 1, Decimal("5.00"), Decimal("5.00"), "USD", "paid", TS(2025, 1, 10, 9), D(2025, 1, 13), "h2", D(2025, 1, 10)),
        ],
        "order_id string, customer_id string, product_id string, order_ts timestamp, quantity int, unit_price decimal(18,2), amount decimal(18,2), currency string, status string, updated_at timestamp, _run_date date, _record_hash string, order_date date",
    )  # fmt: skip
    asof = spark.createDataFrame(
        [(D(2025, 1, 10), "EUR", Decimal("0.50000000"))], FX_SCHEMA
    ).transform(fx.fx_asof_calendar())
    known_c = spark.createDataFrame([("C1",)], "customer_id string")
    known_p = spark.createDataFrame([("P1",)], "product_id string")
    result = base.transform(orders.enrich_orders(asof, known_c, known_p)).select(
        "order_id", "amount_usd", "has_unknown_customer", "has_unknown_product"
    )
    assertDataFrameEqual(
        result,
        [Row(order_id="O1", amount_usd=Decimal("20.00"), has_unknown_customer=False, has_unknown_product=False),
         Row(order_id="O2", amount_usd=Decimal("5.00"), has_unknown_customer=True, has_unknown_product=True)],
    )  # fmt: skip
