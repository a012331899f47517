"""The production warehouse: Snowflake, through ``snowflake-connector-python``.

What Snowflake supplies to the publish algorithm (``base.Warehouse.publish_table``):

* the session: every connection runs in UTC (``TIMEZONE = 'UTC'``; an account's default is
  often America/Los_Angeles, which would shift every ``TIMESTAMP_LTZ`` and ``CURRENT_*``
  value), with ``STATEMENT_TIMEOUT_IN_SECONDS`` from ``warehouse.snowflake
  .statement_timeout_seconds``, so a stuck statement fails the run instead of holding the
  warehouse; and before each table, ``ALTER SESSION SET QUERY_TAG`` to a JSON object naming the
  run id, the run date and the table, so query history and cost attribute every statement.
* transactions: Snowflake commits any open transaction before DDL, so DDL cannot share the data
  transaction: creating the target from the gold schema (``PRIMARY KEY`` is informational in
  Snowflake), adding columns new in gold and creating the staging table each commit on their
  own, then ``BEGIN`` / count / delete / ``MERGE`` / check / ``COMMIT`` (``ROLLBACK`` on any
  error), and the staging table is dropped after it.
* the staging table ``STG_<TABLE>_<RUN ID HEX>`` is ``TEMPORARY``: it belongs to the session,
  no other session sees it, and Snowflake drops it when the session ends, so a killed run
  leaves nothing behind. It is named unqualified, so it lives in the connection's database and
  schema (``warehouse.snowflake.database`` and ``schema``, the targets' own).
* loading: with ``warehouse.snowflake.stage`` set (an external stage whose URL is the lake
  root, e.g. ``s3://bucket/prod/lake/``) and an unpartitioned table, ``COPY INTO`` with
  ``FILES = (...)`` naming exactly the log's live files of the pinned Delta version, which is
  the scalable path on S3: Snowflake reads the files in parallel and no row passes through this
  process. Otherwise the version's pyarrow dataset (local or S3, through delta-rs) is read in
  batches of ``chunk_size`` rows and ``write_pandas`` uploads each batch.
* the ``MERGE`` has no ``WHEN NOT MATCHED BY SOURCE``: keys gone from gold are deleted by a
  ``DELETE`` in the same transaction, and the ``MERGE`` reports inserted and updated rows as
  result columns.
* credentials: a password or a private key (PKCS#8 PEM, with its passphrase if encrypted), from
  the environment (``password``, ``private_key_path``) or from a secret in AWS Secrets Manager
  (``credentials.secrets_manager``), read when the publisher connects, on the process that
  connects, and held as a ``SecretStr`` registered with the log redactor.
* types and names: gold's Arrow types map to Snowflake's (``snowflake_type``); gold's
  snake_case names become upper-case quoted identifiers (``"CUSTOMER_SK"``), which is what
  unquoted ``customer_sk`` means in Snowflake, so analysts query without quotes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pydantic import SecretStr

from medallion.config import SnowflakeConfig, SnowflakeCredentials
from medallion.errors import ConfigError, JobError
from medallion.lake import Lake
from medallion.redact import register_secrets
from medallion.secret_store import read_secret
from medallion.warehouse import sql
from medallion.warehouse.base import (
    Column,
    GoldTable,
    MergeStep,
    Warehouse,
    check_applied,
    first_line,
    staging_name,
)

log = logging.getLogger(__name__)

q = sql.quote_double
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_COPY_FILES_PER_STATEMENT = 1000  # Snowflake's limit for COPY ... FILES = (...)
QUERY_TAG_JOB = "publish_gold_to_snowflake"


def ident(name: str) -> str:
    """An identifier as Snowflake resolves it unquoted (upper case), quoted for safety."""
    return q(name.upper()) if _PLAIN.fullmatch(name) else q(name)


def snowflake_type(arrow_type: pa.DataType) -> str | None:
    """The Snowflake column type for a gold (Parquet) type; None when there is none."""
    t = pa.types
    if t.is_boolean(arrow_type):
        return "BOOLEAN"
    if t.is_integer(arrow_type):
        return "NUMBER(38,0)"
    if t.is_floating(arrow_type):
        return "FLOAT"
    if t.is_decimal(arrow_type) and arrow_type.precision <= 38:
        return f"NUMBER({arrow_type.precision},{arrow_type.scale})"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "VARCHAR"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type):
        return "BINARY"
    if t.is_date(arrow_type):
        return "DATE"
    if t.is_timestamp(arrow_type):
        # Spark's TimestampType is an instant (written with a UTC zone); TimestampNTZ is not.
        return "TIMESTAMP_TZ(9)" if arrow_type.tz else "TIMESTAMP_NTZ(9)"
    if t.is_time(arrow_type):
        return "TIME(9)"
    return None


def normalize_type(type_: str) -> str:
    """Snowflake's spelling of a type, without the lengths it adds (``VARCHAR(16777216)``)."""
    spelled = type_.strip().upper().replace(" ", "")
    for family in ("VARCHAR", "BINARY"):
        if spelled.startswith(family + "("):
            return family
    aliases = {"TEXT": "VARCHAR", "STRING": "VARCHAR", "DOUBLE": "FLOAT", "REAL": "FLOAT"}
    return aliases.get(spelled, spelled)


def load_private_key(path: str, passphrase: str | None) -> bytes:
    """The PKCS#8 DER bytes of a PEM private key file, as the connector's ``private_key`` wants."""
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as exc:
        raise ConfigError(
            f"warehouse.snowflake.private_key_path '{path}' cannot be read: {exc.strerror}"
        ) from None
    return private_key_der(
        pem,
        passphrase,
        f"the Snowflake private key '{path}'",
        "warehouse.snowflake.private_key_passphrase",
    )


def private_key_der(pem: bytes, passphrase: str | None, what: str, passphrase_from: str) -> bytes:
    """The PKCS#8 DER bytes of the PEM private key ``pem`` (``what`` names it in errors)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(
            pem, password=passphrase.encode() if passphrase else None
        )
    except (ValueError, TypeError):
        raise ConfigError(
            f"cannot load {what}: not a PEM private key, or the passphrase "
            f"({passphrase_from}) is wrong or missing"
        ) from None
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class SecretCredential:
    """The Snowflake credential a secret holds: a password, or a private key and passphrase."""

    password: SecretStr | None = None
    private_key: SecretStr | None = None  # the PEM text
    private_key_passphrase: SecretStr | None = None

    @classmethod
    def parse(cls, secret: SecretStr, where: str) -> SecretCredential:
        """A JSON object with ``password`` or ``private_key`` (and ``private_key_passphrase``),
        or any other text, which is the password itself."""
        text = secret.get_secret_value()
        try:
            fields = json.loads(text)
        except json.JSONDecodeError:
            fields = None
        if not isinstance(fields, dict):
            return cls(password=secret)
        found = {
            name: value
            for name in ("password", "private_key", "private_key_passphrase")
            if isinstance(value := fields.get(name), str) and value
        }
        # Each field alone, and each line of a PEM key, so no fragment of it can be shown.
        pem_lines = found.get("private_key", "").splitlines()
        register_secrets([*found.values(), *(ln for ln in pem_lines if not ln.startswith("-"))])
        if "private_key" not in found and "password" not in found:
            raise ConfigError(
                f"{where} is a JSON object with neither a 'password' nor a 'private_key' field; "
                "store one of them (or the password as plain text)"
            )
        return cls(**{name: SecretStr(value) for name, value in found.items()})


class SnowflakeWarehouse(Warehouse):
    """Publishes into tables of ``database.schema`` in a Snowflake account."""

    kind = "snowflake"
    ddl_in_transaction = False
    staging_kind = "TEMPORARY"

    def __init__(self, config: SnowflakeConfig, lake: Lake) -> None:
        self.config = config
        self.lake = lake
        self.database = ident(config.database)
        self.schema = ident(config.schema_)
        self._con: Any = None
        self._cursor: Any = None

    def describe(self) -> str:
        return f"snowflake {self.config.account} {self.database}.{self.schema}"

    # --- connection -------------------------------------------------------------------------

    def connect_params(self) -> dict[str, Any]:
        """Connector arguments from the config; the credential from the environment or, with
        ``credentials``, from AWS Secrets Manager, read now (each call reads it again)."""
        c = self.config
        params: dict[str, Any] = {
            "account": c.account,
            "user": c.user,
            "database": c.database,
            "schema": c.schema_,
            "application": "medallion",
            "autocommit": True,
            "session_parameters": session_parameters(c),
        }
        if c.role:
            params["role"] = c.role
        if c.warehouse:
            params["warehouse"] = c.warehouse
        if c.credentials is not None:
            self._secret_credential(c.credentials, params)
        elif c.private_key_path:  # key-pair wins when both are set
            passphrase = c.private_key_passphrase
            params["private_key"] = load_private_key(
                c.private_key_path, passphrase.get_secret_value() if passphrase else None
            )
        elif c.password is not None:
            params["password"] = c.password.get_secret_value()
        else:
            # Checked here, not when the config loads: jobs that never publish (every job but
            # this one, e.g. the jobs on EMR, which hold no warehouse secret) must still start.
            raise ConfigError(
                "warehouse.snowflake needs a credential to publish: set credentials (a secret in "
                "AWS Secrets Manager), password or private_key_path (from the environment, e.g. "
                "SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH)"
            )
        return params

    @staticmethod
    def _secret_credential(credentials: SnowflakeCredentials, params: dict[str, Any]) -> None:
        """Read the credential from its secret store now, on the process that connects."""
        key = "warehouse.snowflake.credentials.secrets_manager"
        ref = credentials.secrets_manager
        secret = SecretCredential.parse(read_secret(ref, key), f"secret '{ref.secret_id}'")
        if secret.private_key is not None:
            passphrase = secret.private_key_passphrase
            params["private_key"] = private_key_der(
                secret.private_key.get_secret_value().encode(),
                passphrase.get_secret_value() if passphrase else None,
                f"the private key in secret '{ref.secret_id}'",
                "the secret's private_key_passphrase field",
            )
        elif secret.password is not None:
            params["password"] = secret.password.get_secret_value()

    def connect(self) -> None:
        self.connection  # noqa: B018  (opens it)

    @property
    def connection(self) -> Any:
        if self._con is None:
            import snowflake.connector

            params = self.connect_params()
            try:
                # Looked up on the module at call time, so fakesnow.patch() can stand in for it.
                self._con = snowflake.connector.connect(**params)
            except snowflake.connector.errors.Error as exc:
                raise JobError(
                    f"cannot connect to Snowflake account '{self.config.account}' as user "
                    f"'{self.config.user}': {first_line(exc)}"
                ) from None
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self._cursor = None

    def execute(self, statement: str) -> Any:
        if self._cursor is None:
            self._cursor = self.connection.cursor()
        self._cursor.execute(statement)
        return self._cursor

    # --- names and types --------------------------------------------------------------------

    def table_name(self, table: str) -> str:
        return f"{self.database}.{self.schema}.{ident(table)}"

    def staging_table(self, table: str, run_id: str) -> str:
        # Unqualified: a temporary table lives in the session's current database and schema.
        return ident(staging_name(table, run_id))

    def column_name(self, name: str) -> str:
        return name.upper()

    def same_type(self, a: str, b: str) -> bool:
        return normalize_type(a) == normalize_type(b)

    def columns(self, table: str) -> list[Column]:
        cur = self.connection.cursor()
        schema_name = self.schema.strip('"').replace('""', '"')
        table_name = ident(table).strip('"').replace('""', '"')
        cur.execute(
            f"SELECT COUNT(*) FROM {self.database}.INFORMATION_SCHEMA.TABLES "
            f"WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (schema_name, table_name),
        )
        if not cur.fetchone()[0]:
            return []
        cur.execute(f"DESCRIBE TABLE {self.table_name(table)}")
        return [Column(row[0], row[1]) for row in cur.fetchall() if row[2] == "COLUMN"]

    # --- gold into the staging table --------------------------------------------------------

    def start_table(self, gold: GoldTable, run_id: str, run_date: dt.date | None) -> None:
        tag = query_tag(run_id=run_id, run_date=run_date, table=gold.name)
        self.execute(f"ALTER SESSION SET QUERY_TAG = {string_literal(tag)}")

    @contextmanager
    def gold_source(self, gold: GoldTable, run_id: str) -> Iterator[Any]:
        yield gold.dataset()

    def source_columns(self, table: str, source: Any) -> list[Column]:
        columns = []
        for field in source.schema:
            type_ = snowflake_type(field.type)
            if type_ is None:
                raise JobError(
                    f"column {field.name} of gold table '{table}' has type {field.type}, which "
                    f"the Snowflake publisher does not map; publish scalar columns"
                )
            columns.append(Column(field.name.upper(), type_))
        names = [c.name for c in columns]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise JobError(
                f"gold table '{table}' has columns that differ only in case ({', '.join(clashes)}); "
                f"Snowflake would fold them into one"
            )
        return columns

    def load_staging(self, gold: GoldTable, source: Any, staging: str) -> int:
        if self.config.stage and not gold.partitioned:
            return self._copy_from_stage(gold, staging)
        if self.config.stage:
            log.info("publish %s: gold is partitioned; loading through pyarrow", gold.name)
        return self._write_batches(gold, source, staging.strip('"'))

    def _copy_from_stage(self, gold: GoldTable, staging: str) -> int:
        """``COPY INTO`` the staging table from the version's live files on the external stage.

        ``FILES`` lists exactly the files of the Delta log's version (relative to the table
        folder, as the log records them); the other files in the folder are never loaded.
        """
        lake_root = self.lake.root.rstrip("/")
        if not gold.uri.startswith(lake_root + "/"):
            raise JobError(f"gold table '{gold.name}' at {gold.uri} is not under the lake root")
        folder = gold.uri[len(lake_root) + 1 :]
        stage = self.config.stage.lstrip("@")  # type: ignore[union-attr]
        loaded = 0
        files = list(gold.snapshot.relative_files)
        for start in range(0, len(files), _COPY_FILES_PER_STATEMENT):
            batch = files[start : start + _COPY_FILES_PER_STATEMENT]
            listed = ", ".join(string_literal(f) for f in batch)
            cur = self.execute(
                f"COPY INTO {staging} FROM @{stage}/{folder}/ "
                f"FILES = ({listed}) "
                f"FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE) "
                # FORCE: the staging table is new, so load every listed file whatever the
                # stage's load history says about earlier runs.
                f"MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT FORCE = TRUE"
            )
            loaded += _rows_loaded(cur)
        log.info(
            "publish %s: copied %d rows from %d files on stage @%s",
            gold.name,
            loaded,
            len(files),
            stage,
        )
        return loaded

    def _write_batches(self, gold: GoldTable, dataset: Any, staging_table: str) -> int:
        import pandas as pd
        from snowflake.connector import pandas_tools

        chunk_size = self.config.chunk_size
        loaded = 0
        for chunk in _chunks(dataset, chunk_size):
            frame = chunk.rename_columns([n.upper() for n in chunk.column_names]).to_pandas(
                types_mapper=pd.ArrowDtype  # keeps decimal(p,s) and timestamps exact
            )
            # Looked up on the module at call time, so fakesnow.patch() can stand in for it.
            # No database or schema: the temporary staging table is the session's own.
            success, _, rows, _ = pandas_tools.write_pandas(
                self.connection,
                frame,
                staging_table,
                chunk_size=chunk_size,
                quote_identifiers=True,
                use_logical_type=True,
                auto_create_table=False,
            )
            if not success:
                raise JobError(f"publish {gold.name}: write_pandas did not load every chunk")
            loaded += int(rows)
        log.info("publish %s: uploaded %d rows in chunks of %d", gold.name, loaded, chunk_size)
        return loaded

    # --- applying the change ----------------------------------------------------------------

    def merge(self, step: MergeStep) -> None:
        # No WHEN NOT MATCHED BY SOURCE in Snowflake: a DELETE in the same transaction first.
        self.delete_missing(step, lambda result: result.rowcount)
        merge = sql.merge_sql(step.target, step.source, step.keys, step.names, q)
        counts = _merge_counts(self.execute(merge))
        inserted, updated = counts.get("inserted", 0), counts.get("updated", 0)
        check_applied(step.table, "MERGE (inserts)", step.changes.inserted, inserted)
        check_applied(step.table, "MERGE (updates)", step.changes.updated, updated)


def session_parameters(config: SnowflakeConfig) -> dict[str, Any]:
    """The session every connection opens: UTC, a statement timeout, a query tag."""
    return {
        "TIMEZONE": "UTC",
        "STATEMENT_TIMEOUT_IN_SECONDS": config.statement_timeout_seconds,
        "QUERY_TAG": query_tag(),
    }


def query_tag(**fields: Any) -> str:
    """The JSON query tag: the application and job, then what the statements are for."""
    values = {"app": "medallion", "job": QUERY_TAG_JOB}
    values.update({k: v.isoformat() if isinstance(v, dt.date) else v for k, v in fields.items()})
    return json.dumps(values, separators=(",", ":"))


def string_literal(text: str) -> str:
    """A Snowflake string literal (backslash is an escape character in Snowflake strings)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _chunks(dataset: Any, rows: int) -> Iterator[pa.Table]:
    """The dataset as tables of ``rows`` rows (the last one shorter), read batch by batch."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in dataset.to_batches(batch_size=rows):
        pending.append(batch)
        size += batch.num_rows
        while size >= rows:
            table = pa.Table.from_batches(pending, schema=dataset.schema)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(pending, schema=dataset.schema)


def _merge_counts(cur: Any) -> dict[str, int]:
    """Snowflake's MERGE result: one row, a column per action ("number of rows inserted")."""
    row = cur.fetchone() or ()
    names = [d[0].lower() for d in cur.description or ()]
    return {name.rsplit(" ", 1)[-1]: int(value) for name, value in zip(names, row)}


def _rows_loaded(cur: Any) -> int:
    names = [d[0].lower() for d in cur.description or ()]
    rows = cur.fetchall()
    if "rows_loaded" not in names:
        return 0  # "Copy executed with 0 files processed."
    index = names.index("rows_loaded")
    return sum(int(r[index]) for r in rows)
