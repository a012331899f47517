"""The SCD2 MERGE on a tiny Delta dimension: it changes exactly what ``scd2_merge`` specifies."""

from __future__ import annotations

import datetime as dt

from pyspark.testing import assertDataFrameEqual

from medallion.jobs.gold import dim_customer_figures, merge_dim_customer
from medallion.lake import commit_metadata, last_commit, read_delta, run_id_of
from medallion.transforms.gold.dim_customer import (
    HISTORY_START,
    OPEN_END,
    customer_snapshot,
    scd2_merge,
)

TS = dt.datetime
SILVER_SCHEMA = (
    "customer_id string, first_name string, last_name string, crm_account_name string, segment string, "
    "country string, email string, crm_account_id string, crm_industry string, updated_at timestamp, "
    "crm_account_updated_at timestamp"
)
DAY1 = [
    ("C1", "Ann", "consumer", "DE", TS(2025, 1, 13, 8)),
    ("C2", "Bo", "enterprise", "FR", TS(2025, 1, 13, 9)),
    ("C3", "Cy", "consumer", "PL", TS(2025, 1, 13, 10)),
]
CHANGE = TS(2025, 1, 14, 10, 30)
DAY2 = [
    ("C1", "Ann", "small_business", "DE", CHANGE),  # tracked change: close + new version
    ("C2", "Bea", "enterprise", "FR", TS(2025, 1, 14, 9)),  # descriptive only: refreshed in place
    ("C3", "Cy", "consumer", "PL", TS(2025, 1, 13, 10)),  # unchanged: untouched
    ("C4", "Di", "consumer", "NL", TS(2025, 1, 14, 11)),  # new: first version
]


def snapshot(spark, customers):
    rows = [
        (cid, first, "Lee", None, segment, country, f"{cid.lower()}@x.io", None, None, ts, None)
        for cid, first, segment, country, ts in customers
    ]
    return customer_snapshot(spark.createDataFrame(rows, SILVER_SCHEMA))


def test_merge_closes_the_changed_version_inserts_the_new_one_and_equals_scd2_merge(
    spark, tmp_path
):
    path = str(tmp_path / "gold" / "dim_customer")
    metadata = commit_metadata("run-1", job="silver_to_gold")

    created = merge_dim_customer(spark, path, snapshot(spark, DAY1), metadata)
    assert (created.version, created.operation) == (0, "WRITE")
    day1 = spark.createDataFrame(read_delta(spark, path).collect(), read_delta(spark, path).schema)
    assertDataFrameEqual(read_delta(spark, path), scd2_merge(None, snapshot(spark, DAY1)))

    merged = merge_dim_customer(spark, path, snapshot(spark, DAY2), metadata)
    assert (merged.version, merged.operation) == (1, "MERGE")
    # C1's version closed and C2's descriptive refresh: two rows updated; C1's next and C4's
    # first version inserted. C3 is not in the staged source, so nothing matched it.
    assert (merged.metrics["numTargetRowsUpdated"], merged.metrics["numTargetRowsInserted"]) == (
        2,
        2,
    )
    assert run_id_of(last_commit_metadata(spark, path)) == "run-1"

    dim = read_delta(spark, path)
    assertDataFrameEqual(dim, scd2_merge(day1, snapshot(spark, DAY2)))
    c1 = dim.where("customer_id = 'C1'").orderBy("valid_from").collect()
    assert [(r.segment, r.valid_from, r.valid_to, r.is_current) for r in c1] == [
        ("consumer", HISTORY_START, CHANGE, False),
        ("small_business", CHANGE, OPEN_END, True),
    ]
    assert c1[0].customer_sk == day1.where("customer_id = 'C1'").first().customer_sk
    assert dim.where("customer_id = 'C2'").first().first_name == "Bea"
    assert dim.where("customer_id = 'C3'").collect() == day1.where("customer_id = 'C3'").collect()
    assert dim_customer_figures(dim, CHANGE.date()) == {
        "rows": 6,  # the unknown member, C1 twice, C2, C3, C4
        "current": 5,
        "closed": 1,
        "with_history": 1,
        "changes_today": 1,
    }

    # The same snapshot again (a rerun of the day) updates and inserts nothing.
    before = dim.collect()
    rerun = merge_dim_customer(spark, path, snapshot(spark, DAY2), metadata)
    assert rerun.metrics.get("numTargetRowsUpdated", 0) == 0
    assert rerun.metrics.get("numTargetRowsInserted", 0) == 0
    assert sorted(read_delta(spark, path).collect()) == sorted(before)


def last_commit_metadata(spark, path: str) -> str:
    from delta.tables import DeltaTable

    assert last_commit(spark, path).operation == "MERGE"
    return DeltaTable.forPath(spark, path).history(1).first()["userMetadata"]
