"""Operator commands on Delta tables: history, restore (under the writer's lock, audited), maintain.

Tiny tables in a throwaway lake, on the one session-scoped Spark session; the commands run
through the real CLI entrypoint where their exit codes and messages are what is under test.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os

import pytest
from delta.tables import DeltaTable
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from medallion import cli
from medallion.audit import read_records
from medallion.errors import UsageError
from medallion.jobs import JOB_MAP
from medallion.lake import Lake, append, commit_metadata, merge_into, overwrite
from medallion.lock import run_lock
from medallion.operations import (
    history,
    lake_tables,
    maintain_table,
    parse_timestamp,
    resolve_version,
    restore_job,
    writer_job,
)
from medallion.runner import run_job

SCHEMA = T.StructType(
    [T.StructField("order_id", T.StringType(), False), T.StructField("amount", T.LongType())]
)
RUN_DATE = dt.date(2025, 1, 15)


@pytest.fixture
def lake(lake_settings) -> Lake:
    return Lake.from_root(lake_settings.lake.root)


@pytest.fixture
def config_file(lake_settings, tmp_path) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(
        f"env: local\nspark: {{master: 'local[2]', shuffle_partitions: 1}}\n"
        f"lake: {{root: '{lake_settings.lake.root}'}}\n"
    )
    return str(path)


def _orders(spark, rows):
    return spark.createDataFrame(rows, SCHEMA)


def _two_versions(spark, path: str) -> None:
    """v0: two orders written by run-a; v1: a MERGE by run-b updating one and inserting one."""
    overwrite(
        _orders(spark, [("o1", 10), ("o2", 20)]),
        path,
        metadata=commit_metadata("run-a", job="bronze_to_silver"),
    )
    incoming = _orders(spark, [("o2", 25), ("o3", 30)])

    def merge() -> None:
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(incoming.alias("s"), "t.order_id = s.order_id")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )

    merge_into(spark, path, merge, metadata=commit_metadata("run-b", job="bronze_to_silver"))


def test_writer_job_is_a_registered_job_for_every_layer():
    names = {
        "bronze/fx/fx_rates": "fx_json_to_bronze",
        "quarantine/kafka/order_events": "kafka_events_to_bronze",
        "bronze/crm/accounts": "crm_to_bronze",
        "quarantine/snowflake/orders": "snowflake_to_bronze",
        "bronze/redshift/customer_behavior": "redshift_to_bronze",
        "silver/orders": "bronze_to_silver",
        "gold/dim_customer": "silver_to_gold",
    }
    assert {name: writer_job(name) for name in names} == names
    assert set(names.values()) <= set(JOB_MAP)


def test_parse_timestamp_is_utc_unless_zoned():
    assert parse_timestamp("2025-01-15") == dt.datetime(2025, 1, 15, tzinfo=dt.UTC)
    assert parse_timestamp("2025-01-15 06:30:00Z") == dt.datetime(2025, 1, 15, 6, 30, tzinfo=dt.UTC)
    assert parse_timestamp("2025-01-15T08:30:00+02:00") == dt.datetime(
        2025, 1, 15, 6, 30, tzinfo=dt.UTC
    )
    with pytest.raises(UsageError, match="--timestamp '15/01/2025' is not a time"):
        parse_timestamp("15/01/2025")


def test_history_restore_round_trip_is_audited(spark, lake, lake_settings, config_file, capsys):
    path = lake.silver("orders")
    _two_versions(spark, path)

    entries = history(spark, path)
    assert [(e.version, e.operation, e.run_id, e.job) for e in entries] == [
        (1, "MERGE", "run-b", "bronze_to_silver"),
        (0, "WRITE", "run-a", "bronze_to_silver"),
    ]
    # MERGE: one updated + one inserted row; the first write: its two output rows.
    assert [(e.rows_written, e.rows_deleted) for e in entries] == [(2, 0), (2, None)]
    assert all(e.timestamp.tzinfo is dt.UTC for e in entries)
    assert abs(dt.datetime.now(dt.UTC) - entries[0].timestamp) < dt.timedelta(minutes=10)
    # The version current at a time: the latest commit at or before it.
    assert resolve_version(spark, path, timestamp=entries[1].timestamp) == 0
    assert resolve_version(spark, path, timestamp=entries[0].timestamp) == 1
    with pytest.raises(UsageError, match=r"silver/orders has no version 7: .* versions 0 to 1"):
        resolve_version(spark, path, version=7)
    with pytest.raises(UsageError, match="has no version as of 2000-01-01"):
        resolve_version(spark, path, timestamp=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))

    record = run_job(restore_job("silver/orders", 0), RUN_DATE, lake_settings, spark)

    assertDataFrameEqual(
        spark.read.format("delta").load(path), _orders(spark, [("o1", 10), ("o2", 20)])
    )
    latest = history(spark, path, last=1)[0]
    assert (latest.version, latest.operation, latest.run_id, latest.job) == (
        2,
        "RESTORE",
        record.run_id,
        "restore",
    )
    (stored,) = [r for r in read_records(lake.root) if r["run_id"] == record.run_id]
    assert stored["job"] == "restore"
    assert stored["status"] == "succeeded"
    assert {k: stored["details"][k] for k in ("table", "from_version", "to_version")} == {
        "table": "silver/orders",
        "from_version": 1,
        "to_version": 0,
    }
    assert stored["details"]["commit_version"] == 2
    assert stored["tables"][0]["versions"] == {"silver/orders": 2}

    # The CLI shows the same history, JSON included, newest first.
    assert cli.main(["history", "--table", "silver/orders", "--json", "--config", config_file]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(e["version"], e["operation"], e["run_id"]) for e in shown] == [
        (2, "RESTORE", record.run_id),
        (1, "MERGE", "run-b"),
        (0, "WRITE", "run-a"),
    ]
    assert shown[0]["timestamp"].endswith("Z")


def test_restore_is_refused_while_the_writer_holds_its_lock(spark, lake, config_file, capsys):
    path = lake.silver("orders")
    overwrite(_orders(spark, [("o1", 10)]), path, metadata=commit_metadata("run-a"))
    overwrite(_orders(spark, [("o1", 11)]), path, metadata=commit_metadata("run-b"))

    # silver's writer keeps one lock for all dates: a run of any date refuses the restore.
    with run_lock(lake.root, "bronze_to_silver", dt.date(2025, 1, 14), "the-running-run", 3600):
        code = cli.main(
            ["restore", "--table", "silver/orders", "--version", "0", "--config", config_file]
        )
    err = capsys.readouterr().err
    assert code == 1
    assert "refusing to restore silver/orders while its writer runs" in err
    assert "the-running-run" in err
    assert "Traceback" not in err
    assert history(spark, path, last=1)[0].version == 1  # nothing was restored
    (refused,) = [r for r in read_records(lake.root) if r["job"] == "restore"]
    assert refused["status"] == "failed"
    assert "the-running-run" in refused["error"]


def test_maintain_is_refused_while_an_ingest_of_any_date_runs(spark, lake, config_file, capsys):
    path = lake.bronze("crm", "accounts")
    append(_orders(spark, [("o1", 10)]), path, metadata=commit_metadata("run-a"))

    # A bronze ingest has a lock per date: the one held for an old date still refuses.
    with run_lock(lake.root, "crm_to_bronze", dt.date(2025, 1, 2), "ingest-run", 3600):
        code = cli.main(["maintain", "--table", "bronze/crm/accounts", "--config", config_file])
    err = capsys.readouterr().err
    assert code == 1
    assert "skipped those whose writer is running: bronze/crm/accounts" in err
    assert "ingest-run" in err
    assert history(spark, path, last=1)[0].operation == "WRITE"


def test_maintain_compacts_small_files_and_records_the_run(spark, lake, config_file, capsys):
    path = lake.gold("fact_orders")
    for i in range(3):
        append(_orders(spark, [(f"o{i}", i)]), path, metadata=commit_metadata(f"run-{i}"))
    assert lake_tables(spark, lake) == ["gold/fact_orders"]

    assert cli.main(["maintain", "--config", config_file]) == 0

    out = capsys.readouterr().out
    assert "gold/fact_orders: compacted 3 small files into 1 (3 -> 1 files)" in out
    assert "vacuumed 0 unreferenced files" in out  # the replaced files are within the retention
    assert DeltaTable.forPath(spark, path).detail().first()["numFiles"] == 1
    assert spark.read.format("delta").load(path).count() == 3
    (record,) = [r for r in read_records(lake.root) if r["job"] == "maintain"]
    assert record["status"] == "succeeded"
    assert record["details"]["retention_hours"] == 168
    operations = [e.operation for e in history(spark, path, last=3)]
    assert operations == ["VACUUM END", "VACUUM START", "OPTIMIZE"]
    assert {e.run_id for e in history(spark, path, last=3)} == {record["run_id"]}


def test_vacuum_deletes_the_files_compaction_replaced_past_the_retention(spark, lake):
    path = lake.silver("fx_rates")
    for i in range(3):
        append(_orders(spark, [(f"o{i}", i)]), path, metadata=commit_metadata(f"run-{i}"))
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    # Retention 0 stands in for "a week later": the config never allows it (test_config).
    spark.conf.set(check, "false")
    try:
        done = maintain_table(spark, path, retention_hours=0, metadata=commit_metadata("m"))
    finally:
        spark.conf.unset(check)
    assert (done.files_before, done.files_after) == (3, 1)
    # VACUUM deleted the three replaced files and, on a local disk, their .crc checksums.
    assert (done.compacted_removed, done.compacted_added, done.vacuumed_files) == (3, 1, 6)
    assert len(glob.glob(os.path.join(path, "*.parquet"))) == 1
    assert spark.read.format("delta").load(path).count() == 3


@pytest.mark.parametrize("command", [["history"], ["maintain"], ["restore", "--version", "0"]])
def test_bad_table_names_exit_2_before_spark(command, capsys):
    assert cli.main([*command, "--table", "silver"]) == 2
    err = capsys.readouterr().err
    assert "'silver' is not a lake table: name it LAYER/TABLE" in err
    assert "Traceback" not in err


def test_missing_table_exits_2_and_non_delta_folder_exits_1(spark, lake, config_file, capsys):
    overwrite(_orders(spark, [("o1", 1)]), lake.silver("orders"), metadata=commit_metadata("r"))
    assert cli.main(["history", "--table", "silver/nothing", "--config", config_file]) == 2
    err = capsys.readouterr().err
    assert "there is no table silver/nothing in the lake" in err
    assert "silver/orders" in err  # the tables it does hold

    legacy = lake.gold("dim_date")
    spark.createDataFrame([(1,)], "x int").write.parquet(legacy)
    assert (
        cli.main(["restore", "--table", "gold/dim_date", "--version", "0", "--config", config_file])
        == 1
    )
    assert "is not a Delta table" in capsys.readouterr().err
