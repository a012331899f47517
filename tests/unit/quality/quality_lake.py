"""A tiny but complete lake for the quality tests: silver written by hand, gold built from it
with the real gold transformations, bronze for the key checks, quarantine with a hostile raw
record, and audit records for two run dates. Every table is a Delta table, as in the pipeline's
lake: silver, bronze and quarantine written with ``deltalake`` (no Spark job), gold by Spark."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pyarrow as pa
from deltalake import write_deltalake
from pyspark.sql import functions as F

from medallion.audit import AuditRecord, TableCount, write_record

D1, D = dt.date(2025, 1, 14), dt.date(2025, 1, 15)
TS = dt.datetime
HOSTILE_RAW = '"O9",<script>alert("pwned")</script>,C1'

CUSTOMERS = (
    "customer_id string, first_name string, last_name string, email string, phone string, "
    "country string, segment string, created_at timestamp, updated_at timestamp, "
    "crm_account_id string, crm_account_name string, crm_industry string, crm_account_count int, "
    "crm_account_updated_at timestamp"
)
PRODUCTS = (
    "product_id string, sku string, product_name string, category string, subcategory string, "
    "brand string, price_usd decimal(18,2), cost_usd decimal(18,2), active boolean, "
    "created_at timestamp, updated_at timestamp"
)
ORDERS = (
    "order_id string, customer_id string, product_id string, order_ts timestamp, quantity int, "
    "unit_price decimal(18,2), amount decimal(18,2), currency string, status string, "
    "fx_rate decimal(18,8), fx_rate_date date, amount_usd decimal(18,2), has_fx_rate boolean, "
    "has_unknown_customer boolean, has_unknown_product boolean, order_date date"
)
EVENTS = (
    "event_id string, order_id string, event_type string, event_ts timestamp, status string, "
    "has_unknown_order boolean, event_date date"
)
BEHAVIOR = (
    "customer_id string, login_count int, page_views int, session_duration_minutes decimal(10,2), "
    "purchases int, revenue decimal(18,2), has_unknown_customer boolean, event_date date"
)


def _customer(cid, segment, email, updated, account=None):
    return (
        cid, "Ann", "Lee", email, None, "US", segment, TS(2024, 1, 1), updated,
        account, "Acme" if account else None, "Retail" if account else None,
        1 if account else 0, TS(2024, 1, 1) if account else None,
    )  # fmt: skip


def _order(oid, cid, pid, ts, amount, currency, rate, usd, status="paid"):
    return (
        oid, cid, pid, ts, 1, Decimal(amount), Decimal(amount), currency, status,
        Decimal(rate), ts.date(), Decimal(usd), True, False, False, ts.date(),
    )  # fmt: skip


def write_audit(root: str, job: str, day: dt.date, tables: list[TableCount], minute: int,
                status: str = "succeeded", details: dict | None = None, error: str | None = None) -> None:  # fmt: skip
    record = AuditRecord.start(job, "local", day)
    record.finish(status, tables, error=error, details=details)
    record.started_at = f"{day.isoformat()}T02:{minute:02d}:00.000Z"
    record.duration_s = 3.0 + minute
    write_record(root, record)


_ARROW_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "int": pa.int32(),
    "boolean": pa.bool_(),
    "array<string>": pa.list_(pa.string()),
}


def write_delta(rows: list[tuple], ddl: str, path: str, partition: list[str] | None = None) -> None:
    """Write rows with a Spark DDL schema as a Delta table with deltalake (cheaper than Spark)."""
    fields = []
    for column in ddl.split(", "):
        name, kind = column.split(" ", 1)
        decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", kind)
        fields.append(
            pa.field(
                name,
                pa.decimal128(int(decimal[1]), int(decimal[2])) if decimal else _ARROW_TYPES[kind],
            )
        )
    table = pa.Table.from_pylist(
        [dict(zip([f.name for f in fields], row)) for row in rows], pa.schema(fields)
    )
    write_deltalake(path, table, partition_by=partition or None, mode="overwrite")


def build_lake(spark, root: str) -> None:
    from medallion.transforms.gold import analytics, dim_customer, dimensions, facts

    first_day = [
        _customer("C1", "consumer", "c1@example.com", TS(2025, 1, 10), account="A1"),
        _customer("C2", "consumer", "c2@example.com", TS(2025, 1, 10)),
        _customer("C3", "enterprise", "c3@example.com", TS(2025, 1, 11)),
    ]
    silver = {
        "customers": ([first_day[0], _customer("C2", "enterprise", "ann.lee@example.org", TS(2025, 1, 15, 10)), first_day[2]], CUSTOMERS, None),
        "products": (
            [("P1", "SKU1", "Lamp", "Home", "Lights", "Lumo", Decimal("10.00"), Decimal("4.00"), True, TS(2024, 1, 1), TS(2024, 1, 1)),
             ("P2", "SKU2", "Desk", "Home", "Furniture", "Oak", Decimal("90.00"), Decimal("40.00"), True, TS(2024, 1, 1), TS(2024, 1, 1))],
            PRODUCTS, None,
        ),
        "orders": (
            [_order("O1", "C1", "P1", TS(2025, 1, 14, 9), "10.00", "USD", "1", "10.00"),
             _order("O2", "C2", "P2", TS(2025, 1, 15, 9), "90.00", "EUR", "0.9", "100.00"),
             _order("O3", "C3", "P1", TS(2025, 1, 15, 12), "10.00", "USD", "1", "10.00", status="pending")],
            ORDERS, ["order_date"],
        ),
        "order_events": (
            [("E1", "O1", "order_created", TS(2025, 1, 14, 9), "pending", False, D1),
             ("E2", "O2", "order_created", TS(2025, 1, 15, 9), "pending", False, D),
             ("E3", "O2", "order_paid", TS(2025, 1, 15, 10), "paid", False, D)],
            EVENTS, ["event_date"],
        ),
        "customer_behavior": (
            [("C1", 2, 10, Decimal("5.50"), 1, Decimal("10.00"), False, D1),
             ("C2", 1, 4, Decimal("2.00"), 0, Decimal("0.00"), False, D)],
            BEHAVIOR, ["event_date"],
        ),
        "fx_rates": (
            [(day, "USD", ccy, Decimal(rate), day) for day in (D1, D) for ccy, rate in (("EUR", "0.9"), ("USD", "1"))],
            "rate_date date, base_ccy string, quote_ccy string, rate decimal(18,8), _run_date date", None,
        ),
        "crm_accounts": ([("A1", "Acme", "C1", False)], "account_id string, account_name string, customer_id string, has_unknown_customer boolean", None),
        "crm_contacts": ([("K1", "A1", False)], "contact_id string, account_id string, has_unknown_account boolean", None),
        "crm_opportunities": (
            [("OP1", "A1", "EUR", Decimal("1000.00"), False, False)],
            "opportunity_id string, account_id string, currency string, amount decimal(18,2), is_closed boolean, has_unknown_account boolean",
            None,
        ),
    }  # fmt: skip
    frames = {}
    for name, (rows, ddl, partition) in silver.items():
        write_delta(rows, ddl, f"{root}/silver/{name}", partition)
        frames[name] = spark.createDataFrame(rows, ddl)

    # Gold from the real transformations, written by Spark as the gold job would.
    customers, products, orders = frames["customers"], frames["products"], frames["orders"]
    # Bronze's version history: the first day's versions and the current ones (C2 changed).
    versions = spark.createDataFrame([*first_day, silver["customers"][0][1]], CUSTOMERS).select(
        "customer_id", "first_name", "last_name", "email", "country", "segment", "updated_at",
        F.to_date("updated_at").alias("_run_date"),
        F.sha2(F.concat_ws("|", "customer_id", "email", "segment"), 256).alias("_record_hash"),
    )  # fmt: skip
    accounts = spark.createDataFrame(
        [("A1", "C1", "Retail", TS(2024, 1, 1), TS(2024, 1, 1), D1, "a1")],
        "account_id string, customer_id string, industry string, created_at timestamp, "
        "updated_at timestamp, _run_date date, _record_hash string",
    )
    dim_c = dim_customer.dim_customer(versions, accounts, customers).localCheckpoint()
    dim_p = dimensions.dim_product(products)
    fact = orders.transform(facts.fact_orders(dim_c, dim_p)).localCheckpoint()
    events_by_customer = (
        frames["order_events"].join(orders.select("order_id", "customer_id"), on="order_id", how="left")
        .select("customer_id", "event_id", "event_ts", "event_type")
    )  # fmt: skip
    pipeline = (
        frames["crm_opportunities"].join(frames["crm_accounts"].select("account_id", "customer_id"), on="account_id", how="left")
        .select("customer_id", "is_closed", (F.col("amount") / 0.9).alias("amount_usd"))
    )  # fmt: skip
    gold = {
        "dim_customer": dim_c,
        "dim_product": dim_p,
        "fact_orders": fact,
        "dim_date": dimensions.dim_date(spark, D1, D),
        "customer_360": analytics.customer_360(dim_c, fact, frames["customer_behavior"], pipeline, events_by_customer),
        "product_performance": analytics.product_performance(dim_p, fact),
    }  # fmt: skip
    for name, frame in gold.items():
        frame.coalesce(1).write.format("delta").mode("overwrite").save(f"{root}/gold/{name}")

    bronze = {
        "snowflake/orders": ("order_id string", [[("O1",)], [("O2",), ("O3",)]]),
        "snowflake/customers": ("customer_id string", [[("C1",), ("C2",), ("C3",)], [("C2",)]]),
        "snowflake/products": ("product_id string", [[("P1",), ("P2",)], []]),
        "kafka/order_events": ("event_id string", [[("E1",)], [("E2",), (" E3 ",)]]),
    }
    for name, (ddl, days) in bronze.items():
        rows = [
            (*row, day, batch)
            for batch, (day, day_rows) in enumerate(zip((D1, D), days))
            for row in day_rows
        ]
        write_delta(
            rows, f"{ddl}, _run_date date, _batch_id int", f"{root}/bronze/{name}", ["_run_date"]
        )
    write_delta(
        [("r1", HOSTILE_RAW, ["order_id:pattern", "currency:allowed"], "landing/snowflake/orders/dt=2025-01-15/orders.csv", 7, D),
         ("r1", '"O8",C1,P1,,XYZ', ["currency:allowed"], "landing/snowflake/orders/dt=2025-01-15/orders.csv", 9, D),
         ("r0", '"O7",C1,P1,,ABC', ["currency:allowed"], "landing/snowflake/orders/dt=2025-01-14/orders.csv", 3, D1)],
        "_run_id string, _raw_record string, _reasons array<string>, _source_file string, _line int, _run_date date",
        f"{root}/quarantine/snowflake/orders",
        ["_run_date"],
    )  # fmt: skip

    # The audit trail of both run dates: bronze jobs per source table, silver and gold counts.
    sources = {
        "fx_json_to_bronze": ["fx/fx_rates"],
        "crm_to_bronze": ["crm/accounts", "crm/contacts", "crm/opportunities"],
        "snowflake_to_bronze": ["snowflake/customers", "snowflake/orders", "snowflake/products"],
        "redshift_to_bronze": ["redshift/customer_behavior"],
        "kafka_events_to_bronze": ["kafka/order_events"],
    }
    for day in (D1, D):
        for minute, (job, tables) in enumerate(sources.items()):
            counts = [
                TableCount(name, rows_in=5, rows_out=3, rows_quarantined=2)
                if name == "snowflake/orders" and day == D
                else TableCount(name, rows_in=4, rows_out=4)
                for name in tables
            ]
            write_audit(root, job, day, counts, minute)
        write_audit(
            root,
            "bronze_to_silver",
            day,
            [TableCount("silver/orders", 2, 3 if day == D else 1)],
            10,
        )
        write_audit(
            root, "silver_to_gold", day,
            [TableCount("gold/fact_orders", 3, 3 if day == D else 2), TableCount("gold/dim_customer", 3, 5 if day == D else 4)],
            11, details={"dim_customer_changes_today": 1 if day == D else 0},
        )  # fmt: skip
