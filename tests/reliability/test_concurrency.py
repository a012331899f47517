"""Concurrency: two runs of the same job and date at once, with real processes: one takes the
lock (a file in the lake with owner and expiry), the other exits 1 with one clear sentence; a
stale lock of a dead run is broken safely; a different date runs at the same time without
interfering; jobs that keep one state across dates are serialised whatever the date."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lakestate import audit_trail, cli_env, one_sentence, snapshot, start_medallion, write_config

from medallion.config import load_settings
from medallion.generate import generate_landing
from medallion.jobs import JOB_MAP
from medallion.lock import LockHeld, lock_path, run_lock
from medallion.runner import run_job

pytestmark = pytest.mark.reliability

D1, D2 = dt.date(2025, 1, 13), dt.date(2025, 1, 14)
JOB = "redshift_to_bronze"
PAUSE_S = 30


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    """A stale lock of a crashed run, then A and B for (JOB, D1) and C for (JOB, D2) at once."""
    base = tmp_path_factory.mktemp("race")
    root = base / "lake"
    manifest = generate_landing(root / "landing", scale=0.01, days=2, start_date=D1, seed=3)
    config = write_config(base / "config.yaml", root)
    stale = Path(lock_path(str(root), JOB, D1))
    stale.parent.mkdir(parents=True)
    stale_info = {"job": JOB, "run_date": str(D1), "run_id": "crashed-run",
                  "host": socket.gethostname(), "pid": dead_pid(),
                  "acquired_at": "2025-01-13T00:00:00+00:00",
                  "expires_at": "2999-01-01T00:00:00+00:00"}  # fmt: skip
    stale.write_text(json.dumps(stale_info))
    # Each run pauses inside its lock, after its bronze write, so the runs surely overlap.
    env = cli_env(MEDALLION_PAUSE_AT=f"bronze.after_bronze_write:{PAUSE_S}")
    procs = {}
    for name, day in (("A", D1), ("B", D1), ("C", D2)):
        args = ("run", "--job", JOB, "--run-date", str(day), "--config", str(config))
        procs[name] = start_medallion(*args, env=env, log=base / f"{name}.log")
    held, deadline = {}, time.monotonic() + 600
    while time.monotonic() < deadline and not held:
        try:
            info = json.loads(stale.read_text())
        except (OSError, json.JSONDecodeError):
            info = {}
        if info.get("run_id") not in (None, "crashed-run"):
            held = info
        time.sleep(0.1)
    codes = {name: proc.wait(timeout=900) for name, proc in procs.items()}
    logs = {name: (base / f"{name}.log").read_text() for name in procs}
    return root, manifest, stale_info, held, codes, logs, {n: p.pid for n, p in procs.items()}


def outcome_lines(logs: dict[str, str]) -> dict[str, list[str]]:
    """Each run's error and outcome lines: what a failed assertion shows (whole logs are
    truncated by pytest before their end, where the reason is)."""
    marks = ("ERROR", "medallion: error:", "succeeded in", "Traceback", "Exception")
    return {
        name: [line for line in log.splitlines() if any(mark in line for mark in marks)]
        for name, log in logs.items()
    }


def test_one_run_takes_the_lock_and_the_other_exits_with_one_clear_sentence(race):
    _, _, _, _, codes, logs, _ = race
    assert sorted([codes["A"], codes["B"]]) == [0, 1], outcome_lines(logs)
    loser = "A" if codes["A"] == 1 else "B"
    errors = [line for line in logs[loser].splitlines() if line.startswith("medallion: error:")]
    assert len(errors) == 1, logs[loser]
    message = errors[0].removeprefix("medallion: error: ")
    assert message.startswith(f"job {JOB} for {D1} is already running (run ")
    assert one_sentence(message) and "Traceback" not in logs[loser]


def test_the_lock_file_names_its_owner_and_expiry(race):
    _, _, _, held, codes, logs, pids = race
    winner = "A" if codes["A"] == 0 else "B"
    assert held["pid"] == pids[winner], (pids, codes, outcome_lines(logs))
    assert held["host"] == socket.gethostname()
    assert (held["job"], held["run_date"]) == (JOB, str(D1))
    acquired = dt.datetime.fromisoformat(held["acquired_at"])
    expires = dt.datetime.fromisoformat(held["expires_at"])
    assert expires - acquired == dt.timedelta(hours=6)  # lock.ttl_seconds default


def test_the_stale_lock_of_the_dead_run_was_broken_and_kept_aside(race):
    root, _, stale_info, _, _, _, _ = race
    locks = root / "_locks"
    assert [p.name for p in locks.glob("*.lock")] == []  # every run released its lock
    (aside,) = locks.glob(f"{JOB}__{D1}.lock.stale-*")
    assert json.loads(aside.read_text()) == stale_info


def test_another_date_ran_at_the_same_time_without_interfering(race):
    root, manifest, _, _, codes, logs, _ = race
    assert codes["C"] == 0, outcome_lines(logs)
    trail = audit_trail(root, job=JOB)
    ok = {r["run_date"]: r for r in trail if r["status"] == "succeeded"}
    assert sorted(ok) == [str(D1), str(D2)], [(r["run_date"], r["error"]) for r in trail]
    a_or_b, c = ok[str(D1)], ok[str(D2)]
    assert c["started_at"] < a_or_b["finished_at"] and a_or_b["started_at"] < c["finished_at"]
    snap = snapshot(root)
    for day in (D1, D2):
        expected = manifest["days"][str(day)]["redshift/customer_behavior"]["expected"]
        for layer, rows in (("bronze", "rows_bronze"), ("quarantine", "rows_quarantined")):
            parts = snap.tables[f"{layer}/redshift/customer_behavior"]
            assert parts[f"_run_date={day}"][0] == expected[rows], (layer, day)
    failed = [r for r in trail if r["status"] == "failed"]
    assert len(failed) == 1 and "already running" in failed[0]["error"]
    assert failed[0]["rows_in"] == 0  # the refused run did nothing


@pytest.mark.parametrize(
    "job",
    ["kafka_events_to_bronze", "bronze_to_silver", "silver_to_gold", "publish_gold_to_snowflake"],
)
def test_jobs_with_one_state_across_dates_never_overlap_even_for_different_dates(
    spark, tmp_path, job
):
    config = write_config(tmp_path / "config.yaml", tmp_path / "lake")
    settings = load_settings("local", str(config))
    root = settings.lake.root
    with run_lock(root, job, D1, "running-for-d1", ttl_seconds=60):
        with pytest.raises(LockHeld) as refused:
            run_job(JOB_MAP[job], D2, settings, spark)
    message = str(refused.value)
    assert one_sentence(message)
    assert "keeps one state across dates" in message and f"for {D1}" in message


def test_batch_ingestion_locks_are_per_date(tmp_path):
    with run_lock(str(tmp_path), JOB, D1, "d1", ttl_seconds=60):
        with run_lock(str(tmp_path), JOB, D2, "d2", ttl_seconds=60):
            with pytest.raises(LockHeld, match="already running"):
                with run_lock(str(tmp_path), JOB, D1, "d1-again", ttl_seconds=60):
                    pass


def test_expired_and_foreign_locks(tmp_path):
    path = Path(lock_path(str(tmp_path), JOB, D1))
    path.parent.mkdir(parents=True)
    live_elsewhere = {"run_id": "other-host", "host": "elsewhere", "pid": 1,
                      "expires_at": "2999-01-01T00:00:00+00:00"}  # fmt: skip
    path.write_text(json.dumps(live_elsewhere))
    with pytest.raises(LockHeld, match="pid 1 on elsewhere"):
        with run_lock(str(tmp_path), JOB, D1, "mine", ttl_seconds=60):
            pass
    path.write_text(json.dumps({**live_elsewhere, "expires_at": "2025-01-01T00:00:00+00:00"}))
    with run_lock(str(tmp_path), JOB, D1, "mine", ttl_seconds=60):
        assert json.loads(path.read_text())["run_id"] == "mine"


def test_a_half_written_lock_is_respected_while_young_and_broken_when_old(tmp_path):
    path = Path(lock_path(str(tmp_path), JOB, D1))
    path.parent.mkdir(parents=True)
    path.write_text("")  # a creator that has not written its JSON yet (or died doing so)
    with pytest.raises(LockHeld):
        with run_lock(str(tmp_path), JOB, D1, "mine", ttl_seconds=60):
            pass
    old = time.time() - 60
    os.utime(path, (old, old))
    with run_lock(str(tmp_path), JOB, D1, "mine", ttl_seconds=60):
        assert json.loads(path.read_text())["run_id"] == "mine"
