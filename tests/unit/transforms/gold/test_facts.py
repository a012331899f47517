"""fact_orders on a tiny dataset with values computed by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.testing import assertDataFrameEqual

from medallion.transforms.gold import facts
from medallion.transforms.gold.dim_customer import HISTORY_START, OPEN_END

D, TS = dt.date, dt.datetime
DIM_C = "customer_sk long, customer_id string, valid_from timestamp, valid_to timestamp, is_current boolean"
ORDERS = (
    "order_id string, customer_id string, product_id string, order_ts timestamp, order_date date, quantity int, "
    "unit_price decimal(18,2), amount decimal(18,2), currency string, fx_rate decimal(18,8), fx_rate_date date, "
    "amount_usd decimal(18,2), status string"
)


def test_fact_takes_the_customer_version_valid_at_order_time_and_unknowns_point_at_minus_one(spark):
    change = TS(2025, 1, 14, 12)
    dim_c = spark.createDataFrame(
        [(-1, "UNKNOWN", HISTORY_START, OPEN_END, True), (11, "C1", HISTORY_START, change, False), (12, "C1", change, OPEN_END, True)],
        DIM_C,
    )  # fmt: skip
    dim_p = spark.createDataFrame(
        [(-1, "UNKNOWN"), (21, "P1")], "product_sk long, product_id string"
    )

    def order(order_id, customer_id, product_id, order_ts):
        day = order_ts.date()
        return (order_id, customer_id, product_id, order_ts, day, 1, Decimal("1.00"),
                Decimal("1.00"), "USD", Decimal(1), day, Decimal("1.00"), "paid")  # fmt: skip

    o1 = order("O1", "C1", "P1", TS(2025, 1, 14, 11, 59))  # just before the change
    o2 = order("O2", "C1", "P1", TS(2025, 1, 14, 12))  # at the change: the new version
    o3 = order("O3", "C404", "P404", TS(2023, 5, 1))
    orders = spark.createDataFrame([o1, o2, o3], ORDERS)

    result = orders.transform(facts.fact_orders(dim_c, dim_p))

    def fact(row, customer_sk, product_sk, date_sk):
        order_id, customer_id, product_id, order_ts, _order_date, *rest = row
        return (
            order_id,
            customer_sk,
            product_sk,
            date_sk,
            customer_id,
            product_id,
            order_ts,
            *rest,
        )

    expected = spark.createDataFrame(
        [fact(o1, 11, 21, 20250114), fact(o2, 12, 21, 20250114), fact(o3, -1, -1, 20230501)],
        "order_id string, customer_sk long, product_sk long, date_sk int, customer_id string, "
        "product_id string, order_ts timestamp, quantity int, unit_price decimal(18,2), "
        "amount decimal(18,2), currency string, fx_rate decimal(18,8), fx_rate_date date, "
        "amount_usd decimal(18,2), status string",
    )
    assertDataFrameEqual(result, expected)
