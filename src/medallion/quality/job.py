"""The ``validate`` job: run the quality suites for a run date, store the results, gate the run.

It runs through ``medallion.runner.run_job`` like every other job, so it takes the (job, date)
lock and leaves an audit record; a failed error-severity check makes it raise
:class:`QualityGateFailed` (exit 1, audit status failed) after the results are written.
"""

from __future__ import annotations

from medallion.errors import JobError
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.quality.engine import run_checks
from medallion.quality.results import ValidationRun, write_results

MAX_IDS_IN_MESSAGE = 12


class QualityGateFailed(JobError):
    """At least one error-severity check failed; ``run`` holds every result."""

    def __init__(self, message: str, run: ValidationRun) -> None:
        super().__init__(message)
        self.run = run


def validate(context: JobContext) -> JobResult:
    run = run_checks(
        context.spark, context.settings, context.lake, context.run_date, run_id=context.run_id
    )
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
        raise QualityGateFailed(
            f"quality gate failed for {context.run_date}: {len(failed)} error check(s) failed: "
            f"{shown}{more} (results in {path})",
            run,
        )
    return JobResult(
        details={**summary, "failed_warning_ids": run.failed_warnings, "results": path},
        message=(
            f"{summary['passed']} passed, {summary['failed_warnings']} warning(s), "
            f"{summary['skipped']} skipped; results in {path}"
        ),
    )


VALIDATE_JOB = Job(
    "validate",
    "data-quality checks on silver and gold (ODCS contracts); fails on error-severity checks",
    validate,
)
