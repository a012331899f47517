"""``fact_orders``: one row per order, keyed to the dimensions.

``customer_sk`` is the version of the customer valid at the order time (``valid_from <=
order_ts < valid_to``), ``product_sk`` the product's key, ``date_sk`` the order date as
yyyymmdd. Orders whose customer or product is unknown point at the -1 members, never vanish.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion.transforms.common import UNKNOWN_SK
from medallion.transforms.gold.dimensions import date_sk

FACT_ORDERS_COLUMNS = [
    "order_id",
    "customer_sk",
    "product_sk",
    "date_sk",
    "customer_id",
    "product_id",
    "order_ts",
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "fx_rate",
    "fx_rate_date",
    "amount_usd",
    "status",
]


def fact_orders(dim_customer: DataFrame, dim_product: DataFrame):
    def transform(silver_orders: DataFrame) -> DataFrame:
        versions = dim_customer.where(F.col("customer_sk") != UNKNOWN_SK).select(
            F.col("customer_id").alias("_dc_id"), "customer_sk", "valid_from", "valid_to"
        )
        products = dim_product.where(F.col("product_sk") != UNKNOWN_SK).select(
            F.col("product_id").alias("_dp_id"), "product_sk"
        )
        valid_at_order = (
            (F.col("customer_id") == F.col("_dc_id"))
            & (F.col("valid_from") <= F.col("order_ts"))
            & (F.col("order_ts") < F.col("valid_to"))
        )
        return (
            silver_orders.join(versions, on=valid_at_order, how="left")
            .join(products, on=F.col("product_id") == F.col("_dp_id"), how="left")
            .select(
                "order_id",
                F.coalesce("customer_sk", F.lit(UNKNOWN_SK)).alias("customer_sk"),
                F.coalesce("product_sk", F.lit(UNKNOWN_SK)).alias("product_sk"),
                date_sk("order_date").alias("date_sk"),
                *FACT_ORDERS_COLUMNS[4:],
            )
        )

    return transform
