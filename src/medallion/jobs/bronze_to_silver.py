"""Job ``bronze_to_silver``: every silver table as a function of all of bronze.

The state model (docs/SILVER_GOLD.md): bronze keeps every delivered version, one partition per
run date, and a rerun of a date replaces that date's delivery. Silver is a pure function of
bronze: per business key, the latest valid version in the table's version order (business
timestamp, then the later delivery, then the record hash). The order in which runs happened
cannot change the result: a corrected re-delivery wins, a key that only the replaced delivery
had disappears, an FX correction re-converts the orders it affects, an orphan flag clears when
its parent arrives, and a late or backfilled date is simply more versions.

The function is the specification; a run computes it incrementally. Every silver commit records
the bronze version of each bronze table it was computed from (``inputs`` in its commit
metadata). The next run asks each bronze table's change data feed what changed since those
versions, derives the keys whose row can have changed (the changed keys and the keys linked to
them, :mod:`medallion.transforms.silver.scope`), recomputes those keys only, from all their
bronze versions, and makes the table equal the result with one MERGE of the diff
(:func:`medallion.transforms.common.table_diff`: changed rows updated, new keys inserted,
vanished keys deleted). So a day's run reads its own delivery's changes, the bronze versions of
the keys they touch and the files of the keys it rewrites, not all of history.

Whenever the feed cannot answer (a table without a recorded watermark: its first run, a restore,
a lake older than the feed; a bronze table created without it; commits cleaned from the log) the
table is recomputed whole from all of bronze and its diff merged, which gives the same rows.
``--rebuild`` writes every table whole in one overwrite commit, and so does a run for a table
computed from fewer bronze versions than ``incremental.min_versions`` (config): below that size
the incremental way's fixed cost per table (the feed's reads, the scope's joins, the diff,
MERGE's passes) exceeds a whole recomputation (docs/PERFORMANCE.md; 0, the default, never does
this). All bronze reads of a run are pinned to the versions recorded, so the watermark names
exactly what the run read.

Counting uses no Spark ``Observation`` (Delta's writes and MERGE do not report them): the bronze
rows read are counted by an aggregate of their own (Delta answers a plain count from its file
statistics), and the table after the commit (rows and flags) by one aggregate over it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion.audit import TableCount
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.jobs.base import Job, JobContext, JobResult, read_bronze
from medallion.lake import (
    ChangeFeedUnavailable,
    Commit,
    last_content_commit,
    merge_recomputed,
    overwrite,
    read_changes,
    read_delta,
    table_version,
)
from medallion.quality.table_contracts import primary_key
from medallion.transforms.silver import crm, customers, events, fx, orders, products
from medallion.transforms.silver.scope import (
    changed_keys,
    linked_keys,
    rate_linked_keys,
    union_keys,
    within,
)

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
        # Small tables are written whole too (IncrementalConfig).
        self.incremental = context.settings.incremental
        self.whole: set[str] = set()  # the tables written with one overwrite for their size
        self.tables: list[TableCount] = []
        self.details: dict[str, int] = {}
        # The bronze version each bronze table is read at, for the whole run: what the commits'
        # watermark says this run computed from.
        self.inputs: dict[str, int] = {}
        for source, table in BRONZE_INPUTS:
            version = table_version(self.spark, self.lake.bronze(source, table))
            if version is not None:
                self.inputs[f"{source}/{table}"] = version
        self.metadata = context.commit_metadata_with(inputs=self.inputs)
        self._changes: dict[tuple[str, int], DataFrame] = {}
        self.scopes: dict[str, str] = {}

    # -- IO helpers --------------------------------------------------------------------------

    def bronze(self, source: str, table: str) -> DataFrame:
        """Every version bronze holds for ``source/table``, at the run's pinned version."""
        return read_bronze(self.context, source, table, self.inputs.get(f"{source}/{table}"))

    def watermark(self, table: str) -> dict[str, int] | None:
        """The bronze versions silver/``table`` was last computed from, or None when it must be
        computed whole (rebuild, no table yet, or its last commit was not a silver run's)."""
        if self.rebuild:
            return None
        commit = last_content_commit(self.spark, self.lake.silver(table))  # None: no table yet
        inputs = commit.metadata.get("inputs") if commit else None
        return inputs if isinstance(inputs, dict) else None

    def changes(
        self, since: dict[str, int], source: str, table: str, project: Callable
    ) -> DataFrame | None:
        """The bronze rows of ``source/table`` changed since ``since`` (pre- and post-images),
        in the silver shape ``project`` gives; None when the change feed cannot say."""
        label = f"{source}/{table}"
        if label not in self.inputs or not isinstance(since.get(label), int):
            return None
        after = since[label]
        if after > self.inputs[label]:
            return None  # bronze is behind the watermark: the table was dropped and written anew
        key = (label, after)
        if key not in self._changes:
            path = self.lake.bronze(source, table)
            try:
                frame = read_changes(self.spark, path, after, self.inputs[label])
            except ChangeFeedUnavailable as exc:
                log.info("no change feed for bronze %s (%s)", label, exc)
                return None
            self._changes[key] = frame
        return project(self._changes[key])

    def scoped(
        self,
        table: str,
        versions: DataFrame,
        rows: int,
        scope: Callable[[dict[str, int]], DataFrame | None],
    ) -> tuple[DataFrame, DataFrame | None]:
        """``versions`` (``rows`` of them) restricted to the keys the run recomputes, with those
        keys (cached); all of ``versions`` and None when the table is computed whole.

        A table with fewer versions than ``incremental.min_versions`` is computed whole and
        overwritten: below that size a whole recomputation costs less than the change feed's
        reads, the scope's joins, the diff and the MERGE (docs/PERFORMANCE.md)."""
        if self.rebuild:
            self.scopes[table] = "whole"
            return versions, None
        if self.incremental.whole(lambda: rows):
            self.whole.add(table)
            self.scopes[table] = "whole (small table)"
            return versions, None
        since = self.watermark(table)
        keys = None if since is None else scope(since)
        if keys is None:
            self.scopes[table] = "whole"
            return versions, None
        keys = keys.cache()
        self.scopes[table] = "changed keys"
        return within(versions, keys, primary_key("silver", table)), keys

    def write(
        self,
        table: str,
        current: DataFrame,
        rows_in: int,
        flags: Flags | None = None,
        partition: str | None = None,
        scope: DataFrame | None = None,
    ) -> DataFrame:
        """Make the table equal ``current`` in one commit, count it, and return the table as
        committed, so later steps read it instead of recomputing it. ``current`` holds the
        recomputed rows of the keys in ``scope`` (every key when ``scope`` is None)."""
        path = self.lake.silver(table)
        whole = self.rebuild or table in self.whole
        existing = None if whole else read_delta(self.spark, path)
        if existing is None:
            commit = overwrite(
                current,
                path,
                metadata=self.metadata,
                partition_by=[partition] if partition else None,
            )
        else:
            # The table's business key (one row per key), stated once: the primary key of its
            # contract, quality/contracts/silver/<table>.yaml.
            keys = primary_key("silver", table)
            if scope is not None:
                existing = within(existing, scope, keys)
            commit = merge_recomputed(self.spark, path, current, existing, keys, self.metadata)
        if scope is not None:
            scope.unpersist()
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
        self.versions = {
            "customers": customers.customers_from_bronze(self.bronze("snowflake", "customers")),
            "accounts": crm.accounts_from_bronze(self.bronze("crm", "accounts")),
            "contacts": crm.contacts_from_bronze(self.bronze("crm", "contacts")),
        }
        fx_rates = self.build_fx()
        # The CRM tables flag accounts against the customers bronze knows of (any version).
        known_customers = self.versions["customers"].select("customer_id").distinct().cache()
        accounts = self.build_accounts(known_customers)
        contacts = self.build_contacts(accounts)
        self.build_opportunities(accounts)
        known_customers.unpersist()
        current_customers = self.build_customers(accounts, contacts)
        current_products = self.build_products()
        current_orders = self.build_orders(fx_rates, current_customers, current_products)
        crash_point("silver.after_orders")
        self.build_events(current_orders)
        self.build_behavior(current_customers)
        self.details["recomputed"] = dict(self.scopes)
        log.info(
            "bronze_to_silver %s: %d tables in %.1fs (%s)",
            self.day,
            len(self.tables),
            time.perf_counter() - started,
            ", ".join(f"{t}: {how}" for t, how in self.scopes.items()),
        )
        return JobResult(tables=self.tables, details=self.details)

    # What changed since a table's watermark, in the silver shape of each bronze table.

    def changed_customers(self, since: dict[str, int]) -> DataFrame | None:
        return self.changes(since, "snowflake", "customers", customers.customers_from_bronze)

    def changed_accounts(self, since: dict[str, int]) -> DataFrame | None:
        return self.changes(since, "crm", "accounts", crm.accounts_from_bronze)

    def changed_contacts(self, since: dict[str, int]) -> DataFrame | None:
        return self.changes(since, "crm", "contacts", crm.contacts_from_bronze)

    def changed_orders(self, since: dict[str, int]) -> DataFrame | None:
        return self.changes(since, "snowflake", "orders", orders.orders_from_bronze)

    def linked_scope(
        self,
        table: str,
        versions: DataFrame,
        own: DataFrame | None,
        links: Sequence[tuple[str, DataFrame | None, str]],
    ) -> DataFrame | None:
        """The keys of ``table`` to recompute: those of its own changed rows ``own``, and those
        of its versions whose link column (first of each link) holds a key (last) of a changed
        parent row (middle). None when any of the changes is unknown."""
        keys = primary_key("silver", table)
        if own is None or any(changed is None for _, changed, _ in links):
            return None
        parts = [changed_keys(own, keys)]
        for column, changed, parent_key in links:
            parts.append(linked_keys(versions, column, changed.select(parent_key), keys))
        return union_keys(*parts)

    def build_fx(self) -> DataFrame:
        versions = fx.fx_rates_from_bronze(self.bronze("fx", "fx_rates"))

        def scope(since: dict[str, int]) -> DataFrame | None:
            own = self.changes(since, "fx", "fx_rates", fx.fx_rates_from_bronze)
            return self.linked_scope("fx_rates", versions, own, links=[])

        rows = versions.count()
        recomputed, scope_keys = self.scoped("fx_rates", versions, rows, scope)
        return self.write("fx_rates", fx.fx_rates_current(recomputed), rows, scope=scope_keys)

    def build_accounts(self, known_customers: DataFrame) -> DataFrame:
        versions = self.versions["accounts"]

        def scope(since: dict[str, int]) -> DataFrame | None:
            # An account's orphan flag changes when its customer comes or goes.
            customer_changes = self.changed_customers(since)
            links = [("customer_id", customer_changes, "customer_id")]
            return self.linked_scope("crm_accounts", versions, self.changed_accounts(since), links)

        rows = versions.count()
        recomputed, scope_keys = self.scoped("crm_accounts", versions, rows, scope)
        return self.write(
            "crm_accounts",
            crm.current_accounts(recomputed, known_customers),
            rows,
            {"crm_accounts_unknown_customer": "has_unknown_customer"},
            scope=scope_keys,
        )

    def build_contacts(self, accounts: DataFrame) -> DataFrame:
        versions = self.versions["contacts"]

        def scope(since: dict[str, int]) -> DataFrame | None:
            links = [("account_id", self.changed_accounts(since), "account_id")]
            return self.linked_scope("crm_contacts", versions, self.changed_contacts(since), links)

        rows = versions.count()
        recomputed, scope_keys = self.scoped("crm_contacts", versions, rows, scope)
        return self.write(
            "crm_contacts",
            crm.current_contacts(recomputed, accounts),
            rows,
            {"crm_contacts_unknown_account": "has_unknown_account"},
            scope=scope_keys,
        )

    def build_opportunities(self, accounts: DataFrame) -> DataFrame:
        versions = crm.opportunities_from_bronze(self.bronze("crm", "opportunities"))

        def scope(since: dict[str, int]) -> DataFrame | None:
            own = self.changes(since, "crm", "opportunities", crm.opportunities_from_bronze)
            links = [("account_id", self.changed_accounts(since), "account_id")]
            return self.linked_scope("crm_opportunities", versions, own, links)

        rows = versions.count()
        recomputed, scope_keys = self.scoped("crm_opportunities", versions, rows, scope)
        return self.write(
            "crm_opportunities",
            crm.current_opportunities(recomputed, accounts),
            rows,
            {"crm_opportunities_unknown_account": "has_unknown_account"},
            scope=scope_keys,
        )

    def customers_scope(self, since: dict[str, int]) -> DataFrame | None:
        """A customer's CRM alignment reads every account that points at it and the primary
        contact of the chosen account, so a changed account, or a changed contact of an account,
        puts the account's customers in scope: those of the account's versions in bronze (the
        customer an account used to point at is found from its older version) and of the
        changed rows themselves (a version a corrected delivery removed is only in the feed)."""
        own = self.changed_customers(since)
        changed_accounts = self.changed_accounts(since)
        changed_contacts = self.changed_contacts(since)
        if own is None or changed_accounts is None or changed_contacts is None:
            return None
        contacts = self.versions["contacts"].unionByName(changed_contacts)
        accounts = self.versions["accounts"].unionByName(changed_accounts)
        contact_accounts = linked_keys(
            contacts.where(F.col("account_id").isNotNull()),
            "contact_id",
            changed_contacts.select("contact_id"),
            ["account_id"],
        )
        touched = union_keys(changed_keys(changed_accounts, ["account_id"]), contact_accounts)
        linked_customers = linked_keys(
            accounts.where(F.col("customer_id").isNotNull()),
            "account_id",
            touched,
            ["customer_id"],
        )
        return union_keys(changed_keys(own, ["customer_id"]), linked_customers)

    def build_customers(self, accounts: DataFrame, contacts: DataFrame) -> DataFrame:
        versions = self.versions["customers"]
        rows = versions.count()
        recomputed, scope_keys = self.scoped("customers", versions, rows, self.customers_scope)
        aligned = customers.current_customers(recomputed).transform(
            customers.align_with_crm(accounts, contacts)
        )
        return self.write(
            "customers",
            aligned,
            rows,
            {
                "customers_ambiguous_crm_links": F.col("crm_account_count") > 1,
                "customers_with_crm_account": F.col("crm_account_id").isNotNull(),
            },
            scope=scope_keys,
        )

    def build_products(self) -> DataFrame:
        versions = products.products_from_bronze(self.bronze("snowflake", "products"))

        def scope(since: dict[str, int]) -> DataFrame | None:
            own = self.changes(since, "snowflake", "products", products.products_from_bronze)
            return self.linked_scope("products", versions, own, links=[])

        rows = versions.count()
        recomputed, scope_keys = self.scoped("products", versions, rows, scope)
        return self.write("products", products.current_products(recomputed), rows, scope=scope_keys)

    def build_orders(
        self, fx_rates: DataFrame, current_customers: DataFrame, current_products: DataFrame
    ) -> DataFrame:
        versions = orders.orders_from_bronze(self.bronze("snowflake", "orders"))
        figures = versions.agg(
            F.count(F.lit(1)).alias("rows"), F.max("order_date").alias("last")
        ).first()

        def scope(since: dict[str, int]) -> DataFrame | None:
            # An order's flags read its customer's and product's existence; its USD amount the
            # rate in force on its date.
            rate_changes = self.changes(since, "fx", "fx_rates", fx.fx_rates_from_bronze)
            product_changes = self.changes(
                since, "snowflake", "products", products.products_from_bronze
            )
            links = [
                ("customer_id", self.changed_customers(since), "customer_id"),
                ("product_id", product_changes, "product_id"),
            ]
            linked = self.linked_scope("orders", versions, self.changed_orders(since), links)
            if linked is None or rate_changes is None:
                return None
            by_rate = rate_linked_keys(
                versions, rate_changes, currency="currency", date="order_date", keys=["order_id"]
            )
            return union_keys(linked, by_rate)

        rows = int(figures["rows"])
        recomputed, scope_keys = self.scoped("orders", versions, rows, scope)
        # Rates carry forward to the run date, or to the latest order if bronze holds later
        # deliveries than the run's date (silver is the function of all of bronze).
        until = max(d for d in (self.day, figures["last"]) if d is not None)
        asof = fx_rates.transform(fx.fx_asof_calendar(until=until))
        current = orders.current_orders(recomputed).transform(
            orders.enrich_orders(asof, current_customers, current_products)
        )
        return self.write(
            "orders",
            current,
            rows,
            {
                "orders_unknown_customer": F.col("has_unknown_customer"),
                "orders_unknown_product": F.col("has_unknown_product"),
                "orders_without_fx_rate": ~F.col("has_fx_rate"),
            },
            partition=orders.PARTITION,
            scope=scope_keys,
        )

    def build_events(self, current_orders: DataFrame) -> None:
        if "kafka/order_events" not in self.inputs:
            log.warning("no bronze order events yet; silver order_events left as it is")
            return
        versions = events.events_from_bronze(self.bronze("kafka", "order_events"))

        def scope(since: dict[str, int]) -> DataFrame | None:
            own = self.changes(since, "kafka", "order_events", events.events_from_bronze)
            links = [("order_id", self.changed_orders(since), "order_id")]
            return self.linked_scope("order_events", versions, own, links)

        rows = versions.count()
        recomputed, scope_keys = self.scoped("order_events", versions, rows, scope)
        self.write(
            "order_events",
            events.current_events(recomputed, current_orders),
            rows,
            {"order_events_unknown_order": "has_unknown_order"},
            partition=events.PARTITION,
            scope=scope_keys,
        )

    def build_behavior(self, current_customers: DataFrame) -> None:
        versions = events.behavior_from_bronze(self.bronze("redshift", "customer_behavior"))

        def scope(since: dict[str, int]) -> DataFrame | None:
            own = self.changes(since, "redshift", "customer_behavior", events.behavior_from_bronze)
            links = [("customer_id", self.changed_customers(since), "customer_id")]
            return self.linked_scope("customer_behavior", versions, own, links)

        rows = versions.count()
        recomputed, scope_keys = self.scoped("customer_behavior", versions, rows, scope)
        self.write(
            "customer_behavior",
            events.current_behavior(recomputed, current_customers),
            rows,
            {"customer_behavior_unknown_customer": "has_unknown_customer"},
            partition=events.PARTITION,
            scope=scope_keys,
        )


# The bronze tables silver is computed from, pinned at one version each for a run.
BRONZE_INPUTS = (
    ("fx", "fx_rates"),
    ("snowflake", "customers"),
    ("snowflake", "products"),
    ("snowflake", "orders"),
    ("crm", "accounts"),
    ("crm", "contacts"),
    ("crm", "opportunities"),
    ("redshift", "customer_behavior"),
    ("kafka", "order_events"),
)


def run(context: JobContext) -> JobResult:
    return SilverBuild(context, rebuild=bool(context.options.get("rebuild"))).run()


SILVER_JOB = Job(
    "bronze_to_silver",
    "conform bronze into current-state silver tables (dedup, FX to USD, CRM alignment)",
    run,
)
