"""How each kind of rule is measured: library metrics as Spark aggregate expressions (so one
aggregate per table answers all of them) and the custom checks that need the run context (the
audit trail, the previous run's results, bronze, the warehouse).

A measurement is an :class:`Observation`: the observed number, a message for people, and
optionally a status that overrides the threshold (``skipped`` when there is nothing to compare
with yet, ``failed`` when the check could not be measured at all).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.audit import read_records
from medallion.config import Settings
from medallion.lake import Lake, read_delta
from medallion.quality.results import FAILED, SKIPPED
from medallion.quality.suite import Rule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    value: float | int | None
    message: str = ""
    status: str | None = None  # None: decided by the threshold


def number(value: Any) -> float | int | None:
    """A JSON-friendly number from whatever Spark or DuckDB returned."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, int | float):
        return value
    return float(value)


# --- library metrics --------------------------------------------------------------------------


def library_aggregates(rule: Rule, alias: str) -> list[Column]:
    """The aggregate expressions that measure one library rule (named ``alias``)."""
    columns = [F.col(f"`{name}`") for name in rule.properties]
    if rule.metric == "rowCount":
        return []  # every table aggregate counts its rows anyway
    if rule.metric == "nullValues":
        return [_count_where(_any(c.isNull() for c in columns)).alias(alias)]
    if rule.metric == "missingValues":
        missing = list(rule.arguments.get("missingValues") or [None])
        listed = [v for v in missing if v is not None]
        conditions = [c.isNull() | (c.isin(*listed) if listed else F.lit(False)) for c in columns]
        return [_count_where(_any(conditions)).alias(alias)]
    if rule.metric == "invalidValues":
        valid = rule.arguments.get("validValues")
        pattern = rule.arguments.get("pattern")
        conditions = []
        for c in columns:
            bad = F.lit(False)
            if valid:
                bad = bad | ~c.isin(*valid)
            if pattern:
                bad = bad | ~c.cast("string").rlike(pattern)
            conditions.append(c.isNotNull() & bad)  # nulls are nullValues' business
        return [_count_where(_any(conditions)).alias(alias)]
    if rule.metric == "duplicateValues":
        return [F.count_distinct(F.struct(*columns)).alias(alias)]
    raise ValueError(f"unknown metric {rule.metric}")  # the suite loader rejects these first


def library_observation(rule: Rule, row: dict[str, Any], alias: str, rows: int) -> Observation:
    if rule.metric == "rowCount":
        return Observation(rows, f"{rows:,} rows")
    if rule.metric == "duplicateValues":
        count = rows - int(row[alias] or 0)
        what = f"{count:,} duplicate row(s) on ({', '.join(rule.properties)})"
    else:
        count = int(row[alias] or 0)
        label = {"nullValues": "null", "missingValues": "missing", "invalidValues": "invalid"}
        what = f"{count:,} {label[rule.metric]} value(s) in {', '.join(rule.properties)}"
    if rule.unit == "percent":
        share = round(100.0 * count / rows, 4) if rows else 0.0
        return Observation(share, f"{what} of {rows:,} rows")
    return Observation(count, what)


def _count_where(condition: Column) -> Column:
    return F.coalesce(F.sum(F.when(condition, 1).otherwise(0)), F.lit(0))


def _any(conditions) -> Column:
    result = None
    for condition in conditions:
        result = condition if result is None else (result | condition)
    return result if result is not None else F.lit(False)


# --- the run context custom checks see ----------------------------------------------------------


@dataclass
class RunContext:
    """What custom checks may use; audit records and previous results are read once, lazily."""

    spark: SparkSession
    settings: Settings
    lake: Lake
    run_date: dt.date
    frames: dict[str, DataFrame] = field(default_factory=dict)  # by view name
    row_counts: dict[str, int] = field(default_factory=dict)  # "silver.orders" -> rows
    maxima: dict[tuple[str, str], str] = field(default_factory=dict)  # (view, column) -> max
    previous: dict[str, tuple[str, int]] = field(default_factory=dict)  # table -> (date, rows)
    _records: list[dict] | None = None

    def day_records(self) -> list[dict]:
        """The latest audit record of each job for the run date."""
        if self._records is None:
            latest: dict[str, dict] = {}
            for record in read_records(self.lake.root, run_date=self.run_date):
                latest[record.get("job", "")] = record  # oldest first: the last one wins
            self._records = list(latest.values())
        return self._records


def _missing_table(rule: Rule) -> Observation:
    return Observation(None, f"table {rule.layer}/{rule.table} does not exist", FAILED)


def row_count_change(ctx: RunContext, rule: Rule) -> Observation:
    key = f"{rule.layer}.{rule.table}"
    if rule.view not in ctx.frames:
        return _missing_table(rule)
    rows = ctx.row_counts[key]
    if key not in ctx.previous:
        return Observation(None, "no earlier run date recorded this table's rows", SKIPPED)
    day, before = ctx.previous[key]
    change = 0.0 if before == rows else (100.0 if before == 0 else 100.0 * (rows - before) / before)
    return Observation(
        round(abs(change), 2), f"{before:,} rows on {day} -> {rows:,} now ({change:+.2f} %)"
    )


def freshness(ctx: RunContext, rule: Rule) -> Observation:
    column = rule.parameters["column"]
    if rule.view not in ctx.frames:
        return _missing_table(rule)
    latest = ctx.maxima.get((rule.view, column))  # the maximum as text: "2025-01-15 09:30:00"
    if latest is None:
        return Observation(None, f"no {column} values to judge freshness by", SKIPPED)
    try:
        day = dt.date.fromisoformat(str(latest)[:10])
    except ValueError:
        return Observation(None, f"{column} is not a date or timestamp ({latest})", FAILED)
    lag = (ctx.run_date - day).days
    return Observation(lag, f"latest {column} {latest} is {lag} day(s) before {ctx.run_date}")


def bronze_conservation(ctx: RunContext, rule: Rule) -> Observation:
    """For each source table: the latest bronze run of the day has rows_in == bronze + quarantine."""
    unaccounted = 0
    notes: list[str] = []
    for source in rule.parameters["sources"]:
        found = _bronze_table_count(ctx.day_records(), source)
        if found is None:
            return Observation(
                None, f"no audit record of a bronze run for {source} on {ctx.run_date}", FAILED
            )
        record, counts = found
        if record.get("status") != "succeeded":
            return Observation(
                None,
                f"the latest {record.get('job')} run on {ctx.run_date} {record.get('status')}",
                FAILED,
            )
        rows_in = int(counts.get("rows_in") or 0)
        out, quarantined = (
            int(counts.get("rows_out") or 0),
            int(counts.get("rows_quarantined") or 0),
        )
        unaccounted += abs(rows_in - out - quarantined)
        notes.append(f"{source}: {rows_in:,} in = {out:,} bronze + {quarantined:,} quarantined")
        if rows_in != out + quarantined:
            notes[-1] = notes[-1].replace(" = ", " != ")
    return Observation(unaccounted, "; ".join(notes))


def _bronze_table_count(records: list[dict], source: str) -> tuple[dict, dict] | None:
    names = {source, f"bronze/{source}"}
    hits = [
        (record, table)
        for record in records
        for table in record.get("tables") or []
        if table.get("name") in names
    ]
    if not hits:
        return None
    return max(hits, key=lambda hit: hit[0].get("started_at") or "")


def bronze_keys_in_silver(ctx: RunContext, rule: Rule) -> Observation:
    """Every key that passed the bronze contract up to the run date is in the silver table."""
    source_name, key = rule.parameters["source"], rule.parameters["key"]
    silver_key = rule.parameters.get("silverKey", key)
    if rule.view not in ctx.frames:
        return _missing_table(rule)
    source, table = source_name.split("/", 1)
    bronze = read_delta(ctx.spark, ctx.lake.bronze(source, table))
    if bronze is None:
        return Observation(None, f"bronze table {source_name} does not exist", FAILED)
    keys = (
        bronze.where(F.col("_run_date") <= F.lit(ctx.run_date))
        .select(F.trim(F.col(key)).alias("_key"))
        .where(F.col("_key").isNotNull() & (F.col("_key") != ""))
    )
    silver = ctx.frames[rule.view].select(F.col(silver_key).alias("_key"))
    missing = keys.join(silver, on="_key", how="left_anti").agg(
        F.count_distinct("_key").alias("n"), F.min("_key").alias("first")
    )
    row = missing.first()
    if not row["n"]:
        return Observation(0, f"every bronze {key} up to {ctx.run_date} is in {rule.view}")
    return Observation(
        int(row["n"]),
        f"{row['n']:,} bronze {key} value(s) up to {ctx.run_date} are missing from {rule.view} "
        f"(e.g. {row['first']})",
    )


def warehouse_rows(ctx: RunContext, rule: Rule) -> Observation:
    """Warehouse rows == gold rows, once the run date's publish has loaded the table.

    In the DAG validate runs before publish: until the publish of the day is recorded, the
    warehouse still holds an earlier day and the check is skipped rather than always warning.
    """
    if rule.view not in ctx.frames:
        return _missing_table(rule)
    gold = ctx.row_counts[f"{rule.layer}.{rule.table}"]
    published = _published_rows(ctx.day_records(), rule.table)
    if isinstance(published, str):
        return Observation(None, published, SKIPPED)
    config = ctx.settings.warehouse
    counted: int | str = published
    if config.type == "duckdb":  # count the table itself; Snowflake's count is the publish's
        counted = _duckdb_rows(config.duckdb.path, config.duckdb.schema_, rule.table)
    if isinstance(counted, str):
        return Observation(None, counted, SKIPPED)
    return Observation(abs(counted - gold), f"warehouse {counted:,} rows, gold {gold:,} rows")


def _duckdb_rows(path: str, schema: str, table: str) -> int | str:
    import duckdb

    if path != ":memory:" and not os.path.exists(path):
        return f"no warehouse at {path}"
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        return f"cannot open the warehouse {path}: {str(exc).splitlines()[0]}"
    try:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchone()[0]
        if not exists:
            return f"the warehouse has no table {schema}.{table}"
        quoted = '"{}"."{}"'.format(schema.replace('"', '""'), table.replace('"', '""'))
        return int(con.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
    finally:
        con.close()


def _published_rows(records: list[dict], table: str) -> int | str:
    for record in sorted(records, key=lambda r: r.get("started_at") or "", reverse=True):
        for entry in record.get("tables") or []:
            if entry.get("name") == f"warehouse/{table}" and record.get("status") == "succeeded":
                return int(entry.get("rows_out") or 0)
    return f"no publish of {table} recorded for the run date yet (validate runs before publish)"


CUSTOM: dict[str, Callable[[RunContext, Rule], Observation]] = {
    "row_count_change": row_count_change,
    "freshness": freshness,
    "bronze_conservation": bronze_conservation,
    "bronze_keys_in_silver": bronze_keys_in_silver,
    "warehouse_rows": warehouse_rows,
}
