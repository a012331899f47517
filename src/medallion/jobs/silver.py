"""Job ``bronze_to_silver``: merge the run date's bronze into the current state of every silver table.

Every silver table is a Delta table updated by one MERGE per run, keyed by its business key.
The MERGE's source is ``current(existing + new)`` recomputed for the rows the run can affect,
minus the rows the table already holds exactly as they are: matched rows that changed are
updated, new keys inserted, and a file that holds no changed row is left alone (Delta would
rewrite it for a matched row even when nothing changed, see ``changed_rows``). Small tables
(FX, CRM, customers, products) recompute every row (a new account can un-orphan an old contact);
the large ones (orders, order events, customer behaviour) recompute only the months the run
touches, read through a month predicate Delta prunes files by, and the same predicate bounds the
MERGE's target scan. Because "current" picks the latest version by business timestamp with a
total tie-break, merging day by day gives exactly what a rebuild from all bronze would give.

A first run (no table yet) and ``--rebuild`` (every bronze run date up to the run's) write the
table whole, one overwrite commit. Every commit carries the run's commit metadata.

Counting uses no Spark ``Observation`` (Delta's writes and MERGE do not report them, and a run
with no new rows must still count zeros): the day's new bronze rows are counted by an action of
their own, and the table after the commit (rows and flags) by one aggregate over it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.lake import RUN_DATE, Commit, merge_into, overwrite, read_delta
from medallion.transforms.common import changed_rows, in_months, month_of, union_versions
from medallion.transforms.silver import crm, customers, events, fx, orders, products

log = logging.getLogger(__name__)

Flags = dict[str, str | Column]
# The aliases of a silver MERGE: the table (target) and the changed rows (source).
TARGET, SOURCE = "t", "s"
# Each silver table's business key: one row per key, the key its MERGE matches on.
KEYS = {
    "fx_rates": ["rate_date", "base_ccy", "quote_ccy"],
    "customers": ["customer_id"],
    "products": ["product_id"],
    "orders": ["order_id"],
    "order_events": ["event_id"],
    "customer_behavior": ["customer_id", "event_date"],
    "crm_accounts": ["account_id"],
    "crm_contacts": ["contact_id"],
    "crm_opportunities": ["opportunity_id"],
}


def _flag_sums(flags: Flags | None) -> list[Column]:
    return [
        F.sum((F.col(c) if isinstance(c, str) else c).cast("int")).alias(name)
        for name, c in (flags or {}).items()
    ]


def merge_changes(
    spark, path: str, changes: DataFrame, keys: list[str], target_filter: Column | None = None
) -> None:
    """One MERGE of ``changes`` (one row per key) into the table at ``path``: update the rows
    whose key matches (null-safe, as "current" groups keys), insert the others.

    ``target_filter`` (on the target's columns, qualified ``t.``) bounds the target scan to the
    rows that can match, e.g. the months the run recomputed; it must hold for every target row
    whose key is in ``changes``.
    """
    from delta.tables import DeltaTable

    condition = F.lit(True)
    for key in keys:
        condition = condition & F.col(f"{TARGET}.{key}").eqNullSafe(F.col(f"{SOURCE}.{key}"))
    if target_filter is not None:
        condition = condition & target_filter
    (
        DeltaTable.forPath(spark, path)
        .alias(TARGET)
        .merge(changes.alias(SOURCE), condition)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


class SilverBuild:
    """The IO of one bronze_to_silver run: reads, writes and counts; the logic is in transforms."""

    def __init__(self, context: JobContext, rebuild: bool = False) -> None:
        self.context = context
        self.spark = context.spark
        self.lake = context.lake
        self.day = context.run_date
        # rebuild=True reads every bronze run date (a full rebuild) instead of the run date's.
        self.rebuild = rebuild
        self.tables: list[TableCount] = []
        self.details: dict[str, int] = {}
        self.first_new_rate: dt.date | None = None

    # -- IO helpers --------------------------------------------------------------------------

    def bronze(self, source: str, table: str) -> DataFrame:
        path = self.lake.bronze(source, table)
        frame = read_delta(self.spark, path)
        if frame is None:
            raise JobError(
                f"bronze table {source}/{table} does not exist at {path}; run its *_to_bronze job first"
            )
        if self.rebuild:
            return frame.where(F.col(RUN_DATE) <= F.lit(self.day))
        return frame.where(F.col(RUN_DATE) == F.lit(self.day))

    def existing(self, table: str) -> DataFrame | None:
        """The table as it stands (None on a rebuild or before the first run: nothing to merge)."""
        if self.rebuild:
            return None
        return read_delta(self.spark, self.lake.silver(table))

    def write(
        self,
        table: str,
        current: DataFrame,
        existing: DataFrame | None,
        rows_in: int,
        flags: Flags | None = None,
        partition: str | None = None,
        target_filter: Column | None = None,
    ) -> DataFrame:
        """Commit ``current`` (the recomputed rows) to the table, count it, and return the table.

        With ``existing`` (the rows ``current`` was recomputed from, as the table holds them) the
        changed rows are merged; without, the table is written whole. The table is returned as
        committed, so later steps read it instead of recomputing it.
        """
        path = self.lake.silver(table)
        metadata = self.context.commit_metadata
        if existing is None:
            commit = overwrite(
                current, path, metadata=metadata, partition_by=[partition] if partition else None
            )
        else:
            changes = current.transform(changed_rows(existing))
            commit = merge_into(
                self.spark,
                path,
                lambda: merge_changes(self.spark, path, changes, KEYS[table], target_filter),
                metadata=metadata,
            )
        result = read_delta(self.spark, path)
        if result is None:
            raise JobError(f"silver/{table} is missing after the run for {self.day}")
        totals = result.agg(F.count(F.lit(1)).alias("_rows"), *_flag_sums(flags)).first()
        self.record(table, rows_in, commit, totals.asDict(), flags)
        return result

    def record(
        self, table: str, rows_in: int, commit: Commit, totals: dict, flags: Flags | None
    ) -> None:
        name = f"silver/{table}"
        self.tables.append(
            TableCount(
                name,
                rows_in=rows_in,
                rows_out=int(totals["_rows"]),
                versions={name: commit.version},
            )
        )
        for flag in flags or {}:
            self.details[flag] = int(totals[flag] or 0)
        # Rows the commit changed (updated + inserted) and rows it wrote to files (those plus
        # the unchanged rows copied out of rewritten files): how much of the table a run touched.
        self.details[f"{table}_rows_changed"] = commit.rows_written
        self.details[f"{table}_rows_rewritten"] = commit.metrics.get("numOutputRows", 0)
        log.info(
            "silver/%s: %d new rows, %d changed, %d rows now (version %d, %s)",
            table,
            rows_in,
            commit.rows_written,
            int(totals["_rows"]),
            commit.version,
            commit.operation,
        )

    def months_of(self, frame: DataFrame, date_column: str) -> list:
        """The distinct months of a run's new rows: a few values, collected so that reads of the
        existing table can be pruned to those months before Delta opens a single file."""
        rows = frame.select(month_of(date_column).alias("m")).distinct().collect()
        return sorted(row["m"] for row in rows if row["m"] is not None)

    # -- the build ------------------------------------------------------------------------------

    def run(self) -> JobResult:
        started = time.perf_counter()
        fx_rates = self.build_fx()
        existing_customers = self.existing("customers")
        customer_base, customers_in = self.customer_base(existing_customers)
        accounts = self.build_accounts(customer_base)
        contacts = self.build_contacts(accounts)
        self.build_opportunities(accounts)
        current_customers = self.build_customers(
            customer_base, accounts, contacts, customers_in, existing_customers
        )
        customer_base.unpersist()
        current_products = self.build_products()
        current_orders = self.build_orders(fx_rates, current_customers, current_products)
        crash_point("silver.after_orders")
        self.build_events(current_orders)
        self.build_behavior(current_customers)
        log.info(
            "bronze_to_silver %s: %d tables in %.1fs",
            self.day,
            len(self.tables),
            time.perf_counter() - started,
        )
        return JobResult(tables=self.tables, details=self.details)

    def build_fx(self) -> DataFrame:
        new = fx.fx_rates_from_bronze(self.bronze("fx", "fx_rates")).cache()
        # The earliest newly arrived rate date: orders from its month on may convert differently.
        figures = new.agg(
            F.count(F.lit(1)).alias("rows"), F.min("rate_date").alias("first")
        ).first()
        self.first_new_rate = figures["first"]
        existing = self.existing("fx_rates")
        current = fx.fx_rates_current(union_versions(existing, new))
        result = self.write("fx_rates", current, existing, int(figures["rows"]))
        new.unpersist()
        return result

    def customer_base(self, existing: DataFrame | None) -> tuple[DataFrame, int]:
        """Current customers before CRM alignment (the CRM tables are flagged against them)."""
        new = customers.customers_from_bronze(self.bronze("snowflake", "customers"))
        base = customers.current_customers(union_versions(existing, new)).cache()
        return base, new.count()

    def build_accounts(self, customer_base: DataFrame) -> DataFrame:
        new = crm.accounts_from_bronze(self.bronze("crm", "accounts"))
        existing = self.existing("crm_accounts")
        return self.write(
            "crm_accounts",
            crm.current_accounts(union_versions(existing, new), customer_base),
            existing,
            new.count(),
            {"crm_accounts_unknown_customer": "has_unknown_customer"},
        )

    def build_contacts(self, accounts: DataFrame) -> DataFrame:
        new = crm.contacts_from_bronze(self.bronze("crm", "contacts"))
        existing = self.existing("crm_contacts")
        return self.write(
            "crm_contacts",
            crm.current_contacts(union_versions(existing, new), accounts),
            existing,
            new.count(),
            {"crm_contacts_unknown_account": "has_unknown_account"},
        )

    def build_opportunities(self, accounts: DataFrame) -> DataFrame:
        new = crm.opportunities_from_bronze(self.bronze("crm", "opportunities"))
        existing = self.existing("crm_opportunities")
        return self.write(
            "crm_opportunities",
            crm.current_opportunities(union_versions(existing, new), accounts),
            existing,
            new.count(),
            {"crm_opportunities_unknown_account": "has_unknown_account"},
        )

    def build_customers(
        self,
        customer_base: DataFrame,
        accounts: DataFrame,
        contacts: DataFrame,
        rows_in: int,
        existing: DataFrame | None,
    ) -> DataFrame:
        aligned = customer_base.transform(customers.align_with_crm(accounts, contacts))
        return self.write(
            "customers",
            aligned,
            existing,
            rows_in,
            {
                "customers_ambiguous_crm_links": F.col("crm_account_count") > 1,
                "customers_with_crm_account": F.col("crm_account_id").isNotNull(),
            },
        )

    def build_products(self) -> DataFrame:
        new = products.products_from_bronze(self.bronze("snowflake", "products"))
        existing = self.existing("products")
        current = products.current_products(union_versions(existing, new))
        return self.write("products", current, existing, new.count())

    def build_orders(
        self, fx_rates: DataFrame, current_customers: DataFrame, current_products: DataFrame
    ) -> DataFrame:
        new = orders.orders_from_bronze(self.bronze("snowflake", "orders")).cache()
        rows_in = new.count()
        existing = self.existing("orders")
        recomputed = target = None
        if existing is not None:
            # Recompute the months of the new versions, the months their earlier versions sit
            # in, and every month from that of the earliest newly arrived FX rate on (its rates
            # may change the conversion of any later order).
            moved = existing.join(new.select("order_id"), on="order_id", how="left_semi")
            months = set(self.months_of(new, "order_date"))
            months |= {r[0] for r in moved.select(orders.PARTITION).distinct().collect()}
            first_month = month_start(self.first_new_rate)
            recomputed = existing.where(in_months(orders.PARTITION, months, first_month))
            target = in_months(f"{TARGET}.{orders.PARTITION}", months, first_month)
        asof = fx_rates.transform(fx.fx_asof_calendar(until=self.day))
        current = orders.current_orders(union_versions(recomputed, new)).transform(
            orders.enrich_orders(asof, current_customers, current_products)
        )
        result = self.write(
            "orders",
            current,
            recomputed,
            rows_in,
            {
                "orders_unknown_customer": F.col("has_unknown_customer"),
                "orders_unknown_product": F.col("has_unknown_product"),
                "orders_without_fx_rate": ~F.col("has_fx_rate"),
            },
            partition=orders.PARTITION,
            target_filter=target,
        )
        new.unpersist()
        return result

    def build_events(self, current_orders: DataFrame) -> None:
        if read_delta(self.spark, self.lake.bronze("kafka", "order_events")) is None:
            log.warning("no bronze order events yet; silver order_events left as it is")
            return
        new = events.events_from_bronze(self.bronze("kafka", "order_events")).cache()
        existing, target, rows_in = self.in_new_months("order_events", new)
        current = events.current_events(union_versions(existing, new), current_orders)
        self.write(
            "order_events",
            current,
            existing,
            rows_in,
            {"order_events_unknown_order": "has_unknown_order"},
            partition=events.PARTITION,
            target_filter=target,
        )
        new.unpersist()

    def build_behavior(self, current_customers: DataFrame) -> None:
        new = events.behavior_from_bronze(self.bronze("redshift", "customer_behavior")).cache()
        existing, target, rows_in = self.in_new_months("customer_behavior", new)
        current = events.current_behavior(union_versions(existing, new), current_customers)
        self.write(
            "customer_behavior",
            current,
            existing,
            rows_in,
            {"customer_behavior_unknown_customer": "has_unknown_customer"},
            partition=events.PARTITION,
            target_filter=target,
        )
        new.unpersist()

    def in_new_months(
        self, table: str, new: DataFrame
    ) -> tuple[DataFrame | None, Column | None, int]:
        """The existing rows in the months the new rows fall in (the rows to recompute), the
        matching bound on the MERGE's target, and the number of new rows."""
        rows_in = new.count()
        existing = self.existing(table)
        if existing is None:
            return None, None, rows_in
        months = self.months_of(new, "event_date")
        return (
            existing.where(in_months(events.PARTITION, months)),
            in_months(f"{TARGET}.{events.PARTITION}", months),
            rows_in,
        )


def month_start(day: dt.date | None) -> dt.date | None:
    return day.replace(day=1) if day is not None else None


def run(context: JobContext) -> JobResult:
    return SilverBuild(context, rebuild=bool(context.options.get("rebuild"))).run()


SILVER_JOB = Job(
    "bronze_to_silver",
    "conform bronze into current-state silver tables (dedup, FX to USD, CRM alignment)",
    run,
)
