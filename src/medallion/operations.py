"""Operator commands on lake tables: a table's history, restoring an earlier version, maintenance.

Every table under bronze/, quarantine/, silver/ and gold/ is a Delta table, so its history is its
transaction log: each commit has a version, a time, an operation, metrics and the userMetadata
of the run that made it. This module reads that log, rolls a table back to an earlier version
(Delta's RESTORE, itself a new commit: nothing is lost, a restore can be restored away) and
compacts and vacuums tables.

A restore or maintenance commit rewrites the table a pipeline job writes, so it runs under that
job's lock (:func:`writer_lock`), refused while a run holds it, and through the runner as a job of
its own (``restore``, ``maintain``), which leaves an audit record like any run. Nothing here parses
arguments or prints: the CLI does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.config import MIN_VACUUM_RETENTION_HOURS
from medallion.errors import JobError, UsageError
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.lake import (
    LAYERS,
    NO_COMMIT,
    Commit,
    Lake,
    delta_errors,
    is_delta_table,
    is_hidden,
    last_commit,
    latest_version,
    list_dir,
    operation_metrics,
    parse_commit_metadata,
    require_delta_or_absent,
    session_commit_metadata,
    table_label,
)
from medallion.lock import SERIAL_JOBS, LockHeld, locked_dates, run_lock

RESTORE_JOB = "restore"
MAINTAIN_JOB = "maintain"

# The job that writes each layer's tables; bronze and quarantine by the source's ingest job.
SILVER_WRITER = "bronze_to_silver"
GOLD_WRITER = "silver_to_gold"
_INGEST_OF_SOURCE = {"fx": "fx_json_to_bronze", "kafka": "kafka_events_to_bronze"}
# Layers whose tables sit one folder deeper (<layer>/<source>/<table>).
_SOURCE_LAYERS = ("bronze", "quarantine")


# --- names and paths ---------------------------------------------------------------------------


def table_name(name: str) -> str:
    """``/silver/orders/`` -> ``silver/orders``: the canonical form of a table name."""
    return "/".join(p for p in name.strip().strip("/").split("/") if p)


def writer_job(name: str) -> str:
    """The pipeline job that writes the table ``name`` (``silver/orders`` -> ``bronze_to_silver``).

    A restore or maintenance of the table must not overlap a run of this job.
    """
    parts = table_name(name).split("/")
    layer = parts[0]
    if layer in _SOURCE_LAYERS:
        source = parts[1]
        return _INGEST_OF_SOURCE.get(source, f"{source}_to_bronze")
    return SILVER_WRITER if layer == "silver" else GOLD_WRITER


def lake_tables(spark: SparkSession, lake: Lake) -> list[str]:
    """Every Delta table in the lake by name: bronze/*/*, quarantine/*/*, silver/*, gold/*."""
    names = []
    for layer in LAYERS:
        if layer in _SOURCE_LAYERS:
            candidates = [
                f"{layer}/{source}/{table}"
                for source in _visible(list_dir(spark, lake.path(layer)))
                for table in _visible(list_dir(spark, lake.path(layer, source)))
            ]
        else:
            candidates = [
                f"{layer}/{table}" for table in _visible(list_dir(spark, lake.path(layer)))
            ]
        names.extend(n for n in candidates if is_delta_table(spark, lake.table(n)))
    return names


def _visible(names: list[str]) -> list[str]:
    return [n for n in names if not is_hidden(n)]


def table_path(spark: SparkSession, lake: Lake, name: str) -> str:
    """The path of the Delta table ``name``; one sentence when there is none there.

    A bad name or a table that does not exist is a usage error (exit 2) listing what the lake
    holds; a folder of files that is not a Delta table is a ``JobError`` (exit 1).
    """
    path = lake.table(name)
    if require_delta_or_absent(spark, path):
        return path
    known = lake_tables(spark, lake)
    listed = ", ".join(known) if known else "none yet: run the pipeline first"
    raise UsageError(
        f"there is no table {table_name(name)} in the lake at {lake.root} (its tables: {listed})"
    )


# --- history -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    """One commit of a table, as an operator reads it."""

    version: int
    timestamp: dt.datetime  # UTC
    operation: str
    run_id: str | None
    job: str | None
    rows_written: int | None  # None: the operation writes no rows (OPTIMIZE, VACUUM, RESTORE)
    rows_deleted: int | None
    metrics: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        value = asdict(self)
        value["timestamp"] = iso_utc(self.timestamp)
        return value


def iso_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def history(spark: SparkSession, path: str, last: int | None = None) -> list[HistoryEntry]:
    """The table's commits, newest first (the last ``last`` of them, or all the log keeps)."""
    from delta.tables import DeltaTable

    with delta_errors(path):
        frame = DeltaTable.forPath(spark, path).history(last)
        rows = frame.select(
            "version",
            # Epoch millis, not the timestamp: PySpark turns timestamps into the Python
            # process's local time, and the operator wants UTC whatever the machine's zone.
            F.unix_millis("timestamp").alias("millis"),
            "operation",
            "userMetadata",
            "operationMetrics",
        ).collect()
    return [_entry(row) for row in sorted(rows, key=lambda r: -int(r["version"]))]


def _entry(row) -> HistoryEntry:
    metrics = operation_metrics(row["operationMetrics"])
    written, deleted = _row_counts(metrics)
    meta = parse_commit_metadata(row["userMetadata"])
    return HistoryEntry(
        version=int(row["version"]),
        timestamp=dt.datetime.fromtimestamp(int(row["millis"]) / 1000, dt.UTC),
        operation=row["operation"],
        run_id=meta.get("run_id"),
        job=meta.get("job"),
        rows_written=written,
        rows_deleted=deleted,
        metrics=metrics,
    )


def _row_counts(metrics: dict[str, int]) -> tuple[int | None, int | None]:
    """Rows a commit wrote and deleted: a write's output rows, a MERGE's inserted + updated (and
    deleted) rows, a DELETE's deleted rows; None for operations that move files, not rows."""
    if "numTargetRowsInserted" in metrics:  # MERGE
        written = metrics.get("numTargetRowsInserted", 0) + metrics.get("numTargetRowsUpdated", 0)
        return written, metrics.get("numTargetRowsDeleted", 0)
    if "numUpdatedRows" in metrics:  # UPDATE
        return metrics["numUpdatedRows"], None
    deleted = metrics.get("numDeletedRows")
    if "numOutputRows" in metrics:  # WRITE, CREATE, replaceWhere
        return metrics["numOutputRows"], deleted
    return None, deleted


# --- choosing the version to restore -------------------------------------------------------------


def parse_timestamp(value: str) -> dt.datetime:
    """An ISO-8601 date or date-time; without a zone it is UTC (as every time in the lake is)."""
    text = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise UsageError(
            f"--timestamp '{value}' is not a time; use ISO-8601 in UTC, e.g. 2025-01-15 or "
            "2025-01-15T06:30:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def resolve_version(
    spark: SparkSession,
    path: str,
    *,
    version: int | None = None,
    timestamp: dt.datetime | None = None,
) -> int:
    """The version a restore goes to: ``version`` checked against the log, or the version that
    was current at ``timestamp`` (the latest commit at or before it), as Delta's time travel
    reads it. A version the log no longer holds is a usage error naming the available range."""
    if (version is None) == (timestamp is None):
        raise UsageError("give exactly one of --version or --timestamp")
    entries = history(spark, path)
    label = table_label(path)
    earliest, latest = entries[-1], entries[0]
    if version is not None:
        if not earliest.version <= version <= latest.version:
            raise UsageError(
                f"{label} has no version {version}: its log holds versions "
                f"{earliest.version} to {latest.version} (see medallion history --table {label})"
            )
        return version
    assert timestamp is not None
    before = [e for e in entries if e.timestamp <= timestamp]
    if not before:
        raise UsageError(
            f"{label} has no version as of {iso_utc(timestamp)}: its earliest commit in the log "
            f"is version {earliest.version} at {iso_utc(earliest.timestamp)}"
        )
    return before[0].version


# --- the writer's lock ---------------------------------------------------------------------------


@contextlib.contextmanager
def writer_lock(
    lake_root: str, job: str, run_id: str, ttl_seconds: int, run_date: dt.date
) -> Iterator[None]:
    """Hold the lock(s) of ``job``, the job that writes a table, for the block.

    A job that keeps one state across dates (silver, gold, the stream) has one lock for all
    dates. A bronze ingest has a lock per date: every lock of it that exists now is taken, so a
    restore or maintenance never overlaps a running ingest of any date. A live holder refuses
    the block with ``LockHeld`` naming it (exit 1); a stale lock is broken as any run breaks it.
    """
    with contextlib.ExitStack() as stack:
        for date in _lock_dates(lake_root, job, run_date):
            stack.enter_context(run_lock(lake_root, job, date, run_id, ttl_seconds))
        yield


def _lock_dates(lake_root: str, job: str, run_date: dt.date) -> list[dt.date]:
    if job in SERIAL_JOBS:
        return [run_date]  # one lock for every date
    return locked_dates(lake_root, job)


# --- restore -----------------------------------------------------------------------------------


def restore_table(spark: SparkSession, path: str, version: int, *, metadata: str) -> Commit:
    """Roll the table back to ``version`` in one RESTORE commit tagged with ``metadata``.

    The table's current version is not lost: RESTORE is a new commit, and history shows every
    version before it. Restoring to the current version makes no commit (operation ``NONE``).
    """
    from delta.tables import DeltaTable

    before = latest_version(spark, path)
    if version == before:
        return Commit(path, before, NO_COMMIT)
    try:
        with session_commit_metadata(spark, metadata), delta_errors(path):
            DeltaTable.forPath(spark, path).restoreToVersion(version)
    except JobError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise JobError(
            f"restoring {table_label(path)} to version {version} failed ({first}); the data "
            "files of a version older than lake.vacuum_retention_hours may have been vacuumed, "
            "and the table is unchanged"
        ) from exc
    return last_commit(spark, path)


def restore_job(name: str, version: int) -> Job:
    """The ``restore`` run of the table ``name`` to ``version``, for ``runner.run_job``."""
    label = table_name(name)

    def run(context: JobContext) -> JobResult:
        spark, settings = context.spark, context.settings
        path = context.lake.table(label)
        with (
            _refusing(label, "restore"),
            writer_lock(
                context.lake.root,
                writer_job(label),
                context.run_id,
                settings.lock.ttl_seconds,
                context.run_date,
            ),
        ):
            from_version = latest_version(spark, path)
            commit = restore_table(spark, path, version, metadata=context.commit_metadata)
        restored = commit.operation != NO_COMMIT
        details = {
            "table": label,
            "from_version": from_version,
            "to_version": version,
            "commit_version": commit.version if restored else None,
            "metrics": commit.metrics,
        }
        message = (
            f"{label} restored to version {version} (was {from_version}; the restore is version "
            f"{commit.version})"
            if restored
            else f"{label} is already at version {version}; nothing to restore"
        )
        versions = {label: commit.version}
        return JobResult([TableCount(label, versions=versions)], details, message)

    return Job(RESTORE_JOB, f"restore {label} to version {version}", run)


@contextlib.contextmanager
def _refusing(label: str, action: str) -> Iterator[None]:
    try:
        yield
    except LockHeld as exc:
        raise LockHeld(f"refusing to {action} {label} while its writer runs: {exc}") from None


# --- maintain ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Maintained:
    """What maintenance did to one table."""

    table: str
    files_before: int
    files_after: int
    compacted_removed: int  # small files the compaction replaced (still on disk until vacuumed)
    compacted_added: int
    vacuumed_files: int  # files VACUUM deleted (removed by commits older than the retention)
    version: int  # the table's version after the maintenance commits

    def describe(self) -> str:
        compaction = (
            f"compacted {self.compacted_removed} small files into {self.compacted_added}"
            if self.compacted_removed
            else "nothing to compact"
        )
        return (
            f"{self.table}: {compaction} ({self.files_before} -> {self.files_after} files), "
            f"vacuumed {self.vacuumed_files} unreferenced files, now version {self.version}"
        )


def maintain_table(
    spark: SparkSession, path: str, *, retention_hours: float, metadata: str
) -> Maintained:
    """Compact the table's small files (OPTIMIZE) and delete files no version within
    ``retention_hours`` still references (VACUUM); both commits carry ``metadata``.

    Compaction rewrites small files into larger ones in a new commit (the data does not change;
    the old files stay for the versions before it). VACUUM then deletes the files that commits
    older than the retention removed, which is what limits how far back ``restore`` and time
    travel can go. The config keeps the retention at or above Delta's own 7-day floor.
    """
    from delta.tables import DeltaTable

    label = table_label(path)
    with session_commit_metadata(spark, metadata), delta_errors(path):
        table = DeltaTable.forPath(spark, path)
        files_before = _num_files(table)
        compaction = table.optimize().executeCompaction().select("metrics").first()
        vacuum_from = latest_version(spark, path)
        table.vacuum(retention_hours)
        files_after = _num_files(table)
    stats = compaction["metrics"] if compaction is not None else None
    return Maintained(
        table=label,
        files_before=files_before,
        files_after=files_after,
        compacted_removed=int(stats["numFilesRemoved"]) if stats else 0,
        compacted_added=int(stats["numFilesAdded"]) if stats else 0,
        vacuumed_files=_vacuumed_files(spark, path, vacuum_from),
        version=latest_version(spark, path),
    )


def _num_files(table) -> int:
    return int(table.detail().select("numFiles").first()["numFiles"])


def _vacuumed_files(spark: SparkSession, path: str, after: int) -> int:
    """Files deleted by the VACUUM just run: its ``VACUUM END`` commit's metric (Delta logs a
    vacuum as two commits, START and END, that change no data)."""
    for entry in history(spark, path, last=3):
        if entry.version > after and entry.operation == "VACUUM END":
            return entry.metrics.get("numDeletedFiles", 0)
    return 0


def maintain_job(names: list[str], retention_hours: float) -> Job:
    """The ``maintain`` run over the tables ``names``, for ``runner.run_job``.

    Tables are taken writer by writer, each group under its writer's lock. A group whose writer
    is running is skipped and the run fails at the end naming it (exit 1), after maintaining
    the rest: maintenance is safe to run again.
    """
    if retention_hours < MIN_VACUUM_RETENTION_HOURS:
        raise UsageError(
            f"vacuum retention {retention_hours} hours is below Delta's floor of "
            f"{MIN_VACUUM_RETENTION_HOURS} hours"
        )
    labels = [table_name(n) for n in names]

    def run(context: JobContext) -> JobResult:
        groups: dict[str, list[str]] = {}
        for label in labels:
            groups.setdefault(writer_job(label), []).append(label)
        done: list[Maintained] = []
        skipped: list[str] = []
        for job, tables in groups.items():
            try:
                with writer_lock(
                    context.lake.root,
                    job,
                    context.run_id,
                    context.settings.lock.ttl_seconds,
                    context.run_date,
                ):
                    for label in tables:
                        result = maintain_table(
                            context.spark,
                            context.lake.table(label),
                            retention_hours=retention_hours,
                            metadata=context.commit_metadata,
                        )
                        context.log.info("maintain: %s", result.describe())
                        done.append(result)
            except LockHeld as exc:
                skipped.append(f"{', '.join(tables)} ({exc})")
        counts = [TableCount(m.table, versions={m.table: m.version}) for m in done]
        details = {
            "retention_hours": retention_hours,
            "tables": {m.table: asdict(m) for m in done},
            "skipped": skipped,
        }
        if skipped:
            error = JobError(
                f"maintained {len(done)} table(s) but skipped those whose writer is running: "
                f"{'; '.join(skipped)}; run medallion maintain again when it has finished"
            )
            error.tables = counts  # type: ignore[attr-defined]  # the runner records them
            raise error
        return JobResult(counts, details, f"maintained {len(done)} table(s)")

    return Job(MAINTAIN_JOB, f"compact and vacuum {len(labels)} table(s)", run)
