"""fact_orders on a tiny dataset with values computed by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import Row
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
    orders = spark.createDataFrame(
        [
            ("O1", "C1", "P1", TS(2025, 1, 14, 11, 59), D(2025, 1, 14), 1, Decimal("1.00"), Decimal("1.00"), "USD", Decimal(1), D(2025, 1, 14), Decimal("1.00"), "paid"),
            ("O2", "C1", "P1", TS(2025, 1, 14, 12), D(2025, 1, 14), 1, Decimal("1.00"), Decimal("1.00"), "USD", Decimal(1), D(2025, 1, 14), Decimal("1.00"), "paid"),
            ("O3", "C404", "P404", TS(2023, 5, 1), D(2023, 5, 1), 1, Decimal("1.00"), Decimal("1.00"), "USD", Decimal(1), D(2023, 5, 1), Decimal("1.00"), "paid"),
        ],
        ORDERS,
    )  # fmt: skip
    result = orders.transform(facts.fact_orders(dim_c, dim_p)).select(
        "order_id", "customer_sk", "product_sk", "date_sk"
    )
    assertDataFrameEqual(
        result,
        [Row(order_id="O1", customer_sk=11, product_sk=21, date_sk=20250114),
         Row(order_id="O2", customer_sk=12, product_sk=21, date_sk=20250114),
         Row(order_id="O3", customer_sk=-1, product_sk=-1, date_sk=20230501)],
    )  # fmt: skip
