"""``dim_product`` (type 1: current attributes, one row per product) and ``dim_date``.

``dim_product`` is deliberately SCD1: product attributes are corrected rather than versioned,
and facts carry their own price and amount, so history is not needed for correct revenue.
``dim_date`` covers every day from the earliest fact date to the end of the latest fact date's
year, so the calendar never has holes where a report would silently drop a day.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import UNKNOWN_ID, UNKNOWN_SK
from medallion.transforms.gold.dim_customer import surrogate_key

DIM_PRODUCT_COLUMNS = [
    "product_sk",
    "product_id",
    "sku",
    "product_name",
    "category",
    "subcategory",
    "brand",
    "price_usd",
    "cost_usd",
    "active",
    "created_at",
    "updated_at",
]


def dim_product(silver_products: DataFrame) -> DataFrame:
    """One row per product with a key that depends only on the product id, plus the -1 member."""
    products = silver_products.select(
        surrogate_key("product_id").alias("product_sk"), *DIM_PRODUCT_COLUMNS[1:]
    )
    unknown = products.sparkSession.createDataFrame(
        [
            (
                UNKNOWN_SK,
                UNKNOWN_ID,
                None,
                "Unknown product",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            )
        ],
        products.schema,
    )
    return unknown.unionByName(products)


def date_sk(column: str) -> Column:
    """yyyymmdd as an integer, e.g. 2025-01-13 -> 20250113."""
    return F.date_format(F.col(column), "yyyyMMdd").cast(T.IntegerType())


def dim_date(spark: SparkSession, first: dt.date, last: dt.date) -> DataFrame:
    """Every date from ``first`` to the 31st of December of ``last``'s year, with attributes."""
    end = dt.date(last.year, 12, 31)
    days = spark.createDataFrame([(first, end)], "first date, last date").select(
        F.explode(F.sequence("first", "last")).alias("date")
    )
    day_of_week = ((F.dayofweek("date") + 5) % 7 + 1).cast(
        T.IntegerType()
    )  # ISO: Monday=1 .. Sunday=7
    return days.select(
        date_sk("date").alias("date_sk"),
        F.col("date"),
        F.year("date").alias("year"),
        F.quarter("date").alias("quarter"),
        F.month("date").alias("month"),
        F.date_format("date", "MMMM").alias("month_name"),
        F.weekofyear("date").alias("week_of_year"),
        F.dayofmonth("date").alias("day_of_month"),
        day_of_week.alias("day_of_week"),
        F.date_format("date", "EEEE").alias("day_name"),
        (day_of_week >= 6).alias("is_weekend"),
        (F.col("date") == F.last_day("date")).alias("is_month_end"),
    )
