"""The dimension's MERGE of its diff on a tiny Delta table: after it the table equals the history
the versions specify, touching only the rows that changed, and a rerun changes nothing."""

from __future__ import annotations

import datetime as dt

from history_versions import build, customer
from pyspark.testing import assertDataFrameEqual

from medallion.jobs.silver_to_gold import dim_customer_figures
from medallion.lake import commit_metadata, merge_diff, overwrite, read_delta
from medallion.quality.table_contracts import primary_key
from medallion.transforms.common import table_diff
from medallion.transforms.gold.dim_customer import HISTORY_START, OPEN_END

TS, D = dt.datetime, dt.date
DIM_CUSTOMER_KEY = primary_key("gold", "dim_customer")  # as silver_to_gold merges
DAY1 = [
    customer("C1", "consumer", TS(2025, 1, 13, 8), D(2025, 1, 13)),
    customer("C2", "enterprise", TS(2025, 1, 13, 9), D(2025, 1, 13)),
    customer("C3", "consumer", TS(2025, 1, 13, 10), D(2025, 1, 13)),
]
LATE, CHANGE = TS(2025, 1, 13, 20), TS(2025, 1, 14, 10, 30)
LATER = [
    *DAY1[:2],
    customer("C1", "small_business", CHANGE, D(2025, 1, 14)),  # a change: C1's version closed
    customer("C1", "enterprise", LATE, D(2025, 1, 15)),  # a late one, between the two
    customer("C2", "enterprise", TS(2025, 1, 14, 9), D(2025, 1, 14), first="Bea"),  # a name
    customer("C4", "consumer", TS(2025, 1, 14, 11), D(2025, 1, 14)),  # a new customer
    # C3 is gone: the corrected extract of the 13th no longer has it.
]


def merge(spark, path: str, versions, run_id: str):
    desired = build(spark, versions)
    diff = desired.transform(table_diff(read_delta(spark, path), DIM_CUSTOMER_KEY))
    return merge_diff(
        spark, path, diff, DIM_CUSTOMER_KEY, metadata=commit_metadata(run_id, job="silver_to_gold")
    )


def test_the_merge_of_the_diff_gives_the_specified_history_and_a_rerun_changes_nothing(
    spark, tmp_path
):
    path = str(tmp_path / "gold" / "dim_customer")
    overwrite(build(spark, DAY1), path, metadata=commit_metadata("run-1"))
    day1 = spark.createDataFrame(read_delta(spark, path).collect(), read_delta(spark, path).schema)

    merged = merge(spark, path, LATER, "run-2")
    assert (merged.version, merged.operation) == (1, "MERGE")
    metrics = merged.metrics
    # Updated: C1's first version (closed at LATE), C2's (new name). Inserted: C1's two later
    # versions and C4's first. Deleted: C3's. The unknown member is not in the diff.
    assert (
        metrics["numTargetRowsUpdated"],
        metrics["numTargetRowsInserted"],
        metrics["numTargetRowsDeleted"],
    ) == (2, 3, 1)
    assert merged.rows_written == 6

    dim = read_delta(spark, path)
    assertDataFrameEqual(dim, build(spark, LATER))
    c1 = dim.where("customer_id = 'C1'").orderBy("valid_from").collect()
    assert [(r.segment, r.valid_from, r.valid_to, r.is_current) for r in c1] == [
        ("consumer", HISTORY_START, LATE, False),
        ("enterprise", LATE, CHANGE, False),
        ("small_business", CHANGE, OPEN_END, True),
    ]
    # C1's first version keeps its key: it is the same version, closed differently.
    assert c1[0].customer_sk == day1.where("customer_id = 'C1'").first().customer_sk
    assert dim_customer_figures(dim, CHANGE.date()) == {
        "rows": 6,  # the unknown member, C1 three times, C2, C4
        "current": 4,
        "closed": 2,
        "with_history": 1,
        "changes_today": 1,
    }

    before = sorted(dim.collect())
    rerun = merge(spark, path, LATER, "run-3")
    assert rerun.rows_written == 0
    assert sorted(read_delta(spark, path).collect()) == before
