"""The shared bronze ingestion: counting, the quarantine policy, partition replacement, and a
whole job run on a hand-written landing folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

import pytest
from pyspark.sql import functions as F

from medallion.audit import read_records
from medallion.contracts import load_contract
from medallion.contracts.model import QuarantinePolicy
from medallion.errors import JobError
from medallion.jobs import JOB_MAP
from medallion.jobs.bronze import (
    CheckTally,
    enforce_quarantine_policy,
    replace_partition,
    tally_checked,
)
from medallion.runner import run_job

RUN_DATE = dt.date(2025, 1, 13)
BEHAVIOR = load_contract("redshift/customer_behavior")
# The columns of a checked frame that the tally reads (besides each rule's).
CHECKED = "customer_id string, _reasons array<string>, _line long"
HEADER = "customer_id,event_date,login_count,page_views,session_duration_minutes,purchases,revenue"


def test_tally_counts_rows_valid_rows_and_rows_per_rule(spark):
    checked = spark.createDataFrame(
        [
            ("C00000001", [], 2),
            ("C00000002", [], 3),
            (None, ["customer_id:required"], 4),
            ("C00000003", ["event_date:type", "page_views:range"], 5),
            ("x", ["_record:malformed"], 6),
        ],
        CHECKED,
    ).withColumns({"_source_file": F.lit("a.csv"), "_raw_record": F.lit("x,y")})
    assert tally_checked(BEHAVIOR, checked) == CheckTally(
        rows_in=5,
        rows_valid=2,
        reasons={
            "_record:malformed": 1,
            "customer_id:required": 1,
            "event_date:type": 1,
            "page_views:range": 1,
        },
    )


def test_tally_of_an_empty_batch(spark):
    empty = spark.createDataFrame([], CHECKED + ", _source_file string, _raw_record string")
    assert tally_checked(BEHAVIOR, empty) == CheckTally(0, 0, {})


def test_quarantine_policy_allows_a_few_rejects():
    enforce_quarantine_policy(BEHAVIOR, CheckTally(1000, 900, {"page_views:range": 100}))
    enforce_quarantine_policy(BEHAVIOR, CheckTally(10, 5, {"page_views:range": 5}))  # too few


def test_quarantine_policy_fails_when_most_rows_are_rejected():
    with pytest.raises(JobError, match=r"redshift/customer_behavior: 60\.0% of 1000 rows .*25%"):
        enforce_quarantine_policy(BEHAVIOR, CheckTally(1000, 400, {"customer_id:required": 600}))


def test_quarantine_policy_in_fail_mode_rejects_any_reject():
    strict = dataclasses.replace(BEHAVIOR, quarantine_policy=QuarantinePolicy(mode="fail"))
    with pytest.raises(JobError, match=r"1 of 10 rows broke the contract .* policy is 'fail'"):
        enforce_quarantine_policy(strict, CheckTally(10, 9, {"page_views:range": 1}))


def test_replace_partition_writes_counts_and_clears_a_stale_date(spark, tmp_path):
    table = str(tmp_path / "table")
    rows = spark.createDataFrame([("a", RUN_DATE), ("b", RUN_DATE)], "v string, _run_date date")
    other = spark.createDataFrame(
        [("c", RUN_DATE + dt.timedelta(days=1))], "v string, _run_date date"
    )
    first = replace_partition(rows, table, RUN_DATE, "{}")
    second = replace_partition(other, table, RUN_DATE + dt.timedelta(days=1), "{}")
    cleared = replace_partition(rows.limit(0), table, RUN_DATE, "{}")
    assert [(c.version, c.rows_written) for c in (first, second, cleared)] == [
        (1, 2),  # version 0 created the table
        (2, 1),
        (3, 0),
    ]
    remaining = spark.read.format("delta").load(table).groupBy("_run_date").count().collect()
    assert [(r["_run_date"], r["count"]) for r in remaining] == [
        (RUN_DATE + dt.timedelta(days=1), 1)
    ]


# --- a whole job on hand-written landing files ---------------------------------------------


def land(lake_settings, text):
    folder = (
        f"{lake_settings.lake.root}/landing/redshift/customer_behavior/dt={RUN_DATE.isoformat()}"
    )
    os.makedirs(folder, exist_ok=True)
    with open(f"{folder}/part-00000.csv", "w", encoding="utf-8") as handle:
        handle.write(text)
    return folder


def test_a_header_only_extract_ingests_zero_rows(spark, lake_settings):
    land(lake_settings, HEADER + "\n")
    record = run_job(JOB_MAP["redshift_to_bronze"], RUN_DATE, lake_settings, spark)
    assert record.status == "succeeded"
    assert record.tables == [
        {
            "name": "redshift/customer_behavior",
            "rows_in": 0,
            "rows_out": 0,
            "rows_quarantined": 0,
            "versions": {
                # Version 0 creates each table; an empty day's write then commits nothing.
                "bronze/redshift/customer_behavior": 0,
                "quarantine/redshift/customer_behavior": 0,
            },
        }
    ]


def test_an_unexpected_column_fails_the_job_and_is_audited(spark, lake_settings):
    land(lake_settings, HEADER + ",device\nC00000001,2025-01-13,1,3,2.5,0,0.00,ios\n")
    with pytest.raises(JobError, match=r"part-00000\.csv has unexpected column\(s\) device"):
        run_job(JOB_MAP["redshift_to_bronze"], RUN_DATE, lake_settings, spark)
    [record] = read_records(lake_settings.lake.root, RUN_DATE)
    assert record["status"] == "failed" and "unexpected column(s) device" in record["error"]


def test_a_job_run_types_and_partitions_bronze(spark, lake_settings):
    land(
        lake_settings,
        HEADER
        + "\nC00000001,2025-01-13,2,7,12.5,1,45.10\n"
        + "C00000002,2025-01-12,1,-3,4.0,0,0.00\n",
    )
    record = run_job(JOB_MAP["redshift_to_bronze"], RUN_DATE, lake_settings, spark)
    assert (record.rows_in, record.rows_out, record.rows_quarantined) == (2, 1, 1)
    root = lake_settings.lake.root
    bronze = spark.read.format("delta").load(f"{root}/bronze/redshift/customer_behavior")
    assert [
        (r["customer_id"], r["page_views"], r["_run_date"], r["_run_id"]) for r in bronze.collect()
    ] == [("C00000001", 7, RUN_DATE, record.run_id)]
    quarantine = spark.read.format("delta").load(f"{root}/quarantine/redshift/customer_behavior")
    assert [(r["_line"], r["_reasons"]) for r in quarantine.collect()] == [
        (3, ["page_views:range"])
    ]
    assert quarantine.where(F.col("_raw_record").startswith("C00000002,")).count() == 1
