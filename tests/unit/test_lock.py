"""The run lock on both stores: a local folder (exclusive create) and S3 (conditional writes,
against moto's S3 server). The race between processes is tested on the local file system only:
moto checks a precondition and writes in two steps, so a race against it would prove nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from medallion import cli
from medallion.audit import AuditRecord
from medallion.config import parse_settings
from medallion.errors import JobError
from medallion.jobs import JOB_MAP
from medallion.jobs.base import Job, JobResult
from medallion.lock import FileLock, LockHeld, S3Lock, lock_path, locked_dates, run_lock
from medallion.runner import run_job

JOB = "redshift_to_bronze"
D1, D2 = dt.date(2025, 1, 13), dt.date(2025, 1, 14)
BUCKET = "lake-bucket"
EXPIRED = "2025-01-01T00:00:00+00:00"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def owner(run_id: str, **overrides) -> dict:
    return {"job": JOB, "run_date": str(D1), "run_id": run_id, "host": "elsewhere", "pid": 1,
            "acquired_at": "2025-01-13T00:00:00+00:00",
            "expires_at": "2999-01-01T00:00:00+00:00", **overrides}  # fmt: skip


def run_cli(argv: list[str]) -> int:
    """``medallion`` in this process, leaving the root logger as it found it."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        return cli.main(argv)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


# --- S3 -------------------------------------------------------------------------------------------


@pytest.fixture
def s3(s3_server):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def s3_keys(client, prefix: str = "lake/_locks/") -> list[str]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def s3_json(client, key: str) -> dict:
    return json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_s3_lock_is_taken_refused_while_held_and_released(s3):
    root = f"s3://{BUCKET}/lake"
    key = f"lake/_locks/{JOB}__{D1}.lock"
    assert lock_path(root, JOB, D1) == f"s3://{BUCKET}/{key}"
    with run_lock(root, JOB, D1, "first-run", ttl_seconds=3600):
        held = s3_json(s3, key)
        assert (held["run_id"], held["job"], held["run_date"]) == ("first-run", JOB, str(D1))
        assert (held["host"], held["pid"]) == (socket.gethostname(), os.getpid())
        acquired = dt.datetime.fromisoformat(held["acquired_at"])
        assert dt.datetime.fromisoformat(held["expires_at"]) - acquired == dt.timedelta(hours=1)
        with pytest.raises(LockHeld) as refused:
            with run_lock(root, JOB, D1, "second-run", ttl_seconds=3600):
                pytest.fail("the second run must not get the lock")
        assert str(refused.value) == (
            f"job {JOB} for {D1} is already running (run first-run for {D1}, pid "
            f"{held['pid']} on {held['host']}, until {held['expires_at']}); wait for it or "
            f"remove s3://{BUCKET}/{key} if it is dead"
        )
        with run_lock(root, JOB, D2, "another-date", ttl_seconds=3600):
            assert locked_dates(root, JOB) == [D1, D2]
        assert s3_json(s3, key)["run_id"] == "first-run"  # the refused run left it alone
    assert s3_keys(s3) == []
    with run_lock(root, JOB, D1, "third-run", ttl_seconds=3600):
        assert s3_json(s3, key)["run_id"] == "third-run"


def test_s3a_and_s3_roots_share_one_lock(s3):
    with run_lock(f"s3a://{BUCKET}/lake/", "silver_to_gold", D1, "via-s3a", ttl_seconds=60):
        assert s3_keys(s3) == ["lake/_locks/silver_to_gold__all-dates.lock"]
        with pytest.raises(LockHeld, match="run via-s3a for 2025-01-13"):
            with run_lock(f"s3://{BUCKET}/lake", "silver_to_gold", D2, "via-s3", ttl_seconds=60):
                pass


def test_an_expired_s3_lock_is_broken_and_kept_aside(s3):
    key = f"lake/_locks/{JOB}__{D1}.lock"
    stale = owner("expired-run", expires_at=EXPIRED)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(stale).encode())
    with run_lock(f"s3://{BUCKET}/lake", JOB, D1, "mine", ttl_seconds=60):
        assert s3_json(s3, key)["run_id"] == "mine"
    (aside,) = s3_keys(s3)
    assert aside.startswith(f"{key}.stale-")
    assert s3_json(s3, aside) == stale


def test_a_late_s3_breaker_never_removes_the_fresh_lock(s3):
    """Two runs judged the same lock stale; the first broke it and took the lock. The second,
    acting on its old judgement, must not remove the first one's lock (If-Match on the ETag)."""
    key = f"lake/_locks/{JOB}__{D1}.lock"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(owner("dead", expires_at=EXPIRED)))
    late = S3Lock(BUCKET, key)
    judged = late.read()
    with run_lock(f"s3://{BUCKET}/lake", JOB, D1, "first", ttl_seconds=60):
        assert late.remove(judged, keep_aside=True) is False
        assert s3_json(s3, key)["run_id"] == "first"
        assert len(s3_keys(s3)) == 2  # the lock and the aside copy the first run kept
        with pytest.raises(LockHeld, match="run first for"):
            with run_lock(f"s3://{BUCKET}/lake", JOB, D1, "second", ttl_seconds=60):
                pass


def test_a_live_s3_lock_of_another_host_is_respected_until_it_expires(s3):
    key = f"lake/_locks/{JOB}__{D1}.lock"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(owner("emr-driver")))
    with pytest.raises(LockHeld, match="pid 1 on elsewhere"):
        with run_lock(f"s3://{BUCKET}/lake", JOB, D1, "mine", ttl_seconds=60):
            pass
    assert s3_json(s3, key)["run_id"] == "emr-driver"


def test_a_run_on_an_s3_lake_is_refused_while_the_lock_is_held(s3, monkeypatch, capsys):
    """Through the runner and the CLI: exit 1, one sentence naming the holder, a failed audit
    record on S3; the job body never ran."""
    ran = []

    def body(context) -> JobResult:
        ran.append(context.run_id)
        return JobResult()

    job = Job("bronze_to_silver", "a stand-in body", body, needs_spark=False)
    monkeypatch.setattr("medallion.jobs.JOB_MAP", {**JOB_MAP, job.name: job})
    settings = parse_settings(f"env: dev\nlake: {{root: 's3a://{BUCKET}/lake'}}\n", "test")
    with run_lock(f"s3://{BUCKET}/lake", job.name, D1, "holder-run", ttl_seconds=600):
        with pytest.raises(LockHeld, match="run holder-run for 2025-01-13"):
            run_job(job, D2, settings, spark=None)
        s3.put_object(
            Bucket=BUCKET,
            Key="config/dev.yaml",
            Body=f"env: dev\nlake: {{root: 's3://{BUCKET}/lake'}}\n".encode(),
        )
        args = ["run", "--job", job.name, "--run-date", str(D2)]
        code = run_cli([*args, "--env", "dev", "--config", f"s3://{BUCKET}/config/dev.yaml"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and ran == []
    assert err[-1].startswith(
        "medallion: error: job bronze_to_silver (it keeps one state across dates, so its runs "
        f"never overlap; asked for {D2}) is already running (run holder-run for {D1}, "
    )
    records = [
        AuditRecord(**json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()))
        for k in s3_keys(s3, f"lake/_audit/run_date={D2}/")
    ]
    assert [(r.status, "holder-run" in (r.error or "")) for r in records] == [("failed", True)] * 2
    with run_lock(f"s3://{BUCKET}/lake", job.name, D2, "after", ttl_seconds=60):
        pass  # the lock was released by its holder, and the refused runs took none


# --- local folder ---------------------------------------------------------------------------------


# A contender: waits for the start signal, tries to take the lock, prints what happened and,
# if it won, holds the lock until the test says every other contender has finished.
CONTENDER = """
import datetime as dt, os, sys, time
from medallion.lock import LockHeld, run_lock
root, job, date, run_id, signals = sys.argv[1:]
open(os.path.join(signals, "ready-" + run_id), "w").close()
while not os.path.exists(os.path.join(signals, "go")):
    time.sleep(0.001)
try:
    with run_lock(root, job, dt.date.fromisoformat(date), run_id, ttl_seconds=60):
        print("won", flush=True)
        while not os.path.exists(os.path.join(signals, "done")):
            time.sleep(0.01)
except LockHeld as exc:
    print(exc, flush=True)
"""


@pytest.mark.parametrize("stale", [False, True], ids=["free", "over-a-stale-lock"])
def test_processes_racing_for_a_local_lock_exactly_one_wins(tmp_path, stale):
    root, signals = tmp_path / "lake", tmp_path / "signals"
    signals.mkdir()
    path = Path(lock_path(str(root), JOB, D1))
    dead = owner("dead-run", host=socket.gethostname(), pid=dead_pid())
    if stale:
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(dead))
    run_ids = [f"run-{i}" for i in range(6)]
    procs = {
        run_id: subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(root), JOB, str(D1), run_id, str(signals)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for run_id in run_ids
    }
    deadline = time.monotonic() + 60
    while len(list(signals.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.01)
    (signals / "go").touch()
    outcomes = {}
    while len(outcomes) < len(procs) - 1 and time.monotonic() < deadline + 60:
        for run_id, proc in procs.items():
            if run_id not in outcomes and proc.poll() is not None:
                outcomes[run_id] = proc.stdout.read().strip()
        time.sleep(0.01)
    (signals / "done").touch()
    for run_id, proc in procs.items():
        if run_id not in outcomes:
            outcomes[run_id] = proc.communicate(timeout=60)[0].strip()
    (winner,) = [run_id for run_id, outcome in outcomes.items() if outcome == "won"]
    for run_id, outcome in outcomes.items():
        if run_id != winner:
            assert f"already running (run {winner} for {D1}" in outcome, outcomes
    assert not path.exists()  # the winner released it
    aside = sorted(path.parent.glob(f"{path.name}.stale-*"))
    assert [json.loads(p.read_text()) for p in aside] == ([dead] if stale else [])


def test_a_late_local_breaker_never_removes_the_fresh_lock(tmp_path):
    path = Path(lock_path(str(tmp_path), JOB, D1))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(owner("dead", expires_at=EXPIRED)))
    late = FileLock(str(path))
    judged = late.read()
    with run_lock(str(tmp_path), JOB, D1, "first", ttl_seconds=60):
        assert late.remove(judged, keep_aside=True) is False
        assert late.read().info["run_id"] == "first"


def test_a_lake_root_of_another_store_has_no_lock_and_says_so():
    from medallion.errors import ConfigError

    with pytest.raises(ConfigError, match=r"lake\.root 'gs://b/lake' has no run lock"):
        with run_lock("gs://b/lake", JOB, D1, "r", ttl_seconds=60):
            pass


def test_a_lake_in_a_bucket_that_does_not_exist_fails_the_run_in_one_sentence(s3_server):
    with pytest.raises(JobError) as err:
        with run_lock("s3://no-such-bucket/lake", JOB, D1, "r", ttl_seconds=60):
            pass
    assert str(err.value) == (
        f"cannot use the run lock s3://no-such-bucket/lake/_locks/{JOB}__{D1}.lock "
        "(put_object: NoSuchBucket)"
    )
