"""Runs jobs: one SparkSession per process, one lock and one audit record per job run.

``run_chain`` runs a list of jobs over a list of dates in order (a daily run is one date; a
backfill is many) and stops at the first failure, so a later job never runs on the output of a
failed one. A date's independent ingest jobs run side by side in the one session.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyspark.sql import SparkSession

from medallion.audit import AuditRecord, write_record
from medallion.config import Settings
from medallion.errors import JobError, MedallionError
from medallion.jobs.base import Job, JobContext
from medallion.lake import Lake
from medallion.lock import run_lock
from medallion.redact import redact

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the run did not finish (the process was killed or crashed)"

ProgressHook = Callable[[Job, dt.date, AuditRecord], None]


def run_job(
    job: Job,
    run_date: dt.date,
    settings: Settings,
    spark: SparkSession | None,
    options: dict[str, Any] | None = None,
) -> AuditRecord:
    """Run one job for one date under its lock; always leave an audit record.

    Returns the finished record; raises ``JobError`` (after recording it) when the job failed.
    """
    lake = Lake.from_root(settings.lake.root)  # the audit trail and the lock: as configured
    record = AuditRecord.start(job.name, settings.env, run_date)
    # Written first as "failed: interrupted" and overwritten when the run ends, so a run killed
    # outright (SIGKILL, power loss) still leaves a record of the attempt.
    record.status, record.error = "failed", INTERRUPTED
    write_record(lake.root, record)
    record.status, record.error = "running", None
    started = time.perf_counter()
    log.info("%s %s: started (run %s)", job.name, run_date, record.run_id)
    if spark is not None:
        # Tag the Spark jobs with the pipeline job: the Spark UI and event log (and so the
        # benchmark's per-job stage breakdown) then say which pipeline job spent the time.
        spark.sparkContext.setJobGroup(job.name, f"{job.name} {run_date} run {record.run_id}")
    try:
        with run_lock(lake.root, job.name, run_date, record.run_id, settings.lock.ttl_seconds):
            context = JobContext(
                spark=spark,  # type: ignore[arg-type]  # jobs with needs_spark=False never touch it
                settings=settings,
                lake=lake if spark is None else Lake.for_spark(lake.root, spark),
                run_date=run_date,
                run_id=record.run_id,
                options=options or {},
                job=job.name,
            )
            result = job.run(context)
    except BaseException as exc:
        message = _message(exc)
        record.finish("failed", getattr(exc, "tables", []) or [], error=message)
        write_record(lake.root, record)
        log.error(
            "%s %s: failed after %.1fs: %s",
            job.name,
            run_date,
            time.perf_counter() - started,
            message,
        )
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, MedallionError):
            raise
        log.debug("traceback:\n%s", redact(traceback.format_exc()))
        raise JobError(message) from exc
    record.finish("succeeded", result.tables, details=result.details)
    write_record(lake.root, record)
    log.info(
        "%s %s: succeeded in %.1fs: rows_in=%d rows_out=%d rows_quarantined=%d%s",
        job.name,
        run_date,
        record.duration_s or 0.0,
        record.rows_in,
        record.rows_out,
        record.rows_quarantined,
        f" ({result.message})" if result.message else "",
    )
    return record


def run_chain(
    jobs: Sequence[Job],
    dates: Sequence[dt.date],
    settings: Settings,
    spark_factory: Callable[[], SparkSession],
    options: dict[str, Any] | None = None,
    progress: ProgressHook | None = None,
) -> list[AuditRecord]:
    """Run every job for every date, dates outer, in order; stop at the first failure.

    A date's consecutive ingest jobs (``Job.ingest``) run side by side in the one session, up to
    ``spark.concurrent_ingests`` at a time, as the DAG runs them as parallel tasks: each is
    small, and much of its time is spent in single-task stages (one landing file) and driver
    work that leave the other cores idle. They all finish, and are all recorded, before a
    failure among them stops the chain.
    """
    spark = spark_factory() if any(job.needs_spark for job in jobs) else None
    records = []
    for run_date in dates:
        for group in _steps(jobs, settings.spark.concurrent_ingests if spark else 1):
            done = _run_group(group, run_date, settings, spark, options)
            for job, (record, _) in zip(group, done):
                if record is not None:
                    records.append(record)
                    if progress:
                        progress(job, run_date, record)
            failures = [error for _, error in done if error is not None]
            if failures:
                raise failures[0]
    return records


def _steps(jobs: Sequence[Job], concurrency: int) -> list[list[Job]]:
    """The jobs in order, with each run of consecutive ingests as one step when concurrent."""
    steps: list[list[Job]] = []
    for job in jobs:
        if concurrency > 1 and job.ingest and steps and all(j.ingest for j in steps[-1]):
            steps[-1].append(job)
        else:
            steps.append([job])
    return steps


def _run_group(
    group: list[Job],
    run_date: dt.date,
    settings: Settings,
    spark: SparkSession | None,
    options: dict[str, Any] | None,
) -> list[tuple[AuditRecord | None, BaseException | None]]:
    """Run the jobs of one step (one job, or ingests side by side); results in job order."""

    def attempt(job: Job) -> tuple[AuditRecord | None, BaseException | None]:
        try:
            return run_job(job, run_date, settings, spark, options), None
        except Exception as exc:  # recorded by run_job; re-raised by run_chain in job order
            return None, exc

    if len(group) == 1:
        record, error = attempt(group[0])
        if error is not None:
            raise error
        return [(record, None)]
    workers = min(len(group), settings.spark.concurrent_ingests)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        return list(pool.map(attempt, group))


def _message(exc: BaseException) -> str:
    if isinstance(exc, MedallionError):
        return redact(str(exc))
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # Py4J/Spark errors carry the JVM stack in the message; the first line says what happened.
    return redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
