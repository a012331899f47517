"""Job ``silver_to_gold``: the star schema (SCD2 customers, products, dates, order facts) and the
analytics views, with the fact-to-silver reconciliation built in.

Every gold table is a Delta table written in one commit per run, tagged with the run's commit
metadata. ``dim_customer`` keeps history, so it is maintained with one MERGE (close the changed
current versions, insert the new ones; see :func:`merge_dim_customer`). The other tables are
pure functions of silver and the dimensions as they stand, so each is replaced whole with one
overwrite commit (the previous version stays in the table's history). The audit figures come
from the commits' operation metrics or one aggregate over the committed table, never from a
second pass during the write.

Out-of-order runs: the dimension's history is built from the sequence of daily snapshots, so a
date that was never loaded cannot be slotted in before a later one that was. Such a run is
refused with a message saying how to rebuild; re-running a date already loaded is always allowed
and changes nothing (the snapshot it sees is already folded in).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.lake import Commit, merge_into, overwrite, read_delta
from medallion.transforms.gold import analytics, dim_customer, dimensions, facts
from medallion.transforms.gold.dim_customer import UNKNOWN_SK
from medallion.transforms.silver.fx import convert_to_usd, fx_asof_calendar

log = logging.getLogger(__name__)

STATE_FILE = "_state/silver_to_gold.json"


def _silver(context: JobContext, table: str) -> DataFrame:
    frame = read_delta(context.spark, context.lake.silver(table))
    if frame is None:
        raise JobError(
            f"silver table {table} does not exist yet; run bronze_to_silver for {context.run_date} first"
        )
    return frame


def _loaded_dates(context: JobContext) -> list[str]:
    path = context.lake.path(STATE_FILE)
    import fsspec

    fs, local = fsspec.core.url_to_fs(path)
    if not fs.exists(local):
        return []
    with fs.open(local, "r") as handle:
        return json.load(handle).get("loaded_run_dates", [])


def _save_loaded_dates(context: JobContext, dates: list[str]) -> None:
    path = context.lake.path(STATE_FILE)
    payload = json.dumps({"loaded_run_dates": sorted(set(dates))}, indent=1)
    if "://" in path:
        import fsspec

        with fsspec.open(path, "w") as handle:
            handle.write(payload)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.tmp", "w", encoding="utf-8") as handle:
        handle.write(payload)
    os.replace(f"{path}.tmp", path)


def check_run_order(loaded: list[str], run_date: dt.date) -> None:
    """Refuse a never-loaded date earlier than the latest loaded one (it would rewrite history)."""
    day = run_date.isoformat()
    if loaded and day not in loaded and day < max(loaded):
        raise JobError(
            f"silver_to_gold for {day} is out of order: dim_customer already holds history through "
            f"{max(loaded)} and {day} was never loaded; to include it, delete {STATE_FILE} and gold/ "
            f"and backfill gold from the first date in order"
        )


def _overwrite(
    context: JobContext, table: str, frame: DataFrame, counts: list[TableCount], rows_in: int
) -> DataFrame:
    """Replace the table with ``frame`` in one commit, count it from the commit's metrics, and
    return the committed table (re-read: later tables join it, and the plan stays short)."""
    path = context.lake.gold(table)
    commit = overwrite(frame, path, metadata=context.commit_metadata)
    _record(counts, table, commit, rows_in, commit.rows_written)
    return read_delta(context.spark, path)


def _record(
    counts: list[TableCount], table: str, commit: Commit, rows_in: int, rows_out: int
) -> None:
    name = f"gold/{table}"
    log.info("%s: version %d (%s), %d rows", name, commit.version, commit.operation, rows_out)
    counts.append(
        TableCount(name, rows_in=rows_in, rows_out=rows_out, versions={name: commit.version})
    )


def merge_dim_customer(
    spark: SparkSession, path: str, snapshot: DataFrame, metadata: str
) -> Commit:
    """Fold ``snapshot`` into the SCD2 dimension at ``path`` in one commit.

    The first run creates the table with :func:`dim_customer.scd2_merge`'s rows (every customer's
    first version and the unknown member). Later runs MERGE :func:`dim_customer.scd2_merge_source`
    keyed by ``customer_id`` against the current versions: a keyed row updates the current row in
    place (a changed version closed, or descriptive attributes refreshed) and a null-keyed row
    inserts (a new version, a new customer), so the commit rewrites only files that hold a
    changed customer's current row and leaves the rest of the history as it is.
    """
    existing = read_delta(spark, path)
    if existing is None:
        return overwrite(dim_customer.scd2_merge(None, snapshot), path, metadata=metadata)
    from delta.tables import DeltaTable

    source = dim_customer.scd2_merge_source(existing, snapshot).alias("s")
    columns = {c: f"s.{c}" for c in dim_customer.DIM_CUSTOMER_COLUMNS}
    key = dim_customer.MERGE_KEY

    def merge() -> None:
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(source, f"t.customer_id = s.{key} AND t.is_current")
            .whenMatchedUpdate(set=columns)
            .whenNotMatchedInsert(condition=f"s.{key} IS NULL", values=columns)
            .execute()
        )

    return merge_into(spark, path, merge, metadata=metadata)


def dim_customer_figures(dim: DataFrame, run_date: dt.date) -> dict[str, int]:
    """One aggregate over the committed dimension: its rows and the audit's SCD2 figures."""
    closed = ~F.col("is_current")
    row = dim.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col("is_current").cast("int")).alias("current"),
        F.sum(closed.cast("int")).alias("closed"),
        F.countDistinct(F.when(closed, F.col("customer_id"))).alias("with_history"),
        F.sum(dim_customer.opened_by_change_on(run_date).cast("int")).alias("changes_today"),
    ).first()
    return {k: int(v or 0) for k, v in row.asDict().items()}


def run(context: JobContext) -> JobResult:
    spark, day = context.spark, context.run_date
    loaded = _loaded_dates(context)
    check_run_order(loaded, day)
    counts: list[TableCount] = []
    details: dict[str, int | float] = {}

    customers = _silver(context, "customers")
    customers_in = customers.count()
    dim_path = context.lake.gold("dim_customer")
    snapshot = dim_customer.customer_snapshot(customers)
    commit = merge_dim_customer(spark, dim_path, snapshot, context.commit_metadata)
    dim_c = read_delta(spark, dim_path)
    scd = dim_customer_figures(dim_c, day)
    _record(counts, "dim_customer", commit, customers_in, scd["rows"])
    details.update(
        dim_customer_current=scd["current"],
        dim_customer_closed_versions=scd["closed"],
        dim_customer_with_history=scd["with_history"],
        dim_customer_changes_today=scd["changes_today"],
    )

    products = _silver(context, "products")
    products_in = products.count()
    dim_p = _overwrite(
        context, "dim_product", dimensions.dim_product(products), counts, products_in
    )

    silver_orders = _silver(context, "orders")
    silver_totals = silver_orders.agg(*totals()).first().asDict()
    fact = _overwrite(
        context,
        "fact_orders",
        silver_orders.transform(facts.fact_orders(dim_c, dim_p)),
        counts,
        int(silver_totals["rows"]),
    )
    gold_totals = fact_figures(fact)
    details.update(reconcile(silver_totals, gold_totals))
    crash_point("gold.after_fact_orders")

    first = gold_totals["first"].date() if gold_totals["first"] else day
    last = max(gold_totals["last"].date() if gold_totals["last"] else day, day)
    _overwrite(context, "dim_date", dimensions.dim_date(spark, first, last), counts, 0)

    opportunities = _opportunities_usd(context)
    events = _events_with_customer(context, silver_orders)
    behavior = _silver(context, "customer_behavior")
    c360 = analytics.customer_360(dim_c, fact, behavior, opportunities, events)
    _overwrite(context, "customer_360", c360, counts, details["dim_customer_current"])
    performance = analytics.product_performance(dim_p, fact)
    _overwrite(context, "product_performance", performance, counts, products_in)

    _save_loaded_dates(context, [*loaded, day.isoformat()])
    return JobResult(tables=counts, details=details)


def fact_figures(fact: DataFrame) -> dict:
    """One aggregate over the committed fact: :func:`totals`, distinct order ids, orphans and
    the order time span (for the calendar)."""
    return (
        fact.agg(
            *totals(),
            F.countDistinct("order_id").alias("ids"),
            F.sum((F.col("customer_sk") == UNKNOWN_SK).cast("int")).alias("unknown_customer"),
            F.sum((F.col("product_sk") == UNKNOWN_SK).cast("int")).alias("unknown_product"),
            F.min("order_ts").alias("first"),
            F.max("order_ts").alias("last"),
        )
        .first()
        .asDict()
    )


def totals() -> list[Column]:
    """What must agree between silver orders and the fact: rows and money."""
    return [
        F.count(F.lit(1)).alias("rows"),
        F.sum("amount_usd").alias("usd"),
        F.sum("amount").alias("amount"),
    ]


def reconcile(silver: dict, gold: dict) -> dict[str, int | float]:
    """Every silver order once in the fact, and the USD totals equal; a mismatch fails the job.

    ``silver`` holds :func:`totals` over silver orders; ``gold`` the same over the fact plus its
    distinct order ids and orphan counts.
    """
    problems = []
    if gold["rows"] != silver["rows"] or gold["ids"] != silver["rows"]:
        problems.append(
            f"fact_orders has {gold['rows']} rows / {gold['ids']} order ids for {silver['rows']} silver orders"
        )
    if (gold["usd"] or 0) != (silver["usd"] or 0):
        problems.append(f"fact_orders amount_usd total {gold['usd']} != silver {silver['usd']}")
    if (gold["amount"] or 0) != (silver["amount"] or 0):
        problems.append(f"fact_orders amount total {gold['amount']} != silver {silver['amount']}")
    if problems:
        raise JobError("gold reconciliation failed: " + "; ".join(problems))
    return {
        "fact_orders_rows": int(gold["rows"]),
        "fact_orders_amount_usd_total": float(gold["usd"] or 0),
        "fact_orders_unknown_customer": int(gold["unknown_customer"] or 0),
        "fact_orders_unknown_product": int(gold["unknown_product"] or 0),
    }


def _opportunities_usd(context: JobContext) -> DataFrame:
    """Open pipeline per customer: opportunities through their account, in USD as of the run date."""
    opportunities = _silver(context, "crm_opportunities")
    accounts = _silver(context, "crm_accounts").select("account_id", "customer_id")
    asof = _silver(context, "fx_rates").transform(fx_asof_calendar(until=context.run_date))
    return (
        opportunities.join(accounts, on="account_id", how="left")
        .withColumn("_asof", F.lit(context.run_date))
        .transform(convert_to_usd(asof, "_asof", "currency", "amount"))
        .select("customer_id", "is_closed", "amount_usd")
    )


def _events_with_customer(context: JobContext, orders: DataFrame) -> DataFrame:
    events = read_delta(context.spark, context.lake.silver("order_events"))
    if events is None:
        return context.spark.createDataFrame(
            [], "customer_id string, event_id string, event_ts timestamp, event_type string"
        )
    owners = orders.select("order_id", "customer_id")
    return events.join(owners, on="order_id", how="left").select(
        "customer_id", "event_id", "event_ts", "event_type"
    )


GOLD_JOB = Job(
    "silver_to_gold",
    "build the star schema (SCD2 dim_customer, facts, dates) and analytics views",
    run,
)
