"""Finding a gold Delta table: the files of its latest version from the log, and clear errors."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from warehouse_gold import DIM_DATE, day

from medallion.errors import JobError
from medallion.warehouse import locate_gold
from medallion.warehouse.base import staging_name


def _parquet_files(folder: str) -> set[str]:
    return {
        os.path.join(base, name)
        for base, _, names in os.walk(folder)
        if "_delta_log" not in base
        for name in names
        if name.endswith(".parquet")
    }


def test_only_the_files_of_the_latest_version_are_read(gold):
    path = gold.write("dim_date", [day(20250113), day(20250114)])
    DeltaTable(path).update(updates={"day_name": "'Lundi'"}, predicate="date_sk = 20250113")
    # A file no commit ever added (say, a writer that died before committing).
    pq.write_table(pa.Table.from_pylist([day(20250119)], DIM_DATE), f"{path}/stray.parquet")

    table = locate_gold(gold.lake, "dim_date")

    live = set(DeltaTable(path).file_uris())
    assert set(table.snapshot.files) == live
    assert len(_parquet_files(path) - live) == 2  # the updated row's old file and the stray one
    assert table.version == 2 and not table.partitioned
    assert table.snapshot.rows == 2
    rows = sorted(table.dataset().to_table().to_pylist(), key=lambda r: r["date_sk"])
    assert [(r["date_sk"], r["day_name"]) for r in rows] == [
        (20250113, "Lundi"),
        (20250114, "Tuesday"),
    ]


def test_partition_values_come_from_the_log(gold):
    path = gold.lake.gold("dim_date")
    data = pa.Table.from_pylist([day(20250113), day(20250214)], DIM_DATE)
    write_deltalake(path, data, partition_by=["month"])

    table = locate_gold(gold.lake, "dim_date")

    assert table.partitioned
    assert sorted(table.dataset().to_table().column("month").to_pylist()) == [1, 2]


def test_a_gold_table_not_produced_yet_is_named(gold):
    with pytest.raises(JobError, match=r"gold table 'dim_product' has not been produced yet"):
        locate_gold(gold.lake, "dim_product")


def test_a_folder_with_only_a_success_marker_is_not_a_table(gold):
    path = gold.lake.gold("dim_product")
    os.makedirs(path)
    open(f"{path}/_SUCCESS", "w").close()

    with pytest.raises(JobError, match="has not been produced yet"):
        locate_gold(gold.lake, "dim_product")


def test_plain_parquet_without_a_delta_log_is_refused_naming_the_table(gold):
    path = gold.lake.gold("dim_date")
    os.makedirs(path)
    pq.write_table(pa.Table.from_pylist([day(20250113)], DIM_DATE), f"{path}/part-0.parquet")

    with pytest.raises(JobError) as failure:
        locate_gold(gold.lake, "dim_date")

    message = str(failure.value)
    assert message.startswith("gold/dim_date at ") and "is not a Delta table" in message
    assert "\n" not in message


def test_staging_names_come_from_the_run_id():
    run_id = "8a1c7a3e-93f4-4a55-9c55-5b0e7e1d2f00"
    assert staging_name("fact_orders", run_id) == "stg_fact_orders_8a1c7a3e93f44a559c555b0e7e1d2f00"
    assert staging_name("fact_orders", "manual run #2") == "stg_fact_orders_manualrun2"


def test_s3a_lakes_are_read_as_s3_with_the_environment_s_endpoint(monkeypatch):
    from medallion.delta_reader import storage_options, table_uri

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)

    assert table_uri("s3a://bucket/lake/gold/dim_date") == "s3://bucket/lake/gold/dim_date"
    options = storage_options("s3a://bucket/lake/gold/dim_date")
    assert options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert options["AWS_ALLOW_HTTP"] == "true" and options["AWS_ACCESS_KEY_ID"] == "key"
    assert storage_options("/tmp/lake/gold/dim_date") == {}
