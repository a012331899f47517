"""fakesnow in place of the Snowflake connector, recording every statement the adapter runs.

``fakesnow.patch()`` replaces ``snowflake.connector.connect`` and ``write_pandas`` and runs the
Snowflake SQL on DuckDB. Two things it cannot run are bridged here, the SQL under test unchanged:

* ``ALTER SESSION SET QUERY_TAG`` is not implemented by fakesnow 0.12.1; it is one of fakesnow's
  ``nop_regexes`` (accepted, not run), and the tests read the tag from the recorded statement.
* fakesnow emulates ``MERGE`` with a TEMPORARY helper table and, for every CREATE TABLE with
  properties, records a (null) table comment in its own ``_fs_global`` database; DuckDB refuses
  that second write inside an explicit transaction, so a MERGE between BEGIN and COMMIT fails
  under fakesnow only. Skipping the null-comment bookkeeping lets fakesnow run the publisher's
  real BEGIN / DELETE / MERGE / COMMIT sequence.
* fakesnow's ``COPY INTO`` looks its target's columns up by a name it qualifies with the
  session's database and schema, which misses a TEMPORARY table (DuckDB keeps those in its own
  ``temp`` catalog); an unqualified target it cannot find that way is looked up as the session
  resolves the name, which is what Snowflake does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

NOT_IN_FAKESNOW = [r"ALTER SESSION SET QUERY_TAG\b"]


@contextmanager
def fake_snowflake(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Patch the connector with fakesnow; yields the statements executed, in order."""
    import duckdb
    import fakesnow
    import fakesnow.copy_into as copy_into
    import fakesnow.info_schema as info_schema
    from fakesnow.cursor import FakeSnowflakeCursor

    original_comment = info_schema.insert_table_comment_sql

    def comment_sql(catalog, schema, table, comment):
        if comment is None:
            return "SELECT 1 WHERE FALSE"
        return original_comment(catalog, schema, table, comment)

    original_describe = copy_into._describe_table

    def describe_table(table, duck_conn, current_database, current_schema):
        try:
            return original_describe(table, duck_conn, current_database, current_schema)
        except duckdb.CatalogException:
            if table.catalog or table.db:
                raise
            described = duck_conn.execute(f'DESCRIBE "{table.name}"').fetchall()
            return [(row[0], row[1]) for row in described]

    statements: list[str] = []
    original_execute = FakeSnowflakeCursor.execute

    def recording_execute(self, command, *args, **kwargs):
        statements.append(command)
        return original_execute(self, command, *args, **kwargs)

    monkeypatch.setattr(info_schema, "insert_table_comment_sql", comment_sql)
    monkeypatch.setattr(copy_into, "_describe_table", describe_table)
    monkeypatch.setattr(FakeSnowflakeCursor, "execute", recording_execute)
    with fakesnow.patch(nop_regexes=NOT_IN_FAKESNOW):
        yield statements
