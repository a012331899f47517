"""Job ``bronze_to_silver``: merge the run date's bronze into the current state of every silver table.

Small tables (FX, CRM, customers, products) are rebuilt as ``current(existing silver + new
bronze)`` and swapped in whole. Large tables (orders, order events, customer behaviour) are
partitioned by business date and only the partitions the run touches are rewritten (dynamic
partition overwrite). Because "current" picks the latest version by business timestamp with a
total tie-break, merging day by day gives exactly what a rebuild from all bronze would give.
"""

from __future__ import annotations

import logging
import time

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult
from medallion.lake import path_exists, read_parquet, write_partitions, write_table
from medallion.transforms.common import union_versions
from medallion.transforms.silver import crm, customers, events, fx, orders, products

log = logging.getLogger(__name__)


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

    def replace(self, table: str, frame: DataFrame, rows_in: int) -> DataFrame:
        """Swap in the whole table; return it re-read from disk so later steps do not recompute it."""
        path = self.lake.silver(table)
        write_table(frame, path)
        written = read_parquet(self.spark, path)
        self.tables.append(TableCount(f"silver/{table}", rows_in=rows_in, rows_out=written.count()))
        return written

    def replace_partitions(
        self, table: str, frame: DataFrame, partition: str, rows_in: int
    ) -> DataFrame:
        path = self.lake.silver(table)
        frame = frame.cache()
        rows_written = frame.count()
        if self.rebuild:
            write_table(frame, path, partition_by=partition)
        elif rows_written:
            write_partitions(frame, path, partition)
        frame.unpersist()
        current = read_parquet(self.spark, path)
        total = current.count() if current is not None else 0
        self.tables.append(TableCount(f"silver/{table}", rows_in=rows_in, rows_out=total))
        self.details[f"{table}_rows_rewritten"] = rows_written
        return current

    def count_flags(self, frame: DataFrame, flags: dict[str, str | Column]) -> None:
        """One aggregate per table for all its flag counts."""
        conditions = {name: F.col(c) if isinstance(c, str) else c for name, c in flags.items()}
        row = frame.agg(
            *[F.sum(c.cast("int")).alias(name) for name, c in conditions.items()]
        ).first()
        for name in flags:
            self.details[name] = int(row[name] or 0)

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
        self.new_fx_dates = new.select("rate_date").distinct()
        current = fx.fx_rates_current(union_versions(self.existing("fx_rates"), new))
        result = self.replace("fx_rates", current, new.count())
        new.unpersist()
        return result

    def customer_versions(self) -> tuple[DataFrame, int]:
        new = customers.customers_from_bronze(self.bronze("snowflake", "customers"))
        return union_versions(self.existing("customers"), new), new.count()

    def build_accounts(self, customer_base: DataFrame) -> DataFrame:
        new = crm.accounts_from_bronze(self.bronze("crm", "accounts"))
        versions = union_versions(self.existing("crm_accounts"), new)
        result = self.replace(
            "crm_accounts", crm.current_accounts(versions, customer_base), new.count()
        )
        self.count_flags(result, {"crm_accounts_unknown_customer": "has_unknown_customer"})
        return result

    def build_contacts(self, accounts: DataFrame) -> DataFrame:
        new = crm.contacts_from_bronze(self.bronze("crm", "contacts"))
        versions = union_versions(self.existing("crm_contacts"), new)
        result = self.replace("crm_contacts", crm.current_contacts(versions, accounts), new.count())
        self.count_flags(result, {"crm_contacts_unknown_account": "has_unknown_account"})
        return result

    def build_opportunities(self, accounts: DataFrame) -> DataFrame:
        new = crm.opportunities_from_bronze(self.bronze("crm", "opportunities"))
        versions = union_versions(self.existing("crm_opportunities"), new)
        result = self.replace(
            "crm_opportunities", crm.current_opportunities(versions, accounts), new.count()
        )
        self.count_flags(result, {"crm_opportunities_unknown_account": "has_unknown_account"})
        return result

    def build_customers(
        self, customer_base: DataFrame, accounts: DataFrame, contacts: DataFrame, rows_in: int
    ) -> DataFrame:
        aligned = customer_base.transform(customers.align_with_crm(accounts, contacts))
        result = self.replace("customers", aligned, rows_in)
        row = result.agg(
            F.sum((F.col("crm_account_count") > 1).cast("int")).alias("ambiguous"),
            F.sum(F.col("crm_account_id").isNotNull().cast("int")).alias("linked"),
        ).first()
        self.details["customers_ambiguous_crm_links"] = int(row["ambiguous"] or 0)
        self.details["customers_with_crm_account"] = int(row["linked"] or 0)
        return result

    def build_products(self) -> DataFrame:
        new = products.products_from_bronze(self.bronze("snowflake", "products"))
        versions = union_versions(self.existing("products"), new)
        return self.replace("products", products.current_products(versions), new.count())

    def build_orders(
        self, fx_rates: DataFrame, current_customers: DataFrame, current_products: DataFrame
    ) -> DataFrame:
        new = orders.orders_from_bronze(self.bronze("snowflake", "orders")).cache()
        existing = self._base(self.existing("orders"), new)
        if existing is not None:
            # Rewrite the days of the new versions, the days their earlier versions sit in, and
            # every day on or after the earliest newly arrived FX date (its rates may change them).
            moved = existing.join(new.select("order_id"), on="order_id", how="left_semi").select(
                "order_date"
            )
            first_new_rate = self.new_fx_dates.agg(F.min("rate_date").alias("d"))
            rerated = (
                existing.select("order_date").distinct().crossJoin(F.broadcast(first_new_rate))
            )
            rerated = rerated.where(F.col("order_date") >= F.col("d")).select("order_date")
            touched = new.select("order_date").union(moved).union(rerated).distinct()
            existing = existing.join(F.broadcast(touched), on="order_date", how="left_semi")
        asof = fx_rates.transform(fx.fx_asof_calendar(until=self.day))
        current = orders.current_orders(union_versions(existing, new)).transform(
            orders.enrich_orders(asof, current_customers, current_products)
        )
        result = self.replace_partitions("orders", current, "order_date", new.count())
        new.unpersist()
        self.count_flags(
            result,
            {
                "orders_unknown_customer": F.col("has_unknown_customer"),
                "orders_unknown_product": F.col("has_unknown_product"),
                "orders_without_fx_rate": ~F.col("has_fx_rate"),
            },
        )
        return result

    def build_events(self, current_orders: DataFrame) -> None:
        if not path_exists(self.spark, self.lake.bronze("kafka", "order_events")):
            log.warning("no bronze order events yet; silver order_events left as it is")
            return
        new = events.events_from_bronze(self.bronze("kafka", "order_events"))
        existing = self._touched(self._base(self.existing("order_events"), new), new, "event_date")
        current = events.current_events(union_versions(existing, new), current_orders)
        result = self.replace_partitions("order_events", current, "event_date", new.count())
        self.count_flags(result, {"order_events_unknown_order": "has_unknown_order"})

    def build_behavior(self, current_customers: DataFrame) -> None:
        new = events.behavior_from_bronze(self.bronze("redshift", "customer_behavior"))
        existing = self._touched(
            self._base(self.existing("customer_behavior"), new), new, "event_date"
        )
        current = events.current_behavior(union_versions(existing, new), current_customers)
        result = self.replace_partitions("customer_behavior", current, "event_date", new.count())
        self.count_flags(result, {"customer_behavior_unknown_customer": "has_unknown_customer"})

    @staticmethod
    def _base(existing: DataFrame | None, new: DataFrame) -> DataFrame | None:
        """The existing rows in the shape of the new ones (derived columns are recomputed)."""
        return None if existing is None else existing.select(*new.columns)

    @staticmethod
    def _touched(existing: DataFrame | None, new: DataFrame, partition: str) -> DataFrame | None:
        if existing is None:
            return None
        days = new.select(partition).distinct()
        return existing.join(F.broadcast(days), on=partition, how="left_semi")


def run(context: JobContext) -> JobResult:
    return SilverBuild(context, rebuild=bool(context.options.get("rebuild"))).run()


SILVER_JOB = Job(
    "bronze_to_silver",
    "conform bronze into current-state silver tables (dedup, FX to USD, CRM alignment)",
    run,
)
