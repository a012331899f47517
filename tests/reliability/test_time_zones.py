"""The same deliveries give the same lake on machines in different time zones.

The suite's reference lake was built by this test process, in the machine's zone. A CLI process
in another zone (``TZ=Asia/Kolkata``, UTC+5:30, or ``America/Los_Angeles``, UTC-8, whichever is
not the machine's offset) runs the whole chain for the reference's first two days over the same
landing files, at the same lake path: Python's local zone, which PySpark uses for naive
datetimes, and the JVM's default zone both differ. Every table (bronze, quarantine, silver, gold
and the warehouse) must hold what the reference held after its second day, surrogate keys
included: keys, calendar bounds and metadata are computed from business values in UTC.
"""

from __future__ import annotations

import datetime as dt
import shutil
import zoneinfo

import pytest
from conftest import DAYS
from lakestate import snapshot, start_medallion

pytestmark = pytest.mark.reliability

ZONES = ("Asia/Kolkata", "America/Los_Angeles")


def other_zone() -> str:
    """A zone whose offset now differs from this machine's local one."""
    now = dt.datetime.now(dt.UTC)
    here = now.astimezone().utcoffset()
    return next(
        zone for zone in ZONES if now.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset() != here
    )


def test_the_chain_gives_identical_tables_in_another_machine_time_zone(
    reference, secret_env, tmp_path
):
    zone = other_zone()
    # The reference's path is recorded in bronze (each row's source file): run there, with the
    # lake the other tests left moved aside for the duration and put back after.
    root = reference.root
    aside = root.with_name("lake-beside-the-time-zone-run")
    shutil.move(root, aside)
    try:
        shutil.copytree(aside / "landing", root / "landing")
        log = tmp_path / "time_zone_run.log"
        proc = start_medallion(
            *("run", "--job", "all", "--start-date", str(DAYS[0]), "--end-date", str(DAYS[1])),
            *("--config", str(reference.config)),
            env={**secret_env, "TZ": zone},
            log=log,
        )
        assert proc.wait(timeout=1500) == 0, f"{zone}: {log.read_text()[-3000:]}"
        other = snapshot(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if aside.exists():
            shutil.move(aside, root)
    assert {name.split("/")[0] for name in other.tables} >= {"bronze", "silver", "gold"}
    assert reference.at_day2.diff(other) == []
