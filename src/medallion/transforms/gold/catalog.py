"""The gold tables and their keys: what the warehouse publisher merges on.

Each key is unique in its table (the gold job guarantees it; the publisher checks it again).
SCD2 rows merge on the surrogate key, so every history row is its own warehouse row.
"""

from __future__ import annotations

GOLD_TABLES: dict[str, list[str]] = {
    "dim_customer": ["customer_sk"],
    "dim_product": ["product_sk"],
    "dim_date": ["date_sk"],
    "fact_orders": ["order_id"],
    "customer_360": ["customer_id"],
    "product_performance": ["product_id"],
}
