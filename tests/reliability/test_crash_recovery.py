"""Crash recovery: jobs killed with SIGKILL at several points, then re-run, converge to exactly
the state of an uninterrupted run; a reader never sees a half-written partition or table in
between; the audit trail shows the failed attempt and the successful retry.

The reference lake's copy taken after D2 is put back at the reference lake's own path (the
stream's checkpoint and ``_source_file`` hold absolute paths), then D3 is run job by job:

| job | how it dies |
| --- | --- |
| fx_json_to_bronze, redshift_to_bronze | not at all (in this process) |
| crm_to_bronze | killed from outside (the whole process group) as soon as a data file that no Delta commit names appears in a CRM bronze or quarantine table (files written, commit not made) |
| snowflake_to_bronze | ``bronze.after_bronze_write@3``: orders' bronze partition written, its quarantine twin not |
| kafka_events_to_bronze | ``stream.before_commit@2``: the second micro-batch written, not checkpointed |
| bronze_to_silver | ``silver.after_orders``: five silver tables committed, four not |
| silver_to_gold | ``gold.after_fact_orders``: three gold tables committed, three not (state file not saved) |
| publish_gold_to_snowflake | ``publish.before_merge@3``: two tables merged, the third loaded into staging, not merged |

Each killed job is re-run in this process; the final lake must equal the reference lake after
its uninterrupted three-day backfill, table by table and partition by partition.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import DAYS
from lakestate import (
    Snapshot,
    audit_trail,
    kill_group,
    reader_view_problems,
    snapshot,
    start_medallion,
    wait_for,
)

from medallion.audit import AuditRecord
from medallion.config import load_settings
from medallion.jobs import JOB_MAP, JOBS
from medallion.lock import lock_path
from medallion.runner import INTERRUPTED, run_job

pytestmark = pytest.mark.reliability

D3 = DAYS[-1]
KILLS = {
    "crm_to_bronze": None,  # killed from outside
    "snowflake_to_bronze": "bronze.after_bronze_write@3",
    "kafka_events_to_bronze": "stream.before_commit@2",
    "bronze_to_silver": "silver.after_orders",
    "silver_to_gold": "gold.after_fact_orders",
    "publish_gold_to_snowflake": "publish.before_merge@3",
}


# Per injected kill: a table the job had finished and one it had not reached yet.
MIDWAY = {
    "snowflake_to_bronze": ("bronze/snowflake/orders", "quarantine/snowflake/orders"),
    "bronze_to_silver": ("silver/orders", "silver/order_events"),
    "silver_to_gold": ("gold/fact_orders", "gold/customer_360"),
    "publish_gold_to_snowflake": ("warehouse/dim_product", "warehouse/fact_orders"),
}
STREAM_BATCHES = (6, 7, 8)  # D3's micro-batches in the reference run
STREAM_TABLES = ("bronze/kafka/order_events", "quarantine/kafka/order_events")


@dataclass
class Crash:
    job: str
    point: str
    returncode: int
    output: str
    seen: Snapshot  # the lake as a reader finds it after the kill
    lock_left: dict
    retry: AuditRecord
    spark_counts: dict[str, int] = field(default_factory=dict)
    batch_rows: dict[int, int] = field(default_factory=dict)  # D3's bronze events per batch id


def batch_rows(lake: Path, day) -> dict[int, int]:
    """Bronze order events of ``day`` per micro-batch id, read through the Delta log."""
    from deltalake import DeltaTable

    path = lake / "bronze/kafka/order_events"
    if not (path / "_delta_log").is_dir():
        return {}
    rows = DeltaTable(str(path)).to_pyarrow_table(
        columns=["_batch_id"], filters=[("_run_date", "=", day)]
    )
    batches = rows.column("_batch_id").to_pylist()
    return {batch: batches.count(batch) for batch in sorted(set(batches))}


@dataclass
class Replay:
    root: Path
    crashes: dict[str, Crash]
    final: Snapshot


def _uncommitted_data_file_appeared(root: Path) -> bool:
    """True once a CRM bronze or quarantine table holds a data file its Delta log does not name
    yet: a write is under way, its files written, its commit not made."""
    for layer in ("bronze", "quarantine"):
        for table in (root / layer / "crm").glob("*"):
            log = table / "_delta_log"
            data = [p for p in table.rglob("*.parquet") if log not in p.parents]
            if not data:
                continue
            committed = "".join(p.read_text() for p in log.glob("*.json"))
            if any(p.name not in committed for p in data):
                return True
    return False


@pytest.fixture(scope="module")
def replay(spark, reference, secret_env, tmp_path_factory) -> Replay:
    root = reference.root
    done = root.with_name("lake-after-idempotency")
    shutil.move(root, done)
    reference.final_root = done
    shutil.move(reference.day2_copy, root)
    logs = tmp_path_factory.mktemp("crash-logs")
    settings = load_settings("local", str(reference.config))
    crashes: dict[str, Crash] = {}
    for job in JOBS:
        if job.name not in KILLS:
            assert run_job(job, D3, settings, spark).status == "succeeded"
            continue
        point = KILLS[job.name]
        env = dict(secret_env)
        if point:
            env["MEDALLION_CRASH_AT"] = point
        log = logs / f"{job.name}.log"
        args = ("run", "--job", job.name, "--run-date", D3.isoformat())
        proc = start_medallion(*args, "--config", str(reference.config), env=env, log=log)
        if point is None:
            caught = wait_for(lambda: _uncommitted_data_file_appeared(root), 600, 0.005, proc)
            kill_group(proc)
            assert caught, (
                f"{job.name} finished before an uncommitted data file was seen:\n{log.read_text()}"
            )
            point = "outside SIGKILL while a Delta write's files were written, uncommitted"
        returncode = proc.wait(timeout=900)
        seen = snapshot(root)
        lock = Path(lock_path(str(root), job.name, D3))
        lock_left = json.loads(lock.read_text()) if lock.exists() else {}
        spark_counts = {}
        if job.name == "crm_to_bronze":  # what Spark (not only DuckDB) reads of the killed write
            for table in ("accounts", "contacts", "opportunities"):
                frame = spark.read.format("delta").load(str(root / "bronze/crm" / table))
                spark_counts[table] = frame.where(f"_run_date = '{D3}'").count()
        batches = batch_rows(root, D3) if job.name == "kafka_events_to_bronze" else {}
        retry = run_job(job, D3, settings, spark)
        crashes[job.name] = Crash(
            job.name,
            point,
            returncode,
            log.read_text(),
            seen,
            lock_left,
            retry,
            spark_counts,
            batches,
        )
    return Replay(root, crashes, snapshot(root))


@pytest.mark.parametrize("job", list(KILLS))
def test_the_job_was_really_killed_and_left_its_lock_behind(replay, job):
    crash = replay.crashes[job]
    assert crash.returncode == -9, crash.output[-3000:]
    if KILLS[job]:
        assert f"fault injection: SIGKILL at {KILLS[job].split('@')[0]}" in crash.output
    assert crash.lock_left and crash.lock_left["job"] == job
    assert crash.lock_left["run_date"] == D3.isoformat()


@pytest.mark.parametrize("job", list(KILLS))
def test_readers_never_see_a_half_written_partition_or_table(replay, reference, job):
    """Every partition (or whole table) a reader finds is as it was before D3 or as D3 leaves it."""
    seen = replay.crashes[job].seen
    problems = reader_view_problems(seen, reference.at_day2, reference.after_backfill)
    if job == "kafka_events_to_bronze":
        # The stream commits once per micro-batch into the run date's partition, so a reader
        # may find that partition between batches: its unit of wholeness is the batch, which
        # test_the_stream_replayed_the_uncommitted_batch_and_nothing_twice checks batch by batch.
        problems = [p for p in problems if not p.startswith(STREAM_TABLES)]
    assert problems == []


@pytest.mark.parametrize("job", [job for job in MIDWAY])
def test_each_injected_kill_hit_the_job_half_way(replay, reference, job):
    """The kill came after some of the job's output was committed and before the rest was."""
    seen, after = replay.crashes[job].seen, reference.after_backfill
    done, pending = MIDWAY[job]
    assert seen.tables[done] == after.tables[done], done
    assert seen.tables.get(pending) != after.tables[pending], pending


def test_spark_reads_a_killed_partition_write_as_absent_never_partial(replay, reference):
    counts = replay.crashes["crm_to_bronze"].spark_counts
    expected = reference.manifest["days"][D3.isoformat()]
    for table, rows in counts.items():
        assert rows in (0, expected[f"crm/{table}"]["expected"]["rows_bronze"]), table


@pytest.mark.parametrize("job", list(KILLS))
def test_audit_trail_shows_the_failed_attempt_and_the_successful_retry(replay, job):
    trail = audit_trail(replay.root, job=job, run_date=D3.isoformat())
    assert [(r["status"], r["error"]) for r in trail] == [
        ("failed", INTERRUPTED),
        ("succeeded", None),
    ]
    retry = replay.crashes[job].retry
    assert trail[-1]["run_id"] == retry.run_id
    for table in retry.tables:
        if job.endswith("_to_bronze"):
            assert table["rows_in"] == table["rows_out"] + table["rows_quarantined"]


def test_retries_break_the_stale_locks_and_release_their_own(replay):
    locks = replay.root / "_locks"
    assert [p.name for p in locks.iterdir() if p.name.endswith(".lock")] == []
    stale = sorted(p.name.split(".lock.stale-")[0] for p in locks.glob("*.lock.stale-*"))
    expected = sorted(Path(lock_path("", job, D3)).name[: -len(".lock")] for job in KILLS)
    assert stale == expected


def test_the_stream_replayed_the_uncommitted_batch_and_nothing_twice(replay, reference):
    crash = replay.crashes["kafka_events_to_bronze"]
    after = reference.after_backfill.tables["bronze/kafka/order_events"]
    uninterrupted = batch_rows(reference.final_root, D3)
    assert sorted(uninterrupted) == list(STREAM_BATCHES)
    # Killed in batch 7 (D3's second, of 4 files) after its Delta commits, before Spark's
    # checkpoint commit: batch 6 is committed, batch 7 written in full, batch 8 not started.
    first, second, third = STREAM_BATCHES
    assert crash.batch_rows == {first: uninterrupted[first], second: uninterrupted[second]}
    # The retry replays batch 7: Delta's (txnAppId, txnVersion) check skips its writes.
    assert crash.retry.details["replayed_batches"] == [second]
    assert batch_rows(replay.root, D3) == uninterrupted
    day = reference.manifest["days"][D3.isoformat()]["kafka/order_events"]
    assert crash.retry.details["batches"] == [second, third]
    assert crash.retry.details["files_consumed"] == day["files"] - 4
    assert replay.final.tables["bronze/kafka/order_events"] == after


def test_after_every_retry_the_lake_equals_the_uninterrupted_run(replay, reference):
    assert replay.final.diff(reference.after_backfill) == []
    assert replay.final.warehouse_staging == []
    for job in JOB_MAP:
        trail = audit_trail(replay.root, job=job, run_date=D3.isoformat())
        assert trail[-1]["status"] == "succeeded", job
