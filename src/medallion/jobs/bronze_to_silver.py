"""Job ``bronze_to_silver``: every silver table as a function of all of bronze.

The state model (docs/SILVER_GOLD.md): bronze keeps every delivered version, one partition per
run date, and a rerun of a date replaces that date's delivery. Silver is a pure function of
bronze: per business key, the latest valid version in the table's version order (business
timestamp, then the later delivery, then the record hash). So each run recomputes every table
from all of bronze, whatever the run date, and the order in which runs happened cannot change
the result: a corrected re-delivery wins, a key that only the replaced delivery had disappears,
an FX correction re-converts the orders it affects, an orphan flag clears when its parent
arrives, and a late or backfilled date is simply more versions.

The recomputation is a specification, not a rewrite: each table is maintained with one MERGE of
its diff (:func:`medallion.transforms.common.table_diff`: changed rows updated, new keys
inserted, vanished keys deleted), so a run commits, and rewrites the files of, only what
changed. A first run (no table yet) and ``--rebuild`` write each table whole in one overwrite
commit; both give the same rows. Every commit carries the run's commit metadata.

Counting uses no Spark ``Observation`` (Delta's writes and MERGE do not report them): the bronze
rows read are counted by an aggregate of their own (Delta answers a plain count from its file
statistics), and the table after the commit (rows and flags) by one aggregate over it.
"""

from __future__ import annotations

import logging
import time

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult, read_bronze
from medallion.lake import Commit, merge_recomputed, overwrite, read_delta
from medallion.quality.table_contracts import primary_key
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
        # rebuild=True writes every table whole (one overwrite) instead of merging its diff.
        self.rebuild = rebuild
        self.tables: list[TableCount] = []
        self.details: dict[str, int] = {}

    # -- IO helpers --------------------------------------------------------------------------

    def bronze(self, source: str, table: str) -> DataFrame:
        return read_bronze(self.context, source, table)

    def write(
        self,
        table: str,
        current: DataFrame,
        rows_in: int,
        flags: Flags | None = None,
        partition: str | None = None,
    ) -> DataFrame:
        """Make the table equal ``current`` (recomputed from bronze) in one commit, count it, and
        return the table as committed, so later steps read it instead of recomputing it."""
        path = self.lake.silver(table)
        metadata = self.context.commit_metadata
        existing = None if self.rebuild else read_delta(self.spark, path)
        if existing is None:
            commit = overwrite(
                current, path, metadata=metadata, partition_by=[partition] if partition else None
            )
        else:
            # The table's business key (one row per key), stated once: the primary key of its
            # contract, quality/contracts/silver/<table>.yaml.
            keys = primary_key("silver", table)
            commit = merge_recomputed(self.spark, path, current, existing, keys, metadata)
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
        # Rows the commit changed (updated + inserted + deleted) and rows it wrote to files
        # (those plus the unchanged rows copied out of rewritten files): how much of the table
        # a run touched.
        self.details[f"{table}_rows_changed"] = commit.rows_written
        self.details[f"{table}_rows_rewritten"] = commit.metrics.get("numOutputRows", 0)
        log.info(
            "silver/%s: %d bronze versions, %d rows changed, %d rows now (version %d, %s)",
            table,
            rows_in,
            commit.rows_written,
            int(totals["_rows"]),
            commit.version,
            commit.operation,
        )

    # -- the build ------------------------------------------------------------------------------

    def run(self) -> JobResult:
        started = time.perf_counter()
        fx_rates = self.build_fx()
        customer_base, customers_in = self.customer_base()
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
        versions = fx.fx_rates_from_bronze(self.bronze("fx", "fx_rates"))
        return self.write("fx_rates", fx.fx_rates_current(versions), versions.count())

    def customer_base(self) -> tuple[DataFrame, int]:
        """Current customers before CRM alignment (the CRM tables are flagged against them)."""
        versions = customers.customers_from_bronze(self.bronze("snowflake", "customers"))
        return customers.current_customers(versions).cache(), versions.count()

    def build_accounts(self, customer_base: DataFrame) -> DataFrame:
        versions = crm.accounts_from_bronze(self.bronze("crm", "accounts"))
        return self.write(
            "crm_accounts",
            crm.current_accounts(versions, customer_base),
            versions.count(),
            {"crm_accounts_unknown_customer": "has_unknown_customer"},
        )

    def build_contacts(self, accounts: DataFrame) -> DataFrame:
        versions = crm.contacts_from_bronze(self.bronze("crm", "contacts"))
        return self.write(
            "crm_contacts",
            crm.current_contacts(versions, accounts),
            versions.count(),
            {"crm_contacts_unknown_account": "has_unknown_account"},
        )

    def build_opportunities(self, accounts: DataFrame) -> DataFrame:
        versions = crm.opportunities_from_bronze(self.bronze("crm", "opportunities"))
        return self.write(
            "crm_opportunities",
            crm.current_opportunities(versions, accounts),
            versions.count(),
            {"crm_opportunities_unknown_account": "has_unknown_account"},
        )

    def build_customers(
        self, customer_base: DataFrame, accounts: DataFrame, contacts: DataFrame, rows_in: int
    ) -> DataFrame:
        aligned = customer_base.transform(customers.align_with_crm(accounts, contacts))
        return self.write(
            "customers",
            aligned,
            rows_in,
            {
                "customers_ambiguous_crm_links": F.col("crm_account_count") > 1,
                "customers_with_crm_account": F.col("crm_account_id").isNotNull(),
            },
        )

    def build_products(self) -> DataFrame:
        versions = products.products_from_bronze(self.bronze("snowflake", "products"))
        return self.write("products", products.current_products(versions), versions.count())

    def build_orders(
        self, fx_rates: DataFrame, current_customers: DataFrame, current_products: DataFrame
    ) -> DataFrame:
        versions = orders.orders_from_bronze(self.bronze("snowflake", "orders"))
        figures = versions.agg(
            F.count(F.lit(1)).alias("rows"), F.max("order_date").alias("last")
        ).first()
        # Rates carry forward to the run date, or to the latest order if bronze holds later
        # deliveries than the run's date (silver is the function of all of bronze).
        until = max(d for d in (self.day, figures["last"]) if d is not None)
        asof = fx_rates.transform(fx.fx_asof_calendar(until=until))
        current = orders.current_orders(versions).transform(
            orders.enrich_orders(asof, current_customers, current_products)
        )
        return self.write(
            "orders",
            current,
            int(figures["rows"]),
            {
                "orders_unknown_customer": F.col("has_unknown_customer"),
                "orders_unknown_product": F.col("has_unknown_product"),
                "orders_without_fx_rate": ~F.col("has_fx_rate"),
            },
            partition=orders.PARTITION,
        )

    def build_events(self, current_orders: DataFrame) -> None:
        if read_delta(self.spark, self.lake.bronze("kafka", "order_events")) is None:
            log.warning("no bronze order events yet; silver order_events left as it is")
            return
        versions = events.events_from_bronze(self.bronze("kafka", "order_events"))
        self.write(
            "order_events",
            events.current_events(versions, current_orders),
            versions.count(),
            {"order_events_unknown_order": "has_unknown_order"},
            partition=events.PARTITION,
        )

    def build_behavior(self, current_customers: DataFrame) -> None:
        versions = events.behavior_from_bronze(self.bronze("redshift", "customer_behavior"))
        self.write(
            "customer_behavior",
            events.current_behavior(versions, current_customers),
            versions.count(),
            {"customer_behavior_unknown_customer": "has_unknown_customer"},
            partition=events.PARTITION,
        )


def run(context: JobContext) -> JobResult:
    return SilverBuild(context, rebuild=bool(context.options.get("rebuild"))).run()


SILVER_JOB = Job(
    "bronze_to_silver",
    "conform bronze into current-state silver tables (dedup, FX to USD, CRM alignment)",
    run,
)
