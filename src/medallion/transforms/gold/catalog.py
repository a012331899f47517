"""The gold tables and their keys: what the warehouse publisher merges on.

The tables are those with a gold contract (``quality/contracts/gold/<table>.yaml``), in the
order they are published; each key is its contract's primary key, stated there once. Each key
is unique in its table (the gold job guarantees it, the contract's quality rules check it and
the publisher checks it again). SCD2 rows merge on the surrogate key, so every history row is
its own warehouse row.
"""

from __future__ import annotations

from medallion.quality.table_contracts import primary_key, table_names

GOLD_TABLES: dict[str, list[str]] = {
    table: primary_key("gold", table) for table in table_names("gold")
}
