"""Products in silver: the latest version per product."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import products

D = dt.date
TS = dt.datetime
UTC = dt.UTC
PRODUCTS = (
    "product_id string, sku string, product_name string, category string, subcategory string, "
    "brand string, price_usd decimal(18,2), cost_usd decimal(18,2), active boolean, "
    "created_at timestamp, updated_at timestamp, _run_date date, _record_hash string"
)
CREATED = TS(2024, 1, 1, tzinfo=UTC)


def _product(product_id, price, active, updated_at, run_date, record_hash):
    return (product_id, f"SKU-{product_id}", "Desk", "Furniture", "Desks", "Acme", Decimal(price),
            Decimal("4.00"), active, CREATED, updated_at, run_date, record_hash)  # fmt: skip


def test_current_products_keeps_the_latest_version_and_ties_go_to_the_later_delivery(spark):
    t1, t2 = TS(2025, 1, 10, tzinfo=UTC), TS(2025, 1, 11, tzinfo=UTC)
    repriced = _product("P1", "12.00", True, t2, D(2025, 1, 11), "a")
    old_price = _product("P1", "10.00", True, t1, D(2025, 1, 12), "b")  # older, delivered later
    first_delivery = _product("P2", "3.00", True, t1, D(2025, 1, 10), "z")
    retired = _product("P2", "3.00", False, t1, D(2025, 1, 11), "a")  # same time, later run
    smaller_hash = _product("P3", "1.00", True, t1, D(2025, 1, 10), "1")
    larger_hash = _product("P3", "1.50", True, t1, D(2025, 1, 10), "2")  # full tie: the hash
    versions = spark.createDataFrame(
        [repriced, old_price, first_delivery, retired, smaller_hash, larger_hash], PRODUCTS
    ).repartition(3)

    result = products.current_products(versions)

    expected = spark.createDataFrame([repriced, retired, larger_hash], PRODUCTS)
    assertDataFrameEqual(result, expected)
