"""SCD2 on hand-made change sequences: keys, validity windows and idempotency."""

from __future__ import annotations

import datetime as dt

import pytest

from medallion.transforms.gold.dim_customer import (
    HISTORY_START,
    OPEN_END,
    UNKNOWN_SK,
    customer_snapshot,
    scd2_merge,
)

TS = dt.datetime
SILVER_SCHEMA = (
    "customer_id string, first_name string, last_name string, crm_account_name string, segment string, "
    "country string, email string, crm_account_id string, crm_industry string, updated_at timestamp, "
    "crm_account_updated_at timestamp"
)


def snapshot(spark, *customers):
    rows = [
        (
            cid,
            "Ann",
            "Lee",
            None,
            segment,
            country,
            f"{cid.lower()}@x.io",
            None,
            None,
            updated,
            None,
        )
        for cid, segment, country, updated in customers
    ]
    return customer_snapshot(spark.createDataFrame(rows, SILVER_SCHEMA))


def history(dim, customer_id="C1"):
    rows = dim.where(f"customer_id = '{customer_id}'").orderBy("valid_from").collect()
    return [(r.segment, r.country, r.valid_from, r.valid_to, r.is_current) for r in rows]


def materialise(df):
    """Cut lineage the way the job does (it writes and re-reads)."""
    return df.sparkSession.createDataFrame(df.collect(), df.schema)


@pytest.fixture
def day1(spark):
    return materialise(
        scd2_merge(
            None,
            snapshot(
                spark,
                ("C1", "consumer", "DE", TS(2025, 1, 13, 8)),
                ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
            ),
        )
    )


def test_first_load_opens_one_version_each_plus_unknown_member(day1):
    assert history(day1, "C1") == [("consumer", "DE", HISTORY_START, OPEN_END, True)]
    unknown = day1.where(f"customer_sk = {UNKNOWN_SK}").collect()
    assert len(unknown) == 1 and unknown[0].customer_id == "UNKNOWN" and unknown[0].is_current
    assert day1.count() == 3


def test_no_change_keeps_row_and_key(spark, day1):
    again = materialise(
        scd2_merge(
            day1,
            snapshot(
                spark,
                ("C1", "consumer", "DE", TS(2025, 1, 14, 8)),
                ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
            ),
        )
    )
    assert sorted(again.collect()) == sorted(day1.collect())


def test_one_change_closes_and_opens_with_deterministic_key(spark, day1):
    change = TS(2025, 1, 14, 10, 30)
    day2 = materialise(
        scd2_merge(
            day1,
            snapshot(
                spark,
                ("C1", "small_business", "DE", change),
                ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
            ),
        )
    )
    assert history(day2) == [
        ("consumer", "DE", HISTORY_START, change, False),
        ("small_business", "DE", change, OPEN_END, True),
    ]
    keys = [r.customer_sk for r in day2.where("customer_id = 'C1'").orderBy("valid_from").collect()]
    assert (
        keys[0] == day1.where("customer_id = 'C1'").first().customer_sk
    )  # the old version keeps its key
    # Rerunning the same day (same snapshot) changes nothing, keys included.
    rerun = materialise(
        scd2_merge(
            day2,
            snapshot(
                spark,
                ("C1", "small_business", "DE", change),
                ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
            ),
        )
    )
    assert sorted(rerun.collect()) == sorted(day2.collect())
    # The same history built again from scratch gets the same keys.
    rebuilt = materialise(
        scd2_merge(
            materialise(
                scd2_merge(
                    None,
                    snapshot(
                        spark,
                        ("C1", "consumer", "DE", TS(2025, 1, 13, 8)),
                        ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
                    ),
                )
            ),
            snapshot(
                spark,
                ("C1", "small_business", "DE", change),
                ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
            ),
        )
    )
    assert sorted(r.customer_sk for r in rebuilt.collect()) == sorted(
        r.customer_sk for r in day2.collect()
    )


def test_two_changes_the_same_day_keep_the_final_state(spark, day1):
    # Silver holds only the day's latest version: consumer -> enterprise -> small_business ends as small_business.
    final = TS(2025, 1, 14, 18)
    day2 = materialise(
        scd2_merge(
            day1,
            snapshot(
                spark,
                ("C1", "small_business", "NL", final),
                ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
            ),
        )
    )
    assert history(day2) == [
        ("consumer", "DE", HISTORY_START, final, False),
        ("small_business", "NL", final, OPEN_END, True),
    ]


def test_revert_to_an_old_value_is_a_new_version(spark, day1):
    d2, d3 = TS(2025, 1, 14, 8), TS(2025, 1, 15, 8)
    day2 = materialise(
        scd2_merge(
            day1,
            snapshot(
                spark,
                ("C1", "enterprise", "DE", d2),
                ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
            ),
        )
    )
    day3 = materialise(
        scd2_merge(
            day2,
            snapshot(
                spark, ("C1", "consumer", "DE", d3), ("C2", "enterprise", "FR", TS(2025, 1, 13, 9))
            ),
        )
    )
    assert history(day3) == [
        ("consumer", "DE", HISTORY_START, d2, False),
        ("enterprise", "DE", d2, d3, False),
        ("consumer", "DE", d3, OPEN_END, True),
    ]
    assert day3.where("customer_id = 'C1'").select("customer_sk").distinct().count() == 3


def test_rerun_of_an_earlier_day_after_a_later_one_changes_nothing(spark, day1):
    # Silver is current state: re-running day 2 after day 3 shows gold day 3's snapshot again.
    d3 = TS(2025, 1, 15, 8)
    day3_snapshot = snapshot(
        spark, ("C1", "enterprise", "DE", d3), ("C2", "enterprise", "FR", TS(2025, 1, 13, 9))
    )
    day3 = materialise(scd2_merge(day1, day3_snapshot))
    rerun_day2 = materialise(scd2_merge(day3, day3_snapshot))
    assert sorted(rerun_day2.collect()) == sorted(day3.collect())


def test_new_customer_on_a_later_day_gets_a_first_version(spark, day1):
    day2 = materialise(
        scd2_merge(
            day1,
            snapshot(
                spark,
                ("C1", "consumer", "DE", TS(2025, 1, 13, 8)),
                ("C2", "enterprise", "FR", TS(2025, 1, 13, 9)),
                ("C3", "consumer", "PL", TS(2025, 1, 14, 9)),
            ),
        )
    )
    assert history(day2, "C3") == [("consumer", "PL", HISTORY_START, OPEN_END, True)]
    assert day2.where("is_current").count() == 4
