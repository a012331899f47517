"""The inputs customer_360 takes from silver: opportunities in USD with their customer, and order
events with theirs. Whole frames compared, schema included."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.testing import assertDataFrameEqual

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
