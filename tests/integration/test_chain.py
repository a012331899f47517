"""The whole daily chain over three generated days, checked against the generator's manifest:
silver one row per key, incremental == rebuild, FX conversion recomputed independently,
orphans, SCD2 history, key stability on reruns, fact reconciliation and the warehouse."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from chain_lake import DAYS, gold, same_content, settings_for, silver

from medallion.jobs import JOB_MAP, JOBS
from medallion.jobs.base import JobContext
from medallion.jobs.bronze_to_silver import SilverBuild
from medallion.lake import Lake
from medallion.quality.table_contracts import primary_key, table_names
from medallion.runner import run_chain, run_job
from medallion.transforms.gold.catalog import GOLD_TABLES

pytestmark = pytest.mark.integration

MANIFEST_TABLE = {
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


@pytest.fixture(scope="module")
def chain(chain_lake):
    """The suite's three-day chain lake (tests/integration/conftest.py)."""
    return chain_lake.root, chain_lake.manifest, chain_lake.settings, chain_lake.records


def test_every_job_succeeded_for_every_day(chain):
    _, _, _, records = chain
    assert [(r.job, r.run_date, r.status) for r in records] == [
        (job.name, day.isoformat(), "succeeded") for day in DAYS for job in JOBS
    ]


def test_silver_has_one_row_per_key_and_the_manifest_counts(spark, chain):
    root, manifest, _, _ = chain
    last = manifest["days"][DAYS[-1].isoformat()]
    for table in table_names("silver"):
        keys = primary_key("silver", table)  # pinned in tests/unit/quality/test_table_contracts.py
        frame = silver(spark, root, table)
        rows = frame.count()
        assert frame.select(*keys).distinct().count() == rows, table
        assert rows == last[MANIFEST_TABLE[table]]["expected"]["silver_rows"], table


def test_incremental_silver_equals_a_full_rebuild(spark, chain, tmp_path):
    root, _, _, _ = chain
    copy = tmp_path / "rebuild"
    shutil.copytree(root / "bronze", copy / "bronze")
    rebuild_settings = settings_for(copy)
    context = JobContext(spark, rebuild_settings, Lake.from_root(str(copy)), DAYS[-1], "rebuild")
    SilverBuild(context, rebuild=True).run()
    for table in table_names("silver"):
        assert same_content(silver(spark, root, table), silver(spark, copy, table)), table


def test_dim_customer_written_whole_below_min_versions_equals_its_incremental_merge(
    spark, chain, tmp_path
):
    """``incremental.min_versions`` above the lake's size: the dimension, which the chain
    maintained by MERGE, is written whole in one overwrite with the same rows; a later run of
    the incremental way then finds nothing to change."""
    from medallion.config import parse_settings
    from medallion.jobs.silver_to_gold import write_dim_customer
    from medallion.lake import NO_COMMIT

    root, _, _, _ = chain
    copy = tmp_path / "whole"
    for layer in ("bronze", "silver", "gold"):
        shutil.copytree(root / layer, copy / layer)
    lake = Lake.from_root(str(copy))

    def context(min_versions: int, run_id: str) -> JobContext:
        text = (
            f'env: local\nlake: {{root: "{copy}"}}\nincremental: {{min_versions: {min_versions}}}\n'
        )
        settings = parse_settings(text, "test")
        return JobContext(spark, settings, lake, DAYS[-1], run_id, job="silver_to_gold")

    whole = write_dim_customer(context(10**9, "whole"), rebuild=False)
    assert whole.operation == "WRITE"
    assert same_content(gold(spark, root, "dim_customer"), gold(spark, copy, "dim_customer"))
    again = write_dim_customer(context(0, "incremental"), rebuild=False)
    assert (again.operation, again.version) == (NO_COMMIT, whole.version)


def _independent_fx(root: Path) -> pd.DataFrame:
    """Read the FX landing files with plain json and keep the rates a person would trust."""
    records = []
    for path in sorted((root / "landing/fx/fx_rates").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            records.append(row)
    fx = pd.DataFrame(records)
    fx = fx[fx["quote_ccy"].str.fullmatch(r"[A-Z]{3}") & (fx["quote_ccy"] != "QQQ")]
    fx["rate"] = fx["rate"].astype(float)
    fx = fx[fx["rate"] > 0]
    median = fx.groupby("quote_ccy")["rate"].transform("median")
    fx = fx[(fx["rate"] < median * 20) & (fx["rate"] > median / 20)]
    fx["date"] = pd.to_datetime(fx["date"])
    return fx.drop_duplicates(["date", "quote_ccy"]).sort_values("date")[
        ["date", "quote_ccy", "rate"]
    ]


def test_amount_usd_matches_an_independent_recomputation_from_the_fx_file(spark, chain):
    root, _, _, _ = chain
    fx = _independent_fx(root)
    orders = (
        silver(spark, root, "orders")
        .select("order_id", "order_date", "currency", "amount", "amount_usd")
        .toPandas()
    )
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    merged = pd.merge_asof(
        orders.sort_values("order_date"), fx, left_on="order_date", right_on="date",
        left_by="currency", right_by="quote_ccy", direction="backward",
    )  # fmt: skip
    merged.loc[merged["currency"] == "USD", "rate"] = 1.0

    def expected(row) -> Decimal | None:
        if pd.isna(row["rate"]):
            return None
        rate = Decimal(repr(row["rate"]))
        return (row["amount"] / rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    merged["expected"] = merged.apply(expected, axis=1)
    mismatches = merged[merged["expected"] != merged["amount_usd"]]
    assert len(merged) == len(orders) and len(orders) > 1000
    assert mismatches.empty, mismatches.head().to_dict("records")
    assert (merged["currency"] != "USD").sum() > 100  # the check covered real conversions


def test_orphans_are_kept_and_flagged_as_the_manifest_says(spark, chain):
    root, manifest, _, _ = chain

    def injected(table: str, kind: str) -> int:
        return sum(day[table]["defects"].get(kind, 0) for day in manifest["days"].values())

    def flagged(table: str, flag: str) -> int:
        return silver(spark, root, table).where(f"{flag}").count()

    assert flagged("orders", "has_unknown_customer") == injected(
        "snowflake/orders", "orphan_customer"
    )
    assert flagged("orders", "has_unknown_product") == injected(
        "snowflake/orders", "orphan_product"
    )
    assert flagged("crm_accounts", "has_unknown_customer") == injected(
        "crm/accounts", "orphan_customer"
    )
    assert flagged("crm_contacts", "has_unknown_account") == injected(
        "crm/contacts", "orphan_account"
    )
    assert flagged("crm_opportunities", "has_unknown_account") == injected(
        "crm/opportunities", "orphan_account"
    )
    assert flagged("customer_behavior", "has_unknown_customer") == injected(
        "redshift/customer_behavior", "orphan_customer"
    )
    assert flagged("order_events", "has_unknown_order") == injected(
        "kafka/order_events", "orphan_order"
    )
    fact = gold(spark, root, "fact_orders")
    assert fact.where("customer_sk = -1").count() == injected("snowflake/orders", "orphan_customer")
    assert fact.where("product_sk = -1").count() == injected("snowflake/orders", "orphan_product")


def test_ambiguous_crm_links_are_resolved_and_counted(spark, chain):
    root, manifest, _, records = chain
    ambiguous = manifest["truth"]["crm_ambiguous_links"]
    customers = silver(spark, root, "customers").where("crm_account_count > 1")
    assert sorted(r.customer_id for r in customers.collect()) == sorted(ambiguous)
    for row in customers.collect():
        assert row.crm_account_id in ambiguous[row.customer_id]
    silver_record = [r for r in records if r.job == "bronze_to_silver"][-1]
    assert silver_record.details["customers_ambiguous_crm_links"] == len(ambiguous)


def test_dim_customer_history_is_exactly_the_manifest_changes(spark, chain):
    from pyspark.sql import functions as F

    root, manifest, _, _ = chain
    times = manifest["truth"]["customers_tracked_changes"]["times_by_customer"]
    dim = gold(spark, root, "dim_customer").where("customer_sk <> -1")
    versions = {
        r.customer_id: r["count"]
        for r in dim.groupBy("customer_id").count().where("count > 1").collect()
    }
    assert versions == {cid: n + 1 for cid, n in times.items()}
    # Each later version starts exactly when the generator made its change (UTC).
    starts = manifest["truth"]["customers_tracked_changes"]["valid_from_by_customer"]
    later = dim.where(F.col("valid_from") > F.lit("1900-01-01 00:00:00").cast("timestamp"))
    found: dict[str, list[str]] = {}
    for row in later.select(
        "customer_id", F.date_format("valid_from", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("start")
    ).collect():
        found.setdefault(row.customer_id, []).append(row.start)
    assert {c: sorted(t) for c, t in found.items()} == starts
    # And their current version in silver and in the dimension is the generator's final state.
    current = manifest["truth"]["customers_tracked_changes"]["current_by_customer"]
    columns = ("segment", "country", "email")
    for table in (silver(spark, root, "customers"), dim.where("is_current")):
        rows = table.where(F.col("customer_id").isin(list(current))).collect()
        assert {r.customer_id: {c: r[c] for c in columns} for r in rows} == current
    assert dim.where("is_current").count() == dim.select("customer_id").distinct().count()
    assert dim.select("customer_sk").distinct().count() == dim.count()


def test_fact_reconciles_with_silver(spark, chain):
    root, _, _, _ = chain
    orders = silver(spark, root, "orders")
    fact = gold(spark, root, "fact_orders")
    assert fact.count() == orders.count() == fact.select("order_id").distinct().count()
    totals = lambda df: df.selectExpr("sum(amount_usd)", "sum(amount)").first()  # noqa: E731
    assert totals(fact) == totals(orders)
    dates = gold(spark, root, "dim_date")
    assert fact.join(dates, "date_sk", "left_anti").count() == 0
    assert dates.selectExpr("max(date)").first()[0] == dt.date(DAYS[-1].year, 12, 31)


def test_warehouse_holds_every_gold_table_and_republishing_changes_nothing(spark, chain):
    root, _, settings, _ = chain
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        for table in GOLD_TABLES:
            assert (
                con.execute(f"select count(*) from {table}").fetchone()[0]
                == gold(spark, root, table).count()
            ), table
    record = run_job(JOB_MAP["publish_gold_to_snowflake"], DAYS[-1], settings, None)
    changed = {
        t: (c["inserted"], c["updated"], c["deleted"]) for t, c in record.details["tables"].items()
    }
    assert set(changed.values()) == {(0, 0, 0)}, changed


def test_rerunning_a_day_keeps_keys_and_gold_identical(spark, chain):
    root, _, settings, _ = chain
    before = {
        t: gold(spark, root, t).collect() for t in ("dim_customer", "fact_orders", "dim_product")
    }
    run_chain(
        [job for job in JOBS if job.name != "publish_gold_to_snowflake"],
        [DAYS[1]],
        settings,
        lambda: spark,
    )
    # Gold after rerunning day 2 reflects the same silver state, so nothing may move.
    for table, rows in before.items():
        assert sorted(gold(spark, root, table).collect()) == sorted(rows), table
