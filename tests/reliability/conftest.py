"""The reliability suite's shared reference lake (``make test-reliability``, docs/RELIABILITY.md).

``reference`` builds one lake from three generated days and runs the whole chain over it in the
ways the idempotency and secrets tests need, snapshotting it after each:

1. a three-day backfill in this process (``run_chain`` over D1..D3); a copy of the lake is taken
   after D2 (the crash-recovery tests replay D3 on it with kills at several points);
2. the full chain for D3 again, through the CLI in a subprocess, with a secret in the
   environment (and ``validate``, ``report`` and ``audit`` after it);
3. the oldest day and then the latest again (D1, D3), in this process: a rerun of a day that
   later days were built on, then of the day that ends the backfill (rerunning D1 restates the
   as-of-date views, D3 states them back).

The lake, its config and every subprocess's output are kept for the tests to inspect.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lakestate import Snapshot, cli_env, medallion, snapshot, write_config

from medallion.audit import AuditRecord
from medallion.config import load_settings
from medallion.generate import generate_landing
from medallion.jobs import JOBS
from medallion.redact import register_secrets
from medallion.runner import run_chain

START = dt.date(2025, 1, 13)
DAYS = [START + dt.timedelta(days=i) for i in range(3)]
RERUN_DAYS = [DAYS[0], DAYS[-1]]  # step 3: an old day rerun after later ones, then the latest
SCALE = 0.01
SEED = 42
SECRET_ENV = "RELIABILITY_SECRET"
SECRET = "s3cr3t-Reliability-7f3a9c1e5b"  # set through the environment only
SECRET_CONFIG = f"""alerts: {{webhook_url: "https://hooks.example.com/${{{SECRET_ENV}}}"}}
"""
SPARK_SECRET_CONF = {"spark.hadoop.fs.s3a.secret.key": f"${{{SECRET_ENV}}}"}


@dataclass
class Reference:
    root: Path  # the lake; after the crash tests moved it aside, see ``final_root``
    config: Path
    manifest: dict
    day2_copy: Path
    at_day2: Snapshot = field(default_factory=Snapshot)
    after_backfill: Snapshot = field(default_factory=Snapshot)
    after_rerun: Snapshot = field(default_factory=Snapshot)
    after_reruns: Snapshot = field(default_factory=Snapshot)
    backfill_records: list[AuditRecord] = field(default_factory=list)
    rerun_records: list[AuditRecord] = field(default_factory=list)
    cli: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    final_root: Path | None = None

    def lake(self) -> Path:
        return self.final_root or self.root


def config_with_secret(path: Path, root: Path) -> Path:
    """The suite's config, with the secret referenced from the environment in two places."""
    return write_config(path, root, SECRET_CONFIG, spark_conf=SPARK_SECRET_CONF)


@pytest.fixture(scope="session")
def secret_env():
    os.environ[SECRET_ENV] = SECRET
    yield cli_env(**{SECRET_ENV: SECRET})
    os.environ.pop(SECRET_ENV, None)


@pytest.fixture(scope="session")
def reference(spark, tmp_path_factory, secret_env) -> Reference:
    base = tmp_path_factory.mktemp("reference")
    root = base / "lake"
    manifest = generate_landing(
        root / "landing", scale=SCALE, days=len(DAYS), start_date=START, seed=SEED, force=True
    )
    config = config_with_secret(base / "config.yaml", root)
    settings = load_settings("local", str(config))
    register_secrets(settings.secret_values())  # as the CLI does at start-up
    ref = Reference(root=root, config=config, manifest=manifest, day2_copy=base / "lake-at-day2")

    def after_day2(job, run_date, record) -> None:
        if job is JOBS[-1] and run_date == DAYS[1]:
            ref.at_day2 = snapshot(root)
            shutil.copytree(root, ref.day2_copy, symlinks=True)

    ref.backfill_records = run_chain(JOBS, DAYS, settings, lambda: spark, progress=after_day2)
    ref.after_backfill = snapshot(root)

    day = DAYS[-1].isoformat()
    common = ("--config", str(config), "--verbose")
    ref.cli["run"] = medallion("run", "--job", "all", "--run-date", day, *common, env=secret_env)
    ref.after_rerun = snapshot(root)
    ref.cli["validate"] = medallion("validate", "--run-date", day, *common, env=secret_env)
    ref.cli["report"] = medallion("report", "--run-date", day, *common, env=secret_env)
    ref.cli["audit"] = medallion("audit", "--json", "--last", "500", *common, env=secret_env)

    ref.rerun_records = run_chain(JOBS, RERUN_DAYS, settings, lambda: spark)
    ref.after_reruns = snapshot(root)
    return ref
