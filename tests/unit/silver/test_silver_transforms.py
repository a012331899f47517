"""Silver transformations on tiny hand-built DataFrames, compared with expected rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.common import latest_per_key, version_order
from medallion.transforms.silver import crm, customers, events, fx, orders

D = dt.date
TS = dt.datetime


def test_latest_version_wins_and_ties_break_on_run_date_then_hash(spark):
    rows = [
        ("C1", "old", TS(2025, 1, 1), D(2025, 1, 13), "aaa"),
        ("C1", "new", TS(2025, 1, 2), D(2025, 1, 13), "bbb"),
        ("C2", "day1", TS(2025, 1, 5), D(2025, 1, 13), "zzz"),
        ("C2", "day2", TS(2025, 1, 5), D(2025, 1, 14), "aaa"),  # same updated_at: later run wins
        ("C3", "h1", TS(2025, 1, 5), D(2025, 1, 13), "111"),
        ("C3", "h2", TS(2025, 1, 5), D(2025, 1, 13), "222"),  # full tie: larger hash wins, always
    ]
    df = spark.createDataFrame(
        rows, "id string, v string, updated_at timestamp, _run_date date, _record_hash string"
    )
    result = df.transform(latest_per_key(["id"], version_order("updated_at"))).select("id", "v")
    assertDataFrameEqual(
        result, [Row(id="C1", v="new"), Row(id="C2", v="day2"), Row(id="C3", v="h2")]
    )
    # The survivor does not depend on input order or partitioning.
    shuffled = df.repartition(3).orderBy("_record_hash")
    assertDataFrameEqual(
        shuffled.transform(latest_per_key(["id"], version_order("updated_at"))).select("id", "v"),
        result,
    )


FX_SCHEMA = "rate_date date, quote_ccy string, rate decimal(18,8)"


def test_asof_calendar_carries_friday_rate_over_the_weekend_and_gaps(spark):
    rates = spark.createDataFrame(
        [
            (D(2025, 1, 10), "KRW", Decimal("1450.12345678")),  # Friday
            (D(2025, 1, 13), "KRW", Decimal("1460.00000000")),  # Monday
            (D(2025, 1, 13), "EUR", Decimal("0.92000000")),
        ],
        FX_SCHEMA,
    )
    asof = rates.transform(fx.fx_asof_calendar(until=D(2025, 1, 14)))
    expected = [
        Row(
            quote_ccy="KRW",
            asof_date=D(2025, 1, 10),
            rate=Decimal("1450.12345678"),
            rate_date=D(2025, 1, 10),
        ),
        Row(
            quote_ccy="KRW",
            asof_date=D(2025, 1, 11),
            rate=Decimal("1450.12345678"),
            rate_date=D(2025, 1, 10),
        ),
        Row(
            quote_ccy="KRW",
            asof_date=D(2025, 1, 12),
            rate=Decimal("1450.12345678"),
            rate_date=D(2025, 1, 10),
        ),
        Row(
            quote_ccy="KRW",
            asof_date=D(2025, 1, 13),
            rate=Decimal("1460.00000000"),
            rate_date=D(2025, 1, 13),
        ),
        Row(
            quote_ccy="KRW",
            asof_date=D(2025, 1, 14),
            rate=Decimal("1460.00000000"),
            rate_date=D(2025, 1, 13),
        ),
        Row(
            quote_ccy="EUR",
            asof_date=D(2025, 1, 13),
            rate=Decimal("0.92000000"),
            rate_date=D(2025, 1, 13),
        ),
        Row(
            quote_ccy="EUR",
            asof_date=D(2025, 1, 14),
            rate=Decimal("0.92000000"),
            rate_date=D(2025, 1, 13),
        ),
    ]
    assertDataFrameEqual(asof, expected)


def test_convert_to_usd_divides_by_the_quote_rate_and_flags_missing_rates(spark):
    rates = spark.createDataFrame(
        [
            (D(2025, 1, 10), "KRW", Decimal("1450.00000000")),
            (D(2025, 1, 10), "EUR", Decimal("0.80000000")),
            (D(2025, 1, 10), "USD", Decimal("1.00000000")),
        ],
        FX_SCHEMA,
    )
    asof = rates.transform(fx.fx_asof_calendar(until=D(2025, 1, 12)))
    orders_df = spark.createDataFrame(
        [
            ("O1", D(2025, 1, 12), "KRW", Decimal("145000.00")),  # Sunday: Friday's rate
            ("O2", D(2025, 1, 10), "EUR", Decimal("100.00")),
            ("O3", D(2025, 1, 11), "USD", Decimal("42.50")),
            ("O4", D(2025, 1, 9), "KRW", Decimal("1000.00")),  # before the first rate
            ("O5", D(2025, 1, 11), "BRL", Decimal("10.00")),  # currency with no rates at all
            ("O6", D(2024, 1, 1), "USD", Decimal("7.00")),  # USD needs no rate row
        ],
        "order_id string, order_date date, currency string, amount decimal(18,2)",
    )
    result = orders_df.transform(
        fx.convert_to_usd(asof, "order_date", "currency", "amount")
    ).select("order_id", "fx_rate", "fx_rate_date", "amount_usd", "has_fx_rate")
    expected = [
        Row(order_id="O1", fx_rate=Decimal("1450.00000000"), fx_rate_date=D(2025, 1, 10), amount_usd=Decimal("100.00"), has_fx_rate=True),
        Row(order_id="O2", fx_rate=Decimal("0.80000000"), fx_rate_date=D(2025, 1, 10), amount_usd=Decimal("125.00"), has_fx_rate=True),
        Row(order_id="O3", fx_rate=Decimal("1.00000000"), fx_rate_date=D(2025, 1, 11), amount_usd=Decimal("42.50"), has_fx_rate=True),
        Row(order_id="O4", fx_rate=None, fx_rate_date=None, amount_usd=None, has_fx_rate=False),
        Row(order_id="O5", fx_rate=None, fx_rate_date=None, amount_usd=None, has_fx_rate=False),
        Row(order_id="O6", fx_rate=Decimal("1.00000000"), fx_rate_date=D(2024, 1, 1), amount_usd=Decimal("7.00"), has_fx_rate=True),
    ]  # fmt: skip
    assertDataFrameEqual(result, expected)


def _accounts(spark, rows):
    return spark.createDataFrame(
        rows,
        "account_id string, account_name string, industry string, customer_id string, created_at timestamp, updated_at timestamp",
    )


def test_alignment_picks_oldest_account_counts_ambiguity_and_keeps_unlinked(spark):
    accounts = _accounts(
        spark,
        [
            ("A2", "Beta", "Retail", "C1", TS(2024, 5, 1), TS(2024, 5, 1)),
            (
                "A1",
                "Alpha",
                "Banking",
                "C1",
                TS(2024, 1, 1),
                TS(2024, 1, 1),
            ),  # oldest claim on C1 wins
            ("A3", "Gamma", "Energy", "C2", TS(2024, 3, 1), TS(2024, 3, 1)),
            ("A4", "Prospect", "Energy", None, TS(2024, 3, 1), TS(2024, 3, 1)),
        ],
    )
    contacts = spark.createDataFrame(
        [
            ("K2", "A1", "Zoë", "Müller", "zoe@x.io", TS(2024, 2, 1)),
            ("K1", "A1", "Ann", "Lee", "ann@x.io", TS(2024, 1, 2)),  # oldest contact is primary
            ("K3", "A3", "Bo", "Ek", "bo@x.io", TS(2024, 3, 2)),
        ],
        "contact_id string, account_id string, first_name string, last_name string, email string, created_at timestamp",
    )
    base = spark.createDataFrame(
        [("C1",), ("C2",), ("C3",)], "customer_id string"
    ).selectExpr("customer_id", *[f"cast(null as string) as {c}" for c in ("first_name", "last_name", "email", "phone", "country", "segment")], "cast(null as timestamp) as created_at", "cast(null as timestamp) as updated_at", "cast(null as date) as _run_date", "cast(null as string) as _record_hash")  # fmt: skip
    result = base.transform(customers.align_with_crm(accounts, contacts)).select(
        "customer_id",
        "crm_account_id",
        "crm_industry",
        "crm_account_count",
        "primary_contact_id",
        "primary_contact_name",
    )
    expected = [
        Row(customer_id="C1", crm_account_id="A1", crm_industry="Banking", crm_account_count=2, primary_contact_id="K1", primary_contact_name="Ann Lee"),
        Row(customer_id="C2", crm_account_id="A3", crm_industry="Energy", crm_account_count=1, primary_contact_id="K3", primary_contact_name="Bo Ek"),
        Row(customer_id="C3", crm_account_id=None, crm_industry=None, crm_account_count=0, primary_contact_id=None, primary_contact_name=None),
    ]  # fmt: skip
    assertDataFrameEqual(result, expected)


def test_customers_are_standardised(spark):
    bronze = spark.createDataFrame(
        [("C1", " José ", "Núñez", " Jose.Nunez@Example.COM ", "+34 600", " es ", "Enterprise", TS(2024, 1, 1), TS(2024, 1, 2), D(2025, 1, 13), "h")],
        "customer_id string, first_name string, last_name string, email string, phone string, country string, segment string, created_at timestamp, updated_at timestamp, _run_date date, _record_hash string",
    )  # fmt: skip
    row = customers.customers_from_bronze(bronze).first()
    assert (row.first_name, row.email, row.country, row.segment) == (
        "José",
        "jose.nunez@example.com",
        "ES",
        "enterprise",
    )


def test_accounts_flag_unknown_customers_but_not_prospects(spark):
    versions = spark.createDataFrame(
        [
            ("A1", "C1", TS(2024, 1, 1), D(2025, 1, 13), "h1"),
            ("A2", "C404", TS(2024, 1, 1), D(2025, 1, 13), "h2"),
            ("A3", None, TS(2024, 1, 1), D(2025, 1, 13), "h3"),
        ],
        "account_id string, customer_id string, updated_at timestamp, _run_date date, _record_hash string",
    )
    for column in crm.ACCOUNT_COLUMNS:
        if column not in versions.columns:
            versions = versions.withColumn(
                column, __import__("pyspark.sql.functions").sql.functions.lit(None).cast("string")
            )
    known = spark.createDataFrame([("C1",)], "customer_id string")
    result = crm.current_accounts(versions, known).select(
        "account_id", "is_prospect", "has_unknown_customer"
    )
    assertDataFrameEqual(
        result,
        [Row(account_id="A1", is_prospect=False, has_unknown_customer=False),
         Row(account_id="A2", is_prospect=False, has_unknown_customer=True),
         Row(account_id="A3", is_prospect=True, has_unknown_customer=False)],
    )  # fmt: skip


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
