"""Idempotency: the full chain for a date twice, and a three-day backfill followed by a rerun of
its oldest day and then its latest, leave bronze, quarantine, silver, gold and the warehouse
identical (row counts and a content checksum per table and partition; only the per-run audit
columns ``_run_id`` and ``_ingest_ts`` may differ). Counts are checked against the generator's
manifest, so "identical" is also "right"."""

from __future__ import annotations

import pytest
from conftest import DAYS, RERUN_DAYS
from lakestate import audit_trail

from medallion.transforms.gold.catalog import GOLD_TABLES

pytestmark = pytest.mark.reliability

SOURCE_TABLES = (
    "fx/fx_rates",
    "crm/accounts",
    "crm/contacts",
    "crm/opportunities",
    "snowflake/customers",
    "snowflake/orders",
    "snowflake/products",
    "redshift/customer_behavior",
    "kafka/order_events",
)
SILVER = {
    "customers": "snowflake/customers",
    "products": "snowflake/products",
    "orders": "snowflake/orders",
    "order_events": "kafka/order_events",
    "customer_behavior": "redshift/customer_behavior",
    "fx_rates": "fx/fx_rates",
    "crm_accounts": "crm/accounts",
    "crm_contacts": "crm/contacts",
    "crm_opportunities": "crm/opportunities",
}


def test_every_run_of_the_reference_succeeded(reference):
    runs = reference.backfill_records + reference.rerun_records
    assert len(runs) == 8 * (len(DAYS) + len(RERUN_DAYS))
    assert {r.status for r in runs} == {"succeeded"}
    assert reference.cli["run"].returncode == 0, reference.cli["run"].stderr[-2000:]
    # The in-process backfill and reruns, the CLI's run of D3 (--job all: the eight jobs and
    # validate before the publish) and its validate after it: one record each.
    records = audit_trail(reference.lake())
    assert len(records) == 8 * (len(DAYS) + len(RERUN_DAYS)) + 9 + 1
    assert {r["status"] for r in records if r["job"] != "validate"} == {"succeeded"}


def test_snapshots_cover_every_table_of_every_layer_and_the_warehouse(reference):
    names = set(reference.after_backfill.tables)
    expected = (
        {f"bronze/{t}" for t in SOURCE_TABLES}
        | {f"quarantine/{t}" for t in SOURCE_TABLES}
        | {f"silver/{t}" for t in SILVER}
        | {f"gold/{t}" for t in GOLD_TABLES}
        | {f"warehouse/{t}" for t in GOLD_TABLES}
    )
    assert names == expected
    # The checksum sees a day's change: the state after D2 differs from the state after D3.
    assert reference.at_day2.diff(reference.after_backfill)


def test_full_chain_for_a_date_twice_leaves_everything_identical(reference):
    assert reference.after_rerun.diff(reference.after_backfill) == []
    # The second run found nothing new in the stream and changed no warehouse row.
    rerun = [r for r in audit_trail(reference.lake(), run_date=DAYS[-1].isoformat())]
    cli_runs = [r for r in rerun if r["job"] == "kafka_events_to_bronze"]
    assert any(r["details"].get("files_consumed") == 0 for r in cli_runs)
    publishes = [r for r in rerun if r["job"] == "publish_gold_to_snowflake"]
    changed = [
        sum(t["inserted"] + t["updated"] + t["deleted"] for t in r["details"]["tables"].values())
        for r in publishes
    ]
    # First D3 publish, the CLI's rerun, the rerun of D3 (after the rerun of D1,
    # which re-stated the as-of-date views in the warehouse, so D3 changes them back).
    assert len(changed) == 3 and changed[0] > 0 and changed[1] == 0, changed


def test_rerunning_an_old_day_then_the_latest_leaves_everything_identical(reference):
    assert reference.after_reruns.diff(reference.after_backfill) == []


def test_every_landed_row_is_in_bronze_or_quarantine_exactly_once(reference):
    """Conservation per table and day, after all those reruns: bronze + quarantine == landed."""
    snap = reference.after_reruns
    for table in SOURCE_TABLES:
        for day in DAYS:
            expected = reference.manifest["days"][day.isoformat()][table]

            def rows(layer: str, table=table, day=day) -> int:
                parts = snap.tables[f"{layer}/{table}"]
                return sum(n for part, (n, _) in parts.items() if f"_run_date={day}" in part)

            assert rows("bronze") == expected["expected"]["rows_bronze"], (table, day)
            assert rows("quarantine") == expected["expected"]["rows_quarantined"], (table, day)
            assert rows("bronze") + rows("quarantine") == expected["rows_written"], (table, day)


def test_silver_gold_and_warehouse_counts_match_the_manifest(reference):
    snap = reference.after_reruns
    last = reference.manifest["days"][DAYS[-1].isoformat()]
    for table, source in SILVER.items():
        assert snap.rows(f"silver/{table}") == last[source]["expected"]["silver_rows"], table
    for table in GOLD_TABLES:
        assert snap.totals()[f"warehouse/{table}"] == snap.totals()[f"gold/{table}"], table
