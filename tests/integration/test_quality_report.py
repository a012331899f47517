"""End to end: generate two days, run the whole chain, validate the last day, write the report.

Generated data carries every documented defect, and the pipeline quarantines or flags them, so
the gate must pass with no error and no warning; the report must show the run as it happened.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from medallion.audit import read_records
from medallion.config import parse_settings
from medallion.jobs import JOB_MAP, JOBS
from medallion.lake import Lake
from medallion.quality.job import VALIDATE_JOB
from medallion.quality.report import write_report
from medallion.quality.results import read_results
from medallion.runner import run_chain, run_job

pytestmark = pytest.mark.integration

FIRST, LAST = dt.date(2025, 1, 13), dt.date(2025, 1, 14)
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
def pipeline(spark, tmp_path_factory):
    missing = [name for name in CHAIN if name not in JOB_MAP]
    if missing:
        pytest.fail(f"the job registry lacks {', '.join(missing)}: this test runs the whole chain")
    from medallion.generate import generate_landing

    root = tmp_path_factory.mktemp("quality_e2e") / "lake"
    generate_landing(root / "landing", scale=0.02, days=2, start_date=FIRST, seed=42, force=True)
    settings = parse_settings(
        f'env: local\nspark: {{master: "local[2]", shuffle_partitions: 1}}\nlake: {{root: "{root}"}}\n'
        f'warehouse: {{type: duckdb, duckdb: {{path: "{root}/warehouse.duckdb"}}}}\n',
        "test",
    )
    run_chain(JOBS, [FIRST, LAST], settings, lambda: spark)
    record = run_job(VALIDATE_JOB, LAST, settings, spark)
    return settings, record


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
