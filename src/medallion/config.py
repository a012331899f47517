"""Typed configuration: loaded from a local path or an ``s3://`` URI, validated at start-up.

A config file is YAML. Values may reference environment variables as ``${NAME}`` (or
``${NAME:-default}``); a missing variable, an unknown key or a wrong type is a ``ConfigError``
(exit 2) that names the key. Secrets are held as ``SecretStr`` so they never show up in a
``repr``, a log line or an error message; ``secret_values`` lists them for the log redactor.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from medallion.errors import ConfigError

ENVIRONMENTS = ("local", "dev", "prod")
_SECRET_KEY = re.compile(r"secret|password|passphrase|token|credential", re.I)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(_Strict):
    """How to get a SparkSession. ``master: null`` means "use the cluster's" (spark-submit, EMR)."""

    master: str | None = "local[*]"
    app_name: str = "medallion"
    shuffle_partitions: int = Field(default=4, ge=1)
    driver_memory: str | None = "2g"
    ui: bool = False
    log_level: str = "WARN"
    # How many of a date's ingest jobs a chain (``run --job all``) runs at once in its session.
    concurrent_ingests: int = Field(default=3, ge=1)
    conf: dict[str, str] = Field(default_factory=dict)


# Delta's own safety floor for VACUUM (its default ``delta.deletedFileRetentionDuration``, 7 days).
MIN_VACUUM_RETENTION_HOURS = 168


class LakeConfig(_Strict):
    """Where the lake lives: a local folder or an ``s3://`` prefix.

    ``vacuum_retention_hours``: ``medallion maintain`` deletes the data files that commits older
    than this removed. It bounds how far back ``medallion restore`` and time travel can go, and
    it must outlast the longest reader (a query, the stream's replayed batch, a run) of an old
    version, so it may not go below Delta's floor of 168 hours (7 days).
    """

    root: str = "./data"
    vacuum_retention_hours: int = Field(default=MIN_VACUUM_RETENTION_HOURS)

    @field_validator("vacuum_retention_hours")
    @classmethod
    def _at_least_delta_floor(cls, value: int) -> int:
        if value < MIN_VACUUM_RETENTION_HOURS:
            raise ValueError(
                f"must be at least {MIN_VACUUM_RETENTION_HOURS} (7 days, Delta's safety floor): "
                "a shorter retention can delete files a running reader, the stream's replayed "
                "batch or a restore still needs"
            )
        return value


class TablePublishConfig(_Strict):
    mode: Literal["merge", "overwrite"] = "merge"


class DuckDBConfig(_Strict):
    path: str = "./data/warehouse.duckdb"
    schema_: str = Field(default="main", alias="schema")


class SecretsManagerSecret(_Strict):
    """A secret in AWS Secrets Manager, named by its name or ARN.

    Only the reference is configuration: the value is read with boto3 when the publisher
    connects (on the Airflow worker, or wherever the publish runs, with that process's AWS
    credentials), never when the config loads (the scheduler parsing the DAG, the jobs on EMR),
    and never written anywhere.
    """

    secret_id: str = Field(min_length=1)
    # The secret's region; unset: the AWS environment's (AWS_REGION).
    region: str | None = None

    @field_validator("region", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


class SnowflakeCredentials(_Strict):
    """Where the Snowflake credential is kept, when not in the environment.

    The secret holds either a JSON object with ``password``, or with ``private_key`` (the PEM
    text) and optionally ``private_key_passphrase``; or a plain string, the password.
    """

    secrets_manager: SecretsManagerSecret


class SnowflakeConfig(_Strict):
    """Connection settings. The credential comes from the environment (``password``, or
    ``private_key_path`` and its passphrase) or from a secret store (``credentials``)."""

    account: str
    user: str
    password: SecretStr | None = None
    private_key_path: str | None = None
    private_key_passphrase: SecretStr | None = None
    credentials: SnowflakeCredentials | None = None
    role: str | None = None
    warehouse: str | None = None
    database: str
    schema_: str = Field(default="PUBLIC", alias="schema")
    stage: str | None = None
    chunk_size: int = Field(default=100_000, ge=1)
    # Snowflake cancels a statement that runs longer (its own default is two days).
    statement_timeout_seconds: int = Field(default=3600, ge=1, le=604_800)

    @field_validator(
        "password", "private_key_path", "private_key_passphrase", "role", "warehouse", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # ``${VAR:-}`` interpolates to "" when the variable is unset: treat it as not given.
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_credential_source(self) -> SnowflakeConfig:
        given = [k for k in ("password", "private_key_path") if getattr(self, k) is not None]
        if self.credentials is not None and given:
            raise ValueError(
                f"credentials (a secret store) and {' and '.join(given)} are both set; keep one "
                "source of the Snowflake credential"
            )
        return self


class WarehouseConfig(_Strict):
    type: Literal["duckdb", "snowflake"] = "duckdb"
    duckdb: DuckDBConfig = Field(default_factory=DuckDBConfig)
    snowflake: SnowflakeConfig | None = None
    default_mode: Literal["merge", "overwrite"] = "merge"
    tables: dict[str, TablePublishConfig] = Field(default_factory=dict)
    publish: list[str] | None = None

    @model_validator(mode="after")
    def _snowflake_present(self) -> WarehouseConfig:
        if self.type == "snowflake" and self.snowflake is None:
            raise ValueError(
                "warehouse.type is snowflake but the warehouse.snowflake section is missing"
            )
        return self

    def mode_for(self, table: str) -> str:
        settings = self.tables.get(table)
        return settings.mode if settings else self.default_mode


class StreamingConfig(_Strict):
    max_files_per_trigger: int = Field(default=25, ge=1)
    watermark_delay: str = "24 hours"
    # How far past its ingest time an event's time may be (producer clocks drift); later is
    # quarantined as event_ts:future and never moves the watermark.
    future_tolerance: str = "1 hour"


class IncrementalConfig(_Strict):
    """When a run maintains a table incrementally and when it writes it whole (docs/SILVER_GOLD.md,
    "How silver is written"; docs/PERFORMANCE.md).

    ``min_versions``: a silver table whose bronze holds fewer versions than this, and gold's
    ``dim_customer`` when bronze holds fewer customer and CRM account versions than this, is
    recomputed whole and written with one overwrite commit. From this size on, silver recomputes
    only the keys bronze's change feed names and merges their diff, and the dimension merges its
    diff. Both ways give the same rows. The incremental way has a fixed cost per table (the
    change-feed reads, the scope's joins, the diff against the table, MERGE's passes over it)
    that a whole recomputation of a small table does not pay: measured on day 2 at scale 10
    (1.5 million versions in the biggest table), every table was faster written whole. 0 (the
    default) always takes the incremental way.
    """

    min_versions: int = Field(default=0, ge=0)

    def whole(self, versions: Callable[[], int]) -> bool:
        """Whether a table computed from ``versions()`` bronze versions is written whole. The
        count is asked for only when the rule is on: with 0 a run spends no Spark job on it."""
        return self.min_versions > 0 and versions() < self.min_versions


class AnomalyConfig(_Strict):
    """The anomaly gate's limits (docs/QUALITY.md): a day's figures against its trailing history."""

    # How many earlier run dates (each one's latest successful run) a figure is compared with,
    # and how many it needs before the history rules apply (the first extract of a source is a
    # full load, the later ones increments: a median of three or more is an increment's size).
    history_runs: int = Field(default=7, ge=1)
    min_history: int = Field(default=3, ge=1)
    # Fewer source rows than this in a delivery (or in the median) are too few to judge by rates.
    min_rows: int = Field(default=20, ge=1)
    quarantine_rate_ceiling: float = Field(default=0.25, gt=0, le=1)
    quarantine_rate_factor: float = Field(default=3.0, gt=1)
    # The factor rule also needs the rate this far above the median (a 0% median is no basis).
    quarantine_rate_margin: float = Field(default=0.02, ge=0, le=1)
    row_count_factor: float = Field(default=5.0, gt=1)
    # Tables whose empty delivery is normal and no anomaly: FX on a holiday has no rates.
    empty_allowed: list[str] = Field(default_factory=lambda: ["fx/fx_rates"])
    # Real ECB rates never moved 1.2x in a day (1999-2026); the contract's own rule quarantines
    # a move beyond 3x, so the gate stops what lies between.
    fx_move_factor: float = Field(default=1.2, gt=1)

    @model_validator(mode="after")
    def _history_fits(self) -> AnomalyConfig:
        if self.min_history > self.history_runs:
            raise ValueError(
                f"min_history ({self.min_history}) cannot exceed history_runs ({self.history_runs})"
            )
        return self


class QualityConfig(_Strict):
    anomalies: AnomalyConfig = Field(default_factory=AnomalyConfig)


class AlertsConfig(_Strict):
    """Where the DAG's alerts are POSTed: a webhook URL (a secret), or an Airflow HTTP connection."""

    webhook_url: SecretStr | None = None
    # An Airflow HTTP connection (a secrets backend, ``AIRFLOW_CONN_<ID>``) whose host is the
    # webhook's URL; used when ``webhook_url`` is not set.
    http_conn_id: str | None = None

    @field_validator("webhook_url", "http_conn_id", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_destination(self) -> AlertsConfig:
        if self.webhook_url is not None and self.http_conn_id is not None:
            raise ValueError(
                "set alerts.webhook_url or alerts.http_conn_id, not both: they name the same webhook"
            )
        return self


class LockConfig(_Strict):
    ttl_seconds: int = Field(default=6 * 3600, ge=1)


class AirflowConfig(_Strict):
    """What the DAG factory needs; only read by dags/, never by the jobs."""

    variant: Literal["local", "emr_serverless"] = "local"
    schedule: str = "@daily"
    retries: int = Field(default=3, ge=0)
    retry_delay_seconds: int = Field(default=60, ge=1)
    max_retry_delay_seconds: int = Field(default=1800, ge=1)
    execution_timeout_minutes: int = Field(default=120, ge=1)
    deadline_minutes: int = Field(default=360, ge=1)
    # The landing sensors: how long a task waits for the day's delivery before it fails (without
    # retries: a missing delivery is not a transient error), and how often it looks.
    landing_timeout_minutes: int = Field(default=180, ge=1)
    landing_poke_seconds: int = Field(default=300, ge=1)
    # Deferrable sensors wait in the triggerer, not in a worker slot. ``airflow dags test`` runs
    # a deferred sensor's trigger inline without its timeout (Airflow 3.3.2): switch this off
    # there to have a missing delivery fail after the timeout instead of waiting for ever.
    landing_deferrable: bool = True
    # The Airflow filesystem connection the local variant's FileSensors use (an absolute path
    # ignores its base path; ``airflow connections create-default-connections`` creates it).
    landing_fs_conn_id: str = "fs_default"
    emr_application_id: str | None = None
    emr_execution_role_arn: str | None = None
    emr_code_uri: str | None = None
    emr_venv_uri: str | None = None
    emr_logs_uri: str | None = None
    aws_conn_id: str = "aws_default"


class Settings(_Strict):
    """The whole configuration of one environment."""

    env: str = "local"
    spark: SparkConfig = Field(default_factory=SparkConfig)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    streaming: StreamingConfig = Field(default_factory=StreamingConfig)
    incremental: IncrementalConfig = Field(default_factory=IncrementalConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    lock: LockConfig = Field(default_factory=LockConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    airflow: AirflowConfig = Field(default_factory=AirflowConfig)
    source: str = Field(default="<defaults>", exclude=True)

    def secret_values(self) -> list[str]:
        """Every secret value in the config, for the log redactor."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, SecretStr):
                value = node.get_secret_value()
                if value:
                    found.append(value)
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name))
            elif isinstance(node, dict):
                for value in node.values():
                    walk(value)

        walk(self)
        # Extra Spark settings are plain strings, but some carry credentials
        # (spark.hadoop.fs.s3a.secret.key, ...): treat those as secrets too.
        found.extend(v for k, v in self.spark.conf.items() if v and _SECRET_KEY.search(k))
        return found


def interpolate(node: Any, environ: dict[str, str], where: str = "") -> Any:
    """Replace ``${NAME}`` references in every string of a parsed YAML tree.

    A reference to an unset variable without a ``:-default`` is an error naming the key.
    """
    if isinstance(node, dict):
        return {
            k: interpolate(v, environ, f"{where}.{k}" if where else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [interpolate(v, environ, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"config key '{where}' references environment variable ${{{name}}}, which is not set; "
            f"export {name} or remove the reference"
        )

    return _ENV_REF.sub(substitute, node)


def default_config_path(env: str) -> str:
    """``config/<env>.yaml`` in the working directory, else the copy shipped in the package."""
    local = Path("config") / f"{env}.yaml"
    if local.exists():
        return str(local)
    packaged = resources.files("medallion") / "_config" / f"{env}.yaml"
    if packaged.is_file():
        return str(packaged)
    return str(local)


def read_text(uri: str) -> str:
    """Read a small text file from a local path or any fsspec URI (``s3://`` included)."""
    if "://" not in uri:
        path = Path(uri)
        if not path.is_file():
            raise ConfigError(
                f"config file '{uri}' does not exist; pass --config PATH or --env NAME"
            )
        return path.read_text(encoding="utf-8")
    import fsspec

    try:
        with fsspec.open(uri, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise ConfigError(f"config file '{uri}' does not exist") from exc
    except Exception as exc:  # network, credentials, unknown protocol
        raise ConfigError(f"cannot read config '{uri}': {type(exc).__name__}: {exc}") from exc


def parse_settings(text: str, source: str, environ: dict[str, str] | None = None) -> Settings:
    """Parse and validate YAML text into ``Settings``; every problem is a ``ConfigError``."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config '{source}' is not valid YAML{at}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config '{source}' must be a mapping of sections, not {type(raw).__name__}"
        )
    raw = interpolate(raw, dict(os.environ) if environ is None else environ)
    try:
        return Settings.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "<root>"
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        elif kind == "missing":
            problems.append(f"missing key '{key}'")
        else:
            problems.append(f"key '{key}': {error['msg']}")
    return f"config '{source}' is invalid: " + "; ".join(problems)


def load_settings(env: str = "local", config: str | None = None) -> Settings:
    """Load the settings for ``env`` from ``config`` (path or URI), or from the default path."""
    if env not in ENVIRONMENTS and config is None:
        raise ConfigError(
            f"unknown environment '{env}'; choose one of {', '.join(ENVIRONMENTS)} or pass --config"
        )
    source = config or default_config_path(env)
    settings = parse_settings(read_text(source), source)
    if settings.env != env and config is None:
        raise ConfigError(f"config '{source}' declares env '{settings.env}' but --env is '{env}'")
    return settings
