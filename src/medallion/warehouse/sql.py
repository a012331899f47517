"""SQL the warehouse targets share: dedup, change counts, MERGE, overwrite.

Every builder takes already-quoted relation names and a ``quote`` function for column names, so
the same text serves DuckDB (lower-case quoted names) and Snowflake (upper-case quoted names).
Column lists always come from the table's schema; nothing here knows a table.

The statements use only syntax both engines accept (``QUALIFY``, ``IS DISTINCT FROM``, ``MERGE``
with ``WHEN MATCHED AND ...``); keys gone from gold are deleted by a ``DELETE`` of their own on
both (Snowflake has no ``WHEN NOT MATCHED BY SOURCE``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Quote = Callable[[str], str]

TARGET = "tgt"
SOURCE = "src"
# Marker columns for the change count; the prefix keeps them clear of any gold column.
_IN_SOURCE = "__medallion_in_source"
_IN_TARGET = "__medallion_in_target"


def quote_double(name: str) -> str:
    """An identifier in double quotes, embedded quotes doubled (SQL standard)."""
    return '"' + name.replace('"', '""') + '"'


def _key_match(keys: Sequence[str], quote: Quote, left: str = TARGET, right: str = SOURCE) -> str:
    return " AND ".join(f"{left}.{quote(k)} = {right}.{quote(k)}" for k in keys)


def _changed(values: Sequence[str], quote: Quote) -> str:
    """True when any non-key column differs, nulls compared as values."""
    if not values:
        return "FALSE"
    return (
        "("
        + " OR ".join(f"{TARGET}.{quote(c)} IS DISTINCT FROM {SOURCE}.{quote(c)}" for c in values)
        + ")"
    )


def source_stats_sql(staging: str, keys: Sequence[str], quote: Quote) -> str:
    """One row: source rows, rows with a null key, distinct keys."""
    key_list = ", ".join(quote(k) for k in keys)
    null_key = " OR ".join(f"{quote(k)} IS NULL" for k in keys)
    return (
        f"SELECT COUNT(*) AS rows_source, "
        f"COALESCE(SUM(CASE WHEN {null_key} THEN 1 ELSE 0 END), 0) AS null_keys, "
        f"(SELECT COUNT(*) FROM (SELECT DISTINCT {key_list} FROM {staging}) AS k) AS distinct_keys "
        f"FROM {staging}"
    )


def dedup_source(staging: str, keys: Sequence[str], columns: Sequence[str], quote: Quote) -> str:
    """The staging rows, one per key: the first when ordering by every other column.

    Rows equal in every column are interchangeable, so the survivor is the same on every run
    whatever the file order.
    """
    select = ", ".join(quote(c) for c in columns)
    partition = ", ".join(quote(k) for k in keys)
    ordering = [c for c in columns if c not in keys] or list(keys)
    order = ", ".join(f"{quote(c)} ASC NULLS LAST" for c in ordering)
    return (
        f"(SELECT {select} FROM {staging} "
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {order}) = 1)"
    )


def change_counts_sql(
    target: str, source: str, keys: Sequence[str], values: Sequence[str], quote: Quote
) -> str:
    """One row: rows to insert, update, delete and leave unchanged, source against target.

    ``source`` is a relation (a table name or a parenthesised query) with one row per key.
    """
    column_list = ", ".join(quote(c) for c in [*keys, *values])
    both = f"{SOURCE}.{_IN_SOURCE} = 1 AND {TARGET}.{_IN_TARGET} = 1"
    changed = _changed(values, quote)
    return (
        f"SELECT "
        f"COALESCE(SUM(CASE WHEN {TARGET}.{_IN_TARGET} IS NULL THEN 1 ELSE 0 END), 0) AS inserted, "
        f"COALESCE(SUM(CASE WHEN {both} AND {changed} THEN 1 ELSE 0 END), 0) AS updated, "
        f"COALESCE(SUM(CASE WHEN {SOURCE}.{_IN_SOURCE} IS NULL THEN 1 ELSE 0 END), 0) AS deleted, "
        f"COALESCE(SUM(CASE WHEN {both} AND NOT {changed} THEN 1 ELSE 0 END), 0) AS unchanged "
        f"FROM (SELECT {column_list}, 1 AS {_IN_SOURCE} FROM {source} AS s) AS {SOURCE} "
        f"FULL OUTER JOIN (SELECT {column_list}, 1 AS {_IN_TARGET} FROM {target} AS t) AS {TARGET} "
        f"ON {_key_match(keys, quote)}"
    )


def merge_sql(
    target: str,
    source: str,
    keys: Sequence[str],
    columns: Sequence[str],
    quote: Quote,
) -> str:
    """``MERGE`` the source (one row per key) into the target: insert the new keys, update the
    matched rows whose non-key columns differ (so a rerun touches nothing). Keys gone from gold
    are deleted by :func:`delete_missing_sql` in the same transaction (Snowflake has no
    ``WHEN NOT MATCHED BY SOURCE``; on DuckDB that clause made the MERGE read the whole target)."""
    values = [c for c in columns if c not in keys]
    clauses = []
    if values:
        assignments = ", ".join(f"{quote(c)} = {SOURCE}.{quote(c)}" for c in values)
        clauses.append(f"WHEN MATCHED AND {_changed(values, quote)} THEN UPDATE SET {assignments}")
    column_list = ", ".join(quote(c) for c in columns)
    value_list = ", ".join(f"{SOURCE}.{quote(c)}" for c in columns)
    clauses.append(f"WHEN NOT MATCHED THEN INSERT ({column_list}) VALUES ({value_list})")
    return (
        f"MERGE INTO {target} AS {TARGET}\nUSING {source} AS {SOURCE}\n"
        f"ON {_key_match(keys, quote)}\n" + "\n".join(clauses)
    )


def differing_source_sql(
    target: str, source: str, keys: Sequence[str], columns: Sequence[str], quote: Quote
) -> str:
    """The source rows (one per key) that the target lacks or holds with another value, as a
    parenthesised query: what a MERGE has to apply, without the rows it would leave as they are.

    A gold table is published whole every day while a few percent of its rows change; handing the
    MERGE only these rows is what keeps the publish proportional to the change (measured on
    DuckDB, docs/PERFORMANCE.md). The new rows are those without a target row of the same key
    (keys are never null: the publish refuses null keys first).
    """
    values = [c for c in columns if c not in keys]
    select = ", ".join(f"{SOURCE}.{quote(c)}" for c in columns)
    missing = " OR ".join(f"{TARGET}.{quote(k)} IS NULL" for k in keys)
    return (
        f"(SELECT {select} FROM {source} AS {SOURCE} LEFT JOIN {target} AS {TARGET} "
        f"ON {_key_match(keys, quote)} WHERE {missing} OR {_changed(values, quote)})"
    )


def delete_missing_sql(
    target: str, target_table: str, staging: str, keys: Sequence[str], quote: Quote
) -> str:
    """Delete target rows whose key is not in the source (gold tables are full snapshots).

    ``target_table`` is the target's last name part, which qualifies its columns in the
    correlated subquery (Snowflake's ``DELETE`` takes no alias).
    """
    match = " AND ".join(f"{SOURCE}.{quote(k)} = {target_table}.{quote(k)}" for k in keys)
    return (
        f"DELETE FROM {target} WHERE NOT EXISTS (SELECT 1 FROM {staging} AS {SOURCE} WHERE {match})"
    )


def insert_all_sql(target: str, source: str, columns: Sequence[str], quote: Quote) -> str:
    column_list = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM {source} AS {SOURCE}"


def create_table_sql(
    table: str,
    columns: Sequence[tuple[str, str]],
    keys: Sequence[str],
    quote: Quote,
    kind: str = "",
) -> str:
    body = [
        f"{quote(name)} {type_}" + (" NOT NULL" if name in keys else "") for name, type_ in columns
    ]
    if keys:
        body.append(f"PRIMARY KEY ({', '.join(quote(k) for k in keys)})")
    prefix = f"CREATE {kind} TABLE" if kind else "CREATE TABLE"
    return f"{prefix} {table} ({', '.join(body)})"


def count_sql(table: str) -> str:
    return f"SELECT COUNT(*) FROM {table}"
