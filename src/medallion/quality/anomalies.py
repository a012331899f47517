"""The anomaly gate: a day's deliveries judged as a whole against the trailing history.

A contract judges rows one by one, so a delivery whose rows each pass can still be wrong as a
whole: a source that sent a tenth of its usual rows, a day on which a third of a table went to
quarantine, an FX file whose every rate moved 1.5x overnight. The gate compares each such figure
of run date D with the same figure on the earlier run dates (each date's latest successful run,
never a later date's, so a rerun of an old date is judged as it was the first time):

* ``rows_in`` per ingest table: the source rows of the delivery (its control total when it has
  one), an anomaly when it falls below or jumps above ``row_count_factor`` times the trailing
  median (an empty delivery of a table in ``empty_allowed``, FX on a holiday, is none);
* ``quarantine_rate`` per ingest table: quarantined / source rows, an anomaly above
  ``quarantine_rate_ceiling`` (always), or above ``quarantine_rate_factor`` times the trailing
  median by at least ``quarantine_rate_margin``;
* ``max_rate_move`` for ``fx/fx_rates``: the largest factor by which an accepted rate of the
  day's delivery moved from its currency's previous rate (silver), an anomaly above
  ``fx_move_factor``.

The history rules need ``min_history`` earlier dates (a source's first extract is a full load
and its later ones increments, so only a median of several is an increment's size); the rate
rules need ``min_rows`` source rows. Figures come from the audit trail, which every run writes
anyway, and the FX moves from silver; each judged figure is a :class:`CheckResult` of kind
``anomaly`` carrying its history, so results.json, the console and the report show it with the
contract checks. The ``validate`` job runs the gate, so it stops the chain before publish.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable
from functools import partial

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from medallion.config import AnomalyConfig
from medallion.lake import Lake, read_delta
from medallion.quality.results import FAILED, PASSED, SKIPPED, CheckResult

ANOMALY = "anomaly"
FX_TABLE = "fx/fx_rates"
# How far back silver is read for the FX history: enough calendar days for the trailing runs.
FX_LOOKBACK_DAYS = 60

Figures = dict[str, dict[tuple[str, str], float]]  # run date -> (table, figure) -> value
History = list[tuple[str, float]]  # (run date, value), oldest first


# --- figures ----------------------------------------------------------------------------------


def ingest_figures(records: Iterable[dict], ingest_jobs: Collection[str]) -> Figures:
    """Per run date, each ingest table's ``rows_in`` and ``quarantine_rate`` from the latest
    successful run of its job on that date (``records`` oldest first, as the audit trail reads)."""
    latest: dict[tuple[str, str], dict] = {}
    for record in records:
        if record.get("status") == "succeeded" and record.get("job") in ingest_jobs:
            latest[(str(record.get("run_date")), str(record.get("job")))] = record
    figures: Figures = defaultdict(dict)
    for (day, _), record in sorted(latest.items()):
        for table in record.get("tables") or []:
            name, rows_in = str(table.get("name")), int(table.get("rows_in") or 0)
            figures[day][(name, "rows_in")] = rows_in
            if rows_in:
                figures[day][(name, "quarantine_rate")] = int(table["rows_quarantined"]) / rows_in
    return dict(figures)


FX_COLUMNS = ("rate_date", "base_ccy", "quote_ccy", "rate", "_run_date")


class Unmeasurable(Exception):
    """A figure that cannot be measured; its result is failed with this message."""


def fx_moves(spark: SparkSession, lake: Lake, run_date: dt.date) -> dict[str, float]:
    """Per run date up to ``run_date``: the largest factor (>= 1) by which a rate silver took
    from that date's delivery moved from its currency's previous rate."""
    frame = read_delta(spark, lake.silver("fx_rates"))
    if frame is None:
        return {}
    missing = [name for name in FX_COLUMNS if name not in frame.columns]
    if missing:
        raise Unmeasurable(f"silver/fx_rates has no column {', '.join(missing)}")
    since = run_date - dt.timedelta(days=FX_LOOKBACK_DAYS)
    pair = Window.partitionBy("base_ccy", "quote_ccy").orderBy("rate_date")
    rate = F.col("rate").cast("double")
    moves = (
        frame.where(F.col("rate_date") <= F.lit(run_date))
        .withColumn("_previous", F.lag(rate).over(pair))
        .where((F.col("_run_date") >= F.lit(since)) & (F.col("_run_date") <= F.lit(run_date)))
        .where(F.col("_previous") > 0)
        .groupBy("_run_date")
        .agg(F.max(F.greatest(rate / F.col("_previous"), F.col("_previous") / rate)).alias("move"))
    )
    return {str(row["_run_date"]): float(row["move"]) for row in moves.collect()}


# --- judging ----------------------------------------------------------------------------------


def judge(run_date: dt.date, figures: Figures, config: AnomalyConfig) -> list[CheckResult]:
    """Every figure of ``run_date`` against the same figure on up to ``history_runs`` earlier
    run dates; a date with no ingest run recorded gives one skipped result saying so."""
    day = run_date.isoformat()
    today = figures.get(day)
    if not today:
        message = f"no ingest run succeeded for {day}: no delivery to judge"
        return [
            _result(
                "ingests",
                "delivery",
                SKIPPED,
                message,
                value=None,
                limit="",
                history=[],
                baseline=None,
            )
        ]
    earlier = sorted(d for d in figures if d < day)[-config.history_runs :]
    results = []
    for (table, figure), value in sorted(today.items()):
        history = [
            (d, figures[d][(table, figure)]) for d in earlier if (table, figure) in figures[d]
        ]
        if figure == "rows_in":
            results.append(_judge_rows(table, int(value), history, config))
        else:
            rows = int(today[(table, "rows_in")])
            results.append(_judge_quarantine(table, value, rows, history, config))
    return results


def judge_fx(run_date: dt.date, moves: dict[str, float], config: AnomalyConfig) -> CheckResult:
    """The day's largest accepted FX move against ``fx_move_factor``."""
    day = run_date.isoformat()
    history = sorted((d, m) for d, m in moves.items() if d < day)[-config.history_runs :]
    limit = f"<= {config.fx_move_factor:g}x"
    verdict = partial(_result, FX_TABLE, "max_rate_move", limit=limit, history=history)
    if day not in moves:
        message = (
            f"{FX_TABLE}: the delivery of {day} brought no rate with an earlier one to move from"
        )
        return verdict(SKIPPED, message, value=None, baseline=None)
    move = moves[day]
    baseline = statistics.median(m for _, m in history) if history else None
    if move > config.fx_move_factor:
        message = (
            f"{FX_TABLE}: an accepted rate moved {move:.3f}x from its previous rate, above "
            f"the limit of {config.fx_move_factor:g}x"
        )
        return verdict(FAILED, message, value=move, baseline=baseline)
    message = f"{FX_TABLE}: the largest accepted move is {move:.4f}x"
    return verdict(PASSED, message, value=move, baseline=baseline)


def unmeasured_fx(reason: str) -> CheckResult:
    """The FX figure when silver cannot give it: failed, saying why."""
    message = f"{FX_TABLE}: the largest accepted move cannot be measured: {reason}"
    return _result(
        FX_TABLE, "max_rate_move", FAILED, message, value=None, limit="", history=[], baseline=None
    )


def _judge_rows(table: str, rows: int, history: History, config: AnomalyConfig) -> CheckResult:
    factor = config.row_count_factor
    limit = f"within 1/{factor:g}x..{factor:g}x of the trailing median"
    if rows == 0 and table in config.empty_allowed:
        message = f"{table}: an empty delivery, which this table may send (quality.anomalies.empty_allowed)"
        return _result(
            table,
            "rows_in",
            PASSED,
            message,
            value=rows,
            limit=limit,
            history=history,
            baseline=None,
        )
    if len(history) < config.min_history:
        return _too_little_history(table, "rows_in", rows, limit, history, config)
    median = statistics.median(v for _, v in history)
    verdict = partial(
        _result, table, "rows_in", value=rows, limit=limit, history=history, baseline=median
    )
    if max(median, rows) < config.min_rows:
        return verdict(
            SKIPPED, f"{table}: {rows} source rows against a median of {median:g}: too few to judge"
        )
    low, high = median / factor, median * factor
    if rows < low or rows > high:
        direction = "fell" if rows < low else "jumped"
        return verdict(
            FAILED,
            f"{table}: the delivery's source rows {direction} to {rows} from a "
            f"trailing median of {median:g} over {len(history)} runs (limit {factor:g}x)",
        )
    return verdict(PASSED, f"{table}: {rows} source rows, trailing median {median:g}")


def _judge_quarantine(
    table: str, rate: float, rows: int, history: History, config: AnomalyConfig
) -> CheckResult:
    ceiling, factor = config.quarantine_rate_ceiling, config.quarantine_rate_factor
    limit = f"<= {ceiling:.0%}, and <= {factor:g}x the trailing median"
    median = statistics.median(v for _, v in history) if history else None
    verdict = partial(
        _result, table, "quarantine_rate", value=rate, limit=limit, history=history, baseline=median
    )
    if rows < config.min_rows:
        return verdict(
            SKIPPED, f"{table}: {rows} source rows are too few to judge a quarantine rate"
        )
    share = f"{rate:.1%} of {rows} source rows quarantined"
    if rate > ceiling:
        return verdict(FAILED, f"{table}: {share}, above the ceiling of {ceiling:.0%}")
    if len(history) < config.min_history or median is None:
        return _too_little_history(table, "quarantine_rate", rate, limit, history, config)
    if rate > factor * median and rate - median >= config.quarantine_rate_margin:
        return verdict(
            FAILED,
            f"{table}: {share}, more than {factor:g}x the trailing median of "
            f"{median:.1%} over {len(history)} runs",
        )
    return verdict(PASSED, f"{table}: {share}, trailing median {median:.1%}")


def _too_little_history(
    table: str, figure: str, value: float, limit: str, history: History, config: AnomalyConfig
) -> CheckResult:
    message = (
        f"{table}: {len(history)} earlier run(s) of {config.min_history} needed to judge "
        f"{figure} against its history"
    )
    return _result(
        table, figure, SKIPPED, message, value=value, limit=limit, history=history, baseline=None
    )


DESCRIPTIONS = {
    "rows_in": "source rows of the delivery against the trailing median",
    "quarantine_rate": "share of the delivery quarantined, against a ceiling and its history",
    "max_rate_move": "largest daily move of an accepted FX rate",
    "delivery": "a delivery to judge",
}
UNITS = {"rows_in": "rows", "quarantine_rate": "ratio", "max_rate_move": "x"}


def _result(
    table: str,
    figure: str,
    status: str,
    message: str,
    *,
    value: float | None,
    limit: str,
    history: History,
    baseline: float | None,
) -> CheckResult:
    return CheckResult(
        id=f"{ANOMALY}.{table}.{figure}",
        layer="bronze",
        table=table,
        description=DESCRIPTIONS[figure],
        severity="error",
        status=status,
        observed=value,
        threshold=limit,
        message=message,
        unit=UNITS.get(figure),
        kind=ANOMALY,
        dimension="consistency",
        history=[[day, value] for day, value in history],
        baseline=baseline,
    )
