"""Analytics views: ``customer_360`` (one row per current customer) and ``product_performance``,
and the two inputs ``customer_360`` takes from silver (:func:`opportunities_usd`,
:func:`events_with_customer`).

Revenue counts orders that stand: cancelled and returned orders are counted as orders but add
no revenue, units or margin. Open pipeline is the USD value of a customer's CRM opportunities
that are not closed, converted at the latest rate on or before the run date.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import MONEY_TYPE, UNKNOWN_SK, Transform
from medallion.transforms.silver.fx import convert_to_usd, fx_asof_calendar

NON_REVENUE_STATUSES = ("cancelled", "returned")


def _stands() -> F.Column:
    return ~F.col("status").isin(*NON_REVENUE_STATUSES)


def opportunities_usd(accounts: DataFrame, fx_rates: DataFrame, as_of: dt.date) -> Transform:
    """Silver CRM opportunities -> ``customer_id`` (the customer of the opportunity's account;
    null for a prospect's or an unknown account), ``is_closed`` and ``amount_usd``, converted
    at the latest rate on or before ``as_of`` (null when the currency has none by then).

    ``accounts`` are silver CRM accounts, ``fx_rates`` silver FX rates.
    """

    def transform(opportunities: DataFrame) -> DataFrame:
        asof = fx_rates.transform(fx_asof_calendar(until=as_of))
        owners = accounts.select("account_id", "customer_id")
        return (
            opportunities.join(owners, on="account_id", how="left")
            .withColumn("_asof", F.lit(as_of))
            .transform(convert_to_usd(asof, "_asof", "currency", "amount"))
            .select("customer_id", "is_closed", "amount_usd")
        )

    return transform


def events_with_customer(orders: DataFrame) -> Transform:
    """Silver order events -> ``customer_id`` (of the event's order in silver ``orders``; null
    for an event of an unknown order), ``event_id``, ``event_ts`` and ``event_type``."""

    def transform(events: DataFrame) -> DataFrame:
        owners = orders.select("order_id", "customer_id")
        return events.join(owners, on="order_id", how="left").select(
            "customer_id", "event_id", "event_ts", "event_type"
        )

    return transform


def customer_360(
    dim_customer: DataFrame,
    fact_orders: DataFrame,
    behavior: DataFrame,
    opportunities_usd: DataFrame,
    events: DataFrame,
) -> DataFrame:
    """One row per current customer with lifetime order, behaviour, pipeline and event figures.

    ``opportunities_usd`` holds ``customer_id`` (through the CRM account), ``is_closed`` and
    ``amount_usd``; ``events`` holds ``customer_id``, ``event_ts`` and ``event_type``.
    """
    current = dim_customer.where(F.col("is_current") & (F.col("customer_sk") != UNKNOWN_SK))
    revenue = F.when(_stands(), F.col("amount_usd"))
    orders = (
        fact_orders.where(F.col("customer_id").isNotNull())
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).alias("lifetime_orders"),
            F.sum(revenue).cast(MONEY_TYPE).alias("lifetime_revenue_usd"),
            F.min(F.to_date("order_ts")).alias("first_order_date"),
            F.max(F.to_date("order_ts")).alias("last_order_date"),
            F.round(F.avg(revenue), 2).cast(MONEY_TYPE).alias("avg_order_value_usd"),
        )
    )
    activity = behavior.groupBy("customer_id").agg(
        F.sum("login_count").cast(T.LongType()).alias("total_logins"),
        F.sum("page_views").cast(T.LongType()).alias("total_page_views"),
        F.sum("session_duration_minutes").cast(T.DecimalType(18, 2)).alias("total_session_minutes"),
        F.sum("purchases").cast(T.LongType()).alias("total_purchases"),
        F.count(F.lit(1)).alias("active_days"),
    )
    pipeline = (
        opportunities_usd.where(~F.col("is_closed") & F.col("customer_id").isNotNull())
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).alias("open_opportunities"),
            F.sum("amount_usd").cast(MONEY_TYPE).alias("open_pipeline_usd"),
        )
    )
    latest_event = Window.partitionBy("customer_id").orderBy(
        F.col("event_ts").desc(), F.col("event_id").desc()
    )
    last_event = (
        events.where(F.col("customer_id").isNotNull())
        .withColumn("_rank", F.row_number().over(latest_event))
        .where(F.col("_rank") == 1)
        .select(
            "customer_id",
            F.col("event_ts").alias("last_event_ts"),
            F.col("event_type").alias("last_event_type"),
        )
    )
    zero = F.lit(0)
    return (
        current.join(orders, on="customer_id", how="left")
        .join(activity, on="customer_id", how="left")
        .join(pipeline, on="customer_id", how="left")
        .join(last_event, on="customer_id", how="left")
        .select(
            "customer_id",
            "customer_sk",
            "first_name",
            "last_name",
            "email",
            "country",
            "segment",
            "crm_account_id",
            "crm_account_name",
            "crm_industry",
            F.coalesce("lifetime_orders", zero).cast(T.LongType()).alias("lifetime_orders"),
            F.coalesce("lifetime_revenue_usd", zero.cast(MONEY_TYPE)).alias("lifetime_revenue_usd"),
            "first_order_date",
            "last_order_date",
            "avg_order_value_usd",
            F.coalesce("total_logins", zero).cast(T.LongType()).alias("total_logins"),
            F.coalesce("total_page_views", zero).cast(T.LongType()).alias("total_page_views"),
            F.coalesce("total_session_minutes", zero.cast(T.DecimalType(18, 2))).alias(
                "total_session_minutes"
            ),
            F.coalesce("total_purchases", zero).cast(T.LongType()).alias("total_purchases"),
            F.coalesce("active_days", zero).cast(T.LongType()).alias("active_days"),
            F.coalesce("open_opportunities", zero).cast(T.LongType()).alias("open_opportunities"),
            F.coalesce("open_pipeline_usd", zero.cast(MONEY_TYPE)).alias("open_pipeline_usd"),
            "last_event_ts",
            "last_event_type",
        )
    )


def product_performance(dim_product: DataFrame, fact_orders: DataFrame) -> DataFrame:
    """Per product: units, orders, distinct customers, revenue, cost and margin in USD, and the
    product's revenue rank within its category (1 = best; ties share a rank)."""
    products = dim_product.where(F.col("product_sk") != UNKNOWN_SK).select(
        "product_sk", "product_id", "product_name", "category", "cost_usd"
    )
    stands = _stands()
    sales = (
        fact_orders.where(F.col("product_sk") != UNKNOWN_SK)
        .groupBy("product_sk")
        .agg(
            F.count(F.lit(1)).alias("orders"),
            F.sum(F.when(stands, F.col("quantity"))).alias("units"),
            F.countDistinct("customer_id").alias("distinct_customers"),
            F.sum(F.when(stands, F.col("amount_usd"))).alias("revenue_usd"),
            F.sum(F.when(stands & F.col("amount_usd").isNotNull(), F.col("quantity"))).alias(
                "_costed_units"
            ),
        )
    )
    by_category = Window.partitionBy("category").orderBy(F.col("revenue_usd").desc())
    joined = products.join(sales, on="product_sk", how="left")
    revenue = F.coalesce(F.col("revenue_usd"), F.lit(0).cast(MONEY_TYPE)).cast(MONEY_TYPE)
    cost = (F.coalesce(F.col("_costed_units"), F.lit(0)) * F.col("cost_usd")).cast(MONEY_TYPE)
    return (
        joined.withColumn("revenue_usd", revenue)
        .withColumn("cost_usd_total", cost)
        .withColumn("margin_usd", (F.col("revenue_usd") - F.col("cost_usd_total")).cast(MONEY_TYPE))
        .withColumn("category_rank", F.dense_rank().over(by_category))
        .select(
            "product_id",
            "product_sk",
            "product_name",
            "category",
            F.coalesce("units", F.lit(0)).cast(T.LongType()).alias("units"),
            F.coalesce("orders", F.lit(0)).cast(T.LongType()).alias("orders"),
            F.coalesce("distinct_customers", F.lit(0))
            .cast(T.LongType())
            .alias("distinct_customers"),
            "revenue_usd",
            "cost_usd_total",
            "margin_usd",
            F.col("category_rank").cast(T.IntegerType()).alias("category_rank"),
        )
    )
