"""The inputs customer_360 takes from silver: opportunities in USD with their customer, and order
events with theirs. Whole frames compared, schema included."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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
    c1_old = ("Ann", "Lee", "ann@old.io", "DE", "smb", None, None, None)
    c1 = ("Ann", "Lee", "ann@x.io", "DE", "enterprise", "A1", "Acme", "Retail")
    c2 = ("Bo", "Ek", "bo@x.io", "SE", "smb", None, None, None)
    dim_c = spark.createDataFrame(
        [(-1, "UNKNOWN", *(None,) * 8, True),
         (11, "C1", *c1_old, False),  # an earlier version: not in customer_360
         (12, "C1", *c1, True),
         (13, "C2", *c2, True)],
        "customer_sk long, customer_id string, first_name string, last_name string, email string, "
        "country string, segment string, crm_account_id string, crm_account_name string, "
        "crm_industry string, is_current boolean",
    )  # fmt: skip
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
    result = analytics.customer_360(dim_c, fact, behavior, opportunities, events)

    expected = spark.createDataFrame(
        [("C1", 12, *c1, 3, Decimal("150.00"), D(2024, 1, 1), D(2024, 4, 1), Decimal("75.00"),
          4, 12, Decimal("6.50"), 1, 2, 2, Decimal("1250.50"), TS(2024, 4, 2), "order_cancelled"),
         ("C2", 13, *c2, 0, Decimal("0.00"), None, None, None,
          0, 0, Decimal("0.00"), 0, 0, 0, Decimal("0.00"), None, None)],
        "customer_id string, customer_sk long, first_name string, last_name string, email string, "
        "country string, segment string, crm_account_id string, crm_account_name string, "
        "crm_industry string, lifetime_orders long, lifetime_revenue_usd decimal(18,2), "
        "first_order_date date, last_order_date date, avg_order_value_usd decimal(18,2), "
        "total_logins long, total_page_views long, total_session_minutes decimal(18,2), "
        "total_purchases long, active_days long, open_opportunities long, "
        "open_pipeline_usd decimal(18,2), last_event_ts timestamp, last_event_type string",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


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
    result = analytics.product_performance(dim_p, fact)

    expected = spark.createDataFrame(
        [("P1", 1, "Desk", "Furniture", 3, 3, 2, Decimal("30.00"), Decimal("12.00"), Decimal("18.00"), 2),
         ("P2", 2, "Chair", "Furniture", 3, 1, 1, Decimal("45.00"), Decimal("3.00"), Decimal("42.00"), 1),
         ("P3", 3, "Pen", "Office", 0, 0, 0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), 1)],
        "product_id string, product_sk long, product_name string, category string, units long, "
        "orders long, distinct_customers long, revenue_usd decimal(18,2), "
        "cost_usd_total decimal(18,2), margin_usd decimal(18,2), category_rank int",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)
