"""Contract-driven ingestion of landing tables into bronze and quarantine, shared by the
``*_to_bronze`` batch jobs.

For each table of a job, for the run date:

1. check that every table's ``landing/<source>/<table>/dt=<run date>/`` exists (before writing
   anything), then read it by header name (:mod:`medallion.contracts.readers`);
2. apply the table's contract (:func:`medallion.contracts.apply_contract`) and cache the checked
   rows; the pass that fills the cache also counts rows in, rows valid and rows per rule id;
3. count the source: reconcile each file's records with the delivery's control file, or
   without one catch a runaway quote (:mod:`medallion.contracts.control`); then enforce the
   contract's quarantine policy (too many rejects fails the run before any write);
4. write the run date's rows into the Delta tables ``bronze/<source>/<table>`` and
   ``quarantine/<source>/<table>`` (partitioned by ``_run_date``), each in one commit with
   ``replaceWhere _run_date = <run date>``: a rerun replaces exactly that date, and a side with
   no rows commits the removal of its old rows;
5. take the rows each commit wrote from Delta's operation metrics and check conservation:
   ``rows_in == rows_bronze + rows_quarantined``, recorded per table in the audit record with
   the Delta version each commit made.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.contracts import Contract, apply_contract, load_contract, read_landing
from medallion.contracts.compiler import (
    LINE,
    RAW_RECORD,
    REASONS,
    RUN_DATE,
    SOURCE_FILE,
    history_jumps,
)
from medallion.contracts.control import (
    ControlTotals,
    read_control,
    reconcile,
    relative_name,
    swallowed_lines,
)
from medallion.contracts.model import CSV, RECORD_MALFORMED
from medallion.contracts.readers import java_cause
from medallion.errors import JobError, MedallionError
from medallion.faults import crash_point
from medallion.jobs.base import JobContext, JobResult, check_conservation
from medallion.lake import CHANGE_FEED, Commit, path_exists, read_delta, replace_where

log = logging.getLogger(__name__)


@dataclass
class TableIngest:
    """What one table's ingestion did, for the job result and the audit record."""

    count: TableCount
    files: int
    reasons: dict[str, int] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    seconds: float = 0.0
    control: ControlTotals | None = None

    def details(self) -> dict[str, object]:
        return {
            "files": self.files,
            # What the source declared (None: no control file; the quote-aware scan checked).
            "control_records": self.control.total if self.control else None,
            "quarantine_reasons": self.reasons,
            "ignored_columns": list(self.ignored_columns),
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class CheckTally:
    """Counts over the checked rows of one table: in, valid, and rows per rule id."""

    rows_in: int
    rows_valid: int
    reasons: dict[str, int]
    swallowed: int = 0  # whole-record lines inside malformed records (a runaway quote)
    swallowed_at: tuple[str, int] | None = None  # the first such record's file and line

    @property
    def rows_rejected(self) -> int:
        return self.rows_in - self.rows_valid


def ingest_tables(context: JobContext, tables: Sequence[str]) -> JobResult:
    """Ingest every table of ``tables`` (contract names) for the context's run date."""
    contracts = [load_contract(name) for name in tables]
    folders = {c.name: context.lake.landing(c.source, c.table, context.run_date) for c in contracts}
    _require_landing(context, folders)
    done: list[TableIngest] = []
    try:
        for contract in contracts:
            done.append(ingest_table(context, contract, folders[contract.name]))
    except MedallionError as exc:
        exc.tables = [t.count for t in done]  # type: ignore[attr-defined]  # read by the runner
        raise
    counts = [t.count for t in done]
    return JobResult(
        tables=counts,
        details={"tables": {t.count.name: t.details() for t in done}},
        message=", ".join(
            f"{t.count.name} {t.count.rows_out}+{t.count.rows_quarantined}q" for t in done
        ),
    )


def ingest_table(context: JobContext, contract: Contract, folder: str) -> TableIngest:
    """Read, check, write and count one table; see the module docstring."""
    started = time.perf_counter()
    spark = context.spark
    read = read_landing(spark, contract, folder)
    if read.ignored_columns:
        log.warning(
            "%s: ignoring column(s) %s not in the contract (schema evolution: %s)",
            contract.name,
            ", ".join(read.ignored_columns),
            contract.schema_evolution,
        )
    bronze = context.lake.bronze(contract.source, contract.table)
    quarantine = context.lake.quarantine(contract.source, contract.table)
    split = apply_contract(
        contract,
        read.records,
        run_id=context.run_id,
        run_date=context.run_date,
        ingest_ts=dt.datetime.now(dt.UTC),
        history=earlier_deliveries(context, contract, bronze),
    ).persist()
    try:
        try:
            tally = tally_checked(contract, split.checked)
        except Py4JJavaError as exc:  # the first action: where Spark meets an unreadable file
            raise read_failure(contract, folder, exc) from None
        control = check_source_totals(contract, folder, read.files, split.checked, tally)
        enforce_quarantine_policy(contract, tally)
        metadata = context.commit_metadata
        bronze_commit = replace_partition(
            split.valid, bronze, context.run_date, metadata, properties=CHANGE_FEED
        )
        crash_point("bronze.after_bronze_write")
        quarantine_commit = replace_partition(
            split.quarantined, quarantine, context.run_date, metadata
        )
    finally:
        split.unpersist()
    count = TableCount(
        contract.name,
        tally.rows_in,
        bronze_commit.rows_written,
        quarantine_commit.rows_written,
        versions={
            f"bronze/{contract.name}": bronze_commit.version,
            f"quarantine/{contract.name}": quarantine_commit.version,
        },
    )
    check_conservation(count)
    seconds = time.perf_counter() - started
    log.info(
        "%s %s: %d in -> %d bronze + %d quarantined from %d file(s) in %.1fs%s",
        contract.name,
        context.run_date,
        count.rows_in,
        count.rows_out,
        count.rows_quarantined,
        len(read.files),
        seconds,
        f" ({_describe(tally.reasons)})" if tally.reasons else "",
    )
    return TableIngest(
        count, len(read.files), tally.reasons, read.ignored_columns, seconds, control
    )


def earlier_deliveries(context: JobContext, contract: Contract, bronze: str) -> DataFrame | None:
    """The table's bronze rows of the other run dates, for the rules that judge a delivery
    against history (an FX rate against its currency's last accepted rate); None when the
    contract has no such rule or bronze does not exist yet (the first delivery)."""
    if not history_jumps(contract):
        return None
    accepted = read_delta(context.spark, bronze)
    if accepted is None:
        return None
    return accepted.where(F.col(RUN_DATE) != F.lit(context.run_date))


def tally_checked(contract: Contract, checked: DataFrame) -> CheckTally:
    """Count rows in, valid rows and rows per rule id in the one pass that fills the cache.

    The counts are observed metrics of a no-op write over the (persisted) checked rows, so
    materialising the cache and counting take a single Spark job with no extra shuffle.
    """
    rule_ids = contract.rule_ids()
    observation = Observation()
    swallowed = (
        swallowed_lines(
            F.col(RAW_RECORD),
            F.array_contains(REASONS, RECORD_MALFORMED),
            len(contract.column_names),
        )
        if contract.format == CSV
        else F.lit(0)
    )
    metrics = [
        F.count(F.lit(1)).alias("rows_in"),
        F.sum((F.size(REASONS) == 0).cast("long")).alias("rows_valid"),
        F.sum(swallowed).alias("swallowed"),
        F.min(F.when(swallowed > 0, F.struct(F.col(SOURCE_FILE), F.col(LINE)))).alias("at"),
        *[
            F.sum(F.array_contains(REASONS, rule).cast("long")).alias(f"rule_{i}")
            for i, rule in enumerate(rule_ids)
        ],
    ]
    checked.observe(observation, *metrics).write.format("noop").mode("overwrite").save()
    counts = observation.get
    reasons = {rule: int(counts[f"rule_{i}"] or 0) for i, rule in enumerate(rule_ids)}
    at = counts["at"]
    return CheckTally(
        rows_in=int(counts["rows_in"]),
        rows_valid=int(counts["rows_valid"] or 0),
        reasons=dict(sorted((rule, rows) for rule, rows in reasons.items() if rows)),
        swallowed=int(counts["swallowed"] or 0),
        swallowed_at=(at[0], int(at[1])) if at is not None else None,
    )


def check_source_totals(
    contract: Contract,
    folder: str,
    files: Sequence[str],
    checked: DataFrame,
    tally: CheckTally,
) -> ControlTotals | None:
    """Count the source, not the parsed frame, before anything is written.

    With a control file, each file's parsed records must equal the count it declares. Without
    one, a runaway quote (a malformed record holding lines that are whole records) fails the
    job naming the file and line: otherwise those records would vanish inside one quarantined
    row while rows in, out and quarantined still agreed. Returns the control totals, if any.
    """
    runaway = None
    if tally.swallowed_at is not None:
        runaway = relative_name(tally.swallowed_at[0], folder), tally.swallowed_at[1]
    control = read_control(checked.sparkSession, folder)
    if control is None:
        if runaway is not None:
            file, line = runaway
            raise JobError(
                f"{contract.name} file {file} line {line}: a quoted field opens there and runs "
                f"over {tally.swallowed} line(s) that are whole records (a runaway quote), so "
                "they would be lost inside one malformed record; nothing was written: fix the "
                "quote and deliver the file again"
            )
        return None
    names = [relative_name(f, folder) for f in files]
    if len(names) == 1:  # the usual delivery: the tally's count is the file's
        parsed = {names[0]: tally.rows_in}
    else:
        parsed = {
            relative_name(row[SOURCE_FILE], folder): row["count"]
            for row in checked.groupBy(SOURCE_FILE).count().collect()
        }
    where = ""
    if runaway is not None:
        where = (
            f" (a quote opened at line {runaway[1]} of {runaway[0]} runs over "
            f"{tally.swallowed} line(s) that look like whole records)"
        )
    reconcile(contract.name, control, parsed, names, where)
    return control


def read_failure(contract: Contract, folder: str, exc: Py4JJavaError) -> Exception:
    """A landing file Spark could not read, as one sentence naming it; other errors as they are."""
    text = str(exc.java_exception)
    if "FAILED_READ_FILE" not in text:
        return exc
    match = re.search(r"reading file (\S+?)\.?\s", text)
    file = match.group(1) if match else f"a file under {folder}"
    return JobError(
        f"{contract.name}: Spark could not read {file} ({java_cause(exc)}); "
        "check the file and deliver it again"
    )


def enforce_quarantine_policy(contract: Contract, tally: CheckTally) -> None:
    """Fail before writing when the contract's quarantine policy does not allow the rejects."""
    policy = contract.quarantine_policy
    if tally.rows_rejected == 0:
        return
    if policy.mode == "fail":
        raise JobError(
            f"{contract.name}: {tally.rows_rejected} of {tally.rows_in} rows broke the contract "
            f"({_describe(tally.reasons)}) and its quarantine policy is 'fail'; nothing was written"
        )
    ratio = tally.rows_rejected / tally.rows_in
    if tally.rows_in >= policy.min_rows and ratio > policy.max_ratio:
        raise JobError(
            f"{contract.name}: {ratio:.1%} of {tally.rows_in} rows broke the contract "
            f"({_describe(tally.reasons)}), above the policy's {policy.max_ratio:.0%}; "
            "nothing was written - check the source extract"
        )


def replace_partition(
    df: DataFrame,
    table_path: str,
    run_date: dt.date,
    metadata: str,
    properties: dict[str, str] | None = None,
) -> Commit:
    """Make the ``run_date`` rows of the Delta table at ``table_path`` exactly ``df``, in one
    commit; the commit's metrics count the rows written (no extra pass over the data). A bronze
    table is created with its change data feed on (``properties``), which silver reads to
    recompute only the keys a delivery changed."""
    return replace_where(
        df,
        table_path,
        column=RUN_DATE,
        value=run_date,
        metadata=metadata,
        partition_by=[RUN_DATE],
        properties=properties,
    )


def _require_landing(context: JobContext, folders: dict[str, str]) -> None:
    missing = [
        (name, folder) for name, folder in folders.items() if not path_exists(context.spark, folder)
    ]
    if missing:
        listed = "; ".join(f"{name} ({folder})" for name, folder in missing)
        raise JobError(
            f"no landing data for run date {context.run_date}: {listed} does not exist; "
            "deliver (or generate) that day's extract first, or pick a run date that has one"
        )


def _describe(reasons: dict[str, int]) -> str:
    return ", ".join(f"{reason}={rows}" for reason, rows in reasons.items())
