"""Orders in silver: the latest version per order, converted to USD as of the order date, with
unknown customers and products flagged (kept, never dropped).

Partitioned by ``order_month`` (the first day of the order's month): orders span years, so a day
partition would hold a handful of rows in a file of its own, and every read would pay for
thousands of tiny files. A month keeps files large, and a run's reads of the orders it recomputes
(and its MERGE's target scan) skip the files of every other month."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import (
    MONEY_TYPE,
    clean_string,
    latest_per_key,
    month_of,
    upper_code,
    version_order,
)
from medallion.transforms.silver.fx import convert_to_usd

ORDER_BASE_COLUMNS = [
    "order_id",
    "customer_id",
    "product_id",
    "order_ts",
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "status",
    "updated_at",
    "_run_date",
    "_record_hash",
    "order_date",
]
ORDER_COLUMNS = [
    *ORDER_BASE_COLUMNS[:-1],
    "fx_rate",
    "fx_rate_date",
    "amount_usd",
    "has_fx_rate",
    "has_unknown_customer",
    "has_unknown_product",
    "order_date",
    "order_month",
]
PARTITION = "order_month"


def orders_from_bronze(bronze: DataFrame) -> DataFrame:
    return bronze.select(
        clean_string("order_id").alias("order_id"),
        clean_string("customer_id").alias("customer_id"),
        clean_string("product_id").alias("product_id"),
        F.col("order_ts"),
        F.col("quantity").cast(T.IntegerType()).alias("quantity"),
        F.col("unit_price").cast(MONEY_TYPE).alias("unit_price"),
        F.col("amount").cast(MONEY_TYPE).alias("amount"),
        upper_code("currency").alias("currency"),
        F.lower(clean_string("status")).alias("status"),
        F.col("updated_at"),
        F.col("_run_date").cast(T.DateType()).alias("_run_date"),
        F.col("_record_hash"),
        F.to_date(F.col("order_ts")).alias("order_date"),
    )


def current_orders(versions: DataFrame) -> DataFrame:
    return versions.transform(latest_per_key(["order_id"], version_order("updated_at"))).select(
        *ORDER_BASE_COLUMNS
    )


def enrich_orders(fx_asof: DataFrame, customers: DataFrame, products: DataFrame):
    """Add the USD conversion and the orphan flags to current orders."""

    def transform(orders: DataFrame) -> DataFrame:
        known_customers = customers.select(F.col("customer_id").alias("_known_customer"))
        known_products = products.select(F.col("product_id").alias("_known_product"))
        return (
            orders.transform(convert_to_usd(fx_asof, "order_date", "currency", "amount"))
            .join(known_customers, on=F.col("customer_id") == F.col("_known_customer"), how="left")
            .join(known_products, on=F.col("product_id") == F.col("_known_product"), how="left")
            .withColumn("has_unknown_customer", F.col("_known_customer").isNull())
            .withColumn("has_unknown_product", F.col("_known_product").isNull())
            .withColumn(PARTITION, month_of("order_date"))
            .select(*ORDER_COLUMNS)
        )

    return transform
