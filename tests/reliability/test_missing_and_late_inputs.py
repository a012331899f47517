"""Missing and late inputs: a run date without a landing folder fails clearly (through the CLI,
no traceback) and writes nothing; for the stream it is a documented no-op; a batch source that
arrives late is picked up by the rerun, and a stream file that lands late in an earlier day's
folder is picked up by the next run, every line accounted for."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from lakestate import audit_trail, medallion, one_sentence, snapshot, write_config

from medallion.config import load_settings
from medallion.errors import JobError
from medallion.generate import generate_landing
from medallion.jobs import JOB_MAP
from medallion.runner import run_job

pytestmark = pytest.mark.reliability

D1, D2 = dt.date(2025, 1, 13), dt.date(2025, 1, 14)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    base = tmp_path_factory.mktemp("late")
    root = base / "lake"
    manifest = generate_landing(root / "landing", scale=0.01, days=2, start_date=D1, seed=5)
    config = write_config(base / "config.yaml", root)
    return root, manifest, config, load_settings("local", str(config))


def test_cli_run_for_a_date_without_landing_fails_with_one_sentence(tmp_path):
    root = tmp_path / "lake"
    config = write_config(tmp_path / "config.yaml", root)
    result = medallion("run", "--job", "all", "--run-date", "2025-02-01", "--config", str(config))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("medallion: error:")]
    assert errors == [
        "medallion: error: no landing data for run date 2025-02-01: fx/fx_rates "
        f"({root}/landing/fx/fx_rates/dt=2025-02-01) does not exist; deliver (or generate) that "
        "day's extract first, or pick a run date that has one"
    ]
    assert "Traceback" not in result.stderr and "\tat " not in result.stderr
    # The ingests ran (side by side) and the chain stopped before silver: every batch ingest
    # failed naming its own missing folder, the stream had nothing to do.
    trail = {r["job"]: r for r in audit_trail(root, run_date="2025-02-01")}
    batch = ["fx_json_to_bronze", "crm_to_bronze", "snowflake_to_bronze", "redshift_to_bronze"]
    assert set(trail) <= {*batch, "kafka_events_to_bronze"} and set(batch) <= set(trail)
    for job in batch:
        assert trail[job]["status"] == "failed", job
        assert trail[job]["error"].startswith("no landing data for run date 2025-02-01: "), job
    assert not (root / "bronze").exists() and not (root / "silver").exists()


def test_the_stream_without_landing_is_a_no_op(spark, tmp_path):
    config = write_config(tmp_path / "config.yaml", tmp_path / "lake")
    settings = load_settings("local", str(config))
    record = run_job(JOB_MAP["kafka_events_to_bronze"], D1, settings, spark)
    assert (record.status, record.rows_in, record.rows_out) == ("succeeded", 0, 0)
    (tmp_path / "lake/landing/kafka/order_events/dt=2025-01-20").mkdir(parents=True)
    record = run_job(JOB_MAP["kafka_events_to_bronze"], D1, settings, spark)
    assert (record.status, record.rows_in) == ("succeeded", 0)  # only later days: not yet
    assert not (tmp_path / "lake/bronze").exists()


def test_a_batch_source_arriving_late_is_picked_up_by_the_rerun(spark, lake, tmp_path):
    root, manifest, _, settings = lake
    orders = root / "landing/snowflake/orders" / f"dt={D1}"
    held_back = tmp_path / "orders-not-yet"
    shutil.move(orders, held_back)
    job = JOB_MAP["snowflake_to_bronze"]
    with pytest.raises(JobError) as missing:
        run_job(job, D1, settings, spark)
    assert one_sentence(str(missing.value))
    assert f"snowflake/orders ({orders}) does not exist" in str(missing.value)
    assert not (root / "bronze/snowflake").exists()  # checked before anything is written

    shutil.move(held_back, orders)  # the extract arrives
    record = run_job(job, D1, settings, spark)
    day = manifest["days"][str(D1)]
    for table in record.tables:
        expected = day[table["name"]]
        assert table["rows_in"] == expected["rows_written"]
        assert table["rows_out"] == expected["expected"]["rows_bronze"]
        assert table["rows_quarantined"] == expected["expected"]["rows_quarantined"]
    trail = audit_trail(root, job="snowflake_to_bronze")
    assert [r["status"] for r in trail] == ["failed", "succeeded"]


def test_a_stream_file_landing_late_in_an_earlier_day_is_picked_up(spark, lake, tmp_path):
    root, manifest, _, settings = lake
    job = JOB_MAP["kafka_events_to_bronze"]
    day1 = root / "landing/kafka/order_events" / f"dt={D1}"
    late = sorted(day1.iterdir())[-1]
    held_back = tmp_path / late.name
    shutil.move(late, held_back)
    first = run_job(job, D1, settings, spark)
    second = run_job(job, D2, settings, spark)
    files = {d: manifest["days"][str(d)]["kafka/order_events"]["files"] for d in (D1, D2)}
    assert (first.details["files_consumed"], second.details["files_consumed"]) == (
        files[D1] - 1,
        files[D2],
    )
    shutil.move(held_back, late)  # lands late, in D1's folder
    lines = len([x for x in late.read_text().splitlines() if x.strip()])
    third = run_job(job, D2, settings, spark)
    assert third.details["files_consumed"] == 1
    assert third.rows_in == lines == third.rows_out + third.rows_quarantined
    snap = snapshot(root, warehouse=False)
    landed = sum(manifest["days"][str(d)]["kafka/order_events"]["rows_written"] for d in (D1, D2))
    assert (
        snap.rows("bronze/kafka/order_events") + snap.rows("quarantine/kafka/order_events")
        == landed
    )
