"""Products in silver: current state per product id."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import MONEY_TYPE, clean_string, latest_per_key, version_order

PRODUCT_COLUMNS = [
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
    "_run_date",
    "_record_hash",
]


def products_from_bronze(bronze: DataFrame) -> DataFrame:
    return bronze.select(
        clean_string("product_id").alias("product_id"),
        F.upper(clean_string("sku")).alias("sku"),
        clean_string("product_name").alias("product_name"),
        clean_string("category").alias("category"),
        clean_string("subcategory").alias("subcategory"),
        clean_string("brand").alias("brand"),
        F.col("price_usd").cast(MONEY_TYPE).alias("price_usd"),
        F.col("cost_usd").cast(MONEY_TYPE).alias("cost_usd"),
        F.col("active").cast(T.BooleanType()).alias("active"),
        F.col("created_at"),
        F.col("updated_at"),
        F.col("_run_date").cast(T.DateType()).alias("_run_date"),
        F.col("_record_hash"),
    )


def current_products(versions: DataFrame) -> DataFrame:
    return versions.transform(latest_per_key(["product_id"], version_order("updated_at"))).select(
        *PRODUCT_COLUMNS
    )
