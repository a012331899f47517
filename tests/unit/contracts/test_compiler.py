"""The rule compiler on tiny hand-built inputs: one test per rule kind, nulls and bad casts."""

from __future__ import annotations

import datetime as dt
import hashlib
import textwrap
from decimal import Decimal

import pytest
from pyspark.sql import Row
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from medallion.contracts import BRONZE_METADATA, QUARANTINE_SCHEMA, apply_contract, parse_contract

RUN_DATE = dt.date(2025, 1, 13)
INGEST_TS = dt.datetime(2025, 1, 13, 6, 0, tzinfo=dt.UTC)

CONTRACT = parse_contract(
    textwrap.dedent(
        """
        apiVersion: v3.2.0
        kind: DataContract
        id: test-items
        name: test/items
        version: 1.0.0
        status: draft
        schema:
          - name: items
            quality:
              - {type: custom, engine: medallion, implementation: {check: duplicate}}
              - type: custom
                engine: medallion
                implementation:
                  check: expression
                  rule: qty:range
                  expression: "kind <> 'b' OR qty > 0"
            properties:
              - {name: id, logicalType: string, physicalType: string, primaryKey: true,
                 required: true, logicalTypeOptions: {pattern: "^I[0-9]+$"}}
              - name: code
                logicalType: string
                physicalType: string
                customProperties: [{property: allowedValues, value: iso4217}]
              - name: kind
                logicalType: string
                physicalType: string
                enum: [{value: a}, {value: b}]
              - {name: qty, logicalType: integer, physicalType: int,
                 logicalTypeOptions: {minimum: 0, maximum: 10}}
              - name: price
                logicalType: number
                physicalType: decimal(10,2)
                logicalTypeOptions: {exclusiveMinimum: 0}
                quality:
                  - type: custom
                    engine: medallion
                    implementation: {check: jump, groupBy: [code], maxFactor: 10, minRows: 3}
              - {name: day, logicalType: date, physicalType: date}
              - {name: ts, logicalType: timestamp, physicalType: timestamp}
        """
    ),
    "test/items.yaml",
)
COLUMNS = ["id", "code", "kind", "qty", "price", "day", "ts"]
RAW = T.StructType(
    [T.StructField(c, T.StringType()) for c in COLUMNS]
    + [
        T.StructField("_source_file", T.StringType()),
        T.StructField("_raw_record", T.StringType()),
        T.StructField("_line", T.LongType()),
        T.StructField("_malformed", T.BooleanType()),
    ]
)
CLEAN = {
    "id": "I1",
    "code": "USD",
    "kind": "a",
    "qty": "3",
    "price": "10.50",
    "day": "2025-01-13",
    "ts": "2025-01-13T08:15:30Z",
}


def raw_rows(spark, *rows):
    """Rows as the readers hand them over: each a dict of overrides of CLEAN (+ metadata)."""
    records = []
    for i, overrides in enumerate(rows):
        record = {**CLEAN, **overrides}
        records.append(
            (
                *[record.get(c) for c in COLUMNS],
                record.get("_source_file", "f.csv"),
                record.get("_raw_record"),
                record.get("_line", i + 2),
                record.get("_malformed", False),
            )
        )
    return spark.createDataFrame(records, RAW)


def split(spark, *rows):
    return apply_contract(
        CONTRACT, raw_rows(spark, *rows), run_id="run-1", run_date=RUN_DATE, ingest_ts=INGEST_TS
    )


def reasons(spark, *rows):
    """``(id, _line, _reasons)`` of every input row (valid rows with empty reasons)."""
    return split(spark, *rows).checked.select("id", "_line", "_reasons")


def test_a_clean_row_is_typed_and_carries_the_bronze_metadata(spark):
    result = split(spark, {"code": " usd ", "kind": "a "})
    line = "I1, usd ,a ,3,10.50,2025-01-13,2025-01-13T08:15:30Z"
    assertDataFrameEqual(
        result.valid,
        [
            Row(
                id="I1",
                code="usd",  # trimmed, case kept: standardising codes is silver's job
                kind="a",
                qty=3,
                price=Decimal("10.50"),
                day=dt.date(2025, 1, 13),
                ts=dt.datetime(2025, 1, 13, 8, 15, 30),
                _run_id="run-1",
                _run_date=RUN_DATE,
                _ingest_ts=dt.datetime(2025, 1, 13, 6, 0),
                _source_file="f.csv",
                _record_hash=hashlib.sha256(line.encode()).hexdigest(),
            )
        ],
    )
    assert result.quarantined.count() == 0
    assert result.valid.schema.fieldNames() == COLUMNS + BRONZE_METADATA.fieldNames()
    assert [f.dataType for f in result.valid.schema][: len(COLUMNS)] == [
        f.dataType for f in CONTRACT.spark_schema()
    ]


def test_required_fails_on_null_and_blank_and_only_required_does(spark):
    assertDataFrameEqual(
        reasons(
            spark,
            {"id": None},
            {"id": "   "},
            {"code": None, "kind": None, "qty": None, "price": None, "day": None, "ts": None},
        ),
        [
            Row(id=None, _line=2, _reasons=["id:required"]),
            Row(id=None, _line=3, _reasons=["id:required"]),
            Row(id="I1", _line=4, _reasons=[]),
        ],
    )


def test_a_bad_cast_is_a_type_reason_and_nothing_else(spark):
    assertDataFrameEqual(
        reasons(
            spark,
            {"qty": "3.5"},
            {"qty": "many"},
            {"price": "12,50"},
            {"day": "2025-02-30"},
            {"ts": "yesterday"},
            {"ts": "2024-13-01T10:00:00Z"},
        ),
        [
            Row(id="I1", _line=2, _reasons=["qty:type"]),
            Row(id="I1", _line=3, _reasons=["qty:type"]),
            Row(id="I1", _line=4, _reasons=["price:type"]),
            Row(id="I1", _line=5, _reasons=["day:type"]),
            Row(id="I1", _line=6, _reasons=["ts:type"]),
            Row(id="I1", _line=7, _reasons=["ts:type"]),
        ],
    )


def test_patterns_and_allowed_values(spark):
    assertDataFrameEqual(
        reasons(
            spark,
            {"id": "X1"},
            {"code": "QQQ"},
            {"code": "eur"},  # code lists compare upper-cased
            {"kind": "c"},
            {"kind": "A"},  # an explicit enum compares exactly
        ),
        [
            Row(id="X1", _line=2, _reasons=["id:pattern"]),
            Row(id="I1", _line=3, _reasons=["code:allowed_values"]),
            Row(id="I1", _line=4, _reasons=[]),
            Row(id="I1", _line=5, _reasons=["kind:allowed_values"]),
            Row(id="I1", _line=6, _reasons=["kind:allowed_values"]),
        ],
    )


def test_ranges_are_inclusive_or_exclusive_as_declared(spark):
    assertDataFrameEqual(
        reasons(
            spark,
            {"qty": "-1"},
            {"qty": "0"},
            {"qty": "10"},
            {"qty": "11"},
            {"price": "0"},
            {"price": "-3.20"},
            {"price": "1.50"},
        ),
        [
            Row(id="I1", _line=2, _reasons=["qty:range"]),
            Row(id="I1", _line=3, _reasons=[]),
            Row(id="I1", _line=4, _reasons=[]),
            Row(id="I1", _line=5, _reasons=["qty:range"]),
            Row(id="I1", _line=6, _reasons=["price:range"]),
            Row(id="I1", _line=7, _reasons=["price:range"]),
            Row(id="I1", _line=8, _reasons=[]),
        ],
    )


def test_jump_compares_with_the_median_of_the_group(spark):
    assertDataFrameEqual(
        reasons(
            spark,
            {"price": "10.00"},
            {"price": "11.00"},
            {"price": "12.00"},
            {"price": "10000.00"},  # 1000x the USD median
            {"price": "1.10"},  # 10x below
            {"price": "0.90"},  # more than 10x below
            {"price": "0"},  # range only
            {"price": "junk"},  # type only
            {"code": "EUR", "price": "1.00"},
            {"code": "EUR", "price": "900.00"},  # too few EUR rows to judge
        ),
        [
            Row(id="I1", _line=2, _reasons=[]),
            Row(id="I1", _line=3, _reasons=[]),
            Row(id="I1", _line=4, _reasons=[]),
            Row(id="I1", _line=5, _reasons=["price:jump"]),
            Row(id="I1", _line=6, _reasons=[]),
            Row(id="I1", _line=7, _reasons=["price:jump"]),
            Row(id="I1", _line=8, _reasons=["price:range"]),
            Row(id="I1", _line=9, _reasons=["price:type"]),
            Row(id="I1", _line=10, _reasons=[]),
            Row(id="I1", _line=11, _reasons=[]),
        ],
    )


def test_table_level_expression_rule(spark):
    assertDataFrameEqual(
        reasons(spark, {"kind": "b", "qty": "0"}, {"kind": "b", "qty": "2"}, {"qty": "0"}),
        [
            Row(id="I1", _line=2, _reasons=["qty:range"]),
            Row(id="I1", _line=3, _reasons=[]),
            Row(id="I1", _line=4, _reasons=[]),
        ],
    )


def test_several_broken_rules_are_listed_sorted(spark):
    assertDataFrameEqual(
        reasons(spark, {"id": None, "qty": "x", "code": "ZZZ", "kind": "b"}),
        [Row(id=None, _line=2, _reasons=["code:allowed_values", "id:required", "qty:type"])],
    )


def test_a_malformed_record_fails_only_malformed_and_keeps_its_text(spark):
    result = split(
        spark,
        {"id": None, "qty": "x", "_malformed": True, "_raw_record": "I9,USD,a,1,2,50,2025"},
    )
    assert result.valid.count() == 0
    assertDataFrameEqual(
        result.quarantined.select("_source_file", "_line", "_raw_record", "_reasons"),
        [
            Row(
                _source_file="f.csv",
                _line=2,
                _raw_record="I9,USD,a,1,2,50,2025",
                _reasons=["_record:malformed"],
            )
        ],
    )


def test_an_exact_copy_is_a_duplicate_and_the_first_in_file_order_stays(spark):
    copy = {"id": "I7"}
    assertDataFrameEqual(
        reasons(
            spark,
            {**copy, "_source_file": "b.csv", "_line": 2},
            {**copy, "_source_file": "a.csv", "_line": 9},
            {**copy, "_source_file": "a.csv", "_line": 4},
            {"id": "I7", "qty": "4", "_source_file": "a.csv", "_line": 5},  # a new version
        ),
        [
            Row(id="I7", _line=2, _reasons=["_record:duplicate"]),
            Row(id="I7", _line=9, _reasons=["_record:duplicate"]),
            Row(id="I7", _line=4, _reasons=[]),
            Row(id="I7", _line=5, _reasons=[]),
        ],
    )


def test_quarantine_rows_have_the_quarantine_schema(spark):
    result = split(spark, {"qty": "-5"}, {"id": None})
    assert result.quarantined.schema.fieldNames() == QUARANTINE_SCHEMA.fieldNames()
    assert [f.dataType.simpleString() for f in result.quarantined.schema] == [
        f.dataType.simpleString() for f in QUARANTINE_SCHEMA
    ]
    assertDataFrameEqual(
        result.quarantined.select("_run_id", "_run_date", "_line", "_raw_record", "_reasons"),
        [
            Row(
                _run_id="run-1",
                _run_date=RUN_DATE,
                _line=2,
                _raw_record="I1,USD,a,-5,10.50,2025-01-13,2025-01-13T08:15:30Z",
                _reasons=["qty:range"],
            ),
            Row(
                _run_id="run-1",
                _run_date=RUN_DATE,
                _line=3,
                _raw_record=",USD,a,3,10.50,2025-01-13,2025-01-13T08:15:30Z",
                _reasons=["id:required"],
            ),
        ],
    )


def test_values_needing_quotes_are_quoted_when_the_record_is_recreated(spark):
    result = split(spark, {"id": None, "kind": 'say "hi", ok'})
    assertDataFrameEqual(
        result.quarantined.select("_raw_record"),
        [Row(_raw_record=',USD,"say ""hi"", ok",3,10.50,2025-01-13,2025-01-13T08:15:30Z')],
    )


@pytest.mark.parametrize("malformed", [None, False])
def test_every_input_row_lands_exactly_once(spark, malformed):
    rows = [
        {"_malformed": malformed},
        {"id": None},
        {"qty": "99"},
        {"id": "I2"},
        {"id": "I2"},
        {"price": "nope", "_malformed": True, "_raw_record": "x"},
    ]
    result = split(spark, *rows)
    assert result.valid.count() + result.quarantined.count() == len(rows)
    assert result.valid.count() == 2


FUTURE_CONTRACT = parse_contract(
    textwrap.dedent(
        """
        apiVersion: v3.2.0
        kind: DataContract
        id: test-versions
        name: test/versions
        version: 1.0.0
        status: draft
        schema:
          - name: versions
            properties:
              - {name: id, logicalType: string, physicalType: string, required: true}
              - name: ts
                logicalType: timestamp
                physicalType: timestamp
                logicalTypeOptions: {maximum: "2030-01-01T00:00:00Z"}
                customProperties: [{property: notAfterDelivery, value: 1 day}]
              - name: day
                logicalType: date
                physicalType: date
                customProperties: [{property: notAfterDelivery, value: 36 hours}]
        """
    ),
    "test/versions.yaml",
)


def future_reasons(spark, run_date, *rows):
    """``(id, _reasons)`` of (id, ts, day) rows judged as a delivery dated ``run_date``."""
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in ("id", "ts", "day", "_source_file")]
        + [T.StructField("_raw_record", T.StringType()), T.StructField("_line", T.LongType())]
        + [T.StructField("_malformed", T.BooleanType())]
    )
    raw = spark.createDataFrame(
        [(*row, "f.csv", None, i + 2, False) for i, row in enumerate(rows)], schema
    )
    split = apply_contract(
        FUTURE_CONTRACT, raw, run_id="run-1", run_date=run_date, ingest_ts=INGEST_TS
    )
    return split.checked.select("id", "_reasons")


def test_a_time_past_the_deliverys_date_and_tolerance_is_future_and_nothing_else(spark):
    # Delivered for 2025-01-13: plausible up to the end of that date plus a day, 2025-01-15
    # 00:00 UTC (for the date column, 36 hours: dates beginning by 2025-01-15 12:00).
    assertDataFrameEqual(
        future_reasons(
            spark,
            RUN_DATE,
            ("on-the-day", "2025-01-13T23:59:59Z", "2025-01-13"),
            ("next-morning", "2025-01-14T07:00:00+02:00", "2025-01-14"),
            ("at-the-limit", "2025-01-15T00:00:00Z", "2025-01-15"),
            ("a-second-past", "2025-01-15T00:00:01Z", "2025-01-13"),
            ("zoned-past", "2025-01-14T20:00:00-05:00", "2025-01-13"),  # 01:00 UTC on the 15th
            ("a-date-past", "2025-01-13T10:00:00Z", "2025-01-16"),
            ("clock-ten-years-ahead", "2035-01-13T10:00:00Z", "2035-01-13"),
            ("an-old-version", "2019-06-01T10:00:00Z", "2019-06-01"),
            ("missing", None, None),
            ("unparseable", "soon", "2025-01-13"),
        ),
        [
            Row(id="on-the-day", _reasons=[]),
            Row(id="next-morning", _reasons=[]),
            Row(id="at-the-limit", _reasons=[]),
            Row(id="a-second-past", _reasons=["ts:future"]),
            Row(id="zoned-past", _reasons=["ts:future"]),
            Row(id="a-date-past", _reasons=["day:future"]),
            # Past the range's maximum too: one reason a value, the range's.
            Row(id="clock-ten-years-ahead", _reasons=["day:future", "ts:range"]),
            Row(id="an-old-version", _reasons=[]),
            Row(id="missing", _reasons=[]),
            Row(id="unparseable", _reasons=["ts:type"]),
        ],
    )


def test_the_future_rule_judges_by_the_deliverys_date_not_the_clock(spark):
    # The verdict depends on the delivery's date only: the same row is future in a delivery
    # dated 2025-01-13 and plausible in one dated 2029-12-31, whenever either is (re)run.
    row = ("clock-ten-years-ahead", "2029-12-31T10:00:00Z", "2029-12-31")
    assert future_reasons(spark, RUN_DATE, row).first()["_reasons"] == ["day:future", "ts:future"]
    assert future_reasons(spark, dt.date(2029, 12, 31), row).first()["_reasons"] == []
    assert FUTURE_CONTRACT.columns[1].rule_ids() == ["ts:type", "ts:range", "ts:future"]
