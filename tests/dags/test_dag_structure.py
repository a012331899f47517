"""The DAG as declared: tasks, edges, retry and timeout policy, callbacks, deadline, both variants."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from dag_helpers import (
    EMR_SETTINGS,
    EXPECTED_TASKS,
    EXPECTED_UPSTREAM,
    FINAL_JOBS,
    REPO,
    write_config,
)

from medallion.config import load_settings
from medallion.errors import ConfigError
from medallion.orchestration.callbacks import TASK_FAILED, TASK_RETRY, AlertCallback

pytestmark = pytest.mark.dag

RUN_DATE = dt.date(2025, 1, 13)


def build(config: Path, variant: str | None = None, **kwargs):
    from medallion.orchestration.dag_factory import build_daily_pipeline

    kwargs.setdefault("job_names", FINAL_JOBS)
    kwargs.setdefault("environ", {})
    return build_daily_pipeline(load_settings("local", str(config)), variant, **kwargs)


def test_registry_is_the_final_chain():
    from medallion.jobs import JOB_MAP

    assert list(JOB_MAP) == FINAL_JOBS


def test_graph_ingests_in_parallel_then_chain_with_validate_before_publish():
    from medallion.orchestration.dag_factory import pipeline_steps

    steps = pipeline_steps(FINAL_JOBS)

    assert [s.task_id for s in steps] == EXPECTED_TASKS
    assert {s.task_id: set(s.upstream) for s in steps} == EXPECTED_UPSTREAM
    by_id = {s.task_id: s.arguments for s in steps}
    assert by_id["validate"] == ("validate", "--run-date", "{{ ds }}")
    assert by_id["crm_to_bronze"] == ("run", "--job", "crm_to_bronze", "--run-date", "{{ ds }}")


def test_graph_without_publish_validates_last():
    from medallion.orchestration.dag_factory import pipeline_steps

    steps = pipeline_steps(["a_to_bronze", "b_to_bronze", "bronze_to_silver"])

    assert [(s.task_id, set(s.upstream)) for s in steps] == [
        ("a_to_bronze", set()),
        ("b_to_bronze", set()),
        ("bronze_to_silver", {"a_to_bronze", "b_to_bronze"}),
        ("validate", {"bronze_to_silver"}),
    ]


@pytest.mark.parametrize("variant", ["local", "emr_serverless"])
def test_tasks_and_dependencies(variant, local_config, emr_config):
    dag = build(local_config if variant == "local" else emr_config)

    assert [t.task_id for t in dag.tasks] == EXPECTED_TASKS
    assert {t.task_id: set(t.upstream_task_ids) for t in dag.tasks} == EXPECTED_UPSTREAM
    expected_type = (
        "MedallionCliOperator" if variant == "local" else "EmrServerlessStartJobOperator"
    )
    assert {type(t).__name__ for t in dag.tasks} == {expected_type}


@pytest.mark.parametrize(
    ("variant", "retries", "delay", "cap", "timeout"),
    [("local", 2, 30, 600, 45), ("emr_serverless", 4, 120, 3600, 90)],
)
def test_retry_timeout_and_callbacks(
    variant, retries, delay, cap, timeout, local_config, emr_config
):
    config = local_config if variant == "local" else emr_config
    dag = build(config)

    for task in dag.tasks:
        assert task.retries == retries, task.task_id
        assert task.retry_delay == dt.timedelta(seconds=delay)
        assert task.retry_exponential_backoff == 2.0
        assert task.max_retry_delay == dt.timedelta(seconds=cap)
        assert task.execution_timeout == dt.timedelta(minutes=timeout)
        assert list(task.on_failure_callback) == [
            AlertCallback(TASK_FAILED, "local", str(config.resolve()))
        ]
        assert list(task.on_retry_callback) == [
            AlertCallback(TASK_RETRY, "local", str(config.resolve()))
        ]


@pytest.mark.parametrize("variant", ["local", "emr_serverless"])
def test_dag_policies_and_deadline(variant, local_config, emr_config):
    from airflow.sdk import AsyncCallback, CronDataIntervalTimetable, DeadlineReference

    config = local_config if variant == "local" else emr_config
    dag = build(config)

    assert dag.dag_id == "daily_pipeline"
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.timetable == CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
    assert variant in dag.tags
    [alert] = dag.deadline
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == dt.timedelta(minutes=240 if variant == "local" else 360)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "medallion.orchestration.callbacks.deadline_missed"
    # Only non-secret pointers travel in the (serialised) callback kwargs.
    assert alert.callback.kwargs == {"env": "local", "config": str(config.resolve())}


def test_deadline_can_be_switched_off(local_config):
    assert not build(local_config, deadline=False).deadline


def test_local_task_runs_the_cli_for_the_logical_date(local_config, tmp_path):
    dag = build(local_config, workdir=tmp_path, python="/opt/py/bin/python")
    task = dag.get_task("silver_to_gold")
    task.render_template_fields({"ds": RUN_DATE.isoformat()})

    assert task.command == [
        "/opt/py/bin/python",
        "-m",
        "medallion",
        "run",
        "--job",
        "silver_to_gold",
        "--run-date",
        "2025-01-13",
        "--env",
        "local",
        "--config",
        str(local_config.resolve()),
    ]
    assert task.cwd == str(tmp_path.resolve())
    validate = dag.get_task("validate")
    validate.render_template_fields({"ds": RUN_DATE.isoformat()})
    assert validate.command[3:6] == ["validate", "--run-date", "2025-01-13"]


def test_emr_task_renders_job_driver_for_the_logical_date(emr_config):
    from medallion.orchestration.dag_factory import start_job_run_request

    dag = build(emr_config, environ={"UNUSED": "x"})

    for task in dag.tasks:
        request = start_job_run_request(task, RUN_DATE)
        driver = request["jobDriver"]["sparkSubmit"]
        cli = (
            ["validate", "--run-date", "2025-01-13"]
            if task.task_id == "validate"
            else ["run", "--job", task.task_id, "--run-date", "2025-01-13"]
        )
        # A local config path means nothing on the cluster: the job reads the packaged config.
        assert driver["entryPointArguments"] == [*cli, "--env", "local"]
        assert driver["entryPoint"] == "s3://test-bucket/code/medallion_entry.py"
        params = driver["sparkSubmitParameters"].split()
        assert params == [
            "--conf",
            "spark.jars=/usr/share/aws/delta/lib/delta-spark.jar,"
            "/usr/share/aws/delta/lib/delta-storage.jar",
            "--conf",
            "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
            "--conf",
            "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "--conf",
            f"spark.archives={EMR_SETTINGS['emr_venv_uri']}#environment",
            "--conf",
            "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python",
            "--conf",
            "spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python",
            "--conf",
            "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python",
        ]
        assert request["applicationId"] == EMR_SETTINGS["emr_application_id"]
        assert request["executionRoleArn"] == EMR_SETTINGS["emr_execution_role_arn"]
        assert request["name"] == f"medallion-local-{task.task_id}-2025-01-13"
        assert request["executionTimeoutMinutes"] == 90
        assert request["configurationOverrides"] == {
            "monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": "s3://test-bucket/logs/"}
            }
        }
        assert task.aws_conn_id == "aws_medallion"
        assert task.wait_for_completion is True
        assert task.waiter_delay * task.waiter_max_attempts >= 90 * 60


def test_emr_driver_gets_the_configs_non_secret_variables(tmp_path):
    from medallion.orchestration.dag_factory import start_job_run_request

    config = tmp_path / "s3.yaml"
    config.write_text(
        "env: dev\n"
        "lake: {root: 's3://${LAKE_BUCKET}/dev/lake'}\n"
        "alerts: {webhook_url: '${ALERT_WEBHOOK_URL:-}'}\n"
        "warehouse: {type: snowflake, snowflake: {account: '${SF_ACCOUNT}', user: u, "
        "password: '${SF_PASSWORD}', database: D}}\n"
        "airflow: {variant: emr_serverless, emr_application_id: app, emr_execution_role_arn: role,"
        " emr_code_uri: 's3://${LAKE_BUCKET}/code', emr_venv_uri: 's3://${LAKE_BUCKET}/venv.tgz'}\n",
        encoding="utf-8",
    )
    environ = {
        "LAKE_BUCKET": "lake-b",
        "SF_ACCOUNT": "acme",
        "SF_PASSWORD": "hunter2-secret",
        "ALERT_WEBHOOK_URL": "https://hooks.example/abc",
        "UNRELATED": "x",
    }
    from medallion.config import parse_settings
    from medallion.orchestration.dag_factory import build_daily_pipeline

    settings = parse_settings(config.read_text(), str(config), environ)
    dag = build_daily_pipeline(settings, job_names=["bronze_to_silver"], environ=environ)
    request = start_job_run_request(dag.get_task("bronze_to_silver"), RUN_DATE)
    params = request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]

    assert "spark.emr-serverless.driverEnv.LAKE_BUCKET=lake-b" in params
    assert "spark.emr-serverless.driverEnv.SF_ACCOUNT=acme" in params
    assert "hunter2-secret" not in json.dumps(request)
    assert "hooks.example" not in json.dumps(request)
    assert "UNRELATED" not in params
    assert request["jobDriver"]["sparkSubmit"]["entryPointArguments"][-2:] == ["--env", "dev"]
    assert "configurationOverrides" not in request  # no emr_logs_uri configured


def test_committed_job_run_json_is_what_the_operator_sends():
    sys.path.insert(0, str(REPO / "deploy" / "emr_serverless"))
    try:
        import render_job_run
    finally:
        sys.path.pop(0)

    committed = json.loads((REPO / "deploy" / "emr_serverless" / "job_run.json").read_text())

    assert committed == render_job_run.render()
    assert committed["jobDriver"]["sparkSubmit"]["entryPointArguments"] == [
        "run",
        "--job",
        "bronze_to_silver",
        "--run-date",
        "2025-01-13",
        "--env",
        "prod",
    ]


def test_emr_variant_without_its_settings_is_a_config_error(tmp_path):
    config = write_config(tmp_path / "c.yaml", tmp_path / "lake")

    with pytest.raises(ConfigError, match=r"airflow\.emr_application_id"):
        build(config, "emr_serverless")


def test_cap_below_the_retry_delay_is_a_config_error(tmp_path):
    config = write_config(
        tmp_path / "c.yaml", tmp_path / "lake", retry_delay_seconds=600, max_retry_delay_seconds=60
    )

    with pytest.raises(ConfigError, match="max_retry_delay_seconds"):
        build(config)


def test_unknown_variant_is_a_config_error(local_config):
    with pytest.raises(ConfigError, match="unknown DAG variant 'k8s'"):
        build(local_config, "k8s")


def test_dag_from_environment_reads_the_medallion_variables(local_config, tmp_path):
    from medallion.orchestration.dag_factory import dag_from_environment

    dag = dag_from_environment(
        {
            "MEDALLION_CONFIG": str(local_config),
            "MEDALLION_DAG_DEADLINE": "off",
            "MEDALLION_WORKDIR": str(tmp_path),
            "MEDALLION_PYTHON": "/usr/bin/python3.11",
        },
        project_root=REPO,
    )

    assert not dag.deadline
    assert all(t.cwd == str(tmp_path.resolve()) for t in dag.tasks)
    assert all(t.python == "/usr/bin/python3.11" for t in dag.tasks)
    assert dag.default_args["retries"] == 2
