"""The warehouse publisher's interface, its result type, and what every target shares.

A ``Warehouse`` publishes one gold table at a time: it loads the latest version of the gold
Delta table (read through its transaction log, never by listing the folder) into a staging table unique to the run, makes the source one row per key, counts what will change, and
applies one ``MERGE`` (or, in overwrite mode, a delete and an insert) in one transaction per
table. Targets: ``DuckDBWarehouse`` (embedded, the local default) and ``SnowflakeWarehouse``.

The policies every target follows, in one place:

* duplicate keys in the source: gold promises unique keys, so a duplicate is a bug upstream. The
  publisher keeps one row per key, chosen deterministically (the smallest row when ordering by
  every column), logs a warning and reports ``duplicates_removed``; a null key fails.
* schema drift: a column new in gold is added to the target (``ALTER TABLE ... ADD COLUMN``); a
  column the target has but gold lost, or a column whose type changed, fails naming both.
"""

from __future__ import annotations

import logging
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from medallion.delta_reader import DeltaSnapshot, open_delta
from medallion.errors import JobError
from medallion.lake import Lake

log = logging.getLogger(__name__)

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


class Warehouse(ABC):
    """A publish target. Use as a context manager; ``close`` releases the connection."""

    kind: str = "warehouse"

    @abstractmethod
    def publish_table(
        self, gold: GoldTable, keys: Sequence[str], mode: PublishMode, run_id: str
    ) -> PublishResult:
        """Publish one gold table into its warehouse table, in one transaction."""

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
