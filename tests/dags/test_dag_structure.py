"""The DAG as declared: tasks, edges, retry and timeout policy, callbacks, deadline, both variants;
depends_on_past, the landing sensors, the deferrable EMR job runs, the publish on the worker and
the gold Assets."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from dag_helpers import (
    DEPENDS_ON_PAST,
    EMR_SETTINGS,
    EXPECTED_TASKS,
    EXPECTED_UPSTREAM,
    FINAL_JOBS,
    INGESTS,
    JOB_TASKS,
    JOB_UPSTREAM,
    LANDING,
    REPO,
    SENSORS,
    sensor_id,
    write_config,
)

from medallion.config import load_settings
from medallion.errors import ConfigError
from medallion.orchestration.callbacks import TASK_FAILED, TASK_RETRY, AlertCallback
from medallion.transforms.gold.catalog import GOLD_TABLES

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
    from medallion.jobs import JOB_MAP
    from medallion.orchestration.dag_factory import pipeline_steps

    steps = pipeline_steps([JOB_MAP[name] for name in FINAL_JOBS])

    assert [s.task_id for s in steps] == JOB_TASKS
    assert {s.task_id: set(s.upstream) for s in steps} == JOB_UPSTREAM
    by_id = {s.task_id: s for s in steps}
    assert by_id["validate"].arguments == ("validate", "--run-date", "{{ ds }}")
    assert by_id["crm_to_bronze"].arguments == (
        *("run", "--job", "crm_to_bronze", "--run-date", "{{ ds }}"),
    )
    assert {s.task_id for s in steps if s.depends_on_past} == DEPENDS_ON_PAST
    assert {s.task_id for s in steps if not s.spark} == {"publish_gold_to_snowflake"}
    assert {s.task_id: [w.table for w in s.landing] for s in steps if s.landing} == LANDING
    [stream] = by_id["kafka_events_to_bronze"].landing
    assert (stream.key, stream.optional) == ("landing/kafka/order_events/dt={{ ds }}/*.jsonl", True)
    [fx] = by_id["fx_json_to_bronze"].landing
    assert (fx.task_id, fx.key, fx.optional) == (
        "landing_fx_fx_rates",
        "landing/fx/fx_rates/dt={{ ds }}/_control.json",
        False,
    )


def test_graph_without_publish_validates_last():
    from medallion.jobs.base import Job
    from medallion.orchestration.dag_factory import pipeline_steps

    def job(name: str, **kwargs) -> Job:
        return Job(name, "a job", run=lambda context: None, **kwargs)  # type: ignore[arg-type,return-value]

    steps = pipeline_steps(
        [job("a_to_bronze", ingest=True), job("b_to_bronze", ingest=True), job("bronze_to_silver")]
    )

    assert [(s.task_id, set(s.upstream), s.depends_on_past) for s in steps] == [
        ("a_to_bronze", set(), False),
        ("b_to_bronze", set(), False),
        ("bronze_to_silver", {"a_to_bronze", "b_to_bronze"}, True),
        ("validate", {"bronze_to_silver"}, True),
    ]


def test_an_unknown_job_is_a_config_error(local_config):
    with pytest.raises(ConfigError, match="unknown job"):
        build(local_config, job_names=["no_such_job"])


@pytest.mark.parametrize("variant", ["local", "emr_serverless"])
def test_tasks_and_dependencies(variant, local_config, emr_config):
    dag = build(local_config if variant == "local" else emr_config)

    assert [t.task_id for t in dag.tasks] == EXPECTED_TASKS
    assert {t.task_id: set(t.upstream_task_ids) for t in dag.tasks} == EXPECTED_UPSTREAM
    types = {t.task_id: type(t).__name__ for t in dag.tasks}
    # The test configs keep the lake on local disk, so both variants watch it with FileSensors.
    assert {types[sensor] for sensor in SENSORS} == {"FileSensor"}
    spark_type = "MedallionCliOperator" if variant == "local" else "EmrServerlessStartJobOperator"
    assert {task: types[task] for task in JOB_TASKS} == {
        **{task: spark_type for task in JOB_TASKS},
        # The publish needs no Spark (it reads gold with deltalake): never an EMR job run.
        "publish_gold_to_snowflake": "MedallionCliOperator",
    }


@pytest.mark.parametrize("variant", ["local", "emr_serverless"])
def test_only_the_batch_ingests_and_sensors_run_regardless_of_the_previous_day(
    variant, local_config, emr_config
):
    dag = build(local_config if variant == "local" else emr_config)

    assert {t.task_id: t.depends_on_past for t in dag.tasks} == {
        task: task in DEPENDS_ON_PAST for task in EXPECTED_TASKS
    }
    assert dag.default_args["depends_on_past"] is False


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
        if task.task_id not in SENSORS:  # a sensor's runs to its own timeout (below)
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
    emr_tasks = [t for t in dag.tasks if type(t).__name__ == "EmrServerlessStartJobOperator"]

    assert [t.task_id for t in emr_tasks] == [*FINAL_JOBS[:7], "validate"]
    for task in emr_tasks:
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
        # Deferrable: the worker submits the job run and frees its slot; the triggerer polls it
        # every 30 s, for as long as the execution timeout.
        assert task.deferrable is True
        assert task.waiter_delay == 30
        assert 90 * 60 <= task.waiter_delay * task.waiter_max_attempts <= 90 * 60 + 60


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
    cli_tasks = [dag.get_task(task) for task in JOB_TASKS]
    assert all(t.cwd == str(tmp_path.resolve()) for t in cli_tasks)
    assert all(t.python == "/usr/bin/python3.11" for t in cli_tasks)
    assert dag.default_args["retries"] == 2


# --- the landing sensors -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["local", "emr_serverless"])
def test_each_ingest_waits_for_its_landing_tables_with_a_deferrable_sensor(
    variant, local_config, emr_config, tmp_path
):
    dag = build(local_config if variant == "local" else emr_config)
    lake = (tmp_path / "lake").resolve()

    for task_id, table in SENSORS.items():
        sensor = dag.get_task(task_id)
        sensor.render_template_fields({"ds": RUN_DATE.isoformat()})
        marker = "*.jsonl" if table == "kafka/order_events" else "_control.json"
        assert sensor.filepath == f"{lake}/landing/{table}/dt=2025-01-13/{marker}"
        assert sensor.fs_conn_id == "fs_default"
        assert sensor.deferrable is True
        # Defaults: a delivery may take 3 hours; the triggerer looks every 5 minutes.
        assert sensor.timeout == dt.timedelta(minutes=180).total_seconds()
        assert sensor.poke_interval == 300
        assert sensor.execution_timeout == dt.timedelta(minutes=185)
        # A quiet stream is no missing delivery: its sensor is skipped, not failed.
        assert sensor.soft_fail is (table == "kafka/order_events")
    for job in INGESTS:
        expected = "none_failed" if job == "kafka_events_to_bronze" else "all_success"
        assert dag.get_task(job).trigger_rule == expected
    assert dag.get_task("bronze_to_silver").trigger_rule == "all_success"


def test_sensor_timeout_and_interval_come_from_the_config(tmp_path):
    config = write_config(
        tmp_path / "c.yaml",
        tmp_path / "lake",
        landing_timeout_minutes=30,
        landing_poke_seconds=15,
        landing_deferrable="false",
        landing_fs_conn_id="fs_lake",
    )
    sensor = build(config).get_task(sensor_id("crm/accounts"))

    assert (sensor.timeout, sensor.poke_interval) == (30 * 60, 15)
    assert sensor.deferrable is False
    assert sensor.fs_conn_id == "fs_lake"
    # Poking in a worker, the sensor's own timeout (never retried) comes first.
    assert sensor.execution_timeout == dt.timedelta(minutes=30, seconds=15)


def test_the_sensor_defers_to_the_triggerer_with_its_timeout(tmp_path, monkeypatch):
    from airflow.providers.standard.triggers.file import FileTrigger
    from airflow.sdk.exceptions import TaskDeferred

    monkeypatch.setenv("AIRFLOW_CONN_FS_DEFAULT", json.dumps({"conn_type": "fs"}))
    config = write_config(tmp_path / "c.yaml", tmp_path / "lake", landing_timeout_minutes=45)
    sensor = build(config).get_task(sensor_id("fx/fx_rates"))
    sensor.render_template_fields({"ds": RUN_DATE.isoformat()})

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert isinstance(deferred.value.trigger, FileTrigger)
    assert deferred.value.trigger.filepath == sensor.filepath
    assert deferred.value.timeout == dt.timedelta(minutes=45)

    # Once the delivery's control file is there, the sensor succeeds at once.
    landed = Path(sensor.filepath)
    landed.parent.mkdir(parents=True)
    landed.write_text('{"files": {}}', encoding="utf-8")
    assert sensor.execute({}) is None


def test_a_missing_delivery_times_out_and_is_not_retried(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowSensorTimeout

    monkeypatch.setenv("AIRFLOW_CONN_FS_DEFAULT", json.dumps({"conn_type": "fs"}))
    config = write_config(tmp_path / "c.yaml", tmp_path / "lake", landing_deferrable="false")
    sensor = build(config).get_task(sensor_id("crm/accounts"))
    sensor.render_template_fields({"ds": RUN_DATE.isoformat()})
    sensor.timeout, sensor.poke_interval = 0.5, 0.1

    # AirflowSensorTimeout is one of the exceptions Airflow fails a task on without a retry.
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({"ti": None})


def test_on_s3_the_sensors_are_deferrable_s3_key_sensors(tmp_path):
    dag = build_s3(tmp_path)
    expected = "s3://lake-b/prod/lake/landing/{table}/dt=2025-01-13/{marker}"

    for task_id, table in SENSORS.items():
        sensor = dag.get_task(task_id)
        sensor.render_template_fields({"ds": RUN_DATE.isoformat()})
        stream = table == "kafka/order_events"
        assert type(sensor).__name__ == "S3KeySensor"
        assert sensor.bucket_key == expected.format(
            table=table, marker="*.jsonl" if stream else "_control.json"
        )
        assert sensor.wildcard_match is stream
        assert sensor.deferrable is True
        assert sensor.aws_conn_id == "aws_prod"
        assert (sensor.timeout, sensor.poke_interval) == (180 * 60, 300)


# --- the publish in the EMR variant, and the Assets ----------------------------------------------


def build_s3(tmp_path: Path):
    """The EMR variant of a prod-like config: the lake on S3, Snowflake as the warehouse."""
    from medallion.config import parse_settings
    from medallion.orchestration.dag_factory import build_daily_pipeline

    config = tmp_path / "prod.yaml"
    config.write_text(
        "env: prod\n"
        "lake: {root: 's3://lake-b/prod/lake/'}\n"
        "warehouse: {type: snowflake, publish: [dim_customer, fact_orders], snowflake: "
        "{account: acme-eu1, user: u, password: '${SF_PASSWORD}', database: medallion, "
        "schema: gold}}\n"
        "airflow: {variant: emr_serverless, emr_application_id: app, emr_execution_role_arn: role,"
        " emr_code_uri: 's3://lake-b/code', emr_venv_uri: 's3://lake-b/venv.tgz',"
        " aws_conn_id: aws_prod}\n",
        encoding="utf-8",
    )
    environ = {"SF_PASSWORD": "hunter2-secret"}
    settings = parse_settings(config.read_text(), str(config), environ)
    return build_daily_pipeline(
        settings, job_names=FINAL_JOBS, environ=environ, workdir=tmp_path, python="/srv/py"
    )


def test_emr_variant_publishes_from_the_worker_not_from_an_emr_job(tmp_path):
    dag = build_s3(tmp_path)
    publish = dag.get_task("publish_gold_to_snowflake")
    publish.render_template_fields({"ds": RUN_DATE.isoformat()})

    assert type(publish).__name__ == "MedallionCliOperator"
    # The CLI on the Airflow worker, with the config the DAG was built from: it loads the same
    # settings (and reads the worker's environment for the Snowflake credentials).
    assert publish.command == [
        *("/srv/py", "-m", "medallion", "run", "--job", "publish_gold_to_snowflake"),
        *("--run-date", "2025-01-13", "--env", "prod", "--config", str(tmp_path / "prod.yaml")),
    ]
    assert publish.cwd == str(tmp_path.resolve())
    assert publish.env == {}
    assert "hunter2-secret" not in json.dumps(publish.command)
    # The jobs that need Spark stay EMR Serverless job runs.
    gold = dag.get_task("silver_to_gold")
    assert type(gold).__name__ == "EmrServerlessStartJobOperator"
    assert gold.deferrable is True


def test_gold_tables_are_assets_of_the_gold_job_and_the_publish_on_s3_and_snowflake(tmp_path):
    dag = build_s3(tmp_path)

    gold = {(a.name, a.uri) for a in dag.get_task("silver_to_gold").outlets}
    assert gold == {
        (f"medallion.gold.{table}", f"s3://lake-b/prod/lake/gold/{table}") for table in GOLD_TABLES
    }
    # Only the tables warehouse.publish names are published.
    assert [(a.name, a.uri) for a in dag.get_task("publish_gold_to_snowflake").outlets] == [
        ("medallion.warehouse.dim_customer", "snowflake://acme-eu1/MEDALLION/GOLD/DIM_CUSTOMER"),
        ("medallion.warehouse.fact_orders", "snowflake://acme-eu1/MEDALLION/GOLD/FACT_ORDERS"),
    ]
    others = [
        t for t in dag.tasks if t.task_id not in {"silver_to_gold", "publish_gold_to_snowflake"}
    ]
    assert all(not t.outlets for t in others)


def test_local_assets_name_the_lake_folder_and_the_duckdb_file(local_config, tmp_path):
    dag = build(local_config)
    lake = (tmp_path / "lake").resolve()

    assert [a.uri for a in dag.get_task("silver_to_gold").outlets] == [
        f"file://{lake}/gold/{table}" for table in GOLD_TABLES
    ]
    assert [a.uri for a in dag.get_task("publish_gold_to_snowflake").outlets] == [
        f"duckdb://localhost{lake}/warehouse.duckdb/main/{table}" for table in GOLD_TABLES
    ]


def test_a_downstream_dag_can_schedule_on_the_published_tables(local_config):
    from airflow.sdk import DAG, Asset

    published = build(local_config).get_task("publish_gold_to_snowflake").outlets
    downstream = DAG("reports", schedule=[Asset(uri=a.uri, name=a.name) for a in published[:2]])

    assert {a.uri for a in downstream.timetable.asset_condition.objects} == {
        a.uri for a in published[:2]
    }
