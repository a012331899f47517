"""Runs the quality suites on Spark and stores the results.

Evaluation is batched so a run costs a few Spark actions rather than one per check:

1. every silver and gold table in the suites is read once and registered as a temp view
   ``<layer>_<table>``;
2. one aggregate per table answers its row count, every library rule (null, missing, invalid
   and duplicate values) and the maxima the freshness checks need; the aggregates of all tables
   are unioned into a single action (table by table only if that fails);
3. all SQL rules run as scalar subqueries of one ``SELECT`` (Spark runs them concurrently); if
   that statement fails, each rule runs on its own so the failure lands on the rule that caused it;
4. custom checks run last, with the row counts and maxima already known.

``medallion.quality.results`` stores the outcome in ``<lake>/_quality/run_date=D/results.json``
(format: docs/QUALITY.md); the next run date's ``row_count_change`` checks compare against it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from string import Template
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.audit import utc_now_iso
from medallion.config import Settings
from medallion.lake import Lake, read_delta
from medallion.quality.checks import (
    CUSTOM,
    Observation,
    RunContext,
    library_aggregates,
    library_observation,
    number,
)
from medallion.quality.results import (
    FAILED,
    PASSED,
    CheckResult,
    ValidationRun,
    previous_row_counts,
)
from medallion.quality.suite import Rule, Suite, packaged_suites, view_name
from medallion.redact import redact

log = logging.getLogger(__name__)

ROWS_ALIAS = "_rows"


# --- evaluation -------------------------------------------------------------------------------


def run_checks(
    spark: SparkSession,
    settings: Settings,
    lake: Lake,
    run_date: dt.date,
    run_id: str = "",
    suites: Sequence[Suite] | None = None,
    records: Sequence[dict[str, Any]] | None = None,
) -> ValidationRun:
    """Evaluate every rule of the suites (default: the packaged silver and gold suites).

    ``records`` is the audit trail when the caller has read it already (validate reads it once
    for these checks and the anomaly gate); by default it is read here.
    """
    suites = list(suites if suites is not None else packaged_suites())
    run = ValidationRun(
        run_date=run_date,
        run_id=run_id,
        env=settings.env,
        started_at=utc_now_iso(),
        suites=[
            {"layer": s.layer, "contract": s.contract_id, "version": s.version} for s in suites
        ],
    )
    started = time.perf_counter()
    rules = [rule for suite in suites for rule in suite.rules]
    ctx = RunContext(spark=spark, settings=settings, lake=lake, run_date=run_date)
    ctx.previous = previous_row_counts(lake, run_date, records)

    try:
        for layer, table in dict.fromkeys((rule.layer, rule.table) for rule in rules):
            _register(ctx, layer, table)
        plans, observations = _plan_tables(ctx, rules)
        observations.update(_measure_tables(ctx, plans))
        observations.update(_measure_sql(spark, [r for r in rules if r.kind == "sql"], run_date))
        for rule in rules:
            if rule.kind == "custom":
                observations[rule.id] = _measure_custom(ctx, rule)
    finally:
        for view in ctx.frames:  # the session may live on (backfills, tests): leave no views
            spark.catalog.dropTempView(view)

    run.results = [_judge(rule, observations[rule.id]) for rule in rules]
    run.row_counts = dict(ctx.row_counts)
    run.finished_at = utc_now_iso()
    run.duration_s = round(time.perf_counter() - started, 3)
    summary = run.summary()
    log.info(
        "validate %s: %d checks in %.1fs: %d passed, %d failed (%d error, %d warn), %d skipped",
        run_date,
        summary["checks"],
        run.duration_s,
        summary["passed"],
        summary["failed"],
        summary["failed_errors"],
        summary["failed_warnings"],
        summary["skipped"],
    )
    return run


def _register(ctx: RunContext, layer: str, table: str) -> None:
    path = ctx.lake.silver(table) if layer == "silver" else ctx.lake.gold(table)
    frame = read_delta(ctx.spark, path)
    view = view_name(layer, table)
    if frame is None:
        log.warning("validate: %s/%s does not exist at %s", layer, table, path)
        ctx.spark.catalog.dropTempView(view)
        return
    frame.createOrReplaceTempView(view)
    ctx.frames[view] = frame


@dataclass
class _TablePlan:
    """One table's aggregate: its row count, its library rules and its freshness maxima."""

    layer: str
    table: str
    frame: DataFrame
    expressions: list[Column]
    measured: list[tuple[Rule, str]]  # rule, alias of its aggregate
    maxima: list[str]  # columns whose maximum the freshness checks need

    @property
    def view(self) -> str:
        return view_name(self.layer, self.table)

    def aggregate(self) -> DataFrame:
        """The aggregate as one row ``(view, json)``, so every table's can share one action."""
        return self.frame.agg(F.to_json(F.struct(*self.expressions)).alias("_m")).select(
            F.lit(self.view).alias("_view"), "_m"
        )


def _plan_tables(
    ctx: RunContext, rules: list[Rule]
) -> tuple[list[_TablePlan], dict[str, Observation]]:
    """A plan per existing table; rules that cannot be measured are decided right away."""
    plans, decided = [], {}
    for layer, table in dict.fromkeys((r.layer, r.table) for r in rules):
        table_rules = [r for r in rules if (r.layer, r.table) == (layer, table)]
        library = [r for r in table_rules if r.kind == "library"]
        frame = ctx.frames.get(view_name(layer, table))
        if frame is None:
            decided.update(
                {
                    r.id: Observation(None, f"table {layer}/{table} does not exist", FAILED)
                    for r in library
                }
            )
            continue
        columns = set(frame.columns)
        expressions = [F.count(F.lit(1)).alias(ROWS_ALIAS)]
        measured = []
        for index, rule in enumerate(library):
            absent = [c for c in rule.properties if c not in columns]
            if absent:
                decided[rule.id] = Observation(
                    None, f"column(s) {', '.join(absent)} not in {layer}/{table}", FAILED
                )
                continue
            alias = f"_m{index}"
            expressions += library_aggregates(rule, alias)
            measured.append((rule, alias))
        maxima = sorted(
            {
                r.parameters["column"]
                for r in table_rules
                if r.implementation == "freshness" and r.parameters["column"] in columns
            }
        )
        # As strings, so dates and timestamps survive the JSON row unchanged.
        expressions += [
            F.max(F.col(f"`{c}`")).cast("string").alias(f"_max_{i}") for i, c in enumerate(maxima)
        ]
        plans.append(_TablePlan(layer, table, frame, expressions, measured, maxima))
    return plans, decided


def _measure_tables(ctx: RunContext, plans: list[_TablePlan]) -> dict[str, Observation]:
    """Every table's aggregate in one Spark action; on an error, table by table."""
    if not plans:
        return {}
    started = time.perf_counter()
    values: dict[str, dict[str, Any]] = {}
    try:
        rows = functools.reduce(DataFrame.unionAll, [p.aggregate() for p in plans]).collect()
        values = {row["_view"]: json.loads(row["_m"]) for row in rows}
    except Exception as exc:
        log.info("validate: batched table aggregates failed (%s); one by one", type(exc).__name__)
    out: dict[str, Observation] = {}
    for plan in plans:
        if plan.view not in values:
            try:
                values[plan.view] = json.loads(plan.aggregate().first()["_m"])
            except Exception as exc:  # a broken table: every rule measured on it fails
                message = _error_message(exc)
                out.update({r.id: Observation(None, message, FAILED) for r, _ in plan.measured})
                continue
        row = values[plan.view]
        rows = int(row[ROWS_ALIAS])
        ctx.row_counts[f"{plan.layer}.{plan.table}"] = rows
        for i, column in enumerate(plan.maxima):
            ctx.maxima[(plan.view, column)] = row.get(f"_max_{i}")
        for rule, alias in plan.measured:
            out[rule.id] = library_observation(rule, row, alias, rows)
    log.info(
        "validate: %d tables, %d library checks in %.1fs",
        len(plans),
        sum(len(p.measured) for p in plans),
        time.perf_counter() - started,
    )
    return out


def _measure_sql(
    spark: SparkSession, rules: list[Rule], run_date: dt.date
) -> dict[str, Observation]:
    """All SQL rules in one statement; on any error, each on its own to pin the error down."""
    if not rules:
        return {}
    queries = {rule.id: _expand(rule, run_date) for rule in rules}
    started = time.perf_counter()
    batch = ",\n".join(f"({query}) AS `_q{i}`" for i, query in enumerate(queries.values()))
    try:
        row = spark.sql(f"SELECT {batch}").first()
    except Exception as exc:
        log.info(
            "validate: batched SQL checks failed (%s); running them one by one",
            exc.__class__.__name__,
        )
        return {rule.id: _single_sql(spark, rule, queries[rule.id]) for rule in rules}
    log.info("validate: %d SQL checks in %.1fs", len(rules), time.perf_counter() - started)
    return {rule.id: _sql_observation(row[i]) for i, rule in enumerate(rules)}


def _single_sql(spark: SparkSession, rule: Rule, query: str) -> Observation:
    try:
        rows = spark.sql(query).take(2)
    except Exception as exc:
        return Observation(None, f"query failed: {_error_message(exc)}", FAILED)
    if len(rows) != 1 or len(rows[0]) != 1:
        return Observation(None, "the query must return exactly one row with one number", FAILED)
    return _sql_observation(rows[0][0])


def _sql_observation(value: Any) -> Observation:
    if value is None:
        return Observation(None, "the query returned NULL", FAILED)
    try:
        return Observation(number(value))
    except (TypeError, ValueError):
        return Observation(None, f"the query returned {value!r}, not a number", FAILED)


def _expand(rule: Rule, run_date: dt.date) -> str:
    """``${run_date}`` and ``${table}`` (the rule's view) in a query."""
    return Template(rule.query or "").safe_substitute(
        run_date=run_date.isoformat(), table=rule.view
    )


def _measure_custom(ctx: RunContext, rule: Rule) -> Observation:
    started = time.perf_counter()
    try:
        observation = CUSTOM[rule.implementation](ctx, rule)  # type: ignore[index]
    except Exception as exc:
        log.debug("custom check %s raised", rule.id, exc_info=True)
        observation = Observation(None, f"check failed to run: {_error_message(exc)}", FAILED)
    log.debug("validate: %s in %.2fs", rule.id, time.perf_counter() - started)
    return observation


def _judge(rule: Rule, observation: Observation) -> CheckResult:
    threshold = rule.threshold.describe(rule.unit)
    status = observation.status
    if status is None and observation.value is None:
        status = FAILED
    elif status is None:
        status = PASSED if rule.threshold.holds(observation.value) else FAILED
    message = observation.message
    if status == FAILED and observation.status is None:
        shown = _show(observation.value, rule.unit)
        message = f"observed {shown}, expected {threshold}" + (f": {message}" if message else "")
    return CheckResult(
        id=rule.id,
        layer=rule.layer,
        table=rule.table,
        description=rule.description,
        severity=rule.severity,
        status=status,
        observed=observation.value,
        threshold=threshold,
        message=redact(message),
        unit=rule.unit,
        kind=rule.kind,
        dimension=rule.dimension,
    )


def _show(value: Any, unit: str | None) -> str:
    if value is None:
        return "nothing"
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"
    return text + {"percent": " %", "rows": "", None: ""}.get(unit, f" {unit}")


def _error_message(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
