"""The same deliveries give the same lake on machines in different time zones.

Two CLI processes run the whole chain over the same landing files, one with ``TZ=Asia/Kolkata``
(UTC+5:30) and one with ``TZ=America/Los_Angeles`` (UTC-8): Python's local zone, which PySpark
uses for naive datetimes, and the JVM's default zone both differ. Every table (bronze,
quarantine, silver, gold and the warehouse) must hold the same content, surrogate keys included:
keys, calendar bounds and metadata are computed from business values in UTC.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from lakestate import cli_env, snapshot, start_medallion, write_config

from medallion.generate import generate_landing

pytestmark = pytest.mark.reliability

START = dt.date(2025, 1, 13)
ZONES = ("Asia/Kolkata", "America/Los_Angeles")


def test_the_chain_gives_identical_tables_in_two_machine_time_zones(tmp_path):
    landing = tmp_path / "landing"
    generate_landing(landing, scale=0.01, days=2, start_date=START, seed=11, force=True)
    # One lake path for both runs, one after the other: bronze records each row's source file.
    root = tmp_path / "lake"
    config = write_config(tmp_path / "config.yaml", root)
    snapshots = {}
    for zone in ZONES:
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(landing, root / "landing")
        log = tmp_path / f"{zone.replace('/', '_')}.log"
        proc = start_medallion(
            *("run", "--job", "all", "--start-date", str(START)),
            *("--end-date", str(START + dt.timedelta(days=1)), "--config", str(config)),
            env=cli_env(TZ=zone),
            log=log,
        )
        assert proc.wait(timeout=1500) == 0, f"{zone}: {log.read_text()[-3000:]}"
        snapshots[zone] = snapshot(root)
    first, second = (snapshots[zone] for zone in ZONES)
    assert {name.split("/")[0] for name in first.tables} >= {"bronze", "silver", "gold"}
    assert first.diff(second) == []
