"""The inputs customer_360 takes from silver: opportunities in USD with their customer, and order
events with theirs. Whole frames compared, schema included."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.gold import analytics
from medallion.transforms.gold.analytics import events_with_customer, opportunities_usd

D, TS = dt.date, dt.datetime
RUN_DATE = D(2025, 1, 15)


def test_opportunities_get_their_accounts_customer_and_usd_at_the_rate_as_of_the_run_date(spark):
    accounts = spark.createDataFrame(
        [("A1", "Acme", "C1"), ("A2", "Prospect Ltd", None)],
        "account_id string, account_name string, customer_id string",
    )
    fx_rates = spark.createDataFrame(
        [(D(2025, 1, 10), "USD", "EUR", Decimal("0.80000000")),
         (D(2025, 1, 13), "USD", "EUR", Decimal("0.90000000")),
         (D(2025, 1, 16), "USD", "EUR", Decimal("0.50000000")),  # after the run date: not used
         (D(2025, 1, 20), "USD", "JPY", Decimal("150.00000000"))],  # no JPY rate by the run date
        "rate_date date, base_ccy string, quote_ccy string, rate decimal(18,8)",
    )  # fmt: skip
    opportunities = spark.createDataFrame(
        [("O1", "A1", Decimal("90.00"), "EUR", False),
         ("O2", "A1", Decimal("50.00"), "USD", True),
         ("O3", "A2", Decimal("10.00"), "EUR", False),
         ("O4", "A404", Decimal("1000.00"), "JPY", False)],
        "opportunity_id string, account_id string, amount decimal(18,2), currency string, is_closed boolean",
    )  # fmt: skip

    result = opportunities.transform(opportunities_usd(accounts, fx_rates, RUN_DATE))

    expected = spark.createDataFrame(
        [("C1", False, Decimal("100.00")),
         ("C1", True, Decimal("50.00")),
         (None, False, Decimal("11.11")),
         (None, False, None)],
        "customer_id string, is_closed boolean, amount_usd decimal(18,2)",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


def test_events_get_the_customer_of_their_order_and_an_unknown_order_leaves_it_null(spark):
    orders = spark.createDataFrame(
        [("O1", "C1", "paid"), ("O2", "C2", "shipped")],
        "order_id string, customer_id string, status string",
    )
    events = spark.createDataFrame(
        [("E1", "O1", "order_created", TS(2025, 1, 14, 9), "created"),
         ("E2", "O1", "order_paid", TS(2025, 1, 14, 10), "paid"),
         ("E3", "O404", "order_shipped", TS(2025, 1, 15, 8), "shipped")],
        "event_id string, order_id string, event_type string, event_ts timestamp, status string",
    )  # fmt: skip

    result = events.transform(events_with_customer(orders))

    expected = spark.createDataFrame(
        [("C1", "E1", TS(2025, 1, 14, 9), "order_created"),
         ("C1", "E2", TS(2025, 1, 14, 10), "order_paid"),
         (None, "E3", TS(2025, 1, 15, 8), "order_shipped")],
        "customer_id string, event_id string, event_ts timestamp, event_type string",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


FACT = "order_id string, customer_sk long, product_sk long, customer_id string, order_ts timestamp, quantity int, amount_usd decimal(18,2), status string"


def test_customer_360_metrics_by_hand(spark):
    dim_c = spark.createDataFrame(
        [(-1, "UNKNOWN", True), (11, "C1", False), (12, "C1", True), (13, "C2", True)],
        "customer_sk long, customer_id string, is_current boolean",
    )
    for column in (
        "first_name",
        "last_name",
        "email",
        "country",
        "segment",
        "crm_account_id",
        "crm_account_name",
        "crm_industry",
    ):
        dim_c = dim_c.selectExpr("*", f"cast(null as string) as {column}")
    fact = spark.createDataFrame(
        [
            ("O1", 11, 1, "C1", TS(2024, 1, 1), 1, Decimal("100.00"), "delivered"),
            ("O2", 12, 1, "C1", TS(2024, 3, 1), 2, Decimal("50.00"), "paid"),
            ("O3", 12, 1, "C1", TS(2024, 4, 1), 1, Decimal("999.00"), "cancelled"),
        ],
        FACT,
    )
    behavior = spark.createDataFrame(
        [("C1", 3, 10, Decimal("5.50"), 1), ("C1", 1, 2, Decimal("1.00"), 0)],
        "customer_id string, login_count int, page_views int, session_duration_minutes decimal(10,2), purchases int",
    )
    opportunities = spark.createDataFrame(
        [
            ("C1", False, Decimal("1000.00")),
            ("C1", True, Decimal("5000.00")),
            ("C1", False, Decimal("250.50")),
        ],
        "customer_id string, is_closed boolean, amount_usd decimal(18,2)",
    )
    events = spark.createDataFrame(
        [
            ("C1", "E1", TS(2024, 4, 1), "order_created"),
            ("C1", "E2", TS(2024, 4, 2), "order_cancelled"),
        ],
        "customer_id string, event_id string, event_ts timestamp, event_type string",
    )
    result = (
        analytics.customer_360(dim_c, fact, behavior, opportunities, events)
        .orderBy("customer_id")
        .collect()
    )
    assert [r.customer_id for r in result] == ["C1", "C2"]
    c1, c2 = result
    assert c1.customer_sk == 12
    assert (c1.lifetime_orders, c1.lifetime_revenue_usd, c1.avg_order_value_usd) == (
        3,
        Decimal("150.00"),
        Decimal("75.00"),
    )
    assert (c1.first_order_date, c1.last_order_date) == (D(2024, 1, 1), D(2024, 4, 1))
    assert (
        c1.total_logins,
        c1.total_page_views,
        c1.total_session_minutes,
        c1.total_purchases,
        c1.active_days,
    ) == (4, 12, Decimal("6.50"), 1, 2)
    assert (c1.open_opportunities, c1.open_pipeline_usd) == (2, Decimal("1250.50"))
    assert (c1.last_event_ts, c1.last_event_type) == (TS(2024, 4, 2), "order_cancelled")
    assert (
        c2.lifetime_orders,
        c2.lifetime_revenue_usd,
        c2.open_pipeline_usd,
        c2.last_event_type,
    ) == (0, Decimal("0.00"), Decimal("0.00"), None)


def test_product_performance_by_hand(spark):
    dim_p = spark.createDataFrame(
        [(-1, "UNKNOWN", None, None, None), (1, "P1", "Desk", "Furniture", Decimal("4.00")), (2, "P2", "Chair", "Furniture", Decimal("1.00")), (3, "P3", "Pen", "Office", Decimal("0.10"))],
        "product_sk long, product_id string, product_name string, category string, cost_usd decimal(18,2)",
    )  # fmt: skip
    fact = spark.createDataFrame(
        [
            ("O1", 11, 1, "C1", TS(2024, 1, 1), 2, Decimal("20.00"), "paid"),
            ("O2", 12, 1, "C2", TS(2024, 1, 2), 1, Decimal("10.00"), "delivered"),
            ("O3", 12, 1, "C2", TS(2024, 1, 3), 5, Decimal("50.00"), "returned"),
            ("O4", 11, 2, "C1", TS(2024, 1, 1), 3, Decimal("45.00"), "paid"),
            ("O5", 11, -1, "C1", TS(2024, 1, 1), 3, Decimal("45.00"), "paid"),
        ],
        FACT,
    )
    result = analytics.product_performance(dim_p, fact).select(
        "product_id",
        "units",
        "orders",
        "distinct_customers",
        "revenue_usd",
        "cost_usd_total",
        "margin_usd",
        "category_rank",
    )
    assertDataFrameEqual(
        result,
        [Row(product_id="P1", units=3, orders=3, distinct_customers=2, revenue_usd=Decimal("30.00"), cost_usd_total=Decimal("12.00"), margin_usd=Decimal("18.00"), category_rank=2),
         Row(product_id="P2", units=3, orders=1, distinct_customers=1, revenue_usd=Decimal("45.00"), cost_usd_total=Decimal("3.00"), margin_usd=Decimal("42.00"), category_rank=1),
         Row(product_id="P3", units=0, orders=0, distinct_customers=0, revenue_usd=Decimal("0.00"), cost_usd_total=Decimal("0.00"), margin_usd=Decimal("0.00"), category_rank=1)],
    )  # fmt: skip
