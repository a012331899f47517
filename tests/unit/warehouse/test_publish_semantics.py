"""Publish semantics, run against both targets: DuckDB and the Snowflake adapter on fakesnow."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from warehouse_gold import (
    CUSTOMER_360,
    END,
    FACT_ORDERS,
    T0,
    T1,
    customer,
    day,
    order,
)

from medallion.errors import JobError
from medallion.quality.table_contracts import primary_key
from medallion.warehouse import locate_gold, sql

# fakesnow's cursor warns about an extra Arrow copy on every query: its business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API")


def publish(target, gold, table, run_id="00000000-0000-0000-0000-000000000001", mode="merge"):
    return target.warehouse.publish_table(
        locate_gold(gold.lake, table), primary_key("gold", table), mode, run_id
    )


def counts(result):
    return (result.inserted, result.updated, result.deleted, result.unchanged)


def by_key(rows, key):
    return {row[key]: row for row in rows}


def test_first_publish_creates_the_table_from_the_gold_schema(target, gold):
    rows = [customer(1, "c1"), customer(2, "c2"), customer(3, "c3")]
    gold.write("dim_customer", rows)

    result = publish(target, gold, "dim_customer")

    assert counts(result) == (3, 0, 0, 0)
    assert (result.rows_source, result.rows_target, result.duplicates_removed) == (3, 3, 0)
    assert target.rows("dim_customer") == rows
    types = target.column_types("dim_customer")
    if target.kind == "duckdb":
        assert types["customer_sk"] == "BIGINT"
        assert types["valid_from"] == "TIMESTAMP WITH TIME ZONE"
        assert types["is_current"] == "BOOLEAN"
    else:
        assert types["customer_sk"] == "NUMBER(38,0)"
        assert types["valid_from"] == "TIMESTAMP_TZ(9)"
        assert types["is_current"] == "BOOLEAN"
    assert list(types) == [f.name for f in gold_schema("dim_customer")]


def gold_schema(table):
    from warehouse_gold import SCHEMAS

    return SCHEMAS[table]


def test_merge_inserts_updates_and_deletes_rows_gone_from_gold(target, gold):
    gold.write("dim_customer", [customer(1, "c1"), customer(2, "c2"), customer(3, "c3")])
    publish(target, gold, "dim_customer")
    snapshot = [customer(1, "c1"), customer(2, "c2", segment="wholesale"), customer(4, "c4")]
    gold.write("dim_customer", snapshot)

    result = publish(target, gold, "dim_customer", run_id="00000000-0000-0000-0000-000000000002")

    assert counts(result) == (1, 1, 1, 1)
    assert result.rows_target == 3
    assert target.rows("dim_customer") == snapshot


def test_publishing_the_same_gold_again_changes_nothing(target, gold):
    gold.write("fact_orders", [order("o1"), order("o2", amount="99.99"), order("o3")])
    publish(target, gold, "fact_orders")
    before = target.rows("fact_orders")

    again = publish(target, gold, "fact_orders", run_id="00000000-0000-0000-0000-000000000002")

    assert counts(again) == (0, 0, 0, 3)
    assert target.rows("fact_orders") == before


def test_scd2_history_rows_merge_on_the_surrogate_key(target, gold):
    first = [customer(1, "c1", segment="retail"), customer(2, "c2")]
    gold.write("dim_customer", first)
    publish(target, gold, "dim_customer")
    # c1 changes segment: its old version is closed, a new version gets a new surrogate key.
    history = [
        customer(1, "c1", segment="retail", valid_to=T1, current=False),
        customer(2, "c2"),
        customer(3, "c1", segment="wholesale", valid_from=T1, valid_to=END),
    ]
    gold.write("dim_customer", history)

    result = publish(target, gold, "dim_customer", run_id="00000000-0000-0000-0000-000000000002")

    assert counts(result) == (1, 1, 0, 1)
    rows = target.rows("dim_customer")
    assert rows == history
    assert [(r["customer_sk"], r["is_current"]) for r in rows if r["customer_id"] == "c1"] == [
        (1, False),
        (3, True),
    ]


def test_duplicate_keys_are_reduced_to_one_deterministic_row(target, gold):
    rows = [
        order("o1", status="shipped"),
        order("o1", status="cancelled"),  # same key, different row: a gold bug
        order("o2"),
        order("o2"),  # exact duplicate
        order("o3"),
    ]
    gold.write("fact_orders", rows)

    result = publish(target, gold, "fact_orders")

    assert result.rows_source == 5
    assert result.duplicates_removed == 2
    assert counts(result) == (3, 0, 0, 0)
    stored = by_key(target.rows("fact_orders"), "order_id")
    assert sorted(stored) == ["o1", "o2", "o3"]
    # The survivor is the first row when ordering by every column: "cancelled" < "shipped".
    assert stored["o1"]["status"] == "cancelled"

    gold.write("fact_orders", list(reversed(rows)))  # same rows, other file order
    again = publish(target, gold, "fact_orders", run_id="00000000-0000-0000-0000-000000000002")
    assert counts(again) == (0, 0, 0, 3)
    assert by_key(target.rows("fact_orders"), "order_id")["o1"]["status"] == "cancelled"


def test_overwrite_replaces_the_contents(target, gold):
    gold.write("dim_date", [day(20250113), day(20250114), day(20250115)])
    publish(target, gold, "dim_date")
    replacement = [day(20250114), day(20250116)]
    gold.write("dim_date", replacement)

    result = publish(
        target, gold, "dim_date", run_id="00000000-0000-0000-0000-000000000002", mode="overwrite"
    )

    assert result.mode == "overwrite"
    assert counts(result) == (1, 0, 2, 1)
    assert result.rows_target == 2
    assert target.rows("dim_date") == replacement
    rerun = publish(
        target, gold, "dim_date", run_id="00000000-0000-0000-0000-000000000003", mode="overwrite"
    )
    assert counts(rerun) == (0, 0, 0, 2)


def test_a_new_gold_column_is_added_to_the_target(target, gold):
    gold.write("fact_orders", [order("o1"), order("o2")])
    publish(target, gold, "fact_orders")
    wider = FACT_ORDERS.append(pa.field("channel", pa.string()))
    gold.write("fact_orders", [{**order("o1"), "channel": "web"}, order("o2")], schema=wider)

    result = publish(target, gold, "fact_orders", run_id="00000000-0000-0000-0000-000000000002")

    assert [c.lower() for c in result.columns_added] == ["channel"]
    assert counts(result) == (0, 1, 0, 1)
    stored = by_key(target.rows("fact_orders"), "order_id")
    assert (stored["o1"]["channel"], stored["o2"]["channel"]) == ("web", None)


def test_a_column_missing_from_gold_fails_and_changes_nothing(target, gold):
    gold.write("dim_customer", [customer(1, "c1")])
    publish(target, gold, "dim_customer")
    before = target.rows("dim_customer")
    narrower = pa.schema([f for f in gold_schema("dim_customer") if f.name != "email"])
    gold.write("dim_customer", [customer(1, "c1", segment="other")], schema=narrower)

    with pytest.raises(JobError, match=r"(?i)column\(s\) email that gold table 'dim_customer'"):
        publish(target, gold, "dim_customer", run_id="00000000-0000-0000-0000-000000000002")

    assert target.rows("dim_customer") == before
    assert not [t for t in target.tables() if t.startswith("stg_")]


def test_a_changed_column_type_fails_naming_table_and_column(target, gold):
    gold.write("fact_orders", [order("o1")])
    publish(target, gold, "fact_orders")
    retyped = pa.schema(
        [pa.field("quantity", pa.string()) if f.name == "quantity" else f for f in FACT_ORDERS]
    )
    gold.write("fact_orders", [{**order("o1"), "quantity": "2"}], schema=retyped)

    with pytest.raises(JobError, match=r"(?i)column quantity of warehouse table .*fact_orders"):
        publish(target, gold, "fact_orders", run_id="00000000-0000-0000-0000-000000000002")


def test_a_null_key_fails(target, gold):
    gold.write("fact_orders", [order("o1"), order(None)])

    with pytest.raises(JobError, match="1 row\\(s\\) with a null key \\(order_id\\)"):
        publish(target, gold, "fact_orders")


def test_decimals_and_timestamps_round_trip_exactly(target, gold):
    gold.write(
        "fact_orders",
        [order("o1", amount="1234567890123456.78", fx_rate="1.00012345"), order("o2")],
    )
    ntz = T0.replace(tzinfo=None)
    gold.write(
        "customer_360",
        [
            {
                "customer_id": "c1",
                "lifetime_orders": 3,
                "lifetime_revenue_usd": Decimal("0.01"),
                "last_order_ts": ntz,
            }
        ],
        schema=CUSTOMER_360,
    )
    publish(target, gold, "fact_orders")
    publish(target, gold, "customer_360")

    stored = by_key(target.rows("fact_orders"), "order_id")["o1"]
    assert str(stored["amount"]) == "1234567890123456.78"
    assert str(stored["fx_rate"]) == "1.00012345"
    assert str(by_key(target.rows("fact_orders"), "order_id")["o2"]["amount"]) == "10.50"
    c360 = target.rows("customer_360")[0]
    assert c360["last_order_ts"] == ntz and c360["last_order_ts"].tzinfo is None
    assert str(c360["lifetime_revenue_usd"]) == "0.01"
    types = target.column_types("fact_orders")
    expected = (
        ("DECIMAL(18,2)", "DECIMAL(18,8)", "TIMESTAMP")
        if target.kind == "duckdb"
        else ("NUMBER(18,2)", "NUMBER(18,8)", "TIMESTAMP_NTZ(9)")
    )
    assert (
        types["amount"],
        types["fx_rate"],
        target.column_types("customer_360")["last_order_ts"],
    ) == expected
    # Timestamps with a zone keep their instant to the microsecond.
    gold.write("dim_customer", [customer(1, "c1")])
    publish(target, gold, "dim_customer")
    assert target.rows("dim_customer")[0]["valid_from"] == T0


def test_a_failed_merge_rolls_back_that_table_only(target, gold, monkeypatch):
    gold.write("dim_customer", [customer(1, "c1"), customer(2, "c2")])
    gold.write("fact_orders", [order("o1"), order("o2"), order("o3")])
    publish(target, gold, "dim_customer")
    publish(target, gold, "fact_orders")
    orders_before = target.rows("fact_orders")

    new_customers = [customer(1, "c1", segment="vip"), customer(3, "c3")]
    gold.write("dim_customer", new_customers)
    wider = FACT_ORDERS.append(pa.field("channel", pa.string()))
    # o3 is gone (the Snowflake target deletes it before its MERGE), o1 changes, o4 is new.
    gold.write(
        "fact_orders",
        [{**order("o1", status="returned"), "channel": "web"}, order("o2"), order("o4")],
        schema=wider,
    )
    original = sql.merge_sql

    def failing_merge(target_name, *args, **kwargs):
        if "fact_orders" in target_name.lower():
            return "SELECT no_such_column FROM no_such_table_injected_failure"
        return original(target_name, *args, **kwargs)

    monkeypatch.setattr(sql, "merge_sql", failing_merge)
    run_id = "00000000-0000-0000-0000-000000000002"
    first = publish(target, gold, "dim_customer", run_id=run_id)
    with pytest.raises(Exception, match=r"(?i)no_such_table_injected_failure"):
        publish(target, gold, "fact_orders", run_id=run_id)

    assert counts(first) == (1, 1, 1, 0)
    assert target.rows("dim_customer") == new_customers  # committed before the failure
    after = target.rows("fact_orders")
    if target.kind == "duckdb":
        # One DuckDB transaction holds the DDL too: the new column is rolled back as well.
        assert after == orders_before
    else:
        # Snowflake commits DDL on its own: the added column stays (empty); the data is intact.
        assert [{k: v for k, v in r.items() if k != "channel"} for r in after] == orders_before
        assert {r["channel"] for r in after} == {None}
    assert not [t for t in target.tables() if t.startswith("stg_")]


def test_the_staging_table_is_unique_to_the_run_and_dropped(target, gold, monkeypatch):
    gold.write("dim_date", [day(20250113)])
    seen = []
    original = sql.source_stats_sql

    def spy(staging, *args, **kwargs):
        seen.append(staging)
        return original(staging, *args, **kwargs)

    monkeypatch.setattr(sql, "source_stats_sql", spy)
    publish(target, gold, "dim_date", run_id="8a1c7a3e-93f4-4a55-9c55-5b0e7e1d2f00")

    staging = seen[0].rsplit(".", 1)[-1].strip('"').lower()
    assert staging == "stg_dim_date_8a1c7a3e93f44a559c555b0e7e1d2f00"
    assert target.tables() == ["dim_date"]


def test_result_serialises_for_the_audit_record(target, gold):
    gold.write("dim_date", [day(20250113), day(20250113)])

    result = publish(target, gold, "dim_date")

    assert result.as_dict() == {
        "table": "dim_date",
        "mode": "merge",
        "rows_source": 2,
        "inserted": 1,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "duplicates_removed": 1,
        "rows_target": 1,
        "columns_added": [],
    }


def test_an_updated_gold_row_is_published_from_the_new_file_only(target, gold):
    """Delta leaves the updated row's old file in the folder; the publisher must not read it."""
    from deltalake import DeltaTable

    path = gold.write("fact_orders", [order("o1"), order("o2"), order("o3")])
    publish(target, gold, "fact_orders")
    DeltaTable(path).update(updates={"status": "'returned'"}, predicate="order_id = 'o2'")

    result = publish(target, gold, "fact_orders", run_id="00000000-0000-0000-0000-000000000009")

    assert counts(result) == (0, 1, 0, 2)
    assert (result.rows_source, result.rows_target) == (3, 3)
    statuses = {row["order_id"]: row["status"] for row in target.rows("fact_orders")}
    assert statuses == {"o1": "shipped", "o2": "returned", "o3": "shipped"}
