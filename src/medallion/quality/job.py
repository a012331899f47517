"""The ``validate`` job: run the quality suites and the anomaly gate for a run date, store the
results, gate the run.

It runs through ``medallion.runner.run_job`` like every other job, so it takes the (job, date)
lock and leaves an audit record; a failed error-severity check or an anomaly makes it raise
:class:`QualityGateFailed` (exit 1, audit status failed) after the results are written. The
option ``accept_anomalies`` (``--accept-anomalies``) turns the day's anomalies into warnings,
and the audit record lists the ones the operator accepted. ``--job all`` runs it before the
publish, as the DAG does, so nothing the gate stops reaches the warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from medallion.audit import read_records
from medallion.chain import GATE_FAILED, VALIDATE, gate_position
from medallion.errors import JobError
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.quality import anomalies
from medallion.quality.engine import run_checks
from medallion.quality.results import FAILED, CheckResult, ValidationRun, write_results

MAX_IDS_IN_MESSAGE = 12


class QualityGateFailed(JobError):
    """At least one error-severity check failed; ``run`` holds every result."""

    def __init__(self, message: str, run: ValidationRun) -> None:
        super().__init__(message)
        self.run = run


def validate(context: JobContext) -> JobResult:
    records = read_records(context.lake.root)  # once: the checks and the gate both read it
    run = run_checks(
        context.spark,
        context.settings,
        context.lake,
        context.run_date,
        run_id=context.run_id,
        records=records,
    )
    gate = anomaly_results(context, records)
    accept = bool(context.options.get("accept_anomalies"))
    accepted = [r.id for r in gate if r.status == FAILED] if accept else []
    run.results.extend(_accepted(r) if r.id in accepted else r for r in gate)
    path = write_results(context.lake, run)
    summary = run.summary()
    failed = run.failed_errors
    if failed:
        shown = ", ".join(failed[:MAX_IDS_IN_MESSAGE])
        more = (
            f" and {len(failed) - MAX_IDS_IN_MESSAGE} more"
            if len(failed) > MAX_IDS_IN_MESSAGE
            else ""
        )
        found = [r.message for r in run.results if r.blocking and r.kind == anomalies.ANOMALY]
        said = (
            f"; anomalies: {'; '.join(found)} (if the delivery is right, rerun with "
            "--accept-anomalies)"
            if found
            else ""
        )
        raise QualityGateFailed(
            f"{GATE_FAILED} {context.run_date}: {len(failed)} error check(s) failed: "
            f"{shown}{more}{said} (results in {path})",
            run,
        )
    return JobResult(
        details={
            **summary,
            "failed_warning_ids": run.failed_warnings,
            "anomalies_accepted": accepted,
            "results": path,
        },
        message=(
            f"{summary['passed']} passed, {summary['failed_warnings']} warning(s), "
            f"{summary['skipped']} skipped; results in {path}"
        ),
    )


def anomaly_results(context: JobContext, records: Sequence[dict[str, Any]]) -> list[CheckResult]:
    """The anomaly gate's figures for the run date, judged against the audit trail's
    ``records`` (``medallion.quality.anomalies``)."""
    from medallion.jobs import JOBS

    config = context.settings.quality.anomalies
    ingests = {job.name for job in JOBS if job.ingest}
    figures = anomalies.ingest_figures(records, ingests)
    try:
        moves = anomalies.fx_moves(context.spark, context.lake, context.run_date)
        fx = anomalies.judge_fx(context.run_date, moves, config)
    except anomalies.Unmeasurable as exc:
        fx = anomalies.unmeasured_fx(str(exc))
    return [*anomalies.judge(context.run_date, figures, config), fx]


def _accepted(result: CheckResult) -> CheckResult:
    """An anomaly the operator accepted: reported as a warning, no longer blocking."""
    return replace(
        result, severity="warn", message=f"{result.message} (accepted with --accept-anomalies)"
    )


VALIDATE_JOB = Job(
    VALIDATE,
    "data-quality checks on silver and gold (ODCS contracts) and the anomaly gate against the "
    "trailing history; fails on error-severity checks and on anomalies",
    validate,
)


def before_publish(jobs: Sequence[Job]) -> list[Job]:
    """The jobs with ``validate`` inserted before the first publish job (or at the end), the
    order the DAG runs them in: a day that fails the gate never reaches the warehouse."""
    at = gate_position([job.name for job in jobs])
    return [*jobs[:at], VALIDATE_JOB, *jobs[at:]]
