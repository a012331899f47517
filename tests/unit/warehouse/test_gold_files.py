"""Finding a committed gold table: only Spark's data files, and a clear error when it is missing."""

from __future__ import annotations

import os

import pytest
from warehouse_gold import day

from medallion.config import DuckDBConfig
from medallion.errors import ConfigError, JobError
from medallion.warehouse import GoldTable, locate_gold
from medallion.warehouse.base import staging_name
from medallion.warehouse.duckdb_target import DuckDBWarehouse


def test_only_visible_part_files_are_data(gold):
    path = gold.write("dim_date", [day(20250113), day(20250114)])
    # A Spark writer still running leaves its attempt files under _temporary/.
    os.makedirs(f"{path}/_temporary/0")
    with open(f"{path}/_temporary/0/part-99999.snappy.parquet", "wb") as handle:
        handle.write(b"half written")

    table = locate_gold(gold.lake, "dim_date")

    assert [os.path.basename(f) for f in table.files] == [
        "part-00000-0000.snappy.parquet",
        "part-00001-0000.snappy.parquet",
    ]
    assert not table.partitioned


def test_partition_folders_are_read_even_with_an_underscore(gold):
    path = gold.write("dim_date", [day(20250113)])
    os.makedirs(f"{path}/_year=2025")
    os.rename(
        f"{path}/part-00001-0000.snappy.parquet",
        f"{path}/_year=2025/part-00001-0000.snappy.parquet",
    )

    table = locate_gold(gold.lake, "dim_date")

    assert any("_year=2025" in f for f in table.files)
    assert table.partitioned


def test_a_gold_table_not_produced_yet_is_named(gold):
    with pytest.raises(JobError, match=r"gold table 'dim_product' has not been produced yet"):
        locate_gold(gold.lake, "dim_product")


def test_a_folder_with_only_a_success_marker_is_not_a_table(gold):
    path = gold.lake.gold("dim_product")
    os.makedirs(path)
    open(f"{path}/_SUCCESS", "w").close()

    with pytest.raises(JobError, match="no Parquet files under"):
        locate_gold(gold.lake, "dim_product")


def test_an_interrupted_swap_says_how_to_recover(gold):
    os.makedirs(gold.lake.path("gold", ".__retired__dim_product.abc123"))

    with pytest.raises(JobError, match="a write of it was interrupted; rerun silver_to_gold"):
        locate_gold(gold.lake, "dim_product")


def test_staging_names_come_from_the_run_id():
    run_id = "8a1c7a3e-93f4-4a55-9c55-5b0e7e1d2f00"
    assert staging_name("fact_orders", run_id) == "stg_fact_orders_8a1c7a3e93f44a559c555b0e7e1d2f00"
    assert staging_name("fact_orders", "manual run #2") == "stg_fact_orders_manualrun2"


def test_duckdb_refuses_a_lake_on_s3(tmp_path):
    warehouse = DuckDBWarehouse(DuckDBConfig(path=str(tmp_path / "w.duckdb")))
    remote = GoldTable("dim_date", "s3://bucket/lake/gold/dim_date", ("b/x.parquet",), None)

    with pytest.raises(ConfigError, match="duckdb warehouse reads gold from a local lake"):
        warehouse.publish_table(remote, ["date_sk"], "merge", "run-1")


def test_a_duckdb_warehouse_with_a_lake_on_s3_is_a_config_error():
    from medallion.config import WarehouseConfig
    from medallion.lake import Lake
    from medallion.warehouse import open_warehouse

    with pytest.raises(ConfigError, match=r"lake\.root is s3://bucket/prod/lake"):
        open_warehouse(WarehouseConfig(), Lake.from_root("s3://bucket/prod/lake"))
