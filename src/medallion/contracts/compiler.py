"""The rule compiler: a contract's rules as Spark column predicates, and the valid/quarantine split.

``apply_contract`` is a pure transformation. Its input ``raw`` holds one string column per
contract column (matched by name) plus

* ``_source_file`` (string): where the record came from;
* ``_raw_record`` (string): the record's raw text; null means "re-create it from the fields"
  (as a CSV line of the untrimmed values, in contract column order);
* ``_line`` (long, nullable): the record's line in its file, where the reader knows it;
* ``_malformed`` (boolean): the reader could not split the record into fields.

It returns a ``ContractSplit``: ``valid`` rows typed per contract with the bronze metadata
columns, and ``quarantined`` rows with their raw text and the sorted array of rule ids they
broke. Nothing is dropped: every input row lands in exactly one of the two.

How a row is judged (``docs/DATA_CONTRACTS.md`` lists every rule id):

* values are trimmed; a value that is empty after trimming is missing (null);
* each column is cast with Spark's safe casts (``try_cast``, ``try_to_timestamp``...), so a bad
  value becomes the reason ``<column>:type``, never a crash or a silent null;
* every column rule passes on a missing value (only ``required`` fails on it) and on a value
  whose cast failed (only ``type`` fails then); ``jump`` also passes when ``range`` failed,
  so each bad value carries exactly one reason;
* pattern and allowed-values checks look at the trimmed text (code lists compare upper-cased);
* a malformed record fails ``_record:malformed`` and nothing else (its fields are unreliable);
* a record holding bytes that are not UTF-8 (Spark decodes them as U+FFFD, the replacement
  character: a Latin-1 ``é`` in a UTF-8 file) fails ``_record:encoding`` and nothing else, so
  mangled text never reaches bronze;
* with the contract's ``duplicate`` rule, a byte-identical copy of an earlier record of the
  batch (by ``_record_hash``, first in file and line order wins) fails ``_record:duplicate``.

Stream-level reasons (``duplicate_event``, ``late_event``) are the streaming job's to add.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.contracts.model import (
    ALLOWED_VALUES,
    FUTURE,
    JUMP,
    PATTERN,
    RANGE,
    RECORD_DUPLICATE,
    RECORD_ENCODING,
    RECORD_MALFORMED,
    REQUIRED,
    TYPE,
    Column,
    Contract,
    Range,
    rule_id,
)
from medallion.transforms.common import utc_timestamp

# Input columns every reader provides besides the contract's own.
SOURCE_FILE = "_source_file"
RAW_RECORD = "_raw_record"
LINE = "_line"
MALFORMED = "_malformed"

# Output metadata.
RUN_ID = "_run_id"
RUN_DATE = "_run_date"
INGEST_TS = "_ingest_ts"
RECORD_HASH = "_record_hash"
REASONS = "_reasons"
BAD_ENCODING = "_bad_encoding"  # working column: the record holds U+FFFD (undecodable bytes)
REPLACEMENT_CHARACTER = "\ufffd"

BRONZE_METADATA = T.StructType(
    [
        T.StructField(RUN_ID, T.StringType(), False),
        T.StructField(RUN_DATE, T.DateType(), False),
        T.StructField(INGEST_TS, T.TimestampType(), False),
        T.StructField(SOURCE_FILE, T.StringType(), True),
        T.StructField(RECORD_HASH, T.StringType(), False),
    ]
)
QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField(RUN_ID, T.StringType(), False),
        T.StructField(RUN_DATE, T.DateType(), False),
        T.StructField(INGEST_TS, T.TimestampType(), False),
        T.StructField(SOURCE_FILE, T.StringType(), True),
        T.StructField(LINE, T.LongType(), True),
        T.StructField(RAW_RECORD, T.StringType(), True),
        T.StructField(REASONS, T.ArrayType(T.StringType(), True), False),
        T.StructField(RECORD_HASH, T.StringType(), False),
    ]
)

HASH_BITS = 256
MEDIAN = 0.5
MEDIAN_ACCURACY = 10_000
_TEXT = "__text__"  # prefix of a column's trimmed input text while rules are evaluated
# How a record without raw text is written back as a line (RFC 4180 quoting, values untrimmed).
CSV_LINE_OPTIONS = {
    "escape": '"',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}
WHITESPACE = " \t\r\n\f\u000b"  # what trimming removes at both ends of a value


@dataclass(frozen=True)
class ContractSplit:
    """The two sides of a contract check, derived from one ``checked`` frame.

    ``checked`` holds every input row once, typed, with its metadata and ``_reasons``. Call
    ``persist()`` before writing both sides, so the checks run once for the two writes.
    """

    valid: DataFrame
    quarantined: DataFrame
    checked: DataFrame
    contract: Contract = field(repr=False, compare=False)

    @classmethod
    def of(cls, contract: Contract, checked: DataFrame) -> ContractSplit:
        return cls(
            valid=checked.transform(valid_rows(contract)),
            quarantined=checked.transform(quarantined_rows),
            checked=checked,
            contract=contract,
        )

    def persist(self, level: StorageLevel = StorageLevel.MEMORY_AND_DISK) -> ContractSplit:
        """The same split over a persisted ``checked`` frame."""
        return ContractSplit.of(self.contract, self.checked.persist(level))

    def unpersist(self) -> None:
        self.checked.unpersist()


def apply_contract(
    contract: Contract,
    raw: DataFrame,
    *,
    run_id: str,
    run_date: dt.date,
    ingest_ts: dt.datetime,
    history: DataFrame | None = None,
) -> ContractSplit:
    """Check every row of ``raw`` against ``contract``; see the module docstring."""
    checked = raw.transform(
        check_records(
            contract, run_id=run_id, run_date=run_date, ingest_ts=ingest_ts, history=history
        )
    )
    return ContractSplit.of(contract, checked)


def check_records(
    contract: Contract,
    *,
    run_id: str,
    run_date: dt.date,
    ingest_ts: dt.datetime,
    history: DataFrame | None = None,
):
    """A transformation: ``raw`` -> every row typed, with metadata and sorted ``_reasons``.

    ``history`` holds the table's earlier deliveries (its bronze rows of other run dates), for
    the jump rules that judge a value against its group's last value (:func:`_with_history`);
    None when there are none yet, as on the first delivery.
    """
    with_history = history is not None and bool(history_jumps(contract))

    def transform(raw: DataFrame) -> DataFrame:
        typed = raw.transform(_prepare(contract)).transform(_typed(contract))
        if with_history:
            typed = typed.transform(_with_history(contract, history))
        return typed.transform(_judged(contract, run_date, with_history)).select(
            *contract.column_names,
            F.lit(run_id).alias(RUN_ID),
            F.lit(run_date).cast(T.DateType()).alias(RUN_DATE),
            utc_timestamp(ingest_ts).alias(INGEST_TS),
            SOURCE_FILE,
            LINE,
            RAW_RECORD,
            REASONS,
            RECORD_HASH,
        )

    return transform


def valid_rows(contract: Contract):
    """A transformation: the checked rows that broke no rule, as bronze rows."""
    bronze_columns = [*contract.column_names, *BRONZE_METADATA.fieldNames()]

    def transform(checked: DataFrame) -> DataFrame:
        return checked.filter(F.size(REASONS) == 0).select(*bronze_columns)

    return transform


def quarantined_rows(checked: DataFrame) -> DataFrame:
    """The checked rows that broke at least one rule, as quarantine rows."""
    return checked.filter(F.size(REASONS) > 0).select(*QUARANTINE_SCHEMA.fieldNames())


def quarantine_reason_counts(quarantined: DataFrame) -> DataFrame:
    """``reason, rows``: how many quarantined rows carry each rule id."""
    return (
        quarantined.select(F.explode(REASONS).alias("reason"))
        .groupBy("reason")
        .agg(F.count(F.lit(1)).alias("rows"))
        .select("reason", "rows")
    )


# --- stages -----------------------------------------------------------------------------------


def _prepare(contract: Contract):
    """Trim values (blank -> null), settle each record's raw text and hash it."""
    names = contract.column_names
    recreated = F.to_csv(F.struct(*[F.col(n) for n in names]), CSV_LINE_OPTIONS)

    def transform(raw: DataFrame) -> DataFrame:
        raw_text = F.coalesce(F.col(RAW_RECORD), recreated)
        return raw.select(
            *[_trimmed(F.col(n)).alias(_TEXT + n) for n in names],
            F.col(SOURCE_FILE).cast(T.StringType()).alias(SOURCE_FILE),
            F.col(LINE).cast(T.LongType()).alias(LINE),
            F.coalesce(F.col(MALFORMED), F.lit(False)).alias(MALFORMED),
            _undecodable(names).alias(BAD_ENCODING),
            raw_text.alias(RAW_RECORD),
            F.sha2(raw_text, HASH_BITS).alias(RECORD_HASH),
        )

    return transform


def _typed(contract: Contract):
    """Each column's typed value under its own name, beside its trimmed text."""

    def transform(prepared: DataFrame) -> DataFrame:
        return prepared.select(
            "*", *[_cast(F.col(_TEXT + c.name), c).alias(c.name) for c in contract.columns]
        )

    return transform


def history_jumps(contract: Contract) -> list[Column]:
    """The columns whose jump rule also judges a value against the table's history."""
    return [c for c in contract.columns if c.jump is not None and c.jump.history_order_by]


def _history_column(column: Column) -> str:
    return f"_history_{column.name}"


def _with_history(contract: Contract, history: DataFrame):
    """Add, per history-judged column, its group's last value before the row's date.

    The last value is taken from ``history`` (earlier deliveries): per group and date the value
    of the latest delivery (``_run_date``), and of those dates the latest strictly before the
    row's own, so a corrected rate of a date is judged against the day before, not against the
    value it corrects. An as-of lookup by one sort: the history's values and the batch's rows
    in one frame, the last history value over the dates before each row.
    """
    marker = "_is_history"

    def transform(typed: DataFrame) -> DataFrame:
        frame = typed.withColumn(marker, F.lit(False))
        for column in history_jumps(contract):
            jump = column.jump
            assert jump is not None and jump.history_order_by is not None
            keys = [f"_history_key_{i}" for i in range(len(jump.group_by))]
            day, value = "_history_day", "_history_value"
            key_values = [F.upper(F.col(g).cast(T.StringType())) for g in jump.group_by]
            past = (
                history.where(F.col(column.name) > 0)
                .groupBy(
                    *[k.alias(n) for k, n in zip(key_values, keys, strict=True)],
                    F.col(jump.history_order_by).alias(day),
                )
                .agg(
                    F.max_by(F.col(column.name).cast(T.DoubleType()), F.col(RUN_DATE)).alias(value)
                )
                .withColumn(marker, F.lit(True))
            )
            rows = frame.select(
                "*",
                *[k.alias(n) for k, n in zip(key_values, keys, strict=True)],
                F.col(jump.history_order_by).alias(day),
            )
            before = (
                Window.partitionBy(*keys)
                .orderBy(F.unix_date(F.col(day)))
                .rangeBetween(Window.unboundedPreceding, -1)
            )
            frame = (
                rows.unionByName(past, allowMissingColumns=True)
                .withColumn(_history_column(column), F.last(value, ignorenulls=True).over(before))
                .where(~F.col(marker))
                .drop(*keys, day, value)
            )
        return frame.drop(marker)

    return transform


def _judged(contract: Contract, run_date: dt.date, with_history: bool = False):
    """Evaluate every rule into the sorted, distinct ``_reasons`` of each row."""

    def transform(typed: DataFrame) -> DataFrame:
        failures: list[SparkColumn] = []
        for column in contract.columns:
            failures.extend(_column_failures(column, run_date, with_history))
        failures.extend(
            _expression_failure(r.rule, r.expression) for r in contract.expression_rules
        )
        if contract.quarantine_duplicates:
            failures.append(_duplicate_failure())
        # array_except drops the nulls of passed rules (and repeats); unlike a filter lambda
        # it is code-generated, which keeps the whole projection out of interpreted mode.
        reasons = F.sort_array(
            F.array_except(F.array(*failures), F.array(F.lit(None).cast(T.StringType())))
        )
        malformed_only = F.array(F.lit(RECORD_MALFORMED))
        encoding_only = F.array(F.lit(RECORD_ENCODING))
        return typed.select(
            *contract.column_names,
            SOURCE_FILE,
            LINE,
            RAW_RECORD,
            RECORD_HASH,
            F.when(F.col(MALFORMED), malformed_only)
            .when(F.col(BAD_ENCODING), encoding_only)
            .otherwise(reasons)
            .alias(REASONS),
        )

    return transform


# --- rules ------------------------------------------------------------------------------------


def _column_failures(
    column: Column, run_date: dt.date, with_history: bool = False
) -> list[SparkColumn]:
    """One ``when(failed, rule id)`` per rule of ``column`` (null when the rule passes)."""
    text = F.col(_TEXT + column.name)  # trimmed input text, null when missing
    value = F.col(column.name)  # typed value, null when missing or not castable
    judged = value.isNotNull()  # only present, typed values meet the value rules
    failures: list[SparkColumn] = []

    def fails(check: str, condition: SparkColumn) -> None:
        failures.append(F.when(condition, F.lit(rule_id(column.name, check))))

    if column.required:
        fails(REQUIRED, text.isNull())
    if not column.is_string:
        fails(TYPE, text.isNotNull() & value.isNull())
    if column.pattern is not None:
        fails(PATTERN, judged & ~text.rlike(column.pattern))
    if column.allowed_values is not None:
        fails(ALLOWED_VALUES, judged & ~_allowed(text, column))
    range_failed = judged & ~_in_range(value, column.range) if column.range else F.lit(False)
    if column.range is not None:
        fails(RANGE, range_failed)
    if column.jump is not None:
        fails(JUMP, _jump_failed(value, column, range_failed, with_history))
    if column.not_after_delivery is not None:
        latest = _latest_plausible(run_date, column.not_after_delivery, column.logical_type)
        fails(FUTURE, judged & ~range_failed & (value > latest))
    return failures


def _latest_plausible(run_date: dt.date, tolerance: dt.timedelta, logical_type: str) -> SparkColumn:
    """The latest value a delivery dated ``run_date`` can hold in a ``notAfterDelivery``
    column: the end of that date (UTC) plus the column's ``tolerance``.

    Judged against the delivery's date, not the clock, so a rerun or a late backfill of an old
    date gives the same verdict; a value past it (a device clock ten years ahead) would
    otherwise win every "latest version" comparison in silver forever.
    """
    end = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time()) + tolerance
    if logical_type == "date":  # a date is plausible if it begins by then
        return F.lit(end.date())
    return utc_timestamp(end)


def _allowed(text: SparkColumn, column: Column) -> SparkColumn:
    values = sorted(column.allowed_values or ())
    if column.ignore_case:
        return F.upper(text).isin([v.upper() for v in values])
    return text.isin(values)


def _literal(value: object) -> SparkColumn:
    """A bound as a literal; a timestamp bound in UTC whatever the machine's zone."""
    if isinstance(value, dt.datetime):
        return utc_timestamp(value)
    return F.lit(value)


def _in_range(value: SparkColumn, bounds: Range) -> SparkColumn:
    within = F.lit(True)
    if bounds.minimum is not None:
        within = within & (value >= _literal(bounds.minimum))
    if bounds.exclusive_minimum is not None:
        within = within & (value > _literal(bounds.exclusive_minimum))
    if bounds.maximum is not None:
        within = within & (value <= _literal(bounds.maximum))
    if bounds.exclusive_maximum is not None:
        within = within & (value < _literal(bounds.exclusive_maximum))
    return within


def _jump_failed(
    value: SparkColumn, column: Column, range_failed: SparkColumn, with_history: bool = False
) -> SparkColumn:
    """True where a positive value is more than ``max_factor`` times off its group's median,
    or (``with_history``) more than ``history_max_factor`` times off its group's last value in
    earlier deliveries.

    Only positive values that passed the range check are judged and count towards the median
    (a zero or negative value is the range rule's to report); groups with fewer than
    ``min_rows`` judged values pass the median test, as there is nothing to compare with, and
    a group without history passes the history test (its first delivery).
    """
    jump = column.jump
    assert jump is not None
    group = [F.upper(F.col(g).cast(T.StringType())) for g in jump.group_by] or [F.lit(0)]
    window = Window.partitionBy(*group)
    amount = value.cast(T.DoubleType())
    judged = amount.isNotNull() & (amount > 0) & ~range_failed
    judged_amount = F.when(judged, amount)
    median = F.percentile_approx(judged_amount, MEDIAN, MEDIAN_ACCURACY).over(window)
    judged_rows = F.count(judged_amount).over(window)
    factor = F.lit(jump.max_factor)
    off_median = (amount > median * factor) | (amount * factor < median)
    failed = (judged_rows >= jump.min_rows) & off_median
    if with_history and jump.history_max_factor is not None:
        last = F.col(_history_column(column))
        daily = F.lit(jump.history_max_factor)
        off_last = last.isNotNull() & ((amount > last * daily) | (amount * daily < last))
        failed = failed | off_last
    return judged & failed


def _expression_failure(rule: str, expression: str) -> SparkColumn:
    """A table-level rule over typed columns: fails where the condition is false (null passes)."""
    return F.when(~F.coalesce(F.expr(expression), F.lit(True)), F.lit(rule))


def _duplicate_failure() -> SparkColumn:
    """The second and later byte-identical copies of a record (first in file/line order wins)."""
    window = Window.partitionBy(RECORD_HASH).orderBy(
        F.col(SOURCE_FILE).asc_nulls_last(), F.col(LINE).asc_nulls_last()
    )
    return F.when(F.row_number().over(window) > 1, F.lit(RECORD_DUPLICATE))


# --- casting ----------------------------------------------------------------------------------


def _undecodable(names: list[str]) -> SparkColumn:
    """True where any field holds U+FFFD: the reader met bytes that are not valid UTF-8."""
    found = [F.coalesce(F.col(n).contains(REPLACEMENT_CHARACTER), F.lit(False)) for n in names]
    return F.greatest(*found) if len(found) > 1 else found[0]


def _trimmed(text: SparkColumn) -> SparkColumn:
    """Leading/trailing whitespace removed; blank becomes null."""
    stripped = F.btrim(text, F.lit(WHITESPACE))
    return F.when(stripped != "", stripped)


def _cast(text: SparkColumn, column: Column) -> SparkColumn:
    """The safe cast of trimmed text to the column's type: null when it does not parse."""
    data_type = column.data_type
    if isinstance(data_type, T.StringType):
        return text
    if isinstance(data_type, T.TimestampType):
        if column.datetime_format:
            return F.try_to_timestamp(text, F.lit(column.datetime_format))
        return F.try_to_timestamp(text)
    if isinstance(data_type, T.DateType):
        if column.datetime_format:
            return F.try_to_date(text, column.datetime_format)
        return F.try_to_date(text)
    if isinstance(data_type, T.MapType | T.ArrayType | T.StructType):
        return F.from_json(text, data_type)
    return text.try_cast(data_type)
