"""Source control totals: each data file's record count as the exporting system reported it.

A delivery folder may carry a control file, ``_control.json``, written by the export beside its
data files (an unload's result, a bulk job's summary)::

    {"table": "crm/accounts", "date": "2025-01-13",
     "files": {"part-00000.csv": 336, "part-00001.csv": 12}}

Bronze counts the records it parsed from each file and reconciles them with the control file
before writing anything. The point is to count the *source*: the parsed frame cannot check
itself. One unterminated quote makes the CSV reader absorb the next records into one malformed
record, and rows in, out and quarantined, all counted from that frame, still agree with each
other. A mismatch, a file the control file does not list, or a listed file that is missing fails
the job, naming the file and both counts.

Without a control file, the CSV reader's records are cross-checked against a quote-aware scan
(:func:`swallowed_lines`): a malformed record whose quoted text spans whole lines that split
into a full record's worth of fields has swallowed those records, and the job fails naming the
file and the line the quote opened on.

The name starts with ``_``, so the landing reader never takes the control file for data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from medallion.contracts.readers import hadoop_filesystem
from medallion.errors import JobError

CONTROL_FILE = "_control.json"


@dataclass(frozen=True)
class ControlTotals:
    """What a control file declares: records per data file (names relative to the folder)."""

    path: str
    records: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.records.values())


def parse_control(text: str, path: str) -> ControlTotals:
    """The control file's totals; a file that is not the documented shape is a ``JobError``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobError(
            f"control file {path} is not JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(name, str)
        and isinstance(count, int)
        and not isinstance(count, bool)
        and count >= 0
        for name, count in files.items()
    ):
        raise JobError(
            f"control file {path} must hold an object 'files' mapping each data file's name "
            "to its record count (a whole number)"
        )
    return ControlTotals(path, dict(files))


def relative_name(file: str, folder: str) -> str:
    """``file``'s path below ``folder``, however the two were spelled (``file:/`` or
    ``file:///``, percent-encoded or not): the part after the folder's last component."""
    leaf = unquote(folder).rstrip("/").rsplit("/", 1)[-1]
    path = unquote(file)
    marker = f"/{leaf}/"
    return path.split(marker, 1)[1] if marker in path else path.rsplit("/", 1)[-1]


def reconcile(
    table: str,
    control: ControlTotals,
    parsed: Mapping[str, int],
    files: Sequence[str],
    hint: str = "",
) -> None:
    """Fail unless every data file's parsed records equal the control file's count for it.

    ``parsed`` and ``files`` use names relative to the delivery folder; a file with no parsed
    records is simply absent from ``parsed``. ``hint`` (where a runaway quote was seen) is added
    to the message of a shortfall.
    """
    unlisted = sorted(set(files) - set(control.records))
    if unlisted:
        raise JobError(
            f"{table}: control file {control.path} does not list {', '.join(unlisted)}; "
            "the delivery is incomplete or mixed up: deliver the folder again"
        )
    absent = sorted(set(control.records) - set(files))
    if absent:
        raise JobError(
            f"{table}: control file {control.path} lists {', '.join(absent)}, which the "
            "delivery folder does not hold; deliver the missing file(s)"
        )
    for name in sorted(files):
        declared, found = control.records[name], parsed.get(name, 0)
        if declared != found:
            raise JobError(
                f"{table} file {name}: the control file declares {declared} records but "
                f"{found} were parsed{hint}; nothing was written: check the file's quoting "
                "and deliver it again"
            )


def swallowed_lines(raw_record: Column, malformed: Column, columns: int) -> Column:
    """How many whole records a malformed record's text swallowed: its lines after the first
    that hold at least ``columns - 1`` commas, a full record's worth of fields (0 for a
    well-formed record).

    A quoted field may legitimately span lines; a well-formed record whose field does so is
    never counted. A malformed one whose continuation lines each look like a whole record is
    a quote that opened and never closed where it should have. (A regular expression rather
    than a lambda over the lines keeps the projection code-generated.)
    """
    whole_line = "\n" + "[^,\n]*," * max(columns - 1, 1)
    return F.when(malformed, F.regexp_count(raw_record, F.lit(whole_line))).otherwise(F.lit(0))


def read_control(spark: SparkSession, folder: str) -> ControlTotals | None:
    """The delivery folder's control file, or None when the export sent none."""
    fs, path = hadoop_filesystem(spark, f"{folder.rstrip('/')}/{CONTROL_FILE}")
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        text = spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    return parse_control(text, path.toString())
