"""Gold-like tables for the publisher tests, and a window into each warehouse target.

Gold is written as Delta tables with ``deltalake`` (no Spark needed): each ``write`` is a new
version of the table, so the files of earlier versions stay in the folder, removed by the log,
exactly what the publisher must never read. Shapes follow DESIGN.md section 7.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
from deltalake import write_deltalake

from medallion.config import SnowflakeConfig
from medallion.lake import Lake

UTC = dt.UTC

DIM_CUSTOMER = pa.schema(
    [
        ("customer_sk", pa.int64()),
        ("customer_id", pa.string()),
        ("segment", pa.string()),
        ("country", pa.string()),
        ("email", pa.string()),
        ("valid_from", pa.timestamp("us", tz="UTC")),
        ("valid_to", pa.timestamp("us", tz="UTC")),
        ("is_current", pa.bool_()),
    ]
)
DIM_DATE = pa.schema(
    [
        ("date_sk", pa.int32()),
        ("date", pa.date32()),
        ("year", pa.int32()),
        ("month", pa.int32()),
        ("day_name", pa.string()),
    ]
)
FACT_ORDERS = pa.schema(
    [
        ("order_id", pa.string()),
        ("customer_sk", pa.int64()),
        ("product_sk", pa.int64()),
        ("date_sk", pa.int32()),
        ("quantity", pa.int32()),
        ("amount", pa.decimal128(18, 2)),
        ("currency", pa.string()),
        ("fx_rate", pa.decimal128(18, 8)),
        ("amount_usd", pa.decimal128(18, 2)),
        ("status", pa.string()),
    ]
)
CUSTOMER_360 = pa.schema(
    [
        ("customer_id", pa.string()),
        ("lifetime_orders", pa.int64()),
        ("lifetime_revenue_usd", pa.decimal128(18, 2)),
        ("last_order_ts", pa.timestamp("us")),  # a TimestampNTZ column
    ]
)
SCHEMAS = {
    "dim_customer": DIM_CUSTOMER,
    "dim_date": DIM_DATE,
    "fact_orders": FACT_ORDERS,
    "customer_360": CUSTOMER_360,
}

T0 = dt.datetime(2025, 1, 13, 8, 30, 15, 123456, tzinfo=UTC)
T1 = dt.datetime(2025, 1, 14, 9, 0, 0, 654321, tzinfo=UTC)
END = dt.datetime(9999, 12, 31, tzinfo=UTC)


def customer(sk, cid, segment="retail", country="DE", valid_from=T0, valid_to=END, current=True):
    return {
        "customer_sk": sk,
        "customer_id": cid,
        "segment": segment,
        "country": country,
        "email": f"{cid}@example.com",
        "valid_from": valid_from,
        "valid_to": valid_to,
        "is_current": current,
    }


def order(oid, customer_sk=1, amount="10.50", status="shipped", fx_rate="0.91234567"):
    amount_d = Decimal(amount)
    return {
        "order_id": oid,
        "customer_sk": customer_sk,
        "product_sk": 7,
        "date_sk": 20250113,
        "quantity": 2,
        "amount": amount_d,
        "currency": "EUR",
        "fx_rate": Decimal(fx_rate),
        "amount_usd": (amount_d / Decimal(fx_rate)).quantize(Decimal("0.01")),
        "status": status,
    }


def day(date_sk):
    date = dt.date(date_sk // 10000, date_sk // 100 % 100, date_sk % 100)
    return {
        "date_sk": date_sk,
        "date": date,
        "year": date.year,
        "month": date.month,
        "day_name": date.strftime("%A"),
    }


class GoldLake:
    """Writes gold-like Delta tables into a tmp lake, one new version per ``write``."""

    def __init__(self, root: str) -> None:
        self.lake = Lake.from_root(root)

    def write(self, table: str, rows: list[dict], schema: pa.Schema | None = None) -> str:
        """Replace the table's contents with ``rows`` (the schema too, when it changed).

        Two commits, an overwrite and an append of half the rows each, so a version has two
        data files and the earlier versions' files stay behind in the folder.
        """
        schema = schema or SCHEMAS[table]
        path = self.lake.gold(table)
        data = pa.Table.from_pylist(rows, schema=schema)
        half = data.num_rows // 2
        write_deltalake(path, data.slice(0, half), mode="overwrite", schema_mode="overwrite")
        write_deltalake(path, data.slice(half), mode="append")
        return path


class Target:
    """One warehouse target under test, with ways to look inside it."""

    def __init__(self, kind: str, warehouse) -> None:
        self.kind = kind
        self.warehouse = warehouse

    def _query(self, text: str) -> tuple[list[str], list[tuple]]:
        if self.kind == "duckdb":
            cursor = self.warehouse.connection.execute(text)
        else:
            cursor = self.warehouse.connection.cursor()
            cursor.execute(text)
        names = [d[0].lower() for d in cursor.description]
        return names, cursor.fetchall()

    def rows(self, table: str) -> list[dict]:
        """Every row, column names in lower case, ordered by the first column (the key)."""
        names, rows = self._query(f"SELECT * FROM {self.warehouse.table_name(table)}")
        return sorted((dict(zip(names, row)) for row in rows), key=lambda r: r[names[0]])

    def column_types(self, table: str) -> dict[str, str]:
        return {c.name.lower(): c.type for c in self.warehouse.columns(table)}

    def tables(self) -> list[str]:
        """The warehouse's tables, the publishing session's temporary ones included."""
        if self.kind == "duckdb":
            text = (
                "SELECT table_name FROM information_schema.tables "
                f"WHERE table_schema = '{self.warehouse.schema}'"
            )
            return sorted(row[0].lower() for row in self._query(text)[1])
        text = (
            f"SELECT TABLE_NAME FROM {self.warehouse.database}.INFORMATION_SCHEMA.TABLES "
            f"WHERE TABLE_SCHEMA = 'GOLD'"
        )
        names = [row[0] for row in self._query(text)[1]]
        # fakesnow lists no TEMPORARY table (the Snowflake staging tables are); the DuckDB
        # session behind the connection does. merge_candidates is fakesnow's MERGE emulation.
        temporary = self.warehouse.connection._duck_conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary"
        ).fetchall()
        names += [row[0] for row in temporary if row[0].lower() != "merge_candidates"]
        return sorted(name.lower() for name in names)


def snowflake_config(**overrides) -> SnowflakeConfig:
    values = {
        "account": "acme-test",
        "user": "publisher",
        "password": "not-a-real-password",
        "database": "medallion",
        "schema": "gold",
        "chunk_size": 2,  # several write_pandas chunks even for tiny tables
    }
    values.update(overrides)
    return SnowflakeConfig(**values)
