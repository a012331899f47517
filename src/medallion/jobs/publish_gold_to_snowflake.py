"""``publish_gold_to_snowflake``: publish gold tables to the configured warehouse.

The name is the replaced system's; the target is whatever ``warehouse.type`` says (DuckDB
locally, Snowflake in production). Which tables: ``--tables`` (``options["tables"]``), else
``warehouse.publish``, else every gold table. The mode per table comes from
``warehouse.tables.<table>.mode`` (default ``warehouse.default_mode``); ``--mode`` overrides it
for the run. One transaction per table: a failure rolls back the table being published, leaves
the ones already published committed, and fails the job naming both.

No Spark: each gold table's latest Delta version is read through its transaction log with
``deltalake`` (the version is pinned when the table is located, and the audit record's
``details.gold_versions`` lists it), so the warehouse never sees a file a later commit removed.
"""

from __future__ import annotations

from typing import cast

from medallion.audit import TableCount
from medallion.errors import JobError, MedallionError, UsageError
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.quality.table_contracts import primary_key
from medallion.transforms.gold.catalog import GOLD_TABLES
from medallion.warehouse import (
    MODES,
    GoldTable,
    PublishMode,
    PublishResult,
    locate_gold,
    open_warehouse,
)


def tables_to_publish(context: JobContext) -> list[str]:
    """The gold tables this run publishes, in order, each once."""
    requested = context.options.get("tables") or context.settings.warehouse.publish
    if isinstance(requested, str):
        requested = [t.strip() for t in requested.split(",") if t.strip()]
    tables = list(dict.fromkeys(requested or GOLD_TABLES))
    unknown = [t for t in tables if t not in GOLD_TABLES]
    if unknown:
        raise UsageError(
            f"unknown gold table(s) {', '.join(unknown)} in --tables or warehouse.publish; "
            f"gold tables are: {', '.join(GOLD_TABLES)}"
        )
    return tables


def mode_for(context: JobContext, table: str) -> PublishMode:
    override = context.options.get("mode")
    if override is not None and override not in MODES:
        raise UsageError(f"unknown publish mode '{override}'; choose one of {', '.join(MODES)}")
    return cast(PublishMode, override or context.settings.warehouse.mode_for(table))


def run(context: JobContext) -> JobResult:
    tables = tables_to_publish(context)
    modes = {table: mode_for(context, table) for table in tables}
    gold = _locate_all(context, tables)

    results: dict[str, PublishResult] = {}
    with open_warehouse(context.settings.warehouse, context.lake) as warehouse:
        warehouse.connect()
        context.log.info(
            "publish: %d gold table(s) to %s: %s",
            len(tables),
            warehouse.describe(),
            ", ".join(f"{t} v{gold[t].version} ({modes[t]})" for t in tables),
        )
        for table in tables:
            try:
                results[table] = warehouse.publish_table(
                    gold[table],
                    primary_key("gold", table),
                    modes[table],
                    context.run_id,
                    run_date=context.run_date,
                )
            except Exception as exc:
                raise _failed(table, warehouse.describe(), exc, results) from exc
        target = warehouse.describe()

    changed = sum(r.inserted + r.updated + r.deleted for r in results.values())
    return JobResult(
        tables=_counts(results),
        details={
            "warehouse": context.settings.warehouse.type,
            "target": target,
            "gold_versions": {table: gold[table].version for table in results},
            "tables": {table: r.as_dict() for table, r in results.items()},
        },
        message=f"{len(results)} table(s) published to {target}, {changed} row(s) changed",
    )


def _locate_all(context: JobContext, tables: list[str]) -> dict[str, GoldTable]:
    """Every requested gold table, or one error naming all that are missing (nothing published)."""
    found: dict[str, GoldTable] = {}
    problems: list[str] = []
    for table in tables:
        try:
            found[table] = locate_gold(context.lake, table)
        except JobError as exc:
            problems.append(str(exc))
    if problems:
        raise JobError("; ".join(problems) + "; nothing was published")
    return found


def _counts(results: dict[str, PublishResult]) -> list[TableCount]:
    return [
        TableCount(name=f"warehouse/{table}", rows_in=r.rows_source, rows_out=r.rows_target)
        for table, r in results.items()
    ]


def _failed(
    table: str, target: str, exc: Exception, done: dict[str, PublishResult]
) -> MedallionError:
    """The job's error: which table failed (rolled back) and which are committed."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not isinstance(exc, MedallionError):
        reason = f"{type(exc).__name__}: {reason}"
    committed = ", ".join(done) if done else "none"
    message = (
        f"publishing gold table '{table}' to {target} failed and was rolled back: {reason} "
        f"(tables committed earlier in this run: {committed})"
    )
    error = type(exc)(message) if isinstance(exc, MedallionError) else JobError(message)
    error.tables = _counts(done)  # type: ignore[attr-defined]  # the runner records these
    return error


PUBLISH_JOB = Job(
    "publish_gold_to_snowflake",
    "publish gold tables to the warehouse (DuckDB locally, Snowflake in prod): staging + MERGE",
    run,
    needs_spark=False,
)
