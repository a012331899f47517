"""Vectorised text formatting with pyarrow compute: ids, decimals, timestamps, CSV fields.

Every function takes numpy arrays and returns a ``pyarrow.StringArray`` holding the exact text
that lands in a file, so a million rows format in C without a Python loop per row.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = dt.date(1970, 1, 1)
DAY_SECONDS = 86_400
BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
SF_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", np.uint8)


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


def day_start(day: dt.date) -> int:
    """Epoch seconds of 00:00:00 UTC on ``day``."""
    return day_number(day) * DAY_SECONDS


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string arrays and literals element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def ints(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers, as a (n, width) matrix of bytes."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) and (values.min() < 0 or values.max() >= 10**width):
        raise ValueError(f"values out of range for {width} digits")
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.copy()
    for position in range(width - 1, -1, -1):
        out[:, position] = 48 + rest % 10
        rest //= 10
    return out


def fixed_width_strings(chars: np.ndarray) -> pa.Array:
    """A (n, width) matrix of ASCII bytes as a string array, built from its buffers."""
    count, width = chars.shape
    offsets = np.arange(count + 1, dtype=np.int32) * width
    data = np.ascontiguousarray(chars).reshape(-1)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _literal(text: str, count: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text.encode("ascii"), np.uint8), (count, len(text)))


def padded(values: np.ndarray, width: int) -> pa.Array:
    return fixed_width_strings(digit_matrix(values, width))


def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded number, e.g. ids("C", [7], 8) -> "C00000007"."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return fixed_width_strings(
        np.hstack([_literal(prefix, len(numbers)), digit_matrix(numbers, width)])
    )


def fixed(scaled: np.ndarray, decimals: int) -> pa.Array:
    """Integers holding value x 10**decimals, as fixed-point text: fixed([-105], 2) -> "-1.05"."""
    scaled = np.asarray(scaled, dtype=np.int64)
    factor = 10**decimals
    magnitude = np.abs(scaled)
    fraction = fixed_width_strings(
        np.hstack([_literal(".", len(scaled)), digit_matrix(magnitude % factor, decimals)])
    )
    text = join(ints(magnitude // factor), fraction)
    if (scaled < 0).any():
        text = pc.if_else(pa.array(scaled < 0), join("-", text), text)
    return text


def decimal_comma(scaled: np.ndarray, decimals: int) -> pa.Array:
    """Fixed-point text with a decimal comma (a locale slip that breaks a CSV row)."""
    scaled = np.asarray(scaled, dtype=np.int64)
    factor = 10**decimals
    magnitude = np.abs(scaled)
    return join(ints(magnitude // factor), ",", padded(magnitude % factor, decimals))


def _date_matrix(day_numbers: np.ndarray) -> np.ndarray:
    """(n, 10) bytes ``YYYY-MM-DD`` for days since the epoch: each distinct day is formatted
    once (a day's rows span a few thousand dates at most) and rows index into that."""
    day_numbers = np.asarray(day_numbers, dtype=np.int64)
    if len(day_numbers) == 0:
        return np.empty((0, 10), dtype=np.uint8)
    first = int(day_numbers.min())
    span = np.arange(first, int(day_numbers.max()) + 1).astype("datetime64[D]")
    months = span.astype("datetime64[M]")
    year = months.astype(np.int64) // 12 + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (span - months.astype("datetime64[D]")).astype(np.int64) + 1
    count = len(span)
    table = np.hstack(
        [
            digit_matrix(year, 4),
            _literal("-", count),
            digit_matrix(month, 2),
            _literal("-", count),
            digit_matrix(day, 2),
        ]
    )
    return table[day_numbers - first]


@cache
def _time_of_day_matrix() -> np.ndarray:
    """(86400, 8) bytes ``HH:MM:SS`` for every second of a day."""
    seconds = np.arange(DAY_SECONDS)
    return np.hstack(
        [
            digit_matrix(seconds // 3600, 2),
            _literal(":", DAY_SECONDS),
            digit_matrix(seconds // 60 % 60, 2),
            _literal(":", DAY_SECONDS),
            digit_matrix(seconds % 60, 2),
        ]
    )


def dates(day_numbers: np.ndarray) -> pa.Array:
    """Days since the epoch as ``YYYY-MM-DD``."""
    return fixed_width_strings(_date_matrix(day_numbers))


def timestamps(epoch_seconds: np.ndarray) -> pa.Array:
    """Epoch seconds as ISO-8601 UTC ``YYYY-MM-DDTHH:MM:SSZ``."""
    epoch_seconds = np.asarray(epoch_seconds, dtype=np.int64)
    out = np.empty((len(epoch_seconds), 20), dtype=np.uint8)
    out[:, :10] = _date_matrix(epoch_seconds // DAY_SECONDS)
    out[:, 10] = ord("T")
    out[:, 11:19] = _time_of_day_matrix()[epoch_seconds % DAY_SECONDS]
    out[:, 19] = ord("Z")
    return fixed_width_strings(out)


def booleans(values: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(values, dtype=bool)), "true", "false")


def csv_escape(values: pa.Array) -> pa.Array:
    """RFC 4180 minimal quoting: quote a field holding a comma, quote or line break, doubling
    the quotes inside."""
    needs_quotes = pc.match_substring_regex(values, '[",\r\n]')
    quoted = join('"', pc.replace_substring(values, '"', '""'), '"')
    return pc.if_else(needs_quotes, quoted, values)


def escape_pool(values: list[str]) -> pa.Array:
    """A small vocabulary, CSV-escaped once so rows can ``take`` ready-made fields."""
    return csv_escape(pa.array(values, pa.string()))


def with_nulls(values: pa.Array, null_mask: np.ndarray) -> pa.Array:
    """Empty text (a CSV null) where ``null_mask`` is set."""
    return pc.if_else(pa.array(np.asarray(null_mask, dtype=bool)), "", values)


def base62(numbers: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width base-62 digits of non-negative integers, as a (n, width) uint8 matrix."""
    numbers = np.asarray(numbers, dtype=np.int64).copy()
    out = np.empty((len(numbers), width), dtype=np.uint8)
    for position in range(width - 1, -1, -1):
        out[:, position] = BASE62[numbers % 62]
        numbers //= 62
    return out


def salesforce_ids(prefix: str, numbers: np.ndarray, pod: str = "5g") -> pa.Array:
    """18-character Salesforce-style ids: key prefix (3) + pod (2) + "0000" + 6 base-62 digits,
    then the real 3-character case-safe checksum suffix."""
    head = np.frombuffer((prefix + pod + "0000").encode("ascii"), np.uint8)
    chars = np.empty((len(numbers), 18), dtype=np.uint8)
    chars[:, :9] = head
    chars[:, 9:15] = base62(numbers, 6)
    upper = (chars[:, :15] >= ord("A")) & (chars[:, :15] <= ord("Z"))
    weights = 1 << np.arange(5)
    for block in range(3):
        bits = (upper[:, block * 5 : block * 5 + 5] * weights).sum(axis=1)
        chars[:, 15 + block] = SF_SUFFIX[bits]
    return fixed_width_strings(chars)


def uuids(rng: np.random.Generator, count: int) -> pa.Array:
    """Deterministic random UUID-4 strings (lower-case hex, 8-4-4-4-12)."""
    raw = np.frombuffer(rng.bytes(count * 16), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hex_digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    nibbles = np.empty((count, 32), dtype=np.uint8)
    nibbles[:, 0::2] = hex_digits[raw >> 4]
    nibbles[:, 1::2] = hex_digits[raw & 0x0F]
    out = np.full((count, 36), ord("-"), dtype=np.uint8)
    for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        out[:, dst : dst + width] = nibbles[:, src : src + width]
    return fixed_width_strings(out)


def terminated_lines(lines: pa.Array) -> tuple[pa.Buffer, np.ndarray]:
    """The text of ``lines``, each ended by a newline, as one buffer (no copy beyond the join)
    and the offsets where each line starts (plus the end)."""
    terminated = join(lines, "\n")
    if isinstance(terminated, pa.ChunkedArray):
        terminated = terminated.combine_chunks()
    if terminated.type != pa.large_string():
        terminated = terminated.cast(pa.large_string())
    if len(terminated) == 0:
        return pa.py_buffer(b""), np.zeros(1, dtype=np.int64)
    offsets = np.frombuffer(terminated.buffers()[1], dtype=np.int64)
    offsets = offsets[terminated.offset : terminated.offset + len(terminated) + 1]
    return terminated.buffers()[2], offsets
