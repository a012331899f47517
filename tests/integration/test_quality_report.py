"""End to end: the whole chain over generated days, the last day validated, the report written.

Generated data carries every documented defect, and the pipeline quarantines or flags them, so
the gate must pass with no error and no warning; the report must show the run as it happened.
"""

from __future__ import annotations

import re

import pytest
from chain_lake import DAYS

from medallion.audit import read_records
from medallion.jobs import JOB_MAP
from medallion.lake import Lake
from medallion.quality.job import VALIDATE_JOB
from medallion.quality.report import write_report
from medallion.quality.results import read_results
from medallion.runner import run_job

pytestmark = pytest.mark.integration

FIRST, LAST = DAYS[-2:]  # the day before the validated one, and the validated one
CHAIN = (
    "fx_json_to_bronze",
    "crm_to_bronze",
    "snowflake_to_bronze",
    "redshift_to_bronze",
    "kafka_events_to_bronze",
    "bronze_to_silver",
    "silver_to_gold",
    "publish_gold_to_snowflake",
)


@pytest.fixture(scope="module")
def pipeline(spark, copy_of_chain_lake):
    """A copy of the suite's three-day chain lake (tests/integration/conftest.py), validated
    for its last day."""
    missing = [name for name in CHAIN if name not in JOB_MAP]
    if missing:
        pytest.fail(f"the job registry lacks {', '.join(missing)}: this test runs the whole chain")
    chain = copy_of_chain_lake
    assert [r.job for r in chain.records_of(LAST).values()] == list(CHAIN)
    record = run_job(VALIDATE_JOB, LAST, chain.settings, spark)
    return chain.settings, record


def test_generated_data_passes_the_gate_with_no_warning(pipeline):
    settings, record = pipeline
    results = read_results(Lake.from_root(settings.lake.root), LAST)

    assert record.status == "succeeded"
    assert results["status"] == "passed"
    assert results["failed_errors"] == [] and results["failed_warnings"] == []
    checks = {c["id"]: c for c in results["checks"]}
    # the chain published the day before validate ran: the warehouse checks compare
    assert checks["gold.fact_orders.warehouse_rows"]["status"] == "passed"
    # only the last day was validated: the change is measured against the audit trail
    assert checks["silver.orders.row_count_change"]["status"] == "passed"
    assert f"on {FIRST.isoformat()} ->" in checks["silver.orders.row_count_change"]["message"]
    assert results["row_counts"]["gold.fact_orders"] == results["row_counts"]["silver.orders"]


def test_report_shows_the_run_as_the_audit_trail_recorded_it(pipeline):
    settings, _ = pipeline
    day_records = read_records(settings.lake.root, run_date=LAST)
    quarantined = sum(r["rows_quarantined"] for r in day_records if r["job"].endswith("_to_bronze"))

    path = write_report(settings, LAST)

    with open(path, encoding="utf-8") as handle:
        html = handle.read()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())  # the page's text, tags removed
    assert quarantined > 0
    assert f"Rows quarantined {quarantined:,}" in text
    assert "Pipeline 9 jobs succeeded" in text  # the 8 chain jobs and validate
    assert "Quality gate passed" in text
    for name in CHAIN:
        assert f"<code>{name}</code>" in html
