"""The warehouse publisher: gold Delta table -> staging table -> one idempotent MERGE per table.

Gold is read outside Spark through its Delta log (``medallion.delta_reader``), so a publish
reads exactly one committed version of each table and never a file a later commit removed.

``open_warehouse`` returns the target the configuration names (``duckdb``, embedded, the local
default; ``snowflake`` in production). The targets are imported lazily: the Snowflake connector
is slow to import and only needed when it is the target.
"""

from __future__ import annotations

from medallion.config import WarehouseConfig
from medallion.lake import Lake
from medallion.warehouse.base import (
    MODES,
    GoldTable,
    PublishMode,
    PublishResult,
    Warehouse,
    locate_gold,
)


def open_warehouse(config: WarehouseConfig, lake: Lake) -> Warehouse:
    """The configured target; connecting happens on first use."""
    if config.type == "snowflake":
        from medallion.warehouse.snowflake_target import SnowflakeWarehouse

        assert config.snowflake is not None  # the config model guarantees it
        return SnowflakeWarehouse(config.snowflake, lake)
    from medallion.warehouse.duckdb_target import DuckDBWarehouse

    return DuckDBWarehouse(config.duckdb)


__all__ = [
    "MODES",
    "GoldTable",
    "PublishMode",
    "PublishResult",
    "Warehouse",
    "locate_gold",
    "open_warehouse",
]
