"""dim_date and dim_product on tiny inputs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.testing import assertDataFrameEqual
from spark_xxhash import expected_key

from medallion.transforms.gold import dimensions

D, TS = dt.date, dt.datetime


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


PRODUCTS = (
    "product_id string, sku string, product_name string, category string, subcategory string, "
    "brand string, price_usd decimal(18,2), cost_usd decimal(18,2), active boolean, "
    "created_at timestamp, updated_at timestamp"
)


def test_dim_product_keys_depend_only_on_product_id(spark):
    def product(product_id, name):
        return (product_id, f"SKU-{product_id}", name, "Furniture", "Desks", "Acme",
                Decimal("10.00"), Decimal("4.00"), True, TS(2024, 1, 1), TS(2024, 1, 2))  # fmt: skip

    unknown = (
        -1,
        "UNKNOWN",
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
    schema = "product_sk long, " + PRODUCTS

    for desk_name in ("Desk", "Standing desk"):  # a renamed product keeps its key
        silver = spark.createDataFrame([product("P1", desk_name), product("P2", "Chair")], PRODUCTS)

        result = dimensions.dim_product(silver)

        expected = spark.createDataFrame(
            [unknown,
             (expected_key("P1"), *product("P1", desk_name)),
             (expected_key("P2"), *product("P2", "Chair"))],
            schema,
        )  # fmt: skip
        assertDataFrameEqual(result, expected)
