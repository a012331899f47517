"""Fixtures for the warehouse publisher: a tmp lake with gold-like Parquet, and both targets.

The Snowflake target runs against ``fakesnow`` (tests/fake_snowflake.py), which patches
``snowflake.connector.connect`` and ``write_pandas`` and executes the Snowflake SQL on DuckDB.
"""

from __future__ import annotations

import pytest
from fake_snowflake import fake_snowflake
from warehouse_gold import GoldLake, Target, snowflake_config

from medallion.config import DuckDBConfig


@pytest.fixture
def gold(tmp_path) -> GoldLake:
    return GoldLake(str(tmp_path / "lake"))


@pytest.fixture
def fakesnow_patch(monkeypatch):
    """fakesnow in place of the Snowflake connector for one test (tests/fake_snowflake.py);
    yields the statements the adapter executes, in order."""
    with fake_snowflake(monkeypatch) as statements:
        yield statements


@pytest.fixture(params=["duckdb", "snowflake"])
def target(request, gold, tmp_path):
    """Each semantics test runs against DuckDB and against the Snowflake adapter (fakesnow)."""
    if request.param == "duckdb":
        from medallion.warehouse.duckdb_target import DuckDBWarehouse

        warehouse = DuckDBWarehouse(DuckDBConfig(path=str(tmp_path / "warehouse.duckdb")))
        yield Target("duckdb", warehouse)
        warehouse.close()
    else:
        request.getfixturevalue("fakesnow_patch")
        from medallion.warehouse.snowflake_target import SnowflakeWarehouse

        warehouse = SnowflakeWarehouse(snowflake_config(), gold.lake)
        yield Target("snowflake", warehouse)
        warehouse.close()
