"""Partition-atomic writes: reruns replace exactly their partitions; table swaps survive a crash."""

from __future__ import annotations

import os

from medallion.lake import Lake, read_parquet, repair_table, write_partitions, write_table


def test_lake_paths_follow_the_pinned_layout(tmp_path):
    import datetime as dt

    lake = Lake.from_root(str(tmp_path))
    day = dt.date(2025, 1, 13)
    assert lake.landing("crm", "accounts", day) == f"{tmp_path}/landing/crm/accounts/dt=2025-01-13"
    assert lake.bronze("crm", "accounts") == f"{tmp_path}/bronze/crm/accounts"
    assert lake.quarantine("fx", "fx_rates") == f"{tmp_path}/quarantine/fx/fx_rates"
    assert lake.silver("orders") == f"{tmp_path}/silver/orders"
    assert lake.gold("dim_customer") == f"{tmp_path}/gold/dim_customer"
    assert lake.audit_dir(day) == f"{tmp_path}/_audit/run_date=2025-01-13"
    assert lake.checkpoint("kafka_order_events") == f"{tmp_path}/_checkpoints/kafka_order_events"
    assert (
        Lake.from_root("s3://bucket/lake/").bronze("fx", "fx_rates")
        == "s3://bucket/lake/bronze/fx/fx_rates"
    )


def test_dynamic_overwrite_replaces_only_written_partitions(spark, tmp_path):
    path = str(tmp_path / "t")
    rows = [(i, "2025-01-13" if i < 3 else "2025-01-14") for i in range(5)]
    write_partitions(spark.createDataFrame(rows, "id int, _run_date string"), path, "_run_date")
    write_partitions(
        spark.createDataFrame([(10, "2025-01-13")], "id int, _run_date string"), path, "_run_date"
    )
    result = sorted((r.id, str(r._run_date)) for r in read_parquet(spark, path).collect())
    assert result == [(3, "2025-01-14"), (4, "2025-01-14"), (10, "2025-01-13")]


def test_write_table_swaps_and_repairs_interrupted_swap(spark, tmp_path):
    path = str(tmp_path / "silver" / "t")
    write_table(spark.createDataFrame([(1,)], "id int"), path)
    write_table(spark.createDataFrame([(2,), (3,)], "id int"), path)
    assert sorted(r.id for r in read_parquet(spark, path).collect()) == [2, 3]
    assert sorted(os.listdir(tmp_path / "silver")) == ["t"]
    # A crash after retiring the old copy but before the new one moved in: the next read repairs.
    os.rename(path, str(tmp_path / "silver" / ".__retired__t.abc"))
    os.makedirs(tmp_path / "silver" / ".__staging__t.abc")
    repair_table(spark, path)
    assert sorted(os.listdir(tmp_path / "silver")) == ["t"]
    assert sorted(r.id for r in read_parquet(spark, path).collect()) == [2, 3]


def test_read_missing_table(spark, tmp_path):
    assert read_parquet(spark, str(tmp_path / "nothing")) is None
    empty = read_parquet(spark, str(tmp_path / "nothing"), schema=spark.range(1).schema)
    assert empty.count() == 0
