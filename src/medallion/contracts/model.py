"""The in-memory form of a data contract: what the rule compiler and the jobs read.

A ``Contract`` is built by :mod:`medallion.contracts.loader` from an ODCS v3 YAML file and is
immutable. It keeps what the engine needs in plain, typed fields (columns with their types and
rules, the primary key, foreign keys, table-level rules, project settings) and the validated
ODCS model itself in ``odcs`` for anyone who needs the rest.

Rule ids are ``<column>:<check>`` (``email:required``, ``rate:jump``) or ``_record:<check>`` for
record-level rules; :data:`COLUMN_CHECKS` lists the checks and ``docs/DATA_CONTRACTS.md``
explains each one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pyspark.sql import types as T

from medallion.errors import JobError

# Column-level checks, in the order a column's rules are evaluated.
REQUIRED = "required"
TYPE = "type"
PATTERN = "pattern"
ALLOWED_VALUES = "allowed_values"
RANGE = "range"
JUMP = "jump"
FUTURE = "future"
COLUMN_CHECKS = (REQUIRED, TYPE, PATTERN, ALLOWED_VALUES, RANGE, JUMP, FUTURE)

# Record-level rule ids.
RECORD_MALFORMED = "_record:malformed"
RECORD_ENCODING = "_record:encoding"  # bytes that are not UTF-8 (Latin-1 in a UTF-8 file)
RECORD_DUPLICATE = "_record:duplicate"
RECORD_RULES = (RECORD_MALFORMED, RECORD_ENCODING, RECORD_DUPLICATE)

# Landing formats a contract can declare.
CSV = "csv"
JSONL = "jsonl"
FORMATS = (CSV, JSONL)

# Schema-evolution policies for CSV headers (JSON records are matched key by key).
STRICT = "strict"  # the header holds exactly the contract's columns, in any order
ADDITIVE = "additive"  # new columns are ignored (and reported); a missing column still fails
EVOLUTION_POLICIES = (STRICT, ADDITIVE)

RULE_ID_PATTERN = re.compile(r"^(?P<column>[A-Za-z_][A-Za-z0-9_]*):(?P<check>[a-z_]+)$")


class ContractError(JobError):
    """A contract file is missing, unreadable or invalid; the message names the file and field."""


def rule_id(column: str, check: str) -> str:
    """The id of ``check`` on ``column``: ``rule_id("email", "pattern") == "email:pattern"``."""
    return f"{column}:{check}"


@dataclass(frozen=True)
class Range:
    """Inclusive and exclusive bounds on a typed value (numbers, dates or timestamps)."""

    minimum: Decimal | dt.date | dt.datetime | None = None
    maximum: Decimal | dt.date | dt.datetime | None = None
    exclusive_minimum: Decimal | dt.date | dt.datetime | None = None
    exclusive_maximum: Decimal | dt.date | dt.datetime | None = None

    def describe(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f">= {self.minimum}")
        if self.exclusive_minimum is not None:
            parts.append(f"> {self.exclusive_minimum}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum}")
        if self.exclusive_maximum is not None:
            parts.append(f"< {self.exclusive_maximum}")
        return " and ".join(parts)


@dataclass(frozen=True)
class JumpRule:
    """A value may not sit more than ``max_factor`` times above or below the median of its
    group in the same batch; groups with fewer than ``min_rows`` judgeable values pass.

    With ``history_order_by`` (a date column) it is also judged against history: the value its
    group last had in earlier deliveries (bronze, the latest delivery of the latest earlier
    ``history_order_by``) may not be more than ``history_max_factor`` times away. A daily file
    holds one rate per currency, which no batch median can judge; the previous day's rate can.
    """

    group_by: tuple[str, ...]
    max_factor: float
    min_rows: int
    history_order_by: str | None = None
    history_max_factor: float | None = None


@dataclass(frozen=True)
class Column:
    """One column of a source table: its types and the rules its values must pass."""

    name: str
    logical_type: str
    physical_type: str
    data_type: T.DataType
    required: bool = False
    primary_key: bool = False
    primary_key_position: int | None = None
    unique: bool = False
    pattern: str | None = None
    allowed_values: frozenset[str] | None = None
    allowed_values_source: str | None = None  # "enum", or the code list (iso4217, iso3166)
    ignore_case: bool = False
    range: Range | None = None
    jump: JumpRule | None = None
    # A date or time may be at most this long after the end of the delivery's date (its
    # ``_run_date``): later is a clock error upstream (``<column>:future``).
    not_after_delivery: dt.timedelta | None = None
    datetime_format: str | None = None
    description: str | None = None

    @property
    def is_string(self) -> bool:
        return isinstance(self.data_type, T.StringType)

    def rule_ids(self) -> list[str]:
        """Every rule id this column can produce, in evaluation order."""
        checks = [
            (REQUIRED, self.required),
            (TYPE, not self.is_string),
            (PATTERN, self.pattern is not None),
            (ALLOWED_VALUES, self.allowed_values is not None),
            (RANGE, self.range is not None),
            (JUMP, self.jump is not None),
            (FUTURE, self.not_after_delivery is not None),
        ]
        return [rule_id(self.name, check) for check, present in checks if present]


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of this table reference ``referenced_columns`` of contract ``references``.

    Declared for silver, which flags orphans; bronze never quarantines a row for an orphan key.
    """

    columns: tuple[str, ...]
    references: str  # a contract name, e.g. "snowflake/customers"
    referenced_columns: tuple[str, ...]


@dataclass(frozen=True)
class ExpressionRule:
    """A table-level rule over typed columns: rows where ``expression`` is false fail ``rule``.

    ``expression`` is Spark SQL; a null result passes (the column rules judge missing values).
    """

    rule: str
    expression: str
    description: str | None = None


@dataclass(frozen=True)
class QuarantinePolicy:
    """What the job does with rejected rows.

    ``quarantine``: rejected rows go to quarantine and the run succeeds, unless more than
    ``max_ratio`` of a batch of at least ``min_rows`` rows is rejected (an upstream outage looks
    like that, and loading the rest would hide it). ``fail``: any rejected row fails the run.
    """

    mode: str = "quarantine"
    max_ratio: float = 0.25
    min_rows: int = 100


@dataclass(frozen=True)
class Contract:
    """A validated data contract for one source table (``name`` is ``<source>/<table>``)."""

    name: str
    version: str
    path: str
    columns: tuple[Column, ...]
    primary_key: list[str]
    foreign_keys: tuple[ForeignKey, ...] = ()
    expression_rules: tuple[ExpressionRule, ...] = ()
    quarantine_duplicates: bool = False
    format: str = CSV
    schema_evolution: str = STRICT
    partition_columns: tuple[str, ...] = ("_run_date",)
    quarantine_policy: QuarantinePolicy = field(default_factory=QuarantinePolicy)
    custom: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    odcs: Any = field(default=None, repr=False, compare=False)

    @property
    def source(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split("/", 1)[1]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"contract {self.name} has no column '{name}'")

    def spark_schema(self) -> T.StructType:
        """The typed bronze schema of the contract's columns (bronze metadata not included)."""
        return T.StructType([T.StructField(c.name, c.data_type, True) for c in self.columns])

    def raw_schema(self) -> T.StructType:
        """One nullable string per column: the shape readers hand to the rule compiler."""
        return T.StructType([T.StructField(c.name, T.StringType(), True) for c in self.columns])

    def rule_ids(self) -> list[str]:
        """Every rule id the contract can produce (record, column and table-level)."""
        ids = [RECORD_MALFORMED, RECORD_ENCODING]
        if self.quarantine_duplicates:
            ids.append(RECORD_DUPLICATE)
        for column in self.columns:
            ids.extend(column.rule_ids())
        ids.extend(r.rule for r in self.expression_rules if r.rule not in ids)
        return ids
