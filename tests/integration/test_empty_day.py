"""A day with nothing new: every job succeeds, records zeros, and changes no table.

After the suite's three-day chain (a copy of its lake), day 4 delivers nothing new: each CSV
extract is its header only, the FX file is empty (a holiday), and the stream's day-4 files are
a replay of day 3's events byte for byte (every event a duplicate, none new). The whole chain
runs for day 4; silver, gold and the warehouse must be exactly as day 3 left them.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from chain_lake import DAYS, gold, same_content, silver
from pyspark.sql import functions as F

from medallion.jobs import JOBS
from medallion.runner import run_chain

pytestmark = pytest.mark.integration

DAY4 = DAYS[-1] + dt.timedelta(days=1)
CSV_TABLES = ("crm/accounts", "crm/contacts", "crm/opportunities", "snowflake/customers",
              "snowflake/products", "snowflake/orders", "redshift/customer_behavior")  # fmt: skip
SILVER = ("customers", "products", "orders", "order_events", "customer_behavior", "fx_rates",
          "crm_accounts", "crm_contacts", "crm_opportunities")  # fmt: skip
GOLD = ("dim_customer", "dim_product", "dim_date", "fact_orders", "customer_360",
        "product_performance")  # fmt: skip


@pytest.fixture(scope="module")
def empty_day(spark, copy_of_chain_lake):
    chain = copy_of_chain_lake
    landing = chain.root / "landing"
    for table in CSV_TABLES:
        day3, day4 = landing / table / f"dt={DAYS[-1]}", landing / table / f"dt={DAY4}"
        day4.mkdir(parents=True)
        for part in day3.glob("*.csv"):
            header = part.read_text(encoding="utf-8").splitlines()[0]
            (day4 / part.name).write_text(header + "\n", encoding="utf-8")
    (landing / "fx/fx_rates" / f"dt={DAY4}").mkdir(parents=True)
    (landing / "fx/fx_rates" / f"dt={DAY4}" / "fx_rates.jsonl").write_text("", encoding="utf-8")
    events = landing / "kafka/order_events"
    (events / f"dt={DAY4}").mkdir()
    replayed = 0
    for i, batch in enumerate(sorted((events / f"dt={DAYS[-1]}").glob("*.jsonl"))):
        shutil.copy(batch, events / f"dt={DAY4}" / f"batch-9{i:04d}.jsonl")
        replayed += sum(1 for line in batch.read_text(encoding="utf-8").splitlines() if line)
    before = {
        **{f"silver/{t}": silver(spark, chain.root, t).localCheckpoint() for t in SILVER},
        **{f"gold/{t}": gold(spark, chain.root, t).localCheckpoint() for t in GOLD},
    }
    records = {r.job: r for r in run_chain(JOBS, [DAY4], chain.settings, lambda: spark)}
    return chain, records, before, replayed


def test_every_job_succeeds_on_a_day_with_nothing_new(empty_day):
    _, records, _, _ = empty_day
    assert {job: r.status for job, r in records.items()} == {j.name: "succeeded" for j in JOBS}


def test_the_ingests_record_zeros_and_the_replayed_events_are_duplicates(spark, empty_day):
    chain, records, _, replayed = empty_day
    for job in ("fx_json_to_bronze", "crm_to_bronze", "snowflake_to_bronze", "redshift_to_bronze"):
        counts = (records[job].rows_in, records[job].rows_out, records[job].rows_quarantined)
        assert counts == (0, 0, 0), job
    # The stream reads only the day's files (the copy's checkpoint names the copy's files),
    # and none of what it reads reaches bronze.
    stream = records["kafka_events_to_bronze"]
    assert stream.rows_out == 0 and stream.rows_quarantined == stream.rows_in == replayed > 0
    quarantine = spark.read.format("delta").load(str(chain.root / "quarantine/kafka/order_events"))
    day4 = quarantine.where(F.col("_source_file").contains(f"/dt={DAY4}/")).collect()
    # Every replayed line is quarantined again: an event bronze holds as a duplicate, any
    # other with the reason it had on day 3 (a contract rule, or late), or as a duplicate of
    # an identical line in the same micro-batch.
    on_day3 = quarantine.where(
        (F.col("_run_date") == F.lit(DAYS[-1])) & F.col("_source_file").contains(f"/dt={DAYS[-1]}/")
    )
    day3_reasons = {r["_record_hash"]: r["_reasons"] for r in on_day3.collect()}
    assert len(day4) == replayed
    for row in day4:
        expected = day3_reasons.get(row["_record_hash"], ["duplicate_event"])
        assert row["_reasons"] in (expected, ["duplicate_event"]), row
    assert sum(row["_reasons"] == ["duplicate_event"] for row in day4) > len(day4) // 2


def test_silver_gold_and_the_warehouse_are_as_the_day_before(spark, empty_day):
    chain, records, before, _ = empty_day
    for name, rows in before.items():
        layer, table = name.split("/")
        now = (silver if layer == "silver" else gold)(spark, chain.root, table)
        assert same_content(now, rows), name
    published = records["publish_gold_to_snowflake"].details["tables"]
    changes = {t: (c["inserted"], c["updated"], c["deleted"]) for t, c in published.items()}
    assert set(changes.values()) == {(0, 0, 0)}, changes
