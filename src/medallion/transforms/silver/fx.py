"""FX rates in silver, and the as-of conversion of amounts to USD.

Rates are quoted as units of ``quote_ccy`` per 1 USD, so ``amount_usd = amount / rate``. The
replaced system joined on the base currency (always USD) and multiplied: never again.

The as-of lookup ("the latest rate on or before the date") is done without a range join: the
rates are forward-filled onto a dense calendar per currency (20 currencies x a few thousand
days: tiny) and joined on equality, so each order matches at most one row.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import MONEY_TYPE, Transform, latest_per_key, upper_code

USD = "USD"
RATE_TYPE = T.DecimalType(18, 8)

FX_SILVER_COLUMNS = [
    "rate_date",
    "base_ccy",
    "quote_ccy",
    "rate",
    "bid_rate",
    "ask_rate",
    "mid_rate",
    "source",
    "_run_date",
    "_record_hash",
]


def fx_rates_from_bronze(bronze: DataFrame) -> DataFrame:
    """Bronze FX rows in the silver shape (codes upper-cased), before deduplication."""
    return bronze.select(
        F.col("date").alias("rate_date"),
        upper_code("base_ccy").alias("base_ccy"),
        upper_code("quote_ccy").alias("quote_ccy"),
        F.col("rate").cast(RATE_TYPE).alias("rate"),
        F.col("bid_rate").cast(RATE_TYPE).alias("bid_rate"),
        F.col("ask_rate").cast(RATE_TYPE).alias("ask_rate"),
        F.col("mid_rate").cast(RATE_TYPE).alias("mid_rate"),
        F.trim(F.col("source")).alias("source"),
        F.col("_run_date").cast(T.DateType()).alias("_run_date"),
        F.col("_record_hash"),
    )


def fx_rates_current(versions: DataFrame) -> DataFrame:
    """One row per (date, currency): the one delivered by the latest run (then the hash)."""
    order = [F.col("_run_date").desc_nulls_last(), F.col("_record_hash").desc_nulls_last()]
    return versions.transform(latest_per_key(["rate_date", "base_ccy", "quote_ccy"], order)).select(
        *FX_SILVER_COLUMNS
    )


def fx_asof_calendar(until: dt.date | None = None) -> Transform:
    """Per currency, every calendar day from its first rate to ``until`` (or its last rate),
    with the latest rate on or before that day and the date that rate is from."""

    def transform(fx: DataFrame) -> DataFrame:
        bounds = fx.groupBy("quote_ccy").agg(
            F.min("rate_date").alias("first_date"), F.max("rate_date").alias("last_date")
        )
        end = F.greatest(F.col("last_date"), F.lit(until)) if until else F.col("last_date")
        days = bounds.select(
            "quote_ccy", F.explode(F.sequence(F.col("first_date"), end)).alias("asof_date")
        )
        carry = (
            Window.partitionBy("quote_ccy")
            .orderBy("asof_date")
            .rowsBetween(Window.unboundedPreceding, 0)
        )
        rates = fx.select("quote_ccy", F.col("rate_date").alias("asof_date"), "rate", "rate_date")
        return days.join(rates, on=["quote_ccy", "asof_date"], how="left").select(
            "quote_ccy",
            "asof_date",
            F.last("rate", ignorenulls=True).over(carry).alias("rate"),
            F.last("rate_date", ignorenulls=True).over(carry).alias("rate_date"),
        )

    return transform


def convert_to_usd(
    asof: DataFrame, date_column: str, currency_column: str, amount_column: str
) -> Transform:
    """Add ``fx_rate``, ``fx_rate_date``, ``amount_usd`` and ``has_fx_rate`` to each row.

    USD converts at exactly 1 whatever the rate table says; a currency or date with no rate on or
    before it gets a null ``amount_usd`` and ``has_fx_rate = false``, never a made-up number.
    """

    def transform(df: DataFrame) -> DataFrame:
        rates = F.broadcast(
            asof.select(
                F.col("quote_ccy").alias("_fx_ccy"),
                F.col("asof_date").alias("_fx_day"),
                F.col("rate").alias("_fx_rate"),
                F.col("rate_date").alias("_fx_rate_date"),
            )
        )
        is_usd = F.col(currency_column) == F.lit(USD)
        joined = df.join(
            rates,
            on=(F.col(currency_column) == F.col("_fx_ccy"))
            & (F.col(date_column) == F.col("_fx_day")),
            how="left",
        )
        rate = F.when(is_usd, F.lit(1).cast(RATE_TYPE)).otherwise(F.col("_fx_rate"))
        rate_date = F.when(is_usd, F.col(date_column)).otherwise(F.col("_fx_rate_date"))
        return (
            joined.withColumn("fx_rate", rate.cast(RATE_TYPE))
            .withColumn("fx_rate_date", rate_date)
            .withColumn(
                "amount_usd", F.round(F.col(amount_column) / F.col("fx_rate"), 2).cast(MONEY_TYPE)
            )
            .withColumn("has_fx_rate", F.col("fx_rate").isNotNull())
            .drop("_fx_ccy", "_fx_day", "_fx_rate", "_fx_rate_date")
        )

    return transform
