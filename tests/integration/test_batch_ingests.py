"""The four batch ingestion jobs on generated landing data, checked against the manifest.

The suite's chain lake (scale 0.02, three generated days, tests/integration/conftest.py) was
ingested day by day; for days one and two every count, every quarantine reason and every
malformed record's raw text is compared with what the generator says it injected.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from pathlib import Path

import pytest
from chain_lake import DAYS
from pyspark.sql import functions as F

from medallion.contracts import BRONZE_METADATA, QUARANTINE_SCHEMA, load_contract
from medallion.errors import JobError
from medallion.jobs import JOB_MAP
from medallion.runner import run_job

pytestmark = pytest.mark.integration

DAY_ONE, DAY_TWO = DAYS[:2]
BATCH_JOBS = ("fx_json_to_bronze", "crm_to_bronze", "snowflake_to_bronze", "redshift_to_bronze")
JOB_TABLES = {
    "fx_json_to_bronze": ("fx/fx_rates",),
    "crm_to_bronze": ("crm/accounts", "crm/contacts", "crm/opportunities"),
    "snowflake_to_bronze": ("snowflake/customers", "snowflake/products", "snowflake/orders"),
    "redshift_to_bronze": ("redshift/customer_behavior",),
}
TABLES = tuple(table for tables in JOB_TABLES.values() for table in tables)
CSV_TABLES = TABLES[1:]


@pytest.fixture(scope="module")
def lake(copy_of_chain_lake):
    """A copy of the suite's chain lake (tests/integration/conftest.py): its bronze and
    quarantine are what the batch ingests made of the generated days."""
    chain = copy_of_chain_lake
    return chain.root, chain.settings, chain.manifest


def run_day(spark, settings, day, jobs=BATCH_JOBS):
    return {name: run_job(JOB_MAP[name], day, settings, spark) for name in jobs}


@pytest.fixture(scope="module")
def runs(copy_of_chain_lake):
    """The chain's audit records of the batch ingests of days one and two (run in date order)."""
    return {
        day: {
            job: record
            for job, record in copy_of_chain_lake.records_of(day).items()
            if job in BATCH_JOBS
        }
        for day in (DAY_ONE, DAY_TWO)
    }


@pytest.fixture(scope="module")
def quarantine(spark, lake, runs):
    """Every quarantined row of both days, per table (a few hundred rows in all)."""
    root, _, _ = lake
    return {
        table: spark.read.format("delta").load(f"{root}/quarantine/{table}").collect()
        for table in TABLES
    }


def expected(manifest, day, table):
    facts = manifest["days"][day.isoformat()][table]
    reasons = {rule: n for rule, n in facts["expected"]["quarantine"].items() if n}
    return facts["rows_written"], facts["expected"]["rows_bronze"], reasons


def table_counts(records):
    return {t["name"]: t for record in records.values() for t in record.tables}


def reason_counts(rows, day):
    return dict(Counter(r for row in rows if row["_run_date"] == day for r in row["_reasons"]))


@pytest.mark.parametrize("day", [DAY_ONE, DAY_TWO], ids=["day1", "day2"])
def test_counts_and_reasons_match_the_manifest_exactly(lake, runs, quarantine, day):
    _, _, manifest = lake
    records = runs[day]
    assert all(record.status == "succeeded" for record in records.values())
    counts = table_counts(records)
    assert set(counts) == set(TABLES)
    for job, tables in JOB_TABLES.items():
        for table in tables:
            rows_written, rows_bronze, reasons = expected(manifest, day, table)
            count = counts[table]
            assert count["rows_in"] == rows_written, table
            assert count["rows_in"] == count["rows_out"] + count["rows_quarantined"], table
            assert count["rows_out"] == rows_bronze, table
            assert count["rows_quarantined"] == sum(reasons.values()), table
            assert reason_counts(quarantine[table], day) == reasons, table
            assert records[job].details["tables"][table]["quarantine_reasons"] == reasons, table


def test_each_rejected_row_carries_exactly_one_reason(quarantine):
    for table, rows in quarantine.items():
        assert rows, table
        assert all(len(row["_reasons"]) == 1 for row in rows), table


def test_no_real_fx_rate_is_quarantined(spark, lake, runs, quarantine):
    root, _, manifest = lake
    defects = manifest["days"][DAY_ONE.isoformat()]["fx/fx_rates"]["defects"]
    assert reason_counts(quarantine["fx/fx_rates"], DAY_ONE) == {
        "rate:range": defects["zero_rate"] + defects["negative_rate"],
        "rate:jump": defects["absurd_rate"],
        "quote_ccy:allowed_values": defects["unknown_currency"],
        "_record:malformed": defects["malformed_json"],
    }
    bronze = (
        spark.read.format("delta")
        .load(f"{root}/bronze/fx/fx_rates")
        .where(F.col("_run_date") == F.lit(DAY_ONE))
    )
    by_currency = {
        row["quote_ccy"]: row
        for row in bronze.groupBy("quote_ccy")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.min("rate").alias("low"),
            F.max("rate").alias("high"),
        )
        .collect()
    }
    assert len(by_currency) == 20
    assert all(row["rows"] > 900 for row in by_currency.values())
    assert by_currency["KRW"]["high"] > 1000  # big real rates are kept
    assert by_currency["HUF"]["high"] > 300
    assert by_currency["USD"]["low"] == by_currency["USD"]["high"] == 1


def test_bronze_and_quarantine_schemas(spark, lake, runs):
    root, _, _ = lake
    for table in TABLES:
        bronze = spark.read.format("delta").load(f"{root}/bronze/{table}").schema
        expected_bronze = [*load_contract(table).spark_schema(), *BRONZE_METADATA]
        assert columns(bronze) == columns(expected_bronze), table
        quarantine = spark.read.format("delta").load(f"{root}/quarantine/{table}").schema
        assert columns(quarantine) == columns(QUARANTINE_SCHEMA), table


def columns(fields):
    """Name and type of each column, in any order (Parquet reads every column as nullable)."""
    return sorted((f.name, f.dataType.simpleString()) for f in fields)


def test_malformed_records_keep_their_raw_text_and_line(quarantine):
    for table, rows in quarantine.items():
        malformed = [row for row in rows if row["_reasons"] == ["_record:malformed"]]
        assert malformed, table
        for row in malformed:
            lines = Path(row["_source_file"].removeprefix("file:")).read_text("utf-8").split("\n")
            assert lines[row["_line"] - 1] == row["_raw_record"], (table, row["_line"])


def test_quarantined_csv_records_are_found_at_their_line(quarantine):
    """A rejected CSV record, parsed from its ``_line`` in its file, has the fields of its
    ``_raw_record`` (re-created from the fields when the record itself was well-formed)."""
    for table in CSV_TABLES:
        for row in quarantine[table]:
            lines = Path(row["_source_file"].removeprefix("file:")).read_text("utf-8").split("\n")
            from_file = next(csv.reader(io.StringIO("\n".join(lines[row["_line"] - 1 :]))))
            assert from_file == next(csv.reader(io.StringIO(row["_raw_record"]))), (
                table,
                row["_line"],
            )


def test_a_duplicate_is_a_copy_of_a_row_kept_in_bronze(spark, lake, quarantine):
    root, _, _ = lake
    for table in CSV_TABLES:
        hashes = [
            row["_record_hash"]
            for row in quarantine[table]
            if row["_reasons"] == ["_record:duplicate"] and row["_run_date"] == DAY_ONE
        ]
        assert hashes, table
        kept = (
            spark.read.format("delta")
            .load(f"{root}/bronze/{table}")
            .where((F.col("_run_date") == F.lit(DAY_ONE)) & F.col("_record_hash").isin(hashes))
            .select("_record_hash")
            .distinct()
            .count()
        )
        assert kept == len(set(hashes)), table


def test_rerunning_a_date_replaces_exactly_that_date(spark, lake, runs):
    root, settings, _ = lake
    jobs = ("fx_json_to_bronze", "snowflake_to_bronze")
    tables = [t for job in jobs for t in JOB_TABLES[job]]

    def rows_per_date():
        return {
            (layer, table, row["_run_date"]): row["count"]
            for layer in ("bronze", "quarantine")
            for table in tables
            for row in spark.read.format("delta")
            .load(f"{root}/{layer}/{table}")
            .groupBy("_run_date")
            .count()
            .collect()
        }

    def counts(records):
        return {
            name: {k: v for k, v in entry.items() if k != "versions"}
            for name, entry in table_counts(records).items()
        }

    before = rows_per_date()
    first = table_counts(runs[DAY_ONE])
    rerun = run_day(spark, settings, DAY_ONE, jobs)
    assert counts(rerun) == {t: counts(runs[DAY_ONE])[t] for t in tables}
    assert rows_per_date() == before
    # The rerun made one new commit per table (bronze and quarantine), later than the first's.
    for table, entry in table_counts(rerun).items():
        for name, version in entry["versions"].items():
            assert version > first[table]["versions"][name], name
    written_by = (
        spark.read.format("delta")
        .load(f"{root}/bronze/snowflake/orders")
        .where(F.col("_run_date") == F.lit(DAY_ONE))
    )
    assert {row["_run_id"] for row in written_by.select("_run_id").distinct().collect()} == {
        rerun["snowflake_to_bronze"].run_id
    }


def test_a_run_date_without_landing_data_fails_clearly(spark, lake):
    _, settings, _ = lake
    with pytest.raises(JobError, match=r"no landing data for run date 2025-01-20: fx/fx_rates"):
        run_job(JOB_MAP["fx_json_to_bronze"], dt.date(2025, 1, 20), settings, spark)
