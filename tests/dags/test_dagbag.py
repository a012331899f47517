"""The DAG folder imports cleanly: no import errors, no warnings, for both variants.

Each load runs in a fresh interpreter so that the warnings of a first import are seen (a module
imported earlier in the test session would not warn again) and the environment is exactly the
one given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from dag_helpers import DAGS_FOLDER, EXPECTED_TASKS, REPO, write_config

pytestmark = pytest.mark.dag

LOAD_DAGBAGS = r"""
import json, os, sys, warnings
scenarios = json.loads(sys.argv[2])
results = {}
warnings.simplefilter("always")
from airflow.dag_processing.dagbag import DagBag
for name, environ in scenarios.items():
    os.environ.update(environ)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=sys.argv[1])
    for key in environ:
        del os.environ[key]
    dag = bag.dags.get("daily_pipeline")
    results[name] = {
        "import_errors": bag.import_errors,
        "captured_warnings": {k: list(v) for k, v in bag.captured_warnings.items()},
        "our_warnings": [f"{w.filename}:{w.lineno}: {w.message}" for w in seen
                         if "/medallion/" in w.filename or "/dags/" in w.filename],
        "dag_ids": sorted(bag.dag_ids),
        "tasks": [t.task_id for t in dag.tasks] if dag else None,
        "task_types": sorted({type(t).__name__ for t in dag.tasks}) if dag else None,
        "deadline": bool(dag.deadline) if dag else None,
    }
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def dagbags(tmp_path_factory) -> dict:
    """Load the DAG folder under four configurations, in one fresh interpreter (Airflow's import
    is slow); the first load sees every first-import warning."""
    tmp = tmp_path_factory.mktemp("dagbag")
    bad = tmp / "bad.yaml"
    bad.write_text("env: local\nairflow: {retries: many}\n", encoding="utf-8")
    scenarios = {
        variant: {
            "MEDALLION_CONFIG": str(
                write_config(tmp / f"{variant}.yaml", tmp / "lake", variant=variant)
            )
        }
        for variant in ("local", "emr_serverless")
    }
    # No MEDALLION_CONFIG: the project's config/local.yaml, found from the DAG file's location.
    scenarios["default_no_deadline"] = {"MEDALLION_DAG_DEADLINE": "off"}
    scenarios["bad_config"] = {"MEDALLION_CONFIG": str(bad)}
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEDALLION_")}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp / "airflow_home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", LOAD_DAGBAGS, str(DAGS_FOLDER), json.dumps(scenarios)],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("variant", ["local", "emr_serverless"])
def test_dag_folder_imports_without_errors_or_warnings(variant, dagbags):
    result = dagbags[variant]

    assert result["import_errors"] == {}
    assert result["captured_warnings"] == {}
    assert result["our_warnings"] == []
    assert result["dag_ids"] == ["daily_pipeline"]
    assert result["tasks"] == EXPECTED_TASKS
    # The test configs keep the lake on local disk (FileSensors); the EMR variant publishes from
    # the worker (MedallionCliOperator).
    job_types = (
        ["MedallionCliOperator"]
        if variant == "local"
        else ["EmrServerlessStartJobOperator", "MedallionCliOperator"]
    )
    assert result["task_types"] == sorted(["FileSensor", *job_types])
    assert result["deadline"] is True


def test_default_config_and_deadline_switch(dagbags):
    result = dagbags["default_no_deadline"]

    assert result["import_errors"] == {}
    assert result["dag_ids"] == ["daily_pipeline"]
    assert result["deadline"] is False
    assert (REPO / "config" / "local.yaml").is_file()


def test_bad_config_is_a_clear_import_error(dagbags):
    [(path, error)] = dagbags["bad_config"]["import_errors"].items()

    assert path.endswith("daily_pipeline.py")
    assert "airflow.retries" in error
