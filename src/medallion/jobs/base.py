"""What a job is: a name, a one-line description and a function from a context to counts.

Jobs do the IO (read inputs, call pure transformations, write outputs) and report counts; the
runner around them owns the SparkSession, the lock, the audit record and the exit code.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from medallion.audit import TableCount
from medallion.config import Settings
from medallion.errors import JobError
from medallion.lake import Lake, commit_metadata, read_delta, read_delta_version


@dataclass(frozen=True)
class JobContext:
    """Everything a job may use. Config arrives typed; nothing reads the environment deeper down."""

    spark: SparkSession
    settings: Settings
    lake: Lake
    run_date: dt.date
    run_id: str
    options: dict[str, Any] = field(default_factory=dict)
    job: str = ""

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger("medallion.job")

    @property
    def commit_metadata(self) -> str:
        """The ``userMetadata`` every Delta commit of this run carries (run id, job, run date)."""
        return self.commit_metadata_with()

    def commit_metadata_with(self, **extra: object) -> str:
        """The run's ``userMetadata`` plus ``extra``: what a commit adds about itself (the stream's
        app and batch id, the bronze versions a silver table was computed from)."""
        return commit_metadata(
            self.run_id, job=self.job, run_date=self.run_date.isoformat(), **extra
        )


@dataclass
class JobResult:
    """Counts per table, plus job-specific details for the audit record."""

    tables: list[TableCount] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


JobFunction = Callable[[JobContext], JobResult]


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: JobFunction
    needs_spark: bool = True
    # An ingest reads only its own landing folder and writes only its own bronze tables, so the
    # ingests of one date may run at the same time (the DAG runs them as parallel tasks).
    ingest: bool = False
    # The landing tables ("<source>/<table>") an ingest reads for its run date: the DAG waits for
    # their delivery before it runs the job.
    landing: tuple[str, ...] = ()
    # A stream: each run takes every file that arrived since the last one (a checkpoint), so a
    # run depends on the runs before it, and a day's folder has no control file to wait for.
    streaming: bool = False

    @property
    def independent_dates(self) -> bool:
        """Whether its run for one date reads and writes nothing another date's run left: true of
        a batch ingest only (it replaces its date's bronze partition). Everything after bronze
        carries state across dates (silver's current state, gold's SCD2 history, the warehouse),
        as does a stream's checkpoint."""
        return self.ingest and not self.streaming


def check_conservation(table: TableCount) -> None:
    """Fail the job when rows were lost or invented between input and output plus quarantine."""
    if table.rows_in != table.rows_out + table.rows_quarantined:
        raise JobError(
            f"row conservation failed for {table.name}: rows_in={table.rows_in} but "
            f"rows_out={table.rows_out} + rows_quarantined={table.rows_quarantined} "
            f"= {table.rows_out + table.rows_quarantined}"
        )


def read_bronze(
    context: JobContext, source: str, table: str, version: int | None = None
) -> DataFrame:
    """Every version bronze holds for ``source/table`` (all run dates), at the table's
    ``version`` when given (a job that pins its inputs); a missing table is a JobError saying
    which ingest to run."""
    path = context.lake.bronze(source, table)
    if version is not None:
        return read_delta_version(context.spark, path, version)
    frame = read_delta(context.spark, path)
    if frame is None:
        raise JobError(
            f"bronze table {source}/{table} does not exist at {path}; run its *_to_bronze job first"
        )
    return frame
