"""fakesnow in place of the Snowflake connector, recording every statement the adapter runs.

``fakesnow.patch()`` replaces ``snowflake.connector.connect`` and ``write_pandas`` and runs the
Snowflake SQL on DuckDB. What it cannot run is bridged here, the SQL under test unchanged:

* fakesnow emulates ``MERGE`` with a TEMPORARY helper table and, for every CREATE TABLE with
  properties, records a (null) table comment in its own ``_fs_global`` database; DuckDB refuses
  that second write inside an explicit transaction, so a MERGE between BEGIN and COMMIT fails
  under fakesnow only. Skipping the null-comment bookkeeping lets fakesnow run the publisher's
  real BEGIN / DELETE / MERGE / COMMIT sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def fake_snowflake(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Patch the connector with fakesnow; yields the statements executed, in order."""
    import fakesnow
    import fakesnow.info_schema as info_schema
    from fakesnow.cursor import FakeSnowflakeCursor

    original_comment = info_schema.insert_table_comment_sql

    def comment_sql(catalog, schema, table, comment):
        if comment is None:
            return "SELECT 1 WHERE FALSE"
        return original_comment(catalog, schema, table, comment)

    statements: list[str] = []
    original_execute = FakeSnowflakeCursor.execute

    def recording_execute(self, command, *args, **kwargs):
        statements.append(command)
        return original_execute(self, command, *args, **kwargs)

    monkeypatch.setattr(info_schema, "insert_table_comment_sql", comment_sql)
    monkeypatch.setattr(FakeSnowflakeCursor, "execute", recording_execute)
    with fakesnow.patch():
        yield statements
