"""Source control totals: bronze counts the source, not the frame it parsed.

The job-level tests land a hand-written Redshift extract (seven columns) with and without a
control file, and run the real ``redshift_to_bronze`` job on it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from medallion.audit import read_records
from medallion.contracts.control import (
    CONTROL_FILE,
    ControlTotals,
    parse_control,
    reconcile,
    relative_name,
)
from medallion.errors import JobError
from medallion.generate import generate_landing
from medallion.jobs import JOB_MAP
from medallion.runner import run_job

RUN_DATE = dt.date(2025, 1, 13)
HEADER = "customer_id,event_date,login_count,page_views,session_duration_minutes,purchases,revenue"
GOOD = [f"C0000000{i},2025-01-13,2,7,12.5,1,45.10" for i in range(1, 6)]
# Record 2 opens a quote that never closes: the reader takes every later line into it.
RUNAWAY = [GOOD[0], 'C00000002,2025-01-13,"2,7,12.5,1,45.10', *GOOD[2:]]


# --- the control file and the reconciliation, without Spark -------------------------------------


def test_a_control_file_is_parsed_into_records_per_file():
    text = json.dumps({"table": "t", "date": "2025-01-13", "files": {"a.csv": 3, "b.csv": 0}})
    assert parse_control(text, "x/_control.json") == ControlTotals(
        "x/_control.json", {"a.csv": 3, "b.csv": 0}
    )


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"files": {"a.csv": "3"}}',
        '{"files": {"a.csv": -1}}',
        '{"count": 3}',
        '{"files": {"a.csv": true}}',
    ],
)
def test_a_control_file_of_another_shape_is_refused_naming_it(text):
    with pytest.raises(JobError, match=r"control file x/_control\.json "):
        parse_control(text, "x/_control.json")


@pytest.mark.parametrize(
    "file",
    [
        "file:/lake/landing/crm/accounts/dt=2025-01-13/part-00000.csv",
        "file:///lake/landing/crm/accounts/dt%3D2025-01-13/part-00000.csv",
        "s3a://bucket/lake/landing/crm/accounts/dt=2025-01-13/part-00000.csv",
    ],
)
def test_a_file_is_named_relative_to_its_delivery_folder_however_spelled(file):
    assert relative_name(file, "/lake/landing/crm/accounts/dt=2025-01-13") == "part-00000.csv"


def test_reconcile_names_the_file_and_both_counts():
    control = ControlTotals("c", {"a.csv": 336, "b.csv": 10})
    reconcile("crm/accounts", control, {"a.csv": 336, "b.csv": 10}, ["a.csv", "b.csv"])
    with pytest.raises(JobError, match=r"crm/accounts file a\.csv: the control file declares 336 records but 334 were parsed"):  # fmt: skip
        reconcile("crm/accounts", control, {"a.csv": 334, "b.csv": 10}, ["a.csv", "b.csv"])
    with pytest.raises(JobError, match=r"declares 10 records but 0 were parsed"):
        reconcile("crm/accounts", control, {"a.csv": 336}, ["a.csv", "b.csv"])
    with pytest.raises(JobError, match=r"lists b\.csv, which the delivery folder does not hold"):
        reconcile("crm/accounts", control, {"a.csv": 336}, ["a.csv"])
    with pytest.raises(JobError, match=r"does not list c\.csv"):
        reconcile("crm/accounts", control, {}, ["a.csv", "b.csv", "c.csv"])


# --- through the job ------------------------------------------------------------------------------


def land(settings, lines: list[str], control: dict[str, int] | None, name="part-00000.csv") -> str:
    folder = f"{settings.lake.root}/landing/redshift/customer_behavior/dt={RUN_DATE.isoformat()}"
    os.makedirs(folder, exist_ok=True)
    with open(f"{folder}/{name}", "w", encoding="utf-8") as handle:
        handle.write("\n".join([HEADER, *lines]) + "\n")
    if control is not None:
        with open(f"{folder}/{CONTROL_FILE}", "w", encoding="utf-8") as handle:
            json.dump({"table": "redshift/customer_behavior", "files": control}, handle)
    return folder


def ingest(spark, settings):
    return run_job(JOB_MAP["redshift_to_bronze"], RUN_DATE, settings, spark)


def bronze_exists(settings) -> bool:
    path = f"{settings.lake.root}/bronze/redshift/customer_behavior/_delta_log"
    return os.path.isdir(path) and len(os.listdir(path)) > 1  # more than the empty creation


def test_a_delivery_that_matches_its_control_file_loads_and_records_the_source_count(
    spark, lake_settings
):
    land(lake_settings, GOOD, {"part-00000.csv": 5})
    record = ingest(spark, lake_settings)
    assert (record.rows_in, record.rows_out, record.rows_quarantined) == (5, 5, 0)
    [stored] = read_records(lake_settings.lake.root, RUN_DATE)
    assert stored["details"]["tables"]["redshift/customer_behavior"]["control_records"] == 5


def test_a_runaway_quote_fails_against_the_control_file_naming_file_counts_and_line(
    spark, lake_settings
):
    land(lake_settings, RUNAWAY, {"part-00000.csv": 5})
    with pytest.raises(JobError) as failed:
        ingest(spark, lake_settings)
    message = str(failed.value)
    assert "file part-00000.csv: the control file declares 5 records but 2 were parsed" in message
    assert "a quote opened at line 3 of part-00000.csv runs over 3 line(s)" in message
    assert not bronze_exists(lake_settings), "nothing is written"


def test_without_a_control_file_a_runaway_quote_is_reported_with_its_line(spark, lake_settings):
    land(lake_settings, RUNAWAY, None)
    with pytest.raises(JobError, match=r"file part-00000\.csv line 3: a quoted field opens there and runs over 3 line\(s\) that are whole records"):  # fmt: skip
        ingest(spark, lake_settings)
    assert not bronze_exists(lake_settings)


def test_a_quoted_line_break_in_a_well_formed_record_is_no_runaway_quote(spark, lake_settings):
    """The field is wrong (a line break in a number: a type reason) but it is one record."""
    lines = [GOOD[0], 'C00000002,2025-01-13,"2\n7",7,12.5,1,45.10', *GOOD[2:]]
    land(lake_settings, lines, None)
    record = ingest(spark, lake_settings)
    assert (record.rows_in, record.rows_out, record.rows_quarantined) == (5, 4, 1)


def test_a_malformed_record_that_swallowed_nothing_is_quarantined_as_before(spark, lake_settings):
    lines = [GOOD[0], "C00000002,2025-01-13,2,7,12.5,1,45.10,extra", *GOOD[2:]]
    land(lake_settings, lines, {"part-00000.csv": 5})
    record = ingest(spark, lake_settings)
    assert (record.rows_in, record.rows_out, record.rows_quarantined) == (5, 4, 1)


def test_a_data_file_the_control_file_does_not_list_fails_the_job(spark, lake_settings):
    folder = land(lake_settings, GOOD, {"part-00000.csv": 5})
    with open(f"{folder}/part-00001.csv", "w", encoding="utf-8") as handle:
        handle.write(HEADER + "\n" + GOOD[0] + "\n")
    with pytest.raises(JobError, match=r"does not list part-00001\.csv"):
        ingest(spark, lake_settings)
    [stored] = read_records(lake_settings.lake.root, RUN_DATE)
    assert stored["status"] == "failed" and "does not list part-00001.csv" in stored["error"]


def test_each_file_of_a_multi_file_delivery_is_reconciled_on_its_own(spark, lake_settings):
    """Two parts, the second with a runaway quote: the count is wrong for that file only."""
    land(lake_settings, GOOD, None, name="part-00000.csv")
    land(lake_settings, RUNAWAY, {"part-00000.csv": 5, "part-00001.csv": 5}, name="part-00001.csv")
    with pytest.raises(JobError, match=r"file part-00001\.csv: the control file declares 5 records but 2 were parsed \(a quote opened at line 3 of part-00001\.csv"):  # fmt: skip
        ingest(spark, lake_settings)
    land(lake_settings, GOOD, None, name="part-00001.csv")  # delivered again, mended
    record = ingest(spark, lake_settings)
    assert (record.rows_in, record.rows_out, record.rows_quarantined) == (10, 5, 5)


def test_the_generators_runaway_quote_fails_the_ingest_as_its_manifest_says(spark, lake_settings):
    """The generator's ``runaway_quote`` fault, on a table its tests never showed the job."""
    table = "redshift/customer_behavior"
    manifest = generate_landing(
        Path(lake_settings.lake.root) / "landing", scale=0.004, days=2, start_date=RUN_DATE,
        faults=[f"2:runaway_quote:{table}"],
    )  # fmt: skip
    entry = manifest["days"][str(RUN_DATE + dt.timedelta(days=1))][table]
    where = entry["changes"]["runaway_quote"]
    assert entry["expected"]["ingest_fails"] is True
    with pytest.raises(JobError) as failed:
        run_job(
            JOB_MAP["redshift_to_bronze"], RUN_DATE + dt.timedelta(days=1), lake_settings, spark
        )
    message = str(failed.value)
    declared = f"file {where['file']}: the control file declares {entry['rows_written']} records"
    assert declared in message
    assert f"a quote opened at line {where['line']} of {where['file']}" in message
