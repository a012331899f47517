"""The embedded warehouse: a DuckDB file (``warehouse.duckdb.path``), the local default.

Gold is read through its Delta log: the pinned version's pyarrow dataset (exactly the log's live
files, with the partition values the log records) is registered in DuckDB, which scans it in
Arrow batches, so no row is converted to Python objects and no file a later commit removed is
ever read. DuckDB's own Delta and httpfs extensions are not used (they are downloaded at run
time). Everything for one table runs in one DuckDB transaction, DDL included: creating or
widening the target, loading the staging table, counting, the ``MERGE`` and dropping the
staging table. A failure rolls all of it back, staging table included.

The lake may be a folder or on S3 (delta-rs reads the log and pyarrow the files, with the
credentials and endpoint of the standard AWS environment variables); the DuckDB file itself is
local.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import duckdb

from medallion.config import DuckDBConfig
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.warehouse import sql
from medallion.warehouse.base import (
    Column,
    GoldTable,
    PublishMode,
    PublishResult,
    Warehouse,
    check_applied,
    check_keys,
    check_null_keys,
    check_target_rows,
    plan_drift,
    staging_name,
    warn_duplicates,
)

log = logging.getLogger(__name__)

q = sql.quote_double


class DuckDBWarehouse(Warehouse):
    """Publishes into tables of one schema of a DuckDB database file."""

    kind = "duckdb"

    def __init__(self, config: DuckDBConfig) -> None:
        self.path = os.path.abspath(config.path) if config.path != ":memory:" else config.path
        self.schema = config.schema_
        self._con: duckdb.DuckDBPyConnection | None = None

    def describe(self) -> str:
        return f"duckdb {self.path} (schema {self.schema})"

    def connect(self) -> None:
        self.connection  # noqa: B018  (opens it)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if self.path != ":memory:":
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
            try:
                self._con = duckdb.connect(self.path)
            except duckdb.IOException as exc:
                raise JobError(
                    f"cannot open the DuckDB warehouse {self.path}: {str(exc).splitlines()[0]} "
                    f"(close any other process, such as a duckdb shell, that has it open)"
                ) from exc
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(self.schema)}")
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def table_name(self, table: str) -> str:
        return f"{q(self.schema)}.{q(table)}"

    def columns(self, table: str) -> list[Column]:
        """The columns of a warehouse table, in order; empty when it does not exist."""
        rows = self.connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [self.schema, table],
        ).fetchall()
        return [Column(name, type_) for name, type_ in rows]

    # --- publish ----------------------------------------------------------------------------

    def publish_table(
        self, gold: GoldTable, keys: Sequence[str], mode: PublishMode, run_id: str
    ) -> PublishResult:
        con = self.connection
        started = time.perf_counter()
        # The pinned Delta version as a view over its pyarrow dataset, for this publish only.
        view = f"gold_{staging_name(gold.name, run_id)}"
        con.register(view, gold.dataset())
        con.execute("BEGIN TRANSACTION")
        try:
            result = self._publish(con, gold, q(view), list(keys), mode, run_id)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con, gold.name)
            raise
        finally:
            _unregister(con, view)
        log.info(
            "publish %s (gold version %d) -> %s (%s): %d source rows, inserted=%d updated=%d deleted=%d "
            "unchanged=%d duplicates_removed=%d, %d rows in target, %.2fs",
            gold.name,
            gold.version,
            self.table_name(gold.name),
            mode,
            result.rows_source,
            result.inserted,
            result.updated,
            result.deleted,
            result.unchanged,
            result.duplicates_removed,
            result.rows_target,
            time.perf_counter() - started,
        )
        return result

    def _publish(
        self,
        con: duckdb.DuckDBPyConnection,
        gold: GoldTable,
        reader: str,
        keys: list[str],
        mode: PublishMode,
        run_id: str,
    ) -> PublishResult:
        table = gold.name
        target = self.table_name(table)
        source_columns = [
            Column(name, type_)
            for name, type_, *_ in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        ]
        check_keys(table, keys, source_columns)
        names = [c.name for c in source_columns]

        existing = self.columns(table)
        added: list[Column] = []
        if not existing:
            con.execute(
                sql.create_table_sql(target, [(c.name, c.type) for c in source_columns], keys, q)
            )
        else:
            added = plan_drift(table, target, source_columns, existing)
            for column in added:
                log.warning(
                    "publish %s: gold has a new column %s %s; adding it to %s",
                    table,
                    column.name,
                    column.type,
                    target,
                )
                con.execute(f"ALTER TABLE {target} ADD COLUMN {q(column.name)} {column.type}")

        staging = f"{q(self.schema)}.{q(staging_name(table, run_id))}"
        con.execute(f"DROP TABLE IF EXISTS {staging}")
        con.execute(f"CREATE TABLE {staging} AS SELECT * FROM {reader}")
        crash_point("publish.before_merge")

        rows_source, null_keys, distinct_keys = con.execute(
            sql.source_stats_sql(staging, keys, q)
        ).fetchone()
        check_null_keys(table, keys, null_keys)
        duplicates = rows_source - distinct_keys
        warn_duplicates(table, keys, duplicates)
        source = sql.dedup_source(staging, keys, names, q) if duplicates else staging

        values = [n for n in names if n not in keys]
        inserted, updated, deleted, unchanged = con.execute(
            sql.change_counts_sql(target, source, keys, values, q)
        ).fetchone()

        if mode == "merge":
            (affected,) = con.execute(
                sql.merge_sql(target, source, keys, names, q, delete_missing=True)
            ).fetchone()
            check_applied(table, "MERGE", inserted + updated + deleted, affected)
        else:
            con.execute(f"DELETE FROM {target}")
            con.execute(sql.insert_all_sql(target, source, names, q))

        (rows_target,) = con.execute(sql.count_sql(target)).fetchone()
        check_target_rows(table, distinct_keys, rows_target)
        con.execute(f"DROP TABLE {staging}")
        return PublishResult(
            table=table,
            mode=mode,
            rows_source=rows_source,
            inserted=inserted,
            updated=updated,
            deleted=deleted,
            unchanged=unchanged,
            duplicates_removed=duplicates,
            rows_target=rows_target,
            columns_added=tuple(c.name for c in added),
        )


def _unregister(con: duckdb.DuckDBPyConnection, view: str) -> None:
    try:
        con.unregister(view)
    except duckdb.Error as exc:  # never hide the publish's own outcome behind a cleanup error
        log.warning("publish: could not drop the view %s: %s", view, exc)


def _rollback(con: duckdb.DuckDBPyConnection, table: str) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:  # keep the original error; this one only explains the state
        log.error("publish %s: ROLLBACK failed too: %s", table, exc)
