"""The runner leaves one audit record per job run, for successes and failures alike."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading

import pytest

from medallion.audit import AuditRecord, TableCount, read_records, write_record
from medallion.errors import JobError
from medallion.jobs.base import Job, JobResult, check_conservation
from medallion.lock import LockHeld, run_lock
from medallion.redact import register_secrets
from medallion.runner import run_chain, run_job

RUN_DATE = dt.date(2025, 1, 13)
PINNED = {
    "run_id", "job", "env", "run_date", "started_at", "finished_at", "duration_s", "status",
    "rows_in", "rows_out", "rows_quarantined", "error", "tables", "version",
}  # fmt: skip


def counting_job(context):
    rows = context.spark.range(7).count()
    return JobResult(
        tables=[TableCount("dummy/t", rows_in=rows, rows_out=rows - 2, rows_quarantined=2)]
    )


def failing_job(context):
    raise ValueError("the source file is corrupt")


def test_succeeding_job_writes_record(spark, lake_settings):
    record = run_job(Job("dummy_ok", "ok", counting_job), RUN_DATE, lake_settings, spark)
    path = f"{lake_settings.lake.root}/_audit/run_date=2025-01-13/{record.run_id}.json"
    with open(path) as handle:
        stored = json.load(handle)
    assert set(stored) >= PINNED
    assert stored["status"] == "succeeded"
    assert stored["job"] == "dummy_ok"
    assert stored["env"] == "local"
    assert (stored["rows_in"], stored["rows_out"], stored["rows_quarantined"]) == (7, 5, 2)
    assert stored["tables"] == [
        {"name": "dummy/t", "rows_in": 7, "rows_out": 5, "rows_quarantined": 2, "versions": {}}
    ]
    assert stored["error"] is None
    assert stored["finished_at"].endswith("Z") and stored["duration_s"] >= 0


def test_failing_job_writes_failed_record_and_raises(spark, lake_settings):
    with pytest.raises(JobError, match="ValueError: the source file is corrupt"):
        run_job(Job("dummy_fail", "fails", failing_job), RUN_DATE, lake_settings, spark)
    records = read_records(lake_settings.lake.root, RUN_DATE)
    assert [(r["job"], r["status"]) for r in records] == [("dummy_fail", "failed")]
    assert records[0]["error"] == "ValueError: the source file is corrupt"
    assert records[0]["finished_at"] is not None


def test_chain_stops_at_first_failure(spark, lake_settings):
    jobs = [Job("a", "", counting_job), Job("b", "", failing_job), Job("c", "", counting_job)]
    with pytest.raises(JobError):
        run_chain(jobs, [RUN_DATE, RUN_DATE + dt.timedelta(days=1)], lake_settings, lambda: spark)
    records = read_records(lake_settings.lake.root)
    assert [(r["job"], r["run_date"], r["status"]) for r in records] == [
        ("a", "2025-01-13", "succeeded"),
        ("b", "2025-01-13", "failed"),
    ]


def test_ingests_of_a_date_run_side_by_side_and_all_finish_before_a_failure_stops_the_chain(
    spark, lake_settings
):
    # Two ingests meet at a barrier: it only opens if both run at the same time.
    barrier = threading.Barrier(2, timeout=60)
    seen: list[str] = []

    def meeting(name):
        def run(context):
            barrier.wait()
            seen.append(name)
            return counting_job(context)

        return run

    def late_failure(context):
        barrier.wait()
        seen.append("c")
        raise ValueError("the extract is truncated")

    jobs = [
        Job("a", "", meeting("a"), ingest=True),
        Job("c", "", late_failure, ingest=True),
        Job("silver", "", counting_job),
    ]
    with pytest.raises(JobError, match="the extract is truncated"):
        run_chain(jobs, [RUN_DATE], lake_settings, lambda: spark)
    records = read_records(lake_settings.lake.root)
    assert sorted((r["job"], r["status"]) for r in records) == [
        ("a", "succeeded"),
        ("c", "failed"),
    ]  # both ingests finished and were recorded; the job after them never ran
    assert sorted(seen) == ["a", "c"]


def test_ingests_run_one_by_one_when_concurrency_is_one(spark, lake_settings):
    from medallion.runner import _steps

    ingest = [Job(n, "", counting_job, ingest=True) for n in ("fx", "crm", "kafka")]
    later = [Job("silver", "", counting_job), Job("gold", "", counting_job)]
    assert [[j.name for j in step] for step in _steps([*ingest, *later], 3)] == [
        ["fx", "crm", "kafka"],
        ["silver"],
        ["gold"],
    ]
    assert [len(step) for step in _steps([*ingest, *later], 1)] == [1, 1, 1, 1, 1]
    settings = lake_settings.model_copy(
        update={"spark": lake_settings.spark.model_copy(update={"concurrent_ingests": 1})}
    )
    records = run_chain([*ingest, *later], [RUN_DATE], settings, lambda: spark)
    assert [r.job for r in records] == ["fx", "crm", "kafka", "silver", "gold"]
    assert all(r.status == "succeeded" for r in records)


def test_conservation_violation_fails():
    check_conservation(TableCount("t", 10, 8, 2))
    with pytest.raises(JobError, match=r"rows_in=10 but rows_out=8 \+ rows_quarantined=1 = 9"):
        check_conservation(TableCount("t", 10, 8, 1))


def test_secret_never_reaches_log_or_audit(spark, lake_settings, caplog):
    secret = "s3cr3t-Pa55word"
    register_secrets([secret])

    def leaky(context):
        logging.getLogger("medallion.job").warning("connecting with %s", secret)
        raise RuntimeError(f"login failed for password {secret}")

    from medallion.cli import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging(False)
    root.addHandler(caplog.handler)
    caplog.handler.addFilter(root.handlers[0].filters[0])
    try:
        with pytest.raises(JobError) as err:
            run_job(Job("leaky", "", leaky), RUN_DATE, lake_settings, spark)
    finally:
        caplog.handler.filters.clear()
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    assert secret not in str(err.value)
    assert secret not in caplog.text and "connecting with ***" in caplog.text
    audit_dir = f"{lake_settings.lake.root}/_audit"
    for folder, _, files in os.walk(audit_dir):
        for name in files:
            with open(os.path.join(folder, name)) as handle:
                text = handle.read()
            assert secret not in text
            assert "***" in text


def test_lock_blocks_same_job_and_date_but_not_other_dates(tmp_path):
    root = str(tmp_path)
    with run_lock(root, "job", RUN_DATE, "run-1", ttl_seconds=60):
        with pytest.raises(LockHeld, match="already running"):
            with run_lock(root, "job", RUN_DATE, "run-2", ttl_seconds=60):
                pass
        with run_lock(root, "job", RUN_DATE + dt.timedelta(days=1), "run-3", ttl_seconds=60):
            pass
    with run_lock(root, "job", RUN_DATE, "run-4", ttl_seconds=60):
        pass
    assert os.listdir(tmp_path / "_locks") == []


def test_stale_lock_of_dead_process_is_broken(tmp_path):
    lock_dir = tmp_path / "_locks"
    lock_dir.mkdir()
    dead = {"run_id": "old", "host": __import__("socket").gethostname(), "pid": 2**22 + 12345,
            "expires_at": "2999-01-01T00:00:00+00:00"}  # fmt: skip
    (lock_dir / "job__2025-01-13.lock").write_text(json.dumps(dead))
    entered = threading.Event()
    with run_lock(str(tmp_path), "job", RUN_DATE, "new", ttl_seconds=60):
        entered.set()
    assert entered.is_set()
    assert any(name.startswith("job__2025-01-13.lock.stale-") for name in os.listdir(lock_dir))


def test_records_round_trip_through_s3_one_object_each(s3_server):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="lake")
    day1, day2 = (
        AuditRecord.start("job", "dev", d, run_id=f"r{d.day}")
        for d in (RUN_DATE, RUN_DATE + dt.timedelta(days=1))
    )
    paths = [write_record("s3://lake/prod/", r.finish("succeeded", [])) for r in (day1, day2)]

    assert paths == [
        "s3://lake/prod/_audit/run_date=2025-01-13/r13.json",
        "s3://lake/prod/_audit/run_date=2025-01-14/r14.json",
    ]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"]]
    assert keys == [
        "prod/_audit/run_date=2025-01-13/r13.json",
        "prod/_audit/run_date=2025-01-14/r14.json",
    ]
    assert [r["run_id"] for r in read_records("s3://lake/prod")] == ["r13", "r14"]
    assert [r["run_id"] for r in read_records("s3://lake/prod", RUN_DATE)] == ["r13"]
