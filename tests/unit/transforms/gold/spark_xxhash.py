"""An independent, plain-Python XXH64 and Spark's ``xxhash64`` built on it: the oracle for the
gold dimensions' surrogate keys (``abs(xxhash64(...))``), shared by their tests."""

from __future__ import annotations

import calendar
import datetime as dt

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


def expected_key(*values: str | dt.datetime) -> int:
    """Spark's ``abs(xxhash64(values...)) % Long.MAX_VALUE``: each value hashed with the previous
    hash as seed, a string as its UTF-8 bytes, an aware timestamp as its microseconds since the
    epoch (UTC) as a little-endian long; then the absolute value of the signed result."""
    h = SPARK_HASH_SEED
    for value in values:
        if isinstance(value, dt.datetime):
            micros = calendar.timegm(value.utctimetuple()) * 1_000_000 + value.microsecond
            h = xxh64((micros & MASK).to_bytes(8, "little"), h)
        else:
            h = xxh64(value.encode("utf-8"), h)
    signed = h - (1 << 64) if h >= 1 << 63 else h
    return abs(signed) % 9_223_372_036_854_775_807
