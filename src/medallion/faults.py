"""Fault injection for the reliability suite: kill (or pause) the process at a named point.

The jobs call ``crash_point(name)`` at a handful of places where a crash is interesting (data
files written but not yet committed, some tables swapped in and others not, a warehouse staging
table loaded but not merged, a stream batch written but not checkpointed). In production the
call does nothing: it reads one environment variable and returns.

``MEDALLION_CRASH_AT=<name>[@<n>]``
    At the ``n``-th time (default 1st) the process reaches point ``name``, the SparkSession's
    JVM and then the process itself are killed with SIGKILL: no ``finally`` block, no shutdown
    hook, no Python or JVM clean-up runs, exactly as when the kernel's OOM killer or a lost
    node ends a driver.
``MEDALLION_PAUSE_AT=<name>[@<n>]:<seconds>``
    Sleep there instead (the concurrency tests use it to hold a lock for a known time).

Points (``docs/RELIABILITY.md`` lists where each sits): ``bronze.after_bronze_write``,
``silver.after_orders``, ``gold.after_fact_orders``, ``publish.before_merge``,
``stream.before_commit``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections import Counter

CRASH_ENV = "MEDALLION_CRASH_AT"
PAUSE_ENV = "MEDALLION_PAUSE_AT"

log = logging.getLogger(__name__)
_hits: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Kill or pause the process here when the environment asks for point ``name``."""
    crash, pause = os.environ.get(CRASH_ENV), os.environ.get(PAUSE_ENV)
    if not crash and not pause:
        return
    _hits[name] += 1
    if pause:
        target, _, seconds = pause.rpartition(":")
        if _matches(target, name):
            log.warning("fault injection: pausing %ss at %s (hit %d)", seconds, name, _hits[name])
            time.sleep(float(seconds))
    if crash and _matches(crash, name):
        _kill_everything(name)


def _matches(spec: str, name: str) -> bool:
    point, _, nth = spec.partition("@")
    return point == name and _hits[name] == (int(nth) if nth else 1)


def _kill_everything(name: str) -> None:
    print(f"medallion: fault injection: SIGKILL at {name}", file=sys.stderr, flush=True)
    jvm_pid = _spark_jvm_pid()
    if jvm_pid is not None:
        # The JVM first: left alive it would notice the dead parent only later, and could still
        # finish (and commit) work the driver had started.
        os.kill(jvm_pid, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _spark_jvm_pid() -> int | None:
    """The pid of the local JVM PySpark started for this process, if there is one."""
    if "pyspark" not in sys.modules:
        return None
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None) if gateway is not None else None
    return process.pid if process is not None else None
