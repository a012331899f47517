"""Builds the ``daily_pipeline`` Airflow DAG from the configuration: one factory, two variants.

* ``local``: each task runs the unified CLI (``python -m medallion run --job JOB --run-date
  {{ ds }} --env ENV --config PATH``) in a subprocess, in a fixed working directory. Exit code 0
  succeeds; 1 (the job ran and failed) fails the try and is retried, unless it is the quality
  gate's verdict on the data; 2 (bad usage or configuration) fails the task at once: no retry
  can fix either of those.
* ``emr_serverless``: each Spark task is a deferrable ``EmrServerlessStartJobOperator`` that
  submits the small ``medallion_entry.py`` with the same CLI arguments and ships the packed
  virtual environment with ``spark.archives`` (see deploy/emr_serverless and docs/DEPLOY.md). A
  job that needs no Spark (``Job.needs_spark``: the warehouse publish reads gold with
  ``deltalake``) runs the CLI on the Airflow worker instead, as in the local variant.

The graph is the JOB_MAP's: each ingest waits for its landing tables' delivery (a deferrable
sensor per table: ``FileSensor`` locally, ``S3KeySensor`` on S3), the ingests run in parallel,
then the remaining jobs in registry order, with ``validate`` (``medallion validate``) just before
the warehouse publish so that a failed blocking check stops the publish. Every task that carries
state across dates (everything but the batch ingests) has ``depends_on_past``: day D+1 waits for
day D to succeed. Every task gets retries with exponential backoff and a cap, an execution
timeout, and failure and retry alerts; the DAG run gets a deadline alert. Silver_to_gold and the
publish declare the gold tables (in the lake and in the warehouse) as Assets they update.

``{{ ds }}`` is the day whose extracts a run processes: the schedule is a data-interval timetable,
so the run for 2025-01-13 starts after that day ends (as in Airflow 2), and
``airflow dags test daily_pipeline 2025-01-13`` or a backfill over a date range process exactly
those dates.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    AsyncCallback,
    BaseOperator,
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
)
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from medallion.chain import GATE_FAILED, VALIDATE, gate_position
from medallion.config import AirflowConfig, Settings, load_settings, read_text
from medallion.contracts.control import CONTROL_FILE
from medallion.errors import ConfigError
from medallion.jobs.base import Job
from medallion.orchestration.callbacks import deadline_missed, on_task_failure, on_task_retry

DAG_ID = "daily_pipeline"
VARIANTS = ("local", "emr_serverless")
VALIDATE_TASK = VALIDATE
RUN_DATE = "{{ ds }}"
# The first day of the synthetic extracts; with catchup off it only bounds manual backfills.
START_DATE = dt.datetime(2025, 1, 13, tzinfo=dt.UTC)
BACKOFF_MULTIPLIER = 2.0
EXIT_USAGE = 2
ENTRY_POINT = "medallion_entry.py"
# spark.archives unpacks the environment under this alias in every driver and executor.
ENV_ALIAS = "environment"
ENV_PYTHON = f"./{ENV_ALIAS}/bin/python"
EMR_WAITER_DELAY_S = 30
# A stream's day folder has no control file: its sensor waits for the first micro-batch file.
STREAM_FILES = "*.jsonl"
LANDING_TASK_PREFIX = "landing_"
DEADLINE_OFF = {"off", "0", "false", "no", "disabled"}
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
# Variables that hold secrets are never copied into a job run's (visible) configuration.
SECRET_NAME = re.compile(
    r"PASSWORD|PASSPHRASE|SECRET|TOKEN|WEBHOOK|CREDENTIAL|API_KEY|ACCESS_KEY", re.I
)


# --- the graph (pure: no Airflow objects) -------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One task of the pipeline: its id, the CLI arguments (after ``medallion``) and upstreams.

    ``depends_on_past``: the run for date D waits until D-1's run of this task succeeded (the
    task reads state an earlier date left). ``spark``: it needs a Spark cluster (on EMR
    Serverless it is a job run; otherwise the CLI runs on the Airflow worker). ``landing``: the
    waits for the deliveries it reads.
    """

    task_id: str
    arguments: tuple[str, ...]
    upstream: tuple[str, ...] = ()
    depends_on_past: bool = True
    spark: bool = True
    landing: tuple[LandingWait, ...] = ()


@dataclass(frozen=True)
class LandingWait:
    """A sensor for one landing table's delivery for ``{{ ds }}``.

    ``key`` is relative to the lake root. A batch delivery is complete when its control file is
    there (the export writes it last, with the record counts bronze reconciles). A stream has no
    control file: its sensor waits for the day's first micro-batch file, and ``optional`` lets
    the stream's ingest run without it when none comes (a quiet topic is not a missing delivery;
    the anomaly gate judges the day's volume).
    """

    task_id: str
    table: str
    key: str
    optional: bool = False


def landing_waits(job: Job) -> tuple[LandingWait, ...]:
    """One sensor per landing table ``job`` reads for the run date."""
    marker = STREAM_FILES if job.streaming else CONTROL_FILE
    return tuple(
        LandingWait(
            task_id=LANDING_TASK_PREFIX + table.replace("/", "_"),
            table=table,
            key=f"landing/{table}/dt={RUN_DATE}/{marker}",
            optional=job.streaming,
        )
        for table in job.landing
    )


def pipeline_steps(jobs: Sequence[Job]) -> list[Step]:
    """The DAG's tasks and edges for the registry's jobs, in order.

    Ingests have no upstream job (only their landing sensors); every later job depends on the
    one before it, the first of them on every ingest; ``validate`` runs right before the first
    publish job (or last, when there is none). Every step but a batch ingest depends on its
    past: a batch ingest replaces its own date's bronze partition and reads nothing an earlier
    date left, while every other step builds on state the previous date's run left (a stream's
    checkpoint, silver's current state, gold's SCD2 history, the warehouse's merged rows).
    """
    ingests = [job for job in jobs if job.ingest]
    later = [job for job in jobs if not job.ingest]
    downstream: list[Job | None] = list(later)
    downstream.insert(gate_position([job.name for job in later]), None)

    steps = [
        Step(
            job.name,
            _run_args(job.name),
            depends_on_past=not job.independent_dates,
            spark=job.needs_spark,
            landing=landing_waits(job),
        )
        for job in ingests
    ]
    previous: tuple[str, ...] = tuple(job.name for job in ingests)
    for job in downstream:
        if job is None:  # the quality gate: medallion validate, on Spark
            step = Step(VALIDATE_TASK, ("validate", "--run-date", RUN_DATE), previous)
        else:
            step = Step(job.name, _run_args(job.name), previous, spark=job.needs_spark)
        steps.append(step)
        previous = (step.task_id,)
    return steps


def _run_args(job: str) -> tuple[str, ...]:
    return ("run", "--job", job, "--run-date", RUN_DATE)


# --- the local variant --------------------------------------------------------------------------


class MedallionCliOperator(BaseOperator):
    """Runs ``python -m medallion ARGUMENTS`` in a subprocess; its output goes to the task log.

    Exit 0 succeeds. Exit 2 (bad usage or configuration) and a failed quality gate (exit 1 with
    the gate's message as the last line) raise ``AirflowFailException``: no retry can fix them,
    and retrying a gate that failed on the data would only delay the alert by the backoff. Any
    other exit code fails the try, which Airflow retries. A timeout or a kill terminates the
    whole process group, Spark's JVM included.
    """

    template_fields: Sequence[str] = ("arguments",)
    ui_color = "#f4e3c1"

    def __init__(
        self,
        *,
        arguments: Sequence[str],
        python: str,
        cwd: str,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.arguments = list(arguments)
        self.python = python
        self.cwd = cwd
        self.env = dict(env or {})
        self._hook = None

    @property
    def command(self) -> list[str]:
        return [self.python, "-m", "medallion", *self.arguments]

    def execute(self, context: Any) -> int:
        from airflow.providers.standard.hooks.subprocess import SubprocessHook

        env = {**os.environ, **self.env}
        # Spark's Python workers must be this interpreter, not whatever "python3" is on the PATH.
        env.setdefault("PYSPARK_PYTHON", self.python)
        self._hook = SubprocessHook()
        result = self._hook.run_command(command=self.command, env=env, cwd=self.cwd)
        if result.exit_code == 0:
            return 0
        summary = f"`medallion {shlex.join(self.arguments)}` exited with code {result.exit_code}"
        detail = f": {result.output}" if result.output else ""
        if result.exit_code == EXIT_USAGE:
            raise AirflowFailException(
                f"{summary} (bad usage or configuration; not retried){detail}"
            )
        if GATE_FAILED in (result.output or ""):
            raise AirflowFailException(
                f"{summary} (the data failed the quality gate; not retried: fix the delivery "
                f"and clear the task, or accept the anomalies as docs/ORCHESTRATION.md says){detail}"
            )
        raise AirflowException(f"{summary}{detail}")

    def on_kill(self) -> None:
        if self._hook is not None:
            self._hook.send_sigterm()


# --- the EMR Serverless variant -----------------------------------------------------------------


# Delta Lake on EMR Serverless (emr-spark-8.1.0 bundles Delta 4.2.0): the image's own jars, named
# at submit time so the driver's JVM starts with them (AWS, "Using Delta Lake OSS with EMR
# Serverless"). Nothing Delta is shipped in the packed environment.
EMR_DELTA_JARS = (
    "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar"
)
EMR_DELTA_CONF = {
    "spark.jars": EMR_DELTA_JARS,
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def emr_spark_submit_parameters(venv_uri: str, driver_env: Mapping[str, str] | None = None) -> str:
    """``sparkSubmitParameters``: the image's Delta jars and settings, the packed environment,
    and both sides on its Python.

    ``driver_env`` adds environment variables for the driver (where the config is loaded).
    """
    conf = {
        **EMR_DELTA_CONF,
        "spark.archives": f"{venv_uri}#{ENV_ALIAS}",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": ENV_PYTHON,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": ENV_PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": ENV_PYTHON,
    }
    for name, value in sorted((driver_env or {}).items()):
        conf[f"spark.emr-serverless.driverEnv.{name}"] = value
    return " ".join(f"--conf {key}={value}" for key, value in conf.items())


def emr_job_driver(
    arguments: Sequence[str], airflow: AirflowConfig, driver_env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The StartJobRun ``jobDriver`` for one CLI invocation."""
    return {
        "sparkSubmit": {
            "entryPoint": f"{_strip(airflow.emr_code_uri)}/{ENTRY_POINT}",
            "entryPointArguments": list(arguments),
            "sparkSubmitParameters": emr_spark_submit_parameters(
                airflow.emr_venv_uri or "", driver_env
            ),
        }
    }


def forwarded_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The non-secret variables the config references, with their values here.

    On EMR Serverless the job loads the same config (the copy in the package, or the s3:// one)
    and interpolates the same ``${NAME}`` references, so the driver needs the same values. Secret
    ones (passwords, keys, tokens, webhooks) are left out: a job run's configuration is visible
    to anyone who can describe it.
    """
    source = settings.source
    if "://" not in source and not Path(source).is_file():
        return {}
    names = sorted({match.group(1) for match in ENV_REFERENCE.finditer(read_text(source))})
    forwarded = {n: environ[n] for n in names if n in environ and not SECRET_NAME.search(n)}
    for name, value in forwarded.items():
        if not value or any(ch.isspace() for ch in value):
            raise ConfigError(
                f"environment variable {name} (referenced by '{source}') is empty or contains "
                "whitespace and cannot be passed to EMR Serverless in sparkSubmitParameters"
            )
    return forwarded


def emr_configuration_overrides(airflow: AirflowConfig) -> dict[str, Any] | None:
    if not airflow.emr_logs_uri:
        return None
    return {
        "monitoringConfiguration": {
            "s3MonitoringConfiguration": {"logUri": f"{_strip(airflow.emr_logs_uri)}/"}
        }
    }


def _check_emr(airflow: AirflowConfig, source: str) -> None:
    required = ("emr_application_id", "emr_execution_role_arn", "emr_code_uri", "emr_venv_uri")
    missing = [f"airflow.{key}" for key in required if not getattr(airflow, key)]
    if missing:
        raise ConfigError(
            f"config '{source}' selects the emr_serverless DAG variant but does not set "
            f"{', '.join(missing)}"
        )


def _strip(uri: str | None) -> str:
    return (uri or "").rstrip("/")


# --- the factory --------------------------------------------------------------------------------


def build_daily_pipeline(
    settings: Settings,
    variant: str | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    python: str | None = None,
    deadline: bool = True,
    job_names: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> DAG:
    """The ``daily_pipeline`` DAG for ``settings`` (variant from ``settings.airflow.variant``).

    ``workdir`` is where local tasks run (relative lake paths resolve against it; default: the
    current directory); ``python`` the interpreter they run (default: this one); ``deadline``
    switches the DAG-run deadline alert; ``job_names`` defaults to the JOB_MAP's; ``environ``
    (default ``os.environ``) supplies the values the EMR driver needs for the config's variables.
    """
    airflow = settings.airflow
    variant = variant or airflow.variant
    if variant not in VARIANTS:
        raise ConfigError(f"unknown DAG variant '{variant}'; choose one of {', '.join(VARIANTS)}")
    if airflow.max_retry_delay_seconds < airflow.retry_delay_seconds:
        raise ConfigError(
            f"config '{settings.source}': airflow.max_retry_delay_seconds "
            f"({airflow.max_retry_delay_seconds}) is below airflow.retry_delay_seconds "
            f"({airflow.retry_delay_seconds})"
        )
    from medallion.jobs import JOB_MAP

    if job_names is None:
        job_names = list(JOB_MAP)
    unknown = [name for name in job_names if name not in JOB_MAP]
    if unknown:
        raise ConfigError(f"unknown job(s) {', '.join(unknown)}; jobs are: {', '.join(JOB_MAP)}")
    config = _config_argument(settings, variant)
    # Callbacks run on the Airflow side, which reads the config the DAG was built from.
    alert_config = _local_config(settings.source)

    default_args = {
        "owner": "data-platform",
        "depends_on_past": False,
        "retries": airflow.retries,
        "retry_delay": dt.timedelta(seconds=airflow.retry_delay_seconds),
        "retry_exponential_backoff": BACKOFF_MULTIPLIER,
        "max_retry_delay": dt.timedelta(seconds=airflow.max_retry_delay_seconds),
        "execution_timeout": dt.timedelta(minutes=airflow.execution_timeout_minutes),
        "on_failure_callback": [on_task_failure(settings.env, alert_config)],
        "on_retry_callback": [on_task_retry(settings.env, alert_config)],
    }
    deadline_alert = None
    if deadline:
        deadline_alert = DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=dt.timedelta(minutes=airflow.deadline_minutes),
            callback=AsyncCallback(
                deadline_missed, kwargs={"env": settings.env, "config": alert_config}
            ),
        )
    dag = DAG(
        dag_id=DAG_ID,
        description="medallion daily chain: landing -> bronze -> silver -> gold -> validate -> warehouse",
        doc_md=__doc__,
        schedule=_schedule(airflow.schedule),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        max_active_tasks=_max_active_tasks(variant),
        default_args=default_args,
        deadline=deadline_alert,
        tags=["medallion", settings.env, variant],
    )
    steps = pipeline_steps([JOB_MAP[name] for name in job_names])
    extra = _cli_suffix(settings.env, config)
    driver_env = (
        forwarded_environment(settings, os.environ if environ is None else environ)
        if variant == "emr_serverless"
        else {}
    )
    cwd = Path(workdir or os.getcwd()).resolve()
    lake_root = lake_location(settings, cwd)
    outlets = {
        "silver_to_gold": lake_gold_assets(lake_root),
        "publish_gold_to_snowflake": warehouse_assets(settings, cwd),
    }
    with dag:
        tasks: dict[str, BaseOperator] = {}
        for step in steps:
            sensors = [_landing_sensor(wait, lake_root, airflow) for wait in step.landing]
            arguments = (*step.arguments, *extra)
            common: dict[str, Any] = {
                "task_id": step.task_id,
                "depends_on_past": step.depends_on_past,
                "outlets": outlets.get(step.task_id, []),
            }
            if any(wait.optional for wait in step.landing):
                # A stream's sensor that found no file by its timeout is skipped, not failed.
                common["trigger_rule"] = "none_failed"
            if variant == "emr_serverless" and step.spark:
                tasks[step.task_id] = _emr_task(arguments, settings, driver_env, **common)
            else:
                # Locally every job; on EMR Serverless the jobs that need no Spark (the
                # warehouse publish), on the Airflow worker with the config the DAG was built
                # from: the CLI loads the same settings the DAG has.
                cli_arguments = (
                    arguments
                    if variant == "local"
                    else (
                        *step.arguments,
                        *_cli_suffix(settings.env, _local_config(settings.source)),
                    )
                )
                tasks[step.task_id] = MedallionCliOperator(
                    arguments=cli_arguments,
                    python=python or sys.executable,
                    cwd=str(cwd),
                    **common,
                )
            for upstream in step.upstream:
                tasks[upstream] >> tasks[step.task_id]
            sensors >> tasks[step.task_id]
    return dag


# --- landing sensors and assets -----------------------------------------------------------------


def lake_location(settings: Settings, cwd: Path) -> str:
    """The lake root without a trailing slash: a URI (``s3://…``) as configured, or a local
    folder as an absolute path, resolved against ``cwd`` (where the local tasks run)."""
    root = settings.lake.root
    if "://" in root:
        return root.rstrip("/")
    return str((cwd / root).resolve())


def _landing_sensor(wait: LandingWait, lake_root: str, airflow: AirflowConfig) -> BaseOperator:
    """A deferrable sensor for one delivery: it waits in the triggerer, not in a worker slot.

    Its timeout (``airflow.landing_timeout_minutes``) fails it for good, without retries: a
    delivery that has not come will not come sooner on a retry (Airflow never retries a sensor
    timeout). Retries stay for real errors (S3 throttled, a credential refreshing).
    """
    timeout = dt.timedelta(minutes=airflow.landing_timeout_minutes)
    poke = dt.timedelta(seconds=airflow.landing_poke_seconds)
    common: dict[str, Any] = {
        "task_id": wait.task_id,
        "deferrable": airflow.landing_deferrable,
        "timeout": timeout,
        "poke_interval": poke,
        # Poking in a worker (landing_deferrable off) must reach the sensor's own timeout, which
        # is never retried, before the task's execution timeout, which would be.
        "execution_timeout": timeout + poke,
        "soft_fail": wait.optional,
        "depends_on_past": False,
    }
    key = f"{lake_root}/{wait.key}"
    if lake_root.startswith("s3://"):
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

        return S3KeySensor(
            bucket_key=key,
            wildcard_match="*" in wait.key,
            aws_conn_id=airflow.aws_conn_id,
            **common,
        )
    if "://" in lake_root:
        raise ConfigError(
            f"lake.root '{lake_root}' is neither a local folder nor on s3://: the DAG's landing "
            "sensors cannot watch it"
        )
    from airflow.providers.standard.sensors.filesystem import FileSensor

    return FileSensor(
        filepath=key,
        fs_conn_id=airflow.landing_fs_conn_id,
        **common,
    )


def lake_gold_assets(lake_root: str) -> list[Asset]:
    """The gold tables in the lake, as the Assets ``silver_to_gold`` updates: their folders'
    URIs (``s3://…/gold/<table>``, or ``file:///…/gold/<table>`` for a local lake)."""
    from medallion.transforms.gold.catalog import GOLD_TABLES

    base = lake_root if "://" in lake_root else Path(lake_root).as_uri()
    return [
        Asset(name=f"medallion.gold.{table}", uri=f"{base}/gold/{table}") for table in GOLD_TABLES
    ]


def warehouse_assets(settings: Settings, cwd: Path) -> list[Asset]:
    """The warehouse tables the publish updates (``warehouse.publish``, else every gold table),
    as Assets: ``snowflake://<account>/<DATABASE>/<SCHEMA>/<TABLE>`` (the Snowflake provider's
    URI form, identifiers as Snowflake resolves them unquoted) or, for DuckDB,
    ``duckdb://localhost/<absolute file path>/<schema>/<table>`` (the file on this host)."""
    from medallion.transforms.gold.catalog import GOLD_TABLES

    warehouse = settings.warehouse
    tables = list(dict.fromkeys(warehouse.publish or GOLD_TABLES))
    if warehouse.type == "snowflake" and warehouse.snowflake is not None:
        sf = warehouse.snowflake
        base = f"snowflake://{sf.account}/{sf.database.upper()}/{sf.schema_.upper()}"
        uris = {table: f"{base}/{table.upper()}" for table in tables}
    else:
        path = Path(warehouse.duckdb.path)
        database = path if path.is_absolute() else (cwd / path).resolve()
        uris = {
            table: f"duckdb://localhost{database.as_posix()}/{warehouse.duckdb.schema_}/{table}"
            for table in tables
        }
    return [Asset(name=f"medallion.warehouse.{table}", uri=uri) for table, uri in uris.items()]


def dag_from_environment(environ: Mapping[str, str], project_root: str | os.PathLike[str]) -> DAG:
    """The DAG that ``dags/daily_pipeline.py`` exposes, configured by environment variables.

    ``MEDALLION_ENV`` (default local), ``MEDALLION_CONFIG`` (default
    ``<project_root>/config/<env>.yaml``, else the copy in the package), ``MEDALLION_DAG_VARIANT``
    (overrides ``airflow.variant``), ``MEDALLION_DAG_DEADLINE=off`` (no deadline alert),
    ``MEDALLION_WORKDIR`` (default ``project_root``), ``MEDALLION_PYTHON`` (default: this one).
    """
    root = Path(project_root).resolve()
    env = environ.get("MEDALLION_ENV") or "local"
    config = environ.get("MEDALLION_CONFIG") or None
    if config is None and (root / "config" / f"{env}.yaml").is_file():
        config = str(root / "config" / f"{env}.yaml")
    settings = load_settings(env, config)
    return build_daily_pipeline(
        settings,
        environ.get("MEDALLION_DAG_VARIANT") or None,
        workdir=environ.get("MEDALLION_WORKDIR") or root,
        python=environ.get("MEDALLION_PYTHON") or None,
        deadline=environ.get("MEDALLION_DAG_DEADLINE", "on").strip().lower() not in DEADLINE_OFF,
        environ=environ,
    )


def _emr_task(
    arguments: Sequence[str],
    settings: Settings,
    driver_env: Mapping[str, str],
    *,
    task_id: str,
    **kwargs: Any,
) -> BaseOperator:
    """A deferrable EMR Serverless job run: the worker submits it and frees its slot; the
    triggerer polls the job run every ``EMR_WAITER_DELAY_S`` until it ends or the execution
    timeout passes (then the job run is cancelled; it also stops itself at the same time)."""
    from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

    airflow = settings.airflow
    _check_emr(airflow, settings.source)
    timeout_s = airflow.execution_timeout_minutes * 60
    return EmrServerlessStartJobOperator(
        task_id=task_id,
        application_id=airflow.emr_application_id,
        execution_role_arn=airflow.emr_execution_role_arn,
        job_driver=emr_job_driver(arguments, airflow, driver_env),
        configuration_overrides=emr_configuration_overrides(airflow),
        name=f"medallion-{settings.env}-{task_id}-{RUN_DATE}",
        # The job run stops itself at the same time as the task; tags for cost allocation.
        config={
            "executionTimeoutMinutes": airflow.execution_timeout_minutes,
            "tags": {"project": "medallion", "env": settings.env, "task": task_id},
        },
        aws_conn_id=airflow.aws_conn_id,
        wait_for_completion=True,
        deferrable=True,
        waiter_delay=EMR_WAITER_DELAY_S,
        waiter_max_attempts=math.ceil(timeout_s / EMR_WAITER_DELAY_S) + 1,
        **kwargs,
    )


def _config_argument(settings: Settings, variant: str) -> str | None:
    """What to pass as ``--config``: an absolute local path, an s3:// URI, or nothing.

    On EMR Serverless a local path means nothing to the cluster: the job reads the copy of the
    config shipped in the package (``--env`` picks it) unless the config lives on S3.
    """
    source = settings.source
    if "://" in source:
        return source
    return None if variant == "emr_serverless" else _local_config(source)


def _local_config(source: str) -> str | None:
    """``source`` as an absolute path or URI, or None when it is not a file (built-in defaults)."""
    if "://" in source:
        return source
    return str(Path(source).resolve()) if Path(source).is_file() else None


def _cli_suffix(env: str, config: str | None) -> tuple[str, ...]:
    return ("--env", env, *(("--config", config) if config else ()))


def _schedule(schedule: str) -> CronDataIntervalTimetable | None:
    if schedule.strip().lower() in {"", "none", "null", "manual"}:
        return None
    return CronDataIntervalTimetable(schedule.strip(), timezone="UTC")


def _max_active_tasks(variant: str) -> int:
    # Locally every task is a Spark driver on this machine: at most one per core (and the five
    # ingests at most). On EMR Serverless the application's capacity is the limit.
    return max(1, min(5, os.cpu_count() or 1)) if variant == "local" else 16


def start_job_run_request(task: BaseOperator, logical_date: dt.date) -> dict[str, Any]:
    """The StartJobRun request an EMR Serverless task sends for ``logical_date``.

    Renders the task's templates (it changes ``task``) and assembles the request the way
    ``EmrServerlessStartJobOperator.execute`` does, less the random ``clientToken``.
    """
    day = dt.datetime.combine(logical_date, dt.time(), tzinfo=dt.UTC)
    context = {
        "ds": logical_date.isoformat(),
        "ds_nodash": logical_date.strftime("%Y%m%d"),
        "logical_date": day,
        "data_interval_start": day,
        "data_interval_end": day + dt.timedelta(days=1),
    }
    task.render_template_fields(context)  # type: ignore[arg-type]
    request: dict[str, Any] = {
        "applicationId": task.application_id,
        "executionRoleArn": task.execution_role_arn,
        "name": task.name,
        "jobDriver": task.job_driver,
        **task.config,
    }
    if task.configuration_overrides is not None:
        request["configurationOverrides"] = task.configuration_overrides
    return request
