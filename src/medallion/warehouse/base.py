"""The warehouse publisher: its interface, its result type, and the one publish algorithm.

``Warehouse.publish_table`` is the algorithm, written once (after koheesio's ``Writer``, whose
``write`` calls the target's ``execute``): for one gold table it creates or widens the target,
loads the latest version of the gold Delta table (read through its transaction log, never by
listing the folder) into a staging table unique to the run, makes the source one row per key,
counts what will change, applies one ``MERGE`` (or, in overwrite mode, a delete and an insert) in
one transaction, checks the counts, drops the staging table and logs one line. A target supplies
only what differs: its connection, how it names tables, the gold-to-target type mapping, how
gold reaches the staging table, how its ``MERGE`` deletes keys gone from gold and reports counts,
and whether its DDL can join the transaction. Targets: ``DuckDBWarehouse`` (embedded, the local
default) and ``SnowflakeWarehouse``.

The policies every target follows, in one place:

* duplicate keys in the source: gold promises unique keys, so a duplicate is a bug upstream. The
  publisher keeps one row per key, chosen deterministically (the smallest row when ordering by
  every column), logs a warning and reports ``duplicates_removed``; a null key fails.
* schema drift: a column new in gold is added to the target (``ALTER TABLE ... ADD COLUMN``); a
  column the target has but gold lost, or a column whose type changed, fails naming both.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from medallion.delta_reader import DeltaSnapshot, open_delta
from medallion.errors import JobError
from medallion.faults import crash_point
from medallion.lake import Lake
from medallion.warehouse import sql

log = logging.getLogger(__name__)

q = sql.quote_double

PublishMode = Literal["merge", "overwrite"]
MODES: tuple[str, ...] = ("merge", "overwrite")


@dataclass(frozen=True)
class PublishResult:
    """What publishing one table did. Counts compare the deduplicated source with the target."""

    table: str
    mode: str
    rows_source: int  # rows in the gold table's version, duplicates included
    inserted: int
    updated: int
    deleted: int
    unchanged: int
    duplicates_removed: int = 0
    rows_target: int = 0  # rows in the warehouse table after the publish
    columns_added: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["columns_added"] = list(self.columns_added)
        return out


@dataclass(frozen=True)
class GoldTable:
    """One gold Delta table at the version the publish reads: the log's live files only.

    ``snapshot`` is pinned when the table is located, so every step of a publish (schema,
    staging load, counts) reads the same version even if gold commits meanwhile.
    """

    name: str
    uri: str
    snapshot: DeltaSnapshot = field(repr=False, compare=False)

    @property
    def version(self) -> int:
        return self.snapshot.version

    @property
    def partitioned(self) -> bool:
        return bool(self.snapshot.partition_columns)

    def dataset(self) -> Any:
        """The version's rows as a pyarrow dataset, partition values from the log included."""
        return self.snapshot.dataset()


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the target's own spelling of the type


@dataclass(frozen=True)
class Changes:
    """What the publish will change, counted before it changes anything."""

    inserted: int
    updated: int
    deleted: int
    unchanged: int


@dataclass(frozen=True)
class MergeStep:
    """What a target's ``merge`` works with, every name already quoted or in target spelling."""

    table: str  # the gold table's name, for messages
    target: str  # the warehouse table
    staging: str  # the staging table (may hold duplicate keys)
    source: str  # the staging rows, one per key (the staging table itself when it has no dups)
    keys: list[str]
    names: list[str]  # every column, in order
    changes: Changes  # what the statements must change


class Cursor(Protocol):
    """What the algorithm needs of a statement's result (DB-API, DuckDB's connection too)."""

    rowcount: int

    def fetchone(self) -> Any: ...


class Warehouse(ABC):
    """A publish target. Use as a context manager; ``close`` releases the connection.

    ``publish_table`` is the algorithm every target runs; the abstract methods (and the few
    overridable ones) are the places where targets differ.
    """

    kind: str = "warehouse"
    # True when DDL can run inside the table's transaction (DuckDB): then everything, the
    # staging table included, is one transaction. False when DDL commits on its own
    # (Snowflake): then the DDL runs first and the data change gets its own transaction.
    ddl_in_transaction: bool = True
    # How the staging table is created: "" (an ordinary table) or "TEMPORARY" (the session's).
    staging_kind: str = ""

    # --- the connection ---------------------------------------------------------------------

    @abstractmethod
    def connect(self) -> None:
        """Open the connection now (it otherwise opens on first use); a ``JobError`` if it fails."""

    @abstractmethod
    def describe(self) -> str:
        """Where the warehouse is, for log lines and the audit record (no secrets)."""

    def close(self) -> None:  # noqa: B027  (optional for targets without a connection)
        """Release the connection."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def execute(self, statement: str) -> Cursor:
        """Run one statement; its result can be fetched from what is returned."""

    # --- names and types --------------------------------------------------------------------

    @abstractmethod
    def table_name(self, table: str) -> str:
        """The quoted, qualified name of a warehouse table."""

    def staging_table(self, table: str, run_id: str) -> str:
        """The quoted name of the run's staging table for ``table``."""
        return self.table_name(staging_name(table, run_id))

    def column_name(self, name: str) -> str:
        """A gold column's name as the target stores it (keys are named in gold's spelling)."""
        return name

    @abstractmethod
    def columns(self, table: str) -> list[Column]:
        """The columns of a warehouse table, in order; empty when it does not exist."""

    def same_type(self, a: str, b: str) -> bool:
        """Whether two of the target's type spellings are the same type."""
        return a == b

    # --- gold into the staging table --------------------------------------------------------

    def start_table(self, gold: GoldTable, run_id: str, run_date: dt.date | None) -> None:  # noqa: B027
        """Called before anything else is done for a table (Snowflake tags its session)."""

    @abstractmethod
    def gold_source(self, gold: GoldTable, run_id: str) -> AbstractContextManager[Any]:
        """The pinned gold version as the target reads it, for the length of one publish."""

    @abstractmethod
    def source_columns(self, table: str, source: Any) -> list[Column]:
        """The gold columns in the target's names and types (the type mapping)."""

    @abstractmethod
    def load_staging(self, gold: GoldTable, source: Any, staging: str) -> int:
        """Load every row of the gold version into the (empty) staging table; the rows loaded."""

    # --- applying the change ----------------------------------------------------------------

    @abstractmethod
    def merge(self, step: MergeStep) -> None:
        """Merge the source (one row per key) into the target, deleting keys gone from gold, and
        check (``check_applied``) that the statements changed exactly ``step.changes``."""

    def delete_missing(self, step: MergeStep, deleted: Callable[[Cursor], int]) -> None:
        """Delete the target rows whose key is gone from gold, in the MERGE's transaction, and
        check the count; ``deleted`` reads it from the statement's result (targets differ)."""
        target_table = step.target.rsplit(".", 1)[-1]
        delete = sql.delete_missing_sql(step.target, target_table, step.staging, step.keys, q)
        count = deleted(self.execute(delete))
        check_applied(step.table, "DELETE of rows gone from gold", step.changes.deleted, count)

    # --- the algorithm ----------------------------------------------------------------------

    def publish_table(
        self,
        gold: GoldTable,
        keys: Sequence[str],
        mode: PublishMode,
        run_id: str,
        run_date: dt.date | None = None,
    ) -> PublishResult:
        """Publish one gold table into its warehouse table, in one transaction."""
        started = time.perf_counter()
        self.start_table(gold, run_id, run_date)
        staging = self.staging_table(gold.name, run_id)
        with self.gold_source(gold, run_id) as source:
            try:
                result = self._publish(gold, source, staging, list(keys), mode)
            finally:
                if not self.ddl_in_transaction:  # DDL commits: drop after COMMIT or ROLLBACK
                    self._drop_staging(staging, gold.name)
        log.info(
            "publish %s (gold version %d) -> %s (%s): %d source rows, inserted=%d updated=%d "
            "deleted=%d unchanged=%d duplicates_removed=%d, %d rows in target, %.2fs",
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
        self, gold: GoldTable, source: Any, staging: str, keys: list[str], mode: PublishMode
    ) -> PublishResult:
        table = gold.name
        target = self.table_name(table)
        in_transaction = self.ddl_in_transaction
        if in_transaction:
            self.execute("BEGIN TRANSACTION")
        try:
            # The target: created from the gold schema, or widened by gold's new columns.
            columns = self.source_columns(table, source)
            check_keys(table, keys, columns)
            names = [c.name for c in columns]
            target_keys = [self.column_name(k) for k in keys]
            added = self._create_or_widen(table, target, columns, target_keys)

            # The staging table unique to the run, loaded with the pinned gold version.
            self.execute(f"DROP TABLE IF EXISTS {staging}")
            self.execute(
                sql.create_table_sql(
                    staging, [(c.name, c.type) for c in columns], [], q, kind=self.staging_kind
                )
            )
            loaded = self.load_staging(gold, source, staging)
            crash_point("publish.before_merge")

            # One source row per key before anything is merged (Snowflake rejects a
            # nondeterministic MERGE, and a rerun must pick the same row).
            stats = self.execute(sql.source_stats_sql(staging, target_keys, q)).fetchone()
            rows_source, null_keys, distinct_keys = (int(v) for v in stats)
            if rows_source != loaded:
                raise JobError(
                    f"publish {table}: {loaded} rows were loaded but the staging table holds "
                    f"{rows_source}"
                )
            check_null_keys(table, keys, null_keys)
            duplicates = rows_source - distinct_keys
            warn_duplicates(table, keys, duplicates)
            deduped = sql.dedup_source(staging, target_keys, names, q) if duplicates else staging

            # The data change: counted, applied, cross-checked, committed.
            if not in_transaction:
                self.execute("BEGIN TRANSACTION")
                in_transaction = True
            values = [n for n in names if n not in target_keys]
            counted = self.execute(
                sql.change_counts_sql(target, deduped, target_keys, values, q)
            ).fetchone()
            changes = Changes(*(int(v) for v in counted))
            if mode == "merge":
                self.merge(MergeStep(table, target, staging, deduped, target_keys, names, changes))
            else:
                self.execute(f"DELETE FROM {target}")
                self.execute(sql.insert_all_sql(target, deduped, names, q))
            (rows_target,) = self.execute(sql.count_sql(target)).fetchone()
            check_target_rows(table, distinct_keys, int(rows_target))
            if self.ddl_in_transaction:
                self.execute(f"DROP TABLE {staging}")
            self.execute("COMMIT")
        except BaseException:
            if in_transaction:
                self._rollback(table)
            raise
        return PublishResult(
            table=table,
            mode=mode,
            rows_source=rows_source,
            inserted=changes.inserted,
            updated=changes.updated,
            deleted=changes.deleted,
            unchanged=changes.unchanged,
            duplicates_removed=duplicates,
            rows_target=int(rows_target),
            columns_added=tuple(c.name for c in added),
        )

    def _create_or_widen(
        self, table: str, target: str, columns: Sequence[Column], keys: Sequence[str]
    ) -> list[Column]:
        """Create the target from the gold schema, or add gold's new columns; those added."""
        existing = self.columns(table)
        if not existing:
            self.execute(sql.create_table_sql(target, [(c.name, c.type) for c in columns], keys, q))
            return []
        added = plan_drift(table, target, columns, existing, same_type=self.same_type)
        for column in added:
            log.warning(
                "publish %s: gold has a new column %s %s; adding it to %s",
                table,
                column.name,
                column.type,
                target,
            )
            self.execute(f"ALTER TABLE {target} ADD COLUMN {q(column.name)} {column.type}")
        return added

    def _drop_staging(self, staging: str, table: str) -> None:
        try:
            self.execute(f"DROP TABLE IF EXISTS {staging}")
        except Exception as exc:  # never hide the publish's own outcome behind a cleanup error
            log.error(
                "publish %s: could not drop staging table %s (%s); drop it by hand",
                table,
                staging,
                first_line(exc),
            )

    def _rollback(self, table: str) -> None:
        try:
            self.execute("ROLLBACK")
        except Exception as exc:  # keep the original error; this one only explains the state
            log.error("publish %s: ROLLBACK failed too: %s", table, first_line(exc))


# --- the gold side --------------------------------------------------------------------------


def locate_gold(lake: Lake, table: str) -> GoldTable:
    """The latest version of gold table ``table``; a ``JobError`` naming it when it is missing.

    The files come from the Delta log: a file an earlier version held and a later commit
    removed (an updated row's old file) is still in the folder but is never read.
    """
    uri = lake.gold(table)
    snapshot = open_delta(uri)  # a JobError naming the table when it is not Delta
    if snapshot is None:
        raise JobError(
            f"gold table '{table}' has not been produced yet (no Delta table at {uri}); "
            f"run silver_to_gold for this date first"
        )
    return GoldTable(name=table, uri=uri, snapshot=snapshot)


# --- shared policies ------------------------------------------------------------------------


def staging_name(table: str, run_id: str) -> str:
    """``stg_<table>_<run id hex>``: unique to the run, so concurrent runs never share one."""
    try:
        token = uuid.UUID(run_id).hex
    except ValueError:
        token = re.sub(r"[^0-9A-Za-z]", "", run_id).lower() or uuid.uuid4().hex
    return f"stg_{table}_{token}"


def check_keys(table: str, keys: Sequence[str], columns: Sequence[Column]) -> None:
    names = {c.name.lower() for c in columns}
    missing = [k for k in keys if k.lower() not in names]
    if not keys or missing:
        raise JobError(
            f"gold table '{table}' has no key column {', '.join(repr(k) for k in missing)}; "
            f"the publisher merges it on {', '.join(keys) or '(no key)'}"
        )


def plan_drift(
    table: str,
    target_name: str,
    source: Sequence[Column],
    target: Sequence[Column],
    same_type: Any = None,
) -> list[Column]:
    """The gold columns to add to the target; a ``JobError`` for a lost or retyped column.

    Names compare case-insensitively (Snowflake upper-cases them). ``same_type(a, b)`` decides
    whether two type spellings are the same type (default: equal strings).
    """
    same = same_type or (lambda a, b: a == b)
    by_name = {c.name.lower(): c for c in target}
    gold_names = {c.name.lower() for c in source}
    lost = [c.name for c in target if c.name.lower() not in gold_names]
    if lost:
        raise JobError(
            f"warehouse table {target_name} has column(s) {', '.join(lost)} that gold table "
            f"'{table}' no longer has; the publisher never drops data: restore the column in "
            f"gold, or drop it from the warehouse table deliberately"
        )
    for column in source:
        existing = by_name.get(column.name.lower())
        if existing is not None and not same(existing.type, column.type):
            raise JobError(
                f"column {column.name} of warehouse table {target_name} is {existing.type} but "
                f"gold table '{table}' now has {column.type}; change the type deliberately "
                f"(or drop and republish the table): the publisher does not convert types"
            )
    return [c for c in source if c.name.lower() not in by_name]


def warn_duplicates(table: str, keys: Sequence[str], duplicates: int) -> None:
    if duplicates:
        log.warning(
            "publish %s: gold has %d duplicate row(s) on key (%s); kept one row per key "
            "(deterministically) - gold promises unique keys, check silver_to_gold",
            table,
            duplicates,
            ", ".join(keys),
        )


def check_null_keys(table: str, keys: Sequence[str], null_keys: int) -> None:
    if null_keys:
        raise JobError(
            f"gold table '{table}' has {null_keys} row(s) with a null key ({', '.join(keys)}); "
            f"a row without a key cannot be merged: fix silver_to_gold"
        )


def check_applied(table: str, what: str, expected: int, actual: int) -> None:
    """Fail (and so roll back) when a statement changed a different number of rows than counted."""
    if expected != actual:
        raise JobError(
            f"publish {table}: {what} affected {actual} row(s) but {expected} were counted "
            f"before it; the target changed during the publish or the counts are wrong; "
            f"rolled back"
        )


def check_target_rows(table: str, expected: int, actual: int) -> None:
    """A full-snapshot publish leaves exactly one target row per source key."""
    if expected != actual:
        raise JobError(
            f"publish {table}: the warehouse table would hold {actual} row(s) but gold has "
            f"{expected} key(s); rolled back"
        )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
