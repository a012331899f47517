"""``python -m bench`` end to end at a tiny scale: it runs the floor and both days as real
processes and writes a JSON with every figure the table shows, computed from those runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medallion.jobs import JOBS as ALL_JOBS
from medallion.quality.job import before_publish

pytestmark = [pytest.mark.integration, pytest.mark.extended]

ROOT = Path(__file__).resolve().parents[2]
# The chain `medallion run --job all` runs: the registry's jobs and validate before the publish.
JOBS = {job.name for job in before_publish(ALL_JOBS)}


def test_bench_writes_its_figures(tmp_path):
    results = tmp_path / "results"
    argv = [sys.executable, "-m", "bench", "--scales", "0.02", "--repeat-scale", "0"]
    argv += ["--workdir", str(tmp_path / "work"), "--results", str(results)]
    # Its own process group, so a timeout stops the medallion processes it started too.
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as proc:  # fmt: skip
        try:
            stdout, stderr = proc.communicate(timeout=1500)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    done = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = results.glob("*.json")
    report = json.loads(path.read_text())
    scale = report["scales"]["0.02"]
    assert scale["landing_bytes"] > 0 and scale["generate_s"] > 0
    for day in ("day1", "day2"):
        run = scale[day]
        assert set(run["jobs"]) == JOBS
        assert run["jobs"]["snowflake_to_bronze"]["rows_in"] > 0
        assert run["jobs"]["snowflake_to_bronze"]["rows_per_s"] > 0
        assert run["startup_s"] > 0
        assert run["wall_s"] > run["jobs_s"] > 0
        assert run["jvm_peak_rss_mb"] > 100  # a JVM was watched, not just the Python process
        assert all(run["bytes"][layer] > 0 for layer in ("bronze", "silver", "gold"))
        # The stage breakdown found Spark work in the jobs that use Spark.
        assert run["jobs"]["bronze_to_silver"]["stages"]["stages"] > 0
        assert run["jobs"]["kafka_events_to_bronze"]["stages"]["stages"] > 0
    assert scale["floor"]["wall_s"] > 0 and scale["floor"]["bytes_written"] > 0
    assert scale["ratios"]["day1_over_floor"] == round(
        scale["day1"]["wall_s"] / scale["floor"]["wall_s"], 2
    )
    assert "day1_over_floor" in done.stdout and str(path) in done.stdout
    assert not (tmp_path / "work").exists()  # scratch lakes removed without --keep
