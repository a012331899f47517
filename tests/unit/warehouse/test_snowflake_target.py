"""What only the Snowflake target does: auth, the session it opens, the statements it runs,
type mapping, the COPY INTO path from a stage."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pyarrow as pa
import pytest
from warehouse_gold import customer, day, order, snowflake_config

from medallion.config import parse_settings
from medallion.errors import ConfigError, JobError
from medallion.redact import redact
from medallion.warehouse import locate_gold
from medallion.warehouse.snowflake_target import (
    SnowflakeWarehouse,
    load_private_key,
    normalize_type,
    snowflake_type,
)

pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API")
PASSPHRASE = "correct horse battery"


@pytest.fixture(scope="module")
def rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_pem(path, key, passphrase: str | None) -> str:
    from cryptography.hazmat.primitives import serialization

    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return str(path)


def der(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.int32(), "NUMBER(38,0)"),
        (pa.int64(), "NUMBER(38,0)"),
        (pa.decimal128(18, 2), "NUMBER(18,2)"),
        (pa.decimal128(18, 8), "NUMBER(18,8)"),
        (pa.float64(), "FLOAT"),
        (pa.string(), "VARCHAR"),
        (pa.bool_(), "BOOLEAN"),
        (pa.date32(), "DATE"),
        (pa.timestamp("us", tz="UTC"), "TIMESTAMP_TZ(9)"),
        (pa.timestamp("us"), "TIMESTAMP_NTZ(9)"),
        (pa.list_(pa.string()), None),
    ],
)
def test_gold_types_map_to_snowflake_types(arrow_type, expected):
    assert snowflake_type(arrow_type) == expected


def test_described_types_compare_without_snowflake_lengths():
    assert normalize_type("VARCHAR(16777216)") == "VARCHAR"
    assert normalize_type("number(18, 2)") == "NUMBER(18,2)"
    assert normalize_type("TEXT") == "VARCHAR"


def test_key_pair_auth_loads_the_encrypted_key(tmp_path, rsa_key, fakesnow_patch):
    import snowflake.connector

    path = write_pem(tmp_path / "rsa_key.p8", rsa_key, PASSPHRASE)
    config = snowflake_config(
        password=None, private_key_path=path, private_key_passphrase=PASSPHRASE, role="LOADER"
    )
    warehouse = SnowflakeWarehouse(config, lake=None)

    warehouse.connection  # noqa: B018  (connects)

    kwargs = snowflake.connector.connect.call_args.kwargs
    assert kwargs["private_key"] == der(rsa_key)
    assert "password" not in kwargs
    assert (kwargs["account"], kwargs["user"], kwargs["role"]) == (
        "acme-test",
        "publisher",
        "LOADER",
    )
    assert (kwargs["database"], kwargs["schema"]) == ("medallion", "gold")
    warehouse.close()


def test_password_auth_passes_the_secret_only_to_the_connector(fakesnow_patch):
    import snowflake.connector

    warehouse = SnowflakeWarehouse(snowflake_config(password="s3cr3t-pw"), lake=None)

    warehouse.connection  # noqa: B018  (connects)

    assert snowflake.connector.connect.call_args.kwargs["password"] == "s3cr3t-pw"
    assert "s3cr3t-pw" not in warehouse.describe()
    warehouse.close()


def test_a_wrong_passphrase_is_a_config_error(tmp_path, rsa_key):
    path = write_pem(tmp_path / "rsa_key.p8", rsa_key, PASSPHRASE)

    with pytest.raises(ConfigError, match="passphrase"):
        load_private_key(path, "wrong")
    with pytest.raises(ConfigError, match="passphrase"):
        load_private_key(path, None)


def test_an_unencrypted_key_needs_no_passphrase(tmp_path, rsa_key):
    path = write_pem(tmp_path / "rsa_key.p8", rsa_key, None)

    assert load_private_key(path, None) == der(rsa_key)


def test_a_missing_key_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"private_key_path .*cannot be read"):
        load_private_key(str(tmp_path / "nope.p8"), None)


def test_copy_into_from_an_external_stage_loads_the_part_files(gold, fakesnow_patch):
    rows = [customer(1, "c1"), customer(2, "c2"), customer(3, "c3")]
    gold.write("dim_customer", rows)
    warehouse = SnowflakeWarehouse(snowflake_config(stage="@MEDALLION.GOLD.LAKE"), gold.lake)
    cursor = warehouse.connection.cursor()
    # In production the stage's URL is the lake root on S3; here it is the tmp lake.
    cursor.execute(f"CREATE STAGE MEDALLION.GOLD.LAKE URL='file://{gold.lake.root}/'")
    gold_table = locate_gold(gold.lake, "dim_customer")

    first = warehouse.publish_table(gold_table, ["customer_sk"], "merge", "run-1")
    again = warehouse.publish_table(gold_table, ["customer_sk"], "merge", "run-2")

    assert (first.inserted, first.rows_target) == (3, 3)
    assert (again.inserted, again.updated, again.deleted, again.unchanged) == (0, 0, 0, 3)
    cursor.execute("SELECT CUSTOMER_SK, VALID_FROM FROM MEDALLION.GOLD.DIM_CUSTOMER ORDER BY 1")
    assert cursor.fetchall() == [(r["customer_sk"], r["valid_from"]) for r in rows]
    warehouse.close()


def test_a_nested_gold_column_fails_clearly(gold, fakesnow_patch):
    schema = pa.schema([("customer_id", pa.string()), ("tags", pa.list_(pa.string()))])
    gold.write("customer_360", [{"customer_id": "c1", "tags": ["a"]}], schema=schema)
    warehouse = SnowflakeWarehouse(snowflake_config(), gold.lake)

    with pytest.raises(JobError, match="column tags of gold table 'customer_360' has type list"):
        warehouse.publish_table(
            locate_gold(gold.lake, "customer_360"), ["customer_id"], "merge", "run-1"
        )
    warehouse.close()


RUN_ID = "8a1c7a3e-93f4-4a55-9c55-5b0e7e1d2f00"
STAGING = '"STG_DIM_DATE_8A1C7A3E93F44A559C555B0E7E1D2F00"'


def test_every_session_runs_in_utc_with_the_configured_statement_timeout(fakesnow_patch):
    import snowflake.connector

    warehouse = SnowflakeWarehouse(snowflake_config(statement_timeout_seconds=900), lake=None)

    warehouse.connect()

    assert snowflake.connector.connect.call_args.kwargs["session_parameters"] == {
        "TIMEZONE": "UTC",
        "STATEMENT_TIMEOUT_IN_SECONDS": 900,
        "QUERY_TAG": '{"app":"medallion","job":"publish_gold_to_snowflake"}',
    }
    warehouse.close()


def test_the_statement_timeout_defaults_to_an_hour_and_is_validated():
    text = """
warehouse:
  type: snowflake
  snowflake: {account: a, user: u, password: p, database: DB%s}
"""
    default = parse_settings(text % "", "t.yaml", environ={}).warehouse.snowflake
    warehouse = SnowflakeWarehouse(default, lake=None)

    assert warehouse.connect_params()["session_parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"] == 3600
    with pytest.raises(ConfigError, match=r"warehouse\.snowflake\.statement_timeout_seconds"):
        parse_settings(text % ", statement_timeout_seconds: 0", "t.yaml", environ={})


def test_each_table_s_statements_carry_a_query_tag_naming_run_date_and_table(gold, fakesnow_patch):
    gold.write("dim_date", [day(20250113)])
    gold.write("fact_orders", [order("o1")])
    warehouse = SnowflakeWarehouse(snowflake_config(), gold.lake)
    run_date = dt.date(2025, 1, 15)

    for table, key in (("dim_date", "date_sk"), ("fact_orders", "order_id")):
        warehouse.publish_table(
            locate_gold(gold.lake, table), [key], "merge", RUN_ID, run_date=run_date
        )

    statements = list(fakesnow_patch)
    tags = [i for i, s in enumerate(statements) if s.startswith("ALTER SESSION")]
    assert [statements[i] for i in tags] == [
        "ALTER SESSION SET QUERY_TAG = "
        f'\'{{"app":"medallion","job":"publish_gold_to_snowflake","run_id":"{RUN_ID}",'
        f'"run_date":"2025-01-15","table":"{table}"}}\''
        for table in ("dim_date", "fact_orders")
    ]
    assert json.loads(statements[tags[1]].split("= ", 1)[1].strip("'")) == {
        "app": "medallion",
        "job": "publish_gold_to_snowflake",
        "run_id": RUN_ID,
        "run_date": "2025-01-15",
        "table": "fact_orders",
    }
    # Each tag is set before its table's first statement and after the previous table's last.
    dim_date = [i for i, s in enumerate(statements) if "DIM_DATE" in s]
    fact_orders = [i for i, s in enumerate(statements) if "FACT_ORDERS" in s]
    assert tags[0] < min(dim_date) < max(dim_date) < tags[1] < min(fact_orders)
    warehouse.close()


def test_the_staging_table_is_temporary_and_the_data_change_one_transaction(gold, fakesnow_patch):
    gold.write("dim_date", [day(20250113), day(20250114)])
    warehouse = SnowflakeWarehouse(snowflake_config(), gold.lake)

    warehouse.publish_table(locate_gold(gold.lake, "dim_date"), ["date_sk"], "merge", RUN_ID)

    statements = list(fakesnow_patch)
    assert (
        f'CREATE TEMPORARY TABLE {STAGING} ("DATE_SK" NUMBER(38,0), "DATE" DATE, '
        '"YEAR" NUMBER(38,0), "MONTH" NUMBER(38,0), "DAY_NAME" VARCHAR)'
    ) in statements
    assert not [s for s in statements if "TRANSIENT" in s.upper()]
    # DDL commits in Snowflake: target and staging are created before BEGIN; the staging table
    # is dropped after COMMIT (and, being temporary, by Snowflake when a killed run's session ends).
    kinds = [" ".join(s.split()[:2]) for s in statements]
    assert kinds[kinds.index("CREATE TEMPORARY") :] == [
        "CREATE TEMPORARY",
        "SELECT COUNT(*)",  # source stats
        "BEGIN TRANSACTION",
        "SELECT COALESCE(SUM(CASE",  # change counts
        "DELETE FROM",
        "MERGE INTO",
        "SELECT COUNT(*)",  # target rows
        "COMMIT",
        "DROP TABLE",
    ]
    assert statements[-1] == f"DROP TABLE IF EXISTS {STAGING}"
    warehouse.close()


# --- the credential from AWS Secrets Manager (moto's server) -------------------------------------

SECRET_ID = "medallion/test/snowflake"


def from_secrets_manager(secret_id: str = SECRET_ID, region: str | None = "eu-west-1"):
    return snowflake_config(
        password=None, credentials={"secrets_manager": {"secret_id": secret_id, "region": region}}
    )


def store_secret(value: str, region: str = "eu-west-1") -> None:
    import boto3

    boto3.client("secretsmanager", region_name=region).create_secret(
        Name=SECRET_ID, SecretString=value
    )


def test_the_password_is_read_from_secrets_manager_when_the_publisher_connects(
    s3_server, fakesnow_patch, caplog
):
    import snowflake.connector

    warehouse = SnowflakeWarehouse(from_secrets_manager(), lake=None)
    store_secret(json.dumps({"password": "pw-from-the-store-51b7"}))  # after the config loaded

    with caplog.at_level(logging.DEBUG):
        warehouse.connection  # noqa: B018  (connects)

    assert snowflake.connector.connect.call_args.kwargs["password"] == "pw-from-the-store-51b7"
    assert f"read secret '{SECRET_ID}'" in caplog.text
    assert "pw-from-the-store-51b7" not in caplog.text + repr(warehouse.config)
    assert redact("login pw-from-the-store-51b7") == "login ***"
    warehouse.close()


def test_a_secret_in_plain_text_is_the_password(s3_server):
    store_secret("plain-text-password-0c4d")
    params = SnowflakeWarehouse(from_secrets_manager(), lake=None).connect_params()
    assert params["password"] == "plain-text-password-0c4d" and "private_key" not in params


def test_a_private_key_is_read_from_secrets_manager(s3_server, rsa_key, tmp_path):
    pem = Path(write_pem(tmp_path / "k.p8", rsa_key, PASSPHRASE)).read_text()
    secret = {"private_key": pem, "private_key_passphrase": PASSPHRASE}
    store_secret(json.dumps(secret), region="us-east-1")  # the environment's region

    params = SnowflakeWarehouse(from_secrets_manager(region=None), lake=None).connect_params()

    assert params["private_key"] == der(rsa_key) and "password" not in params
    body_line = pem.splitlines()[1]
    assert redact(f"key line {body_line}") == "key line ***"


def test_a_missing_secret_is_a_config_error_naming_the_key(s3_server):
    with pytest.raises(ConfigError) as err:
        SnowflakeWarehouse(from_secrets_manager("no/such/secret"), lake=None).connect_params()
    assert str(err.value) == (
        "secret 'no/such/secret' (warehouse.snowflake.credentials.secrets_manager.secret_id) "
        "does not exist in AWS Secrets Manager in eu-west-1; create it or fix the id"
    )


def test_a_secret_without_a_credential_field_is_refused_without_showing_it(s3_server):
    store_secret(json.dumps({"pasword": "typo-field-secret-93e1"}))
    with pytest.raises(ConfigError) as err:
        SnowflakeWarehouse(from_secrets_manager(), lake=None).connect_params()
    assert "neither a 'password' nor a 'private_key' field" in str(err.value)
    assert "typo-field-secret-93e1" not in str(err.value)
