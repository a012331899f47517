"""Config loading: local files, s3:// through an in-process S3 server, interpolation, every error."""

from __future__ import annotations

import pytest

from medallion.config import (
    SecretsManagerSecret,
    SnowflakeCredentials,
    load_settings,
    parse_settings,
)
from medallion.errors import ConfigError

SNOWFLAKE_YAML = """
env: dev
lake: {root: s3://bucket/lake}
warehouse:
  type: snowflake
  snowflake:
    account: acme
    user: loader
    password: ${SF_PASSWORD}
    database: DB
"""


def test_shipped_local_config_is_the_embedded_default():
    settings = load_settings("local")
    assert settings.env == "local"
    assert settings.spark.master == "local[*]"
    assert settings.lake.root == "./data"
    assert settings.warehouse.type == "duckdb"
    assert settings.warehouse.duckdb.path == "./data/warehouse.duckdb"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_shipped_cluster_configs_validate_with_their_variables(monkeypatch, env):
    for name in (
        "MEDALLION_LAKE_BUCKET",
        "SNOWFLAKE_ACCOUNT",
        "SNOWFLAKE_USER",
        "EMR_APPLICATION_ID",
        "EMR_EXECUTION_ROLE_ARN",
    ):
        monkeypatch.setenv(name, f"value-{name.lower()}")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings = load_settings(env)  # no AWS access: the secret is only named here, never read
    assert settings.lake.root == f"s3://value-medallion_lake_bucket/{env}/lake"
    assert settings.spark.master is None
    snowflake = settings.warehouse.snowflake
    assert snowflake.credentials == SnowflakeCredentials(
        secrets_manager=SecretsManagerSecret(secret_id=f"medallion/{env}/snowflake")
    )
    assert snowflake.password is None and snowflake.private_key_path is None
    assert settings.secret_values() == []


def test_env_interpolation_with_default_and_value():
    settings = parse_settings("lake: {root: '${LAKE_DIR:-/tmp/x}/lake'}", "t", environ={})
    assert settings.lake.root == "/tmp/x/lake"
    settings = parse_settings(
        "lake: {root: '${LAKE_DIR:-/tmp/x}/lake'}", "t", environ={"LAKE_DIR": "/data"}
    )
    assert settings.lake.root == "/data/lake"


def test_missing_env_var_names_key_and_variable():
    with pytest.raises(ConfigError) as err:
        parse_settings(SNOWFLAKE_YAML, "dev.yaml", environ={})
    assert "warehouse.snowflake.password" in str(err.value)
    assert "SF_PASSWORD" in str(err.value)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown key 'spark.mastr'"):
        parse_settings("spark: {mastr: local}", "t.yaml", environ={})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"key 'spark.shuffle_partitions'"):
        parse_settings("spark: {shuffle_partitions: many}", "t.yaml", environ={})


def test_malformed_yaml_gives_line():
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+"):
        parse_settings("spark:\n  master: [local\n", "t.yaml", environ={})


def test_missing_file_and_unknown_env():
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("local", "/nonexistent/config.yaml")
    with pytest.raises(ConfigError, match="unknown environment 'staging'"):
        load_settings("staging")


def test_snowflake_credential_is_only_needed_to_publish():
    from medallion.lake import Lake
    from medallion.warehouse.snowflake_target import SnowflakeWarehouse

    text = SNOWFLAKE_YAML.replace("password: ${SF_PASSWORD}", "password: ''")
    settings = parse_settings(text, "t.yaml", environ={})  # every other job can load it
    assert settings.warehouse.snowflake.password is None
    with pytest.raises(ConfigError, match="needs a credential to publish"):
        SnowflakeWarehouse(settings.warehouse.snowflake, Lake.from_root("/tmp/x")).connect_params()


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (
            "credentials: {secrets_manager: {secret_id: ''}}",
            "key 'warehouse.snowflake.credentials.secrets_manager.secret_id': String should have "
            "at least 1 character",
        ),
        (
            "credentials: {secrets_manager: {secret_id: s, regoin: eu-west-1}}",
            "unknown key 'warehouse.snowflake.credentials.secrets_manager.regoin'",
        ),
        (
            "credentials: {vault: {path: s}}",
            "missing key 'warehouse.snowflake.credentials.secrets_manager'; unknown key "
            "'warehouse.snowflake.credentials.vault'",
        ),
        (
            "credentials: {secrets_manager: {secret_id: s}}\n    password: ${SF_PASSWORD}",
            "key 'warehouse.snowflake': Value error, credentials (a secret store) and password "
            "are both set; keep one source of the Snowflake credential",
        ),
    ],
)
def test_a_bad_secret_store_reference_is_a_config_error_naming_the_key(credentials, expected):
    text = SNOWFLAKE_YAML.replace("password: ${SF_PASSWORD}", credentials)
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "prod.yaml", environ={"SF_PASSWORD": "hunter2-secret"})
    assert str(err.value) == f"config 'prod.yaml' is invalid: {expected}"
    assert err.value.exit_code == 2


def test_secret_never_in_repr_or_error(monkeypatch):
    settings = parse_settings(SNOWFLAKE_YAML, "dev.yaml", environ={"SF_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings.model_dump())
    bad = SNOWFLAKE_YAML.replace("database: DB", "database: DB\n    colour: blue")
    with pytest.raises(ConfigError) as err:
        parse_settings(bad, "dev.yaml", environ={"SF_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in str(err.value)
    assert "colour" in str(err.value)


def test_config_from_s3_uri(s3_server):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="configs")
    body = "env: dev\nlake: {root: 's3://lake-bucket/${STAGE:-dev}/lake'}\nspark: {master: null}\n"
    client.put_object(Bucket="configs", Key="medallion/dev.yaml", Body=body.encode())
    import fsspec

    fsspec.filesystem("s3").invalidate_cache()
    settings = load_settings("dev", "s3://configs/medallion/dev.yaml")
    assert settings.env == "dev"
    assert settings.lake.root == "s3://lake-bucket/dev/lake"
    assert settings.source == "s3://configs/medallion/dev.yaml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("dev", "s3://configs/medallion/missing.yaml")


def test_vacuum_retention_defaults_to_delta_floor_and_refuses_less():
    assert parse_settings("", "t").lake.vacuum_retention_hours == 168
    assert (
        parse_settings("lake: {vacuum_retention_hours: 720}", "t").lake.vacuum_retention_hours
        == 720
    )
    with pytest.raises(ConfigError) as err:
        parse_settings("lake: {vacuum_retention_hours: 24}", "t")
    assert "key 'lake.vacuum_retention_hours'" in str(err.value)
    assert "at least 168" in str(err.value)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cluster_configs_use_emr_bundled_delta_jars(monkeypatch, env):
    for name in (
        "MEDALLION_LAKE_BUCKET",
        "SNOWFLAKE_ACCOUNT",
        "SNOWFLAKE_USER",
        "EMR_APPLICATION_ID",
        "EMR_EXECUTION_ROLE_ARN",
    ):
        monkeypatch.setenv(name, "x")
    settings = load_settings(env)
    assert settings.spark.conf["spark.jars"] == (
        "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar"
    )
    assert settings.lake.vacuum_retention_hours >= 168
