"""Delivery faults in the generator: each one written as documented, and counted in the manifest.

One run with a fault on most of its days is compared with the same seed's clean run, file by
file, with the csv and json modules (not the generator's code), so each test checks what a
reader of the landing zone would find.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest

from medallion.contracts.control import CONTROL_FILE
from medallion.errors import UsageError
from medallion.generate import generate_landing
from medallion.generate.faults import FUTURE_SECONDS, SKEW_SECONDS, make_fault, parse_fault

START = dt.date(2025, 1, 13)
SCALE = 0.02
DATES = [(START + dt.timedelta(days=i)).isoformat() for i in range(6)]
CSV_TABLES = ("crm/accounts", "crm/contacts", "crm/opportunities", "snowflake/customers",
              "snowflake/products", "snowflake/orders", "redshift/customer_behavior")  # fmt: skip
EVENTS, FX = "kafka/order_events", "fx/fx_rates"
FAULTS = [
    "2:decimal_shift",
    "2:future_events",
    "3:runaway_quote",
    "4:replayed_day",
    f"5:replayed_day:{EVENTS}",
    "6:empty_day",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    out = {}
    for name, days, faults in (("clean", 2, []), ("faulty", 6, FAULTS)):
        landing = tmp_path_factory.mktemp(name) / "landing"
        manifest = generate_landing(
            landing, scale=SCALE, days=days, start_date=START, seed=7, faults=faults
        )
        out[name] = landing, manifest
    return out


def files(landing: Path, table: str, date: str) -> dict[str, bytes]:
    folder = landing / table / f"dt={date}"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def json_lines(landing: Path, table: str, date: str) -> list[dict]:
    rows = []
    for text in files(landing, table, date).values():
        for line in text.decode("utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a truncated line: a row defect
                rows.append(json.loads(line))
    return rows


def stream_lines(landing: Path, date: str) -> list[bytes]:
    texts = [v for k, v in files(landing, EVENTS, date).items() if k.endswith(".jsonl")]
    return [line for text in texts for line in text.splitlines()]


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (["2"], "DAY:KIND"),
        (["x:empty_day"], "DAY:KIND"),
        (["2:tornado"], "unknown fault kind 'tornado'"),
        (["2:decimal_shift:crm/accounts"], "decimal_shift applies to fx/fx_rates"),
        (["2:empty_day:fx/fx_rates"], "empty_day applies to no table"),
        (["1:decimal_shift"], "needs an earlier delivery"),
        (["1:replayed_day"], "needs an earlier delivery"),
        (["4:future_events"], "the run has 3 day(s)"),
        (["2:empty_day", "2:replayed_day"], "cannot carry both"),
        (["2:empty_day", "2:decimal_shift"], "cannot go with a day that has nothing new"),
    ],
)
def test_fault_arguments_are_checked(tmp_path, faults, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        generate_landing(tmp_path / "landing", scale=SCALE, days=3, faults=faults)
    assert not (tmp_path / "landing").exists()


def test_a_fault_argument_names_its_tables():
    assert parse_fault("3:runaway_quote") == make_fault(3, "runaway_quote", ["crm/accounts"])
    fault = parse_fault("3:runaway_quote:snowflake/orders, crm/contacts")
    assert fault.tables == ("snowflake/orders", "crm/contacts")
    assert len(parse_fault("5:replayed_day").tables) == 9


def test_the_manifest_lists_the_faults_with_their_dates(runs):
    _, manifest = runs["faulty"]
    listed = [(f["day"], f["date"], f["kind"]) for f in manifest["faults"]]
    assert listed == [
        (2, DATES[1], "decimal_shift"),
        (2, DATES[1], "future_events"),
        (3, DATES[2], "runaway_quote"),
        (4, DATES[3], "replayed_day"),
        (5, DATES[4], "replayed_day"),
        (6, DATES[5], "empty_day"),
    ]
    assert runs["clean"][1]["faults"] == []


def test_days_before_the_first_fault_are_the_clean_run(runs):
    (clean, _), (faulty, _) = runs["clean"], runs["faulty"]
    for table in (*CSV_TABLES, FX, EVENTS):
        assert files(faulty, table, DATES[0]) == files(clean, table, DATES[0]), table


def test_a_decimal_shift_divides_every_right_rate_by_100(runs):
    (clean, clean_manifest), (faulty, manifest) = runs["clean"], runs["faulty"]
    before = {(r["date"], r["quote_ccy"]): r["rate"] for r in json_lines(clean, FX, DATES[1])}
    after = {(r["date"], r["quote_ccy"]): r["rate"] for r in json_lines(faulty, FX, DATES[1])}
    assert before.keys() == after.keys()
    shifted = [k for k in after if after[k] == pytest.approx(before[k] / 100, rel=1e-3)]
    unchanged = [k for k in after if after[k] == before[k]]
    entry = manifest["days"][DATES[1]][FX]
    assert len(shifted) == entry["defects"]["decimal_shifted"] == len(after) - 2
    # Delivered as they were: the one rate the clean day already got wrong (off by 1000), and
    # the identity rate (USD per USD is 1, not a quote the provider computes).
    assert clean_manifest["days"][DATES[1]][FX]["defects"]["absurd_rate"] == 1
    assert sorted(ccy for _, ccy in unchanged)[-1] == "USD" and len(unchanged) == 2
    assert entry["expected"]["quarantine"]["rate:jump"] == len(after) - 1
    assert entry["expected"]["rows_bronze"] == 1


def test_future_events_are_years_ahead_and_skewed_ones_minutes(runs):
    (clean, _), (faulty, manifest) = runs["clean"], runs["faulty"]

    def stamps(landing):
        return {
            r["event_id"]: dt.datetime.fromisoformat(r["event_ts"])
            for r in json_lines(landing, EVENTS, DATES[1])
        }

    before, after = stamps(clean), stamps(faulty)
    moved = {e: (after[e] - before[e]).total_seconds() for e in after if after[e] != before.get(e)}
    far = [s for s in moved.values() if FUTURE_SECONDS <= s <= FUTURE_SECONDS + 10]
    near = [s for s in moved.values() if SKEW_SECONDS[0] <= s <= SKEW_SECONDS[1] + 10]
    entry = manifest["days"][DATES[1]][EVENTS]
    assert len(far) == entry["defects"]["future_event"] > 0
    assert len(near) == entry["defects"]["clock_skewed"] > 0
    assert len(moved) == len(far) + len(near)
    assert entry["expected"]["quarantine"]["event_ts:future"] == len(far)
    assert all(after[e].year >= 2035 for e, s in moved.items() if s >= FUTURE_SECONDS)


def test_a_runaway_quote_hides_records_from_a_csv_reader(runs):
    faulty, manifest = runs["faulty"]
    entry = manifest["days"][DATES[2]]["crm/accounts"]
    where = entry["changes"]["runaway_quote"]
    folder = faulty / "crm/accounts" / f"dt={DATES[2]}"
    text = (folder / where["file"]).read_text(encoding="utf-8")
    assert text.split("\n")[where["line"] - 1].count('"') == 1
    declared = json.loads((folder / CONTROL_FILE).read_text(encoding="utf-8"))["files"]
    records = list(csv.reader(io.StringIO(text)))[1:]
    assert declared[where["file"]] == entry["rows_written"] > len(records)
    assert entry["expected"]["ingest_fails"] is True
    # No other table of the day is touched.
    others = manifest["days"][DATES[2]]
    assert [t for t in others if others[t]["changes"].get("fault")] == ["crm/accounts"]


def test_a_replayed_day_is_the_day_before_byte_for_byte(runs):
    faulty, manifest = runs["faulty"]
    day3, day4 = manifest["days"][DATES[2]], manifest["days"][DATES[3]]
    for table in (*CSV_TABLES, FX):
        assert files(faulty, table, DATES[3]) == files(faulty, table, DATES[2]), table
        assert day4[table]["expected"]["rows_bronze"] == day3[table]["expected"]["rows_bronze"]
        assert day4[table]["expected"]["silver_rows"] == day3[table]["expected"]["silver_rows"]
    assert stream_lines(faulty, DATES[3]) == stream_lines(faulty, DATES[2])
    names = [sorted(files(faulty, EVENTS, d)) for d in DATES[2:4]]
    assert int(names[1][0][6:11]) == int(names[0][-1][6:11]) + 1, "batch numbers go on"
    # Each line bronze took on day 3 is a duplicate now; the rest fail as they did then.
    expected = dict(day3[EVENTS]["expected"]["quarantine"])
    expected["duplicate_event"] += day3[EVENTS]["expected"]["rows_bronze"]
    assert day4[EVENTS]["expected"]["quarantine"] == expected
    assert day4[EVENTS]["expected"]["rows_bronze"] == 0
    assert manifest["truth"]["new_rows"][DATES[3]] == dict.fromkeys(day4, 0)


def test_a_day_with_nothing_new_sends_headers_an_empty_file_or_a_replay(runs):
    faulty, manifest = runs["faulty"]
    for date in DATES[4:]:
        for table in CSV_TABLES:
            delivered = files(faulty, table, date)
            assert delivered["part-00000.csv"].decode().count("\n") == 1, (date, table)
            assert json.loads(delivered[CONTROL_FILE])["files"] == {"part-00000.csv": 0}
            assert manifest["days"][date][table]["rows_written"] == 0
        assert files(faulty, FX, date)["fx_rates.jsonl"] == b""
    # Day 5 replays only the stream (day 4's delivery, itself day 3's); day 6 sends no file.
    assert stream_lines(faulty, DATES[4]) == stream_lines(faulty, DATES[2])
    assert manifest["days"][DATES[4]][EVENTS]["expected"]["rows_bronze"] == 0
    assert files(faulty, EVENTS, DATES[5]) == {}
    assert manifest["days"][DATES[5]][EVENTS]["rows_written"] == 0
    assert manifest["truth"]["kafka_valid_distinct_events"]["by_day"][DATES[5]] == 0
