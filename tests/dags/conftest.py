"""DAG test fixtures: a throwaway AIRFLOW_HOME (set before Airflow is imported) and configs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from dag_helpers import write_config

# Airflow reads AIRFLOW_HOME (and writes airflow.cfg there) the first time it is imported: point
# it at a throwaway folder before any test in this package imports airflow.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="medallion-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


@pytest.fixture
def local_config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "local.yaml",
        tmp_path / "lake",
        retries=2,
        retry_delay_seconds=30,
        max_retry_delay_seconds=600,
        execution_timeout_minutes=45,
        deadline_minutes=240,
    )


@pytest.fixture
def emr_config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "emr.yaml",
        tmp_path / "lake",
        variant="emr_serverless",
        retries=4,
        retry_delay_seconds=120,
        max_retry_delay_seconds=3600,
        execution_timeout_minutes=90,
        aws_conn_id="aws_medallion",
    )
