"""A lock file per (job, run date) in the lake, so a second scheduler firing cannot run the same
job for the same date at the same time. Different dates never contend.

The lock is a JSON file ``<lake>/_locks/<job>__<date>.lock`` created exclusively, holding its
owner (host, pid, run id) and an expiry. A lock is stale when it has expired, or when its owner
ran on this host and that process is gone; a stale lock is broken by renaming it away first, so
two processes cannot both break it and both win.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from medallion.errors import JobError


class LockHeld(JobError):
    """Another live run holds the lock: this run did nothing (exit 1, recorded as failed)."""


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
    folder = os.path.join(lake_root, "_locks")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{job}__{run_date.isoformat()}.lock")
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
        try:
            with open(path, encoding="utf-8") as handle:
                mine = json.load(handle).get("run_id") == run_id
        except (OSError, json.JSONDecodeError):
            mine = False
        if mine:
            os.remove(path)


def _acquire(path: str, info: dict, now: dt.datetime) -> None:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path, encoding="utf-8") as handle:
                    held = json.load(handle)
            except (OSError, json.JSONDecodeError):
                held = {}  # half-written by a crashed owner: stale
            if held and not _is_stale(held, now):
                raise LockHeld(
                    f"job {info['job']} for {info['run_date']} is already running "
                    f"(run {held.get('run_id')}, pid {held.get('pid')} on {held.get('host')}, "
                    f"until {held.get('expires_at')}); wait for it or remove {path} if it is dead"
                ) from None
            # If someone else broke it first the rename fails; either way, race for the create again.
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, f"{path}.stale-{uuid.uuid4().hex[:8]}")
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
        return
    raise LockHeld(f"could not take the lock {path}: another run keeps taking it")
