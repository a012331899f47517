"""Fixtures for the warehouse publisher: a tmp lake with gold-like Parquet, and both targets.

The Snowflake target runs against ``fakesnow``, which patches ``snowflake.connector.connect``
and ``write_pandas`` and executes the Snowflake SQL on DuckDB.
"""

from __future__ import annotations

import pytest
from warehouse_gold import GoldLake, Target, snowflake_config

from medallion.config import DuckDBConfig


@pytest.fixture
def gold(tmp_path) -> GoldLake:
    return GoldLake(str(tmp_path / "lake"))


@pytest.fixture
def fakesnow_patch(monkeypatch):
    """fakesnow in place of the Snowflake connector, for the duration of one test.

    fakesnow 0.12.1 emulates MERGE with a TEMPORARY helper table and, for every CREATE TABLE
    with properties, records a (null) table comment in its own ``_fs_global`` database; DuckDB
    refuses that second write inside an explicit transaction, so a MERGE between BEGIN and COMMIT
    fails under fakesnow only. Skipping the null-comment bookkeeping lets fakesnow run the
    publisher's real BEGIN / DELETE / MERGE / COMMIT sequence.
    """
    import fakesnow
    import fakesnow.info_schema as info_schema

    original = info_schema.insert_table_comment_sql

    def comment_sql(catalog, schema, table, comment):
        if comment is None:
            return "SELECT 1 WHERE FALSE"
        return original(catalog, schema, table, comment)

    monkeypatch.setattr(info_schema, "insert_table_comment_sql", comment_sql)
    with fakesnow.patch():
        yield


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
