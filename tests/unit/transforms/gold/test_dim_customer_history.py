"""SCD2 from version history on hand-made versions: validity windows, keys, late and out-of-order
changes, CRM link times, delivery order independence and time-zone independence."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest
from history_versions import account, build, customer
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.common import UNKNOWN_SK, utc_timestamp
from medallion.transforms.gold.dim_customer import HISTORY_START, OPEN_END

TS = dt.datetime
D = dt.date


def history(dim, customer_id="C1"):
    rows = dim.where(f"customer_id = '{customer_id}'").orderBy("valid_from").collect()
    return [
        (r.segment, r.crm_account_id, r.crm_industry, r.valid_from, r.valid_to, r.is_current)
        for r in rows
    ]


def test_first_load_opens_one_version_each_plus_the_unknown_member(spark):
    dim = build(
        spark,
        [customer("C1", "consumer", TS(2025, 1, 13, 8), D(2025, 1, 13)),
         customer("C2", "enterprise", TS(2025, 1, 13, 9), D(2025, 1, 13))],
        # An account first seen after the customer: its first version stands since the start.
        [account("A1", "C2", "Retail", TS(2025, 1, 13, 11), D(2025, 1, 13))],
    )  # fmt: skip
    assert history(dim, "C1") == [("consumer", None, None, HISTORY_START, OPEN_END, True)]
    assert history(dim, "C2") == [("enterprise", "A1", "Retail", HISTORY_START, OPEN_END, True)]
    unknown = dim.where(F.col("customer_sk") == UNKNOWN_SK).collect()
    assert [(r.customer_id, r.is_current) for r in unknown] == [("UNKNOWN", True)]
    assert dim.count() == 3


def test_a_tracked_change_opens_a_version_at_its_business_time_and_an_untracked_one_does_not(
    spark,
):
    change = TS(2025, 1, 14, 10, 30)
    dim = build(
        spark,
        [customer("C1", "consumer", TS(2025, 1, 13, 8), D(2025, 1, 13)),
         customer("C1", "consumer", TS(2025, 1, 14, 9), D(2025, 1, 14), first="Annie"),  # a name
         customer("C1", "small_business", change, D(2025, 1, 15), first="Annie")],
    )  # fmt: skip
    assert history(dim) == [
        ("consumer", None, None, HISTORY_START, change, False),
        ("small_business", None, None, change, OPEN_END, True),
    ]
    # Names are type 1: every version carries the current one.
    assert {r.first_name for r in dim.where("customer_id = 'C1'").collect()} == {"Annie"}


def test_a_late_version_between_two_known_ones_slots_into_history(spark):
    """A change whose updated_at falls between two versions already loaded: the neighbours are
    re-closed around it, as if it had arrived in order (the snapshot fold never saw it)."""
    t1, late, t3 = TS(2025, 1, 13, 8), TS(2025, 1, 14, 12), TS(2025, 1, 15, 9)
    in_order = [
        customer("C1", "consumer", t1, D(2025, 1, 13)),
        customer("C1", "enterprise", late, D(2025, 1, 14)),
        customer("C1", "small_business", t3, D(2025, 1, 15)),
    ]
    # The version of the 14th is delivered only on the 16th, after the 15th's.
    delivered_late = [
        *in_order[:1],
        in_order[2],
        customer("C1", "enterprise", late, D(2025, 1, 16)),
    ]
    for versions in (in_order, delivered_late):
        assert history(build(spark, versions)) == [
            ("consumer", None, None, HISTORY_START, late, False),
            ("enterprise", None, None, late, t3, False),
            ("small_business", None, None, t3, OPEN_END, True),
        ]
    keys = lambda versions: sorted(r.customer_sk for r in build(spark, versions).collect())  # noqa: E731
    assert keys(in_order) == keys(delivered_late)


def test_a_revert_to_an_earlier_value_is_a_new_version(spark):
    d2, d3 = TS(2025, 1, 14, 9), TS(2025, 1, 15, 9)
    dim = build(
        spark,
        [customer("C1", "consumer", TS(2025, 1, 13, 8), D(2025, 1, 13)),
         customer("C1", "enterprise", d2, D(2025, 1, 14)),
         customer("C1", "consumer", d3, D(2025, 1, 15))],
    )  # fmt: skip
    assert [v[0] for v in history(dim)] == ["consumer", "enterprise", "consumer"]
    assert dim.where("customer_id = 'C1'").select("customer_sk").distinct().count() == 3


def test_two_deliveries_of_one_business_time_resolve_to_the_later_delivery(spark):
    """A corrected re-delivery with the same updated_at: the later delivery wins, as in silver."""
    stamp = TS(2025, 1, 14, 9)
    dim = build(
        spark,
        [customer("C1", "consumer", TS(2025, 1, 13, 8), D(2025, 1, 13)),
         customer("C1", "enterprise", stamp, D(2025, 1, 14)),
         customer("C1", "small_business", stamp, D(2025, 1, 15))],
    )  # fmt: skip
    assert [v[0] for v in history(dim)] == ["consumer", "small_business"]


def test_a_crm_edit_starts_at_its_own_time_and_does_not_move_the_customers_change(spark):
    """The replaced system used greatest(customer, account) updated_at: a CRM edit at 12:00 made
    an 08:00 segment change start at 12:00. Each change starts at its own business time."""
    segment_change, crm_edit = TS(2025, 1, 14, 8), TS(2025, 1, 14, 12)
    dim = build(
        spark,
        [customer("C1", "consumer", TS(2025, 1, 13, 8), D(2025, 1, 13)),
         customer("C1", "enterprise", segment_change, D(2025, 1, 14))],
        [account("A1", "C1", "Retail", TS(2025, 1, 13, 7), D(2025, 1, 13)),
         account("A1", "C1", "Banking", crm_edit, D(2025, 1, 14))],
    )  # fmt: skip
    assert history(dim) == [
        ("consumer", "A1", "Retail", HISTORY_START, segment_change, False),
        ("enterprise", "A1", "Retail", segment_change, crm_edit, False),
        ("enterprise", "A1", "Banking", crm_edit, OPEN_END, True),
    ]


def test_removing_a_crm_link_ends_it_when_the_account_says_so(spark):
    """The replaced system fell back to the customer's own updated_at when the link vanished,
    closing the linked version months early."""
    removed = TS(2025, 1, 14, 15)
    dim = build(
        spark,
        [customer("C1", "consumer", TS(2024, 6, 1), D(2025, 1, 13))],
        [account("A1", "C1", "Retail", TS(2024, 9, 1), D(2025, 1, 13)),
         account("A1", None, "Retail", removed, D(2025, 1, 14))],
    )  # fmt: skip
    assert history(dim) == [
        ("consumer", "A1", "Retail", HISTORY_START, removed, False),
        ("consumer", None, None, removed, OPEN_END, True),
    ]


def test_of_two_linked_accounts_the_oldest_is_the_customers(spark):
    dim = build(
        spark,
        [customer("C1", "consumer", TS(2025, 1, 13, 8), D(2025, 1, 13))],
        [account("A2", "C1", "Banking", TS(2025, 1, 13, 9), D(2025, 1, 13), created=TS(2021, 1, 1)),
         account("A1", "C1", "Retail", TS(2025, 1, 13, 9), D(2025, 1, 13), created=TS(2020, 1, 1))],
    )  # fmt: skip
    assert history(dim) == [("consumer", "A1", "Retail", HISTORY_START, OPEN_END, True)]


def test_the_same_versions_give_the_same_table_whatever_the_delivery_order(spark):
    versions = [
        customer("C1", "consumer", TS(2025, 1, 13, 8), D(2025, 1, 13)),
        customer("C1", "enterprise", TS(2025, 1, 14, 8), D(2025, 1, 14)),
        customer("C2", "consumer", TS(2025, 1, 14, 9), D(2025, 1, 14)),
    ]
    accounts = [account("A1", "C2", "Retail", TS(2025, 1, 14, 10), D(2025, 1, 14))]
    assertDataFrameEqual(
        build(spark, versions, accounts), build(spark, list(reversed(versions)), accounts)
    )


@pytest.fixture
def machine_zone():
    """Switch this Python process's local time zone (what PySpark converts naive datetimes
    with) and restore it afterwards."""
    before = os.environ.get("TZ")

    def switch(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield switch
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_keys_do_not_depend_on_the_machines_time_zone(spark, machine_zone):
    """``xxhash64(customer_id, valid_from)`` over a naive 1900-01-01 literal gave different keys
    under UTC and Europe/Berlin; the literal now goes in as text in the session zone (UTC)."""
    # Aware inputs, as the pipeline's are (bronze parses ISO-8601 UTC text in the session zone).
    utc = dt.UTC
    versions = [
        customer("C1", "consumer", TS(2025, 1, 13, 8, tzinfo=utc), D(2025, 1, 13)),
        customer("C1", "enterprise", TS(2025, 1, 14, 8, tzinfo=utc), D(2025, 1, 14)),
    ]
    keys = {}
    for zone in ("Asia/Kolkata", "America/Los_Angeles"):
        machine_zone(zone)
        start = spark.range(1).select(F.unix_seconds(utc_timestamp(HISTORY_START))).first()[0]
        assert start == -2208988800, zone
        # Collected as epoch values: a collected timestamp is shown in the local zone.
        rows = build(spark, versions).select(
            "customer_sk", F.unix_micros("valid_from").alias("valid_from")
        )
        keys[zone] = sorted(tuple(r) for r in rows.collect())
    assert keys["Asia/Kolkata"] == keys["America/Los_Angeles"]
    # What the replaced code did, for contrast: the naive literal follows the machine's zone.
    machine_zone("Europe/Berlin")
    naive = spark.range(1).select(F.unix_seconds(F.lit(HISTORY_START))).first()[0]
    assert naive != -2208988800
