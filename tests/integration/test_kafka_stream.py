"""The Kafka order-events stream against the generator's manifest: incremental runs, replays,
late events, a no-op run, a reset of the checkpoint and a crash in the middle of a run."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medallion.config import parse_settings
from medallion.generate import generate_landing
from medallion.jobs.kafka_events_to_bronze import KAFKA_JOB, recorded_txn_version
from medallion.runner import run_job

pytestmark = pytest.mark.integration

START = dt.date(2025, 1, 13)
DAYS = [START + dt.timedelta(days=i) for i in range(3)]
SCALE = 0.02


def settings_for(root: Path, files_per_trigger: int = 4):
    text = f"""
env: local
spark: {{master: "local[2]", shuffle_partitions: 1}}
lake: {{root: "{root}"}}
streaming: {{max_files_per_trigger: {files_per_trigger}, watermark_delay: "24 hours"}}
"""
    return parse_settings(text, "test")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("kafka-lake")
    manifest = generate_landing(
        root / "landing", scale=SCALE, days=3, start_date=START, seed=7, force=True
    )
    return root, manifest


def quarantine_reasons(spark, root: Path, day: dt.date) -> dict[str, int]:
    frame = (
        spark.read.format("delta")
        .load(str(root / "quarantine/kafka/order_events"))
        .where(f"_run_date = '{day}'")
    )
    return {
        r.reason: r.n
        for r in frame.selectExpr("explode(_reasons) as reason")
        .groupBy("reason")
        .count()
        .withColumnRenamed("count", "n")
        .collect()
    }


def bronze_events(spark, root: Path):
    return spark.read.format("delta").load(str(root / "bronze/kafka/order_events"))


def test_three_daily_runs_match_the_manifest_and_a_fourth_changes_nothing(spark, generated):
    root, manifest = generated
    settings = settings_for(root)
    for day in DAYS:
        expected = manifest["days"][day.isoformat()]["kafka/order_events"]
        record = run_job(KAFKA_JOB, day, settings, spark)
        # Only the day's new files are read, every line exactly once.
        assert record.details["files_consumed"] == expected["files"]
        assert record.rows_in == expected["rows_written"]
        assert record.rows_out == expected["expected"]["rows_bronze"]
        assert record.rows_quarantined == expected["expected"]["rows_quarantined"]
        reasons = {rule: n for rule, n in expected["expected"]["quarantine"].items() if n}
        assert quarantine_reasons(spark, root, day) == reasons
        assert record.details["last_committed_batch_id"] == max(record.details["batches"])
        assert record.details["watermark"] is not None
    bronze = bronze_events(spark, root)
    truth = manifest["truth"]["kafka_valid_distinct_events"]["total"]
    assert bronze.count() == truth
    assert bronze.select("event_id").distinct().count() == truth

    fourth = run_job(KAFKA_JOB, DAYS[-1], settings, spark)
    assert (fourth.rows_in, fourth.details["files_consumed"], fourth.details["batches"]) == (
        0,
        0,
        [],
    )
    assert bronze_events(spark, root).count() == truth


def test_replayed_file_adds_nothing_and_late_file_for_old_day_is_picked_up(spark, generated):
    root, _ = generated
    settings = settings_for(root)
    before = bronze_events(spark, root).count()
    landing = root / "landing/kafka/order_events"
    replay_dir = landing / f"dt={DAYS[-1]}"
    first_file = sorted((landing / f"dt={DAYS[0]}").iterdir())[0]
    lines = [line for line in first_file.read_text().splitlines() if line.strip()]
    shutil.copy(first_file, replay_dir / "batch-99999-replay.jsonl")
    record = run_job(KAFKA_JOB, DAYS[-1], settings, spark)
    assert record.rows_in == len(lines)
    assert record.rows_out == 0
    assert bronze_events(spark, root).count() == before
    reasons = {r for r in record.details}  # details present
    assert "duplicate_events" in reasons
    assert record.details["duplicate_events"] + record.details["late_events"] <= len(lines)


def test_after_a_checkpoint_reset_the_events_are_written_again_under_a_new_app_id(spark, generated):
    """Batch ids restart at 0 after --reset-checkpoint; Delta must not skip them as seen."""
    root, manifest = generated
    settings = settings_for(root)
    before = run_job(KAFKA_JOB, DAYS[-1], settings, spark)  # names the app id before the reset
    record = run_job(KAFKA_JOB, DAYS[-1], settings, spark, {"reset_checkpoint": True})
    app_id = record.details["stream_app_id"]
    assert app_id != before.details["stream_app_id"]
    assert record.details["batches"][0] == 0
    assert record.details["replayed_batches"] == []
    # Every landed file is streamed again and every event lands in bronze or quarantine. (How
    # many are late depends on how the files fall into micro-batches, so a reset of three days
    # at once need not reproduce the daily runs' split.)
    assert record.details["files_consumed"] == sum(
        manifest["days"][day.isoformat()]["kafka/order_events"]["files"] for day in DAYS
    ) + len(list((root / f"landing/kafka/order_events/dt={DAYS[-1]}").glob("*replay*")))
    bronze = bronze_events(spark, root)
    quarantine = spark.read.format("delta").load(str(root / "quarantine/kafka/order_events"))
    assert record.rows_out > 0
    assert (bronze.count(), quarantine.count()) == (record.rows_out, record.rows_quarantined)
    assert bronze.select("event_id").distinct().count() == record.rows_out
    last = record.details["last_committed_batch_id"]
    for layer in ("bronze", "quarantine"):
        path = str(root / layer / "kafka/order_events")
        assert recorded_txn_version(spark, path, app_id) == last
        assert recorded_txn_version(spark, path, before.details["stream_app_id"]) is None
    assert set(record.tables[0]["versions"]) == {
        "bronze/kafka/order_events",
        "quarantine/kafka/order_events",
    }


@pytest.mark.slow
def test_crash_in_the_middle_of_a_run_then_rerun_gives_every_event_once(spark, tmp_path):
    root = tmp_path / "lake"
    manifest = generate_landing(
        root / "landing", scale=SCALE, days=1, start_date=START, seed=11, force=True
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f'env: local\nspark: {{master: "local[1]", shuffle_partitions: 1}}\nlake: {{root: "{root}"}}\n'
        "streaming: {max_files_per_trigger: 1}\n"
    )
    script = (
        "import datetime as dt, sys\n"
        "from medallion.config import load_settings\n"
        "from medallion.jobs.kafka_events_to_bronze import KAFKA_JOB\n"
        "from medallion.runner import run_job\n"
        "from medallion.spark import build_spark\n"
        f"s = load_settings('local', {str(config)!r})\n"
        f"run_job(KAFKA_JOB, dt.date({START.year}, {START.month}, {START.day}), s, build_spark(s.spark))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    commits = root / "_checkpoints/kafka_order_events/commits"
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if commits.exists() and len([p for p in commits.iterdir() if p.name.isdigit()]) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the stream finished before it could be killed; use more files"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = bronze_events(spark, root).count()
    expected = manifest["days"][START.isoformat()]["kafka/order_events"]["expected"]
    assert 0 < partial < expected["rows_bronze"]

    record = run_job(KAFKA_JOB, START, settings_for(root, files_per_trigger=1), spark)
    bronze = bronze_events(spark, root)
    assert bronze.count() == expected["rows_bronze"]
    assert bronze.select("event_id").distinct().count() == expected["rows_bronze"]
    assert quarantine_reasons(spark, root, START) == {
        rule: n for rule, n in expected["quarantine"].items() if n
    }
    assert (
        record.details["files_consumed"]
        < manifest["days"][START.isoformat()]["kafka/order_events"]["files"]
    )
    audit = sorted(
        (json.loads(p.read_text()) for p in (root / "_audit").rglob("*.json")),
        key=lambda r: r["started_at"],
    )
    assert [(r["status"], r["error"]) for r in audit] == [
        ("failed", "interrupted: the run did not finish (the process was killed or crashed)"),
        ("succeeded", None),
    ]
