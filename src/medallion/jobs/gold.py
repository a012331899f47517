"""Job ``silver_to_gold``: the star schema (SCD2 customers, products, dates, order facts) and the
analytics views, with the fact-to-silver reconciliation built in.

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

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.jobs.observed import Counted
from medallion.lake import read_parquet, write_table
from medallion.transforms.gold import analytics, dim_customer, dimensions, facts
from medallion.transforms.silver.fx import convert_to_usd, fx_asof_calendar

log = logging.getLogger(__name__)

STATE_FILE = "_state/silver_to_gold.json"


def _silver(context: JobContext, table: str) -> DataFrame:
    frame = read_parquet(context.spark, context.lake.silver(table))
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


def _write(
    context: JobContext,
    table: str,
    frame: DataFrame,
    counts: list[TableCount],
    rows_in: int | Counted,
    *measures: Column,
) -> tuple[DataFrame, dict]:
    """Swap the table in, counting its rows and any other ``measures`` as they are written (a
    Spark Observation: no second pass); return the table re-read from disk, and the figures."""
    path = context.lake.gold(table)
    observed = Observation()
    write_table(frame.observe(observed, F.count(F.lit(1)).alias("_rows"), *measures), path)
    figures = observed.get
    rows = rows_in if isinstance(rows_in, int) else rows_in.rows
    counts.append(TableCount(f"gold/{table}", rows_in=rows, rows_out=int(figures["_rows"])))
    return read_parquet(context.spark, path), figures


def run(context: JobContext) -> JobResult:
    spark, day = context.spark, context.run_date
    loaded = _loaded_dates(context)
    check_run_order(loaded, day)
    counts: list[TableCount] = []
    details: dict[str, int | float] = {}

    # Counted by an action of its own: the merge reads the snapshot twice (see jobs.observed).
    customers = _silver(context, "customers")
    existing_dim = read_parquet(spark, context.lake.gold("dim_customer"))
    dim_c = dim_customer.scd2_merge(existing_dim, dim_customer.customer_snapshot(customers))
    dim_c, scd = _write(
        context,
        "dim_customer",
        dim_c,
        counts,
        customers.count(),
        F.sum(F.col("is_current").cast("int")).alias("current"),
        F.sum((~F.col("is_current")).cast("int")).alias("closed"),
        F.sum(dim_customer.opened_by_change_on(day).cast("int")).alias("changes_today"),
    )
    # A distinct count cannot be observed during the write: one aggregate over what was written.
    with_history = dim_c.agg(
        F.countDistinct(F.when(~F.col("is_current"), F.col("customer_id")))
    ).first()[0]
    details.update(
        dim_customer_current=int(scd["current"]),
        dim_customer_closed_versions=int(scd["closed"] or 0),
        dim_customer_with_history=int(with_history),
        dim_customer_changes_today=int(scd["changes_today"] or 0),
    )

    products = Counted(_silver(context, "products"))
    dim_p, _ = _write(
        context, "dim_product", dimensions.dim_product(products.frame), counts, products
    )

    orders = Counted(_silver(context, "orders"), *totals())
    fact, gold_totals = _write(
        context,
        "fact_orders",
        orders.frame.transform(facts.fact_orders(dim_c, dim_p)),
        counts,
        orders,
        *totals(),
        F.sum((F.col("customer_sk") == -1).cast("int")).alias("unknown_customer"),
        F.sum((F.col("product_sk") == -1).cast("int")).alias("unknown_product"),
        F.min("order_ts").alias("first"),
        F.max("order_ts").alias("last"),
    )
    gold_totals["ids"] = fact.agg(F.countDistinct("order_id")).first()[0]
    details.update(reconcile(orders.figures, gold_totals))
    crash_point("gold.after_fact_orders")

    first = gold_totals["first"].date() if gold_totals["first"] else day
    last = max(gold_totals["last"].date() if gold_totals["last"] else day, day)
    _write(context, "dim_date", dimensions.dim_date(spark, first, last), counts, 0)

    silver_orders = _silver(context, "orders")
    opportunities = _opportunities_usd(context)
    events = _events_with_customer(context, silver_orders)
    behavior = _silver(context, "customer_behavior")
    c360 = analytics.customer_360(dim_c, fact, behavior, opportunities, events)
    _write(context, "customer_360", c360, counts, details["dim_customer_current"])
    performance = analytics.product_performance(dim_p, fact)
    _write(context, "product_performance", performance, counts, products.rows)

    _save_loaded_dates(context, [*loaded, day.isoformat()])
    return JobResult(tables=counts, details=details)


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
    events = read_parquet(context.spark, context.lake.silver("order_events"))
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
