"""FX rates in silver: the current rate per date and currency, the as-of calendar and the USD
conversion."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import fx

D = dt.date
TS = dt.datetime


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
    order_schema = "order_id string, order_date date, currency string, amount decimal(18,2)"
    orders_df = spark.createDataFrame(
        [
            ("O1", D(2025, 1, 12), "KRW", Decimal("145000.00")),  # Sunday: Friday's rate
            ("O2", D(2025, 1, 10), "EUR", Decimal("100.00")),
            ("O3", D(2025, 1, 11), "USD", Decimal("42.50")),
            ("O4", D(2025, 1, 9), "KRW", Decimal("1000.00")),  # before the first rate
            ("O5", D(2025, 1, 11), "BRL", Decimal("10.00")),  # currency with no rates at all
            ("O6", D(2024, 1, 1), "USD", Decimal("7.00")),  # USD needs no rate row
        ],
        order_schema,
    )
    result = orders_df.transform(fx.convert_to_usd(asof, "order_date", "currency", "amount"))
    expected = spark.createDataFrame(
        [
            ("O1", D(2025, 1, 12), "KRW", Decimal("145000.00"), Decimal("1450.00000000"), D(2025, 1, 10), Decimal("100.00"), True),
            ("O2", D(2025, 1, 10), "EUR", Decimal("100.00"), Decimal("0.80000000"), D(2025, 1, 10), Decimal("125.00"), True),
            ("O3", D(2025, 1, 11), "USD", Decimal("42.50"), Decimal("1.00000000"), D(2025, 1, 11), Decimal("42.50"), True),
            ("O4", D(2025, 1, 9), "KRW", Decimal("1000.00"), None, None, None, False),
            ("O5", D(2025, 1, 11), "BRL", Decimal("10.00"), None, None, None, False),
            ("O6", D(2024, 1, 1), "USD", Decimal("7.00"), Decimal("1.00000000"), D(2024, 1, 1), Decimal("7.00"), True),
        ],
        order_schema + ", fx_rate decimal(18,8), fx_rate_date date, amount_usd decimal(18,2), has_fx_rate boolean",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


FX_SILVER = (
    "rate_date date, base_ccy string, quote_ccy string, rate decimal(18,8), "
    "bid_rate decimal(18,8), ask_rate decimal(18,8), mid_rate decimal(18,8), source string, "
    "_run_date date, _record_hash string"
)


def _rate(day, quote, rate, run_date, record_hash):
    value = Decimal(rate)
    return (day, "USD", quote, value, value, value, value, "ecb", run_date, record_hash)


def test_fx_rates_current_keeps_one_rate_per_date_and_currency_from_the_latest_delivery(spark):
    first = _rate(D(2025, 1, 10), "EUR", "0.90000000", D(2025, 1, 10), "z")
    corrected = _rate(D(2025, 1, 10), "EUR", "0.91000000", D(2025, 1, 12), "a")  # redelivered
    next_day = _rate(D(2025, 1, 11), "EUR", "0.92000000", D(2025, 1, 11), "c")
    smaller_hash = _rate(D(2025, 1, 10), "KRW", "1450.00000000", D(2025, 1, 10), "a")
    larger_hash = _rate(D(2025, 1, 10), "KRW", "1451.00000000", D(2025, 1, 10), "b")
    versions = spark.createDataFrame(
        [first, corrected, next_day, smaller_hash, larger_hash], FX_SILVER
    ).repartition(2)

    result = fx.fx_rates_current(versions)

    expected = spark.createDataFrame([corrected, next_day, larger_hash], FX_SILVER)
    assertDataFrameEqual(result, expected)
