"""The quality gate on a tiny lake: clean data passes, planted defects fail with their check ids."""

from __future__ import annotations

import json
import os

import duckdb
import pytest
from quality_lake import D1, D, write_audit

from medallion import cli
from medallion.audit import TableCount, read_records
from medallion.lake import Lake
from medallion.quality.engine import run_checks
from medallion.quality.results import read_results, results_path
from medallion.quality.suite import parse_suite


def _write_previous_results(root: str, row_counts: dict[str, int]) -> None:
    path = f"{root}/_quality/run_date={D1.isoformat()}/results.json"
    os.makedirs(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"run_date": D1.isoformat(), "row_counts": row_counts, "checks": []}, handle)


def test_clean_lake_passes_and_warnings_do_not_fail_the_gate(spark, lake):
    root = lake.lake.root
    # The previous run date had 1 silver customer (now 3: +200 %) and the same 3 orders.
    _write_previous_results(root, {"silver.customers": 1, "silver.orders": 3})
    # The day's publish loaded fact_orders (matches gold) and dim_date (5 rows short).
    write_audit(root, "publish_gold_to_snowflake", D, [TableCount("warehouse/fact_orders", 3, 3), TableCount("warehouse/dim_date", 352, 347)], 20)  # fmt: skip
    with duckdb.connect(lake.warehouse.duckdb.path) as con:
        con.execute("CREATE TABLE fact_orders AS SELECT * FROM range(3)")
        con.execute("CREATE TABLE dim_date AS SELECT * FROM range(347)")

    run = run_checks(spark, lake, Lake.from_root(root), D)

    results = {r.id: r for r in run.results}
    failed = {r.id: r.severity for r in run.results if r.status == "failed"}
    assert failed == {
        "silver.customers.row_count_change": "warn",
        "gold.dim_date.warehouse_rows": "warn",
    }
    assert run.status == "passed"
    assert results["silver.customers.row_count_change"].observed == 200.0
    assert results["gold.dim_date.warehouse_rows"].observed == 5
    assert (
        results["silver.orders.row_count_change"].status,
        results["silver.orders.row_count_change"].observed,
    ) == ("passed", 0.0)
    assert (
        results["gold.fact_orders.warehouse_rows"].status,
        results["gold.fact_orders.warehouse_rows"].observed,
    ) == ("passed", 0)
    # gold.fact_orders was not validated on D1: its size then comes from the audit trail
    assert results["gold.fact_orders.row_count_change"].observed == 50.0
    assert (
        results["gold.fact_orders.row_count_change"].message
        == "2 rows on 2025-01-14 -> 3 now (+50.00 %)"
    )
    assert results["gold.dim_customer.warehouse_rows"].status == "skipped"  # not published today
    assert results["silver.products.row_count_change"].status == "skipped"  # nothing to compare
    assert results["silver.orders.freshness"].observed == 0
    assert results["silver.fx_rates.freshness"].observed == 0
    assert (
        results["silver.orders.landing_reconciliation"].message
        == "snowflake/orders: 5 in = 3 bronze + 2 quarantined"
    )
    assert results["silver.order_events.bronze_keys_in_silver"].observed == 0
    assert run.row_counts["gold.dim_customer"] == 5  # 3 customers, 1 change, the unknown member
    assert len(run.results) == 111 and all(r.threshold for r in run.results)


def test_planted_defects_fail_the_run_with_their_check_ids(spark, lake, tmp_path, capsys):
    root = lake.lake.root
    # silver: a second copy of order O3 (a duplicate key that deduplication should have removed)
    orders = spark.read.format("delta").load(f"{root}/silver/orders")
    orders = orders.unionByName(orders.where("order_id = 'O3'")).localCheckpoint()
    orders.write.format("delta").mode("overwrite").save(f"{root}/silver/orders")
    # gold: an orphan fact, whose customer_sk no dim_customer row has
    fact = spark.read.format("delta").load(f"{root}/gold/fact_orders")
    orphan = fact.selectExpr(
        "order_id",
        "IF(order_id = 'O1', 424242, customer_sk) AS customer_sk",
        "* EXCEPT (order_id, customer_sk)",
    )
    orphan.localCheckpoint().write.format("delta").mode("overwrite").save(
        f"{root}/gold/fact_orders"
    )
    # reconciliation: a later snowflake_to_bronze run whose order counts do not add up (6 != 3 + 2)
    write_audit(
        root, "snowflake_to_bronze", D, minute=30,
        tables=[TableCount("snowflake/customers", 4, 4), TableCount("snowflake/orders", 6, 3, 2), TableCount("snowflake/products", 4, 4)],
    )  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(
        f"env: local\nspark: {{master: 'local[2]', shuffle_partitions: 1}}\nlake: {{root: '{root}'}}\n"
        f"warehouse: {{type: duckdb, duckdb: {{path: '{lake.warehouse.duckdb.path}'}}}}\n"
    )

    code = cli.main(["validate", "--run-date", D.isoformat(), "--config", str(config)])

    assert code == 1
    expected = [
        "silver.orders.landing_reconciliation",
        "silver.orders.order_id_unique",
        "gold.fact_orders.customer_fk",
        "gold.fact_orders.silver_rows",
        "gold.fact_orders.amount_usd_reconciliation",
    ]
    stored = read_results(Lake.from_root(root), D)
    assert stored["status"] == "failed"
    assert stored["failed_errors"] == expected
    checks = {c["id"]: c for c in stored["checks"]}
    assert checks["silver.orders.order_id_unique"]["observed"] == 1
    assert checks["gold.fact_orders.customer_fk"]["observed"] == 1
    assert checks["silver.orders.landing_reconciliation"]["message"] == (
        "observed 1, expected = 0: snowflake/orders: 6 in != 3 bronze + 2 quarantined"
    )
    # the extra order also trips a warning: 1 silver order on D1 (audit trail), 4 now
    assert stored["failed_warnings"] == ["silver.orders.row_count_change"]
    validate_runs = [r for r in read_records(root, run_date=D) if r["job"] == "validate"]
    assert [r["status"] for r in validate_runs] == ["failed"]
    assert validate_runs[0]["error"].startswith(
        "quality gate failed for 2025-01-15: 5 error check(s) failed: "
    )
    assert all(check_id in validate_runs[0]["error"] for check_id in expected)
    assert results_path(Lake.from_root(root), D) in validate_runs[0]["error"]
    out, err = capsys.readouterr()
    assert "gold.fact_orders.customer_fk" in out and "FAIL" in out
    assert "quality gate failed" in err and "Traceback" not in err


SUITE = """
apiVersion: v3.1.0
kind: DataContract
id: test-suite
version: 1.0.0
customProperties: [{property: layer, value: silver}]
schema:
  - name: orders
    quality:
      - {id: good, type: sql, query: "SELECT count(*) FROM ${table} WHERE status = 'paid'", mustBe: 2, severity: error}
      - {id: broken, type: sql, query: "SELECT count(no_such_column) FROM silver_orders", mustBe: 0, severity: warn}
      - {id: two_rows, type: sql, query: "SELECT order_id FROM silver_orders", mustBe: 0, severity: warn}
"""


def test_a_broken_sql_rule_fails_alone_and_the_others_still_run(spark, lake):
    run = run_checks(
        spark, lake, Lake.from_root(lake.lake.root), D, suites=[parse_suite(SUITE, "test")]
    )

    results = {r.id: r for r in run.results}
    assert (results["silver.orders.good"].status, results["silver.orders.good"].observed) == (
        "passed",
        2,
    )
    assert results["silver.orders.broken"].status == "failed"
    assert results["silver.orders.broken"].message.startswith("query failed: AnalysisException")
    assert (
        results["silver.orders.two_rows"].message
        == "the query must return exactly one row with one number"
    )
    assert run.failed_errors == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "{id: a.b, metric: rowCount, mustBe: 1, severity: error}",
            "does not conform to ODCS v3: schema[orders].quality[0].id:",
        ),
        (
            "{id: a, metric: rowCount, mustBe: 1, severity: fatal}",
            "severity must be one of error, warn",
        ),
        ("{id: a, metric: rowCount, severity: error}", "does not conform to ODCS v3"),
        (
            "{id: a, type: custom, engine: medallion, implementation: nope, severity: warn}",
            "implementation must be one of",
        ),
        (
            "{id: a, type: custom, engine: medallion, implementation: freshness, severity: warn}",
            "freshness needs customProperties column",
        ),
        ("{id: a, metric: nullValues, mustBe: 0, severity: error}", "nullValues needs a column"),
    ],
)
def test_invalid_quality_rules_are_rejected_naming_the_rule(rule, message):
    from medallion.quality.suite import QualityContractError

    text = SUITE.split("    quality:")[0] + f"    quality:\n      - {rule}\n"
    with pytest.raises(QualityContractError, match="test") as caught:
        parse_suite(text, "test.yaml")
    assert message in str(caught.value)
