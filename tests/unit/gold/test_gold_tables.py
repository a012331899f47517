"""Facts, dimensions and analytics on tiny datasets with values computed by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.gold import analytics, dimensions, facts
from medallion.transforms.gold.dim_customer import HISTORY_START, OPEN_END

D, TS = dt.date, dt.datetime
DIM_C = "customer_sk long, customer_id string, valid_from timestamp, valid_to timestamp, is_current boolean"
ORDERS = (
    "order_id string, customer_id string, product_id string, order_ts timestamp, order_date date, quantity int, "
    "unit_price decimal(18,2), amount decimal(18,2), currency string, fx_rate decimal(18,8), fx_rate_date date, "
    "amount_usd decimal(18,2), status string"
)


def test_fact_takes_the_customer_version_valid_at_order_time_and_unknowns_point_at_minus_one(spark):
    change = TS(2025, 1, 14, 12)
    dim_c = spark.createDataFrame(
        [(-1, "UNKNOWN", HISTORY_START, OPEN_END, True), (11, "C1", HISTORY_START, change, False), (12, "C1", change, OPEN_END, True)],
        DIM_C,
    )  # fmt: skip
    dim_p = spark.createDataFrame(
        [(-1, "UNKNOWN"), (21, "P1")], "product_sk long, product_id string"
    )
    orders = spark.createDataFrame(
        [
            ("O1", "C1", "P1", TS(2025, 1, 14, 11, 59), D(2025, 1, 14), 1, Decimal("1.00"), Decimal("1.00"), "USD", Decimal(1), D(2025, 1, 14), Decimal("1.00"), "paid"),
            ("O2", "C1", "P1", TS(2025, 1, 14, 12), D(2025, 1, 14), 1, Decimal("1.00"), Decimal("1.00"), "USD", Decimal(1), D(2025, 1, 14), Decimal("1.00"), "paid"),
            ("O3", "C404", "P404", TS(2023, 5, 1), D(2023, 5, 1), 1, Decimal("1.00"), Decimal("1.00"), "USD", Decimal(1), D(2023, 5, 1), Decimal("1.00"), "paid"),
        ],
        ORDERS,
    )  # fmt: skip
    result = orders.transform(facts.fact_orders(dim_c, dim_p)).select(
        "order_id", "customer_sk", "product_sk", "date_sk"
    )
    assertDataFrameEqual(
        result,
        [Row(order_id="O1", customer_sk=11, product_sk=21, date_sk=20250114),
         Row(order_id="O2", customer_sk=12, product_sk=21, date_sk=20250114),
         Row(order_id="O3", customer_sk=-1, product_sk=-1, date_sk=20230501)],
    )  # fmt: skip


def test_dim_date_covers_first_fact_date_to_end_of_last_year(spark):
    dates = dimensions.dim_date(spark, D(2023, 2, 27), D(2024, 1, 5))
    assert dates.count() == (D(2024, 12, 31) - D(2023, 2, 27)).days + 1
    assert dates.selectExpr("count(distinct date_sk)").first()[0] == dates.count()
    saturday = dates.where("date_sk = 20230304").first()
    assert (
        saturday.year,
        saturday.quarter,
        saturday.month,
        saturday.day_of_week,
        saturday.is_weekend,
        saturday.day_name,
    ) == (2023, 1, 3, 6, True, "Saturday")
    feb = dates.where("date_sk = 20230228").first()
    assert feb.is_month_end and not feb.is_weekend and feb.day_of_week == 2
    assert dates.where("date_sk = 20241231").count() == 1


def test_dim_product_keys_depend_only_on_product_id(spark):
    products = spark.createDataFrame(
        [("P1", "SKU1", "Desk", "Furniture", "Desks", "Acme", Decimal("10.00"), Decimal("4.00"), True, TS(2024, 1, 1), TS(2024, 1, 1))],
        "product_id string, sku string, product_name string, category string, subcategory string, brand string, price_usd decimal(18,2), cost_usd decimal(18,2), active boolean, created_at timestamp, updated_at timestamp",
    )  # fmt: skip
    first = dimensions.dim_product(products)
    renamed = dimensions.dim_product(
        products.withColumn(
            "product_name",
            __import__("pyspark.sql.functions", fromlist=["lit"]).lit("Standing desk"),
        )
    )
    key = first.where("product_id = 'P1'").first().product_sk
    assert key == renamed.where("product_id = 'P1'").first().product_sk and key > 0
    assert first.where("product_sk = -1").count() == 1


FACT = "order_id string, customer_sk long, product_sk long, customer_id string, order_ts timestamp, quantity int, amount_usd decimal(18,2), status string"


def test_customer_360_metrics_by_hand(spark):
    dim_c = spark.createDataFrame(
        [(-1, "UNKNOWN", True), (11, "C1", False), (12, "C1", True), (13, "C2", True)],
        "customer_sk long, customer_id string, is_current boolean",
    )
    for column in (
        "first_name",
        "last_name",
        "email",
        "country",
        "segment",
        "crm_account_id",
        "crm_account_name",
        "crm_industry",
    ):
        dim_c = dim_c.selectExpr("*", f"cast(null as string) as {column}")
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
    result = (
        analytics.customer_360(dim_c, fact, behavior, opportunities, events)
        .orderBy("customer_id")
        .collect()
    )
    assert [r.customer_id for r in result] == ["C1", "C2"]
    c1, c2 = result
    assert c1.customer_sk == 12
    assert (c1.lifetime_orders, c1.lifetime_revenue_usd, c1.avg_order_value_usd) == (
        3,
        Decimal("150.00"),
        Decimal("75.00"),
    )
    assert (c1.first_order_date, c1.last_order_date) == (D(2024, 1, 1), D(2024, 4, 1))
    assert (
        c1.total_logins,
        c1.total_page_views,
        c1.total_session_minutes,
        c1.total_purchases,
        c1.active_days,
    ) == (4, 12, Decimal("6.50"), 1, 2)
    assert (c1.open_opportunities, c1.open_pipeline_usd) == (2, Decimal("1250.50"))
    assert (c1.last_event_ts, c1.last_event_type) == (TS(2024, 4, 2), "order_cancelled")
    assert (
        c2.lifetime_orders,
        c2.lifetime_revenue_usd,
        c2.open_pipeline_usd,
        c2.last_event_type,
    ) == (0, Decimal("0.00"), Decimal("0.00"), None)


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
    result = analytics.product_performance(dim_p, fact).select(
        "product_id",
        "units",
        "orders",
        "distinct_customers",
        "revenue_usd",
        "cost_usd_total",
        "margin_usd",
        "category_rank",
    )
    assertDataFrameEqual(
        result,
        [Row(product_id="P1", units=3, orders=3, distinct_customers=2, revenue_usd=Decimal("30.00"), cost_usd_total=Decimal("12.00"), margin_usd=Decimal("18.00"), category_rank=2),
         Row(product_id="P2", units=3, orders=1, distinct_customers=1, revenue_usd=Decimal("45.00"), cost_usd_total=Decimal("3.00"), margin_usd=Decimal("42.00"), category_rank=1),
         Row(product_id="P3", units=0, orders=0, distinct_customers=0, revenue_usd=Decimal("0.00"), cost_usd_total=Decimal("0.00"), margin_usd=Decimal("0.00"), category_rank=1)],
    )  # fmt: skip
