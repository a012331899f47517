"""The anomaly gate on a real chain: an FX file off by 100x stops the day before the warehouse.

After the suite's three-day chain (a copy of its lake), day 4 is the generator's own fourth day
(the same seed generating four days writes days 1-3 byte for byte as the chain had them) with
two of its delivery faults: every right rate of the FX file but USD per USD divided by 100 (a
decimal shift at the source), and device clocks on the stream (some events ten years ahead, some minutes). The
contracts quarantine exactly what the manifest says: each shifted rate as ``rate:jump`` against
its currency's last rate, so silver stays right, and each far-future event as
``event_ts:future``, which moves no watermark. But a day on which all of FX went to quarantine
is not a day to publish. The chain as ``--job all`` runs it (``validate`` before the publish)
must stop at the gate: exit with a message naming the table and the figure, leave the warehouse
exactly as day 3 left it, and flag nothing else on an otherwise ordinary day with three days of
history. An operator who knows the day is right accepts the anomaly (``--accept-anomalies``):
then the publish runs, and the audit record says what was accepted.
"""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest
from chain_lake import DAYS, SCALE, SEED, START, quarantine_reasons

from medallion.audit import read_records
from medallion.errors import JobError
from medallion.generate import generate_landing
from medallion.jobs import JOB_MAP, JOBS
from medallion.lake import Lake
from medallion.quality.job import VALIDATE_JOB, before_publish
from medallion.quality.results import read_results
from medallion.runner import run_chain, run_job

pytestmark = pytest.mark.integration

DAY4 = DAYS[-1] + dt.timedelta(days=1)
FX_ANOMALY = "anomaly.fx/fx_rates.quarantine_rate"
GATED_JOBS = [job.name for job in before_publish(JOBS)]


def warehouse(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}


@pytest.fixture(scope="module")
def gated(spark, copy_of_chain_lake, tmp_path_factory):
    chain = copy_of_chain_lake
    landing = chain.root / "landing"
    four = tmp_path_factory.mktemp("four_days") / "landing"
    manifest = generate_landing(
        four, scale=SCALE, days=len(DAYS) + 1, start_date=START, seed=SEED, force=True,
        faults=["4:decimal_shift", "4:future_events"],
    )  # fmt: skip
    day3 = sorted(p.relative_to(four) for p in four.glob(f"**/dt={DAYS[-1]}/*") if p.is_file())
    assert day3 and all((four / p).read_bytes() == (landing / p).read_bytes() for p in day3)
    for folder in four.glob(f"**/dt={DAY4}"):
        shutil.copytree(folder, landing / folder.relative_to(four))
    before = warehouse(chain.settings.warehouse.duckdb.path)

    with pytest.raises(JobError) as stopped:
        run_chain(before_publish(JOBS), [DAY4], chain.settings, lambda: spark)
    return chain, str(stopped.value), before, manifest["days"][str(DAY4)]


def test_the_chain_stops_at_the_gate_naming_the_table_and_the_figure(gated):
    chain, message, _, day4 = gated
    fx_rows = day4["fx/fx_rates"]["rows_written"]
    share = 100 * day4["fx/fx_rates"]["expected"]["rows_quarantined"] / fx_rows
    assert share > 90  # every rate but the identity one
    assert f"{fx_rows} source rows" in message
    assert message.startswith(
        f"quality gate failed for {DAY4}: 1 error check(s) failed: {FX_ANOMALY}"
    )
    assert (
        f"anomalies: fx/fx_rates: {share:.1f}% of {fx_rows} source rows quarantined, above the ceiling "
        "of 25% (if the delivery is right, rerun with --accept-anomalies)"
    ) in message
    runs = {r["job"]: r["status"] for r in read_records(str(chain.root), run_date=DAY4)}
    assert runs == {name: "succeeded" for name in GATED_JOBS[:-2]} | {"validate": "failed"}


def test_the_faults_are_quarantined_exactly_as_the_manifest_says(spark, gated):
    chain, _, _, day4 = gated
    for table in ("fx/fx_rates", "kafka/order_events"):
        found = quarantine_reasons(spark, chain.root, table, DAY4)
        expected = {k: v for k, v in day4[table]["expected"]["quarantine"].items() if v}
        assert found == expected, table
    # Every rate of the day but USD per USD is a jump: the shifted ones and the day's one absurd
    # rate (a row-level defect of the default catalogue), so only the identity rate reaches bronze.
    fx = day4["fx/fx_rates"]
    assert fx["defects"]["decimal_shifted"] + fx["defects"]["absurd_rate"] == fx["rows_written"] - 1
    assert fx["expected"]["quarantine"]["rate:jump"] == fx["rows_written"] - 1
    assert fx["expected"]["rows_bronze"] == 1
    # The far-future events went to quarantine without moving the watermark past the day.
    stream = next(
        r for r in read_records(str(chain.root), run_date=DAY4)
        if r["job"] == "kafka_events_to_bronze"
    )  # fmt: skip
    events = day4["kafka/order_events"]
    assert stream["details"]["future_events"] == events["defects"]["future_event"] > 0
    assert stream["details"]["watermark"] < str(DAY4 + dt.timedelta(days=1))


def test_nothing_of_the_day_reaches_the_warehouse(gated):
    chain, _, before, _ = gated
    assert warehouse(chain.settings.warehouse.duckdb.path) == before


def test_an_ordinary_day_with_history_raises_no_other_anomaly(gated):
    chain, _, _, _ = gated
    results = read_results(Lake.from_root(str(chain.root)), DAY4)
    figures = {c["id"]: c for c in results["checks"] if c["kind"] == "anomaly"}
    failed = sorted(check_id for check_id, c in figures.items() if c["status"] == "failed")
    assert failed == [FX_ANOMALY]
    # Every ingest table was judged against the chain's three earlier days.
    rows = [c for c in figures.values() if c["id"].endswith(".rows_in")]
    assert {c["table"] for c in rows} >= {"fx/fx_rates", "crm/accounts", "snowflake/orders",
                                          "kafka/order_events"}  # fmt: skip
    assert all([day for day, _ in c["history"]] == [str(d) for d in DAYS] for c in rows)
    judged = [c for c in rows if c["status"] == "passed"]
    assert judged, "no row count was judged against its history"
    # The one rate of the day that reached silver is the identity: it did not move.
    move = figures["anomaly.fx/fx_rates.max_rate_move"]
    assert (move["status"], move["message"]) == (
        "passed", "fx/fx_rates: the largest accepted move is 1.0000x"
    )  # fmt: skip


def test_an_accepted_anomaly_lets_the_publish_run_and_is_recorded(spark, gated):
    chain, _, before, _ = gated
    record = run_job(VALIDATE_JOB, DAY4, chain.settings, spark, {"accept_anomalies": True})
    assert record.status == "succeeded"
    assert record.details["anomalies_accepted"] == [FX_ANOMALY]
    checks = {c["id"]: c for c in read_results(Lake.from_root(str(chain.root)), DAY4)["checks"]}
    assert (checks[FX_ANOMALY]["status"], checks[FX_ANOMALY]["severity"]) == ("failed", "warn")
    assert checks[FX_ANOMALY]["message"].endswith("(accepted with --accept-anomalies)")

    published = run_job(JOB_MAP["publish_gold_to_snowflake"], DAY4, chain.settings, spark)
    assert published.status == "succeeded"
    after = warehouse(chain.settings.warehouse.duckdb.path)
    assert after != before and set(after) == set(before)
