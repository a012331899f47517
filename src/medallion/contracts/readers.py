"""Reading a landing folder into the rule compiler's input shape, by header name.

The compiler (:func:`medallion.contracts.compiler.apply_contract`) wants one string column per
contract column plus ``_source_file``, ``_raw_record``, ``_line`` and ``_malformed``. This module
produces exactly that from the two landing formats:

* **CSV** (``landingFormat: csv``): every file's header is read first and matched to the
  contract *by name* (:func:`check_header`); a missing column, an unexpected one (under the
  ``strict`` policy), a duplicated or blank header name fails the job with a message naming the
  file and the column. Files are then parsed with an all-string schema in header order,
  ``multiLine`` (quoted fields may hold line breaks), RFC 4180 quotes (``""`` inside quotes) and
  ``PERMISSIVE`` mode with a corrupt-record column: a record with too many or too few fields
  keeps its raw text and is flagged malformed instead of being dropped or shifted. ``_line`` is
  the physical line a record starts on, counting the line breaks inside quoted fields.
* **JSON lines** (``landingFormat: jsonl``): each non-blank line is one record; it is parsed
  with ``from_json`` against an all-string schema (so a bad value is a ``type`` reason, not a
  lost record), and a line that is not a JSON object is flagged malformed with its text.
  ``_line`` is the line number.

Spark facts this relies on (checked on Spark 4.x):

* with a user schema, the CSV reader maps columns by *position* (``enforceSchema=false`` only
  makes it fail, at task time, when the header disagrees), hence the header pass and a schema
  in each file's own header order;
* a row whose field count differs from the schema is a malformed record whose raw text
  (without the line end) lands in the corrupt-record column;
* a multi-line CSV file is never split, so ``monotonically_increasing_id`` follows file order;
* a JSON number read into a string field is re-rendered through a double (``12.50`` ->
  ``12.5``; exact to 15 significant digits).
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass

from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.contracts.compiler import LINE, MALFORMED, RAW_RECORD, SOURCE_FILE
from medallion.contracts.model import ADDITIVE, CSV, Contract
from medallion.errors import JobError
from medallion.lake import is_hidden_path

CORRUPT = "_corrupt_record"
ORDINAL = "_ordinal"
HEADER_LINES = 1
CSV_OPTIONS = {
    "header": "true",
    "multiLine": "true",
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT,
    "quote": '"',
    "escape": '"',
    # The schema is built from each file's own header (checked by name first), so Spark's
    # positional mapping is a by-name one; its own header check would only crash at task time.
    "enforceSchema": "true",
    "encoding": "UTF-8",
}
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
_BOM = "\ufeff"


@dataclass(frozen=True)
class HeaderPlan:
    """How one CSV file's header maps to the contract."""

    file: str
    columns: tuple[str, ...]  # the header, in file order
    ignored: tuple[str, ...] = ()  # columns the contract does not know (additive policy)


@dataclass(frozen=True)
class LandingRead:
    """A landing folder read into the compiler's input shape, and what was found there."""

    records: DataFrame
    files: tuple[str, ...]
    ignored_columns: tuple[str, ...] = ()


# --- headers (plain Python, no Spark) ---------------------------------------------------------


def parse_header(line: str) -> tuple[str, ...]:
    """The column names of a CSV header line (quotes honoured, BOM dropped)."""
    row = next(csv.reader(io.StringIO(line.removeprefix(_BOM))), [])
    return tuple(name.strip() for name in row)


def check_header(contract: Contract, file: str, header: tuple[str, ...]) -> HeaderPlan:
    """Match a file's header to the contract by name; raise ``JobError`` when it cannot be read.

    A missing contract column always fails; a column the contract does not know fails under
    the ``strict`` policy and is ignored (reported) under ``additive``.
    """
    where = f"{contract.name} file {file}"
    if not header or all(not name for name in header):
        raise JobError(
            f"{where} has no header line; expected columns {', '.join(contract.column_names)}"
        )
    blank = [str(i + 1) for i, name in enumerate(header) if not name]
    if blank:
        raise JobError(f"{where}: header column(s) at position {', '.join(blank)} have no name")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise JobError(f"{where}: header names column(s) {', '.join(repeated)} more than once")
    expected = contract.column_names
    missing = [name for name in expected if name not in header]
    unexpected = tuple(name for name in header if name not in expected)
    delimiter = _other_delimiter(header, expected)
    if missing and delimiter:
        raise JobError(
            f"{where} is not comma-separated: its header looks {delimiter!r}-delimited "
            f"({', '.join(header)[:200]}); deliver the extract with ',' as the delimiter"
        )
    if missing:
        hints = [_hint(name, unexpected) for name in missing]
        raise JobError(
            f"{where} is missing column(s) {', '.join(hints)} required by the contract "
            f"(header: {', '.join(header)})"
        )
    if unexpected and contract.schema_evolution != ADDITIVE:
        raise JobError(
            f"{where} has unexpected column(s) {', '.join(unexpected)}; the contract's "
            f"schema-evolution policy is '{contract.schema_evolution}' (update the contract to "
            "accept them)"
        )
    return HeaderPlan(file=file, columns=header, ignored=unexpected)


def _other_delimiter(header: tuple[str, ...], expected: list[str]) -> str | None:
    """The delimiter a header was written with, when it is not a comma and the split fits."""
    for delimiter in (";", "\t", "|"):
        names = [part.strip() for name in header for part in name.split(delimiter)]
        if len(names) > len(header) and len(set(names) & set(expected)) * 2 >= len(expected):
            return delimiter
    return None


def _hint(name: str, candidates: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"'{name}' (found '{close[0]}')" if close else f"'{name}'"


# --- reading ------------------------------------------------------------------------------------


def read_landing(spark: SparkSession, contract: Contract, folder: str) -> LandingRead:
    """Read every data file under ``folder`` (one run date of one table) for ``contract``."""
    files = data_files(spark, folder)
    if not files:
        raise JobError(
            f"landing folder {folder} for {contract.name} holds no data files; "
            "the extract for that date is missing or still being written"
        )
    check_compressed(spark, contract, files)
    if contract.format == CSV:
        return _read_csv(spark, contract, files)
    return LandingRead(_read_json_lines(spark, contract, files), tuple(files))


def data_files(spark: SparkSession, folder: str) -> list[str]:
    """Files under ``folder``, recursively, sorted, but for hidden ones (``_SUCCESS``, ``.crc``:
    :func:`medallion.lake.is_hidden_path`)."""
    fs, path = hadoop_filesystem(spark, folder)
    if not fs.exists(path):
        return []
    found = []
    entries = fs.listFiles(path, True)
    while entries.hasNext():
        status = entries.next()
        file_path = status.getPath()
        relative = file_path.toString()[len(path.toString()) :]
        if is_hidden_path(relative):
            continue
        found.append(file_path.toString())
    return sorted(found)


def check_compressed(spark: SparkSession, contract: Contract, files: list[str]) -> None:
    """Decompress every compressed file once, end to end, before Spark parses it.

    A truncated or corrupt archive (a copy cut short) would otherwise fail deep inside a Spark
    task with a Java stack trace; here it fails the job naming the file, before anything is
    written. The pass runs in the JVM (one call per file) and costs one decompression.
    """
    jvm = spark.sparkContext._jvm
    factory = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
        spark.sparkContext._jsc.hadoopConfiguration()
    )
    for file in files:
        fs, path = hadoop_filesystem(spark, file)
        codec = factory.getCodec(path)
        if codec is None:
            continue
        try:
            stream = codec.createInputStream(fs.open(path))
            jvm.org.apache.hadoop.io.IOUtils.copyBytes(
                stream, jvm.org.apache.commons.io.output.NullOutputStream.INSTANCE, 1 << 16, True
            )
        except Py4JJavaError as exc:
            raise JobError(
                f"{contract.name} file {file} is not a readable {codec.getDefaultExtension()} "
                f"archive ({java_cause(exc)}); it is truncated or corrupt: deliver it again"
            ) from None


def java_cause(exc: Py4JJavaError) -> str:
    """The innermost Java exception of a Py4J error, as ``Class: message`` on one line."""
    cause = exc.java_exception
    while cause.getCause() is not None and cause.getCause() != cause:
        cause = cause.getCause()
    message = (cause.getMessage() or "").strip().splitlines()
    name = cause.getClass().getSimpleName()
    return f"{name}: {message[0]}" if message else name


def read_first_line(spark: SparkSession, file: str) -> str:
    """The first line of a (possibly compressed) file, through Hadoop's FileSystem."""
    jvm = spark.sparkContext._jvm
    fs, path = hadoop_filesystem(spark, file)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
        spark.sparkContext._jsc.hadoopConfiguration()
    ).getCodec(path)
    stream = fs.open(path)
    try:
        if codec is not None:
            stream = codec.createInputStream(stream)
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        line = reader.readLine()
    finally:
        stream.close()
    return line or ""


def _read_csv(spark: SparkSession, contract: Contract, files: list[str]) -> LandingRead:
    plans = [check_header(contract, f, parse_header(read_first_line(spark, f))) for f in files]
    by_header: dict[tuple[str, ...], list[str]] = {}
    for plan in plans:
        by_header.setdefault(plan.columns, []).append(plan.file)
    frames = []
    for header, group in by_header.items():
        schema = T.StructType(
            [T.StructField(name, T.StringType(), True) for name in (*header, CORRUPT)]
        )
        parsed = (
            spark.read.options(**CSV_OPTIONS)
            .schema(schema)
            .csv(group)
            .select(
                *header,
                CORRUPT,
                F.col("_metadata.file_path").alias(SOURCE_FILE),
                F.monotonically_increasing_id().alias(ORDINAL),
            )
        )
        frames.append(parsed.transform(csv_records(contract, header)))
    records = frames[0]
    for frame in frames[1:]:
        records = records.unionByName(frame)
    ignored = tuple(sorted({name for plan in plans for name in plan.ignored}))
    return LandingRead(records, tuple(files), ignored)


def _read_json_lines(spark: SparkSession, contract: Contract, files: list[str]) -> DataFrame:
    lines = spark.read.text(files).select(
        F.col("value"),
        F.col("_metadata.file_path").alias(SOURCE_FILE),
        F.monotonically_increasing_id().alias(ORDINAL),
    )
    return lines.transform(json_line_records(contract))


# --- transformations into the compiler's input ----------------------------------------------


def csv_records(contract: Contract, header: tuple[str, ...]):
    """A transformation: parsed CSV rows -> the compiler's input, with each record's first line.

    Input: the all-string ``header`` columns, ``_corrupt_record``, ``_source_file`` and
    ``_ordinal`` (increasing in file order). A record starts on line 1 + header lines + the
    physical lines of every earlier record of its file (line breaks inside quoted fields count).
    """

    def transform(parsed: DataFrame) -> DataFrame:
        is_malformed = F.col(CORRUPT).isNotNull()
        breaks_in_fields = sum((_line_breaks(F.col(name)) for name in header), F.lit(0))
        lines_taken = 1 + F.when(is_malformed, _line_breaks(F.col(CORRUPT))).otherwise(
            breaks_in_fields
        )
        earlier = (
            Window.partitionBy(SOURCE_FILE)
            .orderBy(ORDINAL)
            .rowsBetween(Window.unboundedPreceding, -1)
        )
        first_line = 1 + HEADER_LINES + F.coalesce(F.sum(lines_taken).over(earlier), F.lit(0))
        return parsed.select(
            *contract.column_names,
            SOURCE_FILE,
            F.when(is_malformed, F.col(CORRUPT)).alias(RAW_RECORD),
            first_line.cast(T.LongType()).alias(LINE),
            is_malformed.alias(MALFORMED),
        )

    return transform


def json_line_records(contract: Contract):
    """A transformation: text lines (``value``, ``_source_file``, ``_ordinal`` in file order)
    -> the compiler's input; blank lines are not records and are skipped."""
    schema = T.StructType(
        [T.StructField(name, T.StringType(), True) for name in (*contract.column_names, CORRUPT)]
    )

    def transform(lines: DataFrame) -> DataFrame:
        in_file_order = Window.partitionBy(SOURCE_FILE).orderBy(ORDINAL)
        numbered = lines.select(
            "value", SOURCE_FILE, F.row_number().over(in_file_order).cast(T.LongType()).alias(LINE)
        )
        parsed = numbered.filter(F.trim(F.col("value")) != "").select(
            F.from_json(F.col("value"), schema, JSON_OPTIONS).alias("record"),
            "value",
            SOURCE_FILE,
            LINE,
        )
        is_malformed = F.col(f"record.{CORRUPT}").isNotNull() | F.col("record").isNull()
        return parsed.select(
            *[F.col(f"record.{name}").alias(name) for name in contract.column_names],
            SOURCE_FILE,
            F.col("value").alias(RAW_RECORD),
            LINE,
            is_malformed.alias(MALFORMED),
        )

    return transform


def _line_breaks(text: F.Column) -> F.Column:
    return F.coalesce(F.length(text) - F.length(F.regexp_replace(text, "\n", "")), F.lit(0))


def hadoop_filesystem(spark: SparkSession, path: str):
    """The Hadoop FileSystem holding ``path`` (local, s3a), and the path as a Hadoop Path."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path
