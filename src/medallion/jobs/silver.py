"""Job ``bronze_to_silver``: merge the run date's bronze into the current state of every silver table.

Small tables (FX, CRM, customers, products) are rebuilt as ``current(existing silver + new
bronze)`` and swapped in whole. Large tables (orders, order events, customer behaviour) are
partitioned by business month and only the months the run touches are read and rewritten
(static partition pruning on the way in, dynamic partition overwrite on the way out). Because
"current" picks the latest version by business timestamp with a total tie-break, merging day by
day gives exactly what a rebuild from all bronze would give.

Counting costs no extra pass where it can be avoided: a run's new bronze rows and a whole
table's written rows and flags are counted as the write consumes them (Spark ``Observation``s);
a partitioned table's total after the run is one aggregate over the written files.
"""

from __future__ import annotations

import logging
import time

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.jobs.observed import Counted
from medallion.lake import path_exists, read_parquet, write_partitions, write_table
from medallion.transforms.common import month_of, union_versions
from medallion.transforms.silver import crm, customers, events, fx, orders, products

log = logging.getLogger(__name__)

Flags = dict[str, str | Column]


def _flag_sums(flags: Flags | None) -> list[Column]:
    return [
        F.sum((F.col(c) if isinstance(c, str) else c).cast("int")).alias(name)
        for name, c in (flags or {}).items()
    ]


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

    # -- IO helpers --------------------------------------------------------------------------

    def bronze(self, source: str, table: str) -> DataFrame:
        path = self.lake.bronze(source, table)
        if not path_exists(self.spark, path):
            raise JobError(
                f"bronze table {source}/{table} does not exist at {path}; run its *_to_bronze job first"
            )
        frame = read_parquet(self.spark, path)
        if frame is None:
            raise JobError(f"bronze table {source}/{table} at {path} holds no data")
        if self.rebuild:
            return frame.where(F.col("_run_date") <= F.lit(self.day))
        return frame.where(F.col("_run_date") == F.lit(self.day))

    def existing(self, table: str) -> DataFrame | None:
        if self.rebuild:
            return None
        return read_parquet(self.spark, self.lake.silver(table))

    def replace(
        self, table: str, frame: DataFrame, new: Counted | int, flags: Flags | None = None
    ) -> DataFrame:
        """Swap in the whole table, counting its rows and flags as they are written; return it
        re-read from disk so later steps do not recompute it."""
        path = self.lake.silver(table)
        written = Observation()
        write_table(
            frame.observe(written, F.count(F.lit(1)).alias("_rows"), *_flag_sums(flags)), path
        )
        rows_in = new if isinstance(new, int) else new.rows
        self.record(table, rows_in, written.get, flags)
        return read_parquet(self.spark, path)

    def replace_partitions(
        self, table: str, frame: DataFrame, partition: str, new: Counted, flags: Flags
    ) -> DataFrame:
        """Rewrite the partitions ``frame`` holds (all of them on a rebuild); return the table."""
        path = self.lake.silver(table)
        rewritten = Observation()
        frame = frame.observe(rewritten, F.count(F.lit(1)).alias("rows"))
        if self.rebuild:
            write_table(frame, path, partition_by=partition)
        else:
            write_partitions(frame, path, partition, file_per_partition=True)
        current = read_parquet(self.spark, path)
        if current is None:
            raise JobError(f"silver {table} holds no rows after the run for {self.day}")
        totals = current.agg(F.count(F.lit(1)).alias("_rows"), *_flag_sums(flags)).first()
        self.record(table, new.rows, totals.asDict(), flags)
        self.details[f"{table}_rows_rewritten"] = int(rewritten.get["rows"])
        return current

    def record(self, table: str, rows_in: int, totals: dict, flags: Flags | None) -> None:
        self.tables.append(
            TableCount(f"silver/{table}", rows_in=rows_in, rows_out=int(totals["_rows"]))
        )
        for name in flags or {}:
            self.details[name] = int(totals[name] or 0)

    def months_of(self, frame: DataFrame, date_column: str) -> list:
        """The distinct months of a run's new rows: a few values, collected so that reads of the
        existing table can be pruned to those partitions before Spark lists a single file."""
        rows = frame.select(month_of(date_column).alias("m")).distinct().collect()
        return sorted(row["m"] for row in rows if row["m"] is not None)

    # -- the build ------------------------------------------------------------------------------

    def run(self) -> JobResult:
        started = time.perf_counter()
        fx_rates = self.build_fx()
        customer_versions, customers_in = self.customer_versions()
        customer_base = customers.current_customers(customer_versions).cache()
        accounts = self.build_accounts(customer_base)
        contacts = self.build_contacts(accounts)
        self.build_opportunities(accounts)
        current_customers = self.build_customers(customer_base, accounts, contacts, customers_in)
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
        self.first_new_rate = new.agg(F.min("rate_date")).first()[0]
        counted = Counted(new)
        current = fx.fx_rates_current(union_versions(self.existing("fx_rates"), counted.frame))
        result = self.replace("fx_rates", current, counted)
        new.unpersist()
        return result

    def customer_versions(self) -> tuple[DataFrame, int]:
        # Counted by an action of its own: the versions feed a cached frame, and an Observation
        # inside a cached plan is not reported.
        new = customers.customers_from_bronze(self.bronze("snowflake", "customers"))
        return union_versions(self.existing("customers"), new), new.count()

    def build_accounts(self, customer_base: DataFrame) -> DataFrame:
        new = Counted(crm.accounts_from_bronze(self.bronze("crm", "accounts")))
        versions = union_versions(self.existing("crm_accounts"), new.frame)
        return self.replace(
            "crm_accounts",
            crm.current_accounts(versions, customer_base),
            new,
            {"crm_accounts_unknown_customer": "has_unknown_customer"},
        )

    def build_contacts(self, accounts: DataFrame) -> DataFrame:
        new = Counted(crm.contacts_from_bronze(self.bronze("crm", "contacts")))
        versions = union_versions(self.existing("crm_contacts"), new.frame)
        return self.replace(
            "crm_contacts",
            crm.current_contacts(versions, accounts),
            new,
            {"crm_contacts_unknown_account": "has_unknown_account"},
        )

    def build_opportunities(self, accounts: DataFrame) -> DataFrame:
        new = Counted(crm.opportunities_from_bronze(self.bronze("crm", "opportunities")))
        versions = union_versions(self.existing("crm_opportunities"), new.frame)
        return self.replace(
            "crm_opportunities",
            crm.current_opportunities(versions, accounts),
            new,
            {"crm_opportunities_unknown_account": "has_unknown_account"},
        )

    def build_customers(
        self, customer_base: DataFrame, accounts: DataFrame, contacts: DataFrame, rows_in: int
    ) -> DataFrame:
        aligned = customer_base.transform(customers.align_with_crm(accounts, contacts))
        return self.replace(
            "customers",
            aligned,
            rows_in,
            {
                "customers_ambiguous_crm_links": F.col("crm_account_count") > 1,
                "customers_with_crm_account": F.col("crm_account_id").isNotNull(),
            },
        )

    def build_products(self) -> DataFrame:
        new = Counted(products.products_from_bronze(self.bronze("snowflake", "products")))
        versions = union_versions(self.existing("products"), new.frame)
        return self.replace("products", products.current_products(versions), new)

    def build_orders(
        self, fx_rates: DataFrame, current_customers: DataFrame, current_products: DataFrame
    ) -> DataFrame:
        new = orders.orders_from_bronze(self.bronze("snowflake", "orders")).cache()
        existing = self.existing("orders")
        if existing is not None:
            # Rewrite the months of the new versions, the months their earlier versions sit in,
            # and every month from that of the earliest newly arrived FX rate on (its rates may
            # change the conversion of any later order).
            moved = existing.join(new.select("order_id"), on="order_id", how="left_semi")
            months = set(self.months_of(new, "order_date"))
            months |= {r[0] for r in moved.select(orders.PARTITION).distinct().collect()}
            month = F.col(orders.PARTITION)
            keep = month.isin(sorted(months))
            if self.first_new_rate is not None:
                keep = keep | (month >= F.trunc(F.lit(self.first_new_rate), "month"))
            existing = existing.where(keep)
        asof = fx_rates.transform(fx.fx_asof_calendar(until=self.day))
        counted = Counted(new)
        current = orders.current_orders(union_versions(existing, counted.frame)).transform(
            orders.enrich_orders(asof, current_customers, current_products)
        )
        result = self.replace_partitions(
            "orders",
            current,
            orders.PARTITION,
            counted,
            {
                "orders_unknown_customer": F.col("has_unknown_customer"),
                "orders_unknown_product": F.col("has_unknown_product"),
                "orders_without_fx_rate": ~F.col("has_fx_rate"),
            },
        )
        new.unpersist()
        return result

    def build_events(self, current_orders: DataFrame) -> None:
        if not path_exists(self.spark, self.lake.bronze("kafka", "order_events")):
            log.warning("no bronze order events yet; silver order_events left as it is")
            return
        new = events.events_from_bronze(self.bronze("kafka", "order_events")).cache()
        existing = self.in_months(self.existing("order_events"), new, "event_date")
        counted = Counted(new)
        current = events.current_events(union_versions(existing, counted.frame), current_orders)
        self.replace_partitions(
            "order_events",
            current,
            events.PARTITION,
            counted,
            {"order_events_unknown_order": "has_unknown_order"},
        )
        new.unpersist()

    def build_behavior(self, current_customers: DataFrame) -> None:
        new = events.behavior_from_bronze(self.bronze("redshift", "customer_behavior")).cache()
        existing = self.in_months(self.existing("customer_behavior"), new, "event_date")
        counted = Counted(new)
        current = events.current_behavior(
            union_versions(existing, counted.frame), current_customers
        )
        self.replace_partitions(
            "customer_behavior",
            current,
            events.PARTITION,
            counted,
            {"customer_behavior_unknown_customer": "has_unknown_customer"},
        )
        new.unpersist()

    def in_months(
        self, existing: DataFrame | None, new: DataFrame, date_column: str
    ) -> DataFrame | None:
        """The existing rows in the months the new rows fall in (the partitions to rewrite)."""
        if existing is None:
            return None
        return existing.where(F.col(events.PARTITION).isin(self.months_of(new, date_column)))


def run(context: JobContext) -> JobResult:
    return SilverBuild(context, rebuild=bool(context.options.get("rebuild"))).run()


SILVER_JOB = Job(
    "bronze_to_silver",
    "conform bronze into current-state silver tables (dedup, FX to USD, CRM alignment)",
    run,
)
