"""The lake's pinned layout and thin Delta Lake read/write helpers.

Layout (relative to ``lake.root``)::

    landing/<source>/<table>/dt=YYYY-MM-DD/<files>       raw extracts (files, not a table)
    bronze/<source>/<table>/                             Delta, partitioned by _run_date
    quarantine/<source>/<table>/                         Delta, partitioned by _run_date
    silver/<table>/            gold/<table>/             Delta
    _audit/run_date=YYYY-MM-DD/<run_id>.json
    _checkpoints/<stream>/     _quality/run_date=YYYY-MM-DD/    _reports/    _locks/

Every table under bronze/, quarantine/, silver/ and gold/ is a Delta table, so each write is one
atomic commit to the table's transaction log: readers see whole commits only, on a local disk
and on S3 alike, and nothing here stages, renames or repairs. Every commit carries the run that
made it in its ``userMetadata`` (a small JSON object, :func:`commit_metadata`), and each write
helper returns the :class:`Commit` it made (version, operation, metrics) for the audit record.

Errors a user or a neighbour can cause are one sentence naming the table (``JobError``): a path
that holds files but is not a Delta table, an incoming schema that conflicts with the table's, a
concurrent writer's conflicting commit. Delta commits are all-or-nothing, so nothing is left
half-written when one of them is raised.

File-system work outside tables (landing folders, checkpoints) goes through Hadoop's FileSystem
API, so the same code runs on a local folder and on S3 (EMRFS or s3a). The small files beside the
tables (audit records, quality results, reports) are written whole by :func:`write_text_atomic`,
and only this module spells the layout: others ask it for paths (:class:`Lake`,
:func:`run_date_folder`, :func:`run_date_of`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medallion.errors import JobError, UsageError

# PySpark is imported where it is used: the paths and the plain-file helpers load without it, so
# the audit trail (``medallion audit``) costs no Spark import.
if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import types as T

log = logging.getLogger(__name__)

RUN_DATE = "_run_date"
# The key of the per-date folders of _audit/ and _quality/ (``run_date=YYYY-MM-DD``).
RUN_DATE_KEY = "run_date"
# How many times a replaceWhere refused by a concurrent commit is made again (see replace_where).
REPLACE_RETRIES = 2
FIRST_COMMIT = "00000000000000000000.json"  # a Delta log's version 0
LOG_DIR = "_delta_log"
# A commit file of the Delta log: the version, zero-padded to 20 digits (Delta's PROTOCOL.md).
_COMMIT_FILE = re.compile(r"(\d{20})\.json")
DELTA = "delta"
# The session setting Delta reads for the userMetadata of commits made by SQL/DML (MERGE, DELETE,
# OPTIMIZE, RESTORE); DataFrame writes take the same value as a writer option.
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
LAYERS = ("bronze", "quarantine", "silver", "gold")
NO_COMMIT = "NONE"  # Commit.operation when a write changed nothing and Delta committed nothing
# The table property that makes Delta record each commit's row changes (its change data feed).
# Bronze tables are created with it, so silver can ask which keys a delivery changed instead of
# recomputing every key (see :func:`read_changes` and jobs/bronze_to_silver.py).
CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
# Commits that rewrite files without changing any row (compaction) or touch no file (VACUUM):
# a reader looking for the last commit that changed a table's content passes over them.
LAYOUT_OPERATIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})

# Session settings are shared by every thread of the process; the code that sets them (the MERGEs
# of silver and gold, restore and maintain) holds this while it does.
_SESSION_CONF_LOCK = threading.RLock()


@dataclass(frozen=True)
class Lake:
    """Paths in the lake. ``root`` is a local folder (made absolute) or a URI such as ``s3://b/p``."""

    root: str

    @classmethod
    def from_root(cls, root: str) -> Lake:
        if "://" in root:
            return cls(root.rstrip("/"))
        return cls(os.path.abspath(root))

    @classmethod
    def for_spark(cls, root: str, spark: SparkSession) -> Lake:
        """The lake as Spark addresses it: the one place an ``s3://`` root is mapped.

        On EMR, ``s3://`` is EMRFS and stays. Where the session's Hadoop serves no ``s3://``
        (local Spark, a cluster without EMRFS), the root is read as ``s3a://``, Hadoop's S3
        connector, and S3A is pointed at the endpoint of the AWS environment variables
        (:func:`medallion.spark.configure_s3a`). Outside Spark (fsspec, deltalake) both
        schemes name the same objects, so the lake's files are the same whichever one wrote them.
        """
        from medallion.spark import configure_s3a, serves_scheme  # Spark only where Spark is

        lake = cls.from_root(root)
        if lake.root.startswith("s3://") and not serves_scheme(spark, "s3"):
            lake = cls("s3a://" + lake.root.removeprefix("s3://"))
        if lake.root.startswith("s3a://"):
            configure_s3a(spark, lake.root)
        return lake

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file:")

    @property
    def on_s3(self) -> bool:
        """True for an ``s3://`` (or ``s3a://``) lake, which a local session reads with S3A."""
        return self.root.startswith(("s3://", "s3a://"))

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def landing(self, source: str, table: str, run_date: dt.date | None = None) -> str:
        base = self.path("landing", source, table)
        return f"{base}/dt={run_date.isoformat()}" if run_date else base

    def bronze(self, source: str, table: str) -> str:
        return self.path("bronze", source, table)

    def quarantine(self, source: str, table: str) -> str:
        return self.path("quarantine", source, table)

    def silver(self, table: str) -> str:
        return self.path("silver", table)

    def gold(self, table: str) -> str:
        return self.path("gold", table)

    def table(self, name: str) -> str:
        """The path of a table named ``layer/table`` (``silver/orders``, ``bronze/crm/accounts``).

        A name outside the four table layers is a usage error naming the layers.
        """
        parts = [p for p in name.strip("/").split("/") if p]
        if len(parts) < 2 or parts[0] not in LAYERS or any(p in (".", "..") for p in parts):
            raise UsageError(
                f"'{name}' is not a lake table: name it LAYER/TABLE with LAYER one of "
                f"{', '.join(LAYERS)} (e.g. silver/orders or bronze/crm/accounts)"
            )
        return self.path(*parts)

    def audit_dir(self, run_date: dt.date | None = None) -> str:
        base = self.path("_audit")
        return f"{base}/{run_date_folder(run_date)}" if run_date else base

    def audit_record(self, run_date: dt.date, run_id: str) -> str:
        """The audit record of one run: ``_audit/run_date=D/<run_id>.json``."""
        return f"{self.audit_dir(run_date)}/{run_id}.json"

    def audit_records(self, run_date: dt.date | None = None) -> str:
        """A glob of the audit records of ``run_date``, or of every date when None."""
        return f"{self.audit_dir()}/{run_date_folder(run_date)}/*.json"

    def checkpoint(self, stream: str) -> str:
        return self.path("_checkpoints", stream)

    def quality_dir(self, run_date: dt.date) -> str:
        return self.path("_quality", run_date_folder(run_date))

    def quality_files(self, name: str) -> str:
        """A glob of the file ``name`` in the quality folder of every run date."""
        return self.path("_quality", run_date_folder(None), name)

    def reports_dir(self) -> str:
        return self.path("_reports")

    def locks_dir(self) -> str:
        return self.path("_locks")


def s3_endpoint(environ: Mapping[str, str]) -> str | None:
    """The S3 endpoint the standard AWS environment names (``AWS_ENDPOINT_URL_S3``, else
    ``AWS_ENDPOINT_URL``; a local S3 server in the tests), or None for AWS's own endpoints.
    Spark's S3A settings and delta-rs's storage options both take it from here."""
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def run_date_folder(run_date: dt.date | None) -> str:
    """The folder of one run date under ``_audit/`` and ``_quality/`` (``run_date=2025-01-13``),
    or the glob of every run date's folder (``run_date=*``) when ``run_date`` is None."""
    return f"{RUN_DATE_KEY}={run_date.isoformat() if run_date else '*'}"


def run_date_of(path: str) -> dt.date | None:
    """The run date of a path inside a run-date folder (:func:`run_date_folder`), or None."""
    for part in reversed(path.rstrip("/").split("/")):
        key, sep, value = part.partition("=")
        if sep and key == RUN_DATE_KEY:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                return None
    return None


# --- files outside tables (audit records, quality results, reports) ---------------------------


def write_text_atomic(path: str, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all, and return ``path``.

    Locally (a path or a ``file:`` URI) it goes to a hidden temporary name in the same folder,
    is flushed and fsynced, then renamed over ``path``: a rename within a folder is atomic, so
    a reader, or a crash, never meets half a file. On S3 (or another fsspec URI) it is one PUT,
    which the store makes visible whole.
    """
    if "://" in path and not path.startswith("file:"):
        import fsspec

        with fsspec.open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path
    local = (
        path.removeprefix("file://") if path.startswith("file://") else path.removeprefix("file:")
    )
    folder = os.path.dirname(local) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(local)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, local)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path


# --- Hadoop FileSystem access (local and S3 alike) -------------------------------------------


def is_hidden(name: str) -> bool:
    """Spark's rule for a file or folder name that is not data: it starts with ``.``, or with
    ``_`` and is not a ``column=value`` partition folder (``_delta_log``, ``_SUCCESS``,
    ``.part-0.crc`` are hidden; ``_run_date=2025-01-13`` is not)."""
    return name.startswith(".") or (name.startswith("_") and "=" not in name)


def is_hidden_path(relative: str) -> bool:
    """True when any part of the ``/``-separated ``relative`` path is hidden (:func:`is_hidden`)."""
    return any(is_hidden(part) for part in relative.split("/") if part)


def _hadoop_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    return jvm.org.apache.hadoop.fs.Path(path)


def _fs(spark: SparkSession, path: str):
    hpath = _hadoop_path(spark, path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, hpath = _fs(spark, path)
    return bool(fs.exists(hpath))


def delete_path(spark: SparkSession, path: str) -> None:
    fs, hpath = _fs(spark, path)
    if fs.exists(hpath):
        fs.delete(hpath, True)


def list_dir(spark: SparkSession, path: str) -> list[str]:
    """Names of the entries directly under ``path`` (empty when it does not exist)."""
    fs, hpath = _fs(spark, path)
    if not fs.exists(hpath):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(hpath))


def has_data_files(spark: SparkSession, path: str) -> bool:
    """True when ``path`` holds a data file: one with no hidden part (:func:`is_hidden`) in its
    path below ``path``.

    Hidden folders are not entered: a Delta log is never data, and a concurrent creator's first
    commit (``_delta_log/00000000000000000000.json``) landing between a "no table here" answer
    and this listing must not make the folder look like foreign files.
    """
    fs, hpath = _fs(spark, path)
    if not fs.exists(hpath):
        return False
    folders = [hpath]
    while folders:
        for status in fs.listStatus(folders.pop()):
            if is_hidden(status.getPath().getName()):
                continue
            if not status.isDirectory():
                return True
            folders.append(status.getPath())
    return False


# --- Delta tables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    """One commit a write made: the table's new version, Delta's operation name and metrics."""

    path: str
    version: int
    operation: str
    metrics: dict[str, int] = field(default_factory=dict)
    # The commit's ``userMetadata`` as :func:`commit_metadata` wrote it (empty for other writers).
    metadata: dict = field(default_factory=dict)

    @property
    def rows_written(self) -> int:
        """Rows the commit wrote: output rows of a write; inserted + updated + deleted rows of
        a MERGE (the rows it changed)."""
        metrics = self.metrics
        if "numTargetRowsInserted" in metrics:
            return sum(
                metrics.get(f"numTargetRows{kind}", 0)
                for kind in ("Inserted", "Updated", "Deleted")
            )
        return metrics.get("numOutputRows", 0)


def commit_metadata(run_id: str, **extra: object) -> str:
    """The ``userMetadata`` of a commit: the run that made it (and e.g. its job), as JSON."""
    return json.dumps({"run_id": run_id, **extra}, sort_keys=True)


def parse_commit_metadata(user_metadata: str | None) -> dict:
    """A commit's ``userMetadata`` as the dict :func:`commit_metadata` wrote (empty otherwise)."""
    if not user_metadata:
        return {}
    try:
        value = json.loads(user_metadata)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run_id_of(user_metadata: str | None) -> str | None:
    """The run id a commit's ``userMetadata`` names, or None (a commit made outside the pipeline)."""
    return parse_commit_metadata(user_metadata).get("run_id")


def operation_metrics(raw: dict | None) -> dict[str, int]:
    """Delta's ``operationMetrics`` (strings) as integers; non-numeric entries are left out."""
    return {k: int(v) for k, v in (raw or {}).items() if _is_int(v)}


def is_delta_table(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, path))


def require_delta_or_absent(spark: SparkSession, path: str) -> bool:
    """True when ``path`` is a Delta table, False when nothing is there yet.

    Files that are not a Delta table (say, a Parquet folder left from before the migration, or a
    table written by another tool) are refused with one sentence: writing over them would
    destroy them, reading them would bypass any transaction log they might belong to.
    """
    if is_delta_table(spark, path):
        return True
    if has_data_files(spark, path):
        raise JobError(
            f"{path} holds files but is not a Delta table (no _delta_log); move it aside, or "
            "convert it (CONVERT TO DELTA), before the pipeline reads or writes it"
        )
    return False


def read_delta(
    spark: SparkSession, path: str, schema: T.StructType | None = None
) -> DataFrame | None:
    """Read a Delta table's latest version; None (or an empty frame of ``schema``) when absent."""
    if not require_delta_or_absent(spark, path):
        return spark.createDataFrame([], schema) if schema is not None else None
    with delta_errors(path):
        return spark.read.format(DELTA).load(path)


def last_commit(spark: SparkSession, path: str) -> Commit:
    """The table's latest commit, as :class:`Commit`."""
    return read_commit(spark, path, latest_version(spark, path))


def latest_version(spark: SparkSession, path: str) -> int:
    """The table's latest version, from its log's listing alone (no commit file is read)."""
    versions = commit_versions(spark, path)
    if not versions:
        raise JobError(f"{table_label(path)} is not a Delta table (its log has no commit)")
    return versions[-1]


def table_version(spark: SparkSession, path: str) -> int | None:
    """The latest version of a Delta table, or None when there is no table at ``path``."""
    if not is_delta_table(spark, path):
        return None
    return latest_version(spark, path)


def commit_versions(spark: SparkSession, path: str) -> list[int]:
    """The versions whose commit files are in the table's log, oldest first.

    Read from the log's file names (one ``<version>.json`` per commit, Delta's protocol), one
    listing and no Spark query: the write helpers ask this around every write, and a history
    query costs a plan, an analysis and a job each time. Log clean-up removes old commits only,
    so the newest one is always listed.
    """
    fs, log_dir = _fs(spark, f"{path.rstrip('/')}/{LOG_DIR}")
    if not fs.exists(log_dir):
        return []
    names = (status.getPath().getName() for status in fs.listStatus(log_dir))
    return sorted(int(m.group(1)) for m in map(_COMMIT_FILE.fullmatch, names) if m)


def read_commit(spark: SparkSession, path: str, version: int) -> Commit:
    """The commit of ``version`` from its ``commitInfo`` action, as the table's history shows
    it (operation, metrics); a commit without one (written by another tool) has operation
    ``UNKNOWN`` and no metrics."""
    return _as_commit(path, version, _commit_info(spark, path, version))


def _as_commit(path: str, version: int, info: dict) -> Commit:
    metrics = operation_metrics(info.get("operationMetrics"))
    metadata = parse_commit_metadata(info.get("userMetadata"))
    return Commit(path, version, info.get("operation", "UNKNOWN"), metrics, metadata)


def last_content_commit(spark: SparkSession, path: str, look_back: int = 20) -> Commit | None:
    """The table's latest commit that changed its content: compaction and VACUUM commits are
    passed over. None when none of the last ``look_back`` commits did (or the log holds none)."""
    for version in list(reversed(commit_versions(spark, path)))[:look_back]:
        commit = read_commit(spark, path, version)
        if commit.operation not in LAYOUT_OPERATIONS:
            return commit
    return None


def read_delta_version(spark: SparkSession, path: str, version: int) -> DataFrame:
    """The table at ``version`` (time travel): a job that reads a table more than once reads the
    same snapshot each time, whatever another writer commits meanwhile."""
    with delta_errors(path):
        return spark.read.format(DELTA).option("versionAsOf", version).load(path)


class ChangeFeedUnavailable(Exception):
    """The change data feed cannot say what changed between two versions: the table does not
    record one (created without :data:`CHANGE_FEED`, or before it was enabled) or the commits
    in between are gone (log clean-up, VACUUM). The caller recomputes instead."""


def read_changes(spark: SparkSession, path: str, after: int, until: int) -> DataFrame:
    """The rows the commits ``after`` + 1 .. ``until`` of the table inserted, deleted or updated
    (Delta's change data feed, pre- and post-images both): the table's columns plus
    ``_change_type``, ``_commit_version`` and ``_commit_timestamp``.

    Raises :class:`ChangeFeedUnavailable` when the feed cannot answer for that range. Delta
    says so only when the read is planned for execution (resolving its schema succeeds), so it is
    checked here by taking one row, and the caller can fall back before it builds on the frame.
    ``after`` = ``until`` is a valid empty range.
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    if after >= until:
        return read_delta_version(spark, path, until).limit(0)
    try:
        frame = (
            spark.read.format(DELTA)
            .option("readChangeFeed", "true")
            .option("startingVersion", after + 1)
            .option("endingVersion", until)
            .load(path)
        )
        frame.isEmpty()  # plans the scan: a range the feed cannot answer fails here
    except (PySparkException, Py4JJavaError) as exc:
        raise ChangeFeedUnavailable(f"{table_label(path)}: {str(exc).splitlines()[0]}") from exc
    return frame


def _commit_info(spark: SparkSession, path: str, version: int) -> dict:
    fs, file = _fs(spark, f"{path.rstrip('/')}/{LOG_DIR}/{version:020d}.json")
    jvm = spark.sparkContext._jvm
    stream = fs.open(file)
    try:
        text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    for line in text.splitlines():
        if line.strip():
            action = json.loads(line)
            if "commitInfo" in action:
                return action["commitInfo"]
    return {}


def _is_int(value: object) -> bool:
    try:
        int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _writer(df: DataFrame, metadata: str, partition_by: list[str] | None):
    writer = df.write.format(DELTA).option("userMetadata", metadata)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    return writer


def replace_where(
    df: DataFrame,
    path: str,
    *,
    column: str,
    value: dt.date | str,
    metadata: str,
    partition_by: list[str] | None = None,
    txn: tuple[str, int] | None = None,
    properties: Mapping[str, str] | None = None,
) -> Commit:
    """Make the rows of ``path`` with ``column = value`` exactly ``df``, in one commit.

    Delta's ``replaceWhere``: the rows matching the predicate are removed and ``df`` is added in
    the same commit (an empty ``df`` just removes them), so a rerun of a date replaces exactly
    that date's contribution. A new table is first created, empty, partitioned by
    ``partition_by`` (see :func:`create_if_absent`): the ingests of two dates may write one
    table at once, and Delta lets their disjoint replaceWhere commits through only once the
    table exists. ``txn`` = (app id, version) makes the write idempotent (see :func:`append`);
    ``properties`` are the new table's properties (e.g. :data:`CHANGE_FEED`).
    """
    literal = value.isoformat() if isinstance(value, dt.date) else str(value)
    spark = df.sparkSession
    before = create_if_absent(spark, path, df.schema, partition_by, properties)
    writer = _writer(df, metadata, None).mode("overwrite")
    writer = writer.option("replaceWhere", f"`{column}` = '{literal}'")
    writer = _with_txn(writer, txn)
    # Replacing one value's rows is idempotent, so a commit refused because another writer
    # committed first (typically the creator of a table two dates' ingests made at once) is
    # simply made again on top of the winner's; only a repeated refusal is reported.
    for attempt in range(REPLACE_RETRIES + 1):
        try:
            with delta_errors(path):
                writer.save(path)
            break
        except CommitConflict:
            if attempt == REPLACE_RETRIES:
                raise
            log.info("%s: a concurrent commit won; replacing %s again", table_label(path), literal)
            time.sleep(0.5 * (attempt + 1))
    return _new_commit(spark, path, before, metadata)


def create_if_absent(
    spark: SparkSession,
    path: str,
    schema: T.StructType,
    partition_by: list[str] | None,
    properties: Mapping[str, str] | None = None,
) -> int:
    """Create an empty Delta table at ``path`` unless one is there; return its version.

    Creating it empty, in a commit of its own, keeps the race of two first writers harmless: of
    two creations only one commits, the other finds the table made and goes on, and no data
    file is ever written into a folder that has no log yet (which a concurrent writer would
    take for foreign files).
    """
    from delta.tables import DeltaTable

    if not require_delta_or_absent(spark, path):
        builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        for key, value in (properties or {}).items():
            builder = builder.property(key, value)
        try:
            with delta_errors(path):
                builder.execute()
        except Exception:
            # A concurrent creator's commit won (a conflict, or its log folder made ours see a
            # "non-empty location"): wait the moment it takes to land, then write into it.
            if not _wait_for_table(spark, path):
                raise
            log.info("%s was created by a concurrent run; writing into it", table_label(path))
    return latest_version(spark, path)


def _wait_for_table(spark: SparkSession, path: str, seconds: float = 60.0) -> bool:
    """Wait for a concurrent creator's first commit to land at ``path``; True once it has.

    The log's first commit file is looked for on the file system, not through
    ``DeltaTable.isDeltaTable``: our failed creation left a cached ``DeltaLog`` for the path
    that saw no commit, and that cache keeps answering "not a table" after the other writer's
    commit has landed. Once the file is there the cache is dropped, so the write that follows
    reads the table as it now is.
    """
    fs, first = _fs(spark, f"{path.rstrip('/')}/_delta_log/{FIRST_COMMIT}")
    deadline = time.monotonic() + seconds
    while not fs.exists(first):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    return is_delta_table(spark, path)


def _new_commit(spark: SparkSession, path: str, before: int | None, metadata: str) -> Commit:
    """The commit a write just made, or a no-op commit at the old version when Delta made none
    (an empty write with nothing to replace, or an idempotent write it had already seen).

    The newest commit after ``before`` that carries this write's ``metadata``: with concurrent
    writers (two dates' ingests of one table) the table's latest commit may be the other's.
    """
    floor = -1 if before is None else before
    for version in reversed(commit_versions(spark, path)):
        if version <= floor:
            break
        info = _commit_info(spark, path, version)
        if info.get("userMetadata") == metadata:
            return _as_commit(path, version, info)
    return Commit(path, max(floor, 0), NO_COMMIT)


def overwrite(
    df: DataFrame, path: str, *, metadata: str, partition_by: list[str] | None = None
) -> Commit:
    """Replace the whole table with ``df`` in one commit (the old version stays in history).

    The schema must match the table's: a conflicting one is refused, never silently replaced.
    """
    spark = df.sparkSession
    before = latest_version(spark, path) if require_delta_or_absent(spark, path) else None
    with delta_errors(path):
        _writer(df, metadata, partition_by).mode("overwrite").save(path)
    return _new_commit(spark, path, before, metadata)


def append(
    df: DataFrame,
    path: str,
    *,
    metadata: str,
    partition_by: list[str] | None = None,
    txn: tuple[str, int] | None = None,
    properties: Mapping[str, str] | None = None,
) -> Commit:
    """Append ``df`` in one commit and return it (operation ``NONE`` when Delta made none).

    With ``txn`` = (app id, version) the write is idempotent: Delta records the pair in the
    commit and silently skips any later write with the same app id and a version at or below the
    recorded one (the exactly-once pattern for ``foreachBatch``). A skipped write makes no
    commit, which this function reports as a ``NONE`` commit at the old version. ``properties``
    are the table's properties when this append creates it (e.g. :data:`CHANGE_FEED`).
    """
    spark = df.sparkSession
    if properties:
        # A table with properties is created first, empty, in a commit of its own.
        before = create_if_absent(spark, path, df.schema, partition_by, properties)
    else:
        before = latest_version(spark, path) if require_delta_or_absent(spark, path) else None
    writer = _with_txn(_writer(df, metadata, partition_by).mode("append"), txn)
    with delta_errors(path):
        writer.save(path)
    return _new_commit(spark, path, before, metadata)


def _with_txn(writer, txn: tuple[str, int] | None):
    if txn is None:
        return writer
    app_id, version = txn
    return writer.option("txnAppId", app_id).option("txnVersion", str(version))


@contextlib.contextmanager
def session_commit_metadata(spark: SparkSession, metadata: str) -> Iterator[None]:
    """Tag the SQL/DML commits (MERGE, DELETE, RESTORE, OPTIMIZE) made inside the block.

    Delta reads these from the session, not from a writer, so they are set for the block and
    restored after it, under a process-wide lock (the session is shared by every thread).
    """
    conf = spark.conf
    with _SESSION_CONF_LOCK:
        previous = conf.get(USER_METADATA_CONF, None)
        conf.set(USER_METADATA_CONF, metadata)
        try:
            yield
        finally:
            if previous is None:
                conf.unset(USER_METADATA_CONF)
            else:
                conf.set(USER_METADATA_CONF, previous)


def merge_into(
    spark: SparkSession,
    path: str,
    merge: Callable[[], object],
    *,
    metadata: str,
) -> Commit:
    """Run ``merge`` (a function that builds and executes a ``DeltaTable.merge`` or other DML on
    ``path``) with the run's commit metadata, and return the commit it made."""
    before = table_version(spark, path)
    with session_commit_metadata(spark, metadata), delta_errors(path):
        merge()
    return _new_commit(spark, path, before, metadata)


def merge_diff(
    spark: SparkSession, path: str, diff: DataFrame, keys: Sequence[str], *, metadata: str
) -> Commit:
    """Apply a table diff (:func:`medallion.transforms.common.table_diff`) to the Delta table at
    ``path`` in one MERGE keyed (null-safe) by ``keys``: delete the rows marked ``delete``,
    update the matched others, insert the rest. Files holding no key of ``diff`` are untouched.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from medallion.transforms.common import DELETE, DIFF_OP

    condition = F.lit(True)
    for key in keys:
        condition = condition & F.col(f"t.`{key}`").eqNullSafe(F.col(f"s.`{key}`"))
    values = {c: F.col(f"s.`{c}`") for c in diff.columns if c != DIFF_OP}
    is_delete = F.col(f"s.{DIFF_OP}") == F.lit(DELETE)

    def merge() -> None:
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(diff.alias("s"), condition)
            .whenMatchedDelete(condition=is_delete)
            .whenMatchedUpdate(set=values)
            .whenNotMatchedInsert(condition=~is_delete, values=values)
            .execute()
        )

    return merge_into(spark, path, merge, metadata=metadata)


def merge_recomputed(
    spark: SparkSession,
    path: str,
    desired: DataFrame,
    existing: DataFrame,
    keys: Sequence[str],
    metadata: str,
) -> Commit:
    """Make the table at ``path`` (read as ``existing``) equal ``desired``, a recomputation of
    it, with one MERGE of the diff (:func:`merge_diff`); no MERGE at all when nothing differs.

    ``desired`` is cached for the commit: the diff reads it twice (changed rows, vanished keys)
    and Delta's MERGE reads its source twice (to find the files to rewrite, then to write), so
    an uncached recomputation from bronze would run four times.

    An empty diff (a rerun of a delivery that changed nothing, a day with nothing new for the
    table) is answered by one look for a first row, without a MERGE: Delta commits nothing for
    a MERGE that changes nothing, but it would still plan it, materialise its source and join
    that with the table first. Measured on the tests' tiny lake (one session, warm): a silver
    rerun that changes nothing took 14 s instead of 23 s. The diff is cached too, so that for a
    table that did change the look and the MERGE share one computation of it: uncached, the look
    would read the diff's inputs once more before the MERGE read them again.
    """
    from medallion.transforms.common import table_diff

    desired = desired.persist()
    diff = desired.transform(table_diff(existing, keys)).persist()
    try:
        if diff.isEmpty():
            return Commit(path, latest_version(spark, path), NO_COMMIT)
        return merge_diff(spark, path, diff, keys, metadata=metadata)
    finally:
        diff.unpersist()
        desired.unpersist()


# --- errors as sentences -----------------------------------------------------------------------

_SCHEMA_MARKERS = (
    "DELTA_FAILED_TO_MERGE_FIELDS",
    "schema mismatch",
    "DELTA_SCHEMA_MISMATCH",
    "DELTA_METADATA_MISMATCH",
    "_LEGACY_ERROR_TEMP_DELTA_0007",
    "DELTA_MERGE_INCOMPATIBLE_DATATYPE",
    "DELTA_COLUMN_NOT_FOUND",
    "DELTA_MISSING_COLUMN",
    "DELTA_PARTITION_SCHEMA",
    "partition columns do not match",
)
_CONFLICT_MARKERS = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
)


def table_label(path: str) -> str:
    """``.../silver/orders`` -> ``silver/orders``: the name a person knows the table by."""
    parts = path.rstrip("/").split("/")
    for i, part in enumerate(parts):
        if part in LAYERS and i < len(parts) - 1:
            return "/".join(parts[i:])
    return path


class CommitConflict(JobError):
    """Another writer's commit conflicted with this one's, which Delta refused whole."""


@contextlib.contextmanager
def delta_errors(path: str) -> Iterator[None]:
    """Turn Delta's schema-conflict and concurrent-commit errors into one sentence naming the table."""
    try:
        yield
    except Exception as exc:  # AnalysisException, Py4JJavaError and the rest
        from py4j.protocol import Py4JJavaError

        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, Py4JJavaError):
            text += str(exc.java_exception)
        label = table_label(path)
        if any(marker in text for marker in _CONFLICT_MARKERS):
            raise CommitConflict(
                f"{label}: another writer committed a conflicting change to the table at the same "
                "time, so this run's commit was refused and nothing of it was written; make sure "
                "one run at a time writes the table, then rerun"
            ) from exc
        if any(marker.lower() in text.lower() for marker in _SCHEMA_MARKERS):
            first = (
                str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            )
            raise JobError(
                f"{label}: the incoming rows' schema conflicts with the table's ({first}); nothing "
                "was written - fix the producer, or evolve the table deliberately"
            ) from exc
        raise
