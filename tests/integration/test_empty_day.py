"""A day with nothing new: every job succeeds, records zeros, and changes no table.

After the suite's three-day chain (a copy of its lake), day 4 is the generator's fourth day as
a day with nothing new (``4:replayed_day:kafka/order_events``): each CSV extract is its header
only, the FX file is empty (a holiday), and the stream re-sends day 3's events byte for byte
(every event a duplicate or rejected as it was then, none new). The whole chain runs for day 4;
the stream's quarantine must be exactly what the manifest says, and silver, gold and the
warehouse exactly as day 3 left them.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from chain_lake import DAYS, SCALE, SEED, START, gold, quarantine_reasons, same_content, silver

from medallion.generate import generate_landing
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
def empty_day(spark, copy_of_chain_lake, tmp_path_factory):
    chain = copy_of_chain_lake
    landing = chain.root / "landing"
    four = tmp_path_factory.mktemp("four_days") / "landing"
    manifest = generate_landing(
        four, scale=SCALE, days=len(DAYS) + 1, start_date=START, seed=SEED, force=True,
        faults=["4:replayed_day:kafka/order_events"],
    )  # fmt: skip
    for folder in four.glob(f"**/dt={DAY4}"):
        shutil.copytree(folder, landing / folder.relative_to(four))
    before = {
        **{f"silver/{t}": silver(spark, chain.root, t).localCheckpoint() for t in SILVER},
        **{f"gold/{t}": gold(spark, chain.root, t).localCheckpoint() for t in GOLD},
    }
    records = {r.job: r for r in run_chain(JOBS, [DAY4], chain.settings, lambda: spark)}
    return chain, records, before, manifest["days"][str(DAY4)]


def test_every_job_succeeds_on_a_day_with_nothing_new(empty_day):
    _, records, _, _ = empty_day
    assert {job: r.status for job, r in records.items()} == {j.name: "succeeded" for j in JOBS}


def test_the_ingests_record_zeros_and_the_replayed_events_are_rejected(spark, empty_day):
    chain, records, _, day4 = empty_day
    assert all(day4[table]["rows_written"] == 0 for table in (*CSV_TABLES, "fx/fx_rates"))
    for job in ("fx_json_to_bronze", "crm_to_bronze", "snowflake_to_bronze", "redshift_to_bronze"):
        counts = (records[job].rows_in, records[job].rows_out, records[job].rows_quarantined)
        assert counts == (0, 0, 0), job
    # The stream reads only the day's files (the copy's checkpoint names the copy's files),
    # and none of what it reads reaches bronze.
    events = day4["kafka/order_events"]
    stream = records["kafka_events_to_bronze"]
    assert events["rows_written"] > 0 and events["expected"]["rows_bronze"] == 0
    assert (stream.rows_in, stream.rows_out, stream.rows_quarantined) == (
        events["rows_written"], 0, events["rows_written"]
    )  # fmt: skip
    # Every line bronze took on day 3 is a duplicate now; every other line is rejected for the
    # reason it was then (a contract rule, or late).
    found = quarantine_reasons(spark, chain.root, "kafka/order_events", DAY4)
    assert found == {k: v for k, v in events["expected"]["quarantine"].items() if v}


def test_silver_gold_and_the_warehouse_are_as_the_day_before(spark, empty_day):
    chain, records, before, _ = empty_day
    for name, rows in before.items():
        layer, table = name.split("/")
        now = (silver if layer == "silver" else gold)(spark, chain.root, table)
        assert same_content(now, rows), name
    published = records["publish_gold_to_snowflake"].details["tables"]
    changes = {t: (c["inserted"], c["updated"], c["deleted"]) for t, c in published.items()}
    assert set(changes.values()) == {(0, 0, 0)}, changes
