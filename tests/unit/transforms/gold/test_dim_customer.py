"""The dimension's surrogate key: xxhash64 of the business key and the UTC instant a version is
valid from, made positive, checked against an independent plain-Python XXH64.

The dimension's history and its MERGE have their own files (``test_dim_customer_history.py``,
``test_dim_customer_merge.py``)."""

from __future__ import annotations

import calendar
import datetime as dt

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.common import utc_timestamp
from medallion.transforms.gold.dim_customer import HISTORY_START, surrogate_key

UTC = dt.UTC
MASK = (1 << 64) - 1
P1, P2, P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
P4, P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5
SPARK_HASH_SEED = 42  # the seed of Spark's xxhash64()


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * P2) & MASK, 31) * P1) & MASK


def xxh64(data: bytes, seed: int) -> int:
    """The reference XXH64 (unsigned), as Spark's XXH64 computes it for bytes and longs."""
    size, i, seed = len(data), 0, seed & MASK

    def lane(at: int, width: int = 8) -> int:
        return int.from_bytes(data[at : at + width], "little")

    if size >= 32:
        acc = [(seed + P1 + P2) & MASK, (seed + P2) & MASK, seed, (seed - P1) & MASK]
        while i + 32 <= size:
            acc = [_round(a, lane(i + 8 * k)) for k, a in enumerate(acc)]
            i += 32
        h = (_rotl(acc[0], 1) + _rotl(acc[1], 7) + _rotl(acc[2], 12) + _rotl(acc[3], 18)) & MASK
        for a in acc:
            h = ((h ^ _round(0, a)) * P1 + P4) & MASK
    else:
        h = (seed + P5) & MASK
    h = (h + size) & MASK
    while i + 8 <= size:
        h = (_rotl(h ^ _round(0, lane(i)), 27) * P1 + P4) & MASK
        i += 8
    if i + 4 <= size:
        h = (_rotl(h ^ (lane(i, 4) * P1 & MASK), 23) * P2 + P3) & MASK
        i += 4
    while i < size:
        h = (_rotl(h ^ (data[i] * P5 & MASK), 11) * P1) & MASK
        i += 1
    h = ((h ^ (h >> 33)) * P2) & MASK
    h = ((h ^ (h >> 29)) * P3) & MASK
    return h ^ (h >> 32)


def expected_key(customer_id: str, valid_from: dt.datetime) -> int:
    """Spark's xxhash64(id, ts): the string's UTF-8 bytes, then the timestamp's microseconds
    since the epoch (UTC) as a little-endian long, each hashed with the previous hash as seed;
    then the absolute value of the signed result."""
    micros = calendar.timegm(valid_from.utctimetuple()) * 1_000_000 + valid_from.microsecond
    h = xxh64(customer_id.encode("utf-8"), SPARK_HASH_SEED)
    h = xxh64((micros & MASK).to_bytes(8, "little"), h)
    signed = h - (1 << 64) if h >= 1 << 63 else h
    return abs(signed) % 9_223_372_036_854_775_807


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
