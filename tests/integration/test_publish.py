"""The publish job end to end: Spark-written gold in a tmp lake -> ``run_job`` -> the warehouse.

Gold is written once per module by Spark as Delta tables through the lake's own ``overwrite``
(the layout the real gold job leaves: part files plus the ``_delta_log``), then copied into each
test's lake. The job itself needs no Spark: it runs with ``spark=None`` as the runner gives it
and reads gold through the Delta log with ``deltalake``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from decimal import Decimal

import duckdb
import pytest
from fake_snowflake import fake_snowflake

from medallion.audit import read_records
from medallion.config import parse_settings
from medallion.errors import JobError
from medallion.jobs.publish_gold_to_snowflake import PUBLISH_JOB
from medallion.runner import run_job
from medallion.transforms.gold.catalog import GOLD_TABLES
from medallion.warehouse import sql

pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API")

RUN_DATE = dt.date(2025, 1, 15)
UTC = dt.UTC
OPEN_END = dt.datetime(9999, 12, 31, tzinfo=UTC)
T0 = dt.datetime(2025, 1, 13, 8, 30, 15, 123456, tzinfo=UTC)
T1 = dt.datetime(2025, 1, 14, 12, 0, 0, tzinfo=UTC)


def gold_frames(spark):
    """Small gold-like tables with the real gold's keys and types."""
    from pyspark.sql import types as T

    def frame(rows, fields):
        return spark.createDataFrame(rows, T.StructType([T.StructField(*f) for f in fields]))

    money = T.DecimalType(18, 2)
    return {
        "dim_customer": frame(
            [
                (
                    -1,
                    "UNKNOWN",
                    "unknown",
                    None,
                    dt.datetime(1900, 1, 1, tzinfo=UTC),
                    OPEN_END,
                    True,
                ),
                (101, "c1", "retail", "DE", T0, T1, False),
                (102, "c1", "wholesale", "DE", T1, OPEN_END, True),  # c1's second version
                (103, "c2", "retail", "FR", T0, OPEN_END, True),
            ],
            [
                ("customer_sk", T.LongType()),
                ("customer_id", T.StringType()),
                ("segment", T.StringType()),
                ("country", T.StringType()),
                ("valid_from", T.TimestampType()),
                ("valid_to", T.TimestampType()),
                ("is_current", T.BooleanType()),
            ],
        ),
        "dim_product": frame(
            [(-1, "UNKNOWN", "unknown"), (201, "p1", "books"), (202, "p2", "games")],
            [
                ("product_sk", T.LongType()),
                ("product_id", T.StringType()),
                ("category", T.StringType()),
            ],
        ),
        "dim_date": frame(
            [(20250113, dt.date(2025, 1, 13), 2025, 1), (20250114, dt.date(2025, 1, 14), 2025, 1)],
            [
                ("date_sk", T.IntegerType()),
                ("date", T.DateType()),
                ("year", T.IntegerType()),
                ("month", T.IntegerType()),
            ],
        ),
        "fact_orders": frame(
            [
                (
                    "o1",
                    101,
                    201,
                    20250113,
                    1,
                    Decimal("10.00"),
                    "EUR",
                    Decimal("0.91000000"),
                    Decimal("10.99"),
                    "shipped",
                ),
                (
                    "o2",
                    102,
                    202,
                    20250114,
                    3,
                    Decimal("30.00"),
                    "USD",
                    Decimal("1.00000000"),
                    Decimal("30.00"),
                    "shipped",
                ),
                (
                    "o3",
                    103,
                    201,
                    20250114,
                    2,
                    Decimal("5.50"),
                    "GBP",
                    Decimal("0.80000000"),
                    Decimal("6.88"),
                    "cancelled",
                ),
                (
                    "o4",
                    -1,
                    -1,
                    20250114,
                    1,
                    Decimal("1.00"),
                    "USD",
                    Decimal("1.00000000"),
                    Decimal("1.00"),
                    "pending",
                ),
            ],
            [
                ("order_id", T.StringType()),
                ("customer_sk", T.LongType()),
                ("product_sk", T.LongType()),
                ("date_sk", T.IntegerType()),
                ("quantity", T.IntegerType()),
                ("amount", money),
                ("currency", T.StringType()),
                ("fx_rate", T.DecimalType(18, 8)),
                ("amount_usd", money),
                ("status", T.StringType()),
            ],
        ),
        "customer_360": frame(
            [("c1", 2, Decimal("40.99")), ("c2", 1, Decimal("6.88"))],
            [
                ("customer_id", T.StringType()),
                ("lifetime_orders", T.LongType()),
                ("lifetime_revenue_usd", money),
            ],
        ),
        "product_performance": frame(
            [("p1", 2, Decimal("17.87")), ("p2", 1, Decimal("30.00"))],
            [("product_id", T.StringType()), ("orders", T.LongType()), ("revenue_usd", money)],
        ),
    }


@pytest.fixture(scope="module")
def spark_gold(spark, tmp_path_factory):
    """A gold folder written by Spark, shared by the module's tests (they copy it)."""
    from medallion.lake import Lake, commit_metadata, overwrite

    lake = Lake.from_root(str(tmp_path_factory.mktemp("spark_gold") / "lake"))
    for table, frame in gold_frames(spark).items():
        overwrite(frame.coalesce(2), lake.gold(table), metadata=commit_metadata("gold-fixture"))
    return lake.path("gold")


@pytest.fixture
def lake_with_gold(lake_settings, spark_gold):
    shutil.copytree(spark_gold, f"{lake_settings.lake.root}/gold")
    return lake_settings


def warehouse_query(settings, text):
    with duckdb.connect(settings.warehouse.duckdb.path, read_only=True) as con:
        return con.execute(text).fetchall()


def publish(settings, **options):
    return run_job(PUBLISH_JOB, RUN_DATE, settings, spark=None, options=options)


def test_the_job_needs_no_spark():
    assert PUBLISH_JOB.name == "publish_gold_to_snowflake"
    assert PUBLISH_JOB.needs_spark is False


def test_publish_all_gold_tables_into_duckdb_and_audit_the_counts(lake_with_gold):
    settings = lake_with_gold

    record = publish(settings)

    assert record.status == "succeeded"
    stored = read_records(settings.lake.root, RUN_DATE)[-1]
    expected_rows = {
        "dim_customer": 4,
        "dim_product": 3,
        "dim_date": 2,
        "fact_orders": 4,
        "customer_360": 2,
        "product_performance": 2,
    }
    assert stored["tables"] == [
        {
            "name": f"warehouse/{t}",
            "rows_in": n,
            "rows_out": n,
            "rows_quarantined": 0,
            "versions": {},  # the warehouse is not a Delta table: gold_versions are in details
        }
        for t, n in expected_rows.items()
    ]
    details = stored["details"]
    assert details["warehouse"] == "duckdb"
    assert details["gold_versions"] == {table: 0 for table in GOLD_TABLES}
    assert list(details["tables"]) == list(GOLD_TABLES)
    assert details["tables"]["fact_orders"] == {
        "table": "fact_orders",
        "mode": "merge",
        "rows_source": 4,
        "inserted": 4,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "duplicates_removed": 0,
        "rows_target": 4,
        "columns_added": [],
    }
    # The star schema joins on its surrogate keys (the docs/WAREHOUSE.md example).
    revenue = warehouse_query(
        settings,
        """
        SELECT d.year, d.month, c.segment, p.category, count(*) AS orders,
               sum(f.amount_usd) AS revenue_usd
        FROM fact_orders f
        JOIN dim_customer c ON c.customer_sk = f.customer_sk
        JOIN dim_product p ON p.product_sk = f.product_sk
        JOIN dim_date d ON d.date_sk = f.date_sk
        WHERE f.status <> 'cancelled'
        GROUP BY ALL ORDER BY revenue_usd DESC
        """,
    )
    assert revenue == [
        (2025, 1, "wholesale", "games", 1, Decimal("30.00")),
        (2025, 1, "retail", "books", 1, Decimal("10.99")),
        (2025, 1, "unknown", "unknown", 1, Decimal("1.00")),
    ]
    types = dict(
        warehouse_query(
            settings,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'fact_orders'",
        )
    )
    assert (types["amount"], types["fx_rate"], types["date_sk"]) == (
        "DECIMAL(18,2)",
        "DECIMAL(18,8)",
        "INTEGER",
    )
    valid = warehouse_query(
        settings, "SELECT valid_from, valid_to FROM dim_customer WHERE customer_sk = 101"
    )
    assert valid == [(T0, T1)]


def test_republishing_the_same_gold_changes_nothing(lake_with_gold):
    settings = lake_with_gold
    publish(settings)
    before = warehouse_query(settings, "SELECT * FROM fact_orders ORDER BY order_id")

    again = publish(settings)

    for table, counts in again.details["tables"].items():
        assert (counts["inserted"], counts["updated"], counts["deleted"]) == (0, 0, 0), table
        assert counts["unchanged"] == counts["rows_target"], table
    assert warehouse_query(settings, "SELECT * FROM fact_orders ORDER BY order_id") == before


def test_a_failure_rolls_back_that_table_and_is_audited(lake_with_gold, monkeypatch):
    settings = lake_with_gold
    original = sql.merge_sql

    def failing_merge(target, *args, **kwargs):
        if "fact_orders" in target:
            return "SELECT * FROM no_such_table_injected_failure"
        return original(target, *args, **kwargs)

    monkeypatch.setattr(sql, "merge_sql", failing_merge)

    with pytest.raises(JobError) as failure:
        publish(settings, tables=["dim_customer", "fact_orders", "dim_date"])

    message = str(failure.value)
    assert "publishing gold table 'fact_orders'" in message
    assert "rolled back" in message
    assert "tables committed earlier in this run: dim_customer" in message
    stored = read_records(settings.lake.root, RUN_DATE)[-1]
    assert stored["status"] == "failed"
    assert stored["tables"] == [
        {
            "name": "warehouse/dim_customer",
            "rows_in": 4,
            "rows_out": 4,
            "rows_quarantined": 0,
            "versions": {},
        }
    ]
    tables = {row[0] for row in warehouse_query(settings, "SHOW TABLES")}
    assert tables == {"dim_customer"}  # fact_orders' creation rolled back, dim_date never started


def test_a_missing_gold_table_fails_before_publishing_anything(lake_with_gold):
    settings = lake_with_gold
    shutil.rmtree(f"{settings.lake.root}/gold/product_performance")

    with pytest.raises(JobError, match="gold table 'product_performance' has not been produced"):
        publish(settings)

    assert read_records(settings.lake.root, RUN_DATE)[-1]["status"] == "failed"
    assert not os.path.exists(settings.warehouse.duckdb.path)  # the warehouse was never opened


def test_an_updated_gold_row_reaches_the_warehouse_and_its_old_file_is_never_read(
    spark, lake_with_gold
):
    """A second Delta commit rewrites the file holding o3; the old file stays in the folder."""
    from delta.tables import DeltaTable

    settings = lake_with_gold
    path = f"{settings.lake.root}/gold/fact_orders"
    publish(settings, tables=["fact_orders"])
    files_before = _data_files(path)

    DeltaTable.forPath(spark, path).update("order_id = 'o3'", {"status": "'refunded'"})

    assert _data_files(path) > files_before  # the rewritten file is added, the old one kept
    record = publish(settings, tables=["fact_orders"])

    counts = record.details["tables"]["fact_orders"]
    assert (counts["inserted"], counts["updated"], counts["deleted"]) == (0, 1, 0)
    assert record.details["gold_versions"] == {"fact_orders": 1}
    assert warehouse_query(settings, "SELECT count(*) FROM fact_orders") == [(4,)]
    assert warehouse_query(settings, "SELECT order_id, status FROM fact_orders ORDER BY 1") == [
        ("o1", "shipped"),
        ("o2", "shipped"),
        ("o3", "refunded"),
        ("o4", "pending"),
    ]


def _data_files(path: str) -> set[str]:
    return {name for name in os.listdir(path) if name.endswith(".parquet")}


def test_plain_parquet_where_gold_should_be_fails_naming_the_table(spark, lake_with_gold):
    settings = lake_with_gold
    path = f"{settings.lake.root}/gold/dim_date"
    shutil.rmtree(path)
    gold_frames(spark)["dim_date"].write.parquet(path)  # the layout from before the migration

    with pytest.raises(JobError) as failure:
        publish(settings)

    message = str(failure.value)
    assert message == (
        f"gold/dim_date at {path} holds files but is not a Delta table (no _delta_log); "
        "rewrite it with the pipeline (or CONVERT TO DELTA) before it is read; nothing was "
        "published"
    )
    assert not os.path.exists(settings.warehouse.duckdb.path)  # the warehouse was never opened


def test_tables_and_mode_come_from_options_then_config(tmp_path, spark_gold):
    settings = parse_settings(
        f"""
env: local
lake: {{root: "{tmp_path / "lake"}"}}
warehouse:
  type: duckdb
  duckdb: {{path: "{tmp_path / "wh.duckdb"}", schema: gold}}
  publish: [dim_date, dim_product]
  tables: {{dim_date: {{mode: overwrite}}}}
""",
        "test",
    )
    shutil.copytree(spark_gold, tmp_path / "lake" / "gold")

    from_config = publish(settings)
    from_cli = publish(settings, tables=["dim_product"], mode="overwrite")

    modes = {t: c["mode"] for t, c in from_config.details["tables"].items()}
    assert modes == {"dim_date": "overwrite", "dim_product": "merge"}
    assert {t: c["mode"] for t, c in from_cli.details["tables"].items()} == {
        "dim_product": "overwrite"
    }
    assert warehouse_query(settings, "SELECT count(*) FROM gold.dim_product") == [(3,)]


def test_an_unknown_table_is_a_usage_error(lake_with_gold):
    from medallion.errors import UsageError

    with pytest.raises(UsageError, match="unknown gold table\\(s\\) dim_nope"):
        publish(lake_with_gold, tables=["dim_nope"])


@pytest.fixture
def fakesnow_patch(monkeypatch):
    """fakesnow for the connector (tests/fake_snowflake.py); yields the statements executed."""
    with fake_snowflake(monkeypatch) as statements:
        yield statements


def test_publish_to_snowflake_end_to_end(tmp_path, spark_gold, fakesnow_patch, monkeypatch):
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "pw-from-the-environment")
    settings = parse_settings(
        f"""
env: dev
lake: {{root: "{tmp_path / "lake"}"}}
warehouse:
  type: snowflake
  snowflake:
    account: acme-test
    user: publisher
    password: ${{SNOWFLAKE_PASSWORD}}
    database: MEDALLION
    schema: GOLD
    chunk_size: 3
""",
        "test",
    )
    shutil.copytree(spark_gold, tmp_path / "lake" / "gold")

    first = publish(settings, tables=["dim_customer", "fact_orders"])
    second = publish(settings, tables=["dim_customer", "fact_orders"])

    assert first.details["warehouse"] == "snowflake"
    assert [(t["name"], t["rows_in"], t["rows_out"]) for t in first.tables] == [
        ("warehouse/dim_customer", 4, 4),
        ("warehouse/fact_orders", 4, 4),
    ]
    assert first.details["tables"]["fact_orders"]["inserted"] == 4
    for counts in second.details["tables"].values():
        assert (counts["inserted"], counts["updated"], counts["deleted"]) == (0, 0, 0)
    # Every table's statements ran under a query tag naming the job's run, its date and the table.
    tags = [
        json.loads(statement.split("= ", 1)[1].strip("'"))
        for statement in fakesnow_patch
        if statement.startswith("ALTER SESSION SET QUERY_TAG")
    ]
    assert [(t["run_id"], t["run_date"], t["table"]) for t in tags] == [
        (record.run_id, "2025-01-15", table)
        for record in (first, second)
        for table in ("dim_customer", "fact_orders")
    ]
    import snowflake.connector

    cursor = snowflake.connector.connect(database="MEDALLION", schema="GOLD").cursor()
    cursor.execute(
        "SELECT f.order_id, c.segment, f.amount_usd FROM fact_orders f "
        "JOIN dim_customer c ON c.customer_sk = f.customer_sk ORDER BY 1"
    )
    rows = cursor.fetchall()
    assert rows == [
        ("o1", "retail", Decimal("10.99")),
        ("o2", "wholesale", Decimal("30.00")),
        ("o3", "retail", Decimal("6.88")),
        ("o4", "unknown", Decimal("1.00")),
    ]
    assert all(isinstance(amount, Decimal) for _, _, amount in rows)
    cursor.execute("SELECT valid_to FROM dim_customer WHERE customer_sk = 101")
    assert cursor.fetchall() == [(T1,)]
