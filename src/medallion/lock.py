"""A lock per (job, run date) in the lake, so a second scheduler firing cannot run the same job
for the same date at the same time: on a local folder and on S3 alike.

The lock is a small JSON object ``<lake>/_locks/<job>__<date>.lock`` holding its owner (job, run
date, run id, host, pid) and an expiry. Different dates of a bronze batch job never contend.
The jobs in ``SERIAL_JOBS`` keep one state across all dates (the stream's checkpoint, silver's
and gold's current state, the warehouse): two of their runs for different dates would read the
same state and the last to write would undo the other, so their lock,
``<job>__all-dates.lock``, covers every date.

One algorithm (:func:`run_lock`) over two stores that differ only in three primitives:

* **create** exclusively: locally ``open(O_CREAT | O_EXCL)``; on S3 ``PutObject`` with
  ``If-None-Match: *``, which S3 refuses with ``412 PreconditionFailed`` (or ``409
  ConditionalRequestConflict`` while another conditional write of the key is in flight) when the
  key exists. Exactly one of any number of concurrent creators wins.
* **read** the lock with a version token: locally the file's inode, mtime and size; on S3 its
  ETag.
* **remove** the lock only if it is still the version that was read: on S3 ``DeleteObject``
  with ``If-Match: <ETag>`` (S3 conditional deletes); locally, under a short-lived
  ``<lock>.breaking`` file that serialises every remover, re-read and compare, then rename.

A lock is stale when it has expired, or when its owner ran on this host and that process is
gone. A stale lock is removed only if it is still the very version judged stale, and kept aside
for the operator (``<lock>.stale-<token>``): without that condition, two runs that both saw the
same stale lock could each remove it, the second one removing the fresh lock of the first, and
both would run. The owner releases its lock the same way (only if it is still its own).

Limits: the expiry (``lock.ttl_seconds``, default 6 hours) must exceed the longest run, because a
live owner whose lock expired can be overtaken (Airflow's execution timeout, 2 hours, keeps runs
shorter); expiry is judged on the reader's clock, so hosts need clocks within minutes of each
other. On S3 the lock is only as good as S3's conditional requests: a store that ignores
``If-None-Match`` on PutObject would let two runs in (AWS S3 honours it since August 2024 and
``If-Match`` on DeleteObject since September 2025).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from medallion.errors import ConfigError, JobError
from medallion.lake import Lake

log = logging.getLogger(__name__)

SERIAL_JOBS = frozenset(
    {
        "kafka_events_to_bronze",
        "bronze_to_silver",
        "silver_to_gold",
        "publish_gold_to_snowflake",
    }
)
ALL_DATES = "all-dates"
SUFFIX = ".lock"
S3_SCHEMES = ("s3", "s3a", "s3n")
ATTEMPTS = 20  # create / judge / break rounds before giving up on a lock that keeps changing
BREAKER_TIMEOUT_S = 30.0  # a breaker file older than this was left by a process that died
HALF_WRITTEN_GRACE_S = 5.0  # an unreadable lock younger than this is still being written
RELEASE_WAIT_S = 5.0  # how long a release waits for a breaker that holds the local lock


class LockHeld(JobError):
    """Another live run holds the lock: this run did nothing (exit 1, recorded as failed)."""


@dataclass(frozen=True)
class Held:
    """A lock as read from its store: owner (``{}`` if unreadable), version token, age, bytes."""

    info: dict[str, Any]
    version: str
    age_s: float
    body: bytes = field(repr=False)


class LockStore(Protocol):
    """Where one lock lives; the three primitives the algorithm needs."""

    where: str  # what messages name: a path, or an s3:// URI

    def create(self, body: bytes) -> bool:
        """Create the lock holding ``body`` if it does not exist; False when it exists."""

    def read(self) -> Held | None:
        """The lock as it is now; None when there is none."""

    def remove(self, held: Held, keep_aside: bool) -> bool:
        """Remove the lock if it is still the version ``held``; keep a copy aside if asked."""


# --- where locks live ----------------------------------------------------------------------------


def lock_name(job: str, run_date: dt.date) -> str:
    scope = ALL_DATES if job in SERIAL_JOBS else run_date.isoformat()
    return f"{job}__{scope}{SUFFIX}"


def lock_path(lake_root: str, job: str, run_date: dt.date) -> str:
    """Where the lock of ``job`` for ``run_date`` lives (one for all dates of SERIAL_JOBS)."""
    return _folder(lake_root).store(lock_name(job, run_date)).where


def locked_dates(lake_root: str, job: str) -> list[dt.date]:
    """The dates whose lock of ``job`` exists now (held, or stale and not broken yet)."""
    prefix = f"{job}__"
    dates = set()
    for name in _folder(lake_root).names():
        if name.startswith(prefix) and name.endswith(SUFFIX):
            scope = name[len(prefix) : -len(SUFFIX)]
            with contextlib.suppress(ValueError):
                if scope != ALL_DATES:
                    dates.add(dt.date.fromisoformat(scope))
    return sorted(dates)


def _folder(lake_root: str) -> FileLocks | S3Locks:
    """The store of the lake's ``_locks`` folder (where it is: ``Lake.locks_dir``)."""
    folder = Lake.from_root(lake_root).locks_dir()
    scheme, sep, rest = folder.partition("://")
    if not sep:
        return FileLocks(folder)
    if scheme == "file":
        return FileLocks(rest)
    if scheme in S3_SCHEMES:
        bucket, _, prefix = rest.partition("/")
        return S3Locks(bucket, prefix)
    raise ConfigError(
        f"lake.root '{lake_root}' has no run lock: put the lake in a local folder or on S3 "
        f"(s3:// or s3a://)"
    )


# --- the algorithm, shared -----------------------------------------------------------------------


@contextmanager
def run_lock(
    lake_root: str, job: str, run_date: dt.date, run_id: str, ttl_seconds: int
) -> Iterator[None]:
    """Hold the (job, date) lock for the duration of the block; raise ``LockHeld`` if taken."""
    store = _folder(lake_root).store(lock_name(job, run_date))
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
    acquire(store, info, now)
    try:
        yield
    finally:
        try:
            release(store, run_id)
        except JobError as exc:  # the run's own outcome stands; the lock will expire
            log.error("%s; it expires at %s", exc, info["expires_at"])


def acquire(store: LockStore, info: dict[str, Any], now: dt.datetime) -> None:
    """Create the lock holding ``info``; break a stale one on the way; ``LockHeld`` if held."""
    body = json.dumps(info).encode()
    for _ in range(ATTEMPTS):
        if store.create(body):
            return
        held = store.read()
        if held is None:
            continue  # released in between: race to create again
        if not held.info and held.age_s < HALF_WRITTEN_GRACE_S:
            time.sleep(0.05)  # just created: its owner is writing it
            continue
        if held.info and not is_stale(held.info, now):
            raise LockHeld(_held_message(store.where, info, held.info))
        if store.remove(held, keep_aside=True):
            log.warning(
                "broke the stale lock %s of run %s (pid %s on %s, until %s)",
                store.where,
                held.info.get("run_id"),
                held.info.get("pid"),
                held.info.get("host"),
                held.info.get("expires_at"),
            )
    held = store.read()
    if held is not None and held.info:
        raise LockHeld(_held_message(store.where, info, held.info))
    raise LockHeld(
        f"could not take the lock {store.where} for job {info['job']} and {info['run_date']}: "
        f"another run is writing it (an unreadable lock is broken after "
        f"{HALF_WRITTEN_GRACE_S:.0f}s)"
    )


def release(store: LockStore, run_id: str) -> None:
    """Remove the lock if it is still this run's (a run whose lock expired may have lost it)."""
    deadline = time.monotonic() + RELEASE_WAIT_S
    while True:
        held = store.read()
        if held is None or held.info.get("run_id") != run_id:
            log.warning(
                "the lock %s was no longer this run's (%s) when it finished: another run broke "
                "it as expired; raise lock.ttl_seconds above the longest run",
                store.where,
                run_id,
            )
            return
        if store.remove(held, keep_aside=False) or time.monotonic() > deadline:
            return
        time.sleep(0.05)  # a breaker is looking at it (locally): let it finish


def is_stale(info: dict[str, Any], now: dt.datetime) -> bool:
    """Expired, or owned by a process of this host that is gone."""
    expires = dt.datetime.fromisoformat(info.get("expires_at", "1970-01-01T00:00:00+00:00"))
    if now >= expires:
        return True
    return info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _held_message(where: str, info: dict[str, Any], held: dict[str, Any]) -> str:
    what = f"job {info['job']}"
    if where.endswith(f"__{ALL_DATES}{SUFFIX}"):
        what += (
            " (it keeps one state across dates, so its runs never overlap; "
            f"asked for {info['run_date']})"
        )
    else:
        what += f" for {info['run_date']}"
    return (
        f"{what} is already running (run {held.get('run_id')} for {held.get('run_date')}, "
        f"pid {held.get('pid')} on {held.get('host')}, until {held.get('expires_at')}); "
        f"wait for it or remove {where} if it is dead"
    )


def _parse(body: bytes) -> dict[str, Any]:
    """The lock's owner; ``{}`` when the body is not a JSON object (half-written by a crash)."""
    try:
        held = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return held if isinstance(held, dict) else {}


def _aside_name(name: str) -> str:
    return f"{name}.stale-{uuid.uuid4().hex[:8]}"


# --- local folder --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileLocks:
    """The ``_locks`` folder of a local lake."""

    folder: str

    def store(self, name: str) -> FileLock:
        return FileLock(os.path.join(self.folder, name))

    def names(self) -> list[str]:
        return sorted(os.listdir(self.folder)) if os.path.isdir(self.folder) else []


@dataclass(frozen=True)
class FileLock:
    """A lock file. Creating it and writing its JSON are two steps, so a reader can find it
    empty for a moment (the algorithm's grace period covers that). Removal is serialised by the
    ``<lock>.breaking`` file: only its holder may re-read the lock and remove it."""

    where: str

    def create(self, body: bytes) -> bool:
        os.makedirs(os.path.dirname(self.where), exist_ok=True)
        try:
            fd = os.open(self.where, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def read(self) -> Held | None:
        try:
            with open(self.where, "rb") as handle:
                stat = os.fstat(handle.fileno())
                body = handle.read()
        except FileNotFoundError:
            return None
        return Held(
            info=_parse(body),
            # The bytes too: an inode freed by a release can come back with the same coarse mtime.
            version=f"{stat.st_ino}:{stat.st_mtime_ns}:{hashlib.sha256(body).hexdigest()}",
            age_s=max(0.0, time.time() - stat.st_mtime),
            body=body,
        )

    def remove(self, held: Held, keep_aside: bool) -> bool:
        with self._breaker() as mine:
            if not mine:
                return False
            current = self.read()
            if current is None or current.version != held.version:
                return False
            with contextlib.suppress(FileNotFoundError):
                if keep_aside:
                    os.rename(self.where, _aside_name(self.where))
                else:
                    os.remove(self.where)
            return True

    @contextmanager
    def _breaker(self) -> Iterator[bool]:
        """Hold ``<lock>.breaking`` for the block (True), or yield False if another does."""
        breaker = f"{self.where}.breaking"
        try:
            fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - os.path.getmtime(breaker) > BREAKER_TIMEOUT_S:
                    os.remove(breaker)  # left by a process that died while breaking
            time.sleep(0.05)  # someone else is removing it: let them finish, then race again
            yield False
            return
        os.close(fd)
        try:
            yield True
        finally:
            os.remove(breaker)


# --- S3 --------------------------------------------------------------------------------------------


def s3_client() -> Any:
    """An S3 client configured as the rest of the S3 path is: the standard AWS environment
    (credentials chain, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``)."""
    import boto3

    # A session per client: boto3's default session is not safe to share across the threads
    # a chain runs its ingests in.
    return boto3.session.Session().client("s3")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class S3Locks:
    """The ``_locks/`` prefix of a lake on S3 (``s3://`` and ``s3a://`` roots alike)."""

    bucket: str
    prefix: str

    def store(self, name: str) -> S3Lock:
        return S3Lock(self.bucket, f"{self.prefix}/{name}")

    def names(self) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        names = []
        try:
            pages = s3_client().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/"):
                names += [o["Key"].rsplit("/", 1)[-1] for o in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise JobError(
                f"cannot list the locks in s3://{self.bucket}/{self.prefix}/: {exc}"
            ) from None
        return sorted(names)


@dataclass
class S3Lock:
    """A lock object on S3, created with ``If-None-Match: *`` and removed with ``If-Match``.

    A PutObject is atomic (a reader sees the whole body or no object), so an S3 lock is never
    half-written. The stale copy kept aside is written from the bytes that were judged, before
    the conditional delete; if that delete is refused, the copy is removed again.
    """

    bucket: str
    key: str
    _client: Any = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def create(self, body: bytes) -> bool:
        try:
            self._call(
                "put_object",
                Bucket=self.bucket,
                Key=self.key,
                Body=body,
                IfNoneMatch="*",
                ContentType="application/json",
            )
        except _Refused:
            return False
        return True

    def read(self) -> Held | None:
        try:
            got = self._call("get_object", Bucket=self.bucket, Key=self.key)
        except _Refused:
            return None
        body = got["Body"].read()
        modified = got["LastModified"]
        return Held(
            info=_parse(body),
            version=got["ETag"],
            age_s=max(0.0, (dt.datetime.now(dt.UTC) - modified).total_seconds()),
            body=body,
        )

    def remove(self, held: Held, keep_aside: bool) -> bool:
        aside = _aside_name(self.key) if keep_aside else None
        if aside:
            self._call("put_object", Bucket=self.bucket, Key=aside, Body=held.body)
        try:
            self._call("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=held.version)
        except _Refused:
            if aside:
                self._call("delete_object", Bucket=self.bucket, Key=aside)
            return False
        return True

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """One S3 request; ``_Refused`` when a precondition failed or the key is absent."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = _code(exc)
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404"):
                raise _Refused(code) from None
            hint = (
                "; the job needs s3:GetObject, s3:PutObject and s3:DeleteObject on the lake's "
                "_locks/ prefix (docs/DEPLOY.md)"
                if code == "AccessDenied"
                else ""
            )
            raise JobError(
                f"cannot use the run lock {self.where} ({operation}: {code or exc}){hint}"
            ) from None
        except BotoCoreError as exc:
            raise JobError(f"cannot use the run lock {self.where}: {exc}") from None


class _Refused(Exception):
    """S3 refused a conditional request, or the key is not there."""
