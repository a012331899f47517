"""Reading landing files by header name: header checks, CSV quirks, JSON lines."""

from __future__ import annotations

import textwrap

import pytest
from pyspark.sql import Row
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from medallion.contracts import load_contract, parse_contract, read_landing
from medallion.contracts.readers import (
    check_header,
    csv_records,
    json_line_records,
    parse_header,
)
from medallion.errors import JobError

CONTRACT = parse_contract(
    textwrap.dedent(
        """
        apiVersion: v3.2.0
        kind: DataContract
        id: test-notes
        name: test/notes
        version: 1.0.0
        status: draft
        customProperties: [{property: schemaEvolution, value: strict}]
        schema:
          - name: notes
            properties:
              - {name: id, logicalType: string, physicalType: string, required: true}
              - {name: note, logicalType: string, physicalType: string}
              - {name: amount, logicalType: number, physicalType: "decimal(10,2)"}
        """
    ),
    "test/notes.yaml",
)
ADDITIVE = parse_contract(
    textwrap.dedent(
        """
        apiVersion: v3.2.0
        kind: DataContract
        id: test-notes
        name: test/notes
        version: 1.0.0
        status: draft
        customProperties: [{property: schemaEvolution, value: additive}]
        schema:
          - name: notes
            properties:
              - {name: id, logicalType: string, physicalType: string, required: true}
              - {name: note, logicalType: string, physicalType: string}
              - {name: amount, logicalType: number, physicalType: "decimal(10,2)"}
        """
    ),
    "test/notes.yaml",
)


# --- headers --------------------------------------------------------------------------------


def test_parse_header_honours_quotes_and_drops_a_bom():
    assert parse_header('\ufeffid,"note, long",amount') == ("id", "note, long", "amount")


def test_a_header_in_any_order_is_matched_by_name():
    plan = check_header(CONTRACT, "f.csv", ("amount", "id", "note"))
    assert plan.columns == ("amount", "id", "note") and plan.ignored == ()


def test_a_missing_column_fails_naming_file_and_column():
    with pytest.raises(JobError, match=r"test/notes file f\.csv is missing column\(s\) 'note'"):
        check_header(CONTRACT, "f.csv", ("id", "amount"))


def test_a_renamed_column_is_reported_with_what_was_found():
    with pytest.raises(JobError, match=r"missing column\(s\) 'amount' \(found 'Amount'\)"):
        check_header(ADDITIVE, "f.csv", ("id", "note", "Amount"))


def test_an_unexpected_column_fails_under_the_strict_policy():
    with pytest.raises(JobError, match=r"f\.csv has unexpected column\(s\) colour; .* 'strict'"):
        check_header(CONTRACT, "f.csv", ("id", "note", "amount", "colour"))


def test_an_unexpected_column_is_ignored_under_the_additive_policy():
    plan = check_header(ADDITIVE, "f.csv", ("id", "colour", "note", "amount"))
    assert plan.ignored == ("colour",)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ((), "has no header line"),
        (("id", "", "note", "amount"), "at position 2 have no name"),
        (("id", "note", "note", "amount"), "names column\\(s\\) note more than once"),
    ],
)
def test_unreadable_headers_fail(header, problem):
    with pytest.raises(JobError, match=problem):
        check_header(CONTRACT, "f.csv", header)


# --- CSV records ----------------------------------------------------------------------------

PARSED = T.StructType(
    [
        T.StructField("note", T.StringType()),
        T.StructField("id", T.StringType()),
        T.StructField("amount", T.StringType()),
        T.StructField("_corrupt_record", T.StringType()),
        T.StructField("_source_file", T.StringType()),
        T.StructField("_ordinal", T.LongType()),
    ]
)


def test_csv_records_count_lines_across_quoted_line_breaks(spark):
    parsed = spark.createDataFrame(
        [
            ("two\nlines", "1", "1.00", None, "a.csv", 0),
            ("x", "2", "12", "2,x,12,50", "a.csv", 1),
            ("three\nmore\nlines", "3", "3.00", None, "a.csv", 2),
            ("y", "4", "4.00", None, "a.csv", 3),
            ("z", "5", "5.00", None, "b.csv", 10),
        ],
        PARSED,
    )
    assertDataFrameEqual(
        parsed.transform(csv_records(CONTRACT, ("note", "id", "amount"))),
        [
            Row(id="1", note="two\nlines", amount="1.00", _source_file="a.csv",
                _raw_record=None, _line=2, _malformed=False),
            Row(id="2", note="x", amount="12", _source_file="a.csv",
                _raw_record="2,x,12,50", _line=4, _malformed=True),
            Row(id="3", note="three\nmore\nlines", amount="3.00", _source_file="a.csv",
                _raw_record=None, _line=5, _malformed=False),
            Row(id="4", note="y", amount="4.00", _source_file="a.csv",
                _raw_record=None, _line=8, _malformed=False),
            Row(id="5", note="z", amount="5.00", _source_file="b.csv",
                _raw_record=None, _line=2, _malformed=False),
        ],
    )  # fmt: skip


def test_json_lines_become_records_and_broken_lines_stay_malformed(spark):
    lines = spark.createDataFrame(
        [
            ('{"id":"1","note":"a","amount":12.50}', "f.jsonl", 0),
            ('{"id":"2","note":"b","am', "f.jsonl", 1),
            ("", "f.jsonl", 2),
            ('{"note":null,"amount":"7","id":3,"extra":true}', "f.jsonl", 3),
            ("[1,2]", "f.jsonl", 4),
        ],
        "value string, _source_file string, _ordinal long",
    )
    assertDataFrameEqual(
        lines.transform(json_line_records(CONTRACT)),
        [
            # Spark renders a JSON number read as a string through a double: 12.50 -> "12.5"
            Row(id="1", note="a", amount="12.5", _source_file="f.jsonl",
                _raw_record='{"id":"1","note":"a","amount":12.50}', _line=1, _malformed=False),
            Row(id=None, note=None, amount=None, _source_file="f.jsonl",
                _raw_record='{"id":"2","note":"b","am', _line=2, _malformed=True),
            Row(id="3", note=None, amount="7", _source_file="f.jsonl",
                _raw_record='{"note":null,"amount":"7","id":3,"extra":true}', _line=4,
                _malformed=False),
            Row(id=None, note=None, amount=None, _source_file="f.jsonl",
                _raw_record="[1,2]", _line=5, _malformed=True),
        ],
    )  # fmt: skip


# --- Spark's CSV reader on real files -------------------------------------------------------


def test_read_landing_maps_csv_columns_by_header_name(spark, tmp_path):
    folder = tmp_path / "dt=2025-01-13"
    folder.mkdir()
    (folder / "part-00000.csv").write_text(
        'amount,note,id\n1.00,"line one\nline two",A1\n2.00,"Smith, Jr.",A2\n'
        '3,50,plain,A3\n4.00,"say ""hi""",A4\n',
        encoding="utf-8",
    )
    (folder / "_SUCCESS").write_text("", encoding="utf-8")
    read = read_landing(spark, CONTRACT, str(folder))
    assert [f.rsplit("/", 1)[-1] for f in read.files] == ["part-00000.csv"]
    assertDataFrameEqual(
        read.records.select("id", "note", "amount", "_raw_record", "_line", "_malformed"),
        [
            Row(id="A1", note="line one\nline two", amount="1.00", _raw_record=None,
                _line=2, _malformed=False),
            Row(id="A2", note="Smith, Jr.", amount="2.00", _raw_record=None,
                _line=4, _malformed=False),
            Row(id="plain", note="50", amount="3", _raw_record="3,50,plain,A3",
                _line=5, _malformed=True),
            Row(id="A4", note='say "hi"', amount="4.00", _raw_record=None,
                _line=6, _malformed=False),
        ],
    )  # fmt: skip


def test_read_landing_fails_on_a_bad_header_before_reading(spark, tmp_path):
    folder = tmp_path / "dt=2025-01-13"
    folder.mkdir()
    (folder / "part-00000.csv").write_text("id,note,amt\nA1,x,1\n", encoding="utf-8")
    with pytest.raises(JobError, match=r"part-00000\.csv is missing column\(s\) 'amount'"):
        read_landing(spark, CONTRACT, str(folder))


def test_read_landing_fails_on_a_folder_without_files(spark, tmp_path):
    with pytest.raises(JobError, match="holds no data files"):
        read_landing(spark, load_contract("fx/fx_rates"), str(tmp_path))


def test_files_with_different_column_orders_are_read_by_name(spark, tmp_path):
    folder = tmp_path / "dt=2025-01-13"
    folder.mkdir()
    (folder / "part-00000.csv").write_text("id,note,amount\nA1,x,1.00\n", encoding="utf-8")
    (folder / "part-00001.csv").write_text(" amount ,id,note\n2.00,A2,y\n", encoding="utf-8")
    read = read_landing(spark, CONTRACT, str(folder))
    assertDataFrameEqual(
        read.records.select("id", "note", "amount", "_line", "_malformed"),
        [
            Row(id="A1", note="x", amount="1.00", _line=2, _malformed=False),
            Row(id="A2", note="y", amount="2.00", _line=2, _malformed=False),
        ],
    )
