"""The silver and gold table contracts: the merge keys the jobs and the publisher take from them,
and the declarations a contract must get right to load. (That the tables are written as their
contracts declare is checked on the chain's output: tests/integration/test_contract_schemas.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from medallion.quality.suite import packaged_suites
from medallion.quality.table_contracts import (
    TABLES,
    QualityContractError,
    parse_table_contract,
    primary_key,
    table_contract,
    table_names,
)
from medallion.transforms.gold.catalog import GOLD_TABLES


def test_the_merge_keys_are_the_contracts_primary_keys():
    # What bronze_to_silver, silver_to_gold and the publisher merge on.
    assert {table: primary_key("silver", table) for table in table_names("silver")} == {
        "customers": ["customer_id"],
        "products": ["product_id"],
        "orders": ["order_id"],
        "order_events": ["event_id"],
        "customer_behavior": ["customer_id", "event_date"],
        "fx_rates": ["rate_date", "base_ccy", "quote_ccy"],
        "crm_accounts": ["account_id"],
        "crm_contacts": ["contact_id"],
        "crm_opportunities": ["opportunity_id"],
    }
    # In publish order: SCD2 rows merge on the surrogate key, one warehouse row per version.
    assert [(table, primary_key("gold", table)) for table in GOLD_TABLES] == [
        ("dim_customer", ["customer_sk"]),
        ("dim_product", ["product_sk"]),
        ("dim_date", ["date_sk"]),
        ("fact_orders", ["order_id"]),
        ("customer_360", ["customer_id"]),
        ("product_performance", ["product_id"]),
    ]


def test_importing_the_job_registry_parses_no_contract():
    # Airflow parses the DAG file, which imports the registry, every 30 seconds or so.
    probe = (
        "import medallion.jobs, medallion.orchestration.dag_factory;"
        "from medallion.quality.table_contracts import table_contract;"
        "print(table_contract.cache_info().currsize)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )

    assert done.stdout.strip() == "0"


def test_each_packaged_contract_is_one_table_whose_suite_reports_it_in_validate_order():
    suites = packaged_suites()

    assert [(s.layer, s.tables) for s in suites] == [
        (layer, (table,)) for layer in ("silver", "gold") for table in table_names(layer)
    ]
    assert [s.source for s in suites] == [f"{s.layer}/{s.tables[0]}.yaml" for s in suites]
    assert all(r.table == s.tables[0] for s in suites for r in s.rules)
    assert sum(len(s.rules) for s in suites) == 111


def test_a_contract_declares_each_column_with_its_spark_type_and_key_in_order():
    behavior = table_contract("silver", "customer_behavior")

    assert behavior.schema[:3] == [
        ("customer_id", "string"),
        ("login_count", "int"),
        ("page_views", "int"),
    ]
    assert behavior.primary_key == ("customer_id", "event_date")
    assert behavior.partition_by == ("event_month",)
    assert primary_key("gold", "dim_customer") == ["customer_sk"]


def test_an_unknown_table_is_refused_naming_the_layers_tables():
    with pytest.raises(QualityContractError, match="no contract for gold table 'dim_store'"):
        table_contract("gold", "dim_store")


def test_a_listed_table_without_its_contract_file_is_refused(monkeypatch):
    monkeypatch.setitem(TABLES, "gold", (*TABLES["gold"], "dim_store"))

    with pytest.raises(QualityContractError, match="disagree: no contract file: dim_store"):
        table_names("gold")


CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: test-silver-orders
name: silver.orders
version: 1.0.0
status: active
customProperties: [{property: layer, value: silver}]
schema:
  - name: orders
    properties:
      - {name: order_id, logicalType: string, physicalType: string, required: true, primaryKey: true, primaryKeyPosition: 1}
      - {name: amount, logicalType: number, physicalType: "decimal(18,2)"}
"""


def test_a_valid_contract_parses_to_its_columns():
    contract = parse_table_contract(CONTRACT, "test.yaml")

    assert contract.schema == [("order_id", "string"), ("amount", "decimal(18,2)")]
    assert [c.required for c in contract.columns] == [True, False]
    assert contract.primary_key == ("order_id",)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '"decimal(18,2)"',
            '"DECIMAL(18, 2)"',
            "silver.orders.amount: write physicalType 'DECIMAL(18, 2)' as Spark does: "
            "'decimal(18,2)'",
        ),
        (
            ', physicalType: "decimal(18,2)"}',
            "}",
            "silver.orders.amount: physicalType must be the Spark type",
        ),
        (
            "logicalType: number",
            "logicalType: integer",
            "silver.orders.amount: physicalType 'decimal(18,2)' cannot hold logicalType 'integer'",
        ),
        (
            ", primaryKey: true, primaryKeyPosition: 1}",
            "}",
            "silver.orders: mark the key column(s) primaryKey: true",
        ),
        (
            "required: true, ",
            "",
            "silver.orders: key column(s) order_id must be required",
        ),
        ("name: amount", "name: order_id", "must declare each of its columns once (order_id"),
        (
            "      - {name: amount",
            "  - name: more\n    properties:\n      - {name: amount",
            "exactly one schema object (found 2)",
        ),
    ],
)
def test_an_incomplete_declaration_is_refused_naming_the_file_and_column(old, new, message):
    assert old in CONTRACT
    with pytest.raises(QualityContractError) as caught:
        parse_table_contract(CONTRACT.replace(old, new), "test.yaml")

    assert "test.yaml" in str(caught.value)
    assert message in str(caught.value)
