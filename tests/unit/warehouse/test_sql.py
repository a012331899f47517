"""The SQL builders: the statements the targets run, spelled out for one small table."""

from __future__ import annotations

from medallion.warehouse import sql

q = sql.quote_double
TARGET = '"main"."fact_orders"'
STAGING = '"main"."stg_fact_orders_0a1b"'


def test_merge_updates_changed_rows_and_inserts_new_ones():
    text = sql.merge_sql(TARGET, STAGING, ["order_id"], ["order_id", "status", "amount"], q)

    assert text == (
        'MERGE INTO "main"."fact_orders" AS tgt\n'
        'USING "main"."stg_fact_orders_0a1b" AS src\n'
        'ON tgt."order_id" = src."order_id"\n'
        'WHEN MATCHED AND (tgt."status" IS DISTINCT FROM src."status" OR '
        'tgt."amount" IS DISTINCT FROM src."amount") '
        'THEN UPDATE SET "status" = src."status", "amount" = src."amount"\n'
        'WHEN NOT MATCHED THEN INSERT ("order_id", "status", "amount") '
        'VALUES (src."order_id", src."status", src."amount")'
    )


def test_merge_has_no_not_matched_by_source_clause():
    text = sql.merge_sql(TARGET, STAGING, ["ID"], ["ID", "V"], q)

    assert "NOT MATCHED BY SOURCE" not in text
    assert text.endswith('WHEN NOT MATCHED THEN INSERT ("ID", "V") VALUES (src."ID", src."V")')


def test_merge_of_a_key_only_table_never_updates():
    text = sql.merge_sql(TARGET, STAGING, ["a", "b"], ["a", "b"], q)

    assert "WHEN MATCHED" not in text
    assert 'ON tgt."a" = src."a" AND tgt."b" = src."b"' in text


def test_dedup_keeps_the_first_row_per_key_ordering_by_the_other_columns():
    text = sql.dedup_source(STAGING, ["order_id"], ["order_id", "status", "amount"], q)

    assert text == (
        '(SELECT "order_id", "status", "amount" FROM "main"."stg_fact_orders_0a1b" '
        'QUALIFY ROW_NUMBER() OVER (PARTITION BY "order_id" '
        'ORDER BY "status" ASC NULLS LAST, "amount" ASC NULLS LAST) = 1)'
    )


def test_delete_missing_qualifies_the_target_by_its_table_name():
    text = sql.delete_missing_sql('"DB"."GOLD"."T"', '"T"', '"DB"."GOLD"."STG_T_1"', ["ID"], q)

    assert text == (
        'DELETE FROM "DB"."GOLD"."T" WHERE NOT EXISTS '
        '(SELECT 1 FROM "DB"."GOLD"."STG_T_1" AS src WHERE src."ID" = "T"."ID")'
    )


def test_create_table_declares_the_primary_key_not_null():
    text = sql.create_table_sql('"main"."d"', [("k", "BIGINT"), ("v", "VARCHAR")], ["k"], q)

    assert text == 'CREATE TABLE "main"."d" ("k" BIGINT NOT NULL, "v" VARCHAR, PRIMARY KEY ("k"))'


def test_staging_tables_carry_no_constraint():
    text = sql.create_table_sql('"S"', [("K", "NUMBER(38,0)")], [], q, kind="TRANSIENT")

    assert text == 'CREATE TRANSIENT TABLE "S" ("K" NUMBER(38,0))'


def test_quoting_doubles_embedded_quotes():
    assert q('we"ird') == '"we""ird"'


def test_differing_source_holds_only_new_and_changed_rows():
    text = sql.differing_source_sql(TARGET, STAGING, ["order_id"], ["order_id", "status"], q)

    assert text == (
        '(SELECT src."order_id", src."status" FROM "main"."stg_fact_orders_0a1b" AS src '
        'LEFT JOIN "main"."fact_orders" AS tgt ON tgt."order_id" = src."order_id" '
        'WHERE tgt."order_id" IS NULL OR (tgt."status" IS DISTINCT FROM src."status"))'
    )
