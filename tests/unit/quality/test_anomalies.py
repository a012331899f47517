"""The anomaly gate's judgement, on audit records written here (no Spark): which figure of which
table is an anomaly, against which history, and when there is too little history to judge."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import asdict

import pytest
from ecb_rates import ecb_series

from medallion.config import AnomalyConfig
from medallion.quality.anomalies import ingest_figures, judge, judge_fx
from medallion.quality.results import FAILED, PASSED, SKIPPED

INGESTS = {"crm_to_bronze", "fx_json_to_bronze"}
CONFIG = AnomalyConfig()
DAYS = [dt.date(2025, 1, 13) + dt.timedelta(days=i) for i in range(9)]


def record(day, rows_in, quarantined, *, table="crm/accounts", job="crm_to_bronze",
           status="succeeded", started="") -> dict:  # fmt: skip
    return {
        "job": job,
        "run_date": day.isoformat(),
        "status": status,
        "started_at": started or f"{day.isoformat()}T06:00:00Z",
        "tables": [
            {
                "name": table,
                "rows_in": rows_in,
                "rows_out": rows_in - quarantined,
                "rows_quarantined": quarantined,
            }
        ],
    }


def history(*counts: tuple[int, int]) -> list[dict]:
    """One accounts delivery a day: a full first extract, then the given increments."""
    return [record(DAYS[0], 5_000, 150)] + [
        record(day, rows, quarantined) for day, (rows, quarantined) in zip(DAYS[1:], counts)
    ]


def verdicts(records, day, config=CONFIG) -> dict[str, tuple[str, float | None]]:
    results = judge(day, ingest_figures(records, INGESTS), config)
    return {r.id: (r.status, r.baseline) for r in results}


ROWS, RATE = "anomaly.crm/accounts.rows_in", "anomaly.crm/accounts.quarantine_rate"


def test_a_normal_day_after_a_full_load_passes_against_the_increments_median():
    records = history((400, 12), (420, 14), (380, 11), (410, 13))
    found = verdicts(records, DAYS[4])
    # The median of 5,000, 400, 420 and 380 is an increment's size, not the full load's.
    assert found[ROWS] == (PASSED, 410.0)
    assert found[RATE][0] == PASSED


def test_too_little_history_skips_the_history_rules_but_not_the_ceiling():
    records = history((400, 12), (420, 200))
    found = verdicts(records, DAYS[2])
    assert found[ROWS] == (SKIPPED, None)  # two earlier runs, three needed
    # 200 of 420 quarantined is above the 25 % ceiling, whatever the history.
    assert found[RATE][0] == FAILED
    results = {r.id: r for r in judge(DAYS[2], ingest_figures(records, INGESTS), CONFIG)}
    assert results[RATE].message == (
        "crm/accounts: 47.6% of 420 source rows quarantined, above the ceiling of 25%"
    )


@pytest.mark.parametrize(
    ("rows", "status"), [(82, FAILED), (83, PASSED), (2_075, PASSED), (2_076, FAILED), (0, FAILED)]
)
def test_a_row_count_beyond_the_factor_either_way_is_an_anomaly(rows, status):
    records = history((400, 12), (420, 14), (410, 13), (rows, 0))
    # median of 5,000, 400, 420 and 410: 415; factor 5: 83 (= 415/5) .. 2,075 (= 415x5) pass.
    assert verdicts(records, DAYS[4])[ROWS] == (status, 415.0)


def test_a_quarantine_rate_several_times_its_median_is_an_anomaly_only_by_a_margin():
    base = ((1_000, 10), (1_000, 10), (1_000, 10))  # 1 %
    assert verdicts(history(*base, (1_000, 31)), DAYS[4])[RATE] == (FAILED, 0.01)  # 3.1x, +2.1 pt
    assert verdicts(history(*base, (1_000, 29)), DAYS[4])[RATE][0] == PASSED  # 2.9x
    clean = ((1_000, 0), (1_000, 0), (1_000, 0))  # 0 %: 3x of nothing is no basis alone
    assert verdicts(history(*clean, (1_000, 19)), DAYS[4])[RATE][0] == PASSED  # +1.9 pt
    assert verdicts(history(*clean, (1_000, 20)), DAYS[4])[RATE][0] == FAILED  # +2.0 pt


def test_a_small_delivery_is_not_judged_by_its_rates():
    records = history((400, 12), (420, 14), (410, 13), (10, 5))
    found = verdicts(records, DAYS[4])
    assert found[RATE][0] == SKIPPED  # 10 source rows: 50 % of them says little
    assert found[ROWS][0] == FAILED  # but 10 against a median of 410 is a fall


def test_an_empty_delivery_has_no_rate_and_its_fall_is_an_anomaly():
    records = history((400, 12), (420, 14), (410, 13), (0, 0))
    assert verdicts(records, DAYS[4]) == {ROWS: (FAILED, 415.0)}


def test_an_empty_delivery_of_a_table_that_may_send_none_is_no_anomaly():
    """FX on a holiday: the ECB publishes no rates, the file is empty (the default list)."""
    fx = [record(day, rows, 0, table="fx/fx_rates", job="fx_json_to_bronze")
          for day, rows in zip(DAYS, (20_360, 20, 20, 20, 0))]  # fmt: skip
    results = {r.id: r for r in judge(DAYS[4], ingest_figures(fx, INGESTS), CONFIG)}
    assert results["anomaly.fx/fx_rates.rows_in"].status == PASSED
    strict = AnomalyConfig(empty_allowed=[])
    results = {r.id: r for r in judge(DAYS[4], ingest_figures(fx, INGESTS), strict)}
    assert results["anomaly.fx/fx_rates.rows_in"].status == FAILED


def test_history_is_each_earlier_dates_latest_successful_run_never_a_later_date():
    records = history((400, 12), (420, 14), (410, 13), (400, 12))
    # A failed run of D2 and a later rerun of D3 that delivered 2,000 rows.
    records.insert(2, record(DAYS[1], 9_999, 9_999, status="failed"))
    records.append(record(DAYS[3], 2_000, 60, started="2025-02-01T00:00:00Z"))
    records.append(record(DAYS[6], 50_000, 40_000))  # later than the date judged
    results = {r.id: r for r in judge(DAYS[4], ingest_figures(records, INGESTS), CONFIG)}
    assert results[ROWS].history == [
        ["2025-01-13", 5_000], ["2025-01-14", 400], ["2025-01-15", 420], ["2025-01-16", 2_000]
    ]  # fmt: skip
    assert results[ROWS].baseline == 1_210.0


def test_only_the_trailing_runs_count():
    config = AnomalyConfig(history_runs=3, min_history=3)
    records = history((400, 12), (420, 14), (410, 13), (50, 1))
    results = {r.id: r for r in judge(DAYS[4], ingest_figures(records, INGESTS), config)}
    assert [day for day, _ in results[ROWS].history] == ["2025-01-14", "2025-01-15", "2025-01-16"]
    assert results[ROWS].status == FAILED


def test_a_date_without_an_ingest_run_is_skipped_with_a_reason():
    (result,) = judge(DAYS[5], ingest_figures(history((400, 12)), INGESTS), CONFIG)
    assert result.status == SKIPPED
    assert result.message == "no ingest run succeeded for 2025-01-18: no delivery to judge"


def test_only_ingest_jobs_are_judged():
    records = history((400, 12), (420, 14), (410, 13), (400, 12))
    records.append(record(DAYS[4], 1, 1, table="silver/orders", job="bronze_to_silver"))
    assert set(verdicts(records, DAYS[4])) == {ROWS, RATE}


def test_an_fx_move_beyond_the_factor_is_an_anomaly():
    moves = {"2025-01-13": 1.04, "2025-01-14": 1.01, "2025-01-15": 1.5}
    result = judge_fx(DAYS[2], moves, CONFIG)
    assert (result.status, result.observed, result.baseline) == (FAILED, 1.5, 1.025)
    assert result.message == (
        "fx/fx_rates: an accepted rate moved 1.500x from its previous rate, above the limit of 1.2x"
    )
    assert judge_fx(DAYS[1], moves, CONFIG).status == PASSED
    assert judge_fx(DAYS[3], moves, CONFIG).status == SKIPPED  # no rate delivered that day


def test_real_ecb_rates_never_move_as_far_as_the_fx_limit():
    """Every daily move of the 20 currencies in the ECB's whole series (1999-2026, the dates
    that quote all of them) stays under the gate's default limit, so real data cannot trip it."""
    series = list(ecb_series().values())
    largest = max(
        math.exp(abs(math.log(today[c] / before[c])))
        for before, today in itertools.pairwise(series)
        for c in today
    )
    assert 1.05 < largest < CONFIG.fx_move_factor


def test_the_history_needed_cannot_exceed_the_history_kept():
    with pytest.raises(ValueError, match="min_history"):
        AnomalyConfig(history_runs=2, min_history=3)


def test_the_report_shows_each_figure_beside_its_history():
    from medallion.quality.report import _quality

    records = history((400, 12), (420, 14), (410, 13), (0, 0))
    checks = [asdict(r) for r in judge(DAYS[4], ingest_figures(records, INGESTS), CONFIG)]
    section = _quality({"status": "failed", "summary": {}, "checks": checks})
    (figure,) = section["figures"]
    assert (figure["value"], figure["baseline_shown"]) == ("0", "415")
    assert figure["history_shown"] == [("01-13", "5,000"), ("01-14", "400"), ("01-15", "420"),
                                       ("01-16", "410")]  # fmt: skip
    assert [c["id"] for c in section["attention"]] == [ROWS]  # the failed figure is listed too
