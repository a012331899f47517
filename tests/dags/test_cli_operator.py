"""The local variant's operator maps a real subprocess's exit onto Airflow's retry policy.

A retry helps only a failure that the same inputs might not repeat. Bad usage (exit 2) and a
quality gate that failed on the day's data (exit 1, the gate's message last) are not such
failures: the task must fail at once, with the CLI's sentence in the exception. Anything else
that exits non-zero stays retryable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from medallion.chain import GATE_FAILED
from medallion.orchestration.dag_factory import MedallionCliOperator

pytestmark = pytest.mark.dag

REPO = Path(__file__).resolve().parents[2]


def operator(arguments, python=sys.executable, cwd=REPO) -> MedallionCliOperator:
    return MedallionCliOperator(
        task_id="t", arguments=list(arguments), python=str(python), cwd=str(cwd)
    )


def fake_interpreter(tmp_path: Path, last_line: str, code: int) -> Path:
    """An executable standing in for ``python -m medallion ...``: logs, then fails with ``code``."""
    script = tmp_path / "python"
    script.write_text(
        f"#!/bin/sh\necho '12:00:00 INFO  medallion | working'\necho '{last_line}' >&2\nexit {code}\n"
    )
    script.chmod(0o755)
    return script


def test_a_successful_command_succeeds():
    assert operator(["jobs"]).execute({}) == 0


def test_bad_usage_fails_at_once_with_the_cli_sentence():
    with pytest.raises(AirflowFailException) as failed:
        operator(["run", "--job", "no_such_job", "--run-date", "2025-01-13"]).execute({})
    assert "exited with code 2 (bad usage or configuration; not retried)" in str(failed.value)
    assert "no_such_job" in str(failed.value)


def test_a_failed_gate_fails_at_once_naming_the_way_out(tmp_path):
    line = (
        f"medallion: error: {GATE_FAILED} 2025-01-16: 1 error check(s) failed: "
        "anomaly.fx/fx_rates.quarantine_rate"
    )
    with pytest.raises(AirflowFailException) as failed:
        operator(["validate"], python=fake_interpreter(tmp_path, line, 1)).execute({})
    message = str(failed.value)
    assert "the data failed the quality gate; not retried" in message
    assert message.endswith(line)


def test_any_other_failure_is_retryable(tmp_path):
    line = "medallion: error: job crm_to_bronze failed: Py4JJavaError ..."
    with pytest.raises(AirflowException) as failed:
        operator(["run"], python=fake_interpreter(tmp_path, line, 1)).execute({})
    assert type(failed.value) is AirflowException
    assert "exited with code 1" in str(failed.value) and str(failed.value).endswith(line)
