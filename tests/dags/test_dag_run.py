"""End to end: ``airflow dags test daily_pipeline <date>`` runs the local variant for real.

A throwaway AIRFLOW_HOME with SQLite (``airflow db migrate``), the repository's dags/ folder, a
tmp lake filled by ``medallion generate --scale 0.02 --days 1``, the deadline switched off (its
alert is checked in test_dag_structure). One run succeeds and leaves the audit trail, gold and the
warehouse, after one landing sensor deferred (its delivery's control file is held back until the
sensor's trigger runs); one forced failure shows the retry, the failure and both alerts reaching a
webhook.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from dag_helpers import DAGS_FOLDER, EXPECTED_TASKS, FINAL_JOBS, Webhook, write_config

pytestmark = [pytest.mark.dag, pytest.mark.slow]

HELD_DELIVERY_FALLBACK_S = 900  # see test_dags_test_runs_the_daily_chain

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
RUN_DATE = "2025-01-13"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """An environment for the airflow CLI with its own migrated SQLite metadata database."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEDALLION_")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "MEDALLION_DAG_DEADLINE": "off",
            "PYSPARK_PYTHON": sys.executable,
            # The FileSensors' connection (their paths are absolute, so its base path is unused).
            "AIRFLOW_CONN_FS_DEFAULT": json.dumps({"conn_type": "fs"}),
        }
    )
    done = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def dags_test(
    env: dict[str, str],
    workdir: Path,
    *args: str,
    on_line: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess:
    """``airflow dags test daily_pipeline ARGS``; ``on_line`` sees each line of its output as it
    comes (stderr merged into stdout)."""
    command = [AIRFLOW, "dags", "test", "daily_pipeline", *args]
    lines: list[str] = []
    with subprocess.Popen(
        command, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line)
        returncode = process.wait(timeout=60)
    output = "".join(lines)
    (workdir / "dags_test.log").write_text(output, encoding="utf-8")
    return subprocess.CompletedProcess(command, returncode, output, "")


def task_instances(env: dict[str, str], logical_date: str) -> dict[str, tuple[str, int]]:
    """task_id -> (state, try_number) of the run for ``logical_date``, from the metadata DB."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        rows = db.execute(
            "SELECT ti.task_id, ti.state, ti.try_number FROM task_instance ti "
            "JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id "
            "WHERE ti.dag_id = 'daily_pipeline' AND dr.logical_date LIKE ?",
            (f"{logical_date}%",),
        ).fetchall()
    return {task_id: (state, try_number) for task_id, state, try_number in rows}


def audit_records(lake: Path, run_date: str) -> list[dict]:
    folder = lake / "_audit" / f"run_date={run_date}"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.mark.timeout(3600)
def test_dags_test_runs_the_daily_chain(airflow_env, tmp_path):
    lake = tmp_path / "lake"
    with Webhook() as hook:
        config = write_config(
            tmp_path / "local.yaml",
            lake,
            webhook=hook.url,
            retries=1,
            retry_delay_seconds=1,
            max_retry_delay_seconds=2,
            execution_timeout_minutes=20,
            landing_poke_seconds=1,
        )
        generated = subprocess.run(
            [
                *(sys.executable, "-m", "medallion", "generate", "--scale", "0.02", "--days", "1"),
                *("--start-date", RUN_DATE, "--config", str(config)),
            ],
            env=airflow_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert generated.returncode == 0, generated.stderr[-3000:]
        # The FX delivery's control file arrives late: only once its sensor has deferred and
        # ``dags test`` runs the sensor's trigger (inline, as the triggerer would).
        control = lake / "landing" / "fx" / "fx_rates" / f"dt={RUN_DATE}" / "_control.json"
        held = control.with_name("_control.json.held")
        control.rename(held)

        delivered = threading.Lock()

        def deliver() -> None:
            with delivered:
                if held.exists():
                    held.rename(control)

        def deliver_when_deferred(line: str) -> None:
            if "running trigger in line" in line:
                deliver()

        # ``dags test`` gives an inline trigger no timeout: should the line above never come,
        # the file is delivered anyway after a while, so the run ends (and the assertion on the
        # trigger below fails) instead of waiting for ever.
        fallback = threading.Timer(HELD_DELIVERY_FALLBACK_S, deliver)
        fallback.start()
        env = {**airflow_env, "MEDALLION_CONFIG": str(config), "MEDALLION_WORKDIR": str(tmp_path)}
        try:
            done = dags_test(env, tmp_path, RUN_DATE, on_line=deliver_when_deferred)
        finally:
            fallback.cancel()

    assert done.returncode == 0, done.stdout[-5000:]
    assert control.is_file() and not held.exists()
    # The sensor's trigger found the late delivery (the others found theirs on the first poke).
    found = [line for line in done.stdout.splitlines() if "FileTrigger" in line]
    assert len(found) == 1 and f"Found File {control}" in found[0], found
    states = task_instances(env, RUN_DATE)
    assert states == {task: ("success", 1) for task in EXPECTED_TASKS}
    records = audit_records(lake, RUN_DATE)
    succeeded = {r["job"] for r in records if r["status"] == "succeeded"}
    assert set(FINAL_JOBS) <= succeeded
    assert not [r for r in records if r["status"] != "succeeded"]
    for table in ("dim_customer", "fact_orders", "dim_date", "customer_360"):
        assert (lake / "gold" / table / "_delta_log").is_dir(), f"gold/{table} is not a Delta table"
    assert (lake / "warehouse.duckdb").is_file()
    assert hook.received == []  # nothing failed, nothing retried: no alert


@pytest.mark.timeout(1800)
def test_forced_failure_retries_then_fires_the_failure_callback(airflow_env, tmp_path):
    # An empty lake: bronze_to_silver finds no bronze and fails (exit 1, a job failure, which is
    # retried). Every other task is marked successful without running, to keep this quick.
    day = "2025-01-20"
    with Webhook() as hook:
        config = write_config(
            tmp_path / "local.yaml",
            tmp_path / "lake",
            webhook=hook.url,
            retries=1,
            retry_delay_seconds=1,
            max_retry_delay_seconds=2,
            execution_timeout_minutes=10,
        )
        env = {**airflow_env, "MEDALLION_CONFIG": str(config), "MEDALLION_WORKDIR": str(tmp_path)}
        done = dags_test(env, tmp_path, day, "--mark-success-pattern", "(?!bronze_to_silver$).*")

    assert done.returncode != 0
    states = task_instances(env, day)
    assert states["bronze_to_silver"] == ("failed", 2)
    assert states["silver_to_gold"][0] == "upstream_failed"
    assert states["publish_gold_to_snowflake"][0] == "upstream_failed"
    alerts = [(a["alert"], a["task_id"], a["try_number"], a["run_date"]) for a in hook.received]
    assert alerts == [
        ("task_retry", "bronze_to_silver", 1, day),
        ("task_failed", "bronze_to_silver", 2, day),
    ]
    assert "exited with code 1" in hook.received[-1]["error"]
    log = (tmp_path / "dags_test.log").read_text()
    assert '"alert": "task_failed"' in log  # the structured alert line in the task log
    [record] = [r for r in audit_records(tmp_path / "lake", day) if r["job"] == "bronze_to_silver"][
        -1:
    ]
    assert record["status"] == "failed"
