"""What only the Snowflake target does: auth, type mapping, the COPY INTO path from a stage."""

from __future__ import annotations

import pyarrow as pa
import pytest
from warehouse_gold import customer, snowflake_config

from medallion.errors import ConfigError, JobError
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
