"""A lock file per (job, run date) in the lake, so a second scheduler firing cannot run the same
job for the same date at the same time.

The lock is a JSON file ``<lake>/_locks/<job>__<date>.lock`` created exclusively, holding its
owner (host, pid, run id) and an expiry. Different dates of a bronze batch job never contend.
The jobs in ``SERIAL_JOBS`` keep one state across all dates (the stream's checkpoint, silver's
and gold's current state, the warehouse): two of their runs for different dates would read the
same state and the last to write would undo the other, so their lock,
``<job>__all-dates.lock``, covers every date.

A lock is stale when it has expired, or when its owner ran on this host and that process is
gone. Breaking one is itself serialised by a short-lived ``<lock>.breaking`` file: only its
holder may re-read the lock and move it aside (to ``<lock>.stale-<token>``, kept for the
operator), and only if it is still the stale lock that was judged. Without that, two processes
that both saw the same stale lock could each move it aside, the second one moving away the
fresh lock of the first, and both would run.

The expiry (``lock.ttl_seconds``, default 6 hours) must exceed the longest run: a live owner
whose lock expired can be overtaken. Airflow's execution timeout (2 hours) keeps runs shorter.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from medallion.errors import JobError

SERIAL_JOBS = frozenset(
    {
        "kafka_events_to_bronze",
        "bronze_to_silver",
        "silver_to_gold",
        "publish_gold_to_snowflake",
    }
)
ALL_DATES = "all-dates"
BREAKER_TIMEOUT_S = 30.0  # a breaker file older than this was left by a process that died
HALF_WRITTEN_GRACE_S = 5.0  # an unreadable lock younger than this is still being written


class LockHeld(JobError):
    """Another live run holds the lock: this run did nothing (exit 1, recorded as failed)."""


def lock_path(lake_root: str, job: str, run_date: dt.date) -> str:
    """Where the lock of ``job`` for ``run_date`` lives (one file for all dates of SERIAL_JOBS)."""
    scope = ALL_DATES if job in SERIAL_JOBS else run_date.isoformat()
    return os.path.join(lake_root, "_locks", f"{job}__{scope}.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(info: dict, now: dt.datetime) -> bool:
    expires = dt.datetime.fromisoformat(info.get("expires_at", "1970-01-01T00:00:00+00:00"))
    if now >= expires:
        return True
    return info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1)))


@contextmanager
def run_lock(
    lake_root: str, job: str, run_date: dt.date, run_id: str, ttl_seconds: int
) -> Iterator[None]:
    """Hold the (job, date) lock for the duration of the block; raise ``LockHeld`` if taken."""
    if "://" in lake_root:
        # S3 has no exclusive create through fsspec; on a cluster Airflow's max_active_runs=1 and
        # one task per job and date serialise the runs instead.
        yield
        return
    path = lock_path(lake_root, job, run_date)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    info = {
        "job": job,
        "run_date": run_date.isoformat(),
        "run_id": run_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "acquired_at": now.isoformat(),
        "expires_at": (now + dt.timedelta(seconds=ttl_seconds)).isoformat(),
    }
    _acquire(path, info, now)
    try:
        yield
    finally:
        if _read(path).get("run_id") == run_id:
            os.remove(path)


def _read(path: str) -> dict:
    """The lock's content; ``{}`` when it is gone or unreadable (half-written by a crash)."""
    try:
        with open(path, encoding="utf-8") as handle:
            held = json.load(handle)
    except (OSError, json.JSONDecodeError):
        return {}
    return held if isinstance(held, dict) else {}


def _acquire(path: str, info: dict, now: dt.datetime) -> None:
    for _ in range(20):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = _read(path)
            if not held and _age_s(path) < HALF_WRITTEN_GRACE_S:
                time.sleep(0.05)  # just created: its owner is writing it
                continue
            if held and not _is_stale(held, now):
                raise LockHeld(_held_message(path, info, held)) from None
            _break_stale(path, held, now)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return
    held = _read(path)
    if held:
        raise LockHeld(_held_message(path, info, held))
    raise LockHeld(
        f"could not take the lock {path} for job {info['job']} and {info['run_date']}: another "
        f"run is writing it (an unreadable lock is broken after {HALF_WRITTEN_GRACE_S:.0f}s)"
    )


def _age_s(path: str) -> float:
    try:
        return time.time() - os.path.getmtime(path)
    except FileNotFoundError:
        return 0.0


def _break_stale(path: str, judged: dict, now: dt.datetime) -> None:
    """Move the stale lock ``judged`` aside, unless another process is breaking it or it changed."""
    breaker = f"{path}.breaking"
    try:
        fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):
            if time.time() - os.path.getmtime(breaker) > BREAKER_TIMEOUT_S:
                os.remove(breaker)
        time.sleep(0.05)  # someone else is breaking it: let them finish, then race to create
        return
    os.close(fd)
    try:
        current = _read(path)
        stale = _is_stale(current, now) if current else _age_s(path) >= HALF_WRITTEN_GRACE_S
        if current == judged and stale:
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, f"{path}.stale-{uuid.uuid4().hex[:8]}")
    finally:
        os.remove(breaker)


def _held_message(path: str, info: dict, held: dict) -> str:
    what = f"job {info['job']}"
    if path.endswith(f"__{ALL_DATES}.lock"):
        what += (
            " (it keeps one state across dates, so its runs never overlap; "
            f"asked for {info['run_date']})"
        )
    else:
        what += f" for {info['run_date']}"
    return (
        f"{what} is already running (run {held.get('run_id')} for {held.get('run_date')}, "
        f"pid {held.get('pid')} on {held.get('host')}, until {held.get('expires_at')}); "
        f"wait for it or remove {path} if it is dead"
    )
