"""Building blocks of the generator: text formatting, id formats, random streams, defect draws."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import numpy as np
import pyarrow as pa
import pytest

from medallion.generate import defects, fmt, streams
from medallion.generate.fx import FxState


def _salesforce_suffix(id15: str) -> str:
    """The documented case-safe suffix: per 5-character block, bit i set when character i is
    an upper-case letter, mapped onto A-Z0-5."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    out = ""
    for block in range(3):
        chunk = id15[block * 5 : block * 5 + 5]
        out += alphabet[sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")]
    return out


def test_salesforce_ids_carry_the_real_checksum():
    ids = fmt.salesforce_ids("001", np.array([0, 1, 61, 62, 10**9, 987_654_321])).to_pylist()
    assert ids[1] == "0015g0000000001AAA"
    for value in ids:
        assert re.fullmatch(r"001[A-Za-z0-9]{15}", value)
        assert value[15:] == _salesforce_suffix(value[:15])
    assert len(set(ids)) == len(ids)


def test_timestamps_and_dates_match_the_standard_library():
    seconds = np.array([0, 1_736_756_130, 951_782_400, 4_102_444_799, -1])
    expected = [
        (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(s))).strftime("%Y-%m-%dT%H:%M:%SZ")
        for s in seconds
    ]
    assert fmt.timestamps(seconds).to_pylist() == expected
    days = np.array([0, 11_016, 20_101, -365])
    assert fmt.dates(days).to_pylist() == [
        (dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).isoformat() for d in days
    ]


def test_fixed_point_and_ids():
    assert fmt.fixed(np.array([0, 5, 99, -105, 123_456]), 2).to_pylist() == [
        "0.00",
        "0.05",
        "0.99",
        "-1.05",
        "1234.56",
    ]
    assert fmt.fixed(np.array([7, 1_234]), 1).to_pylist() == ["0.7", "123.4"]
    assert fmt.decimal_comma(np.array([1_250]), 2).to_pylist() == ["12,50"]
    assert fmt.ids("C", np.array([1, 99_999_999]), 8).to_pylist() == ["C00000001", "C99999999"]
    with pytest.raises(ValueError, match="out of range"):
        fmt.ids("P", np.array([10_000_000]), 7)


def test_csv_escape_matches_the_csv_module():
    values = ["plain", "Acme, Inc.", 'Skillet 12"', "two\nlines", 'a "quoted", b', "Zoë"]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    assert ",".join(fmt.csv_escape(pa.array(values)).to_pylist()) + "\n" == buffer.getvalue()


def test_uuids_are_deterministic_version_4():
    first = fmt.uuids(np.random.default_rng(1), 1_000).to_pylist()
    assert first == fmt.uuids(np.random.default_rng(1), 1_000).to_pylist()
    assert len(set(first)) == 1_000
    pattern = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert all(re.fullmatch(pattern, u) for u in first)


def test_lines_to_one_buffer():
    data, offsets = fmt.terminated_lines(pa.array(["a", "bc", 'x,"y"\nz']))
    assert bytes(memoryview(data)[offsets[0] : offsets[-1]]) == b'a\nbc\nx,"y"\nz\n'
    assert offsets.tolist() == [0, 2, 5, 13]


def test_streams_are_independent_and_repeatable():
    a = streams.stream(42, "snowflake/orders", 0, "rows").random(5)
    assert np.array_equal(a, streams.stream(42, "snowflake/orders", 0, "rows").random(5))
    assert not np.array_equal(a, streams.stream(42, "snowflake/orders", 1, "rows").random(5))
    assert not np.array_equal(a, streams.stream(42, "crm/accounts", 0, "rows").random(5))
    assert not np.array_equal(a, streams.stream(43, "snowflake/orders", 0, "rows").random(5))


def test_pick_created_before_never_picks_a_later_entity():
    rng = np.random.default_rng(0)
    created = np.sort(rng.integers(0, 1_000, 500))
    at = rng.integers(100, 2_000, 5_000)
    picked = streams.pick_created_before(rng, created, at, skew=1.3)
    assert (created[picked] < at).all()


def test_defect_draws_are_disjoint_and_exact():
    rng = np.random.default_rng(0)
    picked = defects.pick_disjoint(rng, np.arange(100), {"a": 10, "b": 5, "c": 200})
    assert [len(v) for v in picked.values()] == [10, 5, 85]
    assert len(np.unique(np.concatenate(list(picked.values())))) == 100
    assert defects.count_for(0.005, 20_360) == 102
    assert defects.count_for(0.005, 100) == 1  # halves round up
    assert defects.count_for(0.01, 20) == 0


def test_fx_as_of_uses_the_latest_valid_rate_on_or_before_the_day():
    state = FxState()
    state.valid_days[7] = [np.array([10, 11, 14])]
    state.valid_rates[7] = [np.array([0.90, 0.91, 0.94])]
    rates = state.asof(np.array([7, 7, 7, 7]), np.array([10, 12, 14, 30]))
    assert rates.tolist() == [0.90, 0.91, 0.94, 0.94]
