"""The dimension's surrogate key: xxhash64 of the business key and the UTC instant a version is
valid from, made positive, checked against an independent plain-Python XXH64.

The dimension's history and its MERGE have their own files (``test_dim_customer_history.py``,
``test_dim_customer_merge.py``); the XXH64 is in ``spark_xxhash.py``."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from spark_xxhash import expected_key

from medallion.transforms.common import utc_timestamp
from medallion.transforms.gold.dim_customer import HISTORY_START, surrogate_key

UTC = dt.UTC
VERSIONS = [
    ("C00000001", dt.datetime(2025, 1, 14, 12, 0, tzinfo=UTC)),
    ("C00000001", dt.datetime(2025, 1, 14, 12, 0, 0, 1, tzinfo=UTC)),  # one microsecond later
    ("C00000002", dt.datetime(2025, 1, 14, 12, 0, tzinfo=UTC)),
    ("C-ünïcode-and-longer-than-32-bytes-of-id", dt.datetime(1999, 12, 31, 23, 59, tzinfo=UTC)),
]


def _keyed(spark):
    versions = spark.createDataFrame(VERSIONS, "customer_id string, valid_from timestamp")
    return versions.select(
        "customer_id", "valid_from", surrogate_key("customer_id", "valid_from").alias("customer_sk")
    )


def test_surrogate_key_is_xxhash64_of_the_id_and_the_utc_instant_made_positive(spark):
    expected = spark.createDataFrame(
        [(cid, valid_from, expected_key(cid, valid_from)) for cid, valid_from in VERSIONS],
        "customer_id string, valid_from timestamp, customer_sk long",
    )
    keys = [expected_key(cid, valid_from) for cid, valid_from in VERSIONS]
    assert len(set(keys)) == len(keys) and all(k > 0 for k in keys)

    assertDataFrameEqual(_keyed(spark), expected)


def test_surrogate_key_does_not_depend_on_the_session_time_zone(spark):
    """The same instant gives the same key in any session zone: the key hashes the instant, not
    its wall-clock rendering."""
    expected = spark.createDataFrame(
        [(cid, valid_from, expected_key(cid, valid_from)) for cid, valid_from in VERSIONS],
        "customer_id string, valid_from timestamp, customer_sk long",
    )
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Tokyo")
    try:
        assertDataFrameEqual(_keyed(spark), expected)
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)


def test_first_version_key_hashes_history_start_as_a_utc_instant(spark):
    """A customer's first version is valid from HISTORY_START, a naive value meaning UTC."""
    start = HISTORY_START.replace(tzinfo=UTC)
    result = spark.range(1).select(
        F.lit("C00000001").alias("customer_id"),
        surrogate_key(F.lit("C00000001"), utc_timestamp(HISTORY_START)).alias("customer_sk"),
    )
    expected = spark.createDataFrame(
        [("C00000001", expected_key("C00000001", start))], "customer_id string, customer_sk long"
    )
    assertDataFrameEqual(result, expected)
