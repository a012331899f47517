"""Job ``silver_to_gold``: the star schema (SCD2 customers, products, dates, order facts) and the
analytics views, with the fact-to-silver reconciliation built in.

Gold is a function of silver and of bronze's version history (docs/SILVER_GOLD.md), so any run
date may be loaded in any order: a date skipped and caught up later, an older date backfilled
after newer ones and a rerun all give the tables a rebuild gives. ``dim_customer`` is built from
every customer and CRM account version bronze holds (:mod:`medallion.transforms.gold.dim_customer`)
and maintained with one MERGE of its diff by ``customer_sk`` (closed versions updated, new ones
inserted, versions a correction removed deleted), so a late change re-closes its neighbours and
its facts are re-keyed by the fact's rebuild. The other tables are pure functions of silver and
the dimensions as they stand, each replaced whole with one overwrite commit (the previous
version stays in the table's history). ``--rebuild`` writes the dimension whole as well, as
does a run on a lake below ``incremental.min_versions`` (config: writing it whole is cheaper). The
audit figures come from the commits' operation metrics or one aggregate over the committed
table, never from a second pass during the write.
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.audit import TableCount
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult, read_bronze
from medallion.lake import Commit, merge_recomputed, overwrite, read_delta
from medallion.quality.table_contracts import primary_key
from medallion.transforms.common import UNKNOWN_SK
from medallion.transforms.gold import analytics, dim_customer, dimensions, facts
from medallion.transforms.silver.crm import accounts_from_bronze
from medallion.transforms.silver.customers import customers_from_bronze

log = logging.getLogger(__name__)

# The columns of silver order_events that customer_360 reads (the schema of an absent table).
ORDER_EVENTS_READ = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("event_id", T.StringType()),
        T.StructField("event_ts", T.TimestampType()),
        T.StructField("event_type", T.StringType()),
    ]
)


def _silver(context: JobContext, table: str) -> DataFrame:
    frame = read_delta(context.spark, context.lake.silver(table))
    if frame is None:
        raise JobError(
            f"silver table {table} does not exist yet; run bronze_to_silver for {context.run_date} first"
        )
    return frame


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


def write_dim_customer(context: JobContext, rebuild: bool) -> Commit:
    """Make ``gold/dim_customer`` the history bronze implies, in one commit: a MERGE of the
    diff against the table as it stands, or one overwrite on a first run, on ``--rebuild`` and
    when bronze holds fewer customer and account versions than ``incremental.min_versions``
    (the dimension is recomputed whole either way; below that size writing it whole costs less
    than the diff and the MERGE, docs/PERFORMANCE.md)."""
    spark, path = context.spark, context.lake.gold("dim_customer")
    customer_versions = read_bronze(context, "snowflake", "customers")
    account_versions = read_bronze(context, "crm", "accounts")
    desired = dim_customer.dim_customer(
        customers_from_bronze(customer_versions),
        accounts_from_bronze(account_versions),
        _silver(context, "customers"),
    )
    whole = rebuild or context.settings.incremental.whole(
        lambda: customer_versions.count() + account_versions.count()
    )
    existing = None if whole else read_delta(spark, path)
    if existing is None:
        return overwrite(desired, path, metadata=context.commit_metadata)
    keys = primary_key("gold", "dim_customer")  # customer_sk: a version is a row
    return merge_recomputed(spark, path, desired, existing, keys, context.commit_metadata)


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
    counts: list[TableCount] = []
    details: dict[str, int | float] = {}

    customers_in = _silver(context, "customers").count()
    commit = write_dim_customer(context, rebuild=bool(context.options.get("rebuild")))
    dim_c = read_delta(spark, context.lake.gold("dim_customer"))
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

    first = gold_totals["first"] or day
    last = max(gold_totals["last"] or day, day)
    _overwrite(context, "dim_date", dimensions.dim_date(spark, first, last), counts, 0)

    opportunities = _silver(context, "crm_opportunities").transform(
        analytics.opportunities_usd(
            _silver(context, "crm_accounts"), _silver(context, "fx_rates"), day
        )
    )
    # Events may not exist yet (no stream batch so far): an empty frame stands in for them.
    events = read_delta(spark, context.lake.silver("order_events"), ORDER_EVENTS_READ).transform(
        analytics.events_with_customer(silver_orders)
    )
    behavior = _silver(context, "customer_behavior")
    c360 = analytics.customer_360(dim_c, fact, behavior, opportunities, events)
    _overwrite(context, "customer_360", c360, counts, details["dim_customer_current"])
    performance = analytics.product_performance(dim_p, fact)
    _overwrite(context, "product_performance", performance, counts, products_in)

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
            # Dates, computed in the session's zone (UTC): a collected timestamp would come back
            # in the machine's local time and could move the calendar a day.
            F.min(F.to_date("order_ts")).alias("first"),
            F.max(F.to_date("order_ts")).alias("last"),
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


GOLD_JOB = Job(
    "silver_to_gold",
    "build the star schema (SCD2 dim_customer, facts, dates) and analytics views",
    run,
)
